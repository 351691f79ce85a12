/*
 * Writing fixed and dynamic VHD files.
 *
 * Size: like qemu-img convert -O vpc, the requested size is rounded up to whole sectors and
 * then to the first CHS geometry that holds it, and current_size is set to exactly that
 * geometry's size. Readers that size a VHD by its geometry (Virtual PC, qemu for most creator
 * codes) and readers that trust current_size (Hyper-V) therefore see the same disk, and
 * qemu-img info reports the same virtual size for our file as for qemu's own conversion of the
 * same input. Past the largest geometry (about 127 GiB) the geometry is 65535/16/255 and the
 * size is the sector count, which every reader, qemu included, then takes from current_size.
 * With force_size the geometry is set to that maximum for any size, as qemu's force_size does,
 * so the exact (sector-rounded) size is kept.
 *
 * Layout of a dynamic disk, as qemu and Virtual PC make it: footer copy at 0, dynamic header
 * at 512, BAT at 1536, then each block as a 512-byte sector bitmap and 2 MiB of data, in the
 * order the blocks are first written, then the footer. Blocks never written stay unallocated.
 */
#include <string.h>
#include <time.h>

#include "vhd-private.h"

#define VHD_WRITE_BLOCK_SIZE (2u * 1024u * 1024u)
#define VHD_WRITE_BAT_OFFSET 1536u

const VmiOptionSpec vhd_create_options[] = {
	{ "subformat", "s", "\"dynamic\" (default: grows as data is written) or \"fixed\" "
			    "(all space allocated)" },
	{ "force_size", "b", "keep the requested size instead of rounding it up to a CHS "
			     "geometry (Virtual PC then sees a different size)" },
	{ NULL },
};

static void
vhd_random_uuid (guint8 *uuid)
{
	g_autofree char *text = g_uuid_string_random ();
	guint n = 0;

	for (const char *p = text; *p != '\0' && n < 16; p++) {
		if (*p == '-')
			continue;
		uuid[n++] = (guint8) ((g_ascii_xdigit_value (p[0]) << 4) |
				      g_ascii_xdigit_value (p[1]));
		p++;
	}
}

static gboolean
vhd_parse_create_options (GVariant *options, guint32 *disk_type, gboolean *force_size,
			  GError **error)
{
	const char *subformat = "dynamic";

	*force_size = FALSE;
	if (options != NULL) {
		g_variant_lookup (options, "subformat", "&s", &subformat);
		g_variant_lookup (options, "force_size", "b", force_size);
	}
	if (g_strcmp0 (subformat, "dynamic") == 0) {
		*disk_type = VHD_TYPE_DYNAMIC;
	} else if (g_strcmp0 (subformat, "fixed") == 0) {
		*disk_type = VHD_TYPE_FIXED;
	} else {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "unknown VHD subformat \"%s\": use \"dynamic\" or \"fixed\"",
			     subformat);
		return FALSE;
	}
	return TRUE;
}

static void
vhd_init_footer (VmiImage *image, guint32 disk_type, guint16 c, guint8 h, guint8 s)
{
	VhdFooter *f = &image->footer;
	gint64 now = (gint64) time (NULL) - VHD_TIMESTAMP_BASE;

	f->features = 0x2; /* the "reserved" bit the specification says is always set */
	f->format_version = 0x00010000;
	f->data_offset = disk_type == VHD_TYPE_DYNAMIC ? VHD_FOOTER_SIZE : G_MAXUINT64;
	f->timestamp = (guint32) CLAMP (now, 0, (gint64) G_MAXUINT32);
	/* Our own code: with current_size equal to the geometry, no reader's rule depends on it. */
	memcpy (f->creator_app, "vmim", 4);
	f->creator_version = 0x00000001; /* vmimaged 0.1 */
	memcpy (f->creator_os, "Wi2k", 4);
	f->original_size = image->virtual_size;
	f->current_size = image->virtual_size;
	f->cylinders = c;
	f->heads = h;
	f->sectors = s;
	f->disk_type = disk_type;
	vhd_random_uuid (f->uuid);
	image->footer_source = "end";
}

VmiImage *
vhd_create (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	VmiImage *image;
	guint32 disk_type;
	gboolean force_size;
	guint64 sectors;
	guint16 c;
	guint8 h, s;

	if (!vhd_parse_create_options (options, &disk_type, &force_size, error))
		return NULL;
	if (force_size) {
		c = 65535;
		h = 16;
		s = 255;
		sectors = virtual_size / VHD_SECTOR_SIZE + (virtual_size % VHD_SECTOR_SIZE != 0);
	} else {
		vhd_geometry_round_up (virtual_size, &c, &h, &s, &sectors);
	}
	if (sectors > VHD_MAX_SECTORS) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "a VHD holds at most 2040 GiB (%" G_GUINT64_FORMAT " bytes); %"
			     G_GUINT64_FORMAT " bytes were asked for",
			     VHD_MAX_SECTORS * VHD_SECTOR_SIZE, virtual_size);
		return NULL;
	}

	image = g_new0 (VmiImage, 1);
	image->fd = fd;
	/* the bitmap loader reads back blocks written so far, through the reader's range */
	image->file = (VmiFileRange) { .fd = fd, .base = 0, .size = G_MAXINT64 };
	image->writing = TRUE;
	image->virtual_size = sectors * VHD_SECTOR_SIZE;
	image->size_from_chs = !force_size && (guint64) c * h * s != VHD_CHS_MAX_SECTORS;
	vhd_init_footer (image, disk_type, c, h, s);
	if (disk_type == VHD_TYPE_DYNAMIC) {
		guint64 bat_bytes;

		image->block_size = VHD_WRITE_BLOCK_SIZE;
		image->bitmap_size = VHD_SECTOR_SIZE; /* 4096 sectors, one bit each */
		image->n_bat = (guint32) ((image->virtual_size + image->block_size - 1) /
					  image->block_size);
		image->max_table_entries = image->n_bat;
		image->header_offset = VHD_FOOTER_SIZE;
		image->bat_offset = VHD_WRITE_BAT_OFFSET;
		image->bat = g_new (guint32, (gsize) image->n_bat + 1);
		for (guint32 i = 0; i < image->n_bat; i++)
			image->bat[i] = VHD_BAT_UNUSED;
		bat_bytes = ((guint64) image->n_bat * 4 + VHD_SECTOR_SIZE - 1) &
			    ~(guint64) (VHD_SECTOR_SIZE - 1);
		image->next_block_offset = image->bat_offset + bat_bytes;
		image->bitmap = g_malloc0 (image->bitmap_size);
		image->bitmap_block = G_MAXUINT32;
	}
	return image;
}

static gboolean
vhd_flush_bitmap (VmiImage *image, GError **error)
{
	if (!image->bitmap_dirty)
		return TRUE;
	if (!vmi_pwrite_all (image->fd, image->bitmap, image->bitmap_size,
			     (guint64) image->bat[image->bitmap_block] * VHD_SECTOR_SIZE,
			     "VHD file", error))
		return FALSE;
	image->bitmap_dirty = FALSE;
	return TRUE;
}

/* Makes block the one whose bitmap is in memory, allocating it at the end if it is new. */
static gboolean
vhd_select_block (VmiImage *image, guint32 block, GError **error)
{
	if (image->bitmap_block == block)
		return TRUE;
	if (!vhd_flush_bitmap (image, error))
		return FALSE;
	if (image->bat[block] != VHD_BAT_UNUSED)
		return vhd_load_bitmap (image, block, error);
	/* BAT entries count sectors in 32 bits; 2040 GiB of blocks stays well below that. */
	g_assert (image->next_block_offset / VHD_SECTOR_SIZE < VHD_BAT_UNUSED);
	image->bat[block] = (guint32) (image->next_block_offset / VHD_SECTOR_SIZE);
	image->next_block_offset += (guint64) image->bitmap_size + image->block_size;
	memset (image->bitmap, 0, image->bitmap_size);
	image->bitmap_block = block;
	image->bitmap_dirty = TRUE;
	return TRUE;
}

static void
vhd_mark_sectors (VmiImage *image, guint32 first, guint32 end)
{
	for (guint32 s = first; s < end; s++)
		image->bitmap[s / 8] |= (guint8) (0x80u >> (s % 8));
	image->bitmap_dirty = TRUE;
}

gboolean
vhd_write (VmiImage *image, guint64 offset, const void *buf, gsize len, GError **error)
{
	const guint8 *p = buf;
	guint64 end;

	if (!g_uint64_checked_add (&end, offset, len) || end > image->virtual_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "a write of %" G_GSIZE_FORMAT " bytes at offset %" G_GUINT64_FORMAT
			     " goes past the end of the %" G_GUINT64_FORMAT "-byte disk",
			     len, offset, image->virtual_size);
		return FALSE;
	}
	if (image->footer.disk_type == VHD_TYPE_FIXED)
		return vmi_pwrite_all (image->fd, buf, len, offset, "VHD file", error);

	while (len > 0) {
		guint32 block = (guint32) (offset / image->block_size);
		guint32 in_block = (guint32) (offset % image->block_size);
		gsize chunk = (gsize) MIN ((guint64) len, image->block_size - in_block);
		guint64 file_offset;

		if (!vhd_select_block (image, block, error))
			return FALSE;
		file_offset = (guint64) image->bat[block] * VHD_SECTOR_SIZE + image->bitmap_size +
			      in_block;
		if (!vmi_pwrite_all (image->fd, p, chunk, file_offset, "VHD file", error))
			return FALSE;
		vhd_mark_sectors (image, in_block / VHD_SECTOR_SIZE,
				  (guint32) ((in_block + chunk + VHD_SECTOR_SIZE - 1) /
					     VHD_SECTOR_SIZE));
		p += chunk;
		len -= chunk;
		offset += chunk;
	}
	return TRUE;
}

static gboolean
vhd_finish_dynamic (VmiImage *image, const guint8 *footer, GError **error)
{
	guint8 header[VHD_DYN_HEADER_SIZE] = { 0 };
	gsize bat_bytes = ((gsize) image->n_bat * 4 + VHD_SECTOR_SIZE - 1) &
			  ~(gsize) (VHD_SECTOR_SIZE - 1);
	g_autofree guint8 *bat = NULL;

	if (!vhd_flush_bitmap (image, error))
		return FALSE;
	/* The BAT's padding to a whole sector is filled with unused entries, as qemu does. */
	bat = g_malloc (MAX (bat_bytes, 1));
	memset (bat, 0xff, bat_bytes);
	for (guint32 i = 0; i < image->n_bat; i++)
		vhd_put_be32 (bat + (gsize) i * 4, image->bat[i]);

	memcpy (header + VHD_H_COOKIE, "cxsparse", 8);
	/* The specification says 0xFFFFFFFF, but Microsoft's tools expect all 64 bits set. */
	vhd_put_be64 (header + VHD_H_DATA_OFFSET, G_MAXUINT64);
	vhd_put_be64 (header + VHD_H_TABLE_OFFSET, image->bat_offset);
	vhd_put_be32 (header + VHD_H_VERSION, 0x00010000);
	vhd_put_be32 (header + VHD_H_MAX_TABLE_ENTRIES, image->max_table_entries);
	vhd_put_be32 (header + VHD_H_BLOCK_SIZE, image->block_size);
	vhd_put_be32 (header + VHD_H_CHECKSUM,
		      vhd_checksum (header, sizeof header, VHD_H_CHECKSUM));

	return vmi_pwrite_all (image->fd, bat, bat_bytes, image->bat_offset, "VHD file", error) &&
	       vmi_pwrite_all (image->fd, header, sizeof header, image->header_offset, "VHD file",
			       error) &&
	       vmi_pwrite_all (image->fd, footer, VHD_FOOTER_SIZE, 0, "VHD file", error) &&
	       vmi_pwrite_all (image->fd, footer, VHD_FOOTER_SIZE, image->next_block_offset,
			       "VHD file", error);
}

gboolean
vhd_finish (VmiImage *image, GError **error)
{
	guint8 footer[VHD_FOOTER_SIZE];

	vhd_footer_serialize (&image->footer, footer);
	if (image->footer.disk_type == VHD_TYPE_FIXED)
		return vmi_pwrite_all (image->fd, footer, sizeof footer, image->virtual_size,
				       "VHD file", error);
	return vhd_finish_dynamic (image, footer, error);
}
