/* On-disk layout of VMDK hosted sparse extents (VMware "Virtual Disk Format 1.1"), and our limits. */
#pragma once

#include <glib.h>

#include "vmi-plugin.h"
#include "vmi-plugin-util.h"

G_BEGIN_DECLS

#define VMDK_SECTOR 512u

/* "KDMV" and "COWD" as the first four bytes of the file. */
#define VMDK_SPARSE_MAGIC "KDMV"
#define VMDK_COWD_MAGIC "COWD"

#define VMDK_FLAG_NL_DETECT (1u << 0)
#define VMDK_FLAG_RGD (1u << 1)
#define VMDK_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK_FLAG_COMPRESSED (1u << 16)
#define VMDK_FLAG_MARKERS (1u << 17)

#define VMDK_COMPRESSION_NONE 0u
#define VMDK_COMPRESSION_DEFLATE 1u

#define VMDK_GD_AT_END G_MAXUINT64
#define VMDK_GTE_ZEROED 1u

/* Stream markers: {u64 value; u32 size; u32 type} where size 0 means a metadata marker. */
#define VMDK_MARKER_EOS 0u
#define VMDK_MARKER_GT 1u
#define VMDK_MARKER_GD 2u
#define VMDK_MARKER_FOOTER 3u
#define VMDK_GRAIN_MARKER_SIZE 12u

/* Field offsets inside the 512-byte sparse header. */
#define VMDK_HDR_VERSION 4
#define VMDK_HDR_FLAGS 8
#define VMDK_HDR_CAPACITY 12
#define VMDK_HDR_GRAIN_SIZE 20
#define VMDK_HDR_DESC_OFFSET 28
#define VMDK_HDR_DESC_SIZE 36
#define VMDK_HDR_NUM_GTES 44
#define VMDK_HDR_RGD_OFFSET 48
#define VMDK_HDR_GD_OFFSET 56
#define VMDK_HDR_OVERHEAD 64
#define VMDK_HDR_UNCLEAN 72
#define VMDK_HDR_NL_CHECK 73 /* '\n' ' ' '\r' '\n' */
#define VMDK_HDR_COMPRESS 77

/*
 * Limits. VMware writes 64 KiB grains and 512 entries per grain table; we accept up to 1 MiB
 * grains (a compressed grain is decompressed into one buffer) and the 512 entries qemu allows.
 * 64 TiB is above the 62 TiB VMFS limit, so any larger capacity is damage, not a real disk.
 */
#define VMDK_MAX_GRAIN_SIZE (1024u * 1024u)
#define VMDK_MAX_GTES 512u
#define VMDK_MAX_VIRTUAL_SIZE (G_GUINT64_CONSTANT (64) << 40)
/* Grain directories and cached grain tables of all extents of one image together. */
#define VMDK_METADATA_CAP (64u * 1024u * 1024u)
/* A descriptor (embedded or a file of its own) larger than this is refused. */
#define VMDK_MAX_DESCRIPTOR (1024u * 1024u)
#define VMDK_MAX_EXTENTS 1024u

static inline guint16
vmdk_le16 (const guint8 *p)
{
	return (guint16) (p[0] | (p[1] << 8));
}

static inline guint32
vmdk_le32 (const guint8 *p)
{
	return (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16) | ((guint32) p[3] << 24);
}

static inline guint64
vmdk_le64 (const guint8 *p)
{
	return (guint64) vmdk_le32 (p) | ((guint64) vmdk_le32 (p + 4) << 32);
}

static inline void
vmdk_put_le16 (guint8 *p, guint16 v)
{
	p[0] = (guint8) v;
	p[1] = (guint8) (v >> 8);
}

static inline void
vmdk_put_le32 (guint8 *p, guint32 v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (guint8) (v >> (8 * i));
}

static inline void
vmdk_put_le64 (guint8 *p, guint64 v)
{
	vmdk_put_le32 (p, (guint32) v);
	vmdk_put_le32 (p + 4, (guint32) (v >> 32));
}

/*
 * pread of exactly len bytes at offset of file (an extent file, or the image's range of the
 * daemon's fd); short reads are VMI_ERROR_CORRUPT_IMAGE naming what.
 */
gboolean vmdk_pread_exact (const VmiFileRange *file, void *buf, gsize len, guint64 offset, const char *what,
			   GError **error);

G_END_DECLS
