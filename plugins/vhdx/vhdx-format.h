/*
 * On-disk layout of VHDX ([MS-VHDX] 1.0). Everything is little endian; structures are read
 * field by field from byte buffers, never cast, so no packing or alignment is assumed.
 */
#pragma once

#include <string.h>
#include <glib.h>

#define VHDX_KiB (1024ull)
#define VHDX_MiB (1024ull * 1024ull)
#define VHDX_TiB (1024ull * 1024ull * 1024ull * 1024ull)

/* Header section: the first MiB. */
#define VHDX_FILE_ID_OFFSET 0
#define VHDX_FILE_ID_SIGNATURE "vhdxfile"
#define VHDX_FILE_ID_CREATOR_OFFSET 8
#define VHDX_FILE_ID_CREATOR_SIZE 512
#define VHDX_HEADER1_OFFSET (64 * VHDX_KiB)
#define VHDX_HEADER2_OFFSET (128 * VHDX_KiB)
#define VHDX_HEADER_SIZE (4 * VHDX_KiB)
#define VHDX_REGION_TABLE1_OFFSET (192 * VHDX_KiB)
#define VHDX_REGION_TABLE2_OFFSET (256 * VHDX_KiB)
#define VHDX_REGION_TABLE_SIZE (64 * VHDX_KiB)
#define VHDX_HEADER_SECTION_SIZE VHDX_MiB

/* Header fields. */
#define VHDX_HEADER_SIGNATURE 0x64616568u /* "head" */
#define VHDX_HDR_CHECKSUM 4
#define VHDX_HDR_SEQUENCE 8
#define VHDX_HDR_FILE_WRITE_GUID 16
#define VHDX_HDR_DATA_WRITE_GUID 32
#define VHDX_HDR_LOG_GUID 48
#define VHDX_HDR_LOG_VERSION 64
#define VHDX_HDR_VERSION 66
#define VHDX_HDR_LOG_LENGTH 68
#define VHDX_HDR_LOG_OFFSET 72

/* Region table. */
#define VHDX_REGION_SIGNATURE 0x69676572u /* "regi" */
#define VHDX_RT_CHECKSUM 4
#define VHDX_RT_ENTRY_COUNT 8
#define VHDX_RT_ENTRIES 16
#define VHDX_RT_ENTRY_SIZE 32
#define VHDX_RT_MAX_ENTRIES 2047u

/* Metadata region. */
#define VHDX_METADATA_SIGNATURE "metadata"
#define VHDX_METADATA_TABLE_SIZE (64 * VHDX_KiB)
#define VHDX_MD_ENTRY_COUNT 10
#define VHDX_MD_ENTRIES 32
#define VHDX_MD_ENTRY_SIZE 32
#define VHDX_MD_MAX_ENTRIES 2047u
#define VHDX_MD_MAX_ITEM_SIZE VHDX_MiB
#define VHDX_MD_FLAG_IS_USER (1u << 0)
#define VHDX_MD_FLAG_IS_VIRTUAL_DISK (1u << 1)
#define VHDX_MD_FLAG_IS_REQUIRED (1u << 2)

/* File parameters. */
#define VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED (1u << 0)
#define VHDX_PARAM_HAS_PARENT (1u << 1)
#define VHDX_BLOCK_SIZE_MIN VHDX_MiB
#define VHDX_BLOCK_SIZE_MAX (256 * VHDX_MiB)
#define VHDX_MAX_VIRTUAL_SIZE (64 * VHDX_TiB)
/* Sectors described by one sector bitmap block: this times the logical sector size is a chunk. */
#define VHDX_SECTORS_PER_CHUNK (1ull << 23)

/* BAT entries. */
#define VHDX_BAT_STATE_MASK 0x7ull
#define VHDX_BAT_OFFSET_SHIFT 20
#define VHDX_BAT_RESERVED_MASK 0xffff8ull
enum {
	VHDX_PAYLOAD_NOT_PRESENT = 0,
	VHDX_PAYLOAD_UNDEFINED = 1,
	VHDX_PAYLOAD_ZERO = 2,
	VHDX_PAYLOAD_UNMAPPED = 3,
	VHDX_PAYLOAD_FULLY_PRESENT = 6,
	VHDX_PAYLOAD_PARTIALLY_PRESENT = 7,
};
#define VHDX_SB_NOT_PRESENT 0
#define VHDX_SB_PRESENT 6

/* Log. */
#define VHDX_LOG_SECTOR_SIZE (4 * VHDX_KiB)
#define VHDX_LOG_ENTRY_SIGNATURE 0x65676f6cu /* "loge" */
#define VHDX_LOG_ZERO_SIGNATURE 0x6f72657au  /* "zero" */
#define VHDX_LOG_DESC_SIGNATURE 0x63736564u  /* "desc" */
#define VHDX_LOG_DATA_SIGNATURE 0x61746164u  /* "data" */
#define VHDX_LOG_HEADER_SIZE 64
#define VHDX_LOG_DESCRIPTOR_SIZE 32

typedef struct {
	guint8 b[16];
} VhdxGuid;

/* GUIDs are stored Microsoft style: the first three groups little endian, the rest as bytes. */
#define VHDX_GUID(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7)                                       \
	{ {                                                                                        \
		(d1) & 0xff, ((d1) >> 8) & 0xff, ((d1) >> 16) & 0xff, ((d1) >> 24) & 0xff,         \
		(d2) & 0xff, ((d2) >> 8) & 0xff, (d3) & 0xff, ((d3) >> 8) & 0xff,                  \
		b0, b1, b2, b3, b4, b5, b6, b7                                                     \
	} }

extern const VhdxGuid vhdx_guid_bat;
extern const VhdxGuid vhdx_guid_metadata;
extern const VhdxGuid vhdx_guid_file_parameters;
extern const VhdxGuid vhdx_guid_virtual_disk_size;
extern const VhdxGuid vhdx_guid_virtual_disk_id;
extern const VhdxGuid vhdx_guid_logical_sector_size;
extern const VhdxGuid vhdx_guid_physical_sector_size;
extern const VhdxGuid vhdx_guid_parent_locator;
extern const VhdxGuid vhdx_guid_parent_locator_vhdx;

static inline gboolean
vhdx_guid_equal (const guint8 *a, const VhdxGuid *b)
{
	return memcmp (a, b->b, 16) == 0;
}

static inline gboolean
vhdx_guid_is_zero (const guint8 *a)
{
	for (guint i = 0; i < 16; i++) {
		if (a[i] != 0)
			return FALSE;
	}
	return TRUE;
}

/* "01234567-89ab-cdef-0123-456789abcdef", the way Windows and qemu print it. */
char *vhdx_guid_to_string (const guint8 *guid);

static inline guint16
vhdx_le16 (const guint8 *p)
{
	return (guint16) (p[0] | (p[1] << 8));
}

static inline guint32
vhdx_le32 (const guint8 *p)
{
	return (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16) | ((guint32) p[3] << 24);
}

static inline guint64
vhdx_le64 (const guint8 *p)
{
	return (guint64) vhdx_le32 (p) | ((guint64) vhdx_le32 (p + 4) << 32);
}

static inline void
vhdx_put_le16 (guint8 *p, guint16 v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
}

static inline void
vhdx_put_le32 (guint8 *p, guint32 v)
{
	for (guint i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static inline void
vhdx_put_le64 (guint8 *p, guint64 v)
{
	for (guint i = 0; i < 8; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}
