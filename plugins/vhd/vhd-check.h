/* The VHD plugin's check hook (vhd-check.c). */
#pragma once

#include "vmi-plugin.h"

gboolean vhd_check (VmiImage *image, VmiCheckResult *result, GCancellable *cancellable,
		    GError **error);
