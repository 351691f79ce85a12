#include <string.h>

#include "vmi-cache-entry-private.h"
#include "vmi-plugin.h"

#define VMI_CACHE_ENTRY_GROUP "Entry"
#define VMI_CACHE_PROPERTIES_GROUP "Properties"
#define VMI_CACHE_ENTRY_VERSION 1
#define VMI_CACHE_PROPERTY_KEY_MAX 128
#define VMI_CACHE_PROPERTY_VALUE_MAX 4096

VmiCacheEntry *
vmi_cache_entry_new (void)
{
	VmiCacheEntry *self = g_new0 (VmiCacheEntry, 1);

	g_atomic_ref_count_init (&self->ref);
	self->properties = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
	self->name = g_strdup ("");
	self->source = g_strdup ("");
	return self;
}

VmiCacheEntry *
vmi_cache_entry_copy (VmiCacheEntry *self)
{
	VmiCacheEntry *copy = vmi_cache_entry_new ();
	GHashTableIter iter;
	gpointer key, value;

	copy->id = g_strdup (self->id);
	g_free (copy->name);
	copy->name = g_strdup (self->name);
	copy->format = g_strdup (self->format);
	copy->virtual_size = self->virtual_size;
	copy->size = self->size;
	copy->file_size = self->file_size;
	copy->checksum = g_strdup (self->checksum);
	copy->content_checksum = g_strdup (self->content_checksum);
	copy->created = self->created;
	copy->last_used = self->last_used;
	g_free (copy->source);
	copy->source = g_strdup (self->source);
	copy->path = g_strdup (self->path);
	g_hash_table_iter_init (&iter, self->properties);
	while (g_hash_table_iter_next (&iter, &key, &value))
		g_hash_table_insert (copy->properties, g_strdup (key), g_strdup (value));
	return copy;
}

VmiCacheEntry *
vmi_cache_entry_ref (VmiCacheEntry *self)
{
	g_atomic_ref_count_inc (&self->ref);
	return self;
}

void
vmi_cache_entry_unref (VmiCacheEntry *self)
{
	if (!g_atomic_ref_count_dec (&self->ref))
		return;
	g_free (self->id);
	g_free (self->name);
	g_free (self->format);
	g_free (self->checksum);
	g_free (self->content_checksum);
	g_free (self->source);
	g_free (self->path);
	g_hash_table_unref (self->properties);
	g_free (self);
}

const char *
vmi_cache_entry_get_id (VmiCacheEntry *self)
{
	return self->id;
}

const char *
vmi_cache_entry_get_name (VmiCacheEntry *self)
{
	return self->name;
}

const char *
vmi_cache_entry_get_format (VmiCacheEntry *self)
{
	return self->format;
}

guint64
vmi_cache_entry_get_virtual_size (VmiCacheEntry *self)
{
	return self->virtual_size;
}

guint64
vmi_cache_entry_get_size (VmiCacheEntry *self)
{
	return self->size;
}

guint64
vmi_cache_entry_get_file_size (VmiCacheEntry *self)
{
	return self->file_size;
}

const char *
vmi_cache_entry_get_checksum (VmiCacheEntry *self)
{
	return self->checksum;
}

const char *
vmi_cache_entry_get_content_checksum (VmiCacheEntry *self)
{
	return self->content_checksum;
}

gint64
vmi_cache_entry_get_created (VmiCacheEntry *self)
{
	return self->created;
}

gint64
vmi_cache_entry_get_last_used (VmiCacheEntry *self)
{
	return self->last_used;
}

const char *
vmi_cache_entry_get_source (VmiCacheEntry *self)
{
	return self->source;
}

GHashTable *
vmi_cache_entry_get_properties (VmiCacheEntry *self)
{
	return self->properties;
}

const char *
vmi_cache_entry_get_path (VmiCacheEntry *self)
{
	return self->path;
}

gboolean
vmi_cache_entry_is_pinned (VmiCacheEntry *self)
{
	const char *value = g_hash_table_lookup (self->properties, VMI_CACHE_PROPERTY_PINNED);

	return value != NULL && (g_ascii_strcasecmp (value, "true") == 0 ||
				 g_ascii_strcasecmp (value, "yes") == 0 || strcmp (value, "1") == 0);
}

gboolean
vmi_cache_entry_check_name (const char *name, GError **error)
{
	if (strlen (name) > VMI_CACHE_ENTRY_NAME_MAX) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the image name is %" G_GSIZE_FORMAT " bytes long; at most %u are allowed",
			     strlen (name), VMI_CACHE_ENTRY_NAME_MAX);
		return FALSE;
	}
	if (!g_utf8_validate (name, -1, NULL)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "the image name is not valid UTF-8");
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_cache_entry_check_property (const char *key, const char *value, GError **error)
{
	gsize key_len = strlen (key);

	/* Keys become key-file keys: no '=', '[', spaces or locale suffixes may sneak in. */
	if (key_len == 0 || key_len > VMI_CACHE_PROPERTY_KEY_MAX) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "a property name must be 1 to %u characters long, not %" G_GSIZE_FORMAT,
			     VMI_CACHE_PROPERTY_KEY_MAX, key_len);
		return FALSE;
	}
	for (gsize i = 0; i < key_len; i++) {
		char c = key[i];

		if (!g_ascii_isalnum (c) && c != '_' && c != '.' && c != ':' && c != '-') {
			g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "the property name “%s” has a character other than letters, "
				     "digits, “_”, “.”, “:” and “-” at position %" G_GSIZE_FORMAT,
				     g_utf8_validate (key, -1, NULL) ? key : "(not UTF-8)", i);
			return FALSE;
		}
	}
	if (value == NULL)
		return TRUE;
	if (strlen (value) > VMI_CACHE_PROPERTY_VALUE_MAX) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the value of property “%s” is %" G_GSIZE_FORMAT
			     " bytes long; at most %u are allowed",
			     key, strlen (value), VMI_CACHE_PROPERTY_VALUE_MAX);
		return FALSE;
	}
	if (!g_utf8_validate (value, -1, NULL)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the value of property “%s” is not valid UTF-8", key);
		return FALSE;
	}
	return TRUE;
}

char *
vmi_cache_entry_to_data (VmiCacheEntry *self, gsize *length)
{
	g_autoptr(GKeyFile) kf = g_key_file_new ();
	g_autoptr(GList) keys = g_hash_table_get_keys (self->properties);

	g_key_file_set_integer (kf, VMI_CACHE_ENTRY_GROUP, "Version", VMI_CACHE_ENTRY_VERSION);
	g_key_file_set_string (kf, VMI_CACHE_ENTRY_GROUP, "Id", self->id);
	g_key_file_set_string (kf, VMI_CACHE_ENTRY_GROUP, "Name", self->name);
	g_key_file_set_string (kf, VMI_CACHE_ENTRY_GROUP, "Format", self->format);
	g_key_file_set_uint64 (kf, VMI_CACHE_ENTRY_GROUP, "VirtualSize", self->virtual_size);
	g_key_file_set_uint64 (kf, VMI_CACHE_ENTRY_GROUP, "FileSize", self->file_size);
	g_key_file_set_string (kf, VMI_CACHE_ENTRY_GROUP, "Checksum", self->checksum);
	g_key_file_set_string (kf, VMI_CACHE_ENTRY_GROUP, "ContentChecksum",
			       self->content_checksum);
	g_key_file_set_int64 (kf, VMI_CACHE_ENTRY_GROUP, "Created", self->created);
	g_key_file_set_int64 (kf, VMI_CACHE_ENTRY_GROUP, "LastUsed", self->last_used);
	g_key_file_set_string (kf, VMI_CACHE_ENTRY_GROUP, "Source", self->source);
	/* Sorted, so the same entry always gives the same file. */
	keys = g_list_sort (keys, (GCompareFunc) strcmp);
	for (GList *l = keys; l != NULL; l = l->next)
		g_key_file_set_string (kf, VMI_CACHE_PROPERTIES_GROUP, l->data,
				       g_hash_table_lookup (self->properties, l->data));
	return g_key_file_to_data (kf, length, NULL);
}

static gboolean
vmi_cache_entry_is_hex (const char *s, gsize len)
{
	if (s == NULL || strlen (s) != len)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isxdigit (s[i]) || g_ascii_isupper (s[i]))
			return FALSE;
	}
	return TRUE;
}

static char *
vmi_cache_entry_get_key (GKeyFile *kf, const char *key, GError **error)
{
	g_autoptr(GError) local_error = NULL;
	char *value = g_key_file_get_string (kf, VMI_CACHE_ENTRY_GROUP, key, &local_error);

	if (value == NULL)
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE, "%s", local_error->message);
	return value;
}

static gboolean
vmi_cache_entry_get_uint64 (GKeyFile *kf, const char *key, guint64 *out, GError **error)
{
	g_autofree char *value = vmi_cache_entry_get_key (kf, key, error);
	GError *local_error = NULL;

	if (value == NULL)
		return FALSE;
	if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT64, out, &local_error)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE, "%s: %s", key,
			     local_error->message);
		g_error_free (local_error);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vmi_cache_entry_get_int64 (GKeyFile *kf, const char *key, gint64 *out, GError **error)
{
	g_autofree char *value = vmi_cache_entry_get_key (kf, key, error);
	GError *local_error = NULL;

	if (value == NULL)
		return FALSE;
	if (!g_ascii_string_to_signed (value, 10, G_MININT64, G_MAXINT64, out, &local_error)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE, "%s: %s", key,
			     local_error->message);
		g_error_free (local_error);
		return FALSE;
	}
	return TRUE;
}

VmiCacheEntry *
vmi_cache_entry_from_data (const char *id, const char *data, gsize length, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new ();
	g_autoptr(VmiCacheEntry) entry = vmi_cache_entry_new ();
	g_auto(GStrv) keys = NULL;
	g_autoptr(GError) local_error = NULL;
	guint64 version = 0;
	gsize n_keys = 0;

	if (!g_key_file_load_from_data (kf, data, length, G_KEY_FILE_NONE, &local_error)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE, "%s", local_error->message);
		return NULL;
	}
	if (!vmi_cache_entry_get_uint64 (kf, "Version", &version, error))
		return NULL;
	if (version != VMI_CACHE_ENTRY_VERSION) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "metadata version %" G_GUINT64_FORMAT " is not %u", version,
			     VMI_CACHE_ENTRY_VERSION);
		return NULL;
	}
	g_free (entry->name);
	g_free (entry->source);
	entry->name = NULL;
	entry->source = NULL;
	if ((entry->id = vmi_cache_entry_get_key (kf, "Id", error)) == NULL ||
	    (entry->name = vmi_cache_entry_get_key (kf, "Name", error)) == NULL ||
	    (entry->format = vmi_cache_entry_get_key (kf, "Format", error)) == NULL ||
	    (entry->checksum = vmi_cache_entry_get_key (kf, "Checksum", error)) == NULL ||
	    (entry->content_checksum = vmi_cache_entry_get_key (kf, "ContentChecksum", error)) == NULL ||
	    (entry->source = vmi_cache_entry_get_key (kf, "Source", error)) == NULL ||
	    !vmi_cache_entry_get_uint64 (kf, "VirtualSize", &entry->virtual_size, error) ||
	    !vmi_cache_entry_get_uint64 (kf, "FileSize", &entry->file_size, error) ||
	    !vmi_cache_entry_get_int64 (kf, "Created", &entry->created, error) ||
	    !vmi_cache_entry_get_int64 (kf, "LastUsed", &entry->last_used, error))
		return NULL;
	if (strcmp (entry->id, id) != 0 || !vmi_cache_entry_is_hex (entry->checksum, 64) ||
	    !vmi_cache_entry_is_hex (entry->content_checksum, 64) ||
	    !g_str_has_prefix (entry->content_checksum, entry->id)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the id, checksum or content checksum is malformed or does not match "
			     "the file name %s",
			     id);
		return NULL;
	}
	keys = g_key_file_get_keys (kf, VMI_CACHE_PROPERTIES_GROUP, &n_keys, NULL);
	if (n_keys > VMI_CACHE_ENTRY_MAX_PROPERTIES) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%" G_GSIZE_FORMAT " properties; at most %u are allowed", n_keys,
			     VMI_CACHE_ENTRY_MAX_PROPERTIES);
		return NULL;
	}
	for (gsize i = 0; i < n_keys; i++) {
		g_autofree char *value = g_key_file_get_string (kf, VMI_CACHE_PROPERTIES_GROUP,
								keys[i], NULL);

		if (value == NULL) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "property “%s” has no readable value", keys[i]);
			return NULL;
		}
		if (!vmi_cache_entry_check_property (keys[i], value, error))
			return NULL;
		g_hash_table_insert (entry->properties, g_strdup (keys[i]), g_steal_pointer (&value));
	}
	return g_steal_pointer (&entry);
}
