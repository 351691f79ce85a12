/* vmimagectl's pieces without a daemon: JSON output, sizes, option values, the progress bar. */
#include "config.h"

#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "vmi-ctl.h"
#include "vmi-json.h"
#include "vmi-progress.h"

static JsonNode *
parse_json (const char *text)
{
	g_autoptr (JsonParser) parser = json_parser_new ();
	g_autoptr (GError) error = NULL;

	if (!json_parser_load_from_data (parser, text, -1, &error))
		g_error ("not JSON (%s): %s", error->message, text);
	return json_node_copy (json_parser_get_root (parser));
}

static void
test_json_strings (void)
{
	/* Everything a file name or an error message may hold that JSON must escape. */
	const char *const strings[] = {
		"", "plain", "quote \" and backslash \\", "new\nline, tab\t, cr\r",
		"bell\a, escape\033, del\177, nul-free \001\037", "slash / and unicode é ✓ 𝄞",
		"\"\\\"\\\\", NULL,
	};

	for (guint i = 0; strings[i] != NULL; i++) {
		g_autoptr (GString) out = g_string_new (NULL);
		g_autoptr (JsonNode) node = NULL;

		vmi_json_append_string (out, strings[i]);
		/* No raw control character may be left in the output. */
		for (const char *p = out->str; *p != '\0'; p++)
			g_assert_cmpint ((guchar) *p, >=, 0x20);
		node = parse_json (out->str);
		g_assert_cmpstr (json_node_get_string (node), ==, strings[i]);
	}
}

static void
test_json_info (void)
{
	g_autoptr (GVariantBuilder) specific = g_variant_builder_new (G_VARIANT_TYPE_VARDICT);
	g_autoptr (GVariantBuilder) info = g_variant_builder_new (G_VARIANT_TYPE_VARDICT);
	g_autoptr (GVariantBuilder) snapshots = g_variant_builder_new (G_VARIANT_TYPE ("aa{sv}"));
	g_autoptr (GVariantBuilder) snap = g_variant_builder_new (G_VARIANT_TYPE_VARDICT);
	const char *const reasons[] = { "backing file \"a\"", "corrupt bit set", NULL };
	g_autoptr (GVariant) value = NULL;
	g_autoptr (JsonNode) node = NULL;
	g_autofree char *pretty = NULL;
	g_autofree char *compact = NULL;
	JsonObject *root, *fs;
	JsonArray *array;

	g_variant_builder_add (snap, "{sv}", "name", g_variant_new_string ("snap 1"));
	g_variant_builder_add (snap, "{sv}", "vm-state-size", g_variant_new_uint64 (0));
	g_variant_builder_add_value (snapshots, g_variant_builder_end (snap));
	g_variant_builder_add (specific, "{sv}", "compat", g_variant_new_string ("1.1"));
	g_variant_builder_add (specific, "{sv}", "lazy-refcounts", g_variant_new_boolean (FALSE));
	g_variant_builder_add (specific, "{sv}", "refcount-bits", g_variant_new_int32 (-16));
	g_variant_builder_add (specific, "{sv}", "snapshots", g_variant_builder_end (snapshots));
	g_variant_builder_add (info, "{sv}", "format", g_variant_new_string ("qcow2"));
	g_variant_builder_add (info, "{sv}", "virtual-size", g_variant_new_uint64 (G_MAXUINT64));
	g_variant_builder_add (info, "{sv}", "ratio", g_variant_new_double (0.25));
	g_variant_builder_add (info, "{sv}", "nan", g_variant_new_double (NAN));
	g_variant_builder_add (info, "{sv}", "byte", g_variant_new_byte (255));
	g_variant_builder_add (info, "{sv}", "pair", g_variant_new ("(sx)", "a", G_MININT64));
	g_variant_builder_add (info, "{sv}", "empty", g_variant_new_strv (NULL, 0));
	g_variant_builder_add (info, "{sv}", "format-specific", g_variant_builder_end (specific));
	g_variant_builder_add (info, "{sv}", "safe", g_variant_new_boolean (FALSE));
	g_variant_builder_add (info, "{sv}", "unsafe-reasons", g_variant_new_strv (reasons, -1));
	value = g_variant_ref_sink (g_variant_builder_end (info));

	pretty = vmi_json_from_variant (value, 4);
	g_assert_true (g_str_has_suffix (pretty, "}\n"));
	/* A uint64 keeps all its digits: no detour through a double. */
	g_assert_nonnull (strstr (pretty, "\"virtual-size\": 18446744073709551615"));
	compact = vmi_json_from_variant (value, 0);
	g_assert_null (strchr (compact, '\n'));

	node = parse_json (pretty);
	root = json_node_get_object (node);
	g_assert_cmpstr (json_object_get_string_member (root, "format"), ==, "qcow2");
	g_assert_cmpfloat (json_object_get_double_member (root, "ratio"), ==, 0.25);
	g_assert_true (json_object_get_null_member (root, "nan"));
	g_assert_cmpint (json_object_get_int_member (root, "byte"), ==, 255);
	array = json_object_get_array_member (root, "pair");
	g_assert_cmpstr (json_array_get_string_element (array, 0), ==, "a");
	g_assert_cmpint (json_array_get_int_element (array, 1), ==, G_MININT64);
	g_assert_cmpuint (json_array_get_length (json_object_get_array_member (root, "empty")), ==, 0);
	g_assert_false (json_object_get_boolean_member (root, "safe"));
	array = json_object_get_array_member (root, "unsafe-reasons");
	g_assert_cmpuint (json_array_get_length (array), ==, 2);
	g_assert_cmpstr (json_array_get_string_element (array, 0), ==, "backing file \"a\"");
	fs = json_object_get_object_member (root, "format-specific");
	g_assert_cmpstr (json_object_get_string_member (fs, "compat"), ==, "1.1");
	g_assert_false (json_object_get_boolean_member (fs, "lazy-refcounts"));
	g_assert_cmpint (json_object_get_int_member (fs, "refcount-bits"), ==, -16);
	array = json_object_get_array_member (fs, "snapshots");
	g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (array, 0),
							 "name"), ==, "snap 1");

	/* The compact form says the same. */
	g_clear_pointer (&node, json_node_unref);
	node = parse_json (compact);
	g_assert_cmpstr (json_object_get_string_member (json_node_get_object (node), "format"), ==,
			 "qcow2");
}

static void
test_sizes (void)
{
	const struct {
		guint64 bytes;
		const char *text;
	} cases[] = {
		{ 0, "0 B" },
		{ 512, "512 B" },
		{ 999, "999 B" },
		{ 1000, "0.977 KiB" },
		{ 196608, "192 KiB" },
		{ 1572864, "1.5 MiB" },
		{ 1073741824, "1 GiB" },
		{ 1099511627776, "1 TiB" },
		{ G_MAXUINT64, "16 EiB" },
	};

	for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autofree char *text = vmi_ctl_format_size (cases[i].bytes);

		g_assert_cmpstr (text, ==, cases[i].text);
	}
}

static void
test_option_values (void)
{
	g_autoptr (GVariantDict) dict = g_variant_dict_new (NULL);
	g_autoptr (GVariant) options = NULL;
	g_autoptr (GError) error = NULL;
	guint64 number;
	gboolean flag;
	const char *text;

	g_assert_true (vmi_ctl_add_key_value (dict, "cluster-size=65536", &error));
	g_assert_true (vmi_ctl_add_key_value (dict, "big=64K", &error));
	g_assert_true (vmi_ctl_add_key_value (dict, "huge=2T", &error));
	g_assert_true (vmi_ctl_add_key_value (dict, "lazy=true", &error));
	g_assert_true (vmi_ctl_add_key_value (dict, "zero=FALSE", &error));
	g_assert_true (vmi_ctl_add_key_value (dict, "subformat=monolithicSparse", &error));
	g_assert_true (vmi_ctl_add_key_value (dict, "eq=a=b", &error));
	g_assert_true (vmi_ctl_add_key_value (dict, "empty=", &error));
	g_assert_true (vmi_ctl_add_key_value (dict, "negative=-1", &error));
	g_assert_true (vmi_ctl_add_key_value (dict, "overflow=99999999999999999999", &error));
	g_assert_true (vmi_ctl_add_key_value (dict, "overflow-suffix=17179869184E", &error));
	g_assert_no_error (error);
	g_assert_false (vmi_ctl_add_key_value (dict, "novalue", &error));
	g_assert_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
	g_clear_error (&error);
	g_assert_false (vmi_ctl_add_key_value (dict, "=1", &error));
	g_assert_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);

	options = g_variant_ref_sink (g_variant_dict_end (dict));
	g_assert_true (g_variant_lookup (options, "cluster-size", "t", &number));
	g_assert_cmpuint (number, ==, 65536);
	g_assert_true (g_variant_lookup (options, "big", "t", &number));
	g_assert_cmpuint (number, ==, 65536);
	g_assert_true (g_variant_lookup (options, "huge", "t", &number));
	g_assert_cmpuint (number, ==, G_GUINT64_CONSTANT (2) << 40);
	g_assert_true (g_variant_lookup (options, "lazy", "b", &flag));
	g_assert_true (flag);
	g_assert_true (g_variant_lookup (options, "zero", "b", &flag));
	g_assert_false (flag);
	g_assert_true (g_variant_lookup (options, "subformat", "&s", &text));
	g_assert_cmpstr (text, ==, "monolithicSparse");
	g_assert_true (g_variant_lookup (options, "eq", "&s", &text));
	g_assert_cmpstr (text, ==, "a=b");
	g_assert_true (g_variant_lookup (options, "empty", "&s", &text));
	g_assert_cmpstr (text, ==, "");
	/* What is not a uint64 stays a string, for the daemon to name as a wrong type. */
	g_assert_true (g_variant_lookup (options, "negative", "&s", &text));
	g_assert_true (g_variant_lookup (options, "overflow", "&s", &text));
	g_assert_true (g_variant_lookup (options, "overflow-suffix", "&s", &text));
}

static void
test_error_names (void)
{
	g_assert_cmpstr (vmi_ctl_error_short_name ("org.vmimaged.VMImage1.Error.Exists"), ==,
			 "Exists");
	g_assert_cmpstr (vmi_ctl_error_short_name ("NoDots"), ==, "NoDots");
	g_assert_cmpstr (vmi_ctl_error_short_name (""), ==, "Failed");
	g_assert_cmpstr (vmi_ctl_error_short_name (NULL), ==, "Failed");
}

static void
test_absolute_path (void)
{
	g_autofree char *cwd = g_get_current_dir ();
	g_autofree char *expected = g_build_filename (cwd, "a.qcow2", NULL);
	g_autofree char *relative = vmi_ctl_absolute_path ("./x/../a.qcow2");
	g_autofree char *absolute = vmi_ctl_absolute_path ("/tmp//b.raw");

	g_assert_cmpstr (relative, ==, expected);
	g_assert_cmpstr (absolute, ==, "/tmp/b.raw");
}

static void
test_progress_bar (void)
{
	for (guint width = 0; width < 200; width += 7) {
		g_autofree char *bar = vmi_progress_render_bar (0.456, 3 * 1024 * 1024, 3725, width);

		g_assert_nonnull (strstr (bar, "45%"));
		g_assert_nonnull (strstr (bar, "3 MiB/s"));
		g_assert_nonnull (strstr (bar, "ETA 1:02:05"));
		/* Never into the last column, once there is room for the numbers at all. */
		if (width >= 40)
			g_assert_cmpuint (strlen (bar), <, width);
	}
	{
		g_autofree char *bar = vmi_progress_render_bar (1.0, 0, -1, 80);

		g_assert_true (g_str_has_prefix (bar, "[===="));
		g_assert_true (g_str_has_suffix (bar, "] 100%"));
	}
	{
		g_autofree char *bar = vmi_progress_render_bar (0.0, 0, 59, 80);

		g_assert_true (g_str_has_prefix (bar, "[>  "));
		g_assert_nonnull (strstr (bar, "  0%  ETA 0:59"));
	}
}

static void
test_progress_lines (void)
{
	g_autofree char *path = NULL;
	g_autofree char *text = NULL;
	g_autoptr (GError) error = NULL;
	FILE *out;
	int fd;
	VmiProgress *progress;

	fd = g_file_open_tmp ("vmi-progress-XXXXXX", &path, &error);
	g_assert_no_error (error);
	out = fdopen (fd, "w");
	g_assert_nonnull (out);
	progress = vmi_progress_new (out, FALSE);
	vmi_progress_update (progress, 0.0, 0, 100, 0);
	vmi_progress_update (progress, 0.0, 0, 100, 0);
	/* Within the same second and the same tenth, no new line; a new tenth gets one. */
	vmi_progress_update (progress, 0.05, 5, 100, 10);
	vmi_progress_update (progress, 0.09, 9, 100, 10);
	vmi_progress_update (progress, 0.5, 50, 100, 10);
	vmi_progress_update (progress, 0.55, 55, 100, 10);
	vmi_progress_update (progress, 0.999, 99, 100, 10);
	vmi_progress_update (progress, 1.0, 100, 100, 10);
	vmi_progress_update (progress, 1.0, 100, 100, 10);
	vmi_progress_end (progress);
	vmi_progress_free (progress);
	fclose (out);

	g_file_get_contents (path, &text, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (text, ==, "0%\n50%\n99%\n100%\n");
	g_unlink (path);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/client/json/strings", test_json_strings);
	g_test_add_func ("/client/json/info", test_json_info);
	g_test_add_func ("/client/sizes", test_sizes);
	g_test_add_func ("/client/option-values", test_option_values);
	g_test_add_func ("/client/error-names", test_error_names);
	g_test_add_func ("/client/absolute-path", test_absolute_path);
	g_test_add_func ("/client/progress/bar", test_progress_bar);
	g_test_add_func ("/client/progress/lines", test_progress_lines);
	return g_test_run ();
}
