/*
 * Writing VDI 1.1 images laid out as qemu's vdi_create does, so qemu-img and VirtualBox read
 * them: a 512-byte header area, the block map at 0x200, data from the next sector on, 1 MiB
 * blocks. A dynamic image allocates blocks in the order they are first written; a static one
 * has every block allocated in place, with the file sized by ftruncate so it stays sparse.
 *
 * Sizes: the disk size is rounded up to a multiple of 512 bytes, not of the block size, exactly
 * as qemu-img does (a 3000000-byte source becomes a 3000320-byte disk in 3 blocks); the reader
 * rounds odd sizes found in other images the same way, so both report qemu-img's virtual size.
 */
#include <string.h>

#include "vdi-private.h"

#define VDI_WRITER_TEXT "<<< vmimaged Virtual Disk Image >>>\n"

const VmiOptionSpec vdi_create_options[] = {
	{ "subformat", "s",
	  "\"dynamic\" (default: blocks are allocated as they are written) or \"static\" "
	  "(every block allocated up front; the file is kept sparse)" },
	{ NULL },
};

static gboolean
vdi_parse_subformat (GVariant *options, guint32 *image_type, GError **error)
{
	const char *subformat = "dynamic";

	if (options != NULL)
		g_variant_lookup (options, "subformat", "&s", &subformat);
	if (g_strcmp0 (subformat, "dynamic") == 0) {
		*image_type = VDI_TYPE_NORMAL;
		return TRUE;
	}
	if (g_strcmp0 (subformat, "static") == 0) {
		*image_type = VDI_TYPE_FIXED;
		return TRUE;
	}
	g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
		     "unknown VDI subformat \"%s\": use \"dynamic\" or \"static\"", subformat);
	return FALSE;
}

VmiImage *
vdi_create (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	const guint64 max_size = (guint64) (VDI_MAX_BMAP_BYTES / sizeof (guint32)) *
				 VDI_DEFAULT_BLOCK_SIZE;
	guint32 image_type, blocks, bmap_area;
	guint64 size;
	VmiImage *self;
	VdiHeader *h;

	if (!vdi_parse_subformat (options, &image_type, error))
		return NULL;
	/* Like qemu-img, round up to whole sectors; the header keeps the rounded size. */
	if (virtual_size > max_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "a VDI image of %" G_GUINT64_FORMAT " bytes is too big: vmimaged writes "
			     "VDI images of at most %" G_GUINT64_FORMAT " bytes",
			     virtual_size, max_size);
		return NULL;
	}
	size = (virtual_size + VDI_SECTOR_SIZE - 1) / VDI_SECTOR_SIZE * VDI_SECTOR_SIZE;
	blocks = (guint32) ((size + VDI_DEFAULT_BLOCK_SIZE - 1) / VDI_DEFAULT_BLOCK_SIZE);
	bmap_area = (blocks * (guint32) sizeof (guint32) + VDI_SECTOR_SIZE - 1) / VDI_SECTOR_SIZE *
		    VDI_SECTOR_SIZE;

	self = g_new0 (VmiImage, 1);
	self->fd = fd;
	self->writing = TRUE;
	self->virtual_size = size;
	self->bmap_area = bmap_area;
	h = &self->header;
	g_strlcpy (h->text, VDI_WRITER_TEXT, sizeof h->text);
	h->signature = VDI_SIGNATURE;
	h->version = VDI_VERSION_1_1;
	h->header_size = VDI_HEADER1_SIZE;
	h->image_type = image_type;
	h->offset_bmap = VDI_HEADER_AREA;
	h->offset_data = VDI_HEADER_AREA + bmap_area;
	h->sector_size = VDI_SECTOR_SIZE;
	h->disk_size = size;
	h->block_size = VDI_DEFAULT_BLOCK_SIZE;
	h->blocks_in_image = blocks;
	vdi_uuid_generate (h->uuid_image);
	/* VirtualBox refuses a null modification UUID; qemu makes a random one too. */
	vdi_uuid_generate (h->uuid_last_snap);

	if (blocks > 0) {
		self->bmap = g_try_new (guint32, blocks);
		if (self->bmap == NULL) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "not enough memory for a VDI block map of %u blocks", blocks);
			vdi_close (self);
			return NULL;
		}
	}
	for (guint32 i = 0; i < blocks; i++)
		self->bmap[i] = image_type == VDI_TYPE_FIXED ? i : VDI_BLOCK_FREE;
	if (image_type == VDI_TYPE_FIXED) {
		h->blocks_allocated = blocks;
		if (!vdi_set_file_size (fd, h->offset_data + (guint64) blocks * h->block_size,
					error)) {
			vdi_close (self);
			return NULL;
		}
	}
	return self;
}

gboolean
vdi_write (VmiImage *self, guint64 offset, const void *buf, gsize len, GError **error)
{
	VdiHeader *h = &self->header;
	const guint8 *in = buf;

	g_return_val_if_fail (self->writing, FALSE);
	if (offset < self->next_write || offset > self->virtual_size ||
	    len > self->virtual_size - offset) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "VDI write of %" G_GSIZE_FORMAT " bytes at 0x%" G_GINT64_MODIFIER "x is "
			     "outside the %" G_GUINT64_FORMAT "-byte disk or before the previous write",
			     len, offset, self->virtual_size);
		return FALSE;
	}
	while (len > 0) {
		guint64 block = offset / h->block_size;
		guint64 in_block = offset % h->block_size;
		gsize n = (gsize) MIN ((guint64) len, h->block_size - in_block);

		/* Writes only increase, so untouched parts of a new block stay file holes (zeros). */
		if (self->bmap[block] == VDI_BLOCK_FREE)
			self->bmap[block] = h->blocks_allocated++;
		if (!vmi_pwrite_all (self->fd, in, n,
				     h->offset_data + (guint64) self->bmap[block] * h->block_size +
					     in_block,
				     "VDI image", error))
			return FALSE;
		in += n;
		offset += n;
		len -= n;
	}
	self->next_write = offset;
	return TRUE;
}

gboolean
vdi_finish (VmiImage *self, GError **error)
{
	VdiHeader *h = &self->header;
	guint8 header[VDI_HEADER_AREA];
	g_autofree guint32 *bmap = NULL;

	g_return_val_if_fail (self->writing, FALSE);
	/* Every allocated block lies wholly in the file, even the last one written in part. */
	if (!vdi_set_file_size (self->fd,
				h->offset_data + (guint64) h->blocks_allocated * h->block_size, error))
		return FALSE;
	vdi_header_encode (h, header);
	if (!vmi_pwrite_all (self->fd, header, sizeof header, 0, "VDI image", error))
		return FALSE;
	if (self->bmap_area == 0)
		return TRUE;
	bmap = g_try_malloc0 (self->bmap_area);
	if (bmap == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "not enough memory to write the %u-byte VDI block map", self->bmap_area);
		return FALSE;
	}
	for (guint32 i = 0; i < h->blocks_in_image; i++)
		bmap[i] = GUINT32_TO_LE (self->bmap[i]);
	return vmi_pwrite_all (self->fd, bmap, self->bmap_area, h->offset_bmap, "VDI image", error);
}
