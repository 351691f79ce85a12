/* The VMDK plugin's measure hook (vmdk-measure.c). */
#pragma once

#include "vmi-plugin.h"

gboolean vmdk_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
		       VmiMeasurement *out, GError **error);
