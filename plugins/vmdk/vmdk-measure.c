/*
 * VMDK measure, for the two subformats our writer (vmdk-writer.c) makes; qemu-img has no measure
 * for vmdk.
 *
 * monolithicSparse: exact. The header and the 20-sector descriptor, the redundant and primary
 * grain directories and every grain table (all reserved up front, as qemu lays them out),
 * rounded up to a grain, then 64 KiB per grain the data touches (required) or per grain of the
 * disk (fully_allocated).
 *
 * streamOptimized: an upper bound. Each grain is deflated, so its size depends on the data; the
 * bound takes the most deflate can make of a 64 KiB grain (zlib's compressBound) plus its 12-byte
 * marker, in whole sectors (129), per grain; a marker and a 4-sector table per grain table that
 * holds data; and the directory, footer and end-of-stream markers. For data that compresses
 * the file is much smaller than required; for random data it is within 0.5% of it.
 */
#include <string.h>
#include <zlib.h>

#include "vmdk-format.h"
#include "vmdk-measure.h"
#include "vmi-measure.h"

/* The writer's layout. */
#define GRAIN_SECTORS 128u
#define GRAIN_BYTES (GRAIN_SECTORS * VMDK_SECTOR)
#define GTES 512u
#define GT_SECTORS (GTES * 4u / VMDK_SECTOR)
#define DESC_END 21u /* header sector, then 20 sectors of descriptor */

static guint64
div_up (guint64 a, guint64 b)
{
	return a / b + (a % b != 0);
}

gboolean
vmdk_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
	      VmiMeasurement *out, GError **error)
{
	const char *subformat = "monolithicSparse";
	guint64 capacity, grains, gt_count, gd_sectors, used_grains, used_gts, head;

	if (options != NULL)
		g_variant_lookup (options, "subformat", "&s", &subformat);
	if (strcmp (subformat, "monolithicSparse") != 0 && strcmp (subformat, "streamOptimized") != 0)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "VMDK subformat '%s' cannot be written (monolithicSparse and "
				    "streamOptimized can)",
				    subformat),
		       FALSE;
	if (virtual_size > (G_GUINT64_CONSTANT (2) << 40) - (G_GUINT64_CONSTANT (64) << 20))
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "a %s VMDK holds less than 2 TiB; %" G_GUINT64_FORMAT " bytes is "
				    "too large",
				    subformat, virtual_size),
		       FALSE;
	if (!vmi_measure_count_units (virtual_size, data, n_data, GRAIN_BYTES, &used_grains, error) ||
	    !vmi_measure_count_units (virtual_size, data, n_data, (guint64) GRAIN_BYTES * GTES,
				      &used_gts, error))
		return FALSE;
	capacity = div_up (virtual_size, VMDK_SECTOR);
	grains = div_up (capacity, GRAIN_SECTORS);
	gt_count = div_up (grains, GTES);
	gd_sectors = div_up (gt_count * 4, VMDK_SECTOR);

	if (strcmp (subformat, "monolithicSparse") == 0) {
		head = div_up (DESC_END + 2 * (gd_sectors + gt_count * GT_SECTORS), GRAIN_SECTORS) *
		       GRAIN_SECTORS;
		out->required = (head + used_grains * GRAIN_SECTORS) * VMDK_SECTOR;
		out->fully_allocated = (head + grains * GRAIN_SECTORS) * VMDK_SECTOR;
		return TRUE;
	} else {
		guint64 grain_max = div_up (compressBound (GRAIN_BYTES) + VMDK_GRAIN_MARKER_SIZE,
					    VMDK_SECTOR);
		/* The directory's marker and sectors, the footer's marker, the footer, EOS. */
		guint64 tail = 1 + gd_sectors + 3;

		head = div_up (DESC_END, GRAIN_SECTORS) * GRAIN_SECTORS;
		out->required = (head + used_grains * grain_max + used_gts * (1 + GT_SECTORS) + tail) *
				VMDK_SECTOR;
		out->fully_allocated =
			(head + grains * grain_max + gt_count * (1 + GT_SECTORS) + tail) * VMDK_SECTOR;
		return TRUE;
	}
}
