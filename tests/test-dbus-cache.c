/*
 * The image cache over D-Bus: a private dbus-daemon, the built vmimaged on it with its own cache
 * folder, and calls as a client makes them (CacheImport, the Image objects, CachePrune).
 */
#include "vmi-test-nobody.h"
#include "vmi-test-polkit.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmi-test-util.h"

#define BUS_NAME "org.vmimaged.VMImage1"
#define ROOT_PATH "/org/vmimaged/VMImage1"
#define MANAGER_PATH "/org/vmimaged/VMImage1/Manager"
#define MANAGER_IFACE "org.vmimaged.VMImage1.Manager"
#define IMAGE_IFACE "org.vmimaged.VMImage1.Image"
#define JOB_IFACE "org.vmimaged.VMImage1.Job"
#define IMAGES_PREFIX "/org/vmimaged/VMImage1/images/"
#define ERROR_PREFIX "org.vmimaged.VMImage1.Error."
#define MiB (1024u * 1024u)
#define GiB (1024ull * MiB)

static struct {
	char *dir;
	char *address;
	GSubprocess *bus;
	GSubprocess *daemon;
	GDBusConnection *connection;
	char *cache_dir;
	char *config;
	GPtrArray *added;   /* image paths announced by InterfacesAdded */
	GPtrArray *removed; /* image paths announced by InterfacesRemoved */
} t;

/* ---- The private bus and the daemon on it ---- */

static void
die_with_parent (gpointer data)
{
	(void) prctl (PR_SET_PDEATHSIG, GPOINTER_TO_INT (data));
}

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
strv_has_image_iface (GVariant *ifaces)
{
	GVariantIter iter;
	const char *name;

	g_variant_iter_init (&iter, ifaces);
	while (g_variant_iter_next (&iter, "&s", &name)) {
		if (g_strcmp0 (name, IMAGE_IFACE) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
object_manager_signal_cb (GDBusConnection *connection, const char *sender, const char *path,
			  const char *iface, const char *signal, GVariant *params,
			  gpointer user_data)
{
	const char *object = NULL;

	if (g_strcmp0 (signal, "InterfacesAdded") == 0) {
		g_autoptr(GVariant) ifaces = NULL;

		g_autoptr(GVariant) props = NULL;

		g_variant_get (params, "(&o@a{sa{sv}})", &object, &ifaces);
		props = g_variant_lookup_value (ifaces, IMAGE_IFACE, NULL);
		if (props != NULL)
			g_ptr_array_add (t.added, g_strdup (object));
	} else if (g_strcmp0 (signal, "InterfacesRemoved") == 0) {
		g_autoptr(GVariant) ifaces = NULL;

		g_variant_get (params, "(&o@as)", &object, &ifaces);
		if (strv_has_image_iface (ifaces))
			g_ptr_array_add (t.removed, g_strdup (object));
	}
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
	/* A client running as nobody must reach the socket. */
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
	t.added = g_ptr_array_new_with_free_func (g_free);
	t.removed = g_ptr_array_new_with_free_func (g_free);
	g_dbus_connection_signal_subscribe (t.connection, NULL,
					    "org.freedesktop.DBus.ObjectManager", NULL, ROOT_PATH,
					    NULL, G_DBUS_SIGNAL_FLAGS_NONE,
					    object_manager_signal_cb, NULL, NULL);
	t.cache_dir = g_build_filename (t.dir, "cache", NULL);
	t.config = g_build_filename (t.dir, "vmimaged.conf", NULL);
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

static const char *
test_plugin_dir (void)
{
	const char *dir = g_getenv ("VMI_TEST_PLUGIN_DIR");

	g_assert_nonnull (dir);
	return dir;
}

/* SIGTERM, and an exit status of 0: anything else (a crash, a sanitizer report) fails. */
static void
daemon_stop (void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) daemon = g_steal_pointer (&t.daemon);

	if (daemon == NULL)
		return;
	g_subprocess_send_signal (daemon, SIGTERM);
	g_subprocess_wait (daemon, NULL, &error);
	g_assert_no_error (error);
	g_assert_true (g_subprocess_get_if_exited (daemon));
	g_assert_cmpint (g_subprocess_get_exit_status (daemon), ==, 0);
	g_assert_true (spin_until (name_owned_cond, GINT_TO_POINTER (FALSE), 30));
}

/* (Re)starts vmimaged on the private bus with this CacheLimit (bytes, as the text of the
 * setting) and MaxParallelJobs. */
static void
daemon_start (const char *limit, guint max_jobs)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autofree char *conf = NULL;
	g_autofree char *daemon_path = daemon_executable ();

	daemon_stop ();
	conf = g_strdup_printf ("[Daemon]\nCacheLimit=%s\nMaxParallelJobs=%u\n", limit, max_jobs);
	g_file_set_contents (t.config, conf, -1, &error);
	g_assert_no_error (error);
	launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
	g_subprocess_launcher_set_child_setup (launcher, die_with_parent, GINT_TO_POINTER (SIGTERM),
					       NULL);
	/* Its INFO messages would go into the TAP stream on stdout. */
	g_subprocess_launcher_take_stdout_fd (launcher, dup (STDERR_FILENO));
	g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", t.address, TRUE);
	t.daemon = g_subprocess_launcher_spawn (launcher, &error, daemon_path, "--session",
						"--plugin-dir", test_plugin_dir (), "--cache-dir",
						t.cache_dir, "--config", t.config, "--verbose",
						NULL);
	g_assert_no_error (error);
	g_assert_true (spin_until (name_owned_cond, GINT_TO_POINTER (TRUE), 60));
	g_assert_nonnull (g_subprocess_get_identifier (t.daemon));
}

/* A fresh daemon and an empty cache for each test. */
static void
fresh_daemon (const char *limit, guint max_jobs)
{
	daemon_stop ();
	if (g_file_test (t.cache_dir, G_FILE_TEST_IS_DIR))
		vmi_test_sh_ok ("rm -rf '%s'", t.cache_dir);
	daemon_start (limit, max_jobs);
	g_ptr_array_set_size (t.added, 0);
	g_ptr_array_set_size (t.removed, 0);
}

/* ---- Calls ---- */

static GVariant *
call (const char *path, const char *iface, const char *method, GVariant *params,
      const char *reply_type, GError **error)
{
	return g_dbus_connection_call_sync (t.connection, BUS_NAME, path, iface, method, params,
					    G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NONE,
					    120000, NULL, error);
}

/* A floating a{sv} from its text, for g_variant_new's "@a{sv}", which sinks only floating
 * references (g_variant_parse returns a full one). */
static GVariant *
options (const char *text)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) parsed = g_variant_parse (G_VARIANT_TYPE_VARDICT, text, NULL, NULL,
						      &error);
	GVariantBuilder builder;
	GVariantIter iter;
	GVariant *entry;

	g_assert_no_error (error);
	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	g_variant_iter_init (&iter, parsed);
	while ((entry = g_variant_iter_next_value (&iter)) != NULL) {
		g_variant_builder_add_value (&builder, entry);
		g_variant_unref (entry);
	}
	return g_variant_builder_end (&builder);
}

static void
assert_dbus_error (const GError *error, const char *name, const char *needle)
{
	g_autofree char *remote = NULL;
	g_autofree char *expected = g_strconcat (ERROR_PREFIX, name, NULL);

	g_assert_nonnull (error);
	remote = g_dbus_error_get_remote_error (error);
	if (g_strcmp0 (remote, expected) != 0)
		g_error ("expected %s, got %s: %s", expected, remote, error->message);
	if (needle != NULL && strstr (error->message, needle) == NULL)
		g_error ("the message \"%s\" does not mention \"%s\"", error->message, needle);
}

static GVariant *
get_property (const char *path, const char *iface, const char *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = call (path, "org.freedesktop.DBus.Properties", "Get",
					  g_variant_new ("(ss)", iface, name), "(v)", &error);
	GVariant *value = NULL;

	g_assert_no_error (error);
	g_variant_get (reply, "(v)", &value);
	return value;
}

static guint64
get_u64 (const char *path, const char *iface, const char *name)
{
	g_autoptr(GVariant) value = get_property (path, iface, name);

	return g_variant_get_uint64 (value);
}

static char *
get_string (const char *path, const char *iface, const char *name)
{
	g_autoptr(GVariant) value = get_property (path, iface, name);

	return g_variant_dup_string (value, NULL);
}

static char *
image_string (const char *image, const char *name)
{
	return get_string (image, IMAGE_IFACE, name);
}

static char *
job_state (const char *job)
{
	return get_string (job, JOB_IFACE, "State");
}

static gboolean
job_done_cond (gpointer data)
{
	g_autofree char *state = job_state (data);

	return g_strcmp0 (state, "queued") != 0 && g_strcmp0 (state, "running") != 0;
}

/* Waits for the job to end; returns its State, and its Error name in *error_name. */
static char *
job_wait (const char *job, char **error_name)
{
	if (!spin_until (job_done_cond, (gpointer) job, 120))
		g_error ("job %s did not end within two minutes", job);
	if (error_name != NULL)
		*error_name = get_string (job, JOB_IFACE, "Error");
	return job_state (job);
}

static void
assert_job_completed (const char *job)
{
	g_autofree char *error_name = NULL;
	g_autofree char *state = job_wait (job, &error_name);

	if (g_strcmp0 (state, "completed") != 0) {
		g_autofree char *message = get_string (job, JOB_IFACE, "ErrorMessage");

		g_error ("job %s: %s %s %s", job, state, error_name, message);
	}
}

/* The image path in the Result of a completed job. */
static char *
job_image (const char *job)
{
	g_autoptr(GVariant) result = NULL;
	const char *image = NULL;

	assert_job_completed (job);
	result = get_property (job, JOB_IFACE, "Result");
	g_assert_true (g_variant_lookup (result, "image", "&o", &image));
	return g_strdup (image);
}

static char *
cache_import_start (const char *source, const char *opts, GError **error)
{
	g_autoptr(GVariant) reply = NULL;
	char *job = NULL;

	reply = call (MANAGER_PATH, MANAGER_IFACE, "CacheImport",
		      g_variant_new ("(s@a{sv})", source, options (opts)), "(o)", error);
	if (reply != NULL)
		g_variant_get (reply, "(o)", &job);
	return job;
}

/* Imports source and returns the image path. */
static char *
cache_import (const char *source, const char *opts)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *job = cache_import_start (source, opts, &error);

	g_assert_no_error (error);
	return job_image (job);
}

static void
expect_import_error (const char *source, const char *opts, const char *name,
		     const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *job = cache_import_start (source, opts, &error);

	g_assert_null (job);
	assert_dbus_error (error, name, needle);
}

static char *
image_export_start (const char *image, const char *destination, const char *format,
		    const char *opts, GError **error)
{
	g_autoptr(GVariant) reply = NULL;
	char *job = NULL;

	reply = call (image, IMAGE_IFACE, "Export",
		      g_variant_new ("(ss@a{sv})", destination, format, options (opts)), "(o)",
		      error);
	if (reply != NULL)
		g_variant_get (reply, "(o)", &job);
	return job;
}

static void
image_export (const char *image, const char *destination, const char *format, const char *opts)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *job = image_export_start (image, destination, format, opts, &error);

	g_assert_no_error (error);
	assert_job_completed (job);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
	return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/* The image paths GetManagedObjects lists, sorted. */
static GPtrArray *
listed_images (void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = call (ROOT_PATH, "org.freedesktop.DBus.ObjectManager",
					  "GetManagedObjects", NULL, "(a{oa{sa{sv}}})", &error);
	g_autoptr(GVariant) objects = NULL;
	GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);
	GVariantIter iter;
	const char *path;
	GVariant *ifaces;

	g_assert_no_error (error);
	objects = g_variant_get_child_value (reply, 0);
	g_variant_iter_init (&iter, objects);
	while (g_variant_iter_next (&iter, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) props = g_variant_lookup_value (ifaces, IMAGE_IFACE, NULL);

		if (props != NULL) {
			g_assert_true (g_str_has_prefix (path, IMAGES_PREFIX));
			g_ptr_array_add (paths, g_strdup (path));
		}
		g_variant_unref (ifaces);
	}
	g_ptr_array_sort (paths, compare_strings);
	return paths;
}

static gboolean
ptr_array_has (GPtrArray *array, const char *text)
{
	return g_ptr_array_find_with_equal_func (array, text, g_str_equal, NULL);
}

static gboolean
removed_cond (gpointer data)
{
	return ptr_array_has (t.removed, data);
}

static gboolean
added_cond (gpointer data)
{
	return ptr_array_has (t.added, data);
}

/* Files of the cache folder whose names end with suffix. */
static guint
count_cache_files (const char *suffix)
{
	g_autoptr(GDir) dir = g_dir_open (t.cache_dir, 0, NULL);
	const char *name;
	guint n = 0;

	g_assert_nonnull (dir);
	while ((name = g_dir_read_name (dir)) != NULL) {
		if (g_str_has_suffix (name, suffix))
			n++;
	}
	return n;
}

static char *
stored_file (const char *image, const char *suffix)
{
	g_autofree char *name = g_strconcat (image + strlen (IMAGES_PREFIX), suffix, NULL);

	return g_build_filename (t.cache_dir, name, NULL);
}

static char *
sha256_file (const char *path)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	g_autoptr(GError) error = NULL;

	g_file_get_contents (path, &data, &len, &error);
	g_assert_no_error (error);
	return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
}

static void
set_properties (const char *image, const char *set, const char *unset, GError **error)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) parse_error = NULL;
	/* g_variant_parse returns full references, which "@" does not take over. */
	g_autoptr(GVariant) set_value = g_variant_parse (G_VARIANT_TYPE ("a{ss}"), set, NULL, NULL,
							 &parse_error);
	g_autoptr(GVariant) unset_value = NULL;

	g_assert_no_error (parse_error);
	unset_value = g_variant_parse (G_VARIANT_TYPE ("as"), unset, NULL, NULL, &parse_error);
	g_assert_no_error (parse_error);
	reply = call (image, IMAGE_IFACE, "SetProperties",
		      g_variant_new ("(@a{ss}@as)", set_value, unset_value), "()", error);
}

static char *
image_property (const char *image, const char *key)
{
	g_autoptr(GVariant) props = get_property (image, IMAGE_IFACE, "Properties");
	char *value = NULL;

	if (!g_variant_lookup (props, key, "s", &value))
		return NULL;
	return value;
}

static guint64
cache_prune (void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = call (MANAGER_PATH, MANAGER_IFACE, "CachePrune", NULL, "(t)",
					  &error);
	guint64 freed = 0;

	g_assert_no_error (error);
	g_variant_get (reply, "(t)", &freed);
	return freed;
}

static void
async_result_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
	*(GAsyncResult **) user_data = g_object_ref (result);
}

static gboolean
require_qemu_img (void)
{
	return vmi_test_require_qemu_img ();
}

/* ---- A client running as nobody ---- */

/* ---- Import and list ---- */

static void
test_import_list (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *raw = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *other = g_build_filename (dir, "other.raw", NULL);
	g_autofree char *qcow2 = g_build_filename (dir, "other.qcow2", NULL);
	g_autofree char *fd_src = g_build_filename (dir, "fd.raw", NULL);
	g_autofree char *image_raw = NULL;
	g_autofree char *image_qcow2 = NULL;
	g_autofree char *image_fd = NULL;
	g_autofree char *id = NULL;
	g_autofree char *content = NULL;
	g_autofree char *checksum = NULL;
	g_autofree char *expected_checksum = NULL;
	g_autofree char *text = NULL;
	g_autofree char *img_path = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
	g_autoptr(GError) error = NULL;
	guint64 now = (guint64) (g_get_real_time () / G_USEC_PER_SEC);
	guint64 size_sum;
	char *job = NULL;
	int fd;

	if (!require_qemu_img ())
		return;
	fresh_daemon ("0", 2);
	vmi_test_make_pattern_image (raw, 2 * MiB, 11);
	vmi_test_make_pattern_image (other, 3 * MiB, 12);
	vmi_test_make_pattern_image (fd_src, MiB, 13);
	vmi_test_qemu_img ("convert -f raw -O qcow2 '%s' '%s'", other, qcow2);

	/* A raw source stored as raw, with properties; a qcow2 one stored as the default. */
	image_raw = cache_import (raw, "{'format': <'raw'>, 'properties': <{'os_type': 'linux', "
				       "'architecture': 'x86_64'}>}");
	image_qcow2 = cache_import (qcow2, "{'name': <'The other disk'>}");
	g_assert_cmpstr (image_raw, !=, image_qcow2);

	/* The raw one's properties. */
	id = image_string (image_raw, "Id");
	content = image_string (image_raw, "ContentChecksum");
	g_assert_cmpstr (image_raw + strlen (IMAGES_PREFIX), ==, id);
	g_assert_cmpuint (strlen (id), ==, 32);
	g_assert_cmpuint (strlen (content), ==, 64);
	g_assert_true (g_str_has_prefix (content, id));
	text = image_string (image_raw, "Name");
	g_assert_cmpstr (text, ==, "disk.raw");
	g_clear_pointer (&text, g_free);
	text = image_string (image_raw, "Format");
	g_assert_cmpstr (text, ==, "raw");
	g_clear_pointer (&text, g_free);
	text = image_string (image_raw, "Source");
	g_assert_cmpstr (text, ==, raw);
	g_clear_pointer (&text, g_free);
	g_assert_cmpuint (get_u64 (image_raw, IMAGE_IFACE, "VirtualSize"), ==, 2 * MiB);
	img_path = stored_file (image_raw, ".img");
	g_assert_cmpuint (get_u64 (image_raw, IMAGE_IFACE, "Size"), ==,
			  vmi_test_file_allocated (img_path));
	checksum = image_string (image_raw, "Checksum");
	expected_checksum = sha256_file (img_path);
	g_assert_cmpstr (checksum, ==, expected_checksum);
	/* Seconds, not microseconds. */
	g_assert_cmpuint (get_u64 (image_raw, IMAGE_IFACE, "Created"), >=, now - 5);
	g_assert_cmpuint (get_u64 (image_raw, IMAGE_IFACE, "Created"), <=, now + 60);
	g_assert_cmpuint (get_u64 (image_raw, IMAGE_IFACE, "LastUsed"), ==,
			  get_u64 (image_raw, IMAGE_IFACE, "Created"));
	text = image_property (image_raw, "os_type");
	g_assert_cmpstr (text, ==, "linux");
	g_clear_pointer (&text, g_free);
	text = image_property (image_raw, "architecture");
	g_assert_cmpstr (text, ==, "x86_64");
	g_clear_pointer (&text, g_free);

	/* The qcow2 one: stored as qcow2, its name as given. */
	text = image_string (image_qcow2, "Format");
	g_assert_cmpstr (text, ==, "qcow2");
	g_clear_pointer (&text, g_free);
	text = image_string (image_qcow2, "Name");
	g_assert_cmpstr (text, ==, "The other disk");
	g_clear_pointer (&text, g_free);
	g_assert_cmpuint (get_u64 (image_qcow2, IMAGE_IFACE, "VirtualSize"), ==, 3 * MiB);

	/* CacheImportFd: no name unless given, Source "fd". */
	fd = open (fd_src, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	g_unix_fd_list_append (fds, fd, &error);
	g_assert_no_error (error);
	close (fd);
	reply = g_dbus_connection_call_with_unix_fd_list_sync (
		t.connection, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "CacheImportFd",
		g_variant_new ("(h@a{sv})", 0, options ("{}")), G_VARIANT_TYPE ("(o)"),
		G_DBUS_CALL_FLAGS_NONE, -1, fds, NULL, NULL, &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(&o)", &job);
	image_fd = job_image (job);
	text = image_string (image_fd, "Source");
	g_assert_cmpstr (text, ==, "fd");
	g_clear_pointer (&text, g_free);
	text = image_string (image_fd, "Name");
	g_assert_cmpstr (text, ==, "");
	g_clear_pointer (&text, g_free);

	/* Listed by the object manager, announced by InterfacesAdded. */
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 3);
	g_assert_true (ptr_array_has (listed, image_raw));
	g_assert_true (ptr_array_has (listed, image_qcow2));
	g_assert_true (ptr_array_has (listed, image_fd));
	g_assert_true (spin_until (added_cond, image_fd, 10));
	g_assert_true (ptr_array_has (t.added, image_raw));
	g_assert_true (ptr_array_has (t.added, image_qcow2));
	size_sum = get_u64 (image_raw, IMAGE_IFACE, "Size") +
		   get_u64 (image_qcow2, IMAGE_IFACE, "Size") +
		   get_u64 (image_fd, IMAGE_IFACE, "Size");
	g_assert_cmpuint (get_u64 (MANAGER_PATH, MANAGER_IFACE, "CacheSize"), ==, size_sum);
	g_assert_cmpuint (get_u64 (MANAGER_PATH, MANAGER_IFACE, "CacheLimit"), ==, 0);
	g_assert_cmpuint (count_cache_files (".img"), ==, 3);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* The same content from a raw and its qcow2, and from two clients at once: one entry. */
static void
test_same_content (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *raw = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *qcow2 = g_build_filename (dir, "disk.qcow2", NULL);
	g_autofree char *shared = g_build_filename (dir, "shared.raw", NULL);
	g_autofree char *image_raw = NULL;
	g_autofree char *image_qcow2 = NULL;
	g_autofree char *sum_raw = NULL;
	g_autofree char *sum_qcow2 = NULL;
	g_autofree char *name = NULL;
	g_autofree char *image_a = NULL;
	g_autofree char *image_b = NULL;
	g_autoptr(GDBusConnection) second = NULL;
	g_autoptr(GVariant) reply_a = NULL;
	g_autoptr(GVariant) reply_b = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	g_autoptr(GError) error = NULL;
	GAsyncResult *result_a = NULL;
	GAsyncResult *result_b = NULL;
	const char *job_a = NULL;
	const char *job_b = NULL;

	if (!require_qemu_img ())
		return;
	fresh_daemon ("0", 2);
	vmi_test_make_pattern_image (raw, 2 * MiB, 21);
	vmi_test_qemu_img ("convert -f raw -O qcow2 '%s' '%s'", raw, qcow2);
	image_raw = cache_import (raw, "{}");
	sum_raw = image_string (image_raw, "ContentChecksum");
	/* The second import finds the content and renames the entry as asked. */
	image_qcow2 = cache_import (qcow2, "{'name': <'renamed'>}");
	sum_qcow2 = image_string (image_qcow2, "ContentChecksum");
	g_assert_cmpstr (image_qcow2, ==, image_raw);
	g_assert_cmpstr (sum_qcow2, ==, sum_raw);
	name = image_string (image_raw, "Name");
	g_assert_cmpstr (name, ==, "renamed");
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 1);
	g_assert_cmpuint (count_cache_files (".img"), ==, 1);

	/* Two clients, each on its own connection, import the same file at the same time. */
	vmi_test_make_pattern_image (shared, 4 * MiB, 22);
	second = g_dbus_connection_new_for_address_sync (
		t.address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error (error);
	g_dbus_connection_call (t.connection, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "CacheImport",
				g_variant_new ("(s@a{sv})", shared, options ("{}")),
				G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
				async_result_cb, &result_a);
	g_dbus_connection_call (second, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "CacheImport",
				g_variant_new ("(s@a{sv})", shared, options ("{}")),
				G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
				async_result_cb, &result_b);
	while (result_a == NULL || result_b == NULL)
		g_main_context_iteration (NULL, TRUE);
	reply_a = g_dbus_connection_call_finish (t.connection, result_a, &error);
	g_assert_no_error (error);
	reply_b = g_dbus_connection_call_finish (second, result_b, &error);
	g_assert_no_error (error);
	g_object_unref (result_a);
	g_object_unref (result_b);
	g_variant_get (reply_a, "(&o)", &job_a);
	g_variant_get (reply_b, "(&o)", &job_b);
	g_assert_cmpstr (job_a, !=, job_b);
	image_a = job_image (job_a);
	image_b = job_image (job_b);
	g_assert_cmpstr (image_a, ==, image_b);
	g_clear_pointer (&listed, g_ptr_array_unref);
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 2);
	g_assert_cmpuint (count_cache_files (".img"), ==, 2);
	g_assert_cmpuint (count_cache_files (".entry"), ==, 2);
	g_dbus_connection_close_sync (second, NULL, NULL);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- Export ---- */

static void
test_export (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *raw = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *to_vmdk = g_build_filename (dir, "out.vmdk", NULL);
	g_autofree char *to_raw = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *to_qcow2 = g_build_filename (dir, "out.qcow2", NULL);
	g_autofree char *image = NULL;
	g_autofree char *job = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(JsonObject) info = NULL;
	g_autoptr(GError) error = NULL;
	const char *format = NULL;
	struct stat st;
	guint64 created;

	if (!require_qemu_img ())
		return;
	fresh_daemon ("0", 2);
	vmi_test_make_pattern_image (raw, 3 * MiB + 512, 31);
	image = cache_import (raw, "{}");
	created = get_u64 (image, IMAGE_IFACE, "LastUsed");

	image_export (image, to_vmdk, "vmdk", "{}");
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", to_vmdk, "vmdk"));
	image_export (image, to_raw, "raw", "{}");
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", to_raw, "raw"));
	/* The copy belongs to the caller and is private. */
	g_assert_cmpint (stat (to_raw, &st), ==, 0);
	g_assert_cmpuint (st.st_mode & 0777, ==, 0600);
	/* Integers of any D-Bus type for a create-option. */
	job = image_export_start (image, to_qcow2, "qcow2", "{'cluster-size': <int32 131072>}",
				  &error);
	g_assert_no_error (error);
	assert_job_completed (job);
	result = get_property (job, JOB_IFACE, "Result");
	g_assert_true (g_variant_lookup (result, "format", "&s", &format));
	g_assert_cmpstr (format, ==, "qcow2");
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", to_qcow2, "qcow2"));
	info = vmi_test_qemu_img_info (to_qcow2, "qcow2");
	g_assert_cmpuint (vmi_test_json_u64 (info, "cluster-size"), ==, 131072);
	/* An export is a use. */
	g_assert_cmpuint (get_u64 (image, IMAGE_IFACE, "LastUsed"), >=, created);

	/* The destination rules of Convert. */
	g_clear_pointer (&job, g_free);
	job = image_export_start (image, to_raw, "raw", "{}", &error);
	g_assert_null (job);
	assert_dbus_error (error, "Exists", to_raw);
	g_clear_error (&error);
	job = image_export_start (image, to_raw, "raw", "{'overwrite': <true>}", &error);
	g_assert_no_error (error);
	assert_job_completed (job);
	g_clear_pointer (&job, g_free);
	job = image_export_start (image, "relative.raw", "raw", "{}", &error);
	g_assert_null (job);
	assert_dbus_error (error, "InvalidArgument", "relative");
	g_clear_error (&error);
	job = image_export_start (image, to_raw, "raw", "{'source-format': <'raw'>}", &error);
	g_assert_null (job);
	assert_dbus_error (error, "InvalidArgument", "source-format");
	g_clear_error (&error);
	job = image_export_start (image, to_raw, "nosuchformat", "{}", &error);
	g_assert_null (job);
	assert_dbus_error (error, "UnknownFormat", "nosuchformat");
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- Properties, verification, removal ---- */

static void
test_set_properties_verify (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *raw = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *image = NULL;
	g_autofree char *value = NULL;
	g_autofree char *job = NULL;
	g_autofree char *verified = NULL;
	g_autofree char *state = NULL;
	g_autofree char *error_name = NULL;
	g_autofree char *message = NULL;
	g_autofree char *stored = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	guint8 byte;

	fresh_daemon ("0", 2);
	vmi_test_make_pattern_image (raw, 2 * MiB, 41);
	image = cache_import (raw, "{'format': <'raw'>, 'properties': <{'os_type': 'linux'}>}");

	set_properties (image, "{'os_distro': 'debian', 'min_ram': '512'}", "['os_type']", &error);
	g_assert_no_error (error);
	value = image_property (image, "os_distro");
	g_assert_cmpstr (value, ==, "debian");
	g_clear_pointer (&value, g_free);
	value = image_property (image, "min_ram");
	g_assert_cmpstr (value, ==, "512");
	g_clear_pointer (&value, g_free);
	g_assert_null (image_property (image, "os_type"));
	/* A bad key changes nothing. */
	set_properties (image, "{'os_type': 'windows', 'bad key': 'x'}", "[]", &error);
	assert_dbus_error (error, "InvalidArgument", "bad key");
	g_clear_error (&error);
	g_assert_null (image_property (image, "os_type"));

	/* Verify: a job whose Result names the image. */
	reply = call (image, IMAGE_IFACE, "Verify", NULL, "(o)", &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(o)", &job);
	verified = job_image (job);
	g_assert_cmpstr (verified, ==, image);

	/* A damaged stored file (same size, one byte changed) fails it with CorruptImage. */
	stored = stored_file (image, ".img");
	vmi_test_read_bytes (stored, 0, &byte, 1);
	byte ^= 0xff;
	vmi_test_write_bytes (stored, 0, &byte, 1);
	g_clear_pointer (&reply, g_variant_unref);
	g_clear_pointer (&job, g_free);
	reply = call (image, IMAGE_IFACE, "Verify", NULL, "(o)", &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(o)", &job);
	state = job_wait (job, &error_name);
	g_assert_cmpstr (state, ==, "failed");
	g_assert_cmpstr (error_name, ==, ERROR_PREFIX "CorruptImage");
	message = get_string (job, JOB_IFACE, "ErrorMessage");
	g_assert_nonnull (strstr (message, "sha256"));
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_remove (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *raw = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *image = NULL;
	g_autofree char *img = NULL;
	g_autofree char *entry = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	g_autoptr(GError) error = NULL;

	fresh_daemon ("0", 2);
	vmi_test_make_pattern_image (raw, MiB, 51);
	image = cache_import (raw, "{}");
	img = stored_file (image, ".img");
	entry = stored_file (image, ".entry");
	g_assert_true (g_file_test (img, G_FILE_TEST_IS_REGULAR));
	g_assert_true (g_file_test (entry, G_FILE_TEST_IS_REGULAR));

	reply = call (image, IMAGE_IFACE, "Remove", NULL, "()", &error);
	g_assert_no_error (error);
	g_assert_true (spin_until (removed_cond, image, 10));
	g_assert_false (g_file_test (img, G_FILE_TEST_EXISTS));
	g_assert_false (g_file_test (entry, G_FILE_TEST_EXISTS));
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 0);
	g_assert_cmpuint (get_u64 (MANAGER_PATH, MANAGER_IFACE, "CacheSize"), ==, 0);
	/* The object is gone. */
	g_clear_pointer (&reply, g_variant_unref);
	reply = call (image, IMAGE_IFACE, "Remove", NULL, "()", &error);
	g_assert_null (reply);
	g_assert_nonnull (error);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- Eviction ---- */

/* LRU order, pinning, CacheLimit from the settings, and a restart listing the same entries. */
static void
test_prune_restart (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *a_src = g_build_filename (dir, "a.raw", NULL);
	g_autofree char *b_src = g_build_filename (dir, "b.raw", NULL);
	g_autofree char *c_src = g_build_filename (dir, "c.raw", NULL);
	g_autofree char *out = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *a = NULL;
	g_autofree char *b = NULL;
	g_autofree char *c = NULL;
	g_autofree char *limit = NULL;
	g_autofree char *pinned = NULL;
	g_autoptr(GPtrArray) before = NULL;
	g_autoptr(GPtrArray) after = NULL;
	g_autoptr(GError) error = NULL;
	guint64 size_a, size_b, size_c;

	fresh_daemon ("0", 2);
	vmi_test_make_pattern_image (a_src, MiB, 61);
	vmi_test_make_pattern_image (b_src, MiB, 62);
	vmi_test_make_pattern_image (c_src, MiB, 63);
	/* Imported in this order: a is the least recently used, then b, then c. */
	a = cache_import (a_src, "{'properties': <{'pinned': 'true'}>}");
	b = cache_import (b_src, "{}");
	c = cache_import (c_src, "{}");
	/* Using b makes c the least recently used of the two that may go. */
	g_usleep (10000);
	image_export (b, out, "raw", "{}");
	size_a = get_u64 (a, IMAGE_IFACE, "Size");
	size_b = get_u64 (b, IMAGE_IFACE, "Size");
	size_c = get_u64 (c, IMAGE_IFACE, "Size");
	g_assert_cmpuint (size_c, >, 0);
	/* Without a limit, nothing to prune. */
	g_assert_cmpuint (cache_prune (), ==, 0);
	before = listed_images ();
	g_assert_cmpuint (before->len, ==, 3);

	/* A restart with a limit that a and b fit: the same entries, same properties. */
	limit = g_strdup_printf ("%" G_GUINT64_FORMAT, size_a + size_b);
	daemon_start (limit, 2);
	after = listed_images ();
	g_assert_cmpuint (after->len, ==, 3);
	for (guint i = 0; i < before->len; i++)
		g_assert_cmpstr (g_ptr_array_index (before, i), ==, g_ptr_array_index (after, i));
	pinned = image_property (a, "pinned");
	g_assert_cmpstr (pinned, ==, "true");
	g_assert_cmpuint (get_u64 (MANAGER_PATH, MANAGER_IFACE, "CacheLimit"), ==, size_a + size_b);

	/* Prune evicts c (least recently used), not b (imported before c but used since). */
	g_ptr_array_set_size (t.removed, 0);
	g_assert_cmpuint (cache_prune (), ==, size_c);
	g_assert_true (spin_until (removed_cond, c, 10));
	g_clear_pointer (&after, g_ptr_array_unref);
	after = listed_images ();
	g_assert_cmpuint (after->len, ==, 2);
	g_assert_true (ptr_array_has (after, a));
	g_assert_true (ptr_array_has (after, b));
	g_assert_cmpuint (get_u64 (MANAGER_PATH, MANAGER_IFACE, "CacheSize"), ==, size_a + size_b);

	/* Under a 1 KiB limit b goes too, but the pinned a stays. */
	daemon_start ("1K", 2);
	{
		g_autofree char *job = cache_import_start (c_src, "{}", &error);
		g_autofree char *error_name = NULL;
		g_autofree char *state = NULL;

		/* An image that cannot fit even after every eviction: NoSpace, nothing evicted. */
		g_assert_no_error (error);
		state = job_wait (job, &error_name);
		g_assert_cmpstr (state, ==, "failed");
		g_assert_cmpstr (error_name, ==, ERROR_PREFIX "NoSpace");
		g_clear_pointer (&after, g_ptr_array_unref);
		after = listed_images ();
		g_assert_cmpuint (after->len, ==, 2);
	}
	g_assert_cmpuint (cache_prune (), ==, size_b);
	g_clear_pointer (&after, g_ptr_array_unref);
	after = listed_images ();
	g_assert_cmpuint (after->len, ==, 1);
	g_assert_true (ptr_array_has (after, a));
	/* Unpinned, it goes as well. */
	set_properties (a, "{}", "['pinned']", &error);
	g_assert_no_error (error);
	g_assert_cmpuint (cache_prune (), ==, size_a);
	g_clear_pointer (&after, g_ptr_array_unref);
	after = listed_images ();
	g_assert_cmpuint (after->len, ==, 0);
	g_assert_cmpuint (count_cache_files (".img"), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * An image being exported is held from the call on: here its export waits in the queue
 * (MaxParallelJobs=1) behind a long import while CachePrune runs under a tiny limit.
 */
static void
test_export_held (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *big_src = g_build_filename (dir, "big.qcow2", NULL);
	g_autofree char *x_src = g_build_filename (dir, "x.raw", NULL);
	g_autofree char *y_src = g_build_filename (dir, "y.raw", NULL);
	g_autofree char *out = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *x = NULL;
	g_autofree char *y = NULL;
	g_autofree char *slow_job = NULL;
	g_autofree char *export_job = NULL;
	g_autofree char *state = NULL;
	g_autofree char *error_name = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	g_autoptr(GError) error = NULL;
	guint64 size_x, size_y;

	if (!require_qemu_img ())
		return;
	fresh_daemon ("0", 1);
	vmi_test_make_pattern_image (x_src, MiB, 72);
	vmi_test_make_pattern_image (y_src, MiB, 73);
	/* x is the least recently used: without the hold it would be the first to go. */
	x = cache_import (x_src, "{}");
	y = cache_import (y_src, "{}");
	size_x = get_u64 (x, IMAGE_IFACE, "Size");
	size_y = get_u64 (y, IMAGE_IFACE, "Size");
	daemon_start ("1K", 1);

	/* The one job slot: importing 4 GiB of compressed clusters, whose content digest alone
	 * inflates every one of them (seconds of work; cancelled below). */
	vmi_test_make_compressed_qcow2 (big_src, 4 * GiB, 0x5a);
	slow_job = cache_import_start (big_src, "{}", &error);
	g_assert_no_error (error);
	export_job = image_export_start (x, out, "raw", "{}", &error);
	g_assert_no_error (error);
	state = job_state (export_job);
	if (g_strcmp0 (state, "queued") != 0)
		g_error ("the export should wait behind the import, but it is %s", state);
	g_clear_pointer (&state, g_free);
	state = job_state (slow_job);
	if (g_strcmp0 (state, "running") != 0)
		g_error ("the import should still run, but it is %s", state);

	/* y goes; x, held by its queued export, stays. */
	g_assert_cmpuint (cache_prune (), ==, size_y);
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 1);
	g_assert_true (ptr_array_has (listed, x));
	/* Nor may it be removed meanwhile. */
	reply = call (x, IMAGE_IFACE, "Remove", NULL, "()", &error);
	assert_dbus_error (error, "Failed", NULL);
	g_clear_error (&error);
	g_clear_pointer (&state, g_free);
	state = job_state (export_job);
	g_assert_cmpstr (state, ==, "queued");

	g_clear_pointer (&reply, g_variant_unref);
	reply = call (slow_job, JOB_IFACE, "Cancel", NULL, "()", &error);
	g_assert_no_error (error);
	g_clear_pointer (&state, g_free);
	state = job_wait (slow_job, &error_name);
	g_assert_cmpstr (state, ==, "cancelled");
	assert_job_completed (export_job);
	g_assert_true (vmi_test_qemu_img_compare (x_src, "raw", out, "raw"));
	/* Released when the export is done: now prune takes it. */
	g_assert_cmpuint (cache_prune (), ==, size_x);
	g_clear_pointer (&listed, g_ptr_array_unref);
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 0);
	g_assert_cmpuint (count_cache_files (".img"), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- polkit ---- */

static void
test_polkit (void)
{
	VmiTestPolkit *mock = vmi_test_polkit_start (t.address);
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *raw = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *image = NULL;
	g_autofree char *asked = NULL;
	g_autofree char *expected = NULL;
	g_autofree char *daemon_path = daemon_executable ();
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	g_autoptr(GError) error = NULL;
	const char *me = g_dbus_connection_get_unique_name (t.connection);

	/* An image in the cache, put there by a session daemon that does not ask polkit. */
	fresh_daemon ("0", 2);
	vmi_test_make_pattern_image (raw, MiB, 91);
	image = cache_import (raw, "{}");
	daemon_stop ();

	/* The same cache under a daemon as on the system bus: every cache method asks polkit for
	 * org.vmimaged.VMImage1.cache about the calling bus name, first; refused, nothing is
	 * done, not even argument checks. */
	launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
	g_subprocess_launcher_set_child_setup (launcher, die_with_parent, GINT_TO_POINTER (SIGTERM),
					       NULL);
	g_subprocess_launcher_take_stdout_fd (launcher, dup (STDERR_FILENO));
	g_subprocess_launcher_setenv (launcher, "DBUS_SYSTEM_BUS_ADDRESS", t.address, TRUE);
	t.daemon = g_subprocess_launcher_spawn (launcher, &error, daemon_path, "--plugin-dir",
						test_plugin_dir (), "--cache-dir", t.cache_dir,
						"--config", t.config, "--verbose", NULL);
	g_assert_no_error (error);
	g_assert_true (spin_until (name_owned_cond, GINT_TO_POINTER (TRUE), 60));
	expected = g_strdup_printf ("org.vmimaged.VMImage1.cache system-bus-name %s 1", me);

	expect_import_error (raw, "{}", "NotAuthorized", "org.vmimaged.VMImage1.cache");
	asked = vmi_test_polkit_asked (mock);
	g_assert_cmpstr (asked, ==, expected);
	g_clear_pointer (&asked, g_free);
	expect_import_error ("relative", "{'colour': <1>}", "NotAuthorized", NULL);
	asked = vmi_test_polkit_asked (mock);
	g_assert_cmpstr (asked, ==, expected);
	g_clear_pointer (&asked, g_free);

	reply = call (MANAGER_PATH, MANAGER_IFACE, "CachePrune", NULL, "(t)", &error);
	assert_dbus_error (error, "NotAuthorized", NULL);
	g_clear_error (&error);
	reply = call (image, IMAGE_IFACE, "Remove", NULL, "()", &error);
	assert_dbus_error (error, "NotAuthorized", NULL);
	g_clear_error (&error);
	set_properties (image, "{'os_type': 'linux'}", "[]", &error);
	assert_dbus_error (error, "NotAuthorized", NULL);
	g_clear_error (&error);
	reply = call (image, IMAGE_IFACE, "Verify", NULL, "(o)", &error);
	assert_dbus_error (error, "NotAuthorized", NULL);
	g_clear_error (&error);
	g_assert_null (image_export_start (image, "/tmp/x.raw", "raw", "{}", &error));
	assert_dbus_error (error, "NotAuthorized", NULL);
	g_clear_error (&error);
	asked = vmi_test_polkit_asked (mock);
	for (guint i = 0; i < 5; i++)
		g_assert_nonnull (strstr (asked, "org.vmimaged.VMImage1.cache system-bus-name"));
	g_assert_null (strstr (asked, "convert"));
	/* Still there, unchanged; the listing itself needs no action. */
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 1);
	g_assert_true (ptr_array_has (listed, image));
	g_assert_null (image_property (image, "os_type"));
	daemon_stop ();
	vmi_test_polkit_stop (mock);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- Bad input ---- */

static void
test_bad_input (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *raw = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *secret = g_build_filename (dir, "secret.raw", NULL);
	g_autofree char *args = NULL;
	g_autofree char *reply = NULL;
	g_autoptr(GPtrArray) listed = NULL;

	fresh_daemon ("0", 2);
	vmi_test_make_pattern_image (raw, MiB, 81);
	expect_import_error (raw, "{'colour': <'blue'>}", "InvalidArgument", "colour");
	expect_import_error (raw, "{'name': <uint32 5>}", "InvalidArgument", "name");
	expect_import_error (raw, "{'properties': <'os_type=linux'>}", "InvalidArgument",
			     "properties");
	expect_import_error (raw, "{'properties': <{'bad key': 'x'}>}", "InvalidArgument",
			     "bad key");
	expect_import_error (raw, "{'format': <'nosuchformat'>}", "UnknownFormat", "nosuchformat");
	expect_import_error (raw, "{'cancel-on-disconnect': <'yes'>}", "InvalidArgument",
			     "cancel-on-disconnect");
	expect_import_error ("relative.raw", "{}", "InvalidArgument", "relative");
	expect_import_error (dir, "{}", "InvalidArgument", dir);
	expect_import_error ("/nonexistent/disk.raw", "{}", "InvalidArgument",
			     "/nonexistent/disk.raw");
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 0);
	g_assert_cmpuint (count_cache_files (".img"), ==, 0);

	/* As nobody: a file only root may read is refused, naming it; nothing is stored. */
	if (geteuid () != 0) {
		g_test_skip ("needs root to run a client as nobody");
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	g_assert_cmpint (chmod (dir, 0755), ==, 0);
	vmi_test_make_pattern_image (secret, MiB, 82);
	g_assert_cmpint (chmod (secret, 0600), ==, 0);
	args = g_strdup_printf ("('%s', @a{sv} {})", secret);
	reply = vmi_test_call_as_nobody (t.address, MANAGER_PATH, MANAGER_IFACE, "CacheImport", args);
	if (!g_str_has_prefix (reply, ERROR_PREFIX "AccessDenied "))
		g_error ("expected AccessDenied for nobody, got: %s", reply);
	g_assert_nonnull (strstr (reply, secret));
	g_clear_pointer (&listed, g_ptr_array_unref);
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* The daemon does not start on a cache folder others may write to, and says why. */
static void
test_unsafe_cache_dir (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *unsafe = g_build_filename (dir, "cache", NULL);
	g_autofree char *daemon_path = daemon_executable ();
	g_autofree char *err = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "DBUS_SESSION_BUS_ADDRESS",
					       t.address, TRUE);
	const char *argv[] = { daemon_path, "--session", "--plugin-dir", test_plugin_dir (),
			       "--cache-dir", unsafe, "--config", t.config, NULL };
	int status = 0;

	daemon_stop ();
	g_assert_cmpint (g_mkdir (unsafe, 0777), ==, 0);
	g_assert_cmpint (chmod (unsafe, 0777), ==, 0);
	g_spawn_sync (NULL, (char **) argv, envp, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
		      &err, &status, &error);
	g_assert_no_error (error);
	g_assert_true (WIFEXITED (status));
	g_assert_cmpint (WEXITSTATUS (status), ==, 1);
	if (strstr (err, unsafe) == NULL || strstr (err, "cache") == NULL)
		g_error ("the daemon's message does not name the cache folder: %s", err);
	g_assert_false (name_has_owner ());
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* --session keeps its cache in $XDG_CACHE_HOME/vmimaged; CacheLimit is checked at start. */
static void
test_cache_settings (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *xdg = g_build_filename (dir, "xdg-cache", NULL);
	g_autofree char *cache = g_build_filename (xdg, "vmimaged", NULL);
	g_autofree char *bad_conf = g_build_filename (dir, "bad.conf", NULL);
	g_autofree char *daemon_path = daemon_executable ();
	g_autofree char *err = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "DBUS_SESSION_BUS_ADDRESS",
					       t.address, TRUE);
	const char *bad_argv[] = { daemon_path, "--session", "--plugin-dir", test_plugin_dir (),
				   "--cache-dir", t.cache_dir, "--config", bad_conf, NULL };
	int status = 0;
	struct stat st;

	daemon_stop ();
	launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
	g_subprocess_launcher_set_child_setup (launcher, die_with_parent, GINT_TO_POINTER (SIGTERM),
					       NULL);
	g_subprocess_launcher_take_stdout_fd (launcher, dup (STDERR_FILENO));
	g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", t.address, TRUE);
	g_subprocess_launcher_setenv (launcher, "XDG_CACHE_HOME", xdg, TRUE);
	t.daemon = g_subprocess_launcher_spawn (launcher, &error, daemon_path, "--session",
						"--plugin-dir", test_plugin_dir (), "--config",
						t.config, NULL);
	g_assert_no_error (error);
	g_assert_true (spin_until (name_owned_cond, GINT_TO_POINTER (TRUE), 60));
	g_assert_cmpint (stat (cache, &st), ==, 0);
	g_assert_true (S_ISDIR (st.st_mode));
	g_assert_cmpuint (st.st_mode & 0777, ==, 0700);
	daemon_stop ();

	/* A CacheLimit that is not a size stops the daemon, naming the key. */
	vmi_test_write_file (bad_conf, "[Daemon]\nCacheLimit=lots\n", -1);
	g_spawn_sync (NULL, (char **) bad_argv, envp, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
		      NULL, &err, &status, &error);
	g_assert_no_error (error);
	g_assert_true (WIFEXITED (status));
	g_assert_cmpint (WEXITSTATUS (status), !=, 0);
	if (strstr (err, "CacheLimit") == NULL)
		g_error ("the daemon's message does not name CacheLimit: %s", err);
	g_assert_false (name_has_owner ());
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- A full file system ---- */

/* Files of the cache folder whose names start with prefix. */
static guint
count_cache_prefixed (const char *prefix)
{
	g_autoptr(GDir) dir = g_dir_open (t.cache_dir, 0, NULL);
	const char *name;
	guint n = 0;

	g_assert_nonnull (dir);
	while ((name = g_dir_read_name (dir)) != NULL) {
		if (g_str_has_prefix (name, prefix))
			n++;
	}
	return n;
}

static void
image_verify (const char *image)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = call (image, IMAGE_IFACE, "Verify", NULL, "(o)", &error);
	g_autofree char *job = NULL;
	g_autofree char *verified = NULL;

	g_assert_no_error (error);
	g_variant_get (reply, "(o)", &job);
	verified = job_image (job);
	g_assert_cmpstr (verified, ==, image);
}

/* size bytes of which the first data bytes are random (deflate cannot shrink them), the rest a
 * hole. */
static void
make_random_sparse (const char *path, guint64 size, gsize data, guint32 seed)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
	g_autofree guint32 *words = g_new (guint32, data / 4);

	for (gsize i = 0; i < data / 4; i++)
		words[i] = g_rand_int (rand);
	vmi_test_write_file (path, words, (gssize) data);
	g_assert_cmpint (truncate (path, (off_t) size), ==, 0);
}

/* Whether main made this process's mounts private (see there). */
static gboolean private_mounts;

/*
 * The cache on an 8 MiB tmpfs: an import bigger than that fails with NoSpace, in both stored
 * formats; nothing partial remains, CacheSize does not change, the image imported before still
 * verifies, also after a restart.
 */
static void
test_no_space (void)
{
	g_autofree char *mnt = g_build_filename (t.dir, "small", NULL);
	g_autofree char *saved_cache_dir = g_strdup (t.cache_dir);
	g_autofree char *small = g_build_filename (t.dir, "nospace-small.raw", NULL);
	g_autofree char *big = g_build_filename (t.dir, "nospace-big.raw", NULL);
	g_autofree char *kept = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	const char *const formats[] = { "{'format': <'qcow2'>}", "{'format': <'raw'>}" };
	guint64 size_before;

	if (geteuid () != 0) {
		g_test_skip ("mounting a small tmpfs needs root");
		return;
	}
	g_assert_cmpint (g_mkdir (mnt, 0700), ==, 0);
	if (mount ("tmpfs", mnt, "tmpfs", 0, "size=8m,mode=0700") != 0) {
		g_autofree char *message = g_strdup_printf ("cannot mount a tmpfs on %s: %s", mnt,
							    g_strerror (errno));

		g_test_skip (message);
		g_rmdir (mnt);
		return;
	}
	if (!private_mounts)
		g_test_message ("no private mount namespace: a failure here leaves %s mounted",
				mnt);
	g_free (t.cache_dir);
	t.cache_dir = g_build_filename (mnt, "cache", NULL);
	fresh_daemon ("0", 2);

	make_random_sparse (small, 2 * MiB, MiB, 41);
	make_random_sparse (big, 32 * MiB, 12 * MiB, 42);
	kept = cache_import (small, "{}");
	size_before = get_u64 (MANAGER_PATH, MANAGER_IFACE, "CacheSize");
	g_assert_cmpuint (size_before, >=, MiB);

	for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *job = cache_import_start (big, formats[i], &error);
		g_autofree char *error_name = NULL;
		g_autofree char *state = NULL;
		g_autofree char *message = NULL;

		g_assert_no_error (error);
		state = job_wait (job, &error_name);
		message = get_string (job, JOB_IFACE, "ErrorMessage");
		g_test_message ("%s: %s %s: %s", formats[i], state, error_name, message);
		g_assert_cmpstr (state, ==, "failed");
		g_assert_cmpstr (error_name, ==, ERROR_PREFIX "NoSpace");
		/* Where: the cache folder. */
		g_assert_nonnull (strstr (message, t.cache_dir));

		listed = listed_images ();
		g_assert_cmpuint (listed->len, ==, 1);
		g_assert_cmpstr (listed->pdata[0], ==, kept);
		g_clear_pointer (&listed, g_ptr_array_unref);
		g_assert_cmpuint (count_cache_files (".img"), ==, 1);
		g_assert_cmpuint (count_cache_files (".entry"), ==, 1);
		g_assert_cmpuint (count_cache_prefixed (".tmp-"), ==, 0);
		g_assert_cmpuint (get_u64 (MANAGER_PATH, MANAGER_IFACE, "CacheSize"), ==,
				  size_before);
		image_verify (kept);
	}

	/* A restart finds the same. */
	daemon_start ("0", 2);
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 1);
	g_assert_cmpstr (listed->pdata[0], ==, kept);
	g_assert_cmpuint (get_u64 (MANAGER_PATH, MANAGER_IFACE, "CacheSize"), ==, size_before);
	image_verify (kept);

	/* The space was there all along for what fits. */
	{
		g_autofree char *medium = g_build_filename (t.dir, "nospace-medium.raw", NULL);
		g_autofree char *image = NULL;

		make_random_sparse (medium, 2 * MiB, 2 * MiB, 43);
		image = cache_import (medium, "{}");
		image_verify (image);
		g_unlink (medium);
	}

	daemon_stop ();
	g_assert_cmpint (umount (mnt), ==, 0);
	g_rmdir (mnt);
	g_free (t.cache_dir);
	t.cache_dir = g_steal_pointer (&saved_cache_dir);
	g_unlink (small);
	g_unlink (big);
}

/* ---- Two clients, one file, at the same time ---- */

static void
call_import_async (GDBusConnection *connection, const char *source, GAsyncResult **result)
{
	g_dbus_connection_call (connection, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "CacheImport",
				g_variant_new ("(s@a{sv})", source, options ("{}")),
				G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
				async_result_cb, result);
}

static char *
finish_import (GDBusConnection *connection, GAsyncResult *result)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_finish (connection, result, &error);
	char *job = NULL;

	g_assert_no_error (error);
	g_variant_get (reply, "(o)", &job);
	return job;
}

/*
 * Two connections import the same slow file (seconds of inflating for the digest) at once, so
 * both jobs surely run side by side and both convert: the second to commit must find the
 * first's entry. One image, both Results name it, one InterfacesAdded, one stored file.
 */
static void
test_two_clients_overlap (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *source = g_build_filename (dir, "shared.qcow2", NULL);
	g_autoptr(GDBusConnection) second = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *job_a = NULL;
	g_autofree char *job_b = NULL;
	g_autofree char *image_a = NULL;
	g_autofree char *image_b = NULL;
	GAsyncResult *result_a = NULL;
	GAsyncResult *result_b = NULL;
	gboolean overlapped = FALSE;
	guint added = 0;

	fresh_daemon ("0", 2);
	vmi_test_make_compressed_qcow2 (source, 512 * MiB, 0x6b);
	second = g_dbus_connection_new_for_address_sync (
		t.address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error (error);
	call_import_async (t.connection, source, &result_a);
	call_import_async (second, source, &result_b);
	while (result_a == NULL || result_b == NULL)
		g_main_context_iteration (NULL, TRUE);
	job_a = finish_import (t.connection, result_a);
	job_b = finish_import (second, result_b);
	g_clear_object (&result_a);
	g_clear_object (&result_b);
	g_assert_cmpstr (job_a, !=, job_b);
	for (;;) {
		g_autofree char *state_a = job_state (job_a);
		g_autofree char *state_b = job_state (job_b);

		if (g_strcmp0 (state_a, "running") == 0 && g_strcmp0 (state_b, "running") == 0)
			overlapped = TRUE;
		if (g_strcmp0 (state_a, "running") != 0 && g_strcmp0 (state_a, "queued") != 0 &&
		    g_strcmp0 (state_b, "running") != 0 && g_strcmp0 (state_b, "queued") != 0)
			break;
		g_main_context_iteration (NULL, FALSE);
		g_usleep (2000);
	}
	/* Otherwise the test proves no more than the sequential case. */
	g_assert_true (overlapped);
	image_a = job_image (job_a);
	image_b = job_image (job_b);
	g_assert_cmpstr (image_a, ==, image_b);

	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 1);
	g_assert_cmpstr (listed->pdata[0], ==, image_a);
	g_assert_cmpuint (count_cache_files (".img"), ==, 1);
	g_assert_cmpuint (count_cache_files (".entry"), ==, 1);
	g_assert_cmpuint (count_cache_prefixed (".tmp-"), ==, 0);
	spin_until (added_cond, image_a, 10);
	for (guint i = 0; i < t.added->len; i++)
		added += g_strcmp0 (t.added->pdata[i], image_a) == 0;
	g_assert_cmpuint (added, ==, 1);
	image_verify (image_a);
	g_dbus_connection_close_sync (second, NULL, NULL);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- Bundles: an OVA, a UEC tarball ---- */

/* The images of a completed cache-import job's Result: "images" (ao), "image" first. */
static GPtrArray *
job_images (const char *job)
{
	g_autoptr(GVariant) result = NULL;
	g_autofree const char **paths = NULL;
	GPtrArray *images = g_ptr_array_new_with_free_func (g_free);
	const char *image = NULL;

	assert_job_completed (job);
	result = get_property (job, JOB_IFACE, "Result");
	g_assert_true (g_variant_lookup (result, "image", "&o", &image));
	g_assert_true (g_variant_lookup (result, "images", "^a&o", &paths));
	g_assert_nonnull (paths[0]);
	g_assert_cmpstr (paths[0], ==, image);
	for (guint i = 0; paths[i] != NULL; i++)
		g_ptr_array_add (images, g_strdup (paths[i]));
	return images;
}

static void
convert_to (const char *source, const char *destination, const char *format, const char *opts)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = call (MANAGER_PATH, MANAGER_IFACE, "Convert",
					  g_variant_new ("(sss@a{sv})", source, destination, format,
							 options (opts)),
					  "(o)", &error);
	const char *job = NULL;

	g_assert_no_error (error);
	g_variant_get (reply, "(&o)", &job);
	assert_job_completed (job);
}

static void
assert_image_property (const char *image, const char *key, const char *expected)
{
	g_autofree char *value = image_property (image, key);

	if (g_strcmp0 (value, expected) != 0)
		g_error ("%s of %s is %s, not %s", key, image, value, expected);
}

/*
 * An OVA written by the daemon itself (one disk, a VM with 4 CPUs, 2 GiB, EFI, Ubuntu): one
 * entry, named after the OVA and its member, with the OVF's facts as properties, and the same
 * content as the disk it was made from.
 */
static void
test_bundle_ova (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *qcow2 = g_build_filename (dir, "disk.qcow2", NULL);
	g_autofree char *ova = g_build_filename (dir, "appliance.ova", NULL);
	g_autofree char *raw = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *exported = g_build_filename (dir, "exported.raw", NULL);
	g_autofree char *job = NULL;
	g_autofree char *name = NULL;
	g_autofree char *direct = NULL;
	g_autoptr(GPtrArray) images = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	g_autoptr(GError) error = NULL;
	const char *image;

	if (!require_qemu_img ())
		return;
	fresh_daemon ("0", 2);
	vmi_test_make_pattern_image (raw, 3 * MiB, 51);
	vmi_test_qemu_img ("convert -f raw -O qcow2 '%s' '%s'", raw, qcow2);
	convert_to (qcow2, ova, "ova",
		    "{'name': <'testvm'>, 'cpus': <uint64 4>, 'memory-mib': <uint64 2048>, "
		    "'os-type': <'ubuntu64Guest'>, 'firmware': <'efi'>}");

	job = cache_import_start (ova, "{'properties': <{'os_distro': 'ubuntu'}>}", &error);
	g_assert_no_error (error);
	images = job_images (job);
	g_assert_cmpuint (images->len, ==, 1);
	image = images->pdata[0];
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 1);
	name = image_string (image, "Name");
	g_assert_cmpstr (name, ==, "appliance.ova/testvm-disk1.vmdk");
	assert_image_property (image, "ovf_vm_name", "testvm");
	assert_image_property (image, "ovf_os_type", "ubuntu64Guest");
	assert_image_property (image, "os_type", "linux");
	assert_image_property (image, "ovf_cpus", "4");
	assert_image_property (image, "ovf_memory_mib", "2048");
	assert_image_property (image, "min_ram", "2048");
	assert_image_property (image, "hw_firmware_type", "uefi");
	assert_image_property (image, "bundle_member", "testvm-disk1.vmdk");
	assert_image_property (image, "os_distro", "ubuntu");
	g_assert_null (image_property (image, "kernel_id"));

	/* The disk inside is the disk it was made from: the same image, and it exports back. */
	direct = cache_import (qcow2, "{}");
	g_assert_cmpstr (direct, ==, image);
	image_export (image, exported, "raw", "{}");
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", exported, "raw"));
	image_verify (image);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A bzImage header of boot protocol 2.07 (no payload fields) over random bytes: the aki
 * plugin's idea of a kernel. */
static void
make_kernel (const char *path, gsize len, guint32 seed)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
	g_autofree guint8 *k = g_malloc (len);

	for (gsize i = 0; i < len; i++)
		k[i] = (guint8) g_rand_int (rand);
	memset (k + 0x1f0, 0, 0x90);
	k[0x1f1] = 4; /* setup_sects */
	k[0x1fe] = 0x55;
	k[0x1ff] = 0xaa;
	memcpy (k + 0x202, "HdrS", 4);
	k[0x206] = 0x07; /* protocol 2.07 */
	k[0x207] = 0x02;
	vmi_test_write_file (path, k, (gssize) len);
}

/* uec.tar.gz in dir: uec.img (a raw disk, or disk_len bytes of disk_data), uec-vmlinuz-virtual
 * (an odd size) and uec-initrd-virtual (a gzipped cpio). */
static char *
make_uec (const char *dir, const void *disk_data, gsize disk_len)
{
	g_autofree char *disk = g_build_filename (dir, "uec.img", NULL);
	g_autofree char *kernel = g_build_filename (dir, "uec-vmlinuz-virtual", NULL);
	g_autofree char *q = g_shell_quote (dir);

	if (disk_data != NULL)
		vmi_test_write_file (disk, disk_data, (gssize) disk_len);
	else
		vmi_test_make_pattern_image (disk, 2 * MiB, 52);
	make_kernel (kernel, 300 * 1024 + 17, 53);
	vmi_test_sh_ok ("cd %s && mkdir -p rd && printf '#!/bin/sh\\n' > rd/init && "
			"head -c 40000 /dev/urandom > rd/blob && "
			"(cd rd && printf 'init\\nblob\\n' | cpio -o -H newc --quiet) | gzip > "
			"uec-initrd-virtual && rm -rf rd && "
			"tar -cf - uec.img uec-vmlinuz-virtual uec-initrd-virtual | gzip -1 > uec.tar.gz",
			q);
	return g_build_filename (dir, "uec.tar.gz", NULL);
}

static char *
image_id (const char *image)
{
	return g_strdup (image + strlen (IMAGES_PREFIX));
}

/*
 * A UEC tarball: three entries, the machine image first (stored as qcow2) with kernel_id and
 * ramdisk_id naming the kernel and the ramdisk (stored as raw, their sizes exact, their bytes
 * those of the tarball's files).
 */
static void
test_bundle_uec (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *tarball = NULL;
	g_autofree char *kernel_copy = g_build_filename (dir, "kernel.out", NULL);
	g_autofree char *kernel_file = g_build_filename (dir, "uec-vmlinuz-virtual", NULL);
	g_autofree char *ramdisk_file = g_build_filename (dir, "uec-initrd-virtual", NULL);
	g_autofree char *job = NULL;
	g_autofree char *kernel_id = NULL;
	g_autofree char *ramdisk_id = NULL;
	g_autofree char *format = NULL;
	g_autofree char *sum_a = NULL;
	g_autofree char *sum_b = NULL;
	g_autoptr(GPtrArray) images = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	g_autoptr(GError) error = NULL;
	const char *machine, *kernel = NULL, *ramdisk = NULL;

	fresh_daemon ("0", 2);
	tarball = make_uec (dir, NULL, 0);
	job = cache_import_start (tarball, "{'name': <'jammy'>}", &error);
	g_assert_no_error (error);
	images = job_images (job);
	g_assert_cmpuint (images->len, ==, 3);
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 3);
	machine = images->pdata[0];
	for (guint i = 1; i < images->len; i++) {
		g_autofree char *name = image_string (images->pdata[i], "Name");

		if (g_strcmp0 (name, "jammy/uec-vmlinuz-virtual") == 0)
			kernel = images->pdata[i];
		else if (g_strcmp0 (name, "jammy/uec-initrd-virtual") == 0)
			ramdisk = images->pdata[i];
		else
			g_error ("unexpected image %s", name);
	}
	g_assert_nonnull (kernel);
	g_assert_nonnull (ramdisk);
	kernel_id = image_id (kernel);
	ramdisk_id = image_id (ramdisk);
	assert_image_property (machine, "kernel_id", kernel_id);
	assert_image_property (machine, "ramdisk_id", ramdisk_id);
	g_assert_null (image_property (kernel, "kernel_id"));
	format = image_string (machine, "Format");
	g_assert_cmpstr (format, ==, "qcow2");
	g_clear_pointer (&format, g_free);
	format = image_string (kernel, "Format");
	g_assert_cmpstr (format, ==, "raw");
	g_assert_cmpuint (get_u64 (kernel, IMAGE_IFACE, "VirtualSize"), ==, 300 * 1024 + 17);
	g_assert_cmpuint (get_u64 (ramdisk, IMAGE_IFACE, "VirtualSize"), ==,
			  vmi_test_file_size (ramdisk_file));
	g_assert_cmpuint (get_u64 (machine, IMAGE_IFACE, "VirtualSize"), ==, 2 * MiB);
	/* The kernel's bytes, exactly. */
	image_export (kernel, kernel_copy, "raw", "{}");
	sum_a = sha256_file (kernel_copy);
	sum_b = sha256_file (kernel_file);
	g_assert_cmpstr (sum_a, ==, sum_b);
	for (guint i = 0; i < images->len; i++)
		image_verify (images->pdata[i]);
	g_assert_cmpuint (count_cache_prefixed (".tmp-"), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static gboolean
added_removed_cond (gpointer data)
{
	return t.added->len == t.removed->len;
}

/*
 * A tarball whose machine image cannot be read (a qcow2 header with an absurd size): the job
 * fails naming it, and the kernel and ramdisk imported before it are taken out again.
 */
static void
test_bundle_rollback (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *tarball = NULL;
	g_autofree char *job = NULL;
	g_autofree char *state = NULL;
	g_autofree char *error_name = NULL;
	g_autofree char *message = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	g_autoptr(GError) error = NULL;
	guint8 header[4096] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 9 };

	fresh_daemon ("0", 2);
	/* Detected as qcow2 (the magic), refused (version 9). */
	tarball = make_uec (dir, header, sizeof header);
	job = cache_import_start (tarball, "{}", &error);
	g_assert_no_error (error);
	state = job_wait (job, &error_name);
	message = get_string (job, JOB_IFACE, "ErrorMessage");
	g_test_message ("%s %s: %s", state, error_name, message);
	g_assert_cmpstr (state, ==, "failed");
	g_assert_nonnull (strstr (message, "uec.img"));
	/* The kernel and the ramdisk are imported before the machine image: without the roll
	 * back they would be listed now. (Whether clients saw them come and go depends on how
	 * fast: the objects follow the store's state, not each change.) */
	g_assert_true (spin_until (added_removed_cond, NULL, 10));
	listed = listed_images ();
	g_assert_cmpuint (listed->len, ==, 0);
	g_assert_cmpuint (count_cache_files (".img"), ==, 0);
	g_assert_cmpuint (count_cache_files (".entry"), ==, 0);
	g_assert_cmpuint (count_cache_prefixed (".tmp-"), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

int
main (int argc, char **argv)
{
	int ret;

	/* The same program, run as nobody, is the client of the access test. */
	if (vmi_test_nobody_client (argc, argv, &ret))
		return ret;

	/* Mounts of this process and its children (the bus, the daemon) private to them: a
	 * test's tmpfs goes away with them, even when a failed assertion skips its umount. Only
	 * possible before any thread exists. */
	if (geteuid () == 0 && unshare (CLONE_NEWNS) == 0 &&
	    mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		private_mounts = TRUE;
	g_test_init (&argc, &argv, NULL);
	bus_start ();
	g_test_add_func ("/dbus-cache/import-list", test_import_list);
	g_test_add_func ("/dbus-cache/same-content", test_same_content);
	g_test_add_func ("/dbus-cache/export", test_export);
	g_test_add_func ("/dbus-cache/set-properties-verify", test_set_properties_verify);
	g_test_add_func ("/dbus-cache/remove", test_remove);
	g_test_add_func ("/dbus-cache/prune-restart", test_prune_restart);
	g_test_add_func ("/dbus-cache/export-held", test_export_held);
	g_test_add_func ("/dbus-cache/bad-input", test_bad_input);
	g_test_add_func ("/dbus-cache/polkit", test_polkit);
	g_test_add_func ("/dbus-cache/unsafe-cache-dir", test_unsafe_cache_dir);
	g_test_add_func ("/dbus-cache/settings", test_cache_settings);
	g_test_add_func ("/dbus-cache/no-space", test_no_space);
	g_test_add_func ("/dbus-cache/two-clients-overlap", test_two_clients_overlap);
	g_test_add_func ("/dbus-cache/bundle-ova", test_bundle_ova);
	g_test_add_func ("/dbus-cache/bundle-uec", test_bundle_uec);
	g_test_add_func ("/dbus-cache/bundle-rollback", test_bundle_rollback);
	ret = g_test_run ();

	daemon_stop ();
	g_subprocess_send_signal (t.bus, SIGTERM);
	g_subprocess_wait (t.bus, NULL, NULL);
	g_clear_object (&t.bus);
	g_clear_object (&t.connection);
	g_clear_pointer (&t.added, g_ptr_array_unref);
	g_clear_pointer (&t.removed, g_ptr_array_unref);
	g_free (t.address);
	g_free (t.cache_dir);
	g_free (t.config);
	vmi_test_tmpdir_free (t.dir);
	return ret;
}
