/*
 * org.vmimaged.VMImage1.Manager: Inspect, InspectFd, Convert, ConvertFd, the Cache* methods,
 * the Cancel method of the jobs they start and the methods of the cache's Image objects. Each call runs in a worker thread: it finds out who the caller is,
 * asks polkit, then opens files as the caller; only the reply goes back to the main thread.
 */
#pragma once

#include "vmi-generated.h"
#include "vmi-image.h"

G_BEGIN_DECLS

typedef struct _VmiDaemon VmiDaemon;

#define VMI_TYPE_MANAGER_IMPL (vmi_manager_impl_get_type ())
G_DECLARE_FINAL_TYPE (VmiManagerImpl, vmi_manager_impl, VMI, MANAGER_IMPL, VmiManagerSkeleton)

/* Sets Version and Formats from the daemon's registry. The daemon outlives the manager. */
VmiManagerImpl *vmi_manager_impl_new (VmiDaemon *daemon);

/* Main thread: the manager handles the methods of this cache Image. */
void vmi_manager_impl_watch_image (VmiManagerImpl *self, VmiImageImpl *image);

/* Method calls still being worked on in a thread. */
guint vmi_manager_impl_get_n_calls (VmiManagerImpl *self);

G_END_DECLS
