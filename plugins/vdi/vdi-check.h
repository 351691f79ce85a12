/* The VDI plugin's check hook (vdi-check.c). */
#pragma once

#include "vmi-plugin.h"

gboolean vdi_check (VmiImage *self, VmiCheckResult *result, GCancellable *cancellable,
		    GError **error);
