/* vmimagectl measure: the size a conversion would write, like qemu-img measure. */
#include "config.h"

#include <stdio.h>

#include "vmi-ctl.h"
#include "vmi-json.h"

int
vmi_ctl_measure (VmiCtl *ctl, int argc, char **argv)
{
	g_autofree char *out_format = NULL;
	g_autofree char *source_format = NULL;
	g_auto (GStrv) create_options = NULL;
	gboolean json = FALSE;
	const GOptionEntry entries[] = {
		{ "output-format", 'O', 0, G_OPTION_ARG_STRING, &out_format,
		  "Measure an image of FORMAT (see vmimagectl formats)", "FORMAT" },
		{ "source-format", 'f', 0, G_OPTION_ARG_STRING, &source_format,
		  "Skip detection and read the image as FORMAT", "FORMAT" },
		{ "option", 'o', 0, G_OPTION_ARG_STRING_ARRAY, &create_options,
		  "A create option of the output format, as for convert (repeatable)",
		  "KEY=VALUE" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the result as JSON", NULL },
		{ NULL }
	};
	g_autoptr (GError) error = NULL;
	g_autoptr (GVariantDict) options = g_variant_dict_new (NULL);
	g_autoptr (VmiManager) manager = NULL;
	g_autoptr (GVariant) result = NULL;
	g_autofree char *path = NULL;
	guint64 required = 0, fully = 0;

	if (!vmi_ctl_parse_args (ctl, "measure", "IMAGE -O FORMAT",
				 "Prints how many bytes converting the image into FORMAT would "
				 "write (required size) and how large an image of FORMAT with every "
				 "block allocated would be (fully allocated size).",
				 "Example:\n  vmimagectl measure disk.raw -O qcow2 -o cluster-size=2M",
				 entries, 1, 1, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	if (out_format == NULL) {
		g_printerr ("vmimagectl measure: the output format is missing (-O FORMAT)\n");
		g_printerr ("Try 'vmimagectl measure --help'.\n");
		return VMI_CTL_EXIT_USAGE;
	}
	if (!vmi_ctl_add_create_options (options, "measure", create_options))
		return VMI_CTL_EXIT_USAGE;
	if (source_format != NULL)
		g_variant_dict_insert (options, "source-format", "s", source_format);

	manager = vmi_ctl_get_manager (ctl, &error);
	if (manager == NULL)
		return vmi_ctl_fail ("measure", error);
	path = vmi_ctl_absolute_path (argv[1]);
	if (!vmi_manager_call_measure_sync (manager, path, out_format, g_variant_dict_end (options),
					    &result, NULL, &error)) {
		g_autofree char *what = g_strdup_printf ("cannot measure %s as %s", path, out_format);

		return vmi_ctl_fail (what, error);
	}
	if (json) {
		g_autofree char *text = vmi_json_from_variant (result, 2);

		g_print ("%s", text);
		return VMI_CTL_EXIT_OK;
	}
	g_variant_lookup (result, "required", "t", &required);
	g_variant_lookup (result, "fully-allocated", "t", &fully);
	g_print ("required size: %" G_GUINT64_FORMAT "\nfully allocated size: %" G_GUINT64_FORMAT
		 "\n",
		 required, fully);
	return VMI_CTL_EXIT_OK;
}
