/* The VHDX plugin's check hook (vhdx-check.c). */
#pragma once

#include "vmi-plugin.h"

gboolean vhdx_check (VmiImage *self, VmiCheckResult *result, GCancellable *cancellable,
		     GError **error);
