/*
 * VHD (Virtual PC / Hyper-V "vpc") on-disk layout and the state shared by the reader and the
 * writer. Every multi-byte field is big-endian; structures are read and written field by field
 * at fixed offsets rather than through packed structs.
 */
#pragma once

#include "vmi-plugin.h"
#include "vmi-plugin-util.h"

#define VHD_SECTOR_SIZE 512u
#define VHD_FOOTER_SIZE 512u
#define VHD_DYN_HEADER_SIZE 1024u
#define VHD_BAT_UNUSED 0xffffffffu

/* Fields of the 512-byte footer (and of its copy at offset 0 of dynamic disks). */
#define VHD_F_COOKIE 0
#define VHD_F_FEATURES 8
#define VHD_F_VERSION 12
#define VHD_F_DATA_OFFSET 16
#define VHD_F_TIMESTAMP 24
#define VHD_F_CREATOR_APP 28
#define VHD_F_CREATOR_VERSION 32
#define VHD_F_CREATOR_OS 36
#define VHD_F_ORIGINAL_SIZE 40
#define VHD_F_CURRENT_SIZE 48
#define VHD_F_CYLINDERS 56
#define VHD_F_HEADS 58
#define VHD_F_SECTORS 59
#define VHD_F_DISK_TYPE 60
#define VHD_F_CHECKSUM 64
#define VHD_F_UUID 68
#define VHD_F_SAVED_STATE 84

/* Fields of the 1024-byte dynamic disk header. */
#define VHD_H_COOKIE 0
#define VHD_H_DATA_OFFSET 8
#define VHD_H_TABLE_OFFSET 16
#define VHD_H_VERSION 24
#define VHD_H_MAX_TABLE_ENTRIES 28
#define VHD_H_BLOCK_SIZE 32
#define VHD_H_CHECKSUM 36
#define VHD_H_PARENT_UUID 40
#define VHD_H_PARENT_TIMESTAMP 56
#define VHD_H_PARENT_NAME 64
#define VHD_H_PARENT_NAME_SIZE 512u
#define VHD_H_LOCATORS 576
#define VHD_H_LOCATOR_SIZE 24u
#define VHD_H_N_LOCATORS 8u

enum {
	VHD_TYPE_FIXED = 2,
	VHD_TYPE_DYNAMIC = 3,
	VHD_TYPE_DIFFERENCING = 4,
};

/* The largest CHS geometry a footer can hold (65535/16/255), in sectors. */
#define VHD_CHS_MAX_SECTORS ((guint64) 65535 * 16 * 255)
/* qemu refuses anything above 2040 GiB, the limit Microsoft documents for VHD. */
#define VHD_MAX_SECTORS G_GUINT64_CONSTANT (0xff000000)
/* Footer timestamps count seconds from 2000-01-01 00:00:00 UTC. */
#define VHD_TIMESTAMP_BASE 946684800

/*
 * Cap on metadata held in memory for one image: the BAT (4 bytes per block) plus one sector
 * bitmap. A 2040 GiB disk with the usual 2 MiB blocks needs a 4 MiB BAT, so 64 MiB leaves room
 * for small block sizes without letting a header make us allocate gigabytes.
 */
#define VHD_MAX_BAT_BYTES (64u * 1024u * 1024u)
/* Parent locators are short paths; anything longer than this is not a path. */
#define VHD_MAX_LOCATOR_BYTES (64u * 1024u)

typedef struct {
	guint32 features;
	guint32 format_version;
	guint64 data_offset;
	guint32 timestamp;
	char creator_app[4];
	guint32 creator_version;
	char creator_os[4];
	guint64 original_size;
	guint64 current_size;
	guint16 cylinders;
	guint8 heads;
	guint8 sectors;
	guint32 disk_type;
	guint8 uuid[16];
	gboolean saved_state;
} VhdFooter;

struct _VmiImage {
	int fd;		   /* the writer's */
	VmiFileRange file; /* the reader's: the image's bytes in the daemon's fd */
	guint64 file_size;
	VhdFooter footer;
	const char *footer_source; /* which copy of the footer was used */
	guint64 virtual_size;
	gboolean size_from_chs;

	/* dynamic and differencing disks */
	guint64 header_offset;
	guint64 bat_offset;
	guint32 block_size;
	guint32 bitmap_size;	   /* bytes of sector bitmap before each block, a multiple of 512 */
	guint32 max_table_entries; /* entries in the BAT on disk */
	guint32 *bat;		   /* host-endian; n_bat entries */
	guint32 n_bat;
	guint8 *bitmap;		   /* bitmap_size bytes: the bitmap of block bitmap_block */
	guint32 bitmap_block;	   /* G_MAXUINT32 when bitmap holds nothing */
	gboolean bitmap_dirty;	   /* writer: bitmap must go to the file before it is replaced */

	/* differencing disks: what the header names, never opened */
	char *parent_name;
	char *parent_uuid;
	GPtrArray *parent_locators; /* of char *, NULL-terminated: "W2ku C:\\dir\\parent.vhd" */
	GPtrArray *parent_paths;    /* of char *: the paths alone, without duplicates */

	/* writer */
	gboolean writing;
	guint64 next_block_offset; /* where the next allocated block's bitmap goes */
};

/* vhd-format.c */
guint32 vhd_get_be16 (const guint8 *p);
guint32 vhd_get_be32 (const guint8 *p);
guint64 vhd_get_be64 (const guint8 *p);
void vhd_put_be16 (guint8 *p, guint16 v);
void vhd_put_be32 (guint8 *p, guint32 v);
void vhd_put_be64 (guint8 *p, guint64 v);
guint32 vhd_checksum (const guint8 *buf, gsize len, gsize checksum_at);
gboolean vhd_footer_has_cookie (const guint8 *raw);
gboolean vhd_footer_checksum_ok (const guint8 *raw);
void vhd_footer_parse (const guint8 *raw, VhdFooter *footer);
void vhd_footer_serialize (const VhdFooter *footer, guint8 *raw);
guint64 vhd_footer_size_in_sectors (const VhdFooter *footer, gboolean *from_chs);
void vhd_geometry_round_up (guint64 size, guint16 *cylinders, guint8 *heads, guint8 *sectors,
			    guint64 *total_sectors);
char *vhd_fourcc_to_string (const char *fourcc);
char *vhd_uuid_to_string (const guint8 *uuid);

/* vhd-read.c */
VmiImage *vhd_open (const VmiOpenArgs *args, GError **error);
gboolean vhd_get_info (VmiImage *image, VmiImageInfo *info, GError **error);
gboolean vhd_read (VmiImage *image, guint64 offset, void *buf, gsize len, GError **error);
gboolean vhd_block_status (VmiImage *image, guint64 offset, guint64 max_length,
			   VmiExtent *extent, GError **error);
gboolean vhd_load_bitmap (VmiImage *image, guint32 block, GError **error);

/* vhd-parent.c */
gboolean vhd_parse_parent (VmiImage *image, const guint8 *header, GError **error);

/* vhd-write.c */
extern const VmiOptionSpec vhd_create_options[];
VmiImage *vhd_create (int fd, guint64 virtual_size, GVariant *options, GError **error);
gboolean vhd_write (VmiImage *image, guint64 offset, const void *buf, gsize len, GError **error);
gboolean vhd_finish (VmiImage *image, GError **error);

void vhd_image_free (VmiImage *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiImage, vhd_image_free)
