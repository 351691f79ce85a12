/* vmimagectl convert: starts a Convert job, shows its progress and waits for its end. */
#include "config.h"

#include <stdio.h>

#include "vmi-ctl-follow.h"

typedef struct {
	VmiCtlFollow run;
	char *destination;
	char *cancelled_note;	/* "DESTINATION was not written" */
} ConvertRun;

static void
print_result (GVariant *result, const char *destination)
{
	g_autoptr (GVariantDict) dict = g_variant_dict_new (result);
	const char *format = "?";
	guint64 virtual_size = 0, file_size = 0;
	g_autofree char *vsize = NULL;
	g_autofree char *fsize = NULL;

	g_variant_dict_lookup (dict, "destination", "&s", &destination);
	g_variant_dict_lookup (dict, "format", "&s", &format);
	g_variant_dict_lookup (dict, "virtual-size", "t", &virtual_size);
	g_variant_dict_lookup (dict, "file-size", "t", &file_size);
	vsize = vmi_ctl_format_size (virtual_size);
	fsize = vmi_ctl_format_size (file_size);
	g_print ("wrote %s: %s, virtual size %s, file size %s\n", destination, format, vsize, fsize);
}

static void
on_convert_done (GObject *object, GAsyncResult *result, gpointer user_data)
{
	ConvertRun *convert = user_data;
	g_autoptr (GError) error = NULL;
	g_autofree char *job_path = NULL;
	g_autofree char *what = NULL;

	if (!vmi_manager_call_convert_finish (VMI_MANAGER (object), &job_path, result, &error))
		what = g_strdup_printf ("cannot convert to %s", convert->destination);
	vmi_ctl_follow_started (&convert->run, g_dbus_proxy_get_connection (G_DBUS_PROXY (object)),
				job_path, what, error);
}

int
vmi_ctl_convert (VmiCtl *ctl, int argc, char **argv)
{
	g_autofree char *out_format = NULL;
	g_autofree char *source_format = NULL;
	g_auto (GStrv) create_options = NULL;
	gboolean overwrite = FALSE;
	gboolean quiet = FALSE;
	const GOptionEntry entries[] = {
		{ "output-format", 'O', 0, G_OPTION_ARG_STRING, &out_format,
		  "Write the destination in FORMAT (see vmimagectl formats)", "FORMAT" },
		{ "source-format", 'f', 0, G_OPTION_ARG_STRING, &source_format,
		  "Skip detection and read the source as FORMAT", "FORMAT" },
		{ "option", 'o', 0, G_OPTION_ARG_STRING_ARRAY, &create_options,
		  "A create option of the destination format (repeatable): numbers, "
		  "true/false or strings", "KEY=VALUE" },
		{ "overwrite", 0, 0, G_OPTION_ARG_NONE, &overwrite,
		  "Replace the destination if it exists", NULL },
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Show no progress", NULL },
		{ NULL }
	};
	ConvertRun convert = { 0 };
	g_autoptr (GError) error = NULL;
	g_autoptr (GVariantDict) options = g_variant_dict_new (NULL);
	g_autoptr (VmiManager) manager = NULL;
	g_autofree char *source = NULL;
	int exit_code;

	if (!vmi_ctl_parse_args (ctl, "convert", "SOURCE DESTINATION -O FORMAT",
				 "Converts a disk image into another format in a vmimaged job.\n"
				 "The destination appears only when the job completes; Ctrl-C "
				 "cancels the job and leaves nothing behind.",
				 "Examples:\n"
				 "  vmimagectl convert disk.qcow2 disk.img -O raw\n"
				 "  vmimagectl convert -o cluster-size=64K a.img b.qcow2 -O qcow2\n\n"
				 "Exit status: 0 when the job completed, 1 when it failed, 130 when "
				 "interrupted by Ctrl-C.",
				 entries, 2, 2, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	if (out_format == NULL) {
		g_printerr ("vmimagectl convert: the destination format is missing (-O FORMAT)\n");
		g_printerr ("Try 'vmimagectl convert --help'.\n");
		return VMI_CTL_EXIT_USAGE;
	}
	if (!vmi_ctl_add_create_options (options, "convert", create_options))
		return VMI_CTL_EXIT_USAGE;
	if (overwrite)
		g_variant_dict_insert (options, "overwrite", "b", TRUE);
	if (source_format != NULL)
		g_variant_dict_insert (options, "source-format", "s", source_format);
	/* The job belongs to this command: if we die unexpectedly, the daemon cancels it. */
	g_variant_dict_insert (options, "cancel-on-disconnect", "b", TRUE);

	manager = vmi_ctl_get_manager (ctl, &error);
	if (manager == NULL)
		return vmi_ctl_fail ("convert", error);
	source = vmi_ctl_absolute_path (argv[1]);
	convert.destination = vmi_ctl_absolute_path (argv[2]);
	convert.cancelled_note = g_strdup_printf ("%s was not written", convert.destination);
	vmi_ctl_follow_init (&convert.run, "convert",
			     VMI_CTL_FOLLOW_OWNS_JOB | VMI_CTL_FOLLOW_CANCEL_IS_FAILURE,
			     convert.cancelled_note, quiet ? NULL : stdout);
	vmi_manager_call_convert (manager, source, convert.destination, out_format,
				  g_variant_dict_end (options), NULL, on_convert_done, &convert);
	exit_code = vmi_ctl_follow_wait (&convert.run);
	if (exit_code == VMI_CTL_EXIT_OK)
		print_result (convert.run.result, convert.destination);
	vmi_ctl_follow_clear (&convert.run);
	g_free (convert.destination);
	g_free (convert.cancelled_note);
	return exit_code;
}
