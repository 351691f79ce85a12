/* The VDI plugin's measure hook (vdi-measure.c). */
#pragma once

#include "vmi-plugin.h"

gboolean vdi_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
		      VmiMeasurement *out, GError **error);
