#define G_LOG_DOMAIN "vmimaged"

#include "config.h"

#include <errno.h>
#include <gmodule.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-registry.h"

struct _VmiRegistry {
	GObject parent_instance;
	GPtrArray *plugins; /* of const VmiFormatPlugin *, in load order */
	GPtrArray *modules; /* of GModule *, kept open for the registry's life */
};

G_DEFINE_TYPE (VmiRegistry, vmi_registry, G_TYPE_OBJECT)

/* GLib 2.74 has no autoptr for GModule, and g_module_close returns a value. */
static void
vmi_registry_module_close (gpointer module)
{
	if (module != NULL)
		g_module_close (module);
}
typedef GModule VmiModule;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiModule, vmi_registry_module_close)

static void
vmi_registry_finalize (GObject *object)
{
	VmiRegistry *self = VMI_REGISTRY (object);

	g_ptr_array_unref (self->plugins);
	g_ptr_array_unref (self->modules);
	G_OBJECT_CLASS (vmi_registry_parent_class)->finalize (object);
}

static void
vmi_registry_class_init (VmiRegistryClass *klass)
{
	G_OBJECT_CLASS (klass)->finalize = vmi_registry_finalize;
}

static void
vmi_registry_init (VmiRegistry *self)
{
	self->plugins = g_ptr_array_new ();
	self->modules = g_ptr_array_new_with_free_func (vmi_registry_module_close);
}

VmiRegistry *
vmi_registry_new (void)
{
	return g_object_new (VMI_TYPE_REGISTRY, NULL);
}

static const VmiFormatPlugin *
vmi_registry_find (VmiRegistry *self, const char *name)
{
	for (guint i = 0; i < self->plugins->len; i++) {
		const VmiFormatPlugin *plugin = g_ptr_array_index (self->plugins, i);

		if (g_ascii_strcasecmp (plugin->name, name) == 0)
			return plugin;
		for (guint j = 0; plugin->aliases != NULL && plugin->aliases[j] != NULL; j++) {
			if (g_ascii_strcasecmp (plugin->aliases[j], name) == 0)
				return plugin;
		}
	}
	return NULL;
}

static gboolean
vmi_registry_check_plugin (const VmiFormatPlugin *plugin, GError **error)
{
	if (plugin->abi_version != VMI_PLUGIN_ABI_VERSION) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "plugin structure has ABI version %u, the daemon needs %u",
			     plugin->abi_version, VMI_PLUGIN_ABI_VERSION);
		return FALSE;
	}
	if (plugin->name == NULL || plugin->name[0] == '\0' || plugin->probe == NULL ||
	    plugin->open == NULL || plugin->get_info == NULL || plugin->close == NULL) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				     "plugin lacks a name or one of probe, open, get_info, close");
		return FALSE;
	}
	if ((plugin->flags & VMI_FORMAT_CAN_READ) &&
	    (plugin->read == NULL || plugin->block_status == NULL)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "plugin %s says it can read but lacks read or block_status", plugin->name);
		return FALSE;
	}
	if ((plugin->flags & VMI_FORMAT_CAN_WRITE) &&
	    (plugin->create == NULL || plugin->write == NULL || plugin->finish == NULL)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "plugin %s says it can write but lacks create, write or finish",
			     plugin->name);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_registry_add (VmiRegistry *self, const VmiFormatPlugin *plugin, GError **error)
{
	g_return_val_if_fail (VMI_IS_REGISTRY (self), FALSE);

	if (!vmi_registry_check_plugin (plugin, error))
		return FALSE;
	if (vmi_registry_find (self, plugin->name) != NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_EXISTS,
			     "format %s is already provided by another plugin", plugin->name);
		return FALSE;
	}
	for (guint j = 0; plugin->aliases != NULL && plugin->aliases[j] != NULL; j++) {
		if (vmi_registry_find (self, plugin->aliases[j]) != NULL) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_EXISTS,
				     "format alias %s of %s is already taken by another plugin",
				     plugin->aliases[j], plugin->name);
			return FALSE;
		}
	}
	if (plugin->init != NULL && !plugin->init (error))
		return FALSE;
	g_ptr_array_add (self->plugins, (gpointer) plugin);
	return TRUE;
}

static gboolean
vmi_registry_load_module (VmiRegistry *self, const char *path, GError **error)
{
	g_autoptr(VmiModule) module = NULL;
	gpointer abi_symbol = NULL;
	gpointer query_symbol = NULL;
	const VmiFormatPlugin *plugin;

	/* LOCAL: two plugins may use the same internal symbol names without clashing. */
	module = g_module_open (path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
	if (module == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED, "cannot load: %s",
			     g_module_error ());
		return FALSE;
	}
	/* The version is data, read before any code of the module runs. */
	if (!g_module_symbol (module, VMI_PLUGIN_ABI_VERSION_SYMBOL, &abi_symbol) ||
	    abi_symbol == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "no %s symbol: not a vmimaged plugin", VMI_PLUGIN_ABI_VERSION_SYMBOL);
		return FALSE;
	}
	if (*(const guint32 *) abi_symbol != VMI_PLUGIN_ABI_VERSION) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "built for plugin ABI version %u, the daemon needs %u",
			     *(const guint32 *) abi_symbol, VMI_PLUGIN_ABI_VERSION);
		return FALSE;
	}
	if (!g_module_symbol (module, VMI_PLUGIN_QUERY_SYMBOL, &query_symbol) ||
	    query_symbol == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED, "no %s entry point",
			     VMI_PLUGIN_QUERY_SYMBOL);
		return FALSE;
	}
	plugin = ((VmiPluginQueryFunc) query_symbol) ();
	if (plugin == NULL) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				     "the plugin returned no description");
		return FALSE;
	}
	if (!vmi_registry_add (self, plugin, error))
		return FALSE;
	g_debug ("loaded format %s from %s", plugin->name, path);
	g_ptr_array_add (self->modules, g_steal_pointer (&module));
	return TRUE;
}

static gint
vmi_registry_compare_names (gconstpointer a, gconstpointer b)
{
	return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

gboolean
vmi_registry_load_dir (VmiRegistry *self, const char *dir, GError **error)
{
	g_autoptr(GDir) gdir = NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
	const char *name;

	g_return_val_if_fail (VMI_IS_REGISTRY (self), FALSE);

	gdir = g_dir_open (dir, 0, error);
	if (gdir == NULL) {
		g_prefix_error (error, "cannot read the plugin directory: ");
		return FALSE;
	}
	while ((name = g_dir_read_name (gdir)) != NULL) {
		if (g_str_has_suffix (name, "." G_MODULE_SUFFIX))
			g_ptr_array_add (names, g_strdup (name));
	}
	/* Sorted, so which of two duplicates wins does not depend on the file system. */
	g_ptr_array_sort (names, vmi_registry_compare_names);
	for (guint i = 0; i < names->len; i++) {
		g_autofree char *path = g_build_filename (dir, g_ptr_array_index (names, i), NULL);
		g_autoptr(GError) local_error = NULL;

		if (!vmi_registry_load_module (self, path, &local_error))
			g_warning ("plugin %s refused: %s", path, local_error->message);
	}
	return TRUE;
}

GPtrArray *
vmi_registry_get_plugins (VmiRegistry *self)
{
	g_return_val_if_fail (VMI_IS_REGISTRY (self), NULL);
	return self->plugins;
}

const VmiFormatPlugin *
vmi_registry_lookup (VmiRegistry *self, const char *name, GError **error)
{
	const VmiFormatPlugin *plugin;
	g_autoptr(GString) known = g_string_new (NULL);

	g_return_val_if_fail (VMI_IS_REGISTRY (self), NULL);

	plugin = vmi_registry_find (self, name);
	if (plugin != NULL)
		return plugin;
	for (guint i = 0; i < self->plugins->len; i++) {
		const VmiFormatPlugin *p = g_ptr_array_index (self->plugins, i);
		g_string_append_printf (known, "%s%s", known->len > 0 ? ", " : "", p->name);
	}
	g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
		     "no format named \"%s\"; this daemon knows: %s", name,
		     known->len > 0 ? known->str : "none (no plugins loaded)");
	return NULL;
}

static gboolean
vmi_registry_pread_all (int fd, guint8 *buf, gsize len, guint64 offset, gsize *out_len,
			GError **error)
{
	gsize done = 0;

	while (done < len) {
		ssize_t n = pread (fd, buf + done, len - done, (off_t) (offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int errsv = errno;
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "cannot read the image at offset %" G_GUINT64_FORMAT ": %s",
				     offset + done, g_strerror (errsv));
			return FALSE;
		}
		if (n == 0)
			break;
		done += (gsize) n;
	}
	*out_len = done;
	return TRUE;
}

const VmiFormatPlugin *
vmi_registry_probe_fd (VmiRegistry *self, int fd, GError **error)
{
	return vmi_registry_classify_fd (self, fd, FALSE, NULL, error);
}

const VmiFormatPlugin *
vmi_registry_classify_fd (VmiRegistry *self, int fd, gboolean classify, GPtrArray *others,
			  GError **error)
{
	guint64 file_size;
	struct stat st;

	g_return_val_if_fail (VMI_IS_REGISTRY (self), NULL);

	if (fstat (fd, &st) != 0) {
		int errsv = errno;
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "cannot stat the image: %s",
			     g_strerror (errsv));
		return NULL;
	}
	file_size = (guint64) st.st_size;
	if (S_ISBLK (st.st_mode)) {
		/* st_size is 0 for a block device */
		off_t end = lseek (fd, 0, SEEK_END);

		file_size = end > 0 ? (guint64) end : 0;
	}
	/* 0 for a size unknown: the head read finds the end */
	return vmi_registry_classify_range (self, fd, 0, file_size > 0 ? file_size : G_MAXUINT64,
					    classify, others, error);
}

const VmiFormatPlugin *
vmi_registry_classify_range (VmiRegistry *self, int fd, guint64 offset, guint64 size,
			     gboolean classify, GPtrArray *others, GError **error)
{
	g_autoptr(GPtrArray) sure = g_ptr_array_new ();
	g_autofree guint8 *head = g_malloc (VMI_PROBE_HEAD_SIZE);
	guint8 tail_buf[VMI_PROBE_TAIL_SIZE];
	const guint8 *tail;
	gsize head_len = 0, tail_len = 0;
	guint64 file_size;
	const VmiFormatPlugin *best = NULL;
	guint best_score = VMI_PROBE_NO;

	g_return_val_if_fail (VMI_IS_REGISTRY (self), NULL);

	if (!vmi_registry_pread_all (fd, head, (gsize) MIN (size, VMI_PROBE_HEAD_SIZE), offset,
				     &head_len, error))
		return NULL;
	/* a file that ends before the range does is as long as what was read */
	file_size = head_len < MIN (size, VMI_PROBE_HEAD_SIZE) ? head_len : size;
	if (file_size <= head_len) {
		tail_len = MIN (head_len, VMI_PROBE_TAIL_SIZE);
		tail = head + head_len - tail_len;
	} else {
		if (!vmi_registry_pread_all (fd, tail_buf, VMI_PROBE_TAIL_SIZE,
					     offset + file_size - VMI_PROBE_TAIL_SIZE, &tail_len, error))
			return NULL;
		tail = tail_buf;
	}
	for (guint i = 0; i < self->plugins->len; i++) {
		const VmiFormatPlugin *plugin = g_ptr_array_index (self->plugins, i);
		guint score;

		if ((plugin->flags & VMI_FORMAT_CLASSIFY_ONLY) && !classify)
			continue;
		score = plugin->probe (head, head_len, file_size);
		if (plugin->probe_tail != NULL)
			score = MAX (score, plugin->probe_tail (tail, tail_len, file_size));
		if (score >= VMI_PROBE_LIKELY)
			g_ptr_array_add (sure, (gpointer) plugin);
		if (score > best_score) {
			best_score = score;
			best = plugin;
		}
	}
	if (best == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "no loaded format recognises this %" G_GUINT64_FORMAT "-byte file",
			     file_size);
		return NULL;
	}
	for (guint i = 0; others != NULL && i < sure->len; i++) {
		if (g_ptr_array_index (sure, i) != best)
			g_ptr_array_add (others, g_ptr_array_index (sure, i));
	}
	return best;
}

static GVariant *
vmi_registry_strv_variant (const char *const *strv)
{
	return g_variant_new_strv (strv != NULL ? strv : (const char *const[]){ NULL }, -1);
}

GVariant *
vmi_registry_describe (VmiRegistry *self)
{
	GVariantBuilder formats;

	g_return_val_if_fail (VMI_IS_REGISTRY (self), NULL);

	g_variant_builder_init (&formats, G_VARIANT_TYPE ("a{sa{sv}}"));
	for (guint i = 0; i < self->plugins->len; i++) {
		const VmiFormatPlugin *plugin = g_ptr_array_index (self->plugins, i);
		GVariantBuilder props, create_options;

		g_variant_builder_init (&create_options, G_VARIANT_TYPE ("a{ss}"));
		for (const VmiOptionSpec *spec = plugin->create_options;
		     spec != NULL && spec->name != NULL; spec++)
			g_variant_builder_add (&create_options, "{ss}", spec->name,
					       spec->description != NULL ? spec->description : "");
		g_variant_builder_init (&props, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add (&props, "{sv}", "description",
				       g_variant_new_string (plugin->description != NULL
								     ? plugin->description
								     : plugin->name));
		g_variant_builder_add (&props, "{sv}", "extensions",
				       vmi_registry_strv_variant (plugin->extensions));
		g_variant_builder_add (&props, "{sv}", "aliases",
				       vmi_registry_strv_variant (plugin->aliases));
		g_variant_builder_add (&props, "{sv}", "can-inspect",
				       g_variant_new_boolean (plugin->flags & VMI_FORMAT_CAN_INSPECT));
		g_variant_builder_add (&props, "{sv}", "can-read",
				       g_variant_new_boolean (plugin->flags & VMI_FORMAT_CAN_READ));
		g_variant_builder_add (&props, "{sv}", "can-write",
				       g_variant_new_boolean (plugin->flags & VMI_FORMAT_CAN_WRITE));
		g_variant_builder_add (&props, "{sv}", "create-options",
				       g_variant_builder_end (&create_options));
		g_variant_builder_add (&formats, "{s@a{sv}}", plugin->name,
				       g_variant_builder_end (&props));
	}
	return g_variant_ref_sink (g_variant_builder_end (&formats));
}
