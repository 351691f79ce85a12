/*
 * Job behaviour over D-Bus on a private bus: how soon Cancel ends a running conversion (the
 * target is 200 ms; the assertion is only a generous hang detector, the median is printed),
 * that nothing partial is left, and the "priority" option.
 */
#include <string.h>
#include <unistd.h>

#include "vmi-test-bus.h"
#include "vmi-test-util.h"

#define BUS_NAME "org.vmimaged.VMImage1"
#define MANAGER_PATH "/org/vmimaged/VMImage1/Manager"
#define MANAGER_IFACE "org.vmimaged.VMImage1.Manager"
#define JOB_IFACE "org.vmimaged.VMImage1.Job"
#define ERROR_PREFIX "org.vmimaged.VMImage1.Error."
#define MiB (1024ull * 1024ull)
#define CANCEL_RUNS 5

static VmiTestBus *bus;

typedef struct {
	guint n_progress;
	char *state;
	char *error_name;
	gint64 completed_time;
} JobWatch;

static void
job_signal_cb (GDBusConnection *connection, const char *sender, const char *path,
	       const char *iface, const char *signal, GVariant *parameters, gpointer user_data)
{
	JobWatch *watch = user_data;

	if (g_strcmp0 (signal, "Progress") == 0) {
		watch->n_progress++;
	} else if (g_strcmp0 (signal, "Completed") == 0 && watch->state == NULL) {
		watch->completed_time = g_get_monotonic_time ();
		g_variant_get (parameters, "(sss)", &watch->state, &watch->error_name, NULL);
	}
}

static gboolean
spin_until (gboolean (*cond) (JobWatch *), JobWatch *watch, guint seconds)
{
	gint64 end = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;

	while (!cond (watch)) {
		if (g_get_monotonic_time () > end)
			return FALSE;
		g_main_context_iteration (NULL, FALSE);
		g_usleep (1000);
	}
	return TRUE;
}

static gboolean
watch_running (JobWatch *watch)
{
	return watch->n_progress >= 3 || watch->state != NULL;
}

static gboolean
watch_done (JobWatch *watch)
{
	return watch->state != NULL;
}

static char *
convert (const char *src, const char *dst, const char *format, GVariant *options,
	 GError **error)
{
	g_autoptr(GVariant) reply = NULL;
	char *path = NULL;

	reply = g_dbus_connection_call_sync (
		vmi_test_bus_get_connection (bus), BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Convert",
		g_variant_new ("(sss@a{sv})", src, dst, format, options), G_VARIANT_TYPE ("(o)"),
		G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
	if (reply != NULL)
		g_variant_get (reply, "(o)", &path);
	return path;
}

static guint
count_files (const char *dir)
{
	g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
	guint n = 0;

	g_assert_nonnull (d);
	while (g_dir_read_name (d) != NULL)
		n++;
	return n;
}

static int
compare_gint64 (gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

	return x < y ? -1 : x > y;
}

/* One conversion into compressed qcow2, cancelled while it runs; returns the microseconds from
 * the Cancel call to the Completed signal. */
static gint64
cancel_once (const char *dir, const char *src, guint run, const char *priority)
{
	GDBusConnection *connection = vmi_test_bus_get_connection (bus);
	g_autofree char *dst = g_strdup_printf ("%s/out-%u.qcow2", dir, run);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree char *path = NULL;
	JobWatch watch = { 0 };
	gint64 start;
	guint id;

	path = convert (src, dst, "qcow2",
			g_variant_new_parsed ("{'compress': <true>, 'priority': <%s>}", priority),
			&error);
	g_assert_no_error (error);
	id = g_dbus_connection_signal_subscribe (connection, BUS_NAME, JOB_IFACE, NULL, path, NULL,
						 G_DBUS_SIGNAL_FLAGS_NONE, job_signal_cb, &watch,
						 NULL);
	g_assert_true (spin_until (watch_running, &watch, 60));
	if (watch.state != NULL)
		g_error ("job %s ended (%s) before it could be cancelled", path, watch.state);
	start = g_get_monotonic_time ();
	reply = g_dbus_connection_call_sync (connection, BUS_NAME, path, JOB_IFACE, "Cancel", NULL,
					     NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	g_assert_no_error (error);
	g_assert_true (spin_until (watch_done, &watch, 60));
	g_dbus_connection_signal_unsubscribe (connection, id);
	g_assert_cmpstr (watch.state, ==, "cancelled");
	g_assert_cmpstr (watch.error_name, ==, ERROR_PREFIX "Cancelled");
	/* The partial output is gone by the time Completed is sent. */
	g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
	g_assert_cmpuint (count_files (dir), ==, 1);
	g_free (watch.state);
	g_free (watch.error_name);
	return watch.completed_time - start;
}

static void
cancel_latency (const char *priority)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "big.qcow2", NULL);
	gint64 latency[CANCEL_RUNS];

	/* 4 GiB of compressed clusters: seconds of work, a few MiB on disk. */
	vmi_test_make_compressed_qcow2 (src, 4096 * MiB, 0x5a);
	for (guint i = 0; i < CANCEL_RUNS; i++) {
		latency[i] = cancel_once (dir, src, i, priority);
		g_test_message ("priority %s, run %u: Cancel to Completed %.1f ms", priority, i,
				latency[i] / 1000.0);
		/* A hang detector, not a benchmark: the machine may be loaded. */
		g_assert_cmpint (latency[i], <, 2 * G_USEC_PER_SEC);
	}
	qsort (latency, CANCEL_RUNS, sizeof latency[0], compare_gint64);
	g_test_message ("priority %s: median Cancel to Completed %.1f ms (min %.1f, max %.1f)",
			priority, latency[CANCEL_RUNS / 2] / 1000.0, latency[0] / 1000.0,
			latency[CANCEL_RUNS - 1] / 1000.0);
	if (g_getenv ("VMI_TEST_REPORT") != NULL)
		g_printerr ("cancel-latency %s median %.1f ms\n", priority,
			    latency[CANCEL_RUNS / 2] / 1000.0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_cancel_latency_background (void)
{
	cancel_latency ("background");
}

static void
test_cancel_latency_normal (void)
{
	cancel_latency ("normal");
}

/* "background" and "normal" are accepted; anything else is InvalidArgument before any job. */
static void
test_priority_option (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "small.raw", NULL);
	const char *values[] = { "normal", "background" };

	vmi_test_make_pattern_image (src, 4 * MiB, 3);
	for (guint i = 0; i < G_N_ELEMENTS (values); i++) {
		g_autofree char *dst = g_strdup_printf ("%s/out-%s.qcow2", dir, values[i]);
		g_autoptr(GError) error = NULL;
		g_autofree char *path = NULL;
		JobWatch watch = { 0 };
		guint id;

		path = convert (src, dst, "qcow2",
				g_variant_new_parsed ("{'priority': <%s>}", values[i]), &error);
		g_assert_no_error (error);
		id = g_dbus_connection_signal_subscribe (vmi_test_bus_get_connection (bus), BUS_NAME,
							 JOB_IFACE, "Completed", path, NULL,
							 G_DBUS_SIGNAL_FLAGS_NONE, job_signal_cb,
							 &watch, NULL);
		/* It may have completed before the subscription: then ask for its state. */
		if (!spin_until (watch_done, &watch, 2)) {
			g_autoptr(GVariant) state = g_dbus_connection_call_sync (
				vmi_test_bus_get_connection (bus), BUS_NAME, path,
				"org.freedesktop.DBus.Properties", "Get",
				g_variant_new ("(ss)", JOB_IFACE, "State"), G_VARIANT_TYPE ("(v)"),
				G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
			g_autoptr(GVariant) value = NULL;

			g_assert_no_error (error);
			g_variant_get (state, "(v)", &value);
			if (g_strcmp0 (g_variant_get_string (value, NULL), "completed") != 0)
				g_assert_true (spin_until (watch_done, &watch, 60));
		}
		g_dbus_connection_signal_unsubscribe (vmi_test_bus_get_connection (bus), id);
		if (watch.state != NULL)
			g_assert_cmpstr (watch.state, ==, "completed");
		g_assert_true (g_file_test (dst, G_FILE_TEST_EXISTS));
		if (vmi_test_require_qemu_img ())
			g_assert_true (vmi_test_qemu_img_compare (src, "raw", dst, "qcow2"));
		g_free (watch.state);
		g_free (watch.error_name);
	}
	{
		g_autofree char *dst = g_build_filename (dir, "never.qcow2", NULL);
		g_autoptr(GError) error = NULL;
		g_autofree char *path = NULL;
		g_autofree char *remote = NULL;

		path = convert (src, dst, "qcow2", g_variant_new_parsed ("{'priority': <'high'>}"),
				&error);
		g_assert_null (path);
		remote = g_dbus_error_get_remote_error (error);
		g_assert_cmpstr (remote, ==, ERROR_PREFIX "InvalidArgument");
		g_assert_nonnull (strstr (error->message, "priority"));
		g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* CacheImport takes the option too, with the same check. */
static void
test_priority_option_cache (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "small.raw", NULL);
	const char *values[] = { "normal", "later" };

	vmi_test_make_pattern_image (src, 2 * MiB, 5);
	for (guint i = 0; i < G_N_ELEMENTS (values); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply = g_dbus_connection_call_sync (
			vmi_test_bus_get_connection (bus), BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
			"CacheImport",
			g_variant_new ("(s@a{sv})", src,
				       g_variant_new_parsed ("{'priority': <%s>}", values[i])),
			G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);

		if (i == 0) {
			g_assert_no_error (error);
			g_assert_nonnull (reply);
		} else {
			g_autofree char *remote = g_dbus_error_get_remote_error (error);

			g_assert_null (reply);
			g_assert_cmpstr (remote, ==, ERROR_PREFIX "InvalidArgument");
			g_assert_nonnull (strstr (error->message, "\"later\""));
		}
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

int
main (int argc, char **argv)
{
	int status;

	g_test_init (&argc, &argv, NULL);
	bus = vmi_test_bus_new ();
	g_test_add_func ("/dbus-jobs/priority-option", test_priority_option);
	g_test_add_func ("/dbus-jobs/priority-option/cache-import", test_priority_option_cache);
	g_test_add_func ("/dbus-jobs/cancel-latency/background", test_cancel_latency_background);
	g_test_add_func ("/dbus-jobs/cancel-latency/normal", test_cancel_latency_normal);
	status = g_test_run ();
	vmi_test_bus_free (bus);
	return status;
}
