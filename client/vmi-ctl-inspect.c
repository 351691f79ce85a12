/* vmimagectl inspect: what an image is, in the style of qemu-img info, or as JSON. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "vmi-ctl.h"
#include "vmi-json.h"

#define INDENT "    "

/* Top-level keys printed in their own place; anything else the daemon adds is printed after. */
static const char *const known_keys[] = {
	"format", "subformat", "virtual-size", "actual-size", "file-size", "cluster-size",
	"references", "format-specific", "safe", "unsafe-reasons", NULL,
};

/* qemu-img info writes "lazy refcounts" for the JSON "lazy-refcounts". */
static char *
human_key (const char *key)
{
	char *h = g_strdup (key);

	g_strdelimit (h, "-_", ' ');
	return h;
}

static void
indent_by (GString *out, guint level)
{
	for (guint i = 0; i < level; i++)
		g_string_append (out, INDENT);
}

static gboolean
is_dict (GVariant *value)
{
	return g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT);
}

static gboolean
is_scalar_list (GVariant *value)
{
	const GVariantType *type = g_variant_get_type (value);

	return g_variant_type_is_array (type) &&
	       g_variant_type_is_basic (g_variant_type_element (type));
}

static void append_dict (GString *out, GVariant *dict, guint level);

static void
append_scalar (GString *out, GVariant *value)
{
	if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING) ||
	    g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH))
		g_string_append (out, g_variant_get_string (value, NULL));
	else if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT)) {
		g_autoptr (GVariant) inner = g_variant_get_variant (value);

		append_scalar (out, inner);
	} else
		vmi_json_append (out, value, 0);
}

/* One "key: value" line, or "key:" and the nested lines below it. */
static void
append_entry (GString *out, const char *key, GVariant *value, guint level)
{
	g_autofree char *name = human_key (key);

	indent_by (out, level);
	g_string_append_printf (out, "%s:", name);
	if (is_dict (value)) {
		g_string_append_c (out, '\n');
		append_dict (out, value, level + 1);
	} else if (g_variant_is_of_type (value, G_VARIANT_TYPE ("aa{sv}"))) {
		/* A list of records, such as qcow2 snapshots: one indented block each. */
		gsize n = g_variant_n_children (value);

		g_string_append_c (out, '\n');
		for (gsize i = 0; i < n; i++) {
			g_autoptr (GVariant) child = g_variant_get_child_value (value, i);

			indent_by (out, level + 1);
			g_string_append_printf (out, "[%" G_GSIZE_FORMAT "]:\n", i);
			append_dict (out, child, level + 2);
		}
	} else if (is_scalar_list (value)) {
		gsize n = g_variant_n_children (value);

		for (gsize i = 0; i < n; i++) {
			g_autoptr (GVariant) child = g_variant_get_child_value (value, i);

			g_string_append (out, i == 0 ? " " : ", ");
			append_scalar (out, child);
		}
		g_string_append_c (out, '\n');
	} else {
		g_string_append_c (out, ' ');
		append_scalar (out, value);
		g_string_append_c (out, '\n');
	}
}

static void
append_dict (GString *out, GVariant *dict, guint level)
{
	GVariantIter iter;
	const char *key;
	GVariant *value;

	g_variant_iter_init (&iter, dict);
	while (g_variant_iter_next (&iter, "{&sv}", &key, &value)) {
		append_entry (out, key, value, level);
		g_variant_unref (value);
	}
}

static void
append_size_line (GString *out, const char *label, GVariantDict *info, const char *key,
		  gboolean with_bytes)
{
	guint64 bytes;
	g_autofree char *size = NULL;

	if (!g_variant_dict_lookup (info, key, "t", &bytes))
		return;
	size = vmi_ctl_format_size (bytes);
	if (with_bytes)
		g_string_append_printf (out, "%s: %s (%" G_GUINT64_FORMAT " bytes)\n", label, size,
					bytes);
	else
		g_string_append_printf (out, "%s: %s\n", label, size);
}

static void
append_safety (GString *out, GVariantDict *info)
{
	gboolean safe;
	g_autofree const char **reasons = NULL;

	if (!g_variant_dict_lookup (info, "safe", "b", &safe))
		return;
	if (safe) {
		g_string_append (out, "safe: yes\n");
		return;
	}
	if (!g_variant_dict_lookup (info, "unsafe-reasons", "^a&s", &reasons) || reasons[0] == NULL) {
		g_string_append (out, "safe: no — the daemon gave no reason\n");
		return;
	}
	if (reasons[1] == NULL) {
		g_string_append_printf (out, "safe: no — %s\n", reasons[0]);
		return;
	}
	g_string_append_printf (out, "safe: no — %u reasons:\n", g_strv_length ((char **) reasons));
	for (guint i = 0; reasons[i] != NULL; i++)
		g_string_append_printf (out, INDENT "- %s\n", reasons[i]);
}

/* The human summary of an Inspect result: the known keys first, in qemu-img info's order. */
static char *
format_info (const char *path, GVariant *info_variant)
{
	g_autoptr (GVariantDict) info = g_variant_dict_new (info_variant);
	g_autoptr (GString) out = g_string_new (NULL);
	g_autoptr (GVariant) specific = NULL;
	g_autofree const char **references = NULL;
	const char *text;
	guint64 number;
	GVariantIter iter;
	const char *key;
	GVariant *value;

	g_string_append_printf (out, "image: %s\n", path);
	if (g_variant_dict_lookup (info, "format", "&s", &text))
		g_string_append_printf (out, "file format: %s\n", text);
	if (g_variant_dict_lookup (info, "subformat", "&s", &text))
		g_string_append_printf (out, "subformat: %s\n", text);
	append_size_line (out, "virtual size", info, "virtual-size", TRUE);
	append_size_line (out, "disk size", info, "actual-size", FALSE);
	append_size_line (out, "file size", info, "file-size", TRUE);
	if (g_variant_dict_lookup (info, "cluster-size", "t", &number))
		g_string_append_printf (out, "cluster_size: %" G_GUINT64_FORMAT "\n", number);

	g_variant_iter_init (&iter, info_variant);
	while (g_variant_iter_next (&iter, "{&sv}", &key, &value)) {
		if (!g_strv_contains (known_keys, key))
			append_entry (out, key, value, 0);
		g_variant_unref (value);
	}

	if (g_variant_dict_lookup (info, "references", "^a&s", &references) &&
	    references[0] != NULL) {
		g_string_append (out, "references (never opened):\n");
		for (guint i = 0; references[i] != NULL; i++)
			g_string_append_printf (out, INDENT "%s\n", references[i]);
	}
	specific = g_variant_dict_lookup_value (info, "format-specific", G_VARIANT_TYPE_VARDICT);
	if (specific != NULL && g_variant_n_children (specific) > 0) {
		g_string_append (out, "Format specific information:\n");
		append_dict (out, specific, 1);
	}
	append_safety (out, info);
	return g_string_free (g_steal_pointer (&out), FALSE);
}

int
vmi_ctl_inspect (VmiCtl *ctl, int argc, char **argv)
{
	gboolean json = FALSE;
	g_autofree char *format = NULL;
	const GOptionEntry entries[] = {
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the result as JSON", NULL },
		{ "format", 'f', 0, G_OPTION_ARG_STRING, &format,
		  "Skip detection and read the image as FORMAT", "FORMAT" },
		{ NULL }
	};
	g_autoptr (GError) error = NULL;
	g_autoptr (VmiManager) manager = NULL;
	g_autoptr (GVariant) info = NULL;
	g_autoptr (GVariantDict) options = g_variant_dict_new (NULL);
	g_autofree char *path = NULL;
	g_autofree char *text = NULL;

	if (!vmi_ctl_parse_args (ctl, "inspect", "FILE", "Shows what a disk image is: its format, "
				 "sizes, format-specific facts and whether it is safe to use.\n"
				 "Only headers are read; files the image refers to are never opened.",
				 "Exit status: 0 when inspected (safe or not), 1 on an error.",
				 entries, 1, 1, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	path = vmi_ctl_absolute_path (argv[1]);
	if (format != NULL)
		g_variant_dict_insert (options, "format", "s", format);

	manager = vmi_ctl_get_manager (ctl, &error);
	if (manager == NULL)
		return vmi_ctl_fail ("inspect", error);
	if (!vmi_manager_call_inspect_sync (manager, path, g_variant_dict_end (options), &info, NULL,
					    &error)) {
		g_autofree char *what = g_strdup_printf ("cannot inspect %s", path);

		return vmi_ctl_fail (what, error);
	}

	/* JSON bypasses g_print: it must stay UTF-8 whatever the locale's charset. */
	text = json ? vmi_json_from_variant (info, 4) : format_info (path, info);
	if (json)
		fputs (text, stdout);
	else
		g_print ("%s", text);
	return VMI_CTL_EXIT_OK;
}
