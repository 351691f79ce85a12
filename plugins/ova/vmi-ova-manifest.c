#include <string.h>

#include "vmi-ova-manifest.h"
#include "vmi-plugin-util.h"

#define MANIFEST_CHUNK (1024u * 1024u)

void
vmi_ova_manifest_free (VmiOvaManifest *self)
{
	if (self == NULL)
		return;
	g_free (self->name);
	g_ptr_array_unref (self->algorithms);
	g_ptr_array_unref (self->mismatches);
	g_ptr_array_unref (self->missing);
	g_ptr_array_unref (self->unlisted);
	g_ptr_array_unref (self->unchecked);
	g_free (self);
}

static gboolean
manifest_algorithm (const char *name, gsize len, GChecksumType *type, gsize *hex_len)
{
	static const struct {
		const char *name;
		GChecksumType type;
		gsize hex_len;
	} algorithms[] = {
		{ "SHA1", G_CHECKSUM_SHA1, 40 },
		{ "SHA256", G_CHECKSUM_SHA256, 64 },
		{ "SHA512", G_CHECKSUM_SHA512, 128 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS (algorithms); i++) {
		if (strlen (algorithms[i].name) == len &&
		    g_ascii_strncasecmp (name, algorithms[i].name, len) == 0) {
			*type = algorithms[i].type;
			*hex_len = algorithms[i].hex_len;
			return TRUE;
		}
	}
	return FALSE;
}

/*
 * "ALG(name)= hex" or "ALG (name) = hex". The name runs from the first '(' to the ')' before
 * the last '=', so names with parentheses or '=' still parse.
 */
static gboolean
manifest_parse_line (char *line, const char **algorithm, GChecksumType *type, char **name,
		     char **digest)
{
	char *open = strchr (line, '(');
	char *equals = strrchr (line, '=');
	char *close;
	gsize alg_len, hex_len;

	if (open == NULL || equals == NULL || equals < open)
		return FALSE;
	alg_len = (gsize) (open - line);
	while (alg_len > 0 && line[alg_len - 1] == ' ')
		alg_len--;
	if (!manifest_algorithm (line, alg_len, type, &hex_len))
		return FALSE;
	*algorithm = *type == G_CHECKSUM_SHA1 ? "SHA1" : *type == G_CHECKSUM_SHA256 ? "SHA256" : "SHA512";
	close = equals;
	while (close > open && close[-1] == ' ')
		close--;
	if (close - 1 <= open || close[-1] != ')')
		return FALSE;
	close--;
	*digest = g_strstrip (equals + 1);
	if (strlen (*digest) != hex_len)
		return FALSE;
	for (const char *c = *digest; *c != '\0'; c++) {
		if (!g_ascii_isxdigit (*c))
			return FALSE;
	}
	*close = '\0';
	*name = open + 1;
	return TRUE;
}

/* The hex digest of size bytes at offset of fd, read in chunks. */
static char *
manifest_hash (int fd, guint64 offset, guint64 size, GChecksumType type,
	       GCancellable *cancellable, GError **error)
{
	g_autoptr(GChecksum) checksum = g_checksum_new (type);
	g_autofree guint8 *buf = g_malloc (MANIFEST_CHUNK);

	while (size > 0) {
		gsize len = (gsize) MIN (size, MANIFEST_CHUNK);

		if (g_cancellable_set_error_if_cancelled (cancellable, error))
			return NULL;
		if (!vmi_pread_all (fd, buf, len, offset, "OVA archive", error))
			return NULL;
		g_checksum_update (checksum, buf, len);
		offset += len;
		size -= len;
	}
	return g_strdup (g_checksum_get_string (checksum));
}

/* The manifest's text is not known to be UTF-8; what it names ends up in GVariant strings. */
static void
manifest_add_unique (GPtrArray *array, const char *s)
{
	g_autofree char *valid = g_utf8_make_valid (s, -1);

	if (!g_ptr_array_find_with_equal_func (array, valid, g_str_equal, NULL))
		g_ptr_array_add (array, g_steal_pointer (&valid));
}

VmiOvaManifest *
vmi_ova_manifest_check (const char *name, const char *text, gsize len, int fd,
			VmiOvaMemberLookup lookup, gpointer user_data, const char *const *covered,
			guint n_covered, GCancellable *cancellable, GError **error)
{
	g_autoptr(VmiOvaManifest) self = g_new0 (VmiOvaManifest, 1);
	g_autoptr(GHashTable) listed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
	g_auto(GStrv) lines = NULL;
	guint64 budget = VMI_OVA_MAX_HASH_BYTES;

	self->name = g_strdup (name);
	self->algorithms = g_ptr_array_new_with_free_func (g_free);
	self->mismatches = g_ptr_array_new_with_free_func (g_free);
	self->missing = g_ptr_array_new_with_free_func (g_free);
	self->unlisted = g_ptr_array_new_with_free_func (g_free);
	self->unchecked = g_ptr_array_new_with_free_func (g_free);
	/* a NUL inside the text ends it: what follows is not a manifest line */
	lines = g_strsplit (text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		char *line = g_strstrip (lines[i]);
		const char *algorithm = NULL;
		GChecksumType type;
		char *member = NULL, *digest = NULL;
		g_autofree char *actual = NULL;
		guint64 offset, size;

		if (line[0] == '\0')
			continue;
		if (!manifest_parse_line (line, &algorithm, &type, &member, &digest)) {
			self->bad_lines++;
			continue;
		}
		self->entries++;
		manifest_add_unique (self->algorithms, algorithm);
		g_hash_table_add (listed, g_strdup (member));
		if (!lookup (member, &offset, &size, user_data)) {
			manifest_add_unique (self->missing, member);
			continue;
		}
		if (size > budget) {
			manifest_add_unique (self->unchecked, member);
			continue;
		}
		budget -= size;
		actual = manifest_hash (fd, offset, size, type, cancellable, error);
		if (actual == NULL)
			return NULL;
		if (g_ascii_strcasecmp (actual, digest) != 0)
			manifest_add_unique (self->mismatches, member);
	}
	for (guint i = 0; i < n_covered; i++) {
		if (!g_hash_table_contains (listed, covered[i]))
			manifest_add_unique (self->unlisted, covered[i]);
	}
	self->verified = self->entries > 0 && self->bad_lines == 0 && self->mismatches->len == 0 &&
			 self->missing->len == 0 && self->unlisted->len == 0 &&
			 self->unchecked->len == 0;
	return g_steal_pointer (&self);
}

static GVariant *
manifest_strv (GPtrArray *array)
{
	return g_variant_new_strv ((const char *const *) array->pdata, array->len);
}

void
vmi_ova_manifest_describe (const VmiOvaManifest *self, GVariantDict *dict)
{
	g_variant_dict_insert (dict, "manifest", "s", self->name);
	g_variant_dict_insert_value (dict, "manifest-algorithms", manifest_strv (self->algorithms));
	g_variant_dict_insert (dict, "manifest-verified", "b", self->verified);
	g_variant_dict_insert (dict, "manifest-entries", "u", self->entries);
	g_variant_dict_insert_value (dict, "manifest-mismatches", manifest_strv (self->mismatches));
	g_variant_dict_insert_value (dict, "manifest-missing", manifest_strv (self->missing));
	g_variant_dict_insert_value (dict, "manifest-unlisted", manifest_strv (self->unlisted));
	g_variant_dict_insert_value (dict, "manifest-unchecked", manifest_strv (self->unchecked));
	if (self->bad_lines > 0)
		g_variant_dict_insert (dict, "manifest-bad-lines", "u", self->bad_lines);
}
