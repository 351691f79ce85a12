/*
 * Integration tests: a private dbus-daemon, the built vmimaged on it, and calls through the
 * generated proxies, as a client would make them.
 */
#include "vmi-test-nobody.h"
#include "vmi-test-polkit.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmi-generated.h"
#include "vmi-test-util.h"

#define BUS_NAME "org.vmimaged.VMImage1"
#define MANAGER_PATH "/org/vmimaged/VMImage1/Manager"
#define ERROR_PREFIX "org.vmimaged.VMImage1.Error."
#define NOBODY_UID 65534
#define MiB (1024u * 1024u)

/* ---- The private bus and the daemon on it ---- */

typedef struct {
	guint n_progress;
	gint64 first_progress;
	gint64 last_progress;
	gdouble last_fraction;
	gboolean fraction_went_back;
	gboolean done;
	char *state;
	char *error_name;
	char *message;
} JobTrack;

static struct {
	char *dir;
	char *address;
	GSubprocess *bus;
	GDBusConnection *connection;
	GHashTable *jobs; /* object path -> JobTrack */
	GSubprocess *daemon;
	char *plugin_dir; /* the daemon's current one */
	char *cache_dir;
	char *config;
	gboolean system_mode; /* start the daemon as on the system bus, with polkit */
} t;

static void
job_track_free (JobTrack *track)
{
	g_free (track->state);
	g_free (track->error_name);
	g_free (track->message);
	g_free (track);
}

static JobTrack *
job_track (const char *path)
{
	JobTrack *track = g_hash_table_lookup (t.jobs, path);

	if (track == NULL) {
		track = g_new0 (JobTrack, 1);
		g_hash_table_insert (t.jobs, g_strdup (path), track);
	}
	return track;
}

static void
job_signal_cb (GDBusConnection *connection, const char *sender, const char *path,
	       const char *iface, const char *signal, GVariant *params, gpointer user_data)
{
	JobTrack *track = job_track (path);

	if (g_strcmp0 (signal, "Progress") == 0) {
		gdouble fraction;
		guint64 done, total, rate;

		g_variant_get (params, "(dttt)", &fraction, &done, &total, &rate);
		if (fraction < track->last_fraction)
			track->fraction_went_back = TRUE;
		track->last_fraction = fraction;
		track->n_progress++;
		track->last_progress = g_get_monotonic_time ();
		if (track->first_progress == 0)
			track->first_progress = track->last_progress;
	} else if (g_strcmp0 (signal, "Completed") == 0) {
		g_clear_pointer (&track->state, g_free);
		g_clear_pointer (&track->error_name, g_free);
		g_clear_pointer (&track->message, g_free);
		g_variant_get (params, "(sss)", &track->state, &track->error_name, &track->message);
		track->done = TRUE;
	}
}

/* Spins the main context until cond (checked each turn) or timeout; FALSE on timeout. */
static gboolean
spin_until (gboolean (*cond) (gpointer), gpointer data, guint timeout_s)
{
	gint64 end = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;

	while (!cond (data)) {
		if (g_get_monotonic_time () > end)
			return FALSE;
		g_main_context_iteration (NULL, FALSE);
		g_usleep (2000);
	}
	return TRUE;
}

static gboolean
job_done_cond (gpointer data)
{
	return job_track (data)->done;
}

static JobTrack *
job_wait (const char *path)
{
	if (!spin_until (job_done_cond, (gpointer) path, 120))
		g_error ("job %s did not complete within two minutes", path);
	return job_track (path);
}

/* The bus and the daemon must not outlive a test program that crashed or timed out. */
static void
die_with_parent (gpointer data)
{
	(void) prctl (PR_SET_PDEATHSIG, GPOINTER_TO_INT (data));
}

static void
bus_start (void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *conf_path = NULL;
	g_autofree char *conf = NULL;
	g_autofree char *socket_path = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GDataInputStream) out = NULL;

	t.dir = vmi_test_tmpdir_new ();
	/* A client running as another user must reach the socket. */
	g_assert_cmpint (chmod (t.dir, 0755), ==, 0);
	socket_path = g_build_filename (t.dir, "bus", NULL);
	conf = g_strdup_printf ("<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
				" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
				"<busconfig>\n"
				"  <type>session</type>\n"
				"  <listen>unix:path=%s</listen>\n"
				"  <auth>EXTERNAL</auth>\n"
				"  <policy context=\"default\">\n"
				"    <allow user=\"*\"/>\n"
				"    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
				"    <allow eavesdrop=\"true\"/>\n"
				"    <allow own=\"*\"/>\n"
				"  </policy>\n"
				"</busconfig>\n",
				socket_path);
	conf_path = g_build_filename (t.dir, "bus.conf", NULL);
	g_file_set_contents (conf_path, conf, -1, &error);
	g_assert_no_error (error);

	launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	g_subprocess_launcher_set_child_setup (launcher, die_with_parent, GINT_TO_POINTER (SIGKILL),
					       NULL);
	t.bus = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", "--nofork",
					     "--print-address", "--config-file", conf_path, NULL);
	g_assert_no_error (error);
	out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (t.bus));
	t.address = g_data_input_stream_read_line (out, NULL, NULL, &error);
	g_assert_no_error (error);
	g_assert_nonnull (t.address);
	g_assert_cmpint (chmod (socket_path, 0777), ==, 0);

	t.connection = g_dbus_connection_new_for_address_sync (
		t.address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error (error);
	t.jobs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
					(GDestroyNotify) job_track_free);
	g_dbus_connection_signal_subscribe (t.connection, NULL, "org.vmimaged.VMImage1.Job", NULL,
					    NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE, job_signal_cb, NULL,
					    NULL);
	t.cache_dir = g_build_filename (t.dir, "cache", NULL);
	g_assert_cmpint (g_mkdir (t.cache_dir, 0755), ==, 0);
}

static gboolean
name_has_owner (void)
{
	g_autoptr(GVariant) reply = NULL;
	gboolean owned = FALSE;

	reply = g_dbus_connection_call_sync (t.connection, "org.freedesktop.DBus",
					     "/org/freedesktop/DBus", "org.freedesktop.DBus",
					     "NameHasOwner", g_variant_new ("(s)", BUS_NAME),
					     G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
					     NULL);
	if (reply != NULL)
		g_variant_get (reply, "(b)", &owned);
	return owned;
}

static gboolean
name_owned_cond (gpointer data)
{
	/* Stop waiting if the daemon died. */
	if (t.daemon != NULL && g_subprocess_get_identifier (t.daemon) == NULL)
		return TRUE;
	return name_has_owner () == GPOINTER_TO_INT (data);
}

static char *
daemon_executable (void)
{
	const char *path = g_getenv ("VMI_TEST_DAEMON");

	if (path != NULL)
		return g_strdup (path);
	return g_build_filename (g_getenv ("G_TEST_BUILDDIR"), "..", "daemon", "vmimaged", NULL);
}

/* Sends SIGTERM, waits for the exit and returns the exit status (-1 if killed by a signal). */
static int
daemon_stop (void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) daemon = g_steal_pointer (&t.daemon);
	int status;

	if (daemon == NULL)
		return 0;
	g_subprocess_send_signal (daemon, SIGTERM);
	g_subprocess_wait (daemon, NULL, &error);
	g_assert_no_error (error);
	status = g_subprocess_get_if_exited (daemon) ? g_subprocess_get_exit_status (daemon) : -1;
	/* The name goes with the process; wait for the bus to notice. */
	g_assert_true (spin_until (name_owned_cond, GINT_TO_POINTER (FALSE), 30));
	return status;
}

/* (Re)starts vmimaged on the private bus with plugin_dir; max_jobs for MaxParallelJobs. */
static void
daemon_start_full (const char *plugin_dir, guint max_jobs, guint linger_seconds)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autofree char *conf = NULL;
	g_autofree char *daemon_path = NULL;

	g_assert_cmpint (daemon_stop (), ==, 0);
	g_assert_false (name_has_owner ());
	/* A new daemon numbers its jobs from 1 again. */
	g_hash_table_remove_all (t.jobs);
	g_free (t.plugin_dir);
	t.plugin_dir = g_strdup (plugin_dir);
	g_free (t.config);
	t.config = g_build_filename (t.dir, "vmimaged.conf", NULL);
	conf = g_strdup_printf ("[Daemon]\nMaxParallelJobs=%u\nJobLingerSeconds=%u\n", max_jobs,
				linger_seconds);
	g_file_set_contents (t.config, conf, -1, &error);
	g_assert_no_error (error);

	daemon_path = daemon_executable ();
	launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
	g_subprocess_launcher_set_child_setup (launcher, die_with_parent, GINT_TO_POINTER (SIGTERM),
					       NULL);
	/* The daemon logs INFO to stdout, which is the TAP stream here: send it to stderr. */
	g_subprocess_launcher_take_stdout_fd (launcher, dup (STDERR_FILENO));
	g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", t.address, TRUE);
	/* Without --session the daemon takes this bus for the system bus and asks polkit. */
	g_subprocess_launcher_setenv (launcher, "DBUS_SYSTEM_BUS_ADDRESS", t.address, TRUE);
	t.daemon = g_subprocess_launcher_spawn (launcher, &error, daemon_path,
						t.system_mode ? "--verbose" : "--session",
						"--plugin-dir", plugin_dir, "--cache-dir",
						t.cache_dir, "--config", t.config, "--verbose",
						NULL);
	g_assert_no_error (error);
	g_assert_true (spin_until (name_owned_cond, GINT_TO_POINTER (TRUE), 60));
	g_assert_nonnull (g_subprocess_get_identifier (t.daemon));
}

static void
daemon_start (const char *plugin_dir)
{
	daemon_start_full (plugin_dir, 2, 300);
}

static const char *
test_plugin_dir (void)
{
	const char *dir = g_getenv ("VMI_TEST_PLUGIN_DIR");

	g_assert_nonnull (dir);
	return dir;
}

/* The daemon as most tests want it: all the built plugins. */
static void
daemon_ensure (void)
{
	if (t.daemon != NULL && !t.system_mode && g_strcmp0 (t.plugin_dir, test_plugin_dir ()) == 0)
		return;
	t.system_mode = FALSE;
	daemon_start (test_plugin_dir ());
}

static VmiManager *
manager_new (void)
{
	g_autoptr(GError) error = NULL;
	VmiManager *manager;

	daemon_ensure ();
	manager = vmi_manager_proxy_new_sync (t.connection, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
					      MANAGER_PATH, NULL, &error);
	g_assert_no_error (error);
	return manager;
}

static VmiJob *
job_proxy_new (const char *path)
{
	g_autoptr(GError) error = NULL;
	VmiJob *job = vmi_job_proxy_new_sync (t.connection, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME, path,
					      NULL, &error);

	g_assert_no_error (error);
	return job;
}

/* Asserts that error is the D-Bus error ERROR_PREFIX name and that its message has needle. */
static void
assert_dbus_error (const GError *error, const char *name, const char *needle)
{
	g_autofree char *remote = NULL;
	g_autofree char *expected = g_strconcat (ERROR_PREFIX, name, NULL);

	g_assert_nonnull (error);
	g_assert_true (g_dbus_error_is_remote_error (error));
	remote = g_dbus_error_get_remote_error (error);
	if (g_strcmp0 (remote, expected) != 0)
		g_error ("expected %s, got %s: %s", expected, remote, error->message);
	if (needle != NULL && strstr (error->message, needle) == NULL)
		g_error ("the %s message does not mention \"%s\": %s", name, needle, error->message);
}

static GVariant *
no_options (void)
{
	return g_variant_new ("a{sv}", NULL);
}

/* Formats as a dictionary. */
static GVariant *
manager_formats (VmiManager *manager)
{
	GVariant *formats = vmi_manager_get_formats (manager);

	g_assert_nonnull (formats);
	return formats;
}

static gboolean
has_format (VmiManager *manager, const char *name)
{
	g_autoptr(GVariant) entry = g_variant_lookup_value (manager_formats (manager), name,
							    G_VARIANT_TYPE_VARDICT);

	return entry != NULL;
}

static gboolean
can_write (VmiManager *manager, const char *name)
{
	g_autoptr(GVariant) entry = g_variant_lookup_value (manager_formats (manager), name,
							    G_VARIANT_TYPE_VARDICT);
	gboolean writable = FALSE;

	return entry != NULL && g_variant_lookup (entry, "can-write", "b", &writable) && writable;
}

static gboolean
require_format (VmiManager *manager, const char *name, gboolean write)
{
	if (write ? can_write (manager, name) : has_format (manager, name))
		return TRUE;
	{
		g_autofree char *msg = g_strdup_printf ("the daemon has no %s plugin%s yet", name,
							write ? " that writes" : "");
		g_test_skip (msg);
	}
	return FALSE;
}

static guint64
info_uint64 (GVariant *info, const char *key)
{
	guint64 value = 0;

	if (!g_variant_lookup (info, key, "t", &value))
		g_error ("Inspect result has no %s (t)", key);
	return value;
}

static char *
info_string (GVariant *info, const char *key)
{
	char *value = NULL;

	if (!g_variant_lookup (info, key, "s", &value))
		g_error ("Inspect result has no %s (s)", key);
	return value;
}

static gboolean
have_qemu_img (void)
{
	g_autofree char *path = g_find_program_in_path ("qemu-img");

	return path != NULL;
}

/* Names in dir that look like a job's temporary file. */
static guint
count_temp_files (const char *dir)
{
	g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
	const char *name;
	guint n = 0;

	g_assert_nonnull (d);
	while ((name = g_dir_read_name (d)) != NULL) {
		if (g_str_has_suffix (name, ".vmimaged-tmp"))
			n++;
	}
	return n;
}

/* ---- A client running as another user ---- */

static gboolean
require_root (void)
{
	if (geteuid () == 0)
		return TRUE;
	g_test_skip ("needs root to run a client as nobody and see the daemon refuse it");
	return FALSE;
}

/* ---- Manager properties ---- */

static void
test_version_formats (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autoptr(GDir) dir = g_dir_open (test_plugin_dir (), 0, NULL);
	GVariant *formats = manager_formats (manager);
	const char *name;
	guint n_modules = 0;

	g_assert_cmpstr (vmi_manager_get_version (manager), ==, VMI_VERSION);
	g_assert_nonnull (dir);
	/* Every module built is a format on the bus, with the fields the contract names. */
	while ((name = g_dir_read_name (dir)) != NULL) {
		g_autofree char *format = NULL;
		g_autoptr(GVariant) entry = NULL;
		const char *description = NULL;
		gboolean can_inspect = FALSE, can_read = FALSE, can_write = FALSE;

		if (!g_str_has_prefix (name, "vmi-") || !g_str_has_suffix (name, ".so"))
			continue;
		format = g_strndup (name + 4, strlen (name) - 7);
		entry = g_variant_lookup_value (formats, format, G_VARIANT_TYPE_VARDICT);
		if (entry == NULL)
			g_error ("module %s is not in Formats", name);
		g_assert_true (g_variant_lookup (entry, "description", "&s", &description));
		g_assert_cmpstr (description, !=, "");
		g_assert_true (g_variant_lookup (entry, "can-inspect", "b", &can_inspect));
		g_assert_true (g_variant_lookup (entry, "can-read", "b", &can_read));
		g_assert_true (g_variant_lookup (entry, "can-write", "b", &can_write));
		n_modules++;
	}
	g_assert_cmpuint (n_modules, >, 0);
	g_assert_cmpuint (g_variant_n_children (formats), ==, n_modules);
	g_assert_true (has_format (manager, "raw"));
	/* A writer lists the options it takes when creating, with a description each. */
	if (can_write (manager, "qcow2")) {
		g_autoptr(GVariant) entry = g_variant_lookup_value (formats, "qcow2",
								    G_VARIANT_TYPE_VARDICT);
		g_autoptr(GVariant) create = g_variant_lookup_value (entry, "create-options",
								     G_VARIANT_TYPE ("a{ss}"));
		const char *text = NULL;

		g_assert_nonnull (create);
		g_assert_true (g_variant_lookup (create, "cluster-size", "&s", &text));
		g_assert_cmpstr (text, !=, "");
	}
}

static void
copy_file (const char *from, const char *to)
{
	g_autofree char *contents = NULL;
	gsize len = 0;
	g_autoptr(GError) error = NULL;

	g_file_get_contents (from, &contents, &len, &error);
	g_assert_no_error (error);
	g_file_set_contents (to, contents, (gssize) len, &error);
	g_assert_no_error (error);
}

static void
test_formats_module_removed (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autoptr(GDir) d = g_dir_open (test_plugin_dir (), 0, NULL);
	g_autofree char *victim = NULL;
	g_autofree char *victim_path = NULL;
	const char *name;

	/* A plugin directory of copies of the built modules, as an installation would have. */
	while ((name = g_dir_read_name (d)) != NULL) {
		g_autofree char *from = NULL;
		g_autofree char *to = NULL;

		if (!g_str_has_prefix (name, "vmi-") || !g_str_has_suffix (name, ".so"))
			continue;
		from = g_build_filename (test_plugin_dir (), name, NULL);
		to = g_build_filename (dir, name, NULL);
		copy_file (from, to);
		if (g_strcmp0 (name, "vmi-raw.so") != 0 && (victim == NULL || strcmp (name, victim) > 0)) {
			g_free (victim);
			victim = g_strdup (name);
		}
	}
	if (victim == NULL) {
		g_test_skip ("only the raw plugin is built: nothing to remove but raw");
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	{
		g_autofree char *format = g_strndup (victim + 4, strlen (victim) - 7);
		g_autoptr(VmiManager) manager = NULL;

		daemon_start (dir);
		manager = vmi_manager_proxy_new_sync (t.connection, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
						      MANAGER_PATH, NULL, NULL);
		g_assert_true (has_format (manager, format));
		g_clear_object (&manager);

		victim_path = g_build_filename (dir, victim, NULL);
		g_assert_cmpint (g_unlink (victim_path), ==, 0);
		daemon_start (dir);
		manager = vmi_manager_proxy_new_sync (t.connection, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
						      MANAGER_PATH, NULL, NULL);
		g_assert_false (has_format (manager, format));
		g_assert_true (has_format (manager, "raw"));
	}
	g_assert_cmpint (daemon_stop (), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- Inspect ---- */

static void
test_inspect_raw (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = g_build_filename (dir, "disk.img", NULL);
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *format = NULL;

	vmi_test_make_pattern_image (path, 3 * MiB + 512, 7);
	vmi_manager_call_inspect_sync (manager, path, no_options (), &info, NULL, &error);
	g_assert_no_error (error);
	format = info_string (info, "format");
	g_assert_cmpstr (format, ==, "raw");
	g_assert_cmpuint (info_uint64 (info, "virtual-size"), ==, 3 * MiB + 512);
	g_assert_cmpuint (info_uint64 (info, "file-size"), ==, 3 * MiB + 512);
	if (vmi_test_require_qemu_img ()) {
		g_autoptr(JsonObject) qemu = vmi_test_qemu_img_info (path, "raw");

		g_assert_cmpuint (info_uint64 (info, "virtual-size"), ==,
				  (guint64) json_object_get_int_member (qemu, "virtual-size"));
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
make_qcow2 (const char *path, const char *size, const char *opts)
{
	g_autofree char *q = g_shell_quote (path);

	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img create -q -f qcow2 %s %s %s", opts, q, size),
			 ==, 0);
	g_assert_cmpint (vmi_test_sh (NULL,
				      "qemu-io -f qcow2 -c 'write -P 0x11 0 1M' "
				      "-c 'write -P 0x22 3M 512k' -c 'write -z 5M 1M' %s >/dev/null",
				      q),
			 ==, 0);
}

static void
test_inspect_qcow2 (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) qemu = NULL;
	g_autofree char *format = NULL;
	gboolean safe = FALSE;

	if (!vmi_test_require_qemu_img () || !require_format (manager, "qcow2", FALSE))
		return;
	dir = vmi_test_tmpdir_new ();
	path = g_build_filename (dir, "disk.qcow2", NULL);
	make_qcow2 (path, "100M", "-o cluster_size=128k");
	vmi_manager_call_inspect_sync (manager, path, no_options (), &info, NULL, &error);
	g_assert_no_error (error);
	qemu = vmi_test_qemu_img_info (path, NULL);
	format = info_string (info, "format");
	g_assert_cmpstr (format, ==, json_object_get_string_member (qemu, "format"));
	g_assert_cmpuint (info_uint64 (info, "virtual-size"), ==,
			  (guint64) json_object_get_int_member (qemu, "virtual-size"));
	g_assert_cmpuint (info_uint64 (info, "cluster-size"), ==,
			  (guint64) json_object_get_int_member (qemu, "cluster-size"));
	g_assert_true (g_variant_lookup (info, "safe", "b", &safe));
	g_assert_true (safe);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static GVariant *
inspect_fd (VmiManager *manager, int fd, GError **error)
{
	g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
	GVariant *info = NULL;
	int index = g_unix_fd_list_append (fds, fd, NULL);

	g_assert_cmpint (index, ==, 0);
	vmi_manager_call_inspect_fd_sync (manager, g_variant_new_handle (index), no_options (), fds,
					  &info, NULL, NULL, error);
	return info;
}

static void
test_inspect_fd (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = g_build_filename (dir, "disk.img", NULL);
	g_autofree char *fifo = g_build_filename (dir, "fifo", NULL);
	g_autoptr(GVariant) by_path = NULL;
	g_autoptr(GVariant) by_fd = NULL;
	g_autoptr(GError) error = NULL;
	int fd;

	vmi_test_make_pattern_image (path, 2 * MiB, 3);
	if (has_format (manager, "qcow2") && have_qemu_img ()) {
		g_free (path);
		path = g_build_filename (dir, "disk.qcow2", NULL);
		make_qcow2 (path, "64M", "");
	}
	vmi_manager_call_inspect_sync (manager, path, no_options (), &by_path, NULL, &error);
	g_assert_no_error (error);
	fd = open (path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	by_fd = inspect_fd (manager, fd, &error);
	g_assert_no_error (error);
	close (fd);
	/* The same facts whichever way the image arrives. */
	g_assert_true (g_variant_equal (by_path, by_fd));

	/* Not a readable regular file: refused, and a FIFO must not hang the daemon. */
	g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
	fd = open (fifo, O_RDWR | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	g_clear_pointer (&by_fd, g_variant_unref);
	by_fd = inspect_fd (manager, fd, &error);
	assert_dbus_error (error, "InvalidArgument", "FIFO");
	g_clear_error (&error);
	close (fd);

	fd = open (path, O_WRONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	by_fd = inspect_fd (manager, fd, &error);
	assert_dbus_error (error, "InvalidArgument", "reading");
	g_clear_error (&error);
	close (fd);

	fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	by_fd = inspect_fd (manager, fd, &error);
	assert_dbus_error (error, "InvalidArgument", "directory");
	g_clear_error (&error);
	close (fd);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
expect_inspect_error (VmiManager *manager, const char *path, GVariant *options, const char *name,
		      const char *needle)
{
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GError) error = NULL;

	vmi_manager_call_inspect_sync (manager, path, options != NULL ? options : no_options (),
				       &info, NULL, &error);
	if (error == NULL) {
		g_autofree char *text = g_variant_print (info, FALSE);

		g_error ("Inspect of %s succeeded: %s", path, text);
	}
	assert_dbus_error (error, name, needle);
}

static void
write_file (const char *path, const void *data, gsize len)
{
	g_autoptr(GError) error = NULL;

	g_file_set_contents (path, data, (gssize) len, &error);
	g_assert_no_error (error);
}

static void
test_inspect_bad_input (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *empty = g_build_filename (dir, "empty.img", NULL);
	g_autofree char *one = g_build_filename (dir, "one.img", NULL);
	g_autofree char *truncated = g_build_filename (dir, "truncated.qcow2", NULL);
	g_autofree char *wrong = g_build_filename (dir, "wrong-magic.qcow2", NULL);
	g_autofree char *fifo = g_build_filename (dir, "fifo", NULL);
	g_autofree char *sock_path = g_build_filename (dir, "socket", NULL);
	g_autofree char *missing = g_build_filename (dir, "missing.img", NULL);
	static const guint8 qcow2_head[] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3, 0, 0, 0, 0 };
	guint8 noise[4096];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int sock;
	gint64 start;

	for (gsize i = 0; i < sizeof noise; i++)
		noise[i] = (guint8) (i * 7 + 13);
	write_file (empty, "", 0);
	write_file (one, "Q", 1);
	write_file (truncated, qcow2_head, sizeof qcow2_head);
	write_file (wrong, noise, sizeof noise);
	g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
	sock = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint (sock, >=, 0);
	g_strlcpy (addr.sun_path, sock_path, sizeof addr.sun_path);
	g_assert_cmpint (bind (sock, (struct sockaddr *) &addr, sizeof addr), ==, 0);

	expect_inspect_error (manager, empty, NULL, "CorruptImage", empty);
	{
		g_autoptr(GVariant) info = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree char *format = NULL;

		vmi_manager_call_inspect_sync (manager, one, no_options (), &info, NULL, &error);
		g_assert_no_error (error);
		format = info_string (info, "format");
		g_assert_cmpstr (format, ==, "raw");
		g_assert_cmpuint (info_uint64 (info, "virtual-size"), ==, 1);
	}
	/* One byte is a valid (if silly) raw disk, as qemu-img agrees; as qcow2 it is corrupt. */
	if (has_format (manager, "qcow2")) {
		expect_inspect_error (manager, one,
				      g_variant_new_parsed ("{'format': <'qcow2'>}"),
				      "CorruptImage", one);
		expect_inspect_error (manager, truncated, NULL, "CorruptImage", "header");
		expect_inspect_error (manager, wrong,
				      g_variant_new_parsed ("{'format': <'qcow2'>}"),
				      "UnknownFormat", "magic");
	}
	expect_inspect_error (manager, wrong, g_variant_new_parsed ("{'format': <'no-such'>}"),
			      "UnknownFormat", "no-such");
	expect_inspect_error (manager, dir, NULL, "InvalidArgument", "directory");
	start = g_get_monotonic_time ();
	expect_inspect_error (manager, fifo, NULL, "InvalidArgument", "FIFO");
	g_assert_cmpint (g_get_monotonic_time () - start, <, 60 * G_USEC_PER_SEC);
	expect_inspect_error (manager, sock_path, NULL, "InvalidArgument", sock_path);
	expect_inspect_error (manager, missing, NULL, "InvalidArgument", missing);
	expect_inspect_error (manager, "disk.img", NULL, "InvalidArgument", "relative");
	expect_inspect_error (manager, "", NULL, "InvalidArgument", "empty");
	close (sock);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- Convert and jobs ---- */

static char *
convert (VmiManager *manager, const char *src, const char *dst, const char *format,
	 GVariant *options, GError **error)
{
	char *job = NULL;

	vmi_manager_call_convert_sync (manager, src, dst, format,
				       options != NULL ? options : no_options (), &job, NULL, error);
	return job;
}

static char *
convert_fd (VmiManager *manager, int src, int dst, const char *format, GVariant *options,
	    GError **error)
{
	g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
	char *job = NULL;

	g_assert_cmpint (g_unix_fd_list_append (fds, src, NULL), ==, 0);
	g_assert_cmpint (g_unix_fd_list_append (fds, dst, NULL), ==, 1);
	vmi_manager_call_convert_fd_sync (manager, g_variant_new_handle (0), g_variant_new_handle (1),
					  format, options != NULL ? options : no_options (), fds,
					  &job, NULL, NULL, error);
	return job;
}

static void
expect_convert_error (VmiManager *manager, const char *src, const char *dst, const char *format,
		      GVariant *options, const char *name, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *job = convert (manager, src, dst, format, options, &error);

	if (job != NULL)
		g_error ("Convert %s -> %s (%s) was accepted as %s", src, dst, format, job);
	assert_dbus_error (error, name, needle);
}

static void
assert_job_completed (const char *path)
{
	JobTrack *track = job_wait (path);

	if (g_strcmp0 (track->state, "completed") != 0)
		g_error ("job %s ended %s: %s %s", path, track->state, track->error_name,
			 track->message);
	g_assert_cmpstr (track->error_name, ==, "");
}

static void
assert_job_cancelled (const char *path)
{
	JobTrack *track = job_wait (path);
	g_autoptr(VmiJob) job = job_proxy_new (path);

	g_assert_cmpstr (track->state, ==, "cancelled");
	g_assert_cmpstr (track->error_name, ==, ERROR_PREFIX "Cancelled");
	g_assert_cmpstr (vmi_job_get_state (job), ==, "cancelled");
	g_assert_cmpstr (vmi_job_get_error (job), ==, ERROR_PREFIX "Cancelled");
}

/* A source with real data: qcow2 from qemu-img when the daemon reads qcow2, else raw. */
static char *
make_source (VmiManager *manager, const char *dir, const char **format)
{
	char *path;

	if (have_qemu_img () && has_format (manager, "qcow2")) {
		path = g_build_filename (dir, "source.qcow2", NULL);
		make_qcow2 (path, "24M", "");
		*format = "qcow2";
		return path;
	}
	path = g_build_filename (dir, "source.img", NULL);
	vmi_test_make_pattern_image (path, 24 * MiB, 11);
	*format = "raw";
	return path;
}

static void
test_convert_raw (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *dst = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *dst_fd_path = g_build_filename (dir, "out-fd.raw", NULL);
	const char *src_format = NULL;
	g_autofree char *src = make_source (manager, dir, &src_format);
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autoptr(VmiJob) job = NULL;
	g_autoptr(GVariant) result = NULL;
	const char *text = NULL;
	guint64 number = 0;
	JobTrack *track;
	struct stat st;
	int src_fd, dst_fd;

	path = convert (manager, src, dst, "raw", NULL, &error);
	g_assert_no_error (error);
	g_assert_true (g_str_has_prefix (path, "/org/vmimaged/VMImage1/jobs/"));
	assert_job_completed (path);
	track = job_track (path);
	g_assert_cmpuint (track->n_progress, >=, 1);
	g_assert_false (track->fraction_went_back);
	g_assert_cmpfloat (track->last_fraction, ==, 1.0);

	/* The job object keeps its final state for scripts to read. */
	job = job_proxy_new (path);
	g_assert_cmpstr (vmi_job_get_operation (job), ==, "convert");
	g_assert_cmpstr (vmi_job_get_state (job), ==, "completed");
	g_assert_cmpfloat (vmi_job_get_fraction (job), ==, 1.0);
	g_assert_cmpuint (vmi_job_get_bytes_total (job), ==, 24 * MiB);
	g_assert_cmpuint (vmi_job_get_bytes_done (job), ==, 24 * MiB);
	g_assert_cmpuint (vmi_job_get_owner (job), ==, getuid ());
	g_assert_cmpstr (vmi_job_get_error (job), ==, "");
	result = vmi_job_dup_result (job);
	g_assert_true (g_variant_lookup (result, "destination", "&s", &text));
	g_assert_cmpstr (text, ==, dst);
	g_assert_true (g_variant_lookup (result, "format", "&s", &text));
	g_assert_cmpstr (text, ==, "raw");
	g_assert_true (g_variant_lookup (result, "virtual-size", "t", &number));
	g_assert_cmpuint (number, ==, 24 * MiB);
	g_assert_cmpint (stat (dst, &st), ==, 0);
	g_assert_true (g_variant_lookup (result, "file-size", "t", &number));
	g_assert_cmpuint (number, ==, (guint64) st.st_size);
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	if (vmi_test_require_qemu_img ())
		g_assert_true (vmi_test_qemu_img_compare (src, src_format, dst, "raw"));

	/* The same through file descriptors. */
	src_fd = open (src, O_RDONLY | O_CLOEXEC);
	dst_fd = open (dst_fd_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	g_assert_cmpint (src_fd, >=, 0);
	g_assert_cmpint (dst_fd, >=, 0);
	g_free (path);
	path = convert_fd (manager, src_fd, dst_fd, "raw", NULL, &error);
	g_assert_no_error (error);
	assert_job_completed (path);
	if (have_qemu_img ())
		g_assert_true (vmi_test_qemu_img_compare (src, src_format, dst_fd_path, "raw"));

	/* ConvertFd wants an empty destination. */
	g_free (path);
	path = convert_fd (manager, src_fd, dst_fd, "raw", NULL, &error);
	g_assert_null (path);
	assert_dbus_error (error, "InvalidArgument", "empty");
	g_clear_error (&error);
	close (src_fd);
	close (dst_fd);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static gboolean
progress_at_least_cond (gpointer data)
{
	const char **args = data;
	JobTrack *track = job_track (args[0]);

	return track->done || track->n_progress >= (guint) atoi (args[1]);
}

static void
wait_progress (const char *path, guint n)
{
	g_autofree char *count = g_strdup_printf ("%u", n);
	const char *args[] = { path, count };

	g_assert_true (spin_until (progress_at_least_cond, args, 60));
}

static char *
make_big_source (VmiManager *manager, const char *dir)
{
	char *path;

	if (!require_format (manager, "qcow2", FALSE))
		return NULL;
	path = g_build_filename (dir, "big.qcow2", NULL);
	vmi_test_make_compressed_qcow2 (path, 4ull * 1024 * MiB, 0x5a);
	return path;
}

static void
test_convert_cancel (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *big = make_big_source (manager, dir);
	g_autofree char *dst = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *dst_fd_path = g_build_filename (dir, "out-fd.raw", NULL);
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiJob) job = NULL;
	JobTrack *track;
	gdouble seconds;
	struct stat st;
	int src_fd, dst_fd;

	if (big == NULL) {
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	path = convert (manager, big, dst, "raw", NULL, &error);
	g_assert_no_error (error);
	/* Let it run a little, and see that progress is signalled no more than ~10 times a second. */
	wait_progress (path, 4);
	track = job_track (path);
	g_assert_false (track->done);
	seconds = (gdouble) (track->last_progress - track->first_progress) / G_USEC_PER_SEC;
	g_assert_cmpfloat ((gdouble) (track->n_progress - 1), <=, 12.0 * seconds + 1.0);
	/* While it runs: a fraction between the ends, a rate and a time it should end at. */
	job = job_proxy_new (path);
	g_assert_cmpstr (vmi_job_get_state (job), ==, "running");
	g_assert_cmpfloat (vmi_job_get_fraction (job), >, 0.0);
	g_assert_cmpfloat (vmi_job_get_fraction (job), <, 1.0);
	g_assert_cmpuint (vmi_job_get_bytes_total (job), ==, 4ull * 1024 * MiB);
	g_assert_cmpuint (vmi_job_get_rate (job), >, 0);
	g_assert_cmpuint (vmi_job_get_expected_end_time (job), >, (guint64) g_get_real_time ());
	vmi_job_call_cancel_sync (job, NULL, &error);
	g_assert_no_error (error);
	assert_job_cancelled (path);
	g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	/* Cancelling a finished job does nothing. */
	vmi_job_call_cancel_sync (job, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_job_get_state (job), ==, "cancelled");

	/* ConvertFd: the destination is truncated to nothing. */
	src_fd = open (big, O_RDONLY | O_CLOEXEC);
	dst_fd = open (dst_fd_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	g_assert_cmpint (src_fd, >=, 0);
	g_assert_cmpint (dst_fd, >=, 0);
	g_free (path);
	path = convert_fd (manager, src_fd, dst_fd, "raw", NULL, &error);
	g_assert_no_error (error);
	wait_progress (path, 2);
	g_clear_object (&job);
	job = job_proxy_new (path);
	vmi_job_call_cancel_sync (job, NULL, &error);
	g_assert_no_error (error);
	assert_job_cancelled (path);
	g_assert_cmpint (fstat (dst_fd, &st), ==, 0);
	g_assert_cmpint (st.st_size, ==, 0);
	close (src_fd);
	close (dst_fd);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_convert_exists_at_rename (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "medium.qcow2", NULL);
	g_autofree char *dst = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *contents = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	JobTrack *track;

	if (!require_format (manager, "qcow2", FALSE)) {
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	vmi_test_make_compressed_qcow2 (src, 512 * MiB, 0x33);
	path = convert (manager, src, dst, "raw", NULL, &error);
	g_assert_no_error (error);
	/* Someone else creates the destination while the job runs: it must survive. */
	write_file (dst, "theirs", 6);
	track = job_wait (path);
	g_assert_cmpstr (track->state, ==, "failed");
	g_assert_cmpstr (track->error_name, ==, ERROR_PREFIX "Exists");
	g_assert_nonnull (strstr (track->message, dst));
	g_assert_true (g_file_get_contents (dst, &contents, NULL, NULL));
	g_assert_cmpstr (contents, ==, "theirs");
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_convert_queue (void)
{
	g_autoptr(VmiManager) manager = NULL;
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *big = NULL;
	g_autofree char *dst_a = g_build_filename (dir, "a.raw", NULL);
	g_autofree char *dst_b = g_build_filename (dir, "b.raw", NULL);
	g_autofree char *path_a = NULL;
	g_autofree char *path_b = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiJob) job_a = NULL;
	g_autoptr(VmiJob) job_b = NULL;

	/* One job at a time: the second waits in the queue. */
	daemon_start_full (test_plugin_dir (), 1, 300);
	manager = vmi_manager_proxy_new_sync (t.connection, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
					      MANAGER_PATH, NULL, &error);
	g_assert_no_error (error);
	big = make_big_source (manager, dir);
	if (big == NULL) {
		g_assert_cmpint (daemon_stop (), ==, 0);
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	path_a = convert (manager, big, dst_a, "raw", NULL, &error);
	g_assert_no_error (error);
	path_b = convert (manager, big, dst_b, "raw", NULL, &error);
	g_assert_no_error (error);
	job_a = job_proxy_new (path_a);
	job_b = job_proxy_new (path_b);
	g_assert_cmpstr (vmi_job_get_state (job_b), ==, "queued");
	g_assert_cmpstr (vmi_job_get_state (job_a), ==, "running");
	/* A queued job holds a temporary file; cancelling it removes that. */
	vmi_job_call_cancel_sync (job_b, NULL, &error);
	g_assert_no_error (error);
	assert_job_cancelled (path_b);
	g_assert_false (job_track (path_a)->done);
	vmi_job_call_cancel_sync (job_a, NULL, &error);
	g_assert_no_error (error);
	assert_job_cancelled (path_a);
	g_assert_false (g_file_test (dst_a, G_FILE_TEST_EXISTS));
	g_assert_false (g_file_test (dst_b, G_FILE_TEST_EXISTS));
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	g_assert_cmpint (daemon_stop (), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * Starts a conversion of big from a connection of its own, waits until it reports progress,
 * closes that connection and returns the job's path.
 */
static char *
convert_then_disconnect (const char *big, const char *dst, const char *options)
{
	g_autoptr(GDBusConnection) other = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	const char *path = NULL;

	other = g_dbus_connection_new_for_address_sync (
		t.address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error (error);
	reply = g_dbus_connection_call_sync (
		other, BUS_NAME, MANAGER_PATH, "org.vmimaged.VMImage1.Manager", "Convert",
		g_variant_new ("(sss@a{sv})", big, dst, "raw", g_variant_new_parsed (options)),
		G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(&o)", &path);
	wait_progress (path, 2);
	g_dbus_connection_close_sync (other, NULL, &error);
	g_assert_no_error (error);
	return g_strdup (path);
}

static void
test_convert_cancel_on_disconnect (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *big = make_big_source (manager, dir);
	g_autofree char *dst = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *path = NULL;

	if (big == NULL) {
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	path = convert_then_disconnect (big, dst, "{'cancel-on-disconnect': <true>}");
	assert_job_cancelled (path);
	g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Without cancel-on-disconnect a conversion is a background job: it outlives its caller. */
static void
test_convert_survives_disconnect (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *big = make_big_source (manager, dir);
	g_autofree char *dst = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *path = NULL;

	if (big == NULL) {
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	path = convert_then_disconnect (big, dst, "@a{sv} {}");
	assert_job_completed (path);
	g_assert_true (g_file_test (dst, G_FILE_TEST_IS_REGULAR));
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* The output is as private as its source, whatever the daemon's umask. */
static void
test_convert_keeps_mode (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	const guint modes[] = { 0600, 0640, 0644 };

	for (guint i = 0; i < G_N_ELEMENTS (modes); i++) {
		g_autofree char *src = g_strdup_printf ("%s/source-%o.img", dir, modes[i]);
		g_autofree char *dst = g_strdup_printf ("%s/out-%o.raw", dir, modes[i]);
		g_autofree char *path = NULL;
		g_autoptr(GError) error = NULL;
		GStatBuf st;

		vmi_test_make_pattern_image (src, MiB, 6);
		g_assert_cmpint (g_chmod (src, (int) modes[i]), ==, 0);
		path = convert (manager, src, dst, "raw", NULL, &error);
		g_assert_no_error (error);
		assert_job_completed (path);
		g_assert_cmpint (g_stat (dst, &st), ==, 0);
		g_assert_cmpuint (st.st_mode & 0777, ==, modes[i]);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_convert_overwrite (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "source.img", NULL);
	g_autofree char *dst = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *folder = g_build_filename (dir, "folder", NULL);
	g_autofree char *contents = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;

	vmi_test_make_pattern_image (src, 2 * MiB, 5);
	write_file (dst, "keep", 4);
	expect_convert_error (manager, src, dst, "raw", NULL, "Exists", dst);
	expect_convert_error (manager, src, dst, "raw",
			      g_variant_new_parsed ("{'overwrite': <false>}"), "Exists", "overwrite");
	g_assert_true (g_file_get_contents (dst, &contents, NULL, NULL));
	g_assert_cmpstr (contents, ==, "keep");
	g_assert_cmpuint (count_temp_files (dir), ==, 0);

	path = convert (manager, src, dst, "raw", g_variant_new_parsed ("{'overwrite': <true>}"),
			&error);
	g_assert_no_error (error);
	assert_job_completed (path);
	if (vmi_test_require_qemu_img ())
		g_assert_true (vmi_test_qemu_img_compare (src, "raw", dst, "raw"));

	/* A folder is never replaced. */
	g_assert_cmpint (g_mkdir (folder, 0755), ==, 0);
	expect_convert_error (manager, src, folder, "raw",
			      g_variant_new_parsed ("{'overwrite': <true>}"), "InvalidArgument",
			      "folder");
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_convert_options (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = NULL;
	g_autofree char *src = NULL;
	struct {
		const char *type;
		GVariant *value;
		guint64 expected;
	} ints[] = {
		{ "n", g_variant_new_int16 (4096), 4096 },
		{ "q", g_variant_new_uint16 (8192), 8192 },
		{ "i", g_variant_new_int32 (16384), 16384 },
		{ "u", g_variant_new_uint32 (32768), 32768 },
		{ "x", g_variant_new_int64 (65536), 65536 },
		{ "t", g_variant_new_uint64 (131072), 131072 },
		{ "y", g_variant_new_byte (255), 255 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS (ints); i++)
		g_variant_ref_sink (ints[i].value);
	if (!vmi_test_require_qemu_img () || !require_format (manager, "qcow2", TRUE)) {
		for (gsize i = 0; i < G_N_ELEMENTS (ints); i++)
			g_variant_unref (ints[i].value);
		return;
	}
	dir = vmi_test_tmpdir_new ();
	src = g_build_filename (dir, "source.img", NULL);
	vmi_test_make_pattern_image (src, 3 * MiB, 9);

	/* Every D-Bus integer type is a number; the plugin gets the value it was sent. */
	for (gsize i = 0; i < G_N_ELEMENTS (ints); i++) {
		g_autofree char *dst = g_strdup_printf ("%s/out-%s.qcow2", dir, ints[i].type);
		g_autoptr(GVariantDict) dict = g_variant_dict_new (NULL);
		g_autoptr(GError) error = NULL;
		g_autofree char *path = NULL;
		JobTrack *track;

		g_variant_dict_insert_value (dict, "cluster-size", ints[i].value);
		path = convert (manager, src, dst, "qcow2", g_variant_dict_end (dict), &error);
		if (path == NULL)
			g_error ("cluster-size as \"%s\" was refused: %s", ints[i].type,
				 error->message);
		track = job_wait (path);
		if (ints[i].expected < 512) {
			/* Accepted as a number, refused as a cluster size by the plugin. */
			g_assert_cmpstr (track->state, ==, "failed");
			g_assert_null (strstr (track->message, "must be a non-negative integer"));
			g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
		} else {
			g_autoptr(JsonObject) qemu = NULL;

			assert_job_completed (path);
			qemu = vmi_test_qemu_img_info (dst, "qcow2");
			g_assert_cmpuint ((guint64) json_object_get_int_member (qemu, "cluster-size"),
					  ==, ints[i].expected);
			g_assert_true (vmi_test_qemu_img_compare (src, "raw", dst, "qcow2"));
		}
		g_variant_unref (ints[i].value);
	}

	/* Unknown names and wrong types are refused, naming the option, before any file exists. */
	{
		g_autofree char *dst = g_build_filename (dir, "refused.qcow2", NULL);

		expect_convert_error (manager, src, dst, "qcow2",
				      g_variant_new_parsed ("{'bogus': <1>}"), "InvalidArgument",
				      "bogus");
		expect_convert_error (manager, src, dst, "qcow2",
				      g_variant_new_parsed ("{'cluster-size': <'65536'>}"),
				      "InvalidArgument", "cluster-size");
		expect_convert_error (manager, src, dst, "qcow2",
				      g_variant_new_parsed ("{'cluster-size': <int32 -1>}"),
				      "InvalidArgument", "cluster-size");
		expect_convert_error (manager, src, dst, "qcow2",
				      g_variant_new_parsed ("{'cluster-size': <65536.0>}"),
				      "InvalidArgument", "cluster-size");
		expect_convert_error (manager, src, dst, "qcow2",
				      g_variant_new_parsed ("{'overwrite': <1>}"),
				      "InvalidArgument", "overwrite");
		expect_convert_error (manager, src, dst, "raw",
				      g_variant_new_parsed ("{'cluster-size': <uint64 65536>}"),
				      "InvalidArgument", "cluster-size");
		expect_inspect_error (manager, src, g_variant_new_parsed ("{'format': <uint32 1>}"),
				      "InvalidArgument", "format");
		expect_inspect_error (manager, src, g_variant_new_parsed ("{'overwrite': <true>}"),
				      "InvalidArgument", "overwrite");
		g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
		g_assert_cmpuint (count_temp_files (dir), ==, 0);
	}

	/* ConvertFd has no use for "overwrite": refused rather than ignored. */
	{
		g_autofree char *dst = g_build_filename (dir, "fd.qcow2", NULL);
		g_autofree char *job = NULL;
		g_autoptr(GError) error = NULL;
		int src_fd = open (src, O_RDONLY | O_CLOEXEC);
		int dst_fd = open (dst, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

		g_assert_cmpint (src_fd, >=, 0);
		g_assert_cmpint (dst_fd, >=, 0);
		job = convert_fd (manager, src_fd, dst_fd, "qcow2",
				  g_variant_new_parsed ("{'overwrite': <true>}"), &error);
		g_assert_null (job);
		assert_dbus_error (error, "InvalidArgument", "overwrite");
		close (src_fd);
		close (dst_fd);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_convert_bad_input (void)
{
	g_autoptr(VmiManager) manager = manager_new ();
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "source.img", NULL);
	g_autofree char *empty = g_build_filename (dir, "empty.img", NULL);
	g_autofree char *fifo = g_build_filename (dir, "fifo", NULL);
	g_autofree char *dst = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *nowhere = g_build_filename (dir, "missing", "out.raw", NULL);
	GVariant *formats = manager_formats (manager);
	GVariantIter iter;
	const char *name;
	GVariant *entry;

	vmi_test_make_pattern_image (src, MiB, 1);
	write_file (empty, "", 0);
	g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
	expect_convert_error (manager, dir, dst, "raw", NULL, "InvalidArgument", "directory");
	expect_convert_error (manager, fifo, dst, "raw", NULL, "InvalidArgument", "FIFO");
	expect_convert_error (manager, empty, dst, "raw", NULL, "CorruptImage", empty);
	expect_convert_error (manager, "source.img", dst, "raw", NULL, "InvalidArgument", "relative");
	expect_convert_error (manager, src, "out.raw", "raw", NULL, "InvalidArgument", "relative");
	expect_convert_error (manager, src, dst, "no-such-format", NULL, "UnknownFormat",
			      "no-such-format");
	expect_convert_error (manager, src, nowhere, "raw", NULL, "InvalidArgument", "missing");
	/* A format that can be read but not written. */
	g_variant_iter_init (&iter, formats);
	while (g_variant_iter_next (&iter, "{&s@a{sv}}", &name, &entry)) {
		gboolean writable = TRUE;
		gboolean read_only = g_variant_lookup (entry, "can-write", "b", &writable) && !writable;

		g_variant_unref (entry);
		if (read_only) {
			expect_convert_error (manager, src, dst, name, NULL, "NotSupported", name);
			break;
		}
	}
	g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- Paths are opened as the caller ---- */

static void
test_access_other_user (void)
{
	g_autoptr(VmiManager) manager = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *secret = NULL;
	g_autofree char *public = NULL;
	g_autofree char *dropbox = NULL;
	g_autofree char *dst = NULL;
	g_autofree char *dst_ok = NULL;
	g_autofree char *args = NULL;
	g_autofree char *reply = NULL;
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GError) error = NULL;
	struct stat st;
	char path[256];

	if (!require_root ())
		return;
	manager = manager_new ();
	dir = vmi_test_tmpdir_new ();
	g_assert_cmpint (chmod (dir, 0755), ==, 0);
	secret = g_build_filename (dir, "secret.img", NULL);
	public = g_build_filename (dir, "public.img", NULL);
	dropbox = g_build_filename (dir, "dropbox", NULL);
	dst = g_build_filename (dir, "out.raw", NULL);
	dst_ok = g_build_filename (dropbox, "out.raw", NULL);
	vmi_test_make_pattern_image (secret, MiB, 2);
	vmi_test_make_pattern_image (public, MiB, 4);
	g_assert_cmpint (chmod (secret, 0600), ==, 0);
	g_assert_cmpint (chmod (public, 0644), ==, 0);
	g_assert_cmpint (g_mkdir (dropbox, 0755), ==, 0);
	g_assert_cmpint (chmod (dropbox, 01777), ==, 0);

	/* The daemon (root) can read the secret file; the caller cannot, so neither may it. */
	vmi_manager_call_inspect_sync (manager, secret, no_options (), &info, NULL, &error);
	g_assert_no_error (error);
	args = g_strdup_printf ("('%s', @a{sv} {})", secret);
	reply = vmi_test_call_as_nobody (t.address, MANAGER_PATH, "org.vmimaged.VMImage1.Manager", "Inspect", args);
	g_assert_true (g_str_has_prefix (reply, ERROR_PREFIX "AccessDenied "));
	g_assert_nonnull (strstr (reply, secret));
	g_free (args);
	g_free (reply);
	args = g_strdup_printf ("('%s', @a{sv} {})", public);
	reply = vmi_test_call_as_nobody (t.address, MANAGER_PATH, "org.vmimaged.VMImage1.Manager", "Inspect", args);
	g_assert_true (g_str_has_prefix (reply, "OK "));

	/* A folder the caller cannot write. */
	g_free (args);
	g_free (reply);
	args = g_strdup_printf ("('%s', '%s', 'raw', @a{sv} {})", public, dst);
	reply = vmi_test_call_as_nobody (t.address, MANAGER_PATH, "org.vmimaged.VMImage1.Manager", "Convert", args);
	g_assert_true (g_str_has_prefix (reply, ERROR_PREFIX "AccessDenied "));
	g_assert_nonnull (strstr (reply, dst));
	g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	g_free (args);
	g_free (reply);
	args = g_strdup_printf ("('%s', '%s', 'raw', @a{sv} {})", secret, dst_ok);
	reply = vmi_test_call_as_nobody (t.address, MANAGER_PATH, "org.vmimaged.VMImage1.Manager", "Convert", args);
	g_assert_true (g_str_has_prefix (reply, ERROR_PREFIX "AccessDenied "));
	g_assert_cmpuint (count_temp_files (dropbox), ==, 0);

	/* One it can: the output belongs to the caller, not to the daemon. */
	g_free (args);
	g_free (reply);
	args = g_strdup_printf ("('%s', '%s', 'raw', @a{sv} {})", public, dst_ok);
	reply = vmi_test_call_as_nobody (t.address, MANAGER_PATH, "org.vmimaged.VMImage1.Manager", "Convert", args);
	g_assert_true (g_str_has_prefix (reply, "OK "));
	g_assert_cmpint (sscanf (reply, "OK ('%255[^']'", path), ==, 1);
	assert_job_completed (path);
	g_assert_cmpint (stat (dst_ok, &st), ==, 0);
	g_assert_cmpuint (st.st_uid, ==, NOBODY_UID);
	g_assert_cmpuint (st.st_mode & 0777, ==, 0644);
	{
		g_autoptr(VmiJob) job = job_proxy_new (path);

		g_assert_cmpuint (vmi_job_get_owner (job), ==, NOBODY_UID);
	}
	if (have_qemu_img ())
		g_assert_true (vmi_test_qemu_img_compare (public, "raw", dst_ok, "raw"));
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * A multi-file image (a VMDK descriptor naming an extent file beside it) must not become a way
 * to read a file the caller cannot: here a descriptor in a shared folder names another user's
 * private file, which the daemon itself could open.
 */
static void
test_access_sibling_file (void)
{
	g_autoptr(VmiManager) manager = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *shared = NULL;
	g_autofree char *descriptor = NULL;
	g_autofree char *flat = NULL;
	g_autofree char *dst = NULL;
	g_autofree char *args = NULL;
	g_autofree char *reply = NULL;
	g_autofree char *quoted = NULL;
	char path[256];

	if (!require_root ())
		return;
	manager = manager_new ();
	if (!vmi_test_require_qemu_img () || !require_format (manager, "vmdk", FALSE))
		return;
	dir = vmi_test_tmpdir_new ();
	g_assert_cmpint (chmod (dir, 0755), ==, 0);
	shared = g_build_filename (dir, "shared", NULL);
	g_assert_cmpint (g_mkdir (shared, 0755), ==, 0);
	g_assert_cmpint (chmod (shared, 01777), ==, 0);
	descriptor = g_build_filename (shared, "disk.vmdk", NULL);
	flat = g_build_filename (shared, "disk-flat.vmdk", NULL);
	dst = g_build_filename (shared, "stolen.raw", NULL);
	quoted = g_shell_quote (descriptor);
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img create -q -f vmdk -o subformat=monolithicFlat %s 1M",
				      quoted), ==, 0);
	vmi_test_make_pattern_image (flat, MiB, 12);
	/* The extent is root's and private; the descriptor anyone's to read. */
	g_assert_cmpint (chmod (flat, 0600), ==, 0);
	g_assert_cmpint (chmod (descriptor, 0644), ==, 0);

	/* The descriptor is the caller's own: only the extent is out of reach. */
	g_assert_cmpint (chown (descriptor, NOBODY_UID, NOBODY_UID), ==, 0);

	/* Inspect describes the disk and says why the extent was not read. */
	args = g_strdup_printf ("('%s', @a{sv} {})", descriptor);
	reply = vmi_test_call_as_nobody (t.address, MANAGER_PATH, "org.vmimaged.VMImage1.Manager", "Inspect", args);
	g_test_message ("Inspect as nobody: %s", reply);
	g_assert_true (g_str_has_prefix (reply, "OK "));
	g_assert_nonnull (strstr (reply, "cannot be read by the caller"));
	g_clear_pointer (&args, g_free);
	g_clear_pointer (&reply, g_free);

	args = g_strdup_printf ("('%s', '%s', 'raw', @a{sv} {})", descriptor, dst);
	reply = vmi_test_call_as_nobody (t.address, MANAGER_PATH, "org.vmimaged.VMImage1.Manager", "Convert", args);
	g_test_message ("Convert as nobody: %s", reply);
	if (g_str_has_prefix (reply, "OK ")) {
		JobTrack *track;

		g_assert_cmpint (sscanf (reply, "OK ('%255[^']'", path), ==, 1);
		track = job_wait (path);
		g_assert_cmpstr (track->state, !=, "completed");
		g_assert_true (g_strcmp0 (track->error_name, ERROR_PREFIX "AccessDenied") == 0 ||
			       g_strcmp0 (track->error_name, ERROR_PREFIX "UnsafeImage") == 0);
	} else {
		g_assert_true (g_str_has_prefix (reply, ERROR_PREFIX "AccessDenied ") ||
			       g_str_has_prefix (reply, ERROR_PREFIX "UnsafeImage "));
	}
	g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * A multi-file VMDK (twoGbMaxExtentSparse: a descriptor and its sparse extents) that the caller
 * may read is read for a caller who is not the daemon's user, its extents opened as that caller.
 */
static void
test_access_multi_file_vmdk (void)
{
	g_autoptr(VmiManager) manager = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *pattern = NULL;
	g_autofree char *descriptor = NULL;
	g_autofree char *dropbox = NULL;
	g_autofree char *dst = NULL;
	g_autofree char *args = NULL;
	g_autofree char *reply = NULL;
	g_autofree char *expect = NULL;
	char path[256];

	if (!require_root ())
		return;
	manager = manager_new ();
	if (!vmi_test_require_qemu_img () || !require_format (manager, "vmdk", FALSE))
		return;
	dir = vmi_test_tmpdir_new ();
	g_assert_cmpint (chmod (dir, 0755), ==, 0);
	pattern = g_build_filename (dir, "pattern.raw", NULL);
	descriptor = g_build_filename (dir, "split.vmdk", NULL);
	dropbox = g_build_filename (dir, "dropbox", NULL);
	dst = g_build_filename (dropbox, "out.raw", NULL);
	vmi_test_make_pattern_image (pattern, 4 * MiB, 21);
	vmi_test_qemu_img ("convert -q -f raw -O vmdk -o subformat=twoGbMaxExtentSparse %s %s",
			   pattern, descriptor);
	/* every file readable by anyone, owned by root: the daemon's own rights are not needed */
	vmi_test_sh_ok ("chmod 0644 %s/split*.vmdk && test $(ls %s/split*.vmdk | wc -l) -ge 2", dir,
			dir);
	g_assert_cmpint (g_mkdir (dropbox, 0755), ==, 0);
	g_assert_cmpint (chmod (dropbox, 01777), ==, 0);

	args = g_strdup_printf ("('%s', @a{sv} {})", descriptor);
	reply = vmi_test_call_as_nobody (t.address, MANAGER_PATH, "org.vmimaged.VMImage1.Manager", "Inspect", args);
	g_test_message ("Inspect as nobody: %s", reply);
	g_assert_true (g_str_has_prefix (reply, "OK "));
	expect = g_strdup_printf ("'virtual-size': <uint64 %u>", 4 * MiB);
	g_assert_nonnull (strstr (reply, expect));
	g_assert_nonnull (strstr (reply, "twoGbMaxExtentSparse"));
	g_assert_nonnull (strstr (reply, "'references': <@as []>"));
	g_clear_pointer (&args, g_free);
	g_clear_pointer (&reply, g_free);

	args = g_strdup_printf ("('%s', '%s', 'raw', @a{sv} {})", descriptor, dst);
	reply = vmi_test_call_as_nobody (t.address, MANAGER_PATH, "org.vmimaged.VMImage1.Manager", "Convert", args);
	g_assert_true (g_str_has_prefix (reply, "OK "));
	g_assert_cmpint (sscanf (reply, "OK ('%255[^']'", path), ==, 1);
	assert_job_completed (path);
	g_assert_true (vmi_test_qemu_img_compare (pattern, "raw", dst, "raw"));
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_cancel_other_user (void)
{
	g_autoptr(VmiManager) manager = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *big = NULL;
	g_autofree char *dst = NULL;
	g_autofree char *path = NULL;
	g_autofree char *reply = NULL;
	g_autoptr(VmiJob) job = NULL;
	g_autoptr(GError) error = NULL;

	if (!require_root ())
		return;
	manager = manager_new ();
	dir = vmi_test_tmpdir_new ();
	big = make_big_source (manager, dir);
	if (big == NULL) {
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	dst = g_build_filename (dir, "out.raw", NULL);
	path = convert (manager, big, dst, "raw", NULL, &error);
	g_assert_no_error (error);
	wait_progress (path, 2);
	/* Only the owner (or root, or polkit's manage) may stop someone's job. */
	reply = vmi_test_call_as_nobody (t.address, path, "org.vmimaged.VMImage1.Job", "Cancel", "()");
	g_assert_true (g_str_has_prefix (reply, ERROR_PREFIX "NotAuthorized "));
	g_assert_false (job_track (path)->done);
	job = job_proxy_new (path);
	vmi_job_call_cancel_sync (job, NULL, &error);
	g_assert_no_error (error);
	assert_job_cancelled (path);
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static GVariant *
managed_objects (void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_sync (
		t.connection, BUS_NAME, "/org/vmimaged/VMImage1",
		"org.freedesktop.DBus.ObjectManager", "GetManagedObjects", NULL,
		G_VARIANT_TYPE ("(a{oa{sa{sv}}})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);

	g_assert_no_error (error);
	return g_variant_get_child_value (reply, 0);
}

static gboolean
object_gone_cond (gpointer data)
{
	g_autoptr(GVariant) objects = managed_objects ();
	g_autoptr(GVariant) entry = g_variant_lookup_value (objects, data, NULL);

	return entry == NULL;
}

static void
test_job_linger (void)
{
	g_autoptr(VmiManager) manager = NULL;
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "source.img", NULL);
	g_autofree char *dst = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *path = NULL;
	g_autoptr(GVariant) objects = NULL;
	g_autoptr(GVariant) entry = NULL;
	g_autoptr(GVariant) job_props = NULL;
	g_autoptr(GError) error = NULL;
	gint64 completed;

	/* Finished jobs stay for JobLingerSeconds, announced by the object manager, then go. */
	daemon_start_full (test_plugin_dir (), 2, 2);
	manager = vmi_manager_proxy_new_sync (t.connection, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
					      MANAGER_PATH, NULL, &error);
	g_assert_no_error (error);
	objects = managed_objects ();
	entry = g_variant_lookup_value (objects, MANAGER_PATH, NULL);
	g_assert_nonnull (entry);
	g_assert_true (g_variant_lookup (entry, "org.vmimaged.VMImage1.Manager", "@a{sv}", NULL));
	g_clear_pointer (&entry, g_variant_unref);
	g_clear_pointer (&objects, g_variant_unref);

	vmi_test_make_pattern_image (src, MiB, 8);
	path = convert (manager, src, dst, "raw", NULL, &error);
	g_assert_no_error (error);
	assert_job_completed (path);
	completed = g_get_monotonic_time ();
	objects = managed_objects ();
	entry = g_variant_lookup_value (objects, path, NULL);
	g_assert_nonnull (entry);
	g_assert_true (g_variant_lookup (entry, "org.vmimaged.VMImage1.Job", "@a{sv}", &job_props));
	g_assert_true (spin_until (object_gone_cond, path, 30));
	g_assert_cmpint (g_get_monotonic_time () - completed, >=, G_USEC_PER_SEC);
	g_assert_cmpint (daemon_stop (), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- polkit ---- */

static void
test_polkit (void)
{
	VmiTestPolkit *mock = vmi_test_polkit_start (t.address);
	g_autoptr(VmiManager) manager = NULL;
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "source.img", NULL);
	g_autofree char *dst = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *asked = NULL;
	g_autofree char *expected = NULL;
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GError) error = NULL;
	const char *me = g_dbus_connection_get_unique_name (t.connection);

	/* On the system bus every method asks polkit first, about the calling bus name, and lets
	 * polkit ask the user to authenticate (flag 1). */
	t.system_mode = TRUE;
	daemon_start (test_plugin_dir ());
	manager = vmi_manager_proxy_new_sync (t.connection, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
					      MANAGER_PATH, NULL, &error);
	g_assert_no_error (error);
	vmi_test_make_pattern_image (src, MiB, 6);
	vmi_manager_call_inspect_sync (manager, src, no_options (), &info, NULL, &error);
	g_assert_no_error (error);
	asked = vmi_test_polkit_asked (mock);
	expected = g_strdup_printf ("org.vmimaged.VMImage1.inspect system-bus-name %s 1", me);
	g_assert_cmpstr (asked, ==, expected);

	/* Refused: NotAuthorized, and nothing was opened or created. */
	expect_convert_error (manager, src, dst, "raw", NULL, "NotAuthorized",
			      "org.vmimaged.VMImage1.convert");
	g_free (asked);
	g_free (expected);
	asked = vmi_test_polkit_asked (mock);
	expected = g_strdup_printf ("org.vmimaged.VMImage1.convert system-bus-name %s 1", me);
	g_assert_cmpstr (asked, ==, expected);
	g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	/* Even a bad argument is refused for authorization first: no probing without the right. */
	expect_convert_error (manager, "relative", dst, "raw", NULL, "NotAuthorized", NULL);

	/* Check and Compare read whole disks: they ask for check (refused here) before opening
	 * anything; Measure reads a map, like Inspect, and asks for inspect. */
	{
		g_autofree char *job = NULL;
		g_autoptr(GVariant) measured = NULL;
		guint64 required = 0;

		g_free (vmi_test_polkit_asked (mock));
		g_clear_error (&error);
		vmi_manager_call_check_sync (manager, "relative", no_options (), &job, NULL, &error);
		assert_dbus_error (error, "NotAuthorized", "org.vmimaged.VMImage1.check");
		g_clear_error (&error);
		vmi_manager_call_compare_sync (manager, src, src, no_options (), &job, NULL, &error);
		assert_dbus_error (error, "NotAuthorized", "org.vmimaged.VMImage1.check");
		g_clear_error (&error);
		g_free (asked);
		g_free (expected);
		asked = vmi_test_polkit_asked (mock);
		expected = g_strdup_printf ("org.vmimaged.VMImage1.check system-bus-name %s 1; "
					    "org.vmimaged.VMImage1.check system-bus-name %s 1",
					    me, me);
		g_assert_cmpstr (asked, ==, expected);
		vmi_manager_call_measure_sync (manager, src, "raw", no_options (), &measured, NULL,
					       &error);
		g_assert_no_error (error);
		g_assert_true (g_variant_lookup (measured, "required", "t", &required));
		g_free (asked);
		g_free (expected);
		asked = vmi_test_polkit_asked (mock);
		expected = g_strdup_printf ("org.vmimaged.VMImage1.inspect system-bus-name %s 1", me);
		g_assert_cmpstr (asked, ==, expected);
	}

	g_assert_cmpint (daemon_stop (), ==, 0);
	t.system_mode = FALSE;
	vmi_test_polkit_stop (mock);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- The executable ---- */

/* Runs vmimaged with args to its end; returns the exit status, stderr in *err. */
static int
run_daemon_sync (const char *const *args, char **err)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
	g_autofree char *out = NULL;
	int status = 0;

	g_ptr_array_add (argv, daemon_executable ());
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add (argv, g_strdup (args[i]));
	g_ptr_array_add (argv, NULL);
	g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, err,
		      &status, &error);
	g_assert_no_error (error);
	g_assert_true (WIFEXITED (status));
	if (g_strv_length ((char **) args) == 1 && g_strcmp0 (args[0], "--version") == 0)
		g_assert_cmpstr (g_strstrip (out), ==, "vmimaged " VMI_VERSION);
	return WEXITSTATUS (status);
}

static void
test_daemon_config (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *bad_key = g_build_filename (dir, "bad-key.conf", NULL);
	g_autofree char *bad_value = g_build_filename (dir, "bad-value.conf", NULL);
	g_autofree char *missing = g_build_filename (dir, "missing.conf", NULL);
	g_autofree char *err = NULL;
	const char *version[] = { "--version", NULL };
	const char *with_bad_key[] = { "--session", "--config", bad_key, NULL };
	const char *with_bad_value[] = { "--session", "--config", bad_value, NULL };
	const char *with_missing[] = { "--session", "--config", missing, NULL };
	const char *with_junk[] = { "--session", "--no-such-flag", NULL };

	g_assert_cmpint (run_daemon_sync (version, NULL), ==, 0);
	/* A typo in the settings stops the daemon with a message, instead of being ignored. */
	write_file (bad_key, "[Daemon]\nMaxParalelJobs=4\n", 26);
	g_assert_cmpint (run_daemon_sync (with_bad_key, &err), !=, 0);
	g_assert_nonnull (strstr (err, "MaxParalelJobs"));
	g_clear_pointer (&err, g_free);
	write_file (bad_value, "[Daemon]\nMaxParallelJobs=lots\n", 31);
	g_assert_cmpint (run_daemon_sync (with_bad_value, &err), !=, 0);
	g_assert_nonnull (strstr (err, "MaxParallelJobs"));
	g_clear_pointer (&err, g_free);
	/* A file named on the command line must exist. */
	g_assert_cmpint (run_daemon_sync (with_missing, &err), !=, 0);
	g_assert_nonnull (strstr (err, missing));
	g_clear_pointer (&err, g_free);
	g_assert_cmpint (run_daemon_sync (with_junk, &err), !=, 0);
	g_assert_nonnull (strstr (err, "no-such-flag"));
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_daemon_replace (void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) second = NULL;
	g_autoptr(GSubprocess) first = NULL;
	g_autofree char *path = daemon_executable ();
	g_autofree char *err = NULL;

	daemon_start (test_plugin_dir ());
	launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
					      G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_subprocess_launcher_set_child_setup (launcher, die_with_parent, GINT_TO_POINTER (SIGTERM),
					       NULL);
	g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", t.address, TRUE);

	/* Without --replace a second daemon leaves the first alone and says why. */
	second = g_subprocess_launcher_spawn (launcher, &error, path, "--session", "--plugin-dir",
					      test_plugin_dir (), "--cache-dir", t.cache_dir,
					      "--config", t.config, NULL);
	g_assert_no_error (error);
	g_subprocess_communicate_utf8 (second, NULL, NULL, NULL, &err, &error);
	g_assert_no_error (error);
	g_subprocess_wait (second, NULL, &error);
	g_assert_no_error (error);
	g_assert_true (g_subprocess_get_if_exited (second));
	g_assert_cmpint (g_subprocess_get_exit_status (second), ==, 1);
	g_assert_nonnull (strstr (err, "--replace"));
	g_assert_nonnull (g_subprocess_get_identifier (t.daemon));
	g_clear_object (&second);

	/* With it, the first one hands over and exits 0 (and the second takes over its cache,
	 * which the first holds until it exits). */
	second = g_subprocess_launcher_spawn (launcher, &error, path, "--session", "--replace",
					      "--plugin-dir", test_plugin_dir (), "--cache-dir",
					      t.cache_dir, "--config", t.config, NULL);
	g_assert_no_error (error);
	first = g_steal_pointer (&t.daemon);
	g_subprocess_wait (first, NULL, &error);
	g_assert_no_error (error);
	g_assert_true (g_subprocess_get_if_exited (first));
	g_assert_cmpint (g_subprocess_get_exit_status (first), ==, 0);
	g_assert_true (spin_until (name_owned_cond, GINT_TO_POINTER (TRUE), 60));
	t.daemon = g_steal_pointer (&second);
	g_hash_table_remove_all (t.jobs);
	g_assert_cmpint (daemon_stop (), ==, 0);
}

/* ---- Stopping ---- */

static void
test_sigterm_during_convert (void)
{
	g_autoptr(VmiManager) manager = NULL;
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *big = NULL;
	g_autofree char *dst = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;

	daemon_start (test_plugin_dir ());
	manager = vmi_manager_proxy_new_sync (t.connection, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
					      MANAGER_PATH, NULL, &error);
	g_assert_no_error (error);
	big = make_big_source (manager, dir);
	if (big == NULL) {
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	path = convert (manager, big, dst, "raw", NULL, &error);
	g_assert_no_error (error);
	wait_progress (path, 2);
	g_assert_false (job_track (path)->done);
	/* The daemon cancels the job, waits for it to clean up, and exits 0. */
	g_assert_cmpint (daemon_stop (), ==, 0);
	g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
	g_assert_cmpuint (count_temp_files (dir), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

int
main (int argc, char **argv)
{
	int ret;

	/* The same program, run as another user, is the client of the access tests. */
	if (vmi_test_nobody_client (argc, argv, &ret))
		return ret;

	g_test_init (&argc, &argv, NULL);
	bus_start ();
	g_test_add_func ("/dbus/manager/version-formats", test_version_formats);
	g_test_add_func ("/dbus/manager/formats-module-removed", test_formats_module_removed);
	g_test_add_func ("/dbus/inspect/raw", test_inspect_raw);
	g_test_add_func ("/dbus/inspect/qcow2", test_inspect_qcow2);
	g_test_add_func ("/dbus/inspect/fd", test_inspect_fd);
	g_test_add_func ("/dbus/inspect/bad-input", test_inspect_bad_input);
	g_test_add_func ("/dbus/convert/raw", test_convert_raw);
	g_test_add_func ("/dbus/convert/overwrite", test_convert_overwrite);
	g_test_add_func ("/dbus/convert/keeps-mode", test_convert_keeps_mode);
	g_test_add_func ("/dbus/convert/options", test_convert_options);
	g_test_add_func ("/dbus/convert/bad-input", test_convert_bad_input);
	g_test_add_func ("/dbus/convert/cancel", test_convert_cancel);
	g_test_add_func ("/dbus/convert/cancel-on-disconnect", test_convert_cancel_on_disconnect);
	g_test_add_func ("/dbus/convert/survives-disconnect", test_convert_survives_disconnect);
	g_test_add_func ("/dbus/convert/exists-at-rename", test_convert_exists_at_rename);
	g_test_add_func ("/dbus/convert/queue", test_convert_queue);
	g_test_add_func ("/dbus/convert/job-linger", test_job_linger);
	g_test_add_func ("/dbus/access/other-user", test_access_other_user);
	g_test_add_func ("/dbus/access/sibling-file", test_access_sibling_file);
	g_test_add_func ("/dbus/access/multi-file-vmdk", test_access_multi_file_vmdk);
	g_test_add_func ("/dbus/access/cancel-other-user", test_cancel_other_user);
	g_test_add_func ("/dbus/daemon/polkit", test_polkit);
	g_test_add_func ("/dbus/daemon/config", test_daemon_config);
	g_test_add_func ("/dbus/daemon/replace", test_daemon_replace);
	g_test_add_func ("/dbus/daemon/sigterm-during-convert", test_sigterm_during_convert);
	ret = g_test_run ();

	g_assert_cmpint (daemon_stop (), ==, 0);
	g_subprocess_send_signal (t.bus, SIGTERM);
	g_subprocess_wait (t.bus, NULL, NULL);
	g_clear_object (&t.bus);
	g_clear_object (&t.connection);
	g_clear_pointer (&t.jobs, g_hash_table_unref);
	g_free (t.address);
	g_free (t.plugin_dir);
	g_free (t.cache_dir);
	g_free (t.config);
	vmi_test_tmpdir_free (t.dir);
	return ret;
}
