/*
 * qcow2 on-disk layout (qemu's docs/interop/qcow2.txt), shared by the reader and the writer.
 * All numbers on disk are big endian.
 */
#pragma once

#include "vmi-plugin.h"
#include "vmi-plugin-util.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

#define QCOW2_V2_HEADER_LENGTH 72u
#define QCOW2_V3_HEADER_LENGTH 104u /* up to and including header_length */
#define QCOW2_V3_HEADER_LENGTH_FULL 112u /* with compression_type and its padding */

/* cluster_bits qemu accepts; the spec allows bigger clusters, nobody makes them. */
#define QCOW2_MIN_CLUSTER_BITS 9u
#define QCOW2_MAX_CLUSTER_BITS 21u

/* qemu's own limits (block/qcow2.h): an image qemu can make fits in these. */
#define QCOW2_MAX_L1_BYTES (32u * 1024u * 1024u)
#define QCOW2_MAX_SNAPSHOTS 65536u
#define QCOW2_MAX_SNAPSHOT_EXTRA_DATA 1024u
#define QCOW2_MAX_BACKING_FILE_NAME 1023u
#define QCOW2_MAX_BITMAPS 65535u

#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1full

#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

#define QCOW2_AUTOCLEAR_BITMAPS (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ull << 1)

#define QCOW2_COMPRESSION_ZLIB 0u
#define QCOW2_COMPRESSION_ZSTD 1u

#define QCOW2_CRYPT_NONE 0u
#define QCOW2_CRYPT_AES 1u
#define QCOW2_CRYPT_LUKS 2u

#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO (1ull << 0)
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull /* bits 9-55 of L1 and standard L2 entries */

#define QCOW2_SUBCLUSTERS 32u
#define QCOW2_COMPRESSED_SECTOR 512u

/* Header field offsets. */
#define QCOW2_HDR_VERSION 4
#define QCOW2_HDR_BACKING_OFFSET 8
#define QCOW2_HDR_BACKING_SIZE 16
#define QCOW2_HDR_CLUSTER_BITS 20
#define QCOW2_HDR_SIZE 24
#define QCOW2_HDR_CRYPT_METHOD 32
#define QCOW2_HDR_L1_SIZE 36
#define QCOW2_HDR_L1_OFFSET 40
#define QCOW2_HDR_REFCOUNT_OFFSET 48
#define QCOW2_HDR_REFCOUNT_CLUSTERS 56
#define QCOW2_HDR_NB_SNAPSHOTS 60
#define QCOW2_HDR_SNAPSHOTS_OFFSET 64
#define QCOW2_HDR_INCOMPAT 72
#define QCOW2_HDR_COMPAT 80
#define QCOW2_HDR_AUTOCLEAR 88
#define QCOW2_HDR_REFCOUNT_ORDER 96
#define QCOW2_HDR_HEADER_LENGTH 100
#define QCOW2_HDR_COMPRESSION_TYPE 104

static inline guint16
qcow2_be16 (const guint8 *p)
{
	return (guint16) ((p[0] << 8) | p[1]);
}

static inline guint32
qcow2_be32 (const guint8 *p)
{
	return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

static inline guint64
qcow2_be64 (const guint8 *p)
{
	return ((guint64) qcow2_be32 (p) << 32) | qcow2_be32 (p + 4);
}

static inline void
qcow2_put_be16 (guint8 *p, guint16 v)
{
	p[0] = (guint8) (v >> 8);
	p[1] = (guint8) v;
}

static inline void
qcow2_put_be32 (guint8 *p, guint32 v)
{
	p[0] = (guint8) (v >> 24);
	p[1] = (guint8) (v >> 16);
	p[2] = (guint8) (v >> 8);
	p[3] = (guint8) v;
}

static inline void
qcow2_put_be64 (guint8 *p, guint64 v)
{
	qcow2_put_be32 (p, (guint32) (v >> 32));
	qcow2_put_be32 (p + 4, (guint32) v);
}

/*
 * Reads up to len bytes at offset; *got says how many (fewer only at the end of the file).
 * I/O errors are VMI_ERROR_FAILED naming what was being read.
 */
gboolean qcow2_pread (const VmiFileRange *file, void *buf, gsize len, guint64 offset, gsize *got,
		      const char *what, GError **error);
