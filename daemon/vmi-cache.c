#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-cache-dir.h"
#include "vmi-cache.h"
#include "vmi-content-hash.h"

typedef struct {
	VmiCacheEntry *entry; /* the current snapshot */
	guint holds;	      /* jobs using the stored file: never evicted or removed meanwhile */
} VmiCacheRecord;

struct _VmiCache {
	VmiCacheDir dir;
	GMutex lock; /* guards records, limit and every change to the directory's entries */
	guint64 limit;
	GHashTable *records; /* id → VmiCacheRecord */
	VmiCacheChangedFunc changed;
	gpointer changed_data;
};

/* Changes made under the lock, reported after it is released. */
typedef struct {
	char *id;
	VmiCacheEntry *entry; /* NULL: removed */
} VmiCacheChange;

static void
vmi_cache_change_free (gpointer data)
{
	VmiCacheChange *change = data;

	g_free (change->id);
	g_clear_pointer (&change->entry, vmi_cache_entry_unref);
	g_free (change);
}

static GPtrArray *
vmi_cache_changes_new (void)
{
	return g_ptr_array_new_with_free_func (vmi_cache_change_free);
}

static void
vmi_cache_changes_add (GPtrArray *changes, const char *id, VmiCacheEntry *entry)
{
	VmiCacheChange *change = g_new0 (VmiCacheChange, 1);

	change->id = g_strdup (id);
	change->entry = entry != NULL ? vmi_cache_entry_ref (entry) : NULL;
	g_ptr_array_add (changes, change);
}

static void
vmi_cache_emit (VmiCache *self, GPtrArray *changes)
{
	VmiCacheChangedFunc func;
	gpointer data;

	g_mutex_lock (&self->lock);
	func = self->changed;
	data = self->changed_data;
	g_mutex_unlock (&self->lock);
	if (func == NULL)
		return;
	for (guint i = 0; i < changes->len; i++) {
		VmiCacheChange *change = g_ptr_array_index (changes, i);

		func (self, change->id, change->entry, data);
	}
}

static void
vmi_cache_record_free (gpointer data)
{
	VmiCacheRecord *record = data;

	vmi_cache_entry_unref (record->entry);
	g_free (record);
}









/* Deletes an entry's files and record. Called with the lock held. */
static gboolean
vmi_cache_delete_locked (VmiCache *self, const char *id, GPtrArray *changes, GError **error)
{
	g_autofree char *id_copy = g_strdup (id);

	if (!vmi_cache_dir_delete (&self->dir, id_copy, error))
		return FALSE;
	g_hash_table_remove (self->records, id_copy);
	vmi_cache_changes_add (changes, id_copy, NULL);
	return TRUE;
}

static guint64
vmi_cache_size_locked (VmiCache *self)
{
	GHashTableIter iter;
	gpointer value;
	guint64 total = 0;

	g_hash_table_iter_init (&iter, self->records);
	while (g_hash_table_iter_next (&iter, NULL, &value)) {
		VmiCacheRecord *record = value;

		total += record->entry->size;
	}
	return total;
}

static gint
vmi_cache_compare_lru (gconstpointer a, gconstpointer b)
{
	VmiCacheEntry *x = ((VmiCacheRecord *) *(gconstpointer *) a)->entry;
	VmiCacheEntry *y = ((VmiCacheRecord *) *(gconstpointer *) b)->entry;

	if (x->last_used != y->last_used)
		return x->last_used < y->last_used ? -1 : 1;
	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp (x->id, y->id);
}

static gboolean
vmi_cache_is_evictable (VmiCacheRecord *record)
{
	return record->holds == 0 && !vmi_cache_entry_is_pinned (record->entry);
}

/*
 * Evicts least-recently-used entries until needed more bytes fit under the limit. Evicts nothing
 * when even evicting everything allowed would not be enough. Called with the lock held.
 */
static gboolean
vmi_cache_make_room_locked (VmiCache *self, guint64 needed, guint64 *freed, GPtrArray *changes,
			    GError **error)
{
	g_autoptr(GPtrArray) candidates = g_ptr_array_new ();
	GHashTableIter iter;
	gpointer value;
	guint64 size = vmi_cache_size_locked (self);
	guint64 kept = 0;

	if (freed != NULL)
		*freed = 0;
	if (self->limit == 0 || (needed <= self->limit && size <= self->limit - needed))
		return TRUE;
	g_hash_table_iter_init (&iter, self->records);
	while (g_hash_table_iter_next (&iter, NULL, &value)) {
		VmiCacheRecord *record = value;

		if (vmi_cache_is_evictable (record))
			g_ptr_array_add (candidates, record);
		else
			kept += record->entry->size;
	}
	if (needed > self->limit || kept > self->limit - needed) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE,
			     "the image needs %" G_GUINT64_FORMAT " bytes, which do not fit in the "
			     "cache limit of %" G_GUINT64_FORMAT " bytes with %" G_GUINT64_FORMAT
			     " bytes taken by pinned or in-use images; raise CacheLimit, or unpin or "
			     "remove images",
			     needed, self->limit, kept);
		return FALSE;
	}
	g_ptr_array_sort (candidates, vmi_cache_compare_lru);
	for (guint i = 0; i < candidates->len && size > self->limit - needed; i++) {
		VmiCacheRecord *record = g_ptr_array_index (candidates, i);
		guint64 entry_size = record->entry->size;
		g_autofree char *id = g_strdup (record->entry->id);

		if (!vmi_cache_delete_locked (self, id, changes, error))
			return FALSE;
		size -= entry_size;
		if (freed != NULL)
			*freed += entry_size;
	}
	return TRUE;
}




VmiCache *
vmi_cache_open (const char *dir, guint64 limit, GError **error)
{
	g_autoptr(VmiCache) self = g_new0 (VmiCache, 1);
	g_autoptr(GPtrArray) entries = NULL;

	g_mutex_init (&self->lock);
	self->records = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
					       vmi_cache_record_free);
	self->limit = limit;
	if (!vmi_cache_dir_open (&self->dir, dir, error))
		return NULL;
	entries = vmi_cache_dir_recover (&self->dir, error);
	if (entries == NULL)
		return NULL;
	for (guint i = 0; i < entries->len; i++) {
		VmiCacheEntry *entry = g_ptr_array_index (entries, i);
		VmiCacheRecord *record = g_new0 (VmiCacheRecord, 1);

		record->entry = vmi_cache_entry_ref (entry);
		g_hash_table_insert (self->records, g_strdup (entry->id), record);
	}
	return g_steal_pointer (&self);
}

void
vmi_cache_free (VmiCache *self)
{
	if (self == NULL)
		return;
	vmi_cache_dir_close (&self->dir);
	g_hash_table_unref (self->records);
	g_mutex_clear (&self->lock);
	g_free (self);
}

const char *
vmi_cache_get_dir (VmiCache *self)
{
	return self->dir.path;
}

guint64
vmi_cache_get_limit (VmiCache *self)
{
	guint64 limit;

	g_mutex_lock (&self->lock);
	limit = self->limit;
	g_mutex_unlock (&self->lock);
	return limit;
}

void
vmi_cache_set_limit (VmiCache *self, guint64 limit)
{
	g_mutex_lock (&self->lock);
	self->limit = limit;
	g_mutex_unlock (&self->lock);
}

guint64
vmi_cache_get_size (VmiCache *self)
{
	guint64 size;

	g_mutex_lock (&self->lock);
	size = vmi_cache_size_locked (self);
	g_mutex_unlock (&self->lock);
	return size;
}

void
vmi_cache_set_changed_func (VmiCache *self, VmiCacheChangedFunc func, gpointer user_data)
{
	g_mutex_lock (&self->lock);
	self->changed = func;
	self->changed_data = user_data;
	g_mutex_unlock (&self->lock);
}

static gint
vmi_cache_compare_id (gconstpointer a, gconstpointer b)
{
	return strcmp ((*(VmiCacheEntry *const *) a)->id, (*(VmiCacheEntry *const *) b)->id);
}

GPtrArray *
vmi_cache_list (VmiCache *self)
{
	GPtrArray *entries = g_ptr_array_new_with_free_func ((GDestroyNotify) vmi_cache_entry_unref);
	GHashTableIter iter;
	gpointer value;

	g_mutex_lock (&self->lock);
	g_hash_table_iter_init (&iter, self->records);
	while (g_hash_table_iter_next (&iter, NULL, &value))
		g_ptr_array_add (entries, vmi_cache_entry_ref (((VmiCacheRecord *) value)->entry));
	g_mutex_unlock (&self->lock);
	g_ptr_array_sort (entries, vmi_cache_compare_id);
	return entries;
}

static VmiCacheRecord *
vmi_cache_find_locked (VmiCache *self, const char *id, GError **error)
{
	VmiCacheRecord *record = g_hash_table_lookup (self->records, id);

	if (record == NULL)
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the cache has no image with id “%s”", id);
	return record;
}

VmiCacheEntry *
vmi_cache_lookup (VmiCache *self, const char *id, GError **error)
{
	VmiCacheRecord *record;
	VmiCacheEntry *entry = NULL;

	g_mutex_lock (&self->lock);
	record = vmi_cache_find_locked (self, id, error);
	if (record != NULL)
		entry = vmi_cache_entry_ref (record->entry);
	g_mutex_unlock (&self->lock);
	return entry;
}

/* Replaces a record's snapshot by updated, after writing updated's metadata. Lock held. */
static gboolean
vmi_cache_replace_locked (VmiCache *self, VmiCacheRecord *record, VmiCacheEntry *updated,
			  GPtrArray *changes, GError **error)
{
	if (!vmi_cache_dir_write_entry (&self->dir, updated, error))
		return FALSE;
	vmi_cache_entry_unref (record->entry);
	record->entry = vmi_cache_entry_ref (updated);
	vmi_cache_changes_add (changes, updated->id, updated);
	return TRUE;
}

static gboolean
vmi_cache_check_properties (GHashTable *set, const char *const *unset, GError **error)
{
	GHashTableIter iter;
	gpointer key, value;

	if (set != NULL) {
		g_hash_table_iter_init (&iter, set);
		while (g_hash_table_iter_next (&iter, &key, &value)) {
			if (!vmi_cache_entry_check_property (key, value != NULL ? value : "", error))
				return FALSE;
		}
	}
	for (guint i = 0; unset != NULL && unset[i] != NULL; i++) {
		if (!vmi_cache_entry_check_property (unset[i], NULL, error))
			return FALSE;
	}
	return TRUE;
}

/* Changes the properties of a snapshot nobody else sees yet. */
static gboolean
vmi_cache_apply_properties (VmiCacheEntry *entry, GHashTable *set, const char *const *unset,
			    GError **error)
{
	GHashTableIter iter;
	gpointer key, value;

	for (guint i = 0; unset != NULL && unset[i] != NULL; i++)
		g_hash_table_remove (entry->properties, unset[i]);
	if (set != NULL) {
		g_hash_table_iter_init (&iter, set);
		while (g_hash_table_iter_next (&iter, &key, &value))
			g_hash_table_insert (entry->properties, g_strdup (key),
					     g_strdup (value != NULL ? value : ""));
	}
	if (g_hash_table_size (entry->properties) > VMI_CACHE_ENTRY_MAX_PROPERTIES) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "image %s would have %u properties; at most %u are allowed", entry->id,
			     g_hash_table_size (entry->properties), VMI_CACHE_ENTRY_MAX_PROPERTIES);
		return FALSE;
	}
	return TRUE;
}

/* The import found its content already stored: update name and properties as asked. */
static VmiCacheEntry *
vmi_cache_update_existing_locked (VmiCache *self, VmiCacheRecord *record, const char *name,
				  GHashTable *properties, GPtrArray *changes, GError **error)
{
	g_autoptr(VmiCacheEntry) updated = NULL;

	if ((name == NULL || strcmp (name, record->entry->name) == 0) &&
	    (properties == NULL || g_hash_table_size (properties) == 0))
		return vmi_cache_entry_ref (record->entry);
	updated = vmi_cache_entry_copy (record->entry);
	if (name != NULL) {
		g_free (updated->name);
		updated->name = g_strdup (name);
	}
	if (!vmi_cache_apply_properties (updated, properties, NULL, error) ||
	    !vmi_cache_replace_locked (self, record, updated, changes, error))
		return NULL;
	return g_steal_pointer (&updated);
}

typedef struct {
	VmiProgressFunc func;
	gpointer data;
	guint phase; /* 0: content digest, 1: conversion */
} VmiCacheProgress;

/* The digest and the conversion each read the whole disk: each is half of the job. */
static void
vmi_cache_progress (guint64 done, guint64 total, gpointer user_data)
{
	VmiCacheProgress *progress = user_data;

	if (progress->func != NULL)
		progress->func (progress->phase * (total / 2) + done / 2, total, progress->data);
}


/* Stores source into a temporary file; on success the file is complete and flushed. */
static int
vmi_cache_convert_to_temp (VmiCache *self, VmiSource *source, const VmiFormatPlugin *store_format,
			   VmiCacheProgress *progress, GCancellable *cancellable, char **temp,
			   GError **error)
{
	g_autofree char *name = NULL;
	int fd = vmi_cache_dir_create_temp (&self->dir, "import", &name, error);

	if (fd < 0)
		return -1;
	if (!vmi_convert (source, store_format, fd, NULL, vmi_cache_progress, progress,
			  cancellable, error)) {
		g_prefix_error (error, "cannot store the image in %s: ", self->dir.path);
		close (fd);
		vmi_cache_dir_discard (&self->dir, name);
		return -1;
	}
	/* The rename must not publish a file whose data is still only in the page cache. */
	if (fsync (fd) != 0) {
		vmi_cache_set_errno (error, errno, "cannot flush the imported image");
		close (fd);
		vmi_cache_dir_discard (&self->dir, name);
		return -1;
	}
	*temp = g_steal_pointer (&name);
	return fd;
}

/*
 * Opens the stored file as the cache will read it. A format that cannot hold the source's exact
 * size rounds it up (qcow2 to 512 bytes): then the stored disk is the source followed by zeros,
 * another content, and *digest and *virtual_size become the stored disk's.
 */
static gboolean
vmi_cache_check_stored (VmiCache *self, int fd, const VmiFormatPlugin *store_format,
			VmiSource *source, GCancellable *cancellable, char **digest,
			guint64 *virtual_size, GError **error)
{
	g_autoptr(VmiSource) stored = vmi_source_open_with (store_format, fd, -1, cancellable, error);

	if (stored == NULL) {
		g_prefix_error (error, "the image stored in %s does not read back: ", self->dir.path);
		return FALSE;
	}
	*virtual_size = vmi_source_get_virtual_size (stored);
	if (*virtual_size == vmi_source_get_virtual_size (source))
		return TRUE;
	g_clear_pointer (digest, g_free);
	return vmi_content_hash (stored, NULL, NULL, cancellable, digest, NULL, error);
}

/* Publishes a converted temporary file as entry (whose id and fields are set). Lock held. */
static gboolean
vmi_cache_commit_locked (VmiCache *self, const char *temp, VmiCacheEntry *entry,
			 GPtrArray *changes, GError **error)
{
	VmiCacheRecord *record;

	if (!vmi_cache_make_room_locked (self, entry->size, NULL, changes, error) ||
	    !vmi_cache_dir_publish (&self->dir, temp, entry, error))
		return FALSE;
	record = g_new0 (VmiCacheRecord, 1);
	record->entry = vmi_cache_entry_ref (entry);
	g_hash_table_insert (self->records, g_strdup (entry->id), record);
	vmi_cache_changes_add (changes, entry->id, entry);
	return TRUE;
}

VmiCacheEntry *
vmi_cache_import (VmiCache *self, VmiSource *source, const VmiFormatPlugin *store_format,
		  const char *name, const char *origin, GHashTable *properties,
		  VmiProgressFunc progress_func, gpointer user_data, GCancellable *cancellable,
		  GError **error)
{
	g_autoptr(GPtrArray) changes = vmi_cache_changes_new ();
	g_autoptr(VmiCacheEntry) entry = NULL;
	g_autofree char *digest = NULL;
	g_autofree char *id = NULL;
	g_autofree char *temp = NULL;
	VmiCacheProgress progress = { progress_func, user_data, 0 };
	VmiCacheRecord *record;
	guint64 data_bytes = 0;
	guint64 virtual_size = 0;
	struct stat st;
	int fd;
	gboolean ok;

	if (name != NULL && !vmi_cache_entry_check_name (name, error))
		return NULL;
	if (!vmi_cache_check_properties (properties, NULL, error))
		return NULL;
	if (properties != NULL &&
	    g_hash_table_size (properties) > VMI_CACHE_ENTRY_MAX_PROPERTIES) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "%u properties; at most %u are allowed", g_hash_table_size (properties),
			     VMI_CACHE_ENTRY_MAX_PROPERTIES);
		return NULL;
	}
	if (origin != NULL && strlen (origin) > VMI_CACHE_ENTRY_SOURCE_MAX) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the source name is %" G_GSIZE_FORMAT " bytes long; at most %u are allowed",
			     strlen (origin), VMI_CACHE_ENTRY_SOURCE_MAX);
		return NULL;
	}
	/* What is stored must be read back: by Export, Verify and the size check below. */
	if ((store_format->flags & (VMI_FORMAT_CAN_WRITE | VMI_FORMAT_CAN_READ)) !=
	    (VMI_FORMAT_CAN_WRITE | VMI_FORMAT_CAN_READ)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged cannot store images as %s", store_format->name);
		return NULL;
	}
	/* The digest first: content already stored costs one read and no writes. */
	if (!vmi_content_hash (source, vmi_cache_progress, &progress, cancellable, &digest,
			       &data_bytes, error))
		return NULL;
	id = g_strndup (digest, VMI_CACHE_ID_LENGTH);

	g_mutex_lock (&self->lock);
	record = g_hash_table_lookup (self->records, id);
	if (record != NULL) {
		entry = vmi_cache_update_existing_locked (self, record, name, properties, changes,
							  error);
		g_mutex_unlock (&self->lock);
		vmi_cache_emit (self, changes);
		if (progress_func != NULL && entry != NULL)
			progress_func (entry->virtual_size, entry->virtual_size, user_data);
		return g_steal_pointer (&entry);
	}
	/* Room for the data now, so that the conversion does not fill the disk with what eviction
	 * would have freed anyway; the stored size is checked again before the commit. */
	ok = vmi_cache_make_room_locked (self, data_bytes, NULL, changes, error);
	g_mutex_unlock (&self->lock);
	vmi_cache_emit (self, changes);
	g_ptr_array_set_size (changes, 0);
	if (!ok)
		return NULL;

	progress.phase = 1;
	fd = vmi_cache_convert_to_temp (self, source, store_format, &progress, cancellable, &temp,
					error);
	if (fd < 0)
		return NULL;
	if (!vmi_cache_check_stored (self, fd, store_format, source, cancellable, &digest,
				     &virtual_size, error)) {
		close (fd);
		vmi_cache_dir_discard (&self->dir, temp);
		return NULL;
	}
	g_free (id);
	id = g_strndup (digest, VMI_CACHE_ID_LENGTH);
	entry = vmi_cache_entry_new ();
	entry->id = g_strdup (id);
	entry->content_checksum = g_strdup (digest);
	entry->format = g_strdup (store_format->name);
	entry->virtual_size = virtual_size;
	g_free (entry->name);
	entry->name = g_strdup (name != NULL ? name : "");
	g_free (entry->source);
	/* The metadata file is UTF-8; a file name in another encoding is kept readable. */
	entry->source = g_utf8_make_valid (origin != NULL ? origin : "", -1);
	entry->created = entry->last_used = g_get_real_time ();
	entry->path = vmi_cache_dir_image_path (&self->dir, id);
	vmi_cache_apply_properties (entry, properties, NULL, NULL);
	if (fstat (fd, &st) != 0) {
		vmi_cache_set_errno (error, errno, "cannot examine the imported image");
		ok = FALSE;
	} else {
		entry->file_size = (guint64) st.st_size;
		entry->size = (guint64) st.st_blocks * 512u;
		ok = vmi_cache_sha256_fd (fd, cancellable, &entry->checksum, error);
	}
	close (fd);
	if (!ok) {
		vmi_cache_dir_discard (&self->dir, temp);
		return NULL;
	}

	g_mutex_lock (&self->lock);
	record = g_hash_table_lookup (self->records, id);
	if (record != NULL) {
		/* Another import of the same content finished first: keep its copy. */
		vmi_cache_dir_discard (&self->dir, temp);
		g_clear_pointer (&entry, vmi_cache_entry_unref);
		entry = vmi_cache_update_existing_locked (self, record, name, properties, changes,
							  error);
	} else if (!vmi_cache_commit_locked (self, temp, entry, changes, error)) {
		vmi_cache_dir_discard (&self->dir, temp);
		g_clear_pointer (&entry, vmi_cache_entry_unref);
	}
	g_mutex_unlock (&self->lock);
	vmi_cache_emit (self, changes);
	if (progress_func != NULL && entry != NULL)
		progress_func (entry->virtual_size, entry->virtual_size, user_data);
	return g_steal_pointer (&entry);
}

VmiCacheEntry *
vmi_cache_hold (VmiCache *self, const char *id, GError **error)
{
	VmiCacheRecord *record;
	VmiCacheEntry *entry = NULL;

	g_mutex_lock (&self->lock);
	record = vmi_cache_find_locked (self, id, error);
	if (record != NULL) {
		record->holds++;
		entry = vmi_cache_entry_ref (record->entry);
	}
	g_mutex_unlock (&self->lock);
	return entry;
}

void
vmi_cache_release (VmiCache *self, const char *id)
{
	VmiCacheRecord *record;

	g_mutex_lock (&self->lock);
	record = g_hash_table_lookup (self->records, id);
	if (record != NULL && record->holds > 0)
		record->holds--;
	g_mutex_unlock (&self->lock);
	/* Held entries cannot go away, so this is a release without its hold. */
	g_return_if_fail (record != NULL);
}

gboolean
vmi_cache_remove (VmiCache *self, const char *id, GError **error)
{
	g_autoptr(GPtrArray) changes = vmi_cache_changes_new ();
	VmiCacheRecord *record;
	gboolean ok = FALSE;

	g_mutex_lock (&self->lock);
	record = vmi_cache_find_locked (self, id, error);
	if (record != NULL && record->holds > 0)
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "image %s is in use by %u running job(s); remove it when they end", id,
			     record->holds);
	else if (record != NULL)
		ok = vmi_cache_delete_locked (self, id, changes, error);
	g_mutex_unlock (&self->lock);
	vmi_cache_emit (self, changes);
	return ok;
}

typedef gboolean (*VmiCacheEditFunc) (VmiCacheEntry *entry, gconstpointer a, gconstpointer b,
				      GError **error);

/* Changes a copy of the entry with edit, writes it and makes it current. */
static VmiCacheEntry *
vmi_cache_edit (VmiCache *self, const char *id, VmiCacheEditFunc edit, gconstpointer a,
		gconstpointer b, GError **error)
{
	g_autoptr(GPtrArray) changes = vmi_cache_changes_new ();
	g_autoptr(VmiCacheEntry) updated = NULL;
	VmiCacheRecord *record;

	g_mutex_lock (&self->lock);
	record = vmi_cache_find_locked (self, id, error);
	if (record != NULL) {
		updated = vmi_cache_entry_copy (record->entry);
		if (!edit (updated, a, b, error) ||
		    !vmi_cache_replace_locked (self, record, updated, changes, error))
			g_clear_pointer (&updated, vmi_cache_entry_unref);
	}
	g_mutex_unlock (&self->lock);
	vmi_cache_emit (self, changes);
	return g_steal_pointer (&updated);
}

static gboolean
vmi_cache_edit_properties (VmiCacheEntry *entry, gconstpointer set, gconstpointer unset,
			   GError **error)
{
	return vmi_cache_apply_properties (entry, (GHashTable *) set, unset, error);
}

VmiCacheEntry *
vmi_cache_set_properties (VmiCache *self, const char *id, GHashTable *set,
			  const char *const *unset, GError **error)
{
	if (!vmi_cache_check_properties (set, unset, error))
		return NULL;
	return vmi_cache_edit (self, id, vmi_cache_edit_properties, set, unset, error);
}

static gboolean
vmi_cache_edit_name (VmiCacheEntry *entry, gconstpointer name, gconstpointer unused,
		     GError **error)
{
	g_free (entry->name);
	entry->name = g_strdup (name);
	return TRUE;
}

VmiCacheEntry *
vmi_cache_set_name (VmiCache *self, const char *id, const char *name, GError **error)
{
	if (!vmi_cache_entry_check_name (name, error))
		return NULL;
	return vmi_cache_edit (self, id, vmi_cache_edit_name, name, NULL, error);
}

static gboolean
vmi_cache_edit_last_used (VmiCacheEntry *entry, gconstpointer a, gconstpointer b,
			  GError **error)
{
	/* Strictly later than before, so that the order of uses survives a coarse clock. */
	entry->last_used = MAX (g_get_real_time (), entry->last_used + 1);
	return TRUE;
}

VmiCacheEntry *
vmi_cache_touch (VmiCache *self, const char *id, GError **error)
{
	return vmi_cache_edit (self, id, vmi_cache_edit_last_used, NULL, NULL, error);
}

static gboolean
vmi_cache_verify_held (VmiCache *self, VmiCacheEntry *entry, VmiRegistry *registry,
		       VmiProgressFunc progress_func, gpointer user_data,
		       GCancellable *cancellable, GError **error)
{
	g_autofree char *checksum = NULL;
	g_autofree char *content = NULL;
	g_autoptr(VmiSource) source = NULL;
	VmiCacheProgress progress = { progress_func, user_data, 0 };
	const VmiFormatPlugin *plugin;
	int fd;

	plugin = vmi_registry_lookup (registry, entry->format, error);
	if (plugin == NULL)
		return FALSE;
	fd = vmi_cache_dir_open_image (&self->dir, entry->id, error);
	if (fd < 0)
		return FALSE;
	if (!vmi_cache_sha256_fd (fd, cancellable, &checksum, error)) {
		close (fd);
		return FALSE;
	}
	if (strcmp (checksum, entry->checksum) != 0) {
		close (fd);
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the stored file of image %s has sha256 %s, not %s as when it was "
			     "imported: it was changed or damaged",
			     entry->id, checksum, entry->checksum);
		return FALSE;
	}
	source = vmi_source_open_with (plugin, fd, -1, cancellable, error);
	close (fd);
	if (source == NULL)
		return FALSE;
	progress.phase = 1;
	if (!vmi_content_hash (source, vmi_cache_progress, &progress, cancellable, &content, NULL,
			       error))
		return FALSE;
	if (strcmp (content, entry->content_checksum) != 0 ||
	    vmi_source_get_virtual_size (source) != entry->virtual_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "image %s reads as content %s of %" G_GUINT64_FORMAT
			     " bytes, not %s of %" G_GUINT64_FORMAT " bytes as when it was imported",
			     entry->id, content, vmi_source_get_virtual_size (source),
			     entry->content_checksum, entry->virtual_size);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_cache_verify (VmiCache *self, const char *id, VmiRegistry *registry,
		  VmiProgressFunc progress, gpointer user_data, GCancellable *cancellable,
		  GError **error)
{
	g_autoptr(VmiCacheEntry) entry = vmi_cache_hold (self, id, error);
	gboolean ok;

	if (entry == NULL)
		return FALSE;
	ok = vmi_cache_verify_held (self, entry, registry, progress, user_data, cancellable,
				    error);
	vmi_cache_release (self, id);
	return ok;
}

gboolean
vmi_cache_prune (VmiCache *self, guint64 *bytes_freed, GError **error)
{
	g_autoptr(GPtrArray) changes = vmi_cache_changes_new ();
	g_autoptr(GPtrArray) candidates = g_ptr_array_new ();
	GHashTableIter iter;
	gpointer value;
	guint64 freed = 0;
	guint64 size;
	gboolean ok = TRUE;

	g_mutex_lock (&self->lock);
	size = vmi_cache_size_locked (self);
	g_hash_table_iter_init (&iter, self->records);
	while (g_hash_table_iter_next (&iter, NULL, &value)) {
		if (vmi_cache_is_evictable (value))
			g_ptr_array_add (candidates, value);
	}
	g_ptr_array_sort (candidates, vmi_cache_compare_lru);
	/* Unlike an import, prune frees what it can even when pinned entries keep it over. */
	for (guint i = 0; self->limit > 0 && i < candidates->len && size > self->limit; i++) {
		VmiCacheRecord *record = g_ptr_array_index (candidates, i);
		guint64 entry_size = record->entry->size;
		g_autofree char *id = g_strdup (record->entry->id);

		ok = vmi_cache_delete_locked (self, id, changes, error);
		if (!ok)
			break;
		size -= entry_size;
		freed += entry_size;
	}
	g_mutex_unlock (&self->lock);
	vmi_cache_emit (self, changes);
	if (bytes_freed != NULL)
		*bytes_freed = freed;
	return ok;
}
