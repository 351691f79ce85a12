/* A private bus with vmimaged on it, for the integration tests. */
#include "config.h"

#include <signal.h>
#include <sys/prctl.h>

#include "vmi-test-bus.h"
#include "vmi-test-util.h"

#define VMI_TEST_BUS_NAME "org.vmimaged.VMImage1"
/* Generous: under AddressSanitizer on a loaded 2-core machine the daemon starts slowly. */
#define VMI_TEST_BUS_START_SECONDS 30
/* Also generous: under AddressSanitizer a daemon that leaked spends seconds symbolizing its
 * report at exit, and that report is what the test should show, not a time-out. */
#define VMI_TEST_BUS_STOP_SECONDS 60

struct _VmiTestBus {
	char *dir;
	char *address;
	GSubprocess *bus;
	GSubprocess *daemon;
	GDBusConnection *connection;
	gboolean daemon_exited; /* set by a wait started with the daemon */
};

/* Everyone may connect and own names: a test may act as another user, and it is all private. */
static const char bus_config[] =
	"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	"<busconfig>\n"
	"  <type>session</type>\n"
	"  <listen>unix:path=%s/bus</listen>\n"
	"  <auth>EXTERNAL</auth>\n"
	"  <policy context=\"default\">\n"
	"    <allow user=\"*\"/>\n"
	"    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
	"    <allow eavesdrop=\"true\"/>\n"
	"    <allow own=\"*\"/>\n"
	"  </policy>\n"
	"</busconfig>\n";

void
vmi_test_bus_child_setup (gpointer user_data)
{
	/* If the test dies (a failed assertion aborts it), its bus and daemon must not live on:
	 * they would hold meson's output pipes open until the test's time-out. */
	prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static const char *
vmimaged_path (void)
{
	const char *path = g_getenv ("VMI_TEST_VMIMAGED");

#ifdef VMI_TEST_VMIMAGED
	if (path == NULL)
		path = VMI_TEST_VMIMAGED;
#endif
	if (path == NULL)
		g_error ("set VMI_TEST_VMIMAGED to the vmimaged to test");
	return path;
}

static const char *
plugin_dir (void)
{
	const char *dir = g_getenv ("VMI_TEST_PLUGIN_DIR");

	if (dir == NULL)
		g_error ("set VMI_TEST_PLUGIN_DIR to the folder of the built plugins");
	return dir;
}

static gboolean
set_flag (gpointer user_data)
{
	*(gboolean *) user_data = TRUE;
	return G_SOURCE_REMOVE;
}

static void
on_exited (GObject *object, GAsyncResult *result, gpointer user_data)
{
	*(gboolean *) user_data = TRUE;
}

/* Waits for process to exit within seconds; FALSE (and killed) on a time-out. */
static gboolean
wait_exit (GSubprocess *process, guint seconds)
{
	gboolean exited = FALSE, timed_out = FALSE, in_time;
	guint timeout = g_timeout_add_seconds (seconds, set_flag, &timed_out);

	g_subprocess_wait_async (process, NULL, on_exited, &exited);
	while (!exited && !timed_out)
		g_main_context_iteration (NULL, TRUE);
	in_time = exited;
	if (!timed_out)
		g_source_remove (timeout);
	if (!exited) {
		g_subprocess_force_exit (process);
		/* The wait's callback refers to this stack frame: let it run before returning. */
		while (!exited)
			g_main_context_iteration (NULL, TRUE);
	}
	return in_time;
}

static void
start_bus (VmiTestBus *bus)
{
	g_autofree char *config_path = g_build_filename (bus->dir, "bus.conf", NULL);
	g_autofree char *config = g_strdup_printf (bus_config, bus->dir);
	g_autoptr (GError) error = NULL;
	g_autoptr (GDataInputStream) out = NULL;
	g_autofree char *config_arg = g_strconcat ("--config-file=", config_path, NULL);

	g_autoptr (GSubprocessLauncher) launcher =
		g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);

	g_file_set_contents (config_path, config, -1, &error);
	g_assert_no_error (error);
	g_subprocess_launcher_set_child_setup (launcher, vmi_test_bus_child_setup, NULL, NULL);
	bus->bus = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", config_arg,
						"--nofork", "--nopidfile", "--print-address=1",
						NULL);
	g_assert_no_error (error);
	/* dbus-daemon prints its address once it listens. */
	out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (bus->bus));
	bus->address = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
	g_assert_no_error (error);
	if (bus->address == NULL)
		g_error ("dbus-daemon exited without printing its address");
}

static void
on_name_appeared (GDBusConnection *connection, const char *name, const char *owner,
		  gpointer user_data)
{
	*(gboolean *) user_data = TRUE;
}

static void
on_daemon_exited (GObject *object, GAsyncResult *result, gpointer user_data)
{
	VmiTestBus *bus = user_data;

	bus->daemon_exited = TRUE;
}

static void
start_daemon (VmiTestBus *bus, const char *const *extra_args)
{
	g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
	g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
	g_autoptr (GError) error = NULL;
	g_autofree char *config = g_build_filename (bus->dir, "vmimaged.conf", NULL);
	gboolean appeared = FALSE, timed_out = FALSE;
	guint watch, timeout;

	/* An empty configuration: the machine's /etc/vmimaged must not change the tests. */
	g_file_set_contents (config, "", 0, &error);
	g_assert_no_error (error);
	g_ptr_array_add (argv, g_strdup (vmimaged_path ()));
	g_ptr_array_add (argv, g_strdup ("--session"));
	g_ptr_array_add (argv, g_strdup ("--plugin-dir"));
	g_ptr_array_add (argv, g_strdup (plugin_dir ()));
	g_ptr_array_add (argv, g_strdup ("--cache-dir"));
	g_ptr_array_add (argv, g_build_filename (bus->dir, "cache", NULL));
	g_ptr_array_add (argv, g_strdup ("--config"));
	g_ptr_array_add (argv, g_strdup (config));
	for (guint i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
		g_ptr_array_add (argv, g_strdup (extra_args[i]));
	g_ptr_array_add (argv, NULL);

	g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", bus->address, TRUE);
	g_subprocess_launcher_set_child_setup (launcher, vmi_test_bus_child_setup, NULL, NULL);
	bus->daemon = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata,
						    &error);
	g_assert_no_error (error);

	watch = g_bus_watch_name_on_connection (vmi_test_bus_get_connection (bus),
						VMI_TEST_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
						on_name_appeared, NULL, &appeared, NULL);
	g_subprocess_wait_async (bus->daemon, NULL, on_daemon_exited, bus);
	timeout = g_timeout_add_seconds (VMI_TEST_BUS_START_SECONDS, set_flag, &timed_out);
	while (!appeared && !bus->daemon_exited && !timed_out)
		g_main_context_iteration (NULL, TRUE);
	g_bus_unwatch_name (watch);
	if (!timed_out)
		g_source_remove (timeout);
	if (bus->daemon_exited)
		g_error ("vmimaged exited at start (status %d); see its messages above",
			 g_subprocess_get_exit_status (bus->daemon));
	if (!appeared)
		g_error ("vmimaged did not own %s within %d s", VMI_TEST_BUS_NAME,
			 VMI_TEST_BUS_START_SECONDS);
}

VmiTestBus *
vmi_test_bus_new_full (const char *const *extra_args)
{
	VmiTestBus *bus = g_new0 (VmiTestBus, 1);

	bus->dir = vmi_test_tmpdir_new ();
	start_bus (bus);
	start_daemon (bus, extra_args);
	return bus;
}

VmiTestBus *
vmi_test_bus_new (void)
{
	return vmi_test_bus_new_full (NULL);
}

const char *
vmi_test_bus_get_address (VmiTestBus *bus)
{
	return bus->address;
}

const char *
vmi_test_bus_get_dir (VmiTestBus *bus)
{
	return bus->dir;
}

GSubprocess *
vmi_test_bus_get_daemon (VmiTestBus *bus)
{
	return bus->daemon;
}

GDBusConnection *
vmi_test_bus_get_connection (VmiTestBus *bus)
{
	g_autoptr (GError) error = NULL;

	if (bus->connection != NULL)
		return bus->connection;
	bus->connection = g_dbus_connection_new_for_address_sync (
		bus->address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error (error);
	return bus->connection;
}

void
vmi_test_bus_stop_daemon (VmiTestBus *bus)
{
	if (bus->daemon == NULL)
		return;
	/* The daemon may have exited already; g_subprocess_send_signal is then a no-op. */
	g_subprocess_send_signal (bus->daemon, SIGTERM);
	if (!wait_exit (bus->daemon, VMI_TEST_BUS_STOP_SECONDS))
		g_error ("vmimaged did not stop within %d s of SIGTERM", VMI_TEST_BUS_STOP_SECONDS);
	/* The wait started with the daemon refers to bus: let it finish too. */
	while (!bus->daemon_exited)
		g_main_context_iteration (NULL, TRUE);
	/* A clean shutdown exits 0; anything else (a crash, a sanitizer report) fails the test. */
	if (g_subprocess_get_if_signaled (bus->daemon))
		g_error ("vmimaged died of signal %d", g_subprocess_get_term_sig (bus->daemon));
	g_assert_cmpint (g_subprocess_get_exit_status (bus->daemon), ==, 0);
	g_clear_object (&bus->daemon);
}

void
vmi_test_bus_free (VmiTestBus *bus)
{
	if (bus == NULL)
		return;
	vmi_test_bus_stop_daemon (bus);
	if (bus->connection != NULL) {
		g_dbus_connection_close_sync (bus->connection, NULL, NULL);
		g_clear_object (&bus->connection);
	}
	if (bus->bus != NULL) {
		g_subprocess_send_signal (bus->bus, SIGTERM);
		wait_exit (bus->bus, VMI_TEST_BUS_STOP_SECONDS);
		g_clear_object (&bus->bus);
	}
	g_free (bus->address);
	vmi_test_tmpdir_free (bus->dir);
	g_free (bus);
}
