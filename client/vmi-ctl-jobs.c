/* vmimagectl jobs: the jobs the daemon has, running or recently finished. */
#include "config.h"

#include <string.h>

#include "vmi-ctl.h"

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

int
vmi_ctl_jobs (VmiCtl *ctl, int argc, char **argv)
{
	g_autoptr (GError) error = NULL;
	g_autoptr (GDBusConnection) connection = NULL;
	g_autoptr (GDBusObjectManager) object_manager = NULL;
	g_autolist (GDBusObject) objects = NULL;
	g_autoptr (GPtrArray) jobs = g_ptr_array_new ();
	g_autoptr (GString) out = g_string_new (NULL);
	g_autofree char *owner = NULL;

	if (!vmi_ctl_parse_args (ctl, "jobs", "", "Lists vmimaged's jobs: those running and those "
				 "finished in the last few minutes.", NULL, NULL, 0, 0, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
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
