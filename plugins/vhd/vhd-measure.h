/* The VHD plugin's measure hook (vhd-measure.c). */
#pragma once

#include "vmi-plugin.h"

gboolean vhd_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
		      VmiMeasurement *out, GError **error);
