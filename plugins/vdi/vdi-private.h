/*
 * VirtualBox Disk Image (VDI), shared by the reader and the writer.
 *
 * On disk (all integers little endian), from VirtualBox's VDICore.h and qemu's block/vdi.c:
 *
 *   0x000  char   text[64]        for eyes only ("<<< Oracle VM VirtualBox Disk Image >>>\n")
 *   0x040  u32    signature       0xbeda107f
 *   0x044  u32    version         major << 16 | minor; only 1.1 (0x00010001) is read
 *   0x048  u32    header_size     0x180 (VDIHEADER1, qemu) or 0x190 (VDIHEADER1PLUS, VirtualBox)
 *   0x04c  u32    image_type      1 normal (dynamic), 2 fixed (static), 3 undo, 4 diff
 *   0x050  u32    image_flags
 *   0x054  char   comment[256]    UTF-8
 *   0x154  u32    offset_bmap     file offset of the block map
 *   0x158  u32    offset_data     file offset of image block 0
 *   0x15c  u32    cylinders, heads, sectors, sector_size (legacy geometry)
 *   0x16c  u32    unused
 *   0x170  u64    disk_size       bytes
 *   0x178  u32    block_size      1 MiB in practice, a power of two
 *   0x17c  u32    block_extra     bytes before each block's data; 0 in practice
 *   0x180  u32    blocks_in_image entries in the block map
 *   0x184  u32    blocks_allocated
 *   0x188  uuid   image, last_snap (last modification), link (parent image), parent (parent's
 *                 last modification); each a RTUUID: first three fields little endian
 *   0x1c8  u32    LCHS cylinders, heads, sectors, sector_size (only if header_size >= 0x190)
 *
 * The block map has one u32 per block of the virtual disk: the index of the image block that
 * holds it (at offset_data + index * block_size), 0xffffffff for a block never written (reads
 * as zeros) or 0xfffffffe for a discarded block (zeros).
 */
#pragma once

#include "vmi-plugin.h"
#include "vmi-plugin-util.h"

#define VDI_PRE_HEADER_SIZE   0x48u
#define VDI_TEXT_SIZE	      64u
#define VDI_SIGNATURE	      0xbeda107fu
#define VDI_VERSION_1_1	      0x00010001u
#define VDI_HEADER1_SIZE      0x180u
#define VDI_HEADER1PLUS_SIZE  0x190u
#define VDI_HEADER_READ_SIZE  (VDI_PRE_HEADER_SIZE + VDI_HEADER1PLUS_SIZE)
#define VDI_HEADER_AREA	      512u /* what the writer puts before the block map */
#define VDI_COMMENT_SIZE      256u
#define VDI_SECTOR_SIZE	      512u
#define VDI_DEFAULT_BLOCK_SIZE (1024u * 1024u)
/* Valid to VirtualBox beyond this, but a block that big is more likely a damaged header. */
#define VDI_MAX_BLOCK_SIZE    (256u * 1024u * 1024u)
/* qemu's limit: the byte size of the block map must fit in 32 bits. */
#define VDI_MAX_BLOCKS	      0x3fffffffu
/* Our cap on the block map in memory: 128 MiB, 32 TiB of disk with 1 MiB blocks. */
#define VDI_MAX_BMAP_BYTES    (128u * 1024u * 1024u)

#define VDI_BLOCK_FREE	      0xffffffffu
#define VDI_BLOCK_ZERO	      0xfffffffeu

typedef enum {
	VDI_TYPE_NORMAL = 1,
	VDI_TYPE_FIXED = 2,
	VDI_TYPE_UNDO = 3,
	VDI_TYPE_DIFF = 4,
} VdiImageType;

typedef struct {
	char text[VDI_TEXT_SIZE + 1];	    /* NUL-terminated copy */
	guint32 signature;
	guint32 version;
	guint32 header_size;
	guint32 image_type;
	guint32 image_flags;
	char comment[VDI_COMMENT_SIZE + 1]; /* NUL-terminated copy, bytes as on disk */
	guint32 offset_bmap;
	guint32 offset_data;
	guint32 cylinders;
	guint32 heads;
	guint32 sectors;
	guint32 sector_size;
	guint64 disk_size;
	guint32 block_size;
	guint32 block_extra;
	guint32 blocks_in_image;
	guint32 blocks_allocated;
	guint8 uuid_image[16]; /* as on disk */
	guint8 uuid_last_snap[16];
	guint8 uuid_link[16];
	guint8 uuid_parent[16];
	gboolean has_lchs;
	guint32 lchs_cylinders;
	guint32 lchs_heads;
	guint32 lchs_sectors;
	guint32 lchs_sector_size;
} VdiHeader;

/* One image, opened for reading or being written. */
struct _VmiImage {
	int fd;		   /* the writer's */
	VmiFileRange file; /* the reader's: the image's bytes in the daemon's fd */
	guint64 file_size;
	VdiHeader header;
	guint64 virtual_size;
	guint32 *bmap; /* blocks_in_image entries, host order */

	/* Writer only. */
	gboolean writing;
	guint32 bmap_area; /* block map bytes on disk, padded to a sector */
	guint64 next_write; /* where the next write must start: ranges only increase */
};

/* vdi-header.c */
void vdi_header_decode (const guint8 *buf, VdiHeader *header);
void vdi_header_encode (const VdiHeader *header, guint8 *buf);
char *vdi_uuid_to_string (const guint8 *raw);
gboolean vdi_uuid_is_null (const guint8 *raw);
void vdi_uuid_generate (guint8 *raw);
const char *vdi_image_type_name (guint32 image_type);

/* vdi-io.c (whole reads and writes are vmi_pread_all and vmi_pwrite_all of the "VDI image"). */
gboolean vdi_set_file_size (int fd, guint64 size, GError **error);

/* vdi-read.c */
VmiImage *vdi_open (const VmiOpenArgs *args, GError **error);
gboolean vdi_get_info (VmiImage *self, VmiImageInfo *info, GError **error);
gboolean vdi_read (VmiImage *self, guint64 offset, void *buf, gsize len, GError **error);
gboolean vdi_block_status (VmiImage *self, guint64 offset, guint64 max_length, VmiExtent *extent,
			   GError **error);
void vdi_close (VmiImage *self);

/* vdi-write.c */
extern const VmiOptionSpec vdi_create_options[];
VmiImage *vdi_create (int fd, guint64 virtual_size, GVariant *options, GError **error);
gboolean vdi_write (VmiImage *self, guint64 offset, const void *buf, gsize len, GError **error);
gboolean vdi_finish (VmiImage *self, GError **error);
