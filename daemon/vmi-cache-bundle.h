/*
 * Importing a container into the cache: each image it holds becomes an entry of its own, with
 * what the container says about it as properties. An OVA gives one entry per disk, with the
 * facts of its OVF's virtual system; a UEC tarball gives its kernel, its ramdisk and its
 * machine image, the machine image naming the other two in kernel_id and ramdisk_id. Engine
 * code, see docs/cache.md ("Bundles").
 */
#pragma once

#include "vmi-cache.h"

G_BEGIN_DECLS

/* TRUE when source holds members the cache imports (a disk, a kernel or a ramdisk). */
gboolean vmi_cache_bundle_is_container (VmiSource *source);

/*
 * Imports the members of container: disks stored as disk_format, kernels and ramdisks as
 * raw_format (their odd sizes stay exact). name (nullable) prefixes each entry's name, "NAME/
 * MEMBER"; properties (nullable) are set on every entry and win over the container's. Returns
 * the entries (referenced), the main one first: the first disk (the machine image of a UEC
 * tarball). On error, the entries this call added are removed again; entries that were in the
 * cache before stay. progress counts the members' bytes.
 */
GPtrArray *vmi_cache_import_bundle (VmiCache *cache, VmiSource *container,
				    const VmiFormatPlugin *disk_format,
				    const VmiFormatPlugin *raw_format, const char *name,
				    const char *origin, GHashTable *properties,
				    VmiProgressFunc progress, gpointer user_data,
				    GCancellable *cancellable, GError **error);

G_END_DECLS
