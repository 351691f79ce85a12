/* Opening and reading fixed, dynamic and (inspect only) differencing VHD files. */
#include <string.h>

#include "vhd-private.h"

#define VHD_FMT_X "0x%" G_GINT64_MODIFIER "x"
#define VHD_FMT_U "%" G_GUINT64_FORMAT

static const char *
vhd_disk_type_name (guint32 type)
{
	switch (type) {
	case VHD_TYPE_FIXED:
		return "fixed";
	case VHD_TYPE_DYNAMIC:
		return "dynamic";
	case VHD_TYPE_DIFFERENCING:
		return "differencing";
	default:
		return NULL;
	}
}

/*
 * The footer lives in the last 512 bytes; dynamic and differencing disks keep a copy in the
 * first 512. The copy at the end is the one the specification calls authoritative, so it wins
 * when both are valid; the copy at the start rescues a file whose end was damaged or cut off.
 */
static gboolean
vhd_find_footer (VmiImage *image, GError **error)
{
	guint8 head[VHD_FOOTER_SIZE] = { 0 };
	guint8 tail[VHD_FOOTER_SIZE] = { 0 };
	gboolean head_cookie, tail_cookie, head_ok, tail_ok;

	if (image->file_size < VHD_FOOTER_SIZE) {
		if (image->file_size >= 8 &&
		    !vmi_range_pread_all (&image->file, head, (gsize) image->file_size, 0, "VHD file",
				    error))
			return FALSE;
		if (vhd_footer_has_cookie (head)) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the " VHD_FMT_U "-byte file starts with the VHD cookie "
				     "\"conectix\" but is too short to hold a 512-byte footer "
				     "(was it truncated?)",
				     image->file_size);
			return FALSE;
		}
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "the " VHD_FMT_U "-byte file is too small to be a VHD, which ends "
			     "with a 512-byte footer",
			     image->file_size);
		return FALSE;
	}
	if (!vmi_range_pread_all (&image->file, head, sizeof head, 0, "VHD file", error) ||
	    !vmi_range_pread_all (&image->file, tail, sizeof tail, image->file_size - VHD_FOOTER_SIZE,
			    "VHD file", error))
		return FALSE;
	head_cookie = vhd_footer_has_cookie (head);
	tail_cookie = vhd_footer_has_cookie (tail);
	head_ok = head_cookie && vhd_footer_checksum_ok (head);
	tail_ok = tail_cookie && vhd_footer_checksum_ok (tail);

	if (tail_ok) {
		vhd_footer_parse (tail, &image->footer);
		image->footer_source = "end";
	} else if (head_ok) {
		vhd_footer_parse (head, &image->footer);
		image->footer_source = "copy at offset 0";
		if (image->footer.disk_type == VHD_TYPE_FIXED) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the footer at the end of the " VHD_FMT_U "-byte file is %s, "
				     "and the footer at offset 0 describes a fixed disk, which "
				     "keeps no copy there",
				     image->file_size, tail_cookie ? "damaged" : "missing");
			return FALSE;
		}
	} else if (tail_cookie) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the VHD footer at offset " VHD_FMT_X " has checksum 0x%08x but its "
			     "content gives 0x%08x, and there is %s copy at offset 0",
			     image->file_size - VHD_FOOTER_SIZE,
			     vhd_get_be32 (tail + VHD_F_CHECKSUM),
			     vhd_checksum (tail, VHD_FOOTER_SIZE, VHD_F_CHECKSUM),
			     head_cookie ? "no valid" : "no");
		return FALSE;
	} else if (head_cookie) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the last 512 bytes of the " VHD_FMT_U "-byte file are not a VHD "
			     "footer, and the footer copy at offset 0 has checksum 0x%08x but "
			     "its content gives 0x%08x",
			     image->file_size, vhd_get_be32 (head + VHD_F_CHECKSUM),
			     vhd_checksum (head, VHD_FOOTER_SIZE, VHD_F_CHECKSUM));
		return FALSE;
	} else {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "not a VHD: neither the first nor the last 512 bytes of the " VHD_FMT_U
			     "-byte file start with the cookie \"conectix\"",
			     image->file_size);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vhd_check_disk_type (VmiImage *image, GError **error)
{
	guint32 type = image->footer.disk_type;

	if (vhd_disk_type_name (type) != NULL)
		return TRUE;
	/* Types 1, 5 and 6 are listed by the specification as deprecated. */
	g_set_error (error, VMI_ERROR,
		     type == 1 || type == 5 || type == 6 ? VMI_ERROR_NOT_SUPPORTED
							 : VMI_ERROR_CORRUPT_IMAGE,
		     "the VHD footer gives disk type %u; only fixed (2), dynamic (3) and "
		     "differencing (4) disks exist",
		     type);
	return FALSE;
}

static gboolean
vhd_compute_size (VmiImage *image, GError **error)
{
	guint64 sectors = vhd_footer_size_in_sectors (&image->footer, &image->size_from_chs);

	if (sectors > VHD_MAX_SECTORS) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the VHD footer gives a disk of " VHD_FMT_U " sectors (from its %s), "
			     "more than the 2040 GiB a VHD can hold",
			     sectors, image->size_from_chs ? "CHS geometry" : "current_size");
		return FALSE;
	}
	image->virtual_size = sectors * VHD_SECTOR_SIZE;
	return TRUE;
}

static gboolean
vhd_open_fixed (VmiImage *image, GError **error)
{
	guint64 data_size = image->file_size - VHD_FOOTER_SIZE;

	if (image->virtual_size > data_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the fixed VHD describes a " VHD_FMT_U "-byte disk but the file holds "
			     "only " VHD_FMT_U " bytes before its footer (was it truncated?)",
			     image->virtual_size, data_size);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vhd_check_header (VmiImage *image, const guint8 *header, GError **error)
{
	guint32 stored = vhd_get_be32 (header + VHD_H_CHECKSUM);
	guint32 computed = vhd_checksum (header, VHD_DYN_HEADER_SIZE, VHD_H_CHECKSUM);

	if (memcmp (header + VHD_H_COOKIE, "cxsparse", 8) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the footer points to a dynamic disk header at offset " VHD_FMT_X
			     ", but there is no \"cxsparse\" cookie there",
			     image->header_offset);
		return FALSE;
	}
	if (stored != computed) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the dynamic disk header at offset " VHD_FMT_X " has checksum 0x%08x "
			     "but its content gives 0x%08x",
			     image->header_offset, stored, computed);
		return FALSE;
	}
	return TRUE;
}

/* Block size: a power of two of at least one sector, as the specification and qemu require. */
static gboolean
vhd_check_block_size (VmiImage *image, GError **error)
{
	guint32 bs = image->block_size;
	guint32 sectors_per_block;

	if (bs < VHD_SECTOR_SIZE || (bs & (bs - 1)) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the dynamic disk header at offset " VHD_FMT_X " gives a block size "
			     "of %u bytes, which is not a power of two of at least 512",
			     image->header_offset, bs);
		return FALSE;
	}
	/* One bit per sector, padded to whole sectors (qemu gets this wrong below 4 KiB blocks). */
	sectors_per_block = bs / VHD_SECTOR_SIZE;
	image->bitmap_size = ((sectors_per_block + 7) / 8 + VHD_SECTOR_SIZE - 1) &
			     ~(VHD_SECTOR_SIZE - 1);
	return TRUE;
}

static gboolean
vhd_check_bat_geometry (VmiImage *image, GError **error)
{
	guint64 entries = image->max_table_entries;
	guint64 bs = image->block_size;
	guint64 spec_max = (VHD_MAX_SECTORS * VHD_SECTOR_SIZE + bs - 1) / bs;
	guint64 bat_bytes = entries * 4;
	guint64 bat_end;

	if (entries > spec_max) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the dynamic disk header gives max_table_entries " VHD_FMT_U ", but "
			     "with %u-byte blocks even the largest VHD (2040 GiB) needs only "
			     VHD_FMT_U,
			     entries, image->block_size, spec_max);
		return FALSE;
	}
	if (!g_uint64_checked_add (&bat_end, image->bat_offset, bat_bytes) ||
	    bat_end > image->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the block allocation table at offset " VHD_FMT_X " (" VHD_FMT_U
			     " entries, " VHD_FMT_U " bytes) lies beyond the end of the " VHD_FMT_U
			     "-byte file",
			     image->bat_offset, entries, bat_bytes, image->file_size);
		return FALSE;
	}
	if (bat_bytes > VHD_MAX_BAT_BYTES) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the block allocation table has " VHD_FMT_U " bytes, more than the "
			     "%u bytes this reader holds in memory",
			     bat_bytes, VHD_MAX_BAT_BYTES);
		return FALSE;
	}
	if (entries * bs < image->virtual_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the block allocation table has " VHD_FMT_U " entries of %u bytes, "
			     "too few for the " VHD_FMT_U "-byte disk",
			     entries, image->block_size, image->virtual_size);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vhd_load_bat (VmiImage *image, GError **error)
{
	g_autofree guint8 *raw = NULL;
	guint64 span = (guint64) image->bitmap_size + image->block_size;

	image->n_bat = image->max_table_entries;
	raw = g_malloc ((gsize) image->n_bat * 4 + 1);
	if (!vmi_range_pread_all (&image->file, raw, (gsize) image->n_bat * 4, image->bat_offset, "VHD file",
			    error))
		return FALSE;
	image->bat = g_new (guint32, (gsize) image->n_bat + 1);
	/* As qemu does, every entry must point inside the file, not only those in use. */
	for (guint32 i = 0; i < image->n_bat; i++) {
		guint32 entry = vhd_get_be32 (raw + (gsize) i * 4);
		guint64 start = (guint64) entry * VHD_SECTOR_SIZE;

		image->bat[i] = entry;
		if (entry == VHD_BAT_UNUSED)
			continue;
		if (start + span > image->file_size) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "block %u at offset " VHD_FMT_X " (" VHD_FMT_U " bytes with its "
				     "sector bitmap) lies beyond the end of the " VHD_FMT_U
				     "-byte file (was it truncated?)",
				     i, start, span, image->file_size);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
vhd_open_dynamic (VmiImage *image, GError **error)
{
	guint8 header[VHD_DYN_HEADER_SIZE];
	guint64 end;

	image->header_offset = image->footer.data_offset;
	if (!g_uint64_checked_add (&end, image->header_offset, VHD_DYN_HEADER_SIZE) ||
	    end > image->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the footer's data offset " VHD_FMT_X " puts the 1024-byte dynamic "
			     "disk header beyond the end of the " VHD_FMT_U "-byte file",
			     image->header_offset, image->file_size);
		return FALSE;
	}
	if (!vmi_range_pread_all (&image->file, header, sizeof header, image->header_offset, "VHD file",
			    error))
		return FALSE;
	if (!vhd_check_header (image, header, error))
		return FALSE;

	image->bat_offset = vhd_get_be64 (header + VHD_H_TABLE_OFFSET);
	image->max_table_entries = vhd_get_be32 (header + VHD_H_MAX_TABLE_ENTRIES);
	image->block_size = vhd_get_be32 (header + VHD_H_BLOCK_SIZE);
	if (!vhd_check_block_size (image, error) || !vhd_check_bat_geometry (image, error) ||
	    !vhd_load_bat (image, error))
		return FALSE;
	image->bitmap = g_malloc (image->bitmap_size);
	image->bitmap_block = G_MAXUINT32;

	if (image->footer.disk_type == VHD_TYPE_DIFFERENCING)
		return vhd_parse_parent (image, header, error);
	return TRUE;
}

VmiImage *
vhd_open (const VmiOpenArgs *args, GError **error)
{
	g_autoptr(VmiImage) image = g_new0 (VmiImage, 1);

	if (!vmi_file_range_init (&image->file, args, error))
		return NULL;
	image->fd = -1;
	image->file_size = args->file_size;
	if (!vhd_find_footer (image, error) || !vhd_check_disk_type (image, error) ||
	    !vhd_compute_size (image, error))
		return NULL;
	if (image->footer.disk_type == VHD_TYPE_FIXED ? !vhd_open_fixed (image, error)
						       : !vhd_open_dynamic (image, error))
		return NULL;
	return g_steal_pointer (&image);
}

static void
vhd_info_dynamic (VmiImage *image, VmiImageInfo *info)
{
	GVariantDict *d = info->format_specific;
	guint32 allocated = 0;

	info->cluster_size = image->block_size;
	for (guint32 i = 0; i < image->n_bat; i++)
		allocated += image->bat[i] != VHD_BAT_UNUSED;
	g_variant_dict_insert (d, "block-size", "u", image->block_size);
	g_variant_dict_insert (d, "max-table-entries", "u", image->max_table_entries);
	g_variant_dict_insert (d, "allocated-blocks", "u", allocated);
	g_variant_dict_insert (d, "table-offset", "t", image->bat_offset);

	if (image->footer.disk_type != VHD_TYPE_DIFFERENCING)
		return;
	if (image->parent_name != NULL)
		g_variant_dict_insert (d, "parent-name", "s", image->parent_name);
	g_variant_dict_insert (d, "parent-uuid", "s", image->parent_uuid);
	for (guint i = 0; i < image->parent_paths->len; i++)
		g_ptr_array_add (info->references,
				 g_strdup (g_ptr_array_index (image->parent_paths, i)));
	g_variant_dict_insert (d, "parent-locators", "^as",
			       (char **) image->parent_locators->pdata);
	g_ptr_array_add (info->unsafe_reasons,
			 g_strdup_printf ("This is a differencing VHD: its content is only the "
					  "changes to the parent image \"%s\", which is never "
					  "opened, so the disk cannot be read or converted on "
					  "its own.",
					  image->parent_name != NULL ? image->parent_name
								     : "(unnamed)"));
}

gboolean
vhd_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	const VhdFooter *f = &image->footer;
	GVariantDict *d = info->format_specific;
	g_autofree char *app = vhd_fourcc_to_string (f->creator_app);
	g_autofree char *os = vhd_fourcc_to_string (f->creator_os);
	g_autofree char *uuid = vhd_uuid_to_string (f->uuid);
	g_autofree char *version = g_strdup_printf ("%u.%u", f->creator_version >> 16,
						    f->creator_version & 0xffff);

	info->virtual_size = image->virtual_size;
	info->subformat = vhd_disk_type_name (f->disk_type);
	g_variant_dict_insert (d, "disk-type", "s", info->subformat);
	g_variant_dict_insert (d, "creator-app", "s", app);
	g_variant_dict_insert (d, "creator-version", "s", version);
	g_variant_dict_insert (d, "host-os", "s", os);
	g_variant_dict_insert (d, "cylinders", "u", (guint32) f->cylinders);
	g_variant_dict_insert (d, "heads", "u", (guint32) f->heads);
	g_variant_dict_insert (d, "sectors", "u", (guint32) f->sectors);
	g_variant_dict_insert (d, "current-size", "t", f->current_size);
	g_variant_dict_insert (d, "original-size", "t", f->original_size);
	g_variant_dict_insert (d, "size-source", "s",
			       image->size_from_chs ? "chs" : "current-size");
	g_variant_dict_insert (d, "uuid", "s", uuid);
	g_variant_dict_insert (d, "timestamp", "t",
			       (guint64) f->timestamp + VHD_TIMESTAMP_BASE);
	g_variant_dict_insert (d, "saved-state", "b", f->saved_state);
	g_variant_dict_insert (d, "footer", "s", image->footer_source);
	if (f->disk_type != VHD_TYPE_FIXED)
		vhd_info_dynamic (image, info);
	return TRUE;
}

static gboolean
vhd_refuse_differencing (VmiImage *image, GError **error)
{
	if (image->footer.disk_type != VHD_TYPE_DIFFERENCING)
		return FALSE;
	g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
		     "reading a differencing VHD needs its parent \"%s\", and parents are "
		     "never opened",
		     image->parent_name != NULL ? image->parent_name : "(unnamed)");
	return TRUE;
}

gboolean
vhd_load_bitmap (VmiImage *image, guint32 block, GError **error)
{
	if (image->bitmap_block == block)
		return TRUE;
	image->bitmap_block = G_MAXUINT32;
	if (!vmi_range_pread_all (&image->file, image->bitmap, image->bitmap_size,
			    (guint64) image->bat[block] * VHD_SECTOR_SIZE, "VHD file", error))
		return FALSE;
	image->bitmap_block = block;
	return TRUE;
}

/* Sector bitmaps put sector 0 in the most significant bit of byte 0. */
static gboolean
vhd_bitmap_bit (const VmiImage *image, guint32 sector)
{
	return (image->bitmap[sector / 8] >> (7 - sector % 8)) & 1;
}

/* The number of sectors from first (inclusive) that share its bit, up to limit (exclusive). */
static guint32
vhd_bitmap_run (const VmiImage *image, guint32 first, guint32 limit, gboolean *set)
{
	guint32 s = first + 1;

	*set = vhd_bitmap_bit (image, first);
	while (s < limit && vhd_bitmap_bit (image, s) == *set)
		s++;
	return s - first;
}

/* Extent at offset inside one allocated block, never crossing the block's end. */
static gboolean
vhd_block_extent (VmiImage *image, guint64 offset, guint64 max_length, gboolean *set,
		  guint64 *length, GError **error)
{
	guint32 block = (guint32) (offset / image->block_size);
	guint64 in_block = offset % image->block_size;
	guint64 limit_bytes = MIN ((guint64) image->block_size, in_block + max_length);
	guint32 first = (guint32) (in_block / VHD_SECTOR_SIZE);
	guint32 limit = (guint32) ((limit_bytes + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE);
	guint32 run;

	if (!vhd_load_bitmap (image, block, error))
		return FALSE;
	run = vhd_bitmap_run (image, first, limit, set);
	*length = MIN ((guint64) (first + run) * VHD_SECTOR_SIZE, limit_bytes) - in_block;
	return TRUE;
}

gboolean
vhd_read (VmiImage *image, guint64 offset, void *buf, gsize len, GError **error)
{
	guint8 *p = buf;
	guint64 end;

	if (vhd_refuse_differencing (image, error))
		return FALSE;
	if (!g_uint64_checked_add (&end, offset, len) || end > image->virtual_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "a read of %" G_GSIZE_FORMAT " bytes at offset %" G_GUINT64_FORMAT
			     " goes past the end of the %" G_GUINT64_FORMAT "-byte disk",
			     len, offset, image->virtual_size);
		return FALSE;
	}
	if (image->footer.disk_type == VHD_TYPE_FIXED)
		return vmi_range_pread_all (&image->file, buf, len, offset, "VHD file", error);

	while (len > 0) {
		guint32 block = (guint32) (offset / image->block_size);
		guint64 chunk = MIN ((guint64) len,
				     image->block_size - offset % image->block_size);
		gboolean set = FALSE;

		if (block < image->n_bat && image->bat[block] != VHD_BAT_UNUSED &&
		    !vhd_block_extent (image, offset, chunk, &set, &chunk, error))
			return FALSE;
		if (set) {
			guint64 file_offset = (guint64) image->bat[block] * VHD_SECTOR_SIZE +
					      image->bitmap_size + offset % image->block_size;

			if (!vmi_range_pread_all (&image->file, p, (gsize) chunk, file_offset, "VHD file",
					    error))
				return FALSE;
		} else {
			memset (p, 0, (gsize) chunk);
		}
		p += chunk;
		len -= (gsize) chunk;
		offset += chunk;
	}
	return TRUE;
}

gboolean
vhd_block_status (VmiImage *image, guint64 offset, guint64 max_length, VmiExtent *extent,
		  GError **error)
{
	guint64 remaining;
	guint64 length = 0;
	gboolean set = FALSE;

	if (vhd_refuse_differencing (image, error))
		return FALSE;
	if (offset >= image->virtual_size || max_length == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "no block status at offset %" G_GUINT64_FORMAT " (length %"
			     G_GUINT64_FORMAT ") of a %" G_GUINT64_FORMAT "-byte disk",
			     offset, max_length, image->virtual_size);
		return FALSE;
	}
	remaining = MIN (max_length, image->virtual_size - offset);
	if (image->footer.disk_type == VHD_TYPE_FIXED) {
		extent->kind = VMI_EXTENT_DATA;
		extent->length = remaining;
		return TRUE;
	}
	/* Unallocated blocks in a row make one hole; an allocated block is split by its bitmap. */
	while (length < remaining) {
		guint64 at = offset + length;
		guint32 block = (guint32) (at / image->block_size);
		guint64 chunk = MIN (remaining - length,
				     image->block_size - at % image->block_size);

		if (block < image->n_bat && image->bat[block] != VHD_BAT_UNUSED) {
			if (length > 0)
				break;
			if (!vhd_block_extent (image, at, chunk, &set, &length, error))
				return FALSE;
			break;
		}
		length += chunk;
	}
	extent->kind = set ? VMI_EXTENT_DATA : VMI_EXTENT_HOLE;
	extent->length = length;
	return TRUE;
}
