/* vmimagectl check: a consistency check of an image in a vmimaged job, like qemu-img check. */
#include "config.h"

#include <stdio.h>

#include "vmi-ctl-follow.h"
#include "vmi-json.h"

/* qemu-img check's exit codes: 2 when the image is damaged, 3 when it only leaks clusters. */
#define CHECK_EXIT_CORRUPT 2
#define CHECK_EXIT_LEAKS 3

typedef struct {
	VmiCtlFollow run;
	GDBusConnection *connection;
	char *path;
} CheckRun;

static void
on_check_started (GObject *object, GAsyncResult *result, gpointer user_data)
{
	CheckRun *check = user_data;
	g_autoptr (GError) error = NULL;
	g_autofree char *job_path = NULL;
	g_autofree char *what = NULL;

	if (!vmi_manager_call_check_finish (VMI_MANAGER (object), &job_path, result, &error))
		what = g_strdup_printf ("cannot check %s", check->path);
	vmi_ctl_follow_started (&check->run, check->connection, job_path, what, error);
}

static guint64
lookup_u64 (GVariant *result, const char *key)
{
	guint64 value = 0;

	g_variant_lookup (result, key, "t", &value);
	return value;
}

static void
print_digest (GVariant *result, const char *key)
{
	const char *value = NULL;

	if (g_variant_lookup (result, key, "&s", &value))
		g_print ("%s: %s\n", key, value);
}

/* As qemu-img check words it, so that people and scripts used to it read it the same. */
static void
print_human (GVariant *result)
{
	const char *member = NULL;
	guint64 corruptions = lookup_u64 (result, "corruptions");
	guint64 leaks = lookup_u64 (result, "leaks");
	guint64 check_errors = lookup_u64 (result, "check-errors");
	guint64 total = lookup_u64 (result, "total-clusters");
	guint64 allocated = lookup_u64 (result, "allocated-clusters");
	g_autofree const char **problems = NULL;

	if (g_variant_lookup (result, "member", "&s", &member))
		g_print ("Checked the container's member %s.\n", member);
	if (g_variant_lookup (result, "problems", "^a&s", &problems)) {
		for (guint i = 0; problems[i] != NULL; i++)
			g_print ("%s\n", problems[i]);
	}
	if (corruptions == 0 && leaks == 0 && check_errors == 0) {
		g_print ("No errors were found on the image.\n");
	} else {
		if (corruptions > 0)
			g_print ("\n%" G_GUINT64_FORMAT " errors were found on the image.\n"
				 "Data may be corrupted, or further writes to the image may "
				 "corrupt it.\n",
				 corruptions);
		if (leaks > 0)
			g_print ("\n%" G_GUINT64_FORMAT " leaked clusters were found on the image.\n"
				 "This means waste of disk space, but no harm to data.\n",
				 leaks);
		if (check_errors > 0)
			g_print ("\n%" G_GUINT64_FORMAT " reads of the virtual disk failed: its data "
				 "cannot be read back whole.\n",
				 check_errors);
	}
	if (total > 0 && allocated > 0) {
		guint64 fragmented = lookup_u64 (result, "fragmented-clusters");
		guint64 compressed = lookup_u64 (result, "compressed-clusters");

		g_print ("%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " = %0.2f%% allocated, %0.2f%% "
			 "fragmented, %0.2f%% compressed clusters\n",
			 allocated, total, allocated * 100.0 / total, fragmented * 100.0 / allocated,
			 compressed * 100.0 / allocated);
	}
	g_print ("Image end offset: %" G_GUINT64_FORMAT "\n", lookup_u64 (result, "image-end-offset"));
	print_digest (result, "sha256");
	print_digest (result, "md5");
	print_digest (result, "content-sha256");
}

static int
exit_code_of (GVariant *result)
{
	if (lookup_u64 (result, "corruptions") > 0 || lookup_u64 (result, "check-errors") > 0)
		return CHECK_EXIT_CORRUPT;
	if (lookup_u64 (result, "leaks") > 0)
		return CHECK_EXIT_LEAKS;
	return VMI_CTL_EXIT_OK;
}

int
vmi_ctl_check (VmiCtl *ctl, int argc, char **argv)
{
	g_autofree char *source_format = NULL;
	g_autofree char *member = NULL;
	gint disk = -1;
	gboolean sha256 = FALSE, md5 = FALSE, content = FALSE, json = FALSE, quiet = FALSE;
	const GOptionEntry entries[] = {
		{ "format", 'f', 0, G_OPTION_ARG_STRING, &source_format,
		  "Skip detection and read the image as FORMAT", "FORMAT" },
		{ "sha256", 0, 0, G_OPTION_ARG_NONE, &sha256, "Also print the SHA-256 of the file",
		  NULL },
		{ "md5", 0, 0, G_OPTION_ARG_NONE, &md5, "Also print the MD5 of the file", NULL },
		{ "content-sha256", 0, 0, G_OPTION_ARG_NONE, &content,
		  "Also print the content digest of the virtual disk (the same in any format)",
		  NULL },
		{ "disk", 0, 0, G_OPTION_ARG_INT, &disk,
		  "In a container (OVA): check its disk number N (from 0; default its first)", "N" },
		{ "member", 0, 0, G_OPTION_ARG_STRING, &member,
		  "In a container: check the member of this name, or of this role (kernel)",
		  "NAME" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the result as JSON", NULL },
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Show no progress", NULL },
		{ NULL }
	};
	CheckRun check = { 0 };
	g_autoptr (GError) error = NULL;
	g_autoptr (GVariantDict) options = g_variant_dict_new (NULL);
	g_autoptr (VmiManager) manager = NULL;
	int exit_code;

	if (!vmi_ctl_parse_args (ctl, "check", "IMAGE",
				 "Checks a disk image in a vmimaged job: the format's own "
				 "consistency check (qcow2: reference counts and tables) and a read "
				 "of every allocated byte. Ctrl-C cancels the job.",
				 "Exit status (as qemu-img check): 0 when no errors were found, 2 "
				 "when the image is corrupt or cannot be read whole, 3 when it only "
				 "leaks clusters, 1 when the check could not run, 130 when "
				 "interrupted by Ctrl-C.",
				 entries, 1, 1, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	if (source_format != NULL)
		g_variant_dict_insert (options, "source-format", "s", source_format);
	if (disk >= 0)
		g_variant_dict_insert (options, "disk", "t", (guint64) disk);
	if (member != NULL)
		g_variant_dict_insert (options, "member", "s", member);
	if (sha256)
		g_variant_dict_insert (options, "sha256", "b", TRUE);
	if (md5)
		g_variant_dict_insert (options, "md5", "b", TRUE);
	if (content)
		g_variant_dict_insert (options, "content-sha256", "b", TRUE);
	/* The job belongs to this command: if we die unexpectedly, the daemon cancels it. */
	g_variant_dict_insert (options, "cancel-on-disconnect", "b", TRUE);

	manager = vmi_ctl_get_manager (ctl, &error);
	if (manager == NULL)
		return vmi_ctl_fail ("check", error);
	check.path = vmi_ctl_absolute_path (argv[1]);
	check.connection = g_dbus_proxy_get_connection (G_DBUS_PROXY (manager));
	/* Progress goes to stderr: stdout carries the result (and --json). */
	vmi_ctl_follow_init (&check.run, "check", VMI_CTL_FOLLOW_OWNS_JOB, NULL,
			     quiet || json ? NULL : stderr);
	vmi_manager_call_check (manager, check.path, g_variant_dict_end (options), NULL,
				on_check_started, &check);
	exit_code = vmi_ctl_follow_wait (&check.run);
	if (exit_code == VMI_CTL_EXIT_OK) {
		if (json) {
			g_autofree char *text = vmi_json_from_variant (check.run.result, 2);

			g_print ("%s", text);
		} else {
			print_human (check.run.result);
		}
		exit_code = exit_code_of (check.run.result);
	}
	vmi_ctl_follow_clear (&check.run);
	g_free (check.path);
	return exit_code;
}
