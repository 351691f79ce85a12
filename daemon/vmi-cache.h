/*
 * The image cache: a directory of images stored by content, with their metadata, a size limit
 * and least-recently-used eviction. Engine code: it knows nothing of D-Bus, and every call may
 * come from any thread. Layout, durability rules, the content digest and eviction are described
 * in docs/cache.md.
 */
#pragma once

#include "vmi-cache-entry.h"
#include "vmi-convert.h"

G_BEGIN_DECLS

typedef struct _VmiCache VmiCache;

/*
 * Opens (creating it with mode 0700 if missing) the cache in dir, which must be absolute. A
 * directory owned by another user or writable by group or others is VMI_ERROR_ACCESS_DENIED: a
 * user who can write there could swap images under the daemon. A directory another process has
 * open as a cache is VMI_ERROR_EXISTS. Opening removes temporary files of interrupted imports,
 * stored files that have no metadata, and metadata whose stored file is missing or has the wrong
 * size. limit is in bytes of disk space; 0 means no limit.
 */
VmiCache *vmi_cache_open (const char *dir, guint64 limit, GError **error);
void vmi_cache_free (VmiCache *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiCache, vmi_cache_free)

const char *vmi_cache_get_dir (VmiCache *self);
guint64 vmi_cache_get_limit (VmiCache *self);
/* A new limit; nothing is evicted until the next import or prune. 0 means no limit. */
void vmi_cache_set_limit (VmiCache *self, guint64 limit);
/* Bytes on disk of all entries. */
guint64 vmi_cache_get_size (VmiCache *self);

/* A snapshot of every entry (VmiCacheEntry, referenced), sorted by id. */
GPtrArray *vmi_cache_list (VmiCache *self);
/* The entry with this id, or NULL with VMI_ERROR_INVALID_ARGUMENT naming it. */
VmiCacheEntry *vmi_cache_lookup (VmiCache *self, const char *id, GError **error);

/*
 * Called after each change, in the thread that made it, without the cache's lock held: entry is
 * the new snapshot of the entry with that id, or NULL when it was removed (or evicted).
 */
typedef void (*VmiCacheChangedFunc) (VmiCache *cache, const char *id, VmiCacheEntry *entry,
				     gpointer user_data);
void vmi_cache_set_changed_func (VmiCache *self, VmiCacheChangedFunc func, gpointer user_data);

/*
 * Stores the virtual disk of source as store_format (a plugin that can write) and returns its
 * entry. name (nullable) and properties (nullable, string → string) are set on the entry; origin
 * (nullable; made valid UTF-8) is recorded as its Source. A name, property or origin beyond the
 * limits of vmi-cache-entry.h is VMI_ERROR_INVALID_ARGUMENT. When the cache already holds the same content (equal
 * content checksums, whatever the formats), nothing is stored: the existing entry is returned
 * with name and properties updated as asked. Least-recently-used entries are evicted first when
 * the new one would not fit under the limit; if it cannot fit even so, VMI_ERROR_NO_SPACE. A full
 * file system is VMI_ERROR_NO_SPACE too; on any error nothing of the import is left behind.
 * progress is called from this thread with done/total in bytes of the whole job.
 */
VmiCacheEntry *vmi_cache_import (VmiCache *self, VmiSource *source,
				 const VmiFormatPlugin *store_format, const char *name,
				 const char *origin, GHashTable *properties,
				 VmiProgressFunc progress, gpointer user_data,
				 GCancellable *cancellable, GError **error);

/*
 * Marks the entry in use (by an export or any job reading its file) so that eviction and remove
 * leave it alone until the matching vmi_cache_release. Returns its snapshot.
 */
VmiCacheEntry *vmi_cache_hold (VmiCache *self, const char *id, GError **error);
void vmi_cache_release (VmiCache *self, const char *id);

/* Deletes the entry; refused (VMI_ERROR_FAILED) while it is held. */
gboolean vmi_cache_remove (VmiCache *self, const char *id, GError **error);

/*
 * Sets the properties in set (nullable) and removes those named in unset (nullable), durably.
 * Returns the new snapshot. An invalid key or value, or more than
 * VMI_CACHE_ENTRY_MAX_PROPERTIES in the end, is VMI_ERROR_INVALID_ARGUMENT and changes nothing.
 */
VmiCacheEntry *vmi_cache_set_properties (VmiCache *self, const char *id, GHashTable *set,
					 const char *const *unset, GError **error);
/* Renames the entry. */
VmiCacheEntry *vmi_cache_set_name (VmiCache *self, const char *id, const char *name,
				   GError **error);

/* Records that the entry was used now (LastUsed), durably. Returns the new snapshot. */
VmiCacheEntry *vmi_cache_touch (VmiCache *self, const char *id, GError **error);

/*
 * Recomputes the stored file's sha256 and the content digest (reading the file through the
 * plugin named by the entry's format, found in registry) and compares them with the metadata:
 * a difference is VMI_ERROR_CORRUPT_IMAGE saying which. The entry is held meanwhile.
 */
gboolean vmi_cache_verify (VmiCache *self, const char *id, VmiRegistry *registry,
			   VmiProgressFunc progress, gpointer user_data,
			   GCancellable *cancellable, GError **error);

/*
 * Evicts least-recently-used entries that are neither pinned nor held until the cache fits its
 * limit, or none is left to evict; *bytes_freed (nullable) says how much went, also on error.
 */
gboolean vmi_cache_prune (VmiCache *self, guint64 *bytes_freed, GError **error);

G_END_DECLS
