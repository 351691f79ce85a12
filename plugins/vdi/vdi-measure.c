/*
 * VDI measure: the exact size of the file our writer (vdi-write.c) makes, since qemu-img has no
 * measure for vdi: the 512-byte header area, the block map rounded up to a sector, and 1 MiB per
 * block. dynamic: required counts the blocks the data touches (the writer allocates a block for
 * any data in it), fully_allocated every block. static: every block in both (the file is that
 * long, and sparse).
 */
#include "vdi-measure.h"
#include "vdi-private.h"
#include "vmi-measure.h"

gboolean
vdi_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
	     VmiMeasurement *out, GError **error)
{
	const guint64 max_size = (guint64) (VDI_MAX_BMAP_BYTES / sizeof (guint32)) *
				 VDI_DEFAULT_BLOCK_SIZE;
	const char *subformat = "dynamic";
	guint64 size, blocks, bmap_area, used, header;

	if (options != NULL)
		g_variant_lookup (options, "subformat", "&s", &subformat);
	if (g_strcmp0 (subformat, "dynamic") != 0 && g_strcmp0 (subformat, "static") != 0)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "unknown VDI subformat \"%s\": use \"dynamic\" or \"static\"",
				    subformat),
		       FALSE;
	if (virtual_size > max_size)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "a VDI image of %" G_GUINT64_FORMAT " bytes is too big: vmimaged "
				    "writes VDI images of at most %" G_GUINT64_FORMAT " bytes",
				    virtual_size, max_size),
		       FALSE;
	if (!vmi_measure_count_units (virtual_size, data, n_data, VDI_DEFAULT_BLOCK_SIZE, &used, error))
		return FALSE;
	size = (virtual_size + VDI_SECTOR_SIZE - 1) / VDI_SECTOR_SIZE * VDI_SECTOR_SIZE;
	blocks = (size + VDI_DEFAULT_BLOCK_SIZE - 1) / VDI_DEFAULT_BLOCK_SIZE;
	bmap_area = (blocks * 4 + VDI_SECTOR_SIZE - 1) / VDI_SECTOR_SIZE * VDI_SECTOR_SIZE;
	header = VDI_HEADER_AREA + bmap_area;
	out->fully_allocated = header + blocks * VDI_DEFAULT_BLOCK_SIZE;
	out->required = g_strcmp0 (subformat, "static") == 0 ? out->fully_allocated
							     : header + used * VDI_DEFAULT_BLOCK_SIZE;
	return TRUE;
}
