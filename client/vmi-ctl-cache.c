/*
 * vmimagectl cache: the daemon's image cache. import, export and verify are jobs followed with
 * a progress display (Ctrl-C cancels them); list, rm, prune and set are single calls.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "vmi-ctl-follow.h"
#include "vmi-json.h"

/* The ID column of the table shows this many digits; any unique prefix of 4 or more works. */
#define CACHE_SHORT_ID_LENGTH 12
#define CACHE_MIN_PREFIX_LENGTH 4
/* Longer names are cut in the table (not in --json). */
#define CACHE_NAME_COLUMN_MAX 40

/* ---- The cache's images, as the object manager lists them ---- */

/* A client of the daemon's object manager; an error when the daemon is not on the bus. */
static GDBusObjectManager *
cache_object_manager (VmiCtl *ctl, GError **error)
{
	g_autoptr (GDBusConnection) connection = vmi_ctl_get_bus (ctl, error);
	g_autoptr (GDBusObjectManager) manager = NULL;
	g_autofree char *owner = NULL;

	if (connection == NULL)
		return NULL;
	manager = vmi_object_manager_client_new_sync (connection,
						      G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
						      VMI_CTL_BUS_NAME, VMI_CTL_ROOT_PATH, NULL,
						      error);
	if (manager == NULL)
		return NULL;
	owner = g_dbus_object_manager_client_get_name_owner (
		G_DBUS_OBJECT_MANAGER_CLIENT (manager));
	if (owner == NULL) {
		g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN,
			     "vmimaged is not running on the %s bus (nobody owns %s)%s",
			     vmi_ctl_bus_type (ctl) == G_BUS_TYPE_SESSION ? "session" : "system",
			     VMI_CTL_BUS_NAME,
			     vmi_ctl_bus_type (ctl) == G_BUS_TYPE_SESSION ? "" :
			     "; for a daemon started with --session, use vmimagectl --session");
		return NULL;
	}
	return g_steal_pointer (&manager);
}

static int
compare_images (gconstpointer a, gconstpointer b)
{
	VmiCacheImage *x = *(VmiCacheImage *const *) a;
	VmiCacheImage *y = *(VmiCacheImage *const *) b;
	int by_name = g_strcmp0 (vmi_cache_image_get_name (x), vmi_cache_image_get_name (y));

	return by_name != 0 ? by_name :
	       g_strcmp0 (vmi_cache_image_get_id (x), vmi_cache_image_get_id (y));
}

/* Every Image (referenced), sorted by name, then id. */
static GPtrArray *
cache_images (GDBusObjectManager *manager)
{
	GPtrArray *images = g_ptr_array_new_with_free_func (g_object_unref);
	g_autolist (GDBusObject) objects = g_dbus_object_manager_get_objects (manager);

	for (GList *l = objects; l != NULL; l = l->next) {
		VmiCacheImage *image = vmi_object_get_cache_image (VMI_OBJECT (l->data));

		if (image != NULL)
			g_ptr_array_add (images, image);
	}
	g_ptr_array_sort (images, compare_images);
	return images;
}

static gboolean
is_hex_prefix (const char *text)
{
	if (strlen (text) < CACHE_MIN_PREFIX_LENGTH)
		return FALSE;
	for (const char *p = text; *p != '\0'; p++) {
		if (!g_ascii_isxdigit (*p) || g_ascii_isupper (*p))
			return FALSE;
	}
	return TRUE;
}

static char *
ids_of (GPtrArray *images)
{
	g_autoptr (GString) text = g_string_new (NULL);

	for (guint i = 0; i < images->len; i++)
		g_string_append_printf (text, "%s%s", i > 0 ? ", " : "",
					vmi_cache_image_get_id (g_ptr_array_index (images, i)));
	return g_strdup (text->str);
}

/*
 * The image that text names: its full Id; else its Name, if only one image has it; else a
 * unique prefix of its Id (4 digits or more). Anything else is an error saying what to do.
 */
static VmiCacheImage *
cache_find_image (GDBusObjectManager *manager, const char *text, GError **error)
{
	g_autoptr (GPtrArray) images = cache_images (manager);
	g_autoptr (GPtrArray) named = g_ptr_array_new ();
	g_autoptr (GPtrArray) prefixed = g_ptr_array_new ();
	g_autofree char *ids = NULL;

	for (guint i = 0; i < images->len; i++) {
		VmiCacheImage *image = g_ptr_array_index (images, i);

		if (g_strcmp0 (vmi_cache_image_get_id (image), text) == 0)
			return g_object_ref (image);
		if (g_strcmp0 (vmi_cache_image_get_name (image), text) == 0)
			g_ptr_array_add (named, image);
		if (is_hex_prefix (text) && g_str_has_prefix (vmi_cache_image_get_id (image), text))
			g_ptr_array_add (prefixed, image);
	}
	if (named->len == 1)
		return g_object_ref (g_ptr_array_index (named, 0));
	if (named->len > 1) {
		ids = ids_of (named);
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
			     "%u images are named “%s” (%s); give the id of the one you mean",
			     named->len, text, ids);
		return NULL;
	}
	if (prefixed->len == 1)
		return g_object_ref (g_ptr_array_index (prefixed, 0));
	if (prefixed->len > 1) {
		ids = ids_of (prefixed);
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
			     "%u image ids start with “%s” (%s); give more digits", prefixed->len,
			     text, ids);
		return NULL;
	}
	g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
		     "the cache has no image with the id or name “%s”; 'vmimagectl cache list' "
		     "shows them", text);
	return NULL;
}

/*
 * text with control characters replaced by "?": a name may come from a file name, which may
 * hold a newline or an escape sequence, and must not break a table or the terminal.
 */
static char *
printable (const char *text)
{
	char *copy = g_strdup (text);

	for (char *p = copy; *p != '\0'; p++) {
		if ((guchar) *p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	return copy;
}

/* "ID (NAME)", or "ID" for an image without a name. */
static char *
image_label (VmiCacheImage *image)
{
	const char *name = vmi_cache_image_get_name (image);
	g_autofree char *shown = NULL;

	if (name == NULL || *name == '\0')
		return g_strdup (vmi_cache_image_get_id (image));
	shown = printable (name);
	return g_strdup_printf ("%s (%s)", vmi_cache_image_get_id (image), shown);
}

/* The image object in a cache job's Result. */
static VmiCacheImage *
job_result_image (VmiCtlFollow *run, GDBusConnection *connection, GError **error)
{
	const char *path = NULL;

	if (run->result == NULL || !g_variant_lookup (run->result, "image", "&o", &path)) {
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
			     "the job completed without naming its image");
		return NULL;
	}
	return vmi_cache_image_proxy_new_sync (connection, G_DBUS_PROXY_FLAGS_NONE,
					       VMI_CTL_BUS_NAME, path, NULL, error);
}

/* ---- import ---- */

typedef struct {
	VmiCtlFollow run;
	GDBusConnection *connection;
	char *source;
} ImportRun;

static void
on_import_started (GObject *object, GAsyncResult *result, gpointer user_data)
{
	ImportRun *import = user_data;
	g_autoptr (GError) error = NULL;
	g_autofree char *job_path = NULL;
	g_autofree char *what = NULL;

	if (!vmi_manager_call_cache_import_finish (VMI_MANAGER (object), &job_path, result,
						   &error))
		what = g_strdup_printf ("cannot import %s", import->source);
	vmi_ctl_follow_started (&import->run, import->connection, job_path, what, error);
}

/* n_pairs < 0: pairs ends with NULL. */
static gboolean
parse_properties (const char *command, char **pairs, int n_pairs, GVariantBuilder *builder)
{
	for (int i = 0; pairs != NULL && (n_pairs < 0 || i < n_pairs) && pairs[i] != NULL; i++) {
		const char *eq = strchr (pairs[i], '=');
		g_autofree char *key = NULL;

		if (eq == NULL || eq == pairs[i] || !g_utf8_validate (pairs[i], -1, NULL)) {
			g_printerr ("vmimagectl %s: property \"%s\" is not of the form key=value\n",
				    command, pairs[i]);
			return FALSE;
		}
		key = g_strndup (pairs[i], (gsize) (eq - pairs[i]));
		g_variant_builder_add (builder, "{ss}", key, eq + 1);
	}
	return TRUE;
}

/* The images a completed import names: "images" for a container, else "image". */
static GPtrArray *
job_result_images (VmiCtlFollow *run, GDBusConnection *connection, GError **error)
{
	g_autoptr (GPtrArray) images = g_ptr_array_new_with_free_func (g_object_unref);
	g_autofree const char **paths = NULL;

	if (run->result == NULL ||
	    !g_variant_lookup (run->result, "images", "^a&o", &paths)) {
		VmiCacheImage *image = job_result_image (run, connection, error);

		if (image == NULL)
			return NULL;
		g_ptr_array_add (images, image);
		return g_steal_pointer (&images);
	}
	for (guint i = 0; paths[i] != NULL; i++) {
		VmiCacheImage *image = vmi_cache_image_proxy_new_sync (
			connection, G_DBUS_PROXY_FLAGS_NONE, VMI_CTL_BUS_NAME, paths[i], NULL, error);

		if (image == NULL)
			return NULL;
		g_ptr_array_add (images, image);
	}
	if (images->len == 0) {
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
			     "the job completed without naming its images");
		return NULL;
	}
	return g_steal_pointer (&images);
}

static gboolean
was_listed (GPtrArray *before, VmiCacheImage *image)
{
	for (guint i = 0; i < before->len; i++) {
		if (g_strcmp0 (vmi_cache_image_get_id (g_ptr_array_index (before, i)),
			       vmi_cache_image_get_id (image)) == 0)
			return TRUE;
	}
	return FALSE;
}

/* "ID (NAME): FORMAT, virtual size V, size S" */
static char *
describe_image (VmiCacheImage *image)
{
	g_autofree char *label = image_label (image);
	g_autofree char *vsize = vmi_ctl_format_size (vmi_cache_image_get_virtual_size (image));
	g_autofree char *size = vmi_ctl_format_size (vmi_cache_image_get_size (image));

	return g_strdup_printf ("%s: %s, virtual size %s, size %s", label,
				vmi_cache_image_get_format (image), vsize, size);
}

/*
 * What an import gave: one line for an image; for a container (an OVA, a UEC tarball) a line
 * per image, the main one first. quiet: the ids alone, one a line.
 */
static void
print_imported (const char *source, GPtrArray *images, GPtrArray *before, gboolean quiet)
{
	VmiCacheImage *image = g_ptr_array_index (images, 0);
	g_autofree char *text = NULL;

	if (quiet) {
		for (guint i = 0; i < images->len; i++)
			g_print ("%s\n",
				 vmi_cache_image_get_id (g_ptr_array_index (images, i)));
		return;
	}
	if (images->len == 1) {
		text = describe_image (image);
		if (was_listed (before, image))
			g_print ("%s is already in the cache as %s\n", source, text);
		else
			g_print ("imported %s as %s\n", source, text);
		return;
	}
	g_print ("imported %s: %u images\n", source, images->len);
	for (guint i = 0; i < images->len; i++) {
		g_autofree char *line = describe_image (g_ptr_array_index (images, i));

		g_print ("  %s%s\n", line,
			 was_listed (before, g_ptr_array_index (images, i)) ?
			 " (already in the cache)" : "");
	}
}

static int
cache_import (VmiCtl *ctl, int argc, char **argv)
{
	g_autofree char *name = NULL;
	g_autofree char *format = NULL;
	g_autofree char *source_format = NULL;
	g_auto (GStrv) properties = NULL;
	gboolean quiet = FALSE;
	const GOptionEntry entries[] = {
		{ "name", 'n', 0, G_OPTION_ARG_STRING, &name,
		  "The image's name (default: the file name)", "NAME" },
		{ "format", 'O', 0, G_OPTION_ARG_STRING, &format,
		  "Store the image as FORMAT (default qcow2; raw keeps odd sizes exact)", "FORMAT" },
		{ "source-format", 'f', 0, G_OPTION_ARG_STRING, &source_format,
		  "Skip detection and read FILE as FORMAT", "FORMAT" },
		{ "property", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &properties,
		  "Set a property of the image (repeatable), e.g. os_distro=debian", "KEY=VALUE" },
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet,
		  "Show no progress; print only the image's id", NULL },
		{ NULL }
	};
	ImportRun import = { 0 };
	GVariantBuilder props;
	g_autoptr (GVariantDict) options = g_variant_dict_new (NULL);
	g_autoptr (GError) error = NULL;
	g_autoptr (VmiManager) manager = NULL;
	g_autoptr (GDBusObjectManager) objects = NULL;
	g_autoptr (GPtrArray) before = NULL;
	g_autoptr (GPtrArray) images = NULL;
	int exit_code;

	if (!vmi_ctl_parse_args (ctl, "cache import", "FILE",
				 "Stores a disk image in vmimaged's cache.\n"
				 "The cache keeps one copy of each content: importing an image "
				 "that is already there (in any format) gives the existing image, "
				 "renamed and with the properties given.",
				 "Examples:\n"
				 "  vmimagectl cache import debian-12.qcow2 -p os_distro=debian\n"
				 "  vmimagectl cache import -O raw --name vmlinuz kernel.img\n\n"
				 "Exit status: 0 when the image is in the cache, 1 when the import "
				 "failed, 130 when interrupted by Ctrl-C (nothing is added then).",
				 entries, 1, 1, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	g_variant_builder_init (&props, G_VARIANT_TYPE ("a{ss}"));
	if (!parse_properties ("cache import", properties, -1, &props)) {
		g_variant_builder_clear (&props);
		return VMI_CTL_EXIT_USAGE;
	}
	g_variant_dict_insert_value (options, "properties", g_variant_builder_end (&props));
	if (name != NULL)
		g_variant_dict_insert (options, "name", "s", name);
	if (format != NULL)
		g_variant_dict_insert (options, "format", "s", format);
	if (source_format != NULL)
		g_variant_dict_insert (options, "source-format", "s", source_format);
	/* The job belongs to this command: if we die unexpectedly, the daemon cancels it. */
	g_variant_dict_insert (options, "cancel-on-disconnect", "b", TRUE);

	manager = vmi_ctl_get_manager (ctl, &error);
	if (manager == NULL)
		return vmi_ctl_fail ("cache import", error);
	objects = cache_object_manager (ctl, &error);
	if (objects == NULL)
		return vmi_ctl_fail ("cache import", error);
	before = cache_images (objects);
	import.connection = g_dbus_proxy_get_connection (G_DBUS_PROXY (manager));
	import.source = vmi_ctl_absolute_path (argv[1]);
	vmi_ctl_follow_init (&import.run, "cache import",
			     VMI_CTL_FOLLOW_OWNS_JOB | VMI_CTL_FOLLOW_CANCEL_IS_FAILURE,
			     "nothing was added to the cache", quiet ? NULL : stdout);
	vmi_manager_call_cache_import (manager, import.source, g_variant_dict_end (options), NULL,
				       on_import_started, &import);
	exit_code = vmi_ctl_follow_wait (&import.run);
	if (exit_code == VMI_CTL_EXIT_OK)
		images = job_result_images (&import.run, import.connection, &error);
	vmi_ctl_follow_clear (&import.run);
	if (exit_code == VMI_CTL_EXIT_OK && images == NULL)
		exit_code = vmi_ctl_fail ("cache import", error);
	if (exit_code == VMI_CTL_EXIT_OK)
		print_imported (import.source, images, before, quiet);
	g_free (import.source);
	return exit_code;
}

/* ---- list ---- */

static gboolean
image_is_pinned (VmiCacheImage *image)
{
	GVariant *properties = vmi_cache_image_get_properties (image);
	const char *pinned = NULL;

	/* The daemon's rule (docs/cache.md): true, yes or 1, in any case. */
	if (properties == NULL || !g_variant_lookup (properties, "pinned", "&s", &pinned))
		return FALSE;
	return g_ascii_strcasecmp (pinned, "true") == 0 || g_ascii_strcasecmp (pinned, "yes") == 0 ||
	       strcmp (pinned, "1") == 0;
}

static GVariant *
image_to_variant (VmiCacheImage *image)
{
	GVariantBuilder builder;
	GVariant *properties = vmi_cache_image_get_properties (image);

	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add (&builder, "{sv}", "id",
			       g_variant_new_string (vmi_cache_image_get_id (image)));
	g_variant_builder_add (&builder, "{sv}", "name",
			       g_variant_new_string (vmi_cache_image_get_name (image)));
	g_variant_builder_add (&builder, "{sv}", "format",
			       g_variant_new_string (vmi_cache_image_get_format (image)));
	g_variant_builder_add (&builder, "{sv}", "virtual-size",
			       g_variant_new_uint64 (vmi_cache_image_get_virtual_size (image)));
	g_variant_builder_add (&builder, "{sv}", "size",
			       g_variant_new_uint64 (vmi_cache_image_get_size (image)));
	g_variant_builder_add (&builder, "{sv}", "created",
			       g_variant_new_uint64 (vmi_cache_image_get_created (image)));
	g_variant_builder_add (&builder, "{sv}", "last-used",
			       g_variant_new_uint64 (vmi_cache_image_get_last_used (image)));
	g_variant_builder_add (&builder, "{sv}", "pinned",
			       g_variant_new_boolean (image_is_pinned (image)));
	g_variant_builder_add (&builder, "{sv}", "checksum",
			       g_variant_new_string (vmi_cache_image_get_checksum (image)));
	g_variant_builder_add (&builder, "{sv}", "content-checksum",
			       g_variant_new_string (vmi_cache_image_get_content_checksum (image)));
	g_variant_builder_add (&builder, "{sv}", "source",
			       g_variant_new_string (vmi_cache_image_get_source (image)));
	g_variant_builder_add (&builder, "{sv}", "properties",
			       properties != NULL ? properties :
			       g_variant_new_array (G_VARIANT_TYPE ("{ss}"), NULL, 0));
	return g_variant_builder_end (&builder);
}

/* name cut to at most max characters, ending with "…" when cut, made printable. */
static char *
cut_name (const char *name, glong max)
{
	g_autofree char *head = NULL;
	g_autofree char *cut = NULL;

	if (g_utf8_strlen (name, -1) <= max)
		return printable (name);
	head = g_utf8_substring (name, 0, max - 1);
	cut = g_strconcat (head, "…", NULL);
	return printable (cut);
}

/* text followed by spaces up to width characters (not bytes: names are UTF-8). */
static void
append_padded (GString *out, const char *text, glong width)
{
	g_string_append (out, text);
	for (glong n = g_utf8_strlen (text, -1); n < width; n++)
		g_string_append_c (out, ' ');
}

static char *
format_time (guint64 seconds)
{
	g_autoptr (GDateTime) time = NULL;

	if (seconds == 0 || seconds > (guint64) G_MAXINT64)
		return g_strdup ("-");
	time = g_date_time_new_from_unix_local ((gint64) seconds);
	if (time == NULL)
		return g_strdup ("-");
	return g_date_time_format (time, "%Y-%m-%d %H:%M");
}

static char *
format_images (GPtrArray *images)
{
	g_autoptr (GString) out = g_string_new (NULL);
	g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
	glong name_width = (glong) strlen ("NAME");
	glong format_width = (glong) strlen ("FORMAT");

	for (guint i = 0; i < images->len; i++) {
		VmiCacheImage *image = g_ptr_array_index (images, i);
		const char *name = vmi_cache_image_get_name (image);
		char *shown = cut_name (name != NULL && *name != '\0' ? name : "-",
					CACHE_NAME_COLUMN_MAX);

		name_width = MAX (name_width, g_utf8_strlen (shown, -1));
		format_width = MAX (format_width,
				    (glong) strlen (vmi_cache_image_get_format (image)));
		g_ptr_array_add (names, shown);
	}
	append_padded (out, "ID", CACHE_SHORT_ID_LENGTH + 2);
	append_padded (out, "NAME", name_width + 2);
	append_padded (out, "FORMAT", format_width + 2);
	g_string_append_printf (out, "%12s  %10s  %-16s  %s\n", "VIRTUAL SIZE", "SIZE",
				"LAST USED", "PINNED");
	for (guint i = 0; i < images->len; i++) {
		VmiCacheImage *image = g_ptr_array_index (images, i);
		g_autofree char *id = g_strndup (vmi_cache_image_get_id (image),
						 CACHE_SHORT_ID_LENGTH);
		g_autofree char *vsize = vmi_ctl_format_size (vmi_cache_image_get_virtual_size (image));
		g_autofree char *size = vmi_ctl_format_size (vmi_cache_image_get_size (image));
		g_autofree char *used = format_time (vmi_cache_image_get_last_used (image));

		append_padded (out, id, CACHE_SHORT_ID_LENGTH + 2);
		append_padded (out, g_ptr_array_index (names, i), name_width + 2);
		append_padded (out, vmi_cache_image_get_format (image), format_width + 2);
		g_string_append_printf (out, "%12s  %10s  %-16s  %s\n", vsize, size, used,
					image_is_pinned (image) ? "yes" : "no");
	}
	return g_strdup (out->str);
}

static int
cache_list (VmiCtl *ctl, int argc, char **argv)
{
	gboolean json = FALSE;
	const GOptionEntry entries[] = {
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json,
		  "Print every image with all its properties as a JSON array", NULL },
		{ NULL }
	};
	g_autoptr (GError) error = NULL;
	g_autoptr (GDBusObjectManager) objects = NULL;
	g_autoptr (VmiManager) manager = NULL;
	g_autoptr (GPtrArray) images = NULL;
	g_autofree char *text = NULL;
	g_autofree char *total = NULL;
	g_autofree char *limit = NULL;

	if (!vmi_ctl_parse_args (ctl, "cache list", "",
				 "Lists the images in vmimaged's cache.",
				 "The ID column shows the first 12 digits of each id; any unique "
				 "prefix of 4 digits or more names an image in the other cache "
				 "commands, and so does its name.",
				 entries, 0, 0, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	objects = cache_object_manager (ctl, &error);
	if (objects == NULL)
		return vmi_ctl_fail ("cache list", error);
	images = cache_images (objects);
	if (json) {
		GVariantBuilder builder;

		g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{sv}"));
		for (guint i = 0; i < images->len; i++)
			g_variant_builder_add_value (&builder,
						     image_to_variant (g_ptr_array_index (images, i)));
		g_autoptr (GVariant) all = g_variant_ref_sink (g_variant_builder_end (&builder));
		text = vmi_json_from_variant (all, 4);
		g_print ("%s", text);
		return VMI_CTL_EXIT_OK;
	}
	if (images->len == 0) {
		g_print ("the cache is empty\n");
		return VMI_CTL_EXIT_OK;
	}
	text = format_images (images);
	g_print ("%s", text);
	manager = vmi_ctl_get_manager (ctl, &error);
	if (manager == NULL)
		return vmi_ctl_fail ("cache list", error);
	total = vmi_ctl_format_size (vmi_manager_get_cache_size (manager));
	limit = vmi_ctl_format_size (vmi_manager_get_cache_limit (manager));
	if (vmi_manager_get_cache_limit (manager) == 0)
		g_print ("%u image%s, %s on disk, no limit\n", images->len,
			 images->len == 1 ? "" : "s", total);
	else
		g_print ("%u image%s, %s on disk of a %s limit\n", images->len,
			 images->len == 1 ? "" : "s", total, limit);
	return VMI_CTL_EXIT_OK;
}

/* ---- export ---- */

typedef struct {
	VmiCtlFollow run;
	GDBusConnection *connection;
	char *destination;
} ExportRun;

static void
on_export_started (GObject *object, GAsyncResult *result, gpointer user_data)
{
	ExportRun *export = user_data;
	g_autoptr (GError) error = NULL;
	g_autofree char *job_path = NULL;
	g_autofree char *what = NULL;

	if (!vmi_cache_image_call_export_finish (VMI_CACHE_IMAGE (object), &job_path, result,
						 &error))
		what = g_strdup_printf ("cannot export to %s", export->destination);
	vmi_ctl_follow_started (&export->run, export->connection, job_path, what, error);
}

/* The writable format whose extensions include destination's, or NULL. */
static char *
format_for_extension (VmiCtl *ctl, const char *destination)
{
	g_autoptr (GError) error = NULL;
	g_autoptr (VmiManager) manager = vmi_ctl_get_manager (ctl, &error);
	g_autoptr (GVariant) formats = NULL;
	const char *dot = strrchr (destination, '.');
	const char *slash = strrchr (destination, '/');
	GVariantIter iter;
	const char *name;
	GVariant *info;

	if (manager == NULL || dot == NULL || (slash != NULL && dot < slash) || dot[1] == '\0')
		return NULL;
	formats = vmi_manager_dup_formats (manager);
	if (formats == NULL)
		return NULL;
	g_variant_iter_init (&iter, formats);
	while (g_variant_iter_next (&iter, "{&s@a{sv}}", &name, &info)) {
		g_autoptr (GVariant) owned = info;
		g_autofree const char **extensions = NULL;
		gboolean can_write = FALSE;

		g_variant_lookup (owned, "can-write", "b", &can_write);
		if (!can_write || !g_variant_lookup (owned, "extensions", "^a&s", &extensions))
			continue;
		for (guint i = 0; extensions[i] != NULL; i++) {
			if (g_ascii_strcasecmp (extensions[i], dot + 1) == 0)
				return g_strdup (name);
		}
	}
	return NULL;
}

static int
cache_export (VmiCtl *ctl, int argc, char **argv)
{
	g_autofree char *format = NULL;
	g_auto (GStrv) create_options = NULL;
	gboolean overwrite = FALSE;
	gboolean quiet = FALSE;
	const GOptionEntry entries[] = {
		{ "format", 'O', 0, G_OPTION_ARG_STRING, &format,
		  "Write DESTINATION as FORMAT (default: from its extension, else the stored "
		  "format)", "FORMAT" },
		{ "option", 'o', 0, G_OPTION_ARG_STRING_ARRAY, &create_options,
		  "A create option of the destination format (repeatable)", "KEY=VALUE" },
		{ "overwrite", 0, 0, G_OPTION_ARG_NONE, &overwrite,
		  "Replace the destination if it exists", NULL },
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Show no progress", NULL },
		{ NULL }
	};
	ExportRun export = { 0 };
	g_autoptr (GError) error = NULL;
	g_autoptr (GDBusObjectManager) objects = NULL;
	g_autoptr (VmiCacheImage) image = NULL;
	g_autoptr (GVariantDict) options = g_variant_dict_new (NULL);
	g_autoptr (GVariantDict) result = NULL;
	g_autofree char *label = NULL;
	g_autofree char *vsize = NULL;
	g_autofree char *fsize = NULL;
	const char *written = "?";
	guint64 virtual_size = 0, file_size = 0;
	int exit_code;

	if (!vmi_ctl_parse_args (ctl, "cache export", "ID|NAME DESTINATION",
				 "Writes an image of vmimaged's cache to a file.\n"
				 "The destination appears only when the job completes; Ctrl-C "
				 "cancels the job and leaves nothing behind.",
				 "Examples:\n"
				 "  vmimagectl cache export debian-12 /var/tmp/vm1.qcow2\n"
				 "  vmimagectl cache export 0c7f0e6a disk.vmdk -o subformat=streamOptimized\n\n"
				 "Exit status: 0 when the job completed, 1 when it failed or there is "
				 "no such image, 130 when interrupted by Ctrl-C.",
				 entries, 2, 2, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	if (!vmi_ctl_add_create_options (options, "cache export", create_options))
		return VMI_CTL_EXIT_USAGE;
	if (overwrite)
		g_variant_dict_insert (options, "overwrite", "b", TRUE);
	g_variant_dict_insert (options, "cancel-on-disconnect", "b", TRUE);

	objects = cache_object_manager (ctl, &error);
	if (objects == NULL)
		return vmi_ctl_fail ("cache export", error);
	image = cache_find_image (objects, argv[1], &error);
	if (image == NULL)
		return vmi_ctl_fail ("cache export", error);
	export.destination = vmi_ctl_absolute_path (argv[2]);
	if (format == NULL)
		format = format_for_extension (ctl, export.destination);
	if (format == NULL)
		format = g_strdup (vmi_cache_image_get_format (image));
	export.connection = g_dbus_proxy_get_connection (G_DBUS_PROXY (image));
	vmi_ctl_follow_init (&export.run, "cache export",
			     VMI_CTL_FOLLOW_OWNS_JOB | VMI_CTL_FOLLOW_CANCEL_IS_FAILURE,
			     "the destination was not written", quiet ? NULL : stdout);
	vmi_cache_image_call_export (image, export.destination, format,
				     g_variant_dict_end (options), NULL, on_export_started,
				     &export);
	exit_code = vmi_ctl_follow_wait (&export.run);
	if (exit_code == VMI_CTL_EXIT_OK && !quiet) {
		result = g_variant_dict_new (export.run.result);
		g_variant_dict_lookup (result, "format", "&s", &written);
		g_variant_dict_lookup (result, "virtual-size", "t", &virtual_size);
		g_variant_dict_lookup (result, "file-size", "t", &file_size);
		label = image_label (image);
		vsize = vmi_ctl_format_size (virtual_size);
		fsize = vmi_ctl_format_size (file_size);
		g_print ("wrote %s from %s: %s, virtual size %s, file size %s\n",
			 export.destination, label, written, vsize, fsize);
	}
	g_clear_pointer (&result, g_variant_dict_unref);
	vmi_ctl_follow_clear (&export.run);
	g_free (export.destination);
	return exit_code;
}

/* ---- rm ---- */

static int
cache_rm (VmiCtl *ctl, int argc, char **argv)
{
	g_autoptr (GError) error = NULL;
	g_autoptr (GDBusObjectManager) objects = NULL;
	g_autoptr (VmiCacheImage) image = NULL;
	g_autofree char *label = NULL;
	g_autofree char *what = NULL;

	if (!vmi_ctl_parse_args (ctl, "cache rm", "ID|NAME",
				 "Removes an image from vmimaged's cache.",
				 "An image that a job is exporting or verifying cannot be removed "
				 "until the job ends.",
				 NULL, 1, 1, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	objects = cache_object_manager (ctl, &error);
	if (objects == NULL)
		return vmi_ctl_fail ("cache rm", error);
	image = cache_find_image (objects, argv[1], &error);
	if (image == NULL)
		return vmi_ctl_fail ("cache rm", error);
	label = image_label (image);
	if (!vmi_cache_image_call_remove_sync (image, NULL, &error)) {
		what = g_strdup_printf ("cannot remove %s", label);
		return vmi_ctl_fail (what, error);
	}
	g_print ("removed %s\n", label);
	return VMI_CTL_EXIT_OK;
}

/* ---- prune ---- */

/* CacheSize as it is now (the proxy's copy may lag behind the call's own changes). */
static gboolean
current_cache_size (VmiManager *manager, guint64 *size, GError **error)
{
	g_autoptr (GVariant) reply = NULL;
	g_autoptr (GVariant) value = NULL;

	reply = g_dbus_connection_call_sync (g_dbus_proxy_get_connection (G_DBUS_PROXY (manager)),
					     VMI_CTL_BUS_NAME, VMI_CTL_MANAGER_PATH,
					     "org.freedesktop.DBus.Properties", "Get",
					     g_variant_new ("(ss)", "org.vmimaged.VMImage1.Manager",
							    "CacheSize"),
					     G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, -1,
					     NULL, error);
	if (reply == NULL)
		return FALSE;
	g_variant_get (reply, "(v)", &value);
	if (!g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64)) {
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "CacheSize is not a uint64");
		return FALSE;
	}
	*size = g_variant_get_uint64 (value);
	return TRUE;
}

static int
cache_prune (VmiCtl *ctl, int argc, char **argv)
{
	g_autoptr (GError) error = NULL;
	g_autoptr (VmiManager) manager = NULL;
	g_autofree char *freed_text = NULL;
	g_autofree char *size_text = NULL;
	g_autofree char *limit_text = NULL;
	guint64 freed = 0, size = 0, limit;

	if (!vmi_ctl_parse_args (ctl, "cache prune", "",
				 "Evicts the least recently used images until the cache fits its "
				 "limit (CacheLimit in vmimaged.conf).",
				 "Pinned images (property pinned=true) and images in use by a job "
				 "stay, even when that leaves the cache over its limit. Without a "
				 "limit nothing is evicted.",
				 NULL, 0, 0, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	manager = vmi_ctl_get_manager (ctl, &error);
	if (manager == NULL)
		return vmi_ctl_fail ("cache prune", error);
	if (!vmi_manager_call_cache_prune_sync (manager, &freed, NULL, &error))
		return vmi_ctl_fail ("cache prune", error);
	if (!current_cache_size (manager, &size, &error))
		return vmi_ctl_fail ("cache prune", error);
	limit = vmi_manager_get_cache_limit (manager);
	freed_text = vmi_ctl_format_size (freed);
	size_text = vmi_ctl_format_size (size);
	limit_text = vmi_ctl_format_size (limit);
	if (limit == 0)
		g_print ("the cache has no limit (CacheLimit); nothing to prune; it takes %s\n",
			 size_text);
	else if (size > limit)
		g_print ("freed %s; the cache takes %s, still over its %s limit: the rest is pinned "
			 "or in use\n", freed_text, size_text, limit_text);
	else
		g_print ("freed %s; the cache takes %s of its %s limit\n", freed_text, size_text,
			 limit_text);
	return VMI_CTL_EXIT_OK;
}

/* ---- verify ---- */

typedef struct {
	VmiCtlFollow run;
	GDBusConnection *connection;
	char *label;
} VerifyRun;

static void
on_verify_started (GObject *object, GAsyncResult *result, gpointer user_data)
{
	VerifyRun *verify = user_data;
	g_autoptr (GError) error = NULL;
	g_autofree char *job_path = NULL;
	g_autofree char *what = NULL;

	if (!vmi_cache_image_call_verify_finish (VMI_CACHE_IMAGE (object), &job_path, result,
						 &error))
		what = g_strdup_printf ("cannot verify %s", verify->label);
	vmi_ctl_follow_started (&verify->run, verify->connection, job_path, what, error);
}

static int
cache_verify (VmiCtl *ctl, int argc, char **argv)
{
	gboolean quiet = FALSE;
	const GOptionEntry entries[] = {
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Show no progress", NULL },
		{ NULL }
	};
	VerifyRun verify = { 0 };
	g_autoptr (GError) error = NULL;
	g_autoptr (GDBusObjectManager) objects = NULL;
	g_autoptr (VmiCacheImage) image = NULL;
	int exit_code;

	if (!vmi_ctl_parse_args (ctl, "cache verify", "ID|NAME",
				 "Checks that an image of vmimaged's cache is intact: the daemon "
				 "recomputes the SHA-256 of the stored file and the digest of its "
				 "content and compares them with those recorded at import.",
				 "Exit status: 0 when both match, 1 when one differs (CorruptImage: "
				 "remove the image and import it again) or there is no such image, "
				 "130 when interrupted by Ctrl-C.",
				 entries, 1, 1, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	objects = cache_object_manager (ctl, &error);
	if (objects == NULL)
		return vmi_ctl_fail ("cache verify", error);
	image = cache_find_image (objects, argv[1], &error);
	if (image == NULL)
		return vmi_ctl_fail ("cache verify", error);
	verify.label = image_label (image);
	verify.connection = g_dbus_proxy_get_connection (G_DBUS_PROXY (image));
	vmi_ctl_follow_init (&verify.run, "cache verify",
			     VMI_CTL_FOLLOW_OWNS_JOB | VMI_CTL_FOLLOW_CANCEL_IS_FAILURE,
			     "the image was not fully checked", quiet ? NULL : stdout);
	vmi_cache_image_call_verify (image, NULL, on_verify_started, &verify);
	exit_code = vmi_ctl_follow_wait (&verify.run);
	if (exit_code == VMI_CTL_EXIT_OK)
		g_print ("%s is intact: its file and its content match their checksums\n",
			 verify.label);
	vmi_ctl_follow_clear (&verify.run);
	g_free (verify.label);
	return exit_code;
}

/* ---- set ---- */

static int
cache_set (VmiCtl *ctl, int argc, char **argv)
{
	g_auto (GStrv) unset = NULL;
	const GOptionEntry entries[] = {
		{ "unset", 'u', 0, G_OPTION_ARG_STRING_ARRAY, &unset,
		  "Remove the property KEY (repeatable)", "KEY" },
		{ NULL }
	};
	g_autoptr (GError) error = NULL;
	g_autoptr (GDBusObjectManager) objects = NULL;
	g_autoptr (VmiCacheImage) image = NULL;
	g_autofree char *label = NULL;
	g_autofree char *what = NULL;
	GVariantBuilder set;
	const char *const no_keys[] = { NULL };

	if (!vmi_ctl_parse_args (ctl, "cache set", "ID|NAME [KEY=VALUE…]",
				 "Sets or removes properties of an image in vmimaged's cache.",
				 "The keys are those of OpenStack's image service (os_type, "
				 "os_distro, architecture, hw_firmware_type, min_disk, min_ram, …); "
				 "pinned=true exempts the image from eviction.\n\n"
				 "Examples:\n"
				 "  vmimagectl cache set debian-12 pinned=true os_distro=debian\n"
				 "  vmimagectl cache set 0c7f0e6a --unset pinned",
				 entries, 1, G_MAXINT, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	if (argc < 3 && (unset == NULL || unset[0] == NULL)) {
		g_printerr ("vmimagectl cache set: nothing to change: give KEY=VALUE or --unset KEY\n");
		g_printerr ("Try 'vmimagectl cache set --help'.\n");
		return VMI_CTL_EXIT_USAGE;
	}
	g_variant_builder_init (&set, G_VARIANT_TYPE ("a{ss}"));
	if (!parse_properties ("cache set", argv + 2, argc - 2, &set)) {
		g_variant_builder_clear (&set);
		return VMI_CTL_EXIT_USAGE;
	}
	objects = cache_object_manager (ctl, &error);
	if (objects == NULL) {
		g_variant_builder_clear (&set);
		return vmi_ctl_fail ("cache set", error);
	}
	image = cache_find_image (objects, argv[1], &error);
	if (image == NULL) {
		g_variant_builder_clear (&set);
		return vmi_ctl_fail ("cache set", error);
	}
	label = image_label (image);
	if (!vmi_cache_image_call_set_properties_sync (
		    image, g_variant_builder_end (&set),
		    unset != NULL ? (const char *const *) unset : no_keys, NULL, &error)) {
		what = g_strdup_printf ("cannot change %s", label);
		return vmi_ctl_fail (what, error);
	}
	g_print ("changed the properties of %s\n", label);
	return VMI_CTL_EXIT_OK;
}

/* ---- The command family ---- */

typedef struct {
	const char *name;
	VmiCtlCommandFunc func;
	const char *summary;
} CacheCommand;

static const CacheCommand cache_commands[] = {
	{ "import", cache_import, "Store a disk image in the cache" },
	{ "list", cache_list, "List the images in the cache" },
	{ "export", cache_export, "Write an image of the cache to a file" },
	{ "rm", cache_rm, "Remove an image from the cache" },
	{ "prune", cache_prune, "Evict least recently used images down to the limit" },
	{ "verify", cache_verify, "Check an image against its checksums" },
	{ "set", cache_set, "Set or remove properties of an image" },
};

static void
print_cache_usage (FILE *out)
{
	fprintf (out, "Usage:\n  vmimagectl cache COMMAND [OPTIONS…] [ARGUMENTS…]\n\n"
		 "Manages vmimaged's image cache.\n\nCommands:\n");
	for (gsize i = 0; i < G_N_ELEMENTS (cache_commands); i++)
		fprintf (out, "  %-8s %s\n", cache_commands[i].name, cache_commands[i].summary);
	fprintf (out, "\nAn image is named by its id (or a unique prefix of 4 digits or more) or "
		 "its name.\nRun 'vmimagectl cache COMMAND --help' for a command's options.\n");
}

int
vmi_ctl_cache (VmiCtl *ctl, int argc, char **argv)
{
	/* Bus options may come before the subcommand: "vmimagectl cache --session list". */
	while (argc >= 2 && (strcmp (argv[1], "--session") == 0 ||
			     strcmp (argv[1], "--system") == 0)) {
		if (strcmp (argv[1], "--session") == 0)
			ctl->session = TRUE;
		else
			ctl->system = TRUE;
		argc--;
		argv++;
	}
	if (argc < 2) {
		print_cache_usage (stderr);
		return VMI_CTL_EXIT_USAGE;
	}
	if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 ||
	    strcmp (argv[1], "help") == 0) {
		print_cache_usage (stdout);
		return VMI_CTL_EXIT_OK;
	}
	for (gsize i = 0; i < G_N_ELEMENTS (cache_commands); i++) {
		if (strcmp (argv[1], cache_commands[i].name) == 0)
			return cache_commands[i].func (ctl, argc - 1, argv + 1);
	}
	g_printerr ("vmimagectl cache: unknown command \"%s\"\nTry 'vmimagectl cache --help'.\n",
		    argv[1]);
	return VMI_CTL_EXIT_USAGE;
}
