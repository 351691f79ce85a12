/* What the cache itself needs of an entry: construction, copies and the metadata file. */
#pragma once

#include "vmi-cache-entry.h"

G_BEGIN_DECLS

struct _VmiCacheEntry {
	gatomicrefcount ref;
	char *id;
	char *name;
	char *format;
	guint64 virtual_size;
	guint64 size;
	guint64 file_size;
	char *checksum;
	char *content_checksum;
	gint64 created;
	gint64 last_used;
	char *source;
	GHashTable *properties;
	char *path;
};

VmiCacheEntry *vmi_cache_entry_new (void);
/* A new snapshot with the same fields, to be changed before anyone else sees it. */
VmiCacheEntry *vmi_cache_entry_copy (VmiCacheEntry *self);

/* The metadata file: a key file, see docs/cache.md. */
char *vmi_cache_entry_to_data (VmiCacheEntry *self, gsize *length);
/* Parses and checks a metadata file; id must match the file's name. path is not set. */
VmiCacheEntry *vmi_cache_entry_from_data (const char *id, const char *data, gsize length,
					  GError **error);

G_END_DECLS
