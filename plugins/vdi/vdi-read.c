/* Reading VDI 1.1 images: header validation, the block map, reads and block status. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vdi-private.h"

/* The block map is read in pieces this big so a cancelled open stops soon. */
#define VDI_BMAP_CHUNK (1024u * 1024u)
/* block_status looks at most this many pieces per call; the caller asks again for the rest. */
#define VDI_STATUS_MAX_PIECES 4096u

#define VDI_CORRUPT(error, ...) g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE, __VA_ARGS__)
#define VDI_UNSUPPORTED(error, ...) \
	g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED, __VA_ARGS__)

static gboolean
vdi_has_parent (const VmiImage *self)
{
	return self->header.image_type == VDI_TYPE_UNDO || self->header.image_type == VDI_TYPE_DIFF;
}

/* What identifies the file at all: checked before anything else is believed. */
static gboolean
vdi_check_pre_header (const VdiHeader *h, guint64 file_size, GError **error)
{
	if (h->signature != VDI_SIGNATURE) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "not a VDI image: the signature at offset 0x40 is 0x%08x, not 0x%08x",
			     h->signature, VDI_SIGNATURE);
		return FALSE;
	}
	if (h->version != VDI_VERSION_1_1) {
		VDI_UNSUPPORTED (error,
				 "VDI version %u.%u is not supported: only version 1.1 images (what "
				 "VirtualBox and qemu-img write) can be read",
				 h->version >> 16, h->version & 0xffff);
		return FALSE;
	}
	if (file_size < VDI_PRE_HEADER_SIZE + VDI_HEADER1_SIZE) {
		VDI_CORRUPT (error,
			     "the VDI header is truncated: the file is %" G_GUINT64_FORMAT " bytes, "
			     "a version 1.1 header needs %u",
			     file_size, VDI_PRE_HEADER_SIZE + VDI_HEADER1_SIZE);
		return FALSE;
	}
	if (h->header_size < VDI_HEADER1_SIZE) {
		VDI_CORRUPT (error,
			     "the VDI header size is 0x%x bytes, less than the 0x%x of a version 1.1 "
			     "header",
			     h->header_size, VDI_HEADER1_SIZE);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vdi_check_type_and_geometry (const VdiHeader *h, GError **error)
{
	if (vdi_image_type_name (h->image_type) == NULL) {
		VDI_CORRUPT (error,
			     "the VDI image type is %u; known types are 1 (normal), 2 (fixed), "
			     "3 (undo) and 4 (diff)",
			     h->image_type);
		return FALSE;
	}
	if (h->sector_size != VDI_SECTOR_SIZE) {
		VDI_UNSUPPORTED (error, "the VDI sector size is %u bytes; only %u is supported",
				 h->sector_size, VDI_SECTOR_SIZE);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vdi_check_blocks (const VdiHeader *h, guint64 *virtual_size, GError **error)
{
	guint64 needed;

	if (h->block_size < VDI_SECTOR_SIZE || (h->block_size & (h->block_size - 1)) != 0) {
		VDI_CORRUPT (error,
			     "the VDI block size is %u bytes; it must be a power of two of at least "
			     "%u (normally 1048576)",
			     h->block_size, VDI_SECTOR_SIZE);
		return FALSE;
	}
	if (h->block_size > VDI_MAX_BLOCK_SIZE) {
		VDI_UNSUPPORTED (error, "the VDI block size is %u bytes; at most %u is supported",
				 h->block_size, VDI_MAX_BLOCK_SIZE);
		return FALSE;
	}
	if (h->block_extra != 0) {
		VDI_UNSUPPORTED (error,
				 "the VDI blocks carry %u bytes of extra data each; only images "
				 "without block extra data are supported",
				 h->block_extra);
		return FALSE;
	}
	/* qemu accepts odd sizes ('VBoxManage convertfromraw' makes them) rounded up to a sector. */
	if (h->disk_size > G_MAXUINT64 - (VDI_SECTOR_SIZE - 1)) {
		VDI_CORRUPT (error, "the VDI disk size %" G_GUINT64_FORMAT " is absurd", h->disk_size);
		return FALSE;
	}
	*virtual_size = (h->disk_size + VDI_SECTOR_SIZE - 1) / VDI_SECTOR_SIZE * VDI_SECTOR_SIZE;
	needed = h->disk_size / h->block_size + (h->disk_size % h->block_size != 0);
	/* VirtualBox and qemu both write exactly the blocks the disk size needs. */
	if (needed != h->blocks_in_image) {
		VDI_CORRUPT (error,
			     "the VDI header says the disk has %u blocks, but a disk of "
			     "%" G_GUINT64_FORMAT " bytes in blocks of %u bytes has %" G_GUINT64_FORMAT,
			     h->blocks_in_image, h->disk_size, h->block_size, needed);
		return FALSE;
	}
	if (h->blocks_in_image > VDI_MAX_BLOCKS) {
		VDI_UNSUPPORTED (error, "the VDI disk has %u blocks; at most %u are supported",
				 h->blocks_in_image, VDI_MAX_BLOCKS);
		return FALSE;
	}
	if (h->blocks_allocated > h->blocks_in_image) {
		VDI_CORRUPT (error,
			     "the VDI header says %u blocks are allocated, more than the %u blocks "
			     "of the disk",
			     h->blocks_allocated, h->blocks_in_image);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vdi_check_offsets (const VdiHeader *h, guint64 file_size, GError **error)
{
	guint64 header_end = (guint64) VDI_PRE_HEADER_SIZE + h->header_size;
	guint64 bmap_bytes = (guint64) h->blocks_in_image * sizeof (guint32);
	guint64 bmap_end = h->offset_bmap + bmap_bytes;

	if (header_end > file_size) {
		VDI_CORRUPT (error,
			     "the VDI header size 0x%x puts its end at offset 0x%" G_GINT64_MODIFIER
			     "x, beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     h->header_size, header_end, file_size);
		return FALSE;
	}
	if (h->offset_bmap < header_end) {
		VDI_CORRUPT (error,
			     "the VDI block map at offset 0x%x overlaps the header, which ends at "
			     "0x%" G_GINT64_MODIFIER "x",
			     h->offset_bmap, header_end);
		return FALSE;
	}
	/* qemu refuses these too; VirtualBox only says they "should" be aligned. */
	if (h->offset_bmap % VDI_SECTOR_SIZE != 0) {
		VDI_UNSUPPORTED (error,
				 "the VDI block map offset 0x%x is not a multiple of %u; unaligned "
				 "block maps are not supported",
				 h->offset_bmap, VDI_SECTOR_SIZE);
		return FALSE;
	}
	if (h->offset_data % VDI_SECTOR_SIZE != 0) {
		VDI_UNSUPPORTED (error,
				 "the VDI data offset 0x%x is not a multiple of %u; unaligned data "
				 "is not supported",
				 h->offset_data, VDI_SECTOR_SIZE);
		return FALSE;
	}
	if (bmap_bytes > VDI_MAX_BMAP_BYTES) {
		VDI_UNSUPPORTED (error,
				 "the VDI block map is %" G_GUINT64_FORMAT " bytes; at most %u are "
				 "supported (a disk of %" G_GUINT64_FORMAT " bytes)",
				 bmap_bytes, VDI_MAX_BMAP_BYTES, h->disk_size);
		return FALSE;
	}
	if (bmap_end > file_size) {
		VDI_CORRUPT (error,
			     "the VDI block map at offset 0x%x (%" G_GUINT64_FORMAT " bytes) lies "
			     "beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     h->offset_bmap, bmap_bytes, file_size);
		return FALSE;
	}
	if (h->offset_data < bmap_end) {
		VDI_CORRUPT (error,
			     "the VDI data at offset 0x%x overlaps the block map, which ends at "
			     "0x%" G_GINT64_MODIFIER "x",
			     h->offset_data, bmap_end);
		return FALSE;
	}
	if (h->offset_data > file_size) {
		VDI_CORRUPT (error,
			     "the VDI data offset 0x%x lies beyond the end of the %" G_GUINT64_FORMAT
			     "-byte file",
			     h->offset_data, file_size);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vdi_read_bmap (VmiImage *self, GCancellable *cancellable, GError **error)
{
	const VdiHeader *h = &self->header;
	gsize bytes = (gsize) h->blocks_in_image * sizeof (guint32);

	if (bytes == 0)
		return TRUE;
	/* Bounded by VDI_MAX_BMAP_BYTES and by the file size (both checked). */
	self->bmap = g_try_malloc (bytes);
	if (self->bmap == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "not enough memory for the %" G_GSIZE_FORMAT "-byte VDI block map", bytes);
		return FALSE;
	}
	for (gsize done = 0; done < bytes; done += VDI_BMAP_CHUNK) {
		if (g_cancellable_set_error_if_cancelled (cancellable, error))
			return FALSE;
		if (!vmi_range_pread_all (&self->file, (guint8 *) self->bmap + done,
				    MIN (VDI_BMAP_CHUNK, bytes - done), h->offset_bmap + done,
				    "VDI image", error))
			return FALSE;
	}
	for (guint32 i = 0; i < h->blocks_in_image; i++)
		self->bmap[i] = GUINT32_FROM_LE (self->bmap[i]);
	return TRUE;
}

VmiImage *
vdi_open (const VmiOpenArgs *args, GError **error)
{
	guint8 buf[VDI_HEADER_READ_SIZE] = { 0 };
	VdiHeader h;
	guint64 virtual_size = 0;
	VmiFileRange file;
	VmiImage *self;

	if (args->file_size < VDI_PRE_HEADER_SIZE) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "not a VDI image: the %" G_GUINT64_FORMAT "-byte file is shorter than "
			     "the %u-byte VDI pre-header",
			     args->file_size, VDI_PRE_HEADER_SIZE);
		return NULL;
	}
	if (!vmi_file_range_init (&file, args, error) ||
	    !vmi_range_pread_all (&file, buf, MIN (args->file_size, sizeof buf), 0, "VDI image",
				  error))
		return NULL;
	vdi_header_decode (buf, &h);
	if (!vdi_check_pre_header (&h, args->file_size, error) ||
	    !vdi_check_type_and_geometry (&h, error) || !vdi_check_blocks (&h, &virtual_size, error) ||
	    !vdi_check_offsets (&h, args->file_size, error))
		return NULL;

	self = g_new0 (VmiImage, 1);
	self->fd = -1;
	self->file = file;
	self->file_size = args->file_size;
	self->header = h;
	self->virtual_size = virtual_size;
	if (!vdi_read_bmap (self, args->cancellable, error)) {
		vdi_close (self);
		return NULL;
	}
	return self;
}

static void
dict_add_string (GVariantDict *dict, const char *key, const char *bytes, gsize max)
{
	g_autofree char *valid = g_utf8_make_valid (bytes, (gssize) strnlen (bytes, max));

	g_strchomp (valid);
	if (*valid != '\0')
		g_variant_dict_insert (dict, key, "s", valid);
}

static void
dict_add_uuid (GVariantDict *dict, const char *key, const guint8 *raw)
{
	g_autofree char *str = vdi_uuid_to_string (raw);

	g_variant_dict_insert (dict, key, "s", str);
}

static void
dict_add_u64 (GVariantDict *dict, const char *key, guint64 value)
{
	g_variant_dict_insert (dict, key, "t", value);
}

gboolean
vdi_get_info (VmiImage *self, VmiImageInfo *info, GError **error)
{
	const VdiHeader *h = &self->header;
	GVariantDict *d = info->format_specific;
	g_autofree char *version = g_strdup_printf ("%u.%u", h->version >> 16, h->version & 0xffff);

	info->virtual_size = self->virtual_size;
	info->cluster_size = h->block_size;
	switch (h->image_type) {
	case VDI_TYPE_NORMAL:
		info->subformat = "dynamic";
		break;
	case VDI_TYPE_FIXED:
		info->subformat = "static";
		break;
	default:
		info->subformat = vdi_image_type_name (h->image_type);
		break;
	}

	g_variant_dict_insert (d, "version", "s", version);
	g_variant_dict_insert (d, "image-type", "s", vdi_image_type_name (h->image_type));
	dict_add_string (d, "text", h->text, VDI_TEXT_SIZE);
	dict_add_string (d, "comment", h->comment, VDI_COMMENT_SIZE);
	dict_add_u64 (d, "header-size", h->header_size);
	dict_add_u64 (d, "image-flags", h->image_flags);
	dict_add_u64 (d, "block-map-offset", h->offset_bmap);
	dict_add_u64 (d, "data-offset", h->offset_data);
	dict_add_u64 (d, "disk-size", h->disk_size);
	dict_add_u64 (d, "sector-size", h->sector_size);
	dict_add_u64 (d, "block-size", h->block_size);
	dict_add_u64 (d, "block-extra-size", h->block_extra);
	dict_add_u64 (d, "blocks-in-image", h->blocks_in_image);
	dict_add_u64 (d, "blocks-allocated", h->blocks_allocated);
	dict_add_u64 (d, "legacy-cylinders", h->cylinders);
	dict_add_u64 (d, "legacy-heads", h->heads);
	dict_add_u64 (d, "legacy-sectors", h->sectors);
	if (h->has_lchs) {
		dict_add_u64 (d, "lchs-cylinders", h->lchs_cylinders);
		dict_add_u64 (d, "lchs-heads", h->lchs_heads);
		dict_add_u64 (d, "lchs-sectors", h->lchs_sectors);
	}
	dict_add_uuid (d, "uuid-image", h->uuid_image);
	dict_add_uuid (d, "uuid-last-snap", h->uuid_last_snap);
	dict_add_uuid (d, "uuid-link", h->uuid_link);
	dict_add_uuid (d, "uuid-parent", h->uuid_parent);

	if (vdi_has_parent (self)) {
		/* The parent is named only by its UUID (uuid-link); VirtualBox finds it in its registry. */
		g_autofree char *parent = vdi_uuid_to_string (h->uuid_link);

		g_ptr_array_add (info->references, g_strdup_printf ("urn:uuid:%s", parent));
		g_ptr_array_add (info->unsafe_reasons,
				 g_strdup_printf ("This is a VirtualBox %s image: it stores only the "
						  "changes to its parent image %s, which vmimaged "
						  "does not look for, so its content cannot be read.",
						  h->image_type == VDI_TYPE_DIFF ? "differencing"
										  : "undo",
						  parent));
	}
	return TRUE;
}

/*
 * The file offset of virtual block `block`, or G_MAXUINT64 for a hole or zero block (kind set).
 * Entries are checked here rather than at open so a damaged block map still inspects.
 */
static gboolean
vdi_map_block (VmiImage *self, guint64 block, VmiExtentKind *kind, guint64 *file_offset,
	       GError **error)
{
	const VdiHeader *h = &self->header;
	guint32 entry = self->bmap[block];
	guint64 start;

	if (entry == VDI_BLOCK_FREE) {
		*kind = VMI_EXTENT_HOLE;
		return TRUE;
	}
	if (entry == VDI_BLOCK_ZERO) {
		*kind = VMI_EXTENT_ZERO;
		return TRUE;
	}
	if (entry >= h->blocks_allocated) {
		VDI_CORRUPT (error,
			     "VDI block %" G_GUINT64_FORMAT " (virtual offset 0x%" G_GINT64_MODIFIER
			     "x) points to image block %u, but only %u blocks are allocated",
			     block, block * h->block_size, entry, h->blocks_allocated);
		return FALSE;
	}
	/* entry < 2^30 and block_size <= 2^28: no overflow. */
	start = h->offset_data + (guint64) entry * h->block_size;
	if (start + h->block_size > self->file_size) {
		VDI_CORRUPT (error,
			     "VDI block %" G_GUINT64_FORMAT " is stored at offset 0x%" G_GINT64_MODIFIER
			     "x, which lies beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     block, start, self->file_size);
		return FALSE;
	}
	*kind = VMI_EXTENT_DATA;
	*file_offset = start;
	return TRUE;
}

static gboolean
vdi_check_readable (VmiImage *self, GError **error)
{
	if (!vdi_has_parent (self))
		return TRUE;
	VDI_UNSUPPORTED (error,
			 "reading VirtualBox %s images is not supported: their content depends on "
			 "a parent image",
			 vdi_image_type_name (self->header.image_type));
	return FALSE;
}

gboolean
vdi_read (VmiImage *self, guint64 offset, void *buf, gsize len, GError **error)
{
	guint8 *out = buf;
	guint32 bs = self->header.block_size;

	if (!vdi_check_readable (self, error))
		return FALSE;
	if (offset > self->virtual_size || len > self->virtual_size - offset) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "read of %" G_GSIZE_FORMAT " bytes at 0x%" G_GINT64_MODIFIER "x is beyond "
			     "the %" G_GUINT64_FORMAT "-byte disk",
			     len, offset, self->virtual_size);
		return FALSE;
	}
	while (len > 0) {
		guint64 block = offset / bs;
		guint64 in_block = offset % bs;
		gsize n = (gsize) MIN ((guint64) len, bs - in_block);
		VmiExtentKind kind;
		guint64 file_offset = 0;

		if (!vdi_map_block (self, block, &kind, &file_offset, error))
			return FALSE;
		if (kind == VMI_EXTENT_DATA) {
			if (!vmi_range_pread_all (&self->file, out, n, file_offset + in_block, "VDI image",
					    error))
				return FALSE;
		} else {
			memset (out, 0, n);
		}
		out += n;
		offset += n;
		len -= n;
	}
	return TRUE;
}

/*
 * The kind of the run at virtual offset `offset` inside one block and its length up to the
 * block's end. Holes in the file under an allocated block (static images, or blocks written
 * only in part) read as zeros, so they are reported as ZERO and a copy can skip them.
 */
static gboolean
vdi_piece (VmiImage *self, guint64 offset, VmiExtentKind *kind, guint64 *length, GError **error)
{
	guint32 bs = self->header.block_size;
	guint64 in_block = offset % bs;
	guint64 rest = bs - in_block;
	guint64 file_offset = 0;
	VmiExtent file_extent;

	if (!vdi_map_block (self, offset / bs, kind, &file_offset, error))
		return FALSE;
	*length = rest;
	if (*kind != VMI_EXTENT_DATA)
		return TRUE;

	/* vdi_map_block checked that the block lies in the file */
	if (!vmi_range_block_status (&self->file, file_offset + in_block, rest, &file_extent, error))
		return FALSE;
	if (file_extent.kind != VMI_EXTENT_DATA)
		*kind = VMI_EXTENT_ZERO;
	*length = file_extent.length;
	return TRUE;
}

gboolean
vdi_block_status (VmiImage *self, guint64 offset, guint64 max_length, VmiExtent *extent,
		  GError **error)
{
	guint64 end, pos = offset;

	if (!vdi_check_readable (self, error))
		return FALSE;
	if (offset >= self->virtual_size || max_length == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "block status at 0x%" G_GINT64_MODIFIER "x is beyond the "
			     "%" G_GUINT64_FORMAT "-byte disk",
			     offset, self->virtual_size);
		return FALSE;
	}
	end = offset + MIN (max_length, self->virtual_size - offset);
	for (guint i = 0; i < VDI_STATUS_MAX_PIECES && pos < end; i++) {
		VmiExtentKind kind;
		guint64 length;
		g_autoptr(GError) local_error = NULL;

		if (!vdi_piece (self, pos, &kind, &length, &local_error)) {
			/* A bad block after a good run: report the run, fail when asked for it. */
			if (pos > offset)
				break;
			g_propagate_error (error, g_steal_pointer (&local_error));
			return FALSE;
		}
		if (pos > offset && kind != extent->kind)
			break;
		extent->kind = kind;
		pos += MIN (length, end - pos);
	}
	extent->length = pos - offset;
	return TRUE;
}

void
vdi_close (VmiImage *self)
{
	if (self == NULL)
		return;
	g_free (self->bmap);
	g_free (self);
}
