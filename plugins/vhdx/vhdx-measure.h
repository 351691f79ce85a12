/* The VHDX plugin's measure hook (vhdx-measure.c). */
#pragma once

#include "vmi-plugin.h"

gboolean vhdx_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
		       VmiMeasurement *out, GError **error);
