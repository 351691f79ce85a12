/*
 * What the measure hooks of the writers share: the data runs they are given, checked, and
 * counted in the units (clusters, grains, blocks) a writer allocates. Header only, so each
 * plugin keeps its own copy and the ABI is unchanged.
 */
#pragma once

#include "vmi-plugin.h"

/*
 * How many distinct units of unit bytes the runs touch; a unit touched by several runs counts
 * once. The runs must be sorted, not overlapping and inside the virtual_size-byte disk, as the
 * ABI promises; otherwise VMI_ERROR_INVALID_ARGUMENT naming the run.
 */
static inline gboolean
vmi_measure_count_units (guint64 virtual_size, const VmiRange *data, gsize n_data, guint64 unit,
			 guint64 *units, GError **error)
{
	guint64 count = 0, prev_end = 0, last_unit = G_MAXUINT64;

	g_return_val_if_fail (unit > 0, FALSE);
	for (gsize i = 0; i < n_data; i++) {
		guint64 end, first, last;

		if (!g_uint64_checked_add (&end, data[i].offset, data[i].length) ||
		    end > virtual_size || data[i].offset < prev_end) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "Data run %" G_GSIZE_FORMAT " at 0x%" G_GINT64_MODIFIER "x (%" G_GUINT64_FORMAT
				     " bytes) is out of order or beyond the %" G_GUINT64_FORMAT "-byte disk",
				     i, data[i].offset, data[i].length, virtual_size);
			return FALSE;
		}
		prev_end = end;
		if (data[i].length == 0)
			continue;
		first = data[i].offset / unit;
		last = (end - 1) / unit;
		if (last_unit != G_MAXUINT64 && first <= last_unit)
			first = last_unit + 1;
		if (first <= last)
			count += last - first + 1;
		last_unit = last;
	}
	*units = count;
	return TRUE;
}
