/*
 * org.vmimaged.VMImage1.Image: one cache entry on the bus. Its properties mirror the entry's
 * latest snapshot; its methods are handled by the manager (vmi_manager_impl_watch_image), which
 * runs every call through the same polkit-first worker as the Manager's own methods.
 */
#pragma once

#include "vmi-cache-entry.h"
#include "vmi-generated.h"

G_BEGIN_DECLS

#define VMI_TYPE_IMAGE_IMPL (vmi_image_impl_get_type ())
G_DECLARE_FINAL_TYPE (VmiImageImpl, vmi_image_impl, VMI, IMAGE_IMPL, VmiCacheImageSkeleton)

VmiImageImpl *vmi_image_impl_new (VmiCacheEntry *entry);
/* Main thread: the properties from a newer snapshot of the same entry. */
void vmi_image_impl_update (VmiImageImpl *self, VmiCacheEntry *entry);
const char *vmi_image_impl_get_id (VmiImageImpl *self);

G_END_DECLS
