/*
 * One image in the cache, as an immutable snapshot: the cache replaces an entry's snapshot when
 * the entry changes, so a snapshot can be read from any thread without a lock.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _VmiCacheEntry VmiCacheEntry;

/* Property keys with a meaning to the cache itself. */
#define VMI_CACHE_PROPERTY_PINNED "pinned"

VmiCacheEntry *vmi_cache_entry_ref (VmiCacheEntry *self);
void vmi_cache_entry_unref (VmiCacheEntry *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiCacheEntry, vmi_cache_entry_unref)

/* The first 32 hex digits of the content checksum: stable, and valid in a D-Bus object path. */
const char *vmi_cache_entry_get_id (VmiCacheEntry *self);
const char *vmi_cache_entry_get_name (VmiCacheEntry *self);
/* The plugin name of the stored file's format. */
const char *vmi_cache_entry_get_format (VmiCacheEntry *self);
guint64 vmi_cache_entry_get_virtual_size (VmiCacheEntry *self);
/* Bytes the stored file occupies on disk (allocated blocks), as counted against the limit. */
guint64 vmi_cache_entry_get_size (VmiCacheEntry *self);
/* st_size of the stored file. */
guint64 vmi_cache_entry_get_file_size (VmiCacheEntry *self);
/* SHA-256 of the stored file's bytes, lower-case hex. */
const char *vmi_cache_entry_get_checksum (VmiCacheEntry *self);
/* The content digest of the virtual disk (vmi-content-hash.h), lower-case hex. */
const char *vmi_cache_entry_get_content_checksum (VmiCacheEntry *self);
/* Microseconds since the Unix epoch (g_get_real_time). */
gint64 vmi_cache_entry_get_created (VmiCacheEntry *self);
gint64 vmi_cache_entry_get_last_used (VmiCacheEntry *self);
/* Where it came from, as the importer described it (a path, "fd", ...); may be "". */
const char *vmi_cache_entry_get_source (VmiCacheEntry *self);
/* Key → value, both strings. Owned by the entry; do not modify. */
GHashTable *vmi_cache_entry_get_properties (VmiCacheEntry *self);
/* The stored file: absolute path inside the cache directory. */
const char *vmi_cache_entry_get_path (VmiCacheEntry *self);
/* TRUE when the "pinned" property is "true", "yes" or "1" (any case). */
gboolean vmi_cache_entry_is_pinned (VmiCacheEntry *self);

/* At most this many properties per entry: the metadata file stays small. */
#define VMI_CACHE_ENTRY_MAX_PROPERTIES 256
/* Longest Name and Source, in bytes. */
#define VMI_CACHE_ENTRY_NAME_MAX 1024
#define VMI_CACHE_ENTRY_SOURCE_MAX 4096

/* A name is valid UTF-8 of at most VMI_CACHE_ENTRY_NAME_MAX bytes; VMI_ERROR_INVALID_ARGUMENT
 * otherwise. */
gboolean vmi_cache_entry_check_name (const char *name, GError **error);

/*
 * A property key is 1 to 128 characters of [A-Za-z0-9_.:-]; a value is valid UTF-8 of at most
 * 4096 bytes. VMI_ERROR_INVALID_ARGUMENT otherwise.
 */
gboolean vmi_cache_entry_check_property (const char *key, const char *value, GError **error);

G_END_DECLS
