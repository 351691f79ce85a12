/*
 * raw measure: as qemu-img measure -O raw, the whole virtual size whatever the data, since a
 * raw file is as long as the disk (its holes are the file system's business, not the format's).
 */
#include "raw-measure.h"
#include "vmi-measure.h"

gboolean
raw_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
	     VmiMeasurement *out, GError **error)
{
	guint64 units;

	/* The runs are still checked, so a caller's mistake is not silently measured. */
	if (!vmi_measure_count_units (virtual_size, data, n_data, 512, &units, error))
		return FALSE;
	out->required = virtual_size;
	out->fully_allocated = virtual_size;
	return TRUE;
}
