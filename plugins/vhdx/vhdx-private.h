/* State shared by the VHDX reader (vmi-vhdx.c) and writer (vhdx-writer.c). */
#pragma once

#include "vmi-plugin.h"
#include "vmi-plugin-util.h"
#include "vhdx-format.h"
#include "vhdx-log.h"

/* Metadata we keep in memory for one image (BAT, log updates, parent locator). */
#define VHDX_METADATA_MEMORY_CAP (256 * VHDX_MiB)

typedef struct _VhdxWriter VhdxWriter;

struct _VmiImage {
	int fd;		   /* the writer's */
	VmiFileRange file; /* the reader's: the image's bytes in the daemon's fd */
	guint64 file_size; /* after log replay */
	guint64 disk_file_size; /* file.size: past it the file has no data */
	VhdxLog *log;	   /* NULL when nothing was replayed */

	char *creator;
	guint64 header_sequence;
	guint header_index; /* 1 or 2 */
	guint8 log_guid[16];
	guint64 log_offset;
	guint32 log_length;

	guint64 virtual_size;
	guint32 block_size;
	guint32 logical_sector_size;
	guint32 physical_sector_size;
	gboolean leave_blocks_allocated;
	gboolean has_parent;
	guint8 disk_id[16];
	GPtrArray *parent_keys;	  /* char *, UTF-8 */
	GPtrArray *parent_values; /* char *, UTF-8 */

	guint64 chunk_ratio;
	guint64 data_blocks;
	guint64 bat_entries;
	guint64 *bat;
	guint64 allocated_blocks;

	VhdxWriter *writer; /* non-NULL for an image being created */
};

/* The BAT index of payload block i: a sector bitmap entry follows each chunk of blocks. */
static inline guint64
vhdx_payload_bat_index (const VmiImage *self, guint64 block)
{
	return block + block / self->chunk_ratio;
}

/* Number of BAT entries for a file without a parent, as [MS-VHDX] 2.5 computes them. */
static inline guint64
vhdx_bat_entries_no_parent (guint64 data_blocks, guint64 chunk_ratio)
{
	return data_blocks == 0 ? 0 : data_blocks + (data_blocks - 1) / chunk_ratio;
}

void vhdx_image_free (VmiImage *self);

/* Sets VMI_ERROR_CORRUPT_IMAGE with a message; returns FALSE. */
gboolean vhdx_set_corrupt (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);
/* UTF-16LE bytes (any alignment) up to the first NUL, as UTF-8; NULL if not valid. */
char *vhdx_utf16_to_utf8 (const guint8 *p, gsize len);

/* Region table and metadata (vhdx-metadata.c). */
typedef struct {
	guint64 offset;
	guint64 length;
} VhdxRegion;

/* Callers pass regions that lie within the file, so the sums cannot overflow. */
static inline gboolean
vhdx_region_overlaps (const VhdxRegion *a, const VhdxRegion *b)
{
	return a->length > 0 && b->length > 0 && a->offset < b->offset + b->length &&
	       b->offset < a->offset + a->length;
}

/* Finds the BAT and metadata regions in the first valid region table copy. */
gboolean vhdx_parse_region_table (VmiImage *self, VhdxRegion *bat, VhdxRegion *metadata,
				  GError **error);
/* Reads the known metadata items (and the parent locator) into self. */
gboolean vhdx_parse_metadata (VmiImage *self, const VhdxRegion *region, GError **error);
/* Checks the metadata values and derives the chunk ratio and BAT size from them. */
gboolean vhdx_check_parameters (VmiImage *self, GError **error);

/* Writer (vhdx-writer.c). */
extern const VmiOptionSpec vhdx_create_options[];
VmiImage *vhdx_create (int fd, guint64 virtual_size, GVariant *options, GError **error);
gboolean vhdx_write (VmiImage *self, guint64 offset, const void *buf, gsize len, GError **error);
gboolean vhdx_finish (VmiImage *self, GError **error);
void vhdx_writer_free (VhdxWriter *writer);
