/* vmimagectl formats: the formats of the plugins the daemon has loaded. */
#include "config.h"

#include <stdio.h>

#include "vmi-ctl.h"
#include "vmi-json.h"

static int
compare_strings (gconstpointer a, gconstpointer b)
{
	return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

static const char *
yes_no (GVariantDict *dict, const char *key)
{
	gboolean value = FALSE;

	g_variant_dict_lookup (dict, key, "b", &value);
	return value ? "yes" : "no";
}

static char *
joined_extensions (GVariant *formats, const char *name)
{
	g_autoptr (GVariant) entry = g_variant_lookup_value (formats, name, G_VARIANT_TYPE_VARDICT);
	g_autofree const char **extensions = NULL;

	if (entry == NULL || !g_variant_lookup (entry, "extensions", "^a&s", &extensions) ||
	    extensions[0] == NULL)
		return g_strdup ("-");
	return g_strjoinv (",", (char **) extensions);
}

static char *
format_table (GVariant *formats)
{
	g_autoptr (GPtrArray) names = g_ptr_array_new ();
	g_autoptr (GPtrArray) extensions = g_ptr_array_new_with_free_func (g_free);
	g_autoptr (GString) out = g_string_new (NULL);
	GVariantIter iter;
	const char *name;
	int name_width = (int) strlen ("FORMAT");
	int ext_width = (int) strlen ("EXTENSIONS");

	g_variant_iter_init (&iter, formats);
	while (g_variant_iter_next (&iter, "{&s@a{sv}}", &name, NULL)) {
		g_ptr_array_add (names, (gpointer) name);
		name_width = MAX (name_width, (int) g_utf8_strlen (name, -1));
	}
	g_ptr_array_sort (names, compare_strings);
	for (guint i = 0; i < names->len; i++) {
		char *joined = joined_extensions (formats, g_ptr_array_index (names, i));

		g_ptr_array_add (extensions, joined);
		ext_width = MAX (ext_width, (int) g_utf8_strlen (joined, -1));
	}

	g_string_append_printf (out, "%-*s  %-7s  %-4s  %-5s  %-*s  %s\n", name_width, "FORMAT",
				"INSPECT", "READ", "WRITE", ext_width, "EXTENSIONS", "DESCRIPTION");
	for (guint i = 0; i < names->len; i++) {
		g_autoptr (GVariant) entry = NULL;
		g_autoptr (GVariantDict) dict = NULL;
		g_autofree char *line = NULL;
		const char *description = "";

		name = g_ptr_array_index (names, i);
		entry = g_variant_lookup_value (formats, name, G_VARIANT_TYPE_VARDICT);
		dict = g_variant_dict_new (entry);
		g_variant_dict_lookup (dict, "description", "&s", &description);
		line = g_strdup_printf ("%-*s  %-7s  %-4s  %-5s  %-*s  %s", name_width, name,
					yes_no (dict, "can-inspect"), yes_no (dict, "can-read"),
					yes_no (dict, "can-write"), ext_width,
					(const char *) g_ptr_array_index (extensions, i), description);
		g_string_append_printf (out, "%s\n", g_strchomp (line));
	}
	return g_string_free (g_steal_pointer (&out), FALSE);
}

int
vmi_ctl_formats (VmiCtl *ctl, int argc, char **argv)
{
	gboolean json = FALSE;
	const GOptionEntry entries[] = {
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the Formats property as JSON", NULL },
		{ NULL }
	};
	g_autoptr (GError) error = NULL;
	g_autoptr (VmiManager) manager = NULL;
	g_autoptr (GVariant) formats = NULL;
	g_autofree char *text = NULL;

	if (!vmi_ctl_parse_args (ctl, "formats", "", "Lists the image formats vmimaged can handle: "
				 "one per plugin module it loaded.", NULL, entries, 0, 0, &argc,
				 &argv))
		return VMI_CTL_EXIT_USAGE;
	manager = vmi_ctl_get_manager (ctl, &error);
	if (manager == NULL)
		return vmi_ctl_fail ("formats", error);
	formats = vmi_manager_dup_formats (manager);
	if (formats == NULL) {
		g_printerr ("vmimagectl: formats: vmimaged did not report its Formats property\n");
		return VMI_CTL_EXIT_FAILURE;
	}
	if (json) {
		text = vmi_json_from_variant (formats, 4);
		fputs (text, stdout);
	} else {
		text = format_table (formats);
		g_print ("%s", text);
	}
	return VMI_CTL_EXIT_OK;
}
