/*
 * VHD measure: the exact size of the file our writer (vhd-write.c) makes, since qemu-img has no
 * measure for vpc. The disk is first sized as the writer sizes it (rounded up to a CHS
 * geometry, or to whole sectors with force_size).
 *
 * fixed: the disk and the 512-byte footer. dynamic: the footer copy and the dynamic header
 * (1536 bytes), the BAT rounded up to a sector, one 512-byte sector bitmap and 2 MiB of data per
 * block that holds data, and the footer. required counts the blocks the data touches,
 * fully_allocated every block. The writer allocates a block for every block it is given data
 * in, so a conversion's file is never larger than required, and equal to it when the engine
 * passes every data run on (it may drop runs that turn out to be zeros).
 */
#include "vhd-measure.h"
#include "vhd-private.h"
#include "vmi-measure.h"

#define VHD_MEASURE_BLOCK_SIZE (2u * 1024u * 1024u) /* the writer's */
#define VHD_MEASURE_BAT_OFFSET 1536u

gboolean
vhd_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
	     VmiMeasurement *out, GError **error)
{
	const char *subformat = "dynamic";
	gboolean force_size = FALSE;
	guint64 sectors, size, blocks, bat_bytes, used, fixed_part;
	guint16 c;
	guint8 h, s;

	if (options != NULL) {
		g_variant_lookup (options, "subformat", "&s", &subformat);
		g_variant_lookup (options, "force_size", "b", &force_size);
	}
	if (g_strcmp0 (subformat, "dynamic") != 0 && g_strcmp0 (subformat, "fixed") != 0)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "unknown VHD subformat \"%s\": use \"dynamic\" or \"fixed\"",
				    subformat),
		       FALSE;
	if (force_size)
		sectors = virtual_size / VHD_SECTOR_SIZE + (virtual_size % VHD_SECTOR_SIZE != 0);
	else
		vhd_geometry_round_up (virtual_size, &c, &h, &s, &sectors);
	if (sectors > VHD_MAX_SECTORS)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "a VHD holds at most 2040 GiB (%" G_GUINT64_FORMAT " bytes); %"
				    G_GUINT64_FORMAT " bytes were asked for",
				    VHD_MAX_SECTORS * VHD_SECTOR_SIZE, virtual_size),
		       FALSE;
	size = sectors * VHD_SECTOR_SIZE;
	if (!vmi_measure_count_units (virtual_size, data, n_data, VHD_MEASURE_BLOCK_SIZE, &used, error))
		return FALSE;
	if (g_strcmp0 (subformat, "fixed") == 0) {
		out->required = size + VHD_FOOTER_SIZE;
		out->fully_allocated = out->required;
		return TRUE;
	}
	blocks = size / VHD_MEASURE_BLOCK_SIZE + (size % VHD_MEASURE_BLOCK_SIZE != 0);
	bat_bytes = (blocks * 4 + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
	fixed_part = VHD_MEASURE_BAT_OFFSET + bat_bytes + VHD_FOOTER_SIZE;
	out->required = fixed_part + used * (VHD_SECTOR_SIZE + VHD_MEASURE_BLOCK_SIZE);
	out->fully_allocated = fixed_part + blocks * (VHD_SECTOR_SIZE + VHD_MEASURE_BLOCK_SIZE);
	return TRUE;
}
