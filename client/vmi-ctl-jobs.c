/*
 * vmimagectl jobs: the jobs the daemon has, running or recently finished; --wait follows one to
 * its end and --cancel stops one.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "vmi-ctl-follow.h"
#include "vmi-json.h"

#define JOBS_PATH_PREFIX VMI_CTL_ROOT_PATH "/jobs/"

static int
compare_jobs (gconstpointer a, gconstpointer b)
{
	const char *pa = g_dbus_object_get_object_path (*(GDBusObject *const *) a);
	const char *pb = g_dbus_object_get_object_path (*(GDBusObject *const *) b);
	const char *na = strrchr (pa, '/') + 1;
	const char *nb = strrchr (pb, '/') + 1;

	/* jobs/10 comes after jobs/9. */
	if (strlen (na) != strlen (nb))
		return strlen (na) < strlen (nb) ? -1 : 1;
	return strcmp (na, nb);
}

static char *
format_job (VmiJob *job, const char *object_path)
{
	const char *state = vmi_job_get_state (job);
	const char *error = vmi_job_get_error (job);
	g_autofree char *done = vmi_ctl_format_size (vmi_job_get_bytes_done (job));
	g_autofree char *total = vmi_ctl_format_size (vmi_job_get_bytes_total (job));
	g_autofree char *amounts = g_strdup_printf ("%s/%s", done, total);
	g_autofree char *percent = g_strdup_printf ("%.0f%%", vmi_job_get_fraction (job) * 100.0);

	g_autofree char *line = NULL;

	line = g_strdup_printf ("%-6s  %-9s  %-9s  %5s  %-22s  %6u  %s",
				strrchr (object_path, '/') + 1,
				vmi_job_get_operation (job) != NULL ? vmi_job_get_operation (job) : "?",
				state != NULL ? state : "?", percent, amounts, vmi_job_get_owner (job),
				error != NULL && *error != '\0' ? vmi_ctl_error_short_name (error) : "");
	return g_strconcat (g_strchomp (line), "\n", NULL);
}

/* "7" or "/org/vmimaged/VMImage1/jobs/7" as the job's object path; NULL if neither. */
static char *
job_path_of (const char *text)
{
	const char *number = g_str_has_prefix (text, JOBS_PATH_PREFIX)
				     ? text + strlen (JOBS_PATH_PREFIX)
				     : text;

	if (*number == '\0' || strspn (number, "0123456789") != strlen (number))
		return NULL;
	return g_strconcat (JOBS_PATH_PREFIX, number, NULL);
}

/* Follows a job (anyone's it may see) to its end; Ctrl-C stops waiting, not the job. */
static int
jobs_wait (VmiCtl *ctl, const char *job_path, gboolean json, gboolean quiet)
{
	g_autoptr (GError) error = NULL;
	g_autoptr (GDBusConnection) connection = vmi_ctl_get_bus (ctl, &error);
	VmiCtlFollow run = { 0 };
	int exit_code;

	if (connection == NULL)
		return vmi_ctl_fail ("jobs --wait", error);
	vmi_ctl_follow_init (&run, "job", VMI_CTL_FOLLOW_NONE, NULL, quiet || json ? NULL : stderr);
	vmi_ctl_follow_started (&run, connection, job_path, "jobs --wait", NULL);
	exit_code = vmi_ctl_follow_wait (&run);
	if (exit_code == VMI_CTL_EXIT_OK) {
		g_autofree char *text = vmi_json_from_variant (run.result, json ? 2 : 0);

		if (json)
			g_print ("%s", text);
		else
			g_print ("%s completed: %s\n", job_path, text);
	}
	vmi_ctl_follow_clear (&run);
	return exit_code;
}

static int
jobs_cancel (VmiCtl *ctl, const char *job_path)
{
	g_autoptr (GError) error = NULL;
	g_autoptr (GDBusConnection) connection = vmi_ctl_get_bus (ctl, &error);
	g_autoptr (VmiJob) job = NULL;
	g_autofree char *what = g_strdup_printf ("cannot cancel %s", job_path);

	if (connection == NULL)
		return vmi_ctl_fail ("jobs --cancel", error);
	job = vmi_job_proxy_new_sync (connection, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
				      VMI_CTL_BUS_NAME, job_path, NULL, &error);
	if (job == NULL || !vmi_job_call_cancel_sync (job, NULL, &error))
		return vmi_ctl_fail (what, error);
	g_print ("cancelled %s\n", job_path);
	return VMI_CTL_EXIT_OK;
}

int
vmi_ctl_jobs (VmiCtl *ctl, int argc, char **argv)
{
	g_autofree char *wait = NULL;
	g_autofree char *cancel = NULL;
	gboolean json = FALSE, quiet = FALSE;
	const GOptionEntry entries[] = {
		{ "wait", 'w', 0, G_OPTION_ARG_STRING, &wait,
		  "Wait for JOB to end, with its progress, and print its result", "JOB" },
		{ "cancel", 'c', 0, G_OPTION_ARG_STRING, &cancel, "Cancel JOB", "JOB" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "With --wait: print the result as JSON",
		  NULL },
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "With --wait: show no progress", NULL },
		{ NULL }
	};
	g_autofree char *job_path = NULL;
	g_autoptr (GError) error = NULL;
	g_autoptr (GDBusConnection) connection = NULL;
	g_autoptr (GDBusObjectManager) object_manager = NULL;
	g_autolist (GDBusObject) objects = NULL;
	g_autoptr (GPtrArray) jobs = g_ptr_array_new ();
	g_autoptr (GString) out = g_string_new (NULL);
	g_autofree char *owner = NULL;

	if (!vmi_ctl_parse_args (ctl, "jobs", "", "Lists vmimaged's jobs: those running and those "
				 "finished in the last few minutes.",
				 "JOB is the number in the JOB column or the job's object path.\n\n"
				 "Exit status of --wait: 0 when the job completed, 1 when it failed "
				 "or was cancelled, 130 when interrupted by Ctrl-C (the job goes on).",
				 entries, 0, 0, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	if (wait != NULL && cancel != NULL) {
		g_printerr ("vmimagectl jobs: --wait and --cancel do not go together\n");
		return VMI_CTL_EXIT_USAGE;
	}
	if (wait != NULL || cancel != NULL) {
		job_path = job_path_of (wait != NULL ? wait : cancel);
		if (job_path == NULL) {
			g_printerr ("vmimagectl jobs: \"%s\" is not a job: give its number or its "
				    "object path\n",
				    wait != NULL ? wait : cancel);
			return VMI_CTL_EXIT_USAGE;
		}
		return wait != NULL ? jobs_wait (ctl, job_path, json, quiet)
				    : jobs_cancel (ctl, job_path);
	}
	connection = vmi_ctl_get_bus (ctl, &error);
	if (connection == NULL)
		return vmi_ctl_fail ("jobs", error);
	object_manager = vmi_object_manager_client_new_sync (
		connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE, VMI_CTL_BUS_NAME,
		VMI_CTL_ROOT_PATH, NULL, &error);
	if (object_manager == NULL)
		return vmi_ctl_fail ("jobs", error);
	owner = g_dbus_object_manager_client_get_name_owner (
		G_DBUS_OBJECT_MANAGER_CLIENT (object_manager));
	if (owner == NULL) {
		g_printerr ("vmimagectl: jobs: vmimaged is not running on the %s bus\n",
			    vmi_ctl_bus_type (ctl) == G_BUS_TYPE_SESSION ? "session" : "system");
		return VMI_CTL_EXIT_FAILURE;
	}

	objects = g_dbus_object_manager_get_objects (object_manager);
	for (GList *l = objects; l != NULL; l = l->next) {
		if (vmi_object_peek_job (VMI_OBJECT (l->data)) != NULL)
			g_ptr_array_add (jobs, l->data);
	}
	if (jobs->len == 0) {
		g_print ("no jobs\n");
		return VMI_CTL_EXIT_OK;
	}
	g_ptr_array_sort (jobs, compare_jobs);
	g_string_append_printf (out, "%-6s  %-9s  %-9s  %5s  %-22s  %6s  %s\n", "JOB", "OPERATION",
				"STATE", "DONE", "BYTES", "OWNER", "ERROR");
	for (guint i = 0; i < jobs->len; i++) {
		GDBusObject *object = g_ptr_array_index (jobs, i);
		g_autofree char *line = format_job (vmi_object_peek_job (VMI_OBJECT (object)),
						    g_dbus_object_get_object_path (object));

		g_string_append (out, line);
	}
	g_print ("%s", out->str);
	return VMI_CTL_EXIT_OK;
}
