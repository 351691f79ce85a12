/* The VMDK plugin's check of one hosted sparse extent (vmdk-check.c). */
#pragma once

#include "vmdk-format.h"

G_BEGIN_DECLS

/*
 * Checks the sparse extent in file (already opened and validated by vmdk_sparse_open); name is
 * its file name for messages, NULL for the image itself. Findings are added to result.
 */
gboolean vmdk_check_sparse (const VmiFileRange *file, const char *name, VmiCheckResult *result,
			    GCancellable *cancellable, GError **error);

G_END_DECLS
