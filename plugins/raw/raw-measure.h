/* The raw plugin's measure hook (raw-measure.c). */
#pragma once

#include "vmi-plugin.h"

gboolean raw_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
		      VmiMeasurement *out, GError **error);
