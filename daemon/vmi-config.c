/* The daemon's settings: compiled-in defaults, then the config file, then the command line. */
#include "config.h"

#include <string.h>

#include "vmi-config.h"

static const char *const vmi_config_keys[] = {
	"PluginDirectory", "CacheDirectory", "CacheLimit", "MaxParallelJobs", "JobLingerSeconds", NULL,
};

VmiConfig *
vmi_config_new (void)
{
	VmiConfig *self = g_new0 (VmiConfig, 1);

	self->plugin_dir = g_strdup (VMI_PLUGIN_DIR);
	self->cache_dir = g_strdup (VMI_SYSTEM_CACHE_DIR);
	self->max_parallel_jobs = VMI_CONFIG_DEFAULT_MAX_PARALLEL_JOBS;
	self->job_linger_seconds = VMI_CONFIG_DEFAULT_JOB_LINGER_SECONDS;
	return self;
}

void
vmi_config_free (VmiConfig *self)
{
	if (self == NULL)
		return;
	g_free (self->plugin_dir);
	g_free (self->cache_dir);
	g_free (self);
}

static gboolean
vmi_config_get_uint (GKeyFile *kf, const char *path, const char *key, guint min, guint max,
		     guint *out, GError **error)
{
	g_autofree char *text = NULL;
	guint64 value = 0;
	g_autoptr(GError) error_local = NULL;

	if (!g_key_file_has_key (kf, VMI_CONFIG_GROUP, key, NULL))
		return TRUE;
	text = g_key_file_get_string (kf, VMI_CONFIG_GROUP, key, error);
	if (text == NULL)
		return FALSE;
	g_strstrip (text);
	if (!g_ascii_string_to_unsigned (text, 10, min, max, &value, &error_local)) {
		g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
			     "%s: [%s] %s: %s", path, VMI_CONFIG_GROUP, key, error_local->message);
		return FALSE;
	}
	*out = (guint) value;
	return TRUE;
}

/* CacheLimit: a number of bytes, with an optional K, M, G or T suffix (powers of 1024). */
static gboolean
vmi_config_get_size (GKeyFile *kf, const char *path, const char *key, guint64 *out,
		     GError **error)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) error_local = NULL;
	guint64 value = 0;
	guint64 unit = 1;
	gsize len;

	if (!g_key_file_has_key (kf, VMI_CONFIG_GROUP, key, NULL))
		return TRUE;
	text = g_key_file_get_string (kf, VMI_CONFIG_GROUP, key, error);
	if (text == NULL)
		return FALSE;
	g_strstrip (text);
	len = strlen (text);
	if (len > 0) {
		const char *suffixes = "KMGT";
		const char *found = strchr (suffixes, g_ascii_toupper (text[len - 1]));

		if (found != NULL && text[len - 1] != '\0') {
			for (const char *s = suffixes; s <= found; s++)
				unit *= 1024;
			text[len - 1] = '\0';
		}
	}
	if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64 / unit, &value, &error_local)) {
		g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
			     "%s: [%s] %s: %s (give bytes, or a number with K, M, G or T)", path,
			     VMI_CONFIG_GROUP, key, error_local->message);
		return FALSE;
	}
	*out = value * unit;
	return TRUE;
}

static gboolean
vmi_config_get_path (GKeyFile *kf, const char *path, const char *key, char **out, GError **error)
{
	g_autofree char *value = NULL;

	if (!g_key_file_has_key (kf, VMI_CONFIG_GROUP, key, NULL))
		return TRUE;
	value = g_key_file_get_string (kf, VMI_CONFIG_GROUP, key, error);
	if (value == NULL)
		return FALSE;
	g_strstrip (value);
	if (!g_path_is_absolute (value)) {
		g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
			     "%s: [%s] %s must be an absolute path, not \"%s\"", path,
			     VMI_CONFIG_GROUP, key, value);
		return FALSE;
	}
	g_free (*out);
	*out = g_steal_pointer (&value);
	return TRUE;
}

static gboolean
vmi_config_check_keys (GKeyFile *kf, const char *path, GError **error)
{
	g_auto(GStrv) groups = g_key_file_get_groups (kf, NULL);
	g_auto(GStrv) keys = NULL;

	for (guint i = 0; groups[i] != NULL; i++) {
		if (g_strcmp0 (groups[i], VMI_CONFIG_GROUP) != 0) {
			g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
				     "%s: unknown group [%s]; the settings belong in [%s]", path,
				     groups[i], VMI_CONFIG_GROUP);
			return FALSE;
		}
	}
	keys = g_key_file_get_keys (kf, VMI_CONFIG_GROUP, NULL, NULL);
	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		if (!g_strv_contains (vmi_config_keys, keys[i])) {
			g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
				     "%s: unknown key %s in [%s]", path, keys[i], VMI_CONFIG_GROUP);
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
vmi_config_load_file (VmiConfig *self, const char *path, gboolean required, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new ();
	g_autoptr(GError) error_local = NULL;

	if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &error_local)) {
		if (!required && g_error_matches (error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		g_propagate_prefixed_error (error, g_steal_pointer (&error_local), "%s: ", path);
		return FALSE;
	}
	if (!vmi_config_check_keys (kf, path, error))
		return FALSE;
	if (!vmi_config_get_path (kf, path, "PluginDirectory", &self->plugin_dir, error))
		return FALSE;
	if (g_key_file_has_key (kf, VMI_CONFIG_GROUP, "CacheDirectory", NULL))
		self->cache_dir_set = TRUE;
	if (!vmi_config_get_path (kf, path, "CacheDirectory", &self->cache_dir, error))
		return FALSE;
	if (!vmi_config_get_size (kf, path, "CacheLimit", &self->cache_limit, error))
		return FALSE;
	if (!vmi_config_get_uint (kf, path, "MaxParallelJobs", 1, 64, &self->max_parallel_jobs, error))
		return FALSE;
	if (!vmi_config_get_uint (kf, path, "JobLingerSeconds", 0, 7 * 24 * 3600,
				  &self->job_linger_seconds, error))
		return FALSE;
	return TRUE;
}
