/* vmimagectl compare: whether two images hold the same disk, like qemu-img compare. */
#include "config.h"

#include <stdio.h>

#include "vmi-ctl-follow.h"
#include "vmi-json.h"

/* qemu-img compare's exit codes: 0 identical, 1 different, 2 when it could not compare. */
#define COMPARE_EXIT_DIFFERENT 1
#define COMPARE_EXIT_ERROR 2

typedef struct {
	VmiCtlFollow run;
	GDBusConnection *connection;
	char *a;
	char *b;
} CompareRun;

static void
on_compare_started (GObject *object, GAsyncResult *result, gpointer user_data)
{
	CompareRun *compare = user_data;
	g_autoptr (GError) error = NULL;
	g_autofree char *job_path = NULL;
	g_autofree char *what = NULL;

	if (!vmi_manager_call_compare_finish (VMI_MANAGER (object), &job_path, result, &error))
		what = g_strdup_printf ("cannot compare %s with %s", compare->a, compare->b);
	vmi_ctl_follow_started (&compare->run, compare->connection, job_path, what, error);
}

/* qemu-img's words; its offset is the start of a 512-byte sector, this one the exact byte. */
static void
print_human (GVariant *result, gboolean strict)
{
	gboolean identical = FALSE;
	guint64 where = 0, size_a = 0, size_b = 0;

	g_variant_lookup (result, "identical", "b", &identical);
	g_variant_lookup (result, "size-a", "t", &size_a);
	g_variant_lookup (result, "size-b", "t", &size_b);
	if (size_a != size_b && !strict)
		g_print ("Warning: Image size mismatch!\n");
	if (identical) {
		g_print ("Images are identical.\n");
		return;
	}
	g_variant_lookup (result, "first-difference", "t", &where);
	if (strict && size_a != size_b && where == MIN (size_a, size_b))
		g_print ("Strict mode: Image size mismatch!\n");
	else
		g_print ("Content mismatch at offset %" G_GUINT64_FORMAT "!\n", where);
}

int
vmi_ctl_compare (VmiCtl *ctl, int argc, char **argv)
{
	g_autofree char *format_a = NULL;
	g_autofree char *format_b = NULL;
	gboolean strict = FALSE, json = FALSE, quiet = FALSE;
	const GOptionEntry entries[] = {
		{ "format", 'f', 0, G_OPTION_ARG_STRING, &format_a,
		  "Skip detection and read the first image as FORMAT", "FORMAT" },
		{ "second-format", 'F', 0, G_OPTION_ARG_STRING, &format_b,
		  "Skip detection and read the second image as FORMAT", "FORMAT" },
		{ "strict", 's', 0, G_OPTION_ARG_NONE, &strict,
		  "Images of different virtual sizes differ (otherwise the longer one's tail "
		  "must read as zeros)", NULL },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the result as JSON", NULL },
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet,
		  "Show no progress and print nothing; only the exit status tells", NULL },
		{ NULL }
	};
	CompareRun compare = { 0 };
	g_autoptr (GError) error = NULL;
	g_autoptr (GVariantDict) options = g_variant_dict_new (NULL);
	g_autoptr (VmiManager) manager = NULL;
	int exit_code;

	if (!vmi_ctl_parse_args (ctl, "compare", "IMAGE1 IMAGE2",
				 "Compares the virtual disks of two images, of any formats, in a "
				 "vmimaged job. Ctrl-C cancels the job.",
				 "Exit status (as qemu-img compare): 0 when the images are "
				 "identical, 1 when they differ, 2 when they could not be compared, "
				 "130 when interrupted by Ctrl-C.",
				 entries, 2, 2, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	if (format_a != NULL)
		g_variant_dict_insert (options, "format-a", "s", format_a);
	if (format_b != NULL)
		g_variant_dict_insert (options, "format-b", "s", format_b);
	/* qemu-img compare's default, not the method's: sizes may differ without -s. */
	g_variant_dict_insert (options, "strict", "b", strict);
	g_variant_dict_insert (options, "cancel-on-disconnect", "b", TRUE);

	manager = vmi_ctl_get_manager (ctl, &error);
	if (manager == NULL) {
		vmi_ctl_fail ("compare", error);
		return COMPARE_EXIT_ERROR;
	}
	compare.a = vmi_ctl_absolute_path (argv[1]);
	compare.b = vmi_ctl_absolute_path (argv[2]);
	compare.connection = g_dbus_proxy_get_connection (G_DBUS_PROXY (manager));
	/* Progress goes to stderr: stdout carries the result (and --json). */
	vmi_ctl_follow_init (&compare.run, "compare", VMI_CTL_FOLLOW_OWNS_JOB, NULL,
			     quiet || json ? NULL : stderr);
	vmi_manager_call_compare (manager, compare.a, compare.b, g_variant_dict_end (options), NULL,
				  on_compare_started, &compare);
	exit_code = vmi_ctl_follow_wait (&compare.run);
	if (exit_code == VMI_CTL_EXIT_OK) {
		gboolean identical = FALSE;

		g_variant_lookup (compare.run.result, "identical", "b", &identical);
		if (json) {
			g_autofree char *text = vmi_json_from_variant (compare.run.result, 2);

			g_print ("%s", text);
		} else if (!quiet) {
			print_human (compare.run.result, strict);
		}
		exit_code = identical ? VMI_CTL_EXIT_OK : COMPARE_EXIT_DIFFERENT;
	} else if (exit_code == VMI_CTL_EXIT_FAILURE) {
		exit_code = COMPARE_EXIT_ERROR;
	}
	vmi_ctl_follow_clear (&compare.run);
	g_free (compare.a);
	g_free (compare.b);
	return exit_code;
}
