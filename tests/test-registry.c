/*
 * Tests of plugin loading: which modules the registry takes, which it refuses (with a warning,
 * never an abort), lookup, detection ranking and the Formats description.
 *
 * The modules are the real raw plugin and the test-only ones of tests/modules, copied into a
 * fresh folder under names that fix their load order.
 */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "vmi-test-util.h"

/*
 * g_test_expect_message does not see messages logged with G_LOG_USE_STRUCTURED (GLib 2.74), which
 * the daemon uses, so warnings are captured by a log writer instead. Outside expect_warnings ...
 * check_warnings a warning goes to the default writer, which makes it fatal in a test.
 */
static GPtrArray *captured_warnings; /* of char *, or NULL when not capturing */

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if (captured_warnings != NULL && (level & G_LOG_LEVEL_WARNING) != 0) {
		for (gsize i = 0; i < n_fields; i++) {
			if (strcmp (fields[i].key, "MESSAGE") == 0) {
				g_ptr_array_add (captured_warnings,
						 fields[i].length < 0
							 ? g_strdup (fields[i].value)
							 : g_strndup (fields[i].value, fields[i].length));
				return G_LOG_WRITER_HANDLED;
			}
		}
	}
	return g_log_writer_default (level, fields, n_fields, user_data);
}

static void
expect_warnings (void)
{
	g_assert_null (captured_warnings);
	captured_warnings = g_ptr_array_new_with_free_func (g_free);
}

/* The warnings since expect_warnings match patterns (g_pattern_match_simple), in order. */
static void
check_warnings (const char *const *patterns)
{
	g_autoptr(GPtrArray) got = g_steal_pointer (&captured_warnings);
	guint n = g_strv_length ((char **) patterns);

	for (guint i = 0; i < got->len; i++)
		g_test_message ("warning: %s", (const char *) g_ptr_array_index (got, i));
	g_assert_cmpuint (got->len, ==, n);
	for (guint i = 0; i < n; i++) {
		if (!g_pattern_match_simple (patterns[i], g_ptr_array_index (got, i)))
			g_error ("warning %u is \"%s\", expected \"%s\"", i,
				 (const char *) g_ptr_array_index (got, i), patterns[i]);
	}
}

static char *
real_plugin_path (const char *name)
{
	const char *dir = g_getenv ("VMI_TEST_PLUGIN_DIR");
	g_autofree char *file = g_strdup_printf ("vmi-%s." G_MODULE_SUFFIX, name);

	g_assert_nonnull (dir);
	return g_build_filename (dir, file, NULL);
}

static char *
test_module_path (const char *name)
{
	g_autofree char *file = g_strdup_printf ("test-%s." G_MODULE_SUFFIX, name);

	return g_build_filename (VMI_TEST_MODULES_DIR, file, NULL);
}

static void
copy_file (const char *src, const char *dir, const char *name)
{
	g_autofree char *contents = NULL;
	g_autofree char *dst = g_build_filename (dir, name, NULL);
	gsize len = 0;
	g_autoptr(GError) error = NULL;

	g_file_get_contents (src, &contents, &len, &error);
	g_assert_no_error (error);
	g_file_set_contents (dst, contents, (gssize) len, &error);
	g_assert_no_error (error);
}

/* A plugin folder holding test module `module` as file `name`, "raw" meaning the real one. */
static void
add_module (const char *dir, const char *module, const char *name)
{
	g_autofree char *src = strcmp (module, "raw") == 0 ? real_plugin_path ("raw")
							    : test_module_path (module);
	copy_file (src, dir, name);
}

static VmiRegistry *
load_dir (const char *dir)
{
	g_autoptr(GError) error = NULL;
	VmiRegistry *registry = vmi_registry_new ();

	g_assert_true (vmi_registry_load_dir (registry, dir, &error));
	g_assert_no_error (error);
	return registry;
}

/* The names of the loaded plugins in load order, comma-separated. */
static char *
plugin_names (VmiRegistry *registry)
{
	GPtrArray *plugins = vmi_registry_get_plugins (registry);
	g_autoptr(GString) names = g_string_new (NULL);

	for (guint i = 0; i < plugins->len; i++) {
		const VmiFormatPlugin *plugin = g_ptr_array_index (plugins, i);
		g_string_append_printf (names, "%s%s", i > 0 ? "," : "", plugin->name);
	}
	return g_string_free (g_steal_pointer (&names), FALSE);
}

static void
test_load_refused_modules (void)
{
	static const char *const warnings[] = {
		"plugin */30-abi999.so refused: *999*",
		"plugin */40-noquery.so refused: *vmi_plugin_query*",
		"plugin */45-nullquery.so refused: *",
		"plugin */50-declines.so refused: *helper library is missing*",
		"plugin */60-impostor.so refused: *RAW*",
		"plugin */70-garbage.so refused: *",
		"plugin */80-structabi.so refused: *ABI version*",
		NULL,
	};
	char *dir = vmi_test_tmpdir_new ();
	g_autofree char *garbage = g_build_filename (dir, "70-garbage.so", NULL);
	g_autofree char *readme = g_build_filename (dir, "README", NULL);
	g_autoptr(VmiRegistry) registry = NULL;
	g_autofree char *names = NULL;
	const VmiFormatPlugin *raw;

	/* written in reverse order of their names: the load order must not follow creation */
	add_module (dir, "structabi", "80-structabi.so");
	g_assert_true (g_file_set_contents (garbage, "this is not an ELF file\n", -1, NULL));
	add_module (dir, "impostor", "60-impostor.so");
	add_module (dir, "declines", "50-declines.so");
	add_module (dir, "nullquery", "45-nullquery.so");
	add_module (dir, "noquery", "40-noquery.so");
	add_module (dir, "abi999", "30-abi999.so");
	add_module (dir, "good", "20-good.so");
	add_module (dir, "raw", "10-raw.so");
	/* not a module by its name: ignored without a word */
	g_assert_true (g_file_set_contents (readme, "plugins go here\n", -1, NULL));

	expect_warnings ();
	registry = load_dir (dir);
	check_warnings (warnings);

	names = plugin_names (registry);
	g_assert_cmpstr (names, ==, "raw,good");
	raw = vmi_registry_lookup (registry, "raw", NULL);
	g_assert_nonnull (raw);
	g_assert_cmpstr (raw->description, !=, "Impostor of raw");
	g_assert_true (raw->flags & VMI_FORMAT_CAN_WRITE);
	vmi_test_tmpdir_free (dir);
}

static void
test_load_empty_dir (void)
{
	char *dir = vmi_test_tmpdir_new ();
	g_autoptr(VmiRegistry) registry = load_dir (dir);
	g_autoptr(GVariant) formats = vmi_registry_describe (registry);
	g_autoptr(GError) error = NULL;
	g_autofree char *head = g_build_filename (dir, "file", NULL);
	int fd;

	g_assert_cmpuint (vmi_registry_get_plugins (registry)->len, ==, 0);
	g_assert_cmpstr (g_variant_get_type_string (formats), ==, "a{sa{sv}}");
	g_assert_cmpuint (g_variant_n_children (formats), ==, 0);
	/* and with nothing loaded nothing is recognised, not even as raw */
	g_assert_true (g_file_set_contents (head, "GOOD data", -1, NULL));
	fd = open (head, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	g_assert_null (vmi_registry_probe_fd (registry, fd, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	close (fd);
	g_clear_error (&error);
	g_assert_null (vmi_registry_lookup (registry, "raw", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	vmi_test_tmpdir_free (dir);
}

static void
test_load_missing_dir (void)
{
	char *dir = vmi_test_tmpdir_new ();
	g_autofree char *missing = g_build_filename (dir, "no-such-folder", NULL);
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;

	g_assert_false (vmi_registry_load_dir (registry, missing, &error));
	g_assert_nonnull (error);
	/* the message must say which folder */
	g_assert_nonnull (strstr (error->message, "no-such-folder"));
	g_assert_cmpuint (vmi_registry_get_plugins (registry)->len, ==, 0);
	vmi_test_tmpdir_free (dir);
}

static VmiRegistry *
load_raw_and_good (char **out_dir)
{
	char *dir = vmi_test_tmpdir_new ();

	add_module (dir, "good", "vmi-good.so");
	add_module (dir, "raw", "vmi-raw.so");
	*out_dir = dir;
	return load_dir (dir);
}

static void
test_lookup (void)
{
	static const char *const good_names[] = { "good", "GOOD", "Good", "GoodAlias", "goodalias",
						  "GOODALIAS" };
	char *dir = NULL;
	g_autoptr(VmiRegistry) registry = load_raw_and_good (&dir);
	g_autoptr(GError) error = NULL;
	const VmiFormatPlugin *plugin;

	for (gsize i = 0; i < G_N_ELEMENTS (good_names); i++) {
		plugin = vmi_registry_lookup (registry, good_names[i], &error);
		g_assert_no_error (error);
		g_assert_nonnull (plugin);
		g_assert_cmpstr (plugin->name, ==, "good");
	}
	plugin = vmi_registry_lookup (registry, "Raw", &error);
	g_assert_no_error (error);
	g_assert_cmpstr (plugin->name, ==, "raw");

	/* unknown, and prefixes are not names: the error lists what is known */
	g_assert_null (vmi_registry_lookup (registry, "qcow3", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	g_assert_nonnull (strstr (error->message, "qcow3"));
	g_assert_nonnull (strstr (error->message, "raw"));
	g_assert_nonnull (strstr (error->message, "good"));
	g_clear_error (&error);
	g_assert_null (vmi_registry_lookup (registry, "goo", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	g_clear_error (&error);
	g_assert_null (vmi_registry_lookup (registry, "", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	vmi_test_tmpdir_free (dir);
}

/* Which plugin detection picks for a file holding contents. */
static const char *
probe_contents (VmiRegistry *registry, const char *dir, const void *contents, gsize len)
{
	g_autofree char *path = g_build_filename (dir, "probe-me", NULL);
	g_autoptr(GError) error = NULL;
	const VmiFormatPlugin *plugin;
	int fd;

	g_assert_true (g_file_set_contents (path, contents, (gssize) len, NULL));
	fd = open (path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	plugin = vmi_registry_probe_fd (registry, fd, &error);
	close (fd);
	if (plugin == NULL) {
		g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
		return NULL;
	}
	g_assert_no_error (error);
	return plugin->name;
}

static void
test_probe_ranking (void)
{
	char *dir = NULL;
	g_autoptr(VmiRegistry) registry = load_raw_and_good (&dir);
	g_autofree guint8 *zeros = g_malloc0 (64 * 1024);

	/* good loads before raw here (vmi-good < vmi-raw), but a higher score beats load order */
	g_assert_cmpstr (probe_contents (registry, dir, "GOOD and more", 13), ==, "good");
	g_assert_cmpstr (probe_contents (registry, dir, "GOO", 3), ==, "raw");
	g_assert_cmpstr (probe_contents (registry, dir, zeros, 64 * 1024), ==, "raw");
	/* raw refuses a foreign magic, and good does not know it: nobody */
	g_assert_null (probe_contents (registry, dir, "QFI\xfb\0\0\0\3", 8));
	vmi_test_tmpdir_free (dir);
}

/* The same two modules under swapped file names: the one whose name sorts first wins a tie. */
static void
test_probe_ties (void)
{
	static const struct {
		const char *first;
		const char *second;
	} orders[] = { { "tie-a", "tie-b" }, { "tie-b", "tie-a" } };

	for (gsize i = 0; i < G_N_ELEMENTS (orders); i++) {
		char *dir = vmi_test_tmpdir_new ();
		g_autoptr(VmiRegistry) registry = NULL;
		g_autofree char *names = NULL;
		g_autofree char *expected = g_strdup_printf ("%s,%s", orders[i].first, orders[i].second);

		add_module (dir, orders[i].second, "vmi-b.so");
		add_module (dir, orders[i].first, "vmi-a.so");
		registry = load_dir (dir);
		names = plugin_names (registry);
		g_assert_cmpstr (names, ==, expected);
		g_assert_cmpstr (probe_contents (registry, dir, "TIE!", 4), ==, orders[i].first);
		vmi_test_tmpdir_free (dir);
	}
}

/* Linked-in plugins (vmi_registry_add): ties go to the one added first, duplicates refused. */
static guint
linked_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return VMI_PROBE_LIKELY;
}

static VmiImage *
linked_open (const VmiOpenArgs *args, GError **error)
{
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED, "no");
	return NULL;
}

static gboolean
linked_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	return TRUE;
}

static void
linked_close (VmiImage *image)
{
}

#define LINKED_PLUGIN(plugin_name)                                                                 \
	{                                                                                          \
		.abi_version = VMI_PLUGIN_ABI_VERSION, .name = (plugin_name),                      \
		.flags = VMI_FORMAT_CAN_INSPECT, .probe = linked_probe, .open = linked_open,       \
		.get_info = linked_get_info, .close = linked_close,                                \
	}

static const VmiFormatPlugin linked_one = LINKED_PLUGIN ("one");
static const VmiFormatPlugin linked_two = LINKED_PLUGIN ("two");
static const VmiFormatPlugin linked_one_again = LINKED_PLUGIN ("ONE");

static void
test_add_linked (void)
{
	char *dir = vmi_test_tmpdir_new ();
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;

	g_assert_true (vmi_registry_add (registry, &linked_two, &error));
	g_assert_true (vmi_registry_add (registry, &linked_one, &error));
	g_assert_no_error (error);
	g_assert_false (vmi_registry_add (registry, &linked_one_again, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_EXISTS);
	g_assert_cmpuint (vmi_registry_get_plugins (registry)->len, ==, 2);
	g_assert_cmpstr (probe_contents (registry, dir, "anything", 8), ==, "two");
	vmi_test_tmpdir_free (dir);
}

static GVariant *
describe_format (GVariant *formats, const char *name)
{
	return g_variant_lookup_value (formats, name, G_VARIANT_TYPE_VARDICT);
}

static void
test_describe_follows_dir (void)
{
	char *dir = NULL;
	g_autoptr(VmiRegistry) registry = load_raw_and_good (&dir);
	g_autoptr(VmiRegistry) reloaded = NULL;
	g_autoptr(GVariant) formats = vmi_registry_describe (registry);
	g_autoptr(GVariant) after = NULL;
	g_autoptr(GVariant) raw = describe_format (formats, "raw");
	g_autoptr(GVariant) good = describe_format (formats, "good");
	g_autoptr(GVariant) good_after = NULL;
	g_autofree char *raw_path = g_build_filename (dir, "vmi-raw.so", NULL);
	g_autofree const char **extensions = NULL;
	g_autofree const char **aliases = NULL;
	gboolean flag = FALSE;

	g_assert_cmpuint (g_variant_n_children (formats), ==, 2);
	g_assert_nonnull (raw);
	g_assert_nonnull (good);
	g_assert_true (g_variant_lookup (raw, "can-write", "b", &flag));
	g_assert_true (flag);
	g_assert_true (g_variant_lookup (raw, "can-read", "b", &flag));
	g_assert_true (flag);
	g_assert_true (g_variant_lookup (good, "can-write", "b", &flag));
	g_assert_false (flag);
	g_assert_true (g_variant_lookup (good, "extensions", "^a&s", &extensions));
	g_assert_cmpstrv (extensions, ((const char *const[]){ "good", NULL }));
	g_assert_true (g_variant_lookup (good, "aliases", "^a&s", &aliases));
	g_assert_cmpstrv (aliases, ((const char *const[]){ "GoodAlias", NULL }));

	/* the daemon restarts without the raw module: raw is gone, the rest unchanged */
	g_assert_cmpint (g_unlink (raw_path), ==, 0);
	reloaded = load_dir (dir);
	after = vmi_registry_describe (reloaded);
	g_assert_cmpuint (g_variant_n_children (after), ==, 1);
	g_assert_false (g_variant_lookup (after, "raw", "@a{sv}", NULL));
	good_after = describe_format (after, "good");
	g_assert_nonnull (good_after);
	g_assert_true (g_variant_equal (good, good_after));
	g_assert_null (vmi_registry_lookup (reloaded, "raw", NULL));
	vmi_test_tmpdir_free (dir);
}

/* Every plugin module of this build, together as the daemon loads them: no warnings, no clash. */
static void
test_load_all_built_plugins (void)
{
	const char *build_dir = g_getenv ("VMI_TEST_PLUGIN_DIR");
	char *dir = vmi_test_tmpdir_new ();
	g_autoptr(GDir) gdir = NULL;
	g_autoptr(VmiRegistry) registry = NULL;
	g_autofree char *names = NULL;
	const char *name;
	guint n_modules = 0;

	g_assert_nonnull (build_dir);
	gdir = g_dir_open (build_dir, 0, NULL);
	g_assert_nonnull (gdir);
	while ((name = g_dir_read_name (gdir)) != NULL) {
		g_autofree char *src = g_build_filename (build_dir, name, NULL);

		if (!g_str_has_prefix (name, "vmi-") || !g_str_has_suffix (name, "." G_MODULE_SUFFIX))
			continue;
		copy_file (src, dir, name);
		n_modules++;
	}
	registry = load_dir (dir);
	names = plugin_names (registry);
	g_test_message ("%u modules: %s", n_modules, names);
	g_assert_cmpuint (n_modules, >=, 1);
	g_assert_cmpuint (vmi_registry_get_plugins (registry)->len, ==, n_modules);
	g_assert_nonnull (vmi_registry_lookup (registry, "raw", NULL));
	vmi_test_tmpdir_free (dir);
}

int
main (int argc, char **argv)
{
	g_log_set_writer_func (capture_writer, NULL, NULL);
	g_test_init (&argc, &argv, NULL);

	g_test_add_func ("/registry/load/refused-modules", test_load_refused_modules);
	g_test_add_func ("/registry/load/empty-dir", test_load_empty_dir);
	g_test_add_func ("/registry/load/missing-dir", test_load_missing_dir);
	g_test_add_func ("/registry/load/all-built-plugins", test_load_all_built_plugins);
	g_test_add_func ("/registry/lookup", test_lookup);
	g_test_add_func ("/registry/probe/ranking", test_probe_ranking);
	g_test_add_func ("/registry/probe/ties", test_probe_ties);
	g_test_add_func ("/registry/add-linked", test_add_linked);
	g_test_add_func ("/registry/describe/follows-dir", test_describe_follows_dir);
	return g_test_run ();
}
