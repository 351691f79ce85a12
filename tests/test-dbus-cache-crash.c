/*
 * The image cache survives SIGKILL, over D-Bus: 50 imports through CacheImport, the daemon
 * SIGKILLed at seeded pseudo-random moments and restarted on the same cache folder. After every
 * restart, and at the end:
 *
 * - every import whose job reported Completed ("completed") before the kill is listed;
 * - nothing else is listed but the import that was running when the daemon was killed (it may
 *   have committed its entry without having had the time to say so: see docs/cache.md,
 *   "What completed means");
 * - every listed image verifies (an Image.Verify job completes: both checksums match);
 * - the cache folder holds no temporary file and nothing but the listed images' files.
 *
 * The seed is printed; G_TEST_SEED or --seed replays a run.
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "vmi-test-bus.h"
#include "vmi-test-util.h"

#define BUS_NAME "org.vmimaged.VMImage1"
#define ROOT_PATH "/org/vmimaged/VMImage1"
#define MANAGER_PATH "/org/vmimaged/VMImage1/Manager"
#define MANAGER_IFACE "org.vmimaged.VMImage1.Manager"
#define IMAGE_IFACE "org.vmimaged.VMImage1.Image"
#define JOB_IFACE "org.vmimaged.VMImage1.Job"
#define IMAGES_PREFIX "/org/vmimaged/VMImage1/images/"
#define KiB 1024u

#define CRASH_IMPORTS 50
/* Hang detectors, far beyond what a loaded machine under ASan needs. */
#define CRASH_WAIT_SECONDS 60
#define CRASH_TOTAL_SECONDS 300

typedef struct {
	VmiTestBus *bus;
	GDBusConnection *connection;
	GSubprocess *daemon;
	char *cache_dir;
	char *config;
	GHashTable *ended; /* job path → "state error-name: message", from Completed */
	GHashTable *images; /* job path → the image in its Result, when it could be read */
	guint kills;
} Crash;

static const char *
vmimaged_path (void)
{
	const char *path = g_getenv ("VMI_TEST_VMIMAGED");

	return path != NULL ? path : VMI_TEST_VMIMAGED;
}

static gboolean
set_flag (gpointer user_data)
{
	*(gboolean *) user_data = TRUE;
	return G_SOURCE_REMOVE;
}

/* Runs the main context for ms milliseconds: signals keep arriving meanwhile. */
static void
run_for (guint ms)
{
	gboolean done = FALSE;

	g_timeout_add (ms, set_flag, &done);
	while (!done)
		g_main_context_iteration (NULL, TRUE);
}

/* The image path in a completed job's Result, or NULL when the daemon is gone already. */
static char *
job_image (GDBusConnection *connection, const char *job)
{
	g_autoptr (GVariant) reply = NULL;
	g_autoptr (GVariant) result = NULL;
	const char *image = NULL;

	reply = g_dbus_connection_call_sync (connection, BUS_NAME, job,
					     "org.freedesktop.DBus.Properties", "Get",
					     g_variant_new ("(ss)", JOB_IFACE, "Result"),
					     G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, -1,
					     NULL, NULL);
	if (reply == NULL)
		return NULL;
	g_variant_get (reply, "(v)", &result);
	g_assert_true (g_variant_lookup (result, "image", "&o", &image));
	return g_strdup (image);
}

static void
on_completed (GDBusConnection *connection, const char *sender, const char *path,
	      const char *iface, const char *signal, GVariant *params, gpointer user_data)
{
	Crash *c = user_data;
	const char *state, *error_name, *message;

	g_variant_get (params, "(&s&s&s)", &state, &error_name, &message);
	g_hash_table_insert (c->ended, g_strdup (path),
			     g_strdup_printf ("%s %s: %s", state, error_name, message));
	/* At once, while the daemon (and the job object) may still be there. */
	if (strcmp (state, "completed") == 0) {
		char *image = job_image (connection, path);

		if (image != NULL)
			g_hash_table_insert (c->images, g_strdup (path), image);
	}
}

static gboolean
name_has_owner (Crash *c)
{
	g_autoptr (GError) error = NULL;
	g_autoptr (GVariant) reply = NULL;
	gboolean owned = FALSE;

	reply = g_dbus_connection_call_sync (c->connection, "org.freedesktop.DBus",
					     "/org/freedesktop/DBus", "org.freedesktop.DBus",
					     "NameHasOwner", g_variant_new ("(s)", BUS_NAME),
					     G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, -1,
					     NULL, &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(b)", &owned);
	return owned;
}

/* Waits until the bus name is owned (or not); fails when the daemon exits first. */
static void
wait_name (Crash *c, gboolean owned)
{
	gint64 end = g_get_monotonic_time () + CRASH_WAIT_SECONDS * G_USEC_PER_SEC;

	while (name_has_owner (c) != owned) {
		if (owned && g_subprocess_get_identifier (c->daemon) == NULL)
			g_error ("vmimaged exited at start; see its messages above");
		if (g_get_monotonic_time () > end)
			g_error ("vmimaged did not %s the bus name within %d s",
				 owned ? "take" : "release", CRASH_WAIT_SECONDS);
		run_for (2);
	}
	/* Whatever the daemon sent before it went is in our queue now: take it. */
	while (g_main_context_iteration (NULL, FALSE))
		;
}

static void
daemon_start (Crash *c)
{
	g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
	g_autoptr (GError) error = NULL;

	g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS",
				      vmi_test_bus_get_address (c->bus), TRUE);
	g_subprocess_launcher_set_child_setup (launcher, vmi_test_bus_child_setup, NULL, NULL);
	/* Anything it prints belongs in the log, not in the TAP stream on stdout. */
	g_subprocess_launcher_take_stdout_fd (launcher, dup (STDERR_FILENO));
	c->daemon = g_subprocess_launcher_spawn (launcher, &error, vmimaged_path (), "--session",
						 "--plugin-dir", g_getenv ("VMI_TEST_PLUGIN_DIR"),
						 "--cache-dir", c->cache_dir, "--config",
						 c->config, NULL);
	g_assert_no_error (error);
	/* The cache is opened, and recovered, before the daemon asks for its name. */
	wait_name (c, TRUE);
	/* Job paths start again in a new daemon. */
	g_hash_table_remove_all (c->ended);
	g_hash_table_remove_all (c->images);
}

static void
daemon_kill (Crash *c)
{
	g_autoptr (GError) error = NULL;

	g_subprocess_send_signal (c->daemon, SIGKILL);
	g_subprocess_wait (c->daemon, NULL, &error);
	g_assert_no_error (error);
	g_assert_true (g_subprocess_get_if_signaled (c->daemon));
	g_assert_cmpint (g_subprocess_get_term_sig (c->daemon), ==, SIGKILL);
	g_clear_object (&c->daemon);
	wait_name (c, FALSE);
	c->kills++;
}

/* SIGTERM: a clean exit, status 0 (a sanitizer's report would fail it). */
static void
daemon_stop (Crash *c)
{
	g_autoptr (GError) error = NULL;

	g_subprocess_send_signal (c->daemon, SIGTERM);
	g_subprocess_wait (c->daemon, NULL, &error);
	g_assert_no_error (error);
	g_assert_true (g_subprocess_get_if_exited (c->daemon));
	g_assert_cmpint (g_subprocess_get_exit_status (c->daemon), ==, 0);
	g_clear_object (&c->daemon);
}

/* The job's "state error: message" once it ended, or NULL. */
static const char *
job_end (Crash *c, const char *job)
{
	return g_hash_table_lookup (c->ended, job);
}

static const char *
job_wait (Crash *c, const char *job)
{
	gint64 end = g_get_monotonic_time () + CRASH_WAIT_SECONDS * G_USEC_PER_SEC;

	while (job_end (c, job) == NULL) {
		if (g_get_monotonic_time () > end)
			g_error ("job %s did not end within %d s", job, CRASH_WAIT_SECONDS);
		run_for (1);
	}
	return job_end (c, job);
}

/* Image object path → Name, from GetManagedObjects. */
static GHashTable *
listed_images (Crash *c)
{
	g_autoptr (GError) error = NULL;
	g_autoptr (GVariant) reply = NULL;
	g_autoptr (GVariantIter) objects = NULL;
	GHashTable *images = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
	const char *path;
	GVariant *ifaces;

	reply = g_dbus_connection_call_sync (c->connection, BUS_NAME, ROOT_PATH,
					     "org.freedesktop.DBus.ObjectManager",
					     "GetManagedObjects", NULL,
					     G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
					     G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(a{oa{sa{sv}}})", &objects);
	while (g_variant_iter_next (objects, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr (GVariant) owned = ifaces;
		g_autoptr (GVariant) props = g_variant_lookup_value (owned, IMAGE_IFACE, NULL);
		const char *name = NULL;

		if (props == NULL)
			continue;
		g_assert_true (g_variant_lookup (props, "Name", "&s", &name));
		g_hash_table_insert (images, g_strdup (path), g_strdup (name));
	}
	return images;
}

static void
assert_verifies (Crash *c, const char *image)
{
	g_autoptr (GError) error = NULL;
	g_autoptr (GVariant) reply = NULL;
	const char *job;
	const char *end;

	reply = g_dbus_connection_call_sync (c->connection, BUS_NAME, image, IMAGE_IFACE, "Verify",
					     NULL, G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE,
					     -1, NULL, &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(&o)", &job);
	end = job_wait (c, job);
	if (!g_str_has_prefix (end, "completed "))
		g_error ("verification of %s: %s", image, end);
}

/* Only .lock and the files of listed images: no .tmp-*, no orphan. */
static void
assert_clean_dir (Crash *c, GHashTable *listed)
{
	g_autoptr (GDir) dir = g_dir_open (c->cache_dir, 0, NULL);
	g_autoptr (GHashTable) ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter iter;
	gpointer path;
	const char *name;
	guint files = 0;

	g_hash_table_iter_init (&iter, listed);
	while (g_hash_table_iter_next (&iter, &path, NULL))
		g_hash_table_add (ids, g_strdup ((const char *) path + strlen (IMAGES_PREFIX)));
	g_assert_nonnull (dir);
	while ((name = g_dir_read_name (dir)) != NULL) {
		g_autofree char *id = g_strndup (name, strcspn (name, "."));

		if (strcmp (name, ".lock") == 0)
			continue;
		if (g_str_has_prefix (name, ".tmp-"))
			g_error ("a temporary file remains in the cache: %s", name);
		g_assert_true (g_str_has_suffix (name, ".img") || g_str_has_suffix (name, ".entry"));
		if (!g_hash_table_contains (ids, id))
			g_error ("%s in the cache belongs to no listed image", name);
		files++;
	}
	g_assert_cmpuint (files, ==, 2 * g_hash_table_size (listed));
}

/*
 * The invariants after a restart: completed ⊆ listed ⊆ completed ∪ maybe; each listed image
 * not verified yet is verified now (an entry is never rewritten in place, so once is enough
 * until the final pass). Returns how many listed images were "maybe"s.
 */
static guint
check_cache (Crash *c, GHashTable *completed, GHashTable *maybe, GHashTable *verified)
{
	g_autoptr (GHashTable) listed = listed_images (c);
	g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
	GHashTableIter iter;
	gpointer path, name;
	guint from_maybe = 0;

	g_hash_table_iter_init (&iter, listed);
	while (g_hash_table_iter_next (&iter, &path, &name)) {
		g_assert_false (g_hash_table_contains (names, name));
		g_hash_table_add (names, name);
		if (g_hash_table_contains (maybe, name))
			from_maybe++;
		else if (!g_hash_table_contains (completed, name))
			g_error ("%s (%s) is listed but its import was never started or "
				 "failed", (const char *) name, (const char *) path);
		if (!g_hash_table_contains (verified, path)) {
			assert_verifies (c, path);
			g_hash_table_add (verified, g_strdup (path));
		}
	}
	g_hash_table_iter_init (&iter, completed);
	while (g_hash_table_iter_next (&iter, &name, &path)) {
		const char *listed_name = g_hash_table_lookup (listed, path);

		if (!g_hash_table_contains (names, name))
			g_error ("the import of %s completed, but it is not listed",
				 (const char *) name);
		if (*(const char *) path != '\0' && g_strcmp0 (listed_name, name) != 0)
			g_error ("the import of %s completed as %s, which is listed as %s",
				 (const char *) name, (const char *) path, listed_name);
	}
	assert_clean_dir (c, listed);
	return from_maybe;
}

/* Small distinct images: half raw, half qcow2, 192-388 KiB of virtual disk. */
static char *
make_source (const char *dir, guint i)
{
	g_autofree char *raw = g_strdup_printf ("%s/src-%02u.raw", dir, i);
	g_autofree char *qcow2 = NULL;

	vmi_test_make_pattern_image (raw, 192 * KiB + i * 4 * KiB, 6000 + i);
	if (i % 2 == 0)
		return g_steal_pointer (&raw);
	qcow2 = g_strdup_printf ("%s/src-%02u.qcow2", dir, i);
	vmi_test_qemu_img ("convert -q -f raw -O qcow2 '%s' '%s'", raw, qcow2);
	return g_steal_pointer (&qcow2);
}

static char *
import_start (Crash *c, const char *source, const char *name, const char *format)
{
	g_autoptr (GError) error = NULL;
	g_autoptr (GVariant) reply = NULL;
	GVariantBuilder options;
	char *job = NULL;

	g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add (&options, "{sv}", "name", g_variant_new_string (name));
	g_variant_builder_add (&options, "{sv}", "format", g_variant_new_string (format));
	reply = g_dbus_connection_call_sync (c->connection, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
					     "CacheImport",
					     g_variant_new ("(sa{sv})", source, &options),
					     G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1,
					     NULL, &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(o)", &job);
	return job;
}

static void
test_sigkill_imports (void)
{
	Crash c = { 0 };
	g_autofree char *src_dir = vmi_test_tmpdir_new ();
	g_autoptr (GHashTable) completed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
								   g_free);
	g_autoptr (GHashTable) maybe = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr (GHashTable) verified = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
								  NULL);
	gint64 start = g_get_monotonic_time ();
	gint64 import_time = 0; /* µs, the mean of the imports that ran to their end */
	guint n_timed = 0, killed_running = 0, listed_maybe = 0;
	guint signal_id;

	if (!vmi_test_require_qemu_img ())
		return;
	c.bus = vmi_test_bus_new ();
	c.connection = vmi_test_bus_get_connection (c.bus);
	/* The bus's own daemon goes; ours restarts on the same folder as often as we kill it. */
	vmi_test_bus_stop_daemon (c.bus);
	c.cache_dir = g_build_filename (vmi_test_bus_get_dir (c.bus), "cache", NULL);
	c.config = g_build_filename (vmi_test_bus_get_dir (c.bus), "vmimaged.conf", NULL);
	c.ended = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
	c.images = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
	signal_id = g_dbus_connection_signal_subscribe (c.connection, NULL, JOB_IFACE, "Completed",
							NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
							on_completed, &c, NULL);
	daemon_start (&c);

	for (guint i = 0; i < CRASH_IMPORTS; i++) {
		g_autofree char *source = make_source (src_dir, i);
		g_autofree char *name = g_strdup_printf ("crash-%02u", i);
		g_autofree char *job = NULL;
		/* Stored as qcow2 mostly, as raw every third: both formats' writers get killed. */
		const char *format = i % 3 == 2 ? "raw" : "qcow2";
		/* The first imports run undisturbed, to learn how long one takes. */
		gboolean kill_it = i >= 3 && g_test_rand_int_range (0, 100) < 45;
		gint64 began = g_get_monotonic_time ();
		g_autofree char *end = NULL;
		g_autofree char *image = NULL;

		g_assert_cmpint (g_get_monotonic_time () - start, <,
				 CRASH_TOTAL_SECONDS * G_USEC_PER_SEC);
		job = import_start (&c, source, name, format);
		if (kill_it) {
			/* Anywhere from right after the reply to half again the usual import
			 * time: before, during and after the commit. */
			gint64 span = MAX (import_time * 3 / 2, 2000);
			guint delay = (guint) g_test_rand_int_range (0, (gint32) (span / 1000) + 1);

			if (delay > 0)
				run_for (delay);
			daemon_kill (&c);
			/* Copied: the table is emptied at the restart. */
			end = g_strdup (job_end (&c, job));
			image = g_strdup (g_hash_table_lookup (c.images, job));
			if (end == NULL) {
				/* Killed before it said it completed: it may or may not have. */
				g_hash_table_add (maybe, g_strdup (name));
				killed_running++;
			}
			daemon_start (&c);
		} else {
			end = g_strdup (job_wait (&c, job));
			image = g_strdup (g_hash_table_lookup (c.images, job));
			g_assert_nonnull (image);
			import_time = (import_time * n_timed + (g_get_monotonic_time () - began)) /
				      (n_timed + 1);
			n_timed++;
		}
		if (end != NULL) {
			if (!g_str_has_prefix (end, "completed "))
				g_error ("the import of %s: %s", name, end);
			/* The image path is unknown ("") when the kill came between the signal and
			 * our look at the job's Result. */
			g_hash_table_insert (completed, g_strdup (name),
					     g_strdup (image != NULL ? image : ""));
		}
		if (kill_it)
			check_cache (&c, completed, maybe, verified);
	}

	/* The end: the same checks, and every image verified once more. */
	g_hash_table_remove_all (verified);
	listed_maybe = check_cache (&c, completed, maybe, verified);
	g_assert_cmpuint (g_hash_table_size (verified), >=, g_hash_table_size (completed));
	g_assert_cmpuint (g_hash_table_size (completed) + killed_running, ==, CRASH_IMPORTS);
	/* The seeds must make the test kill, or it tests nothing. */
	g_assert_cmpuint (c.kills, >=, 5);
	g_test_message ("%u imports, %u SIGKILLs (%u while an import ran; %u of those had committed "
			"it unreported), %u images listed, mean import %" G_GINT64_FORMAT " ms, "
			"%" G_GINT64_FORMAT " ms in all",
			CRASH_IMPORTS, c.kills, killed_running, listed_maybe,
			g_hash_table_size (verified), import_time / 1000,
			(g_get_monotonic_time () - start) / 1000);

	daemon_stop (&c);
	g_dbus_connection_signal_unsubscribe (c.connection, signal_id);
	g_hash_table_unref (c.ended);
	g_hash_table_unref (c.images);
	g_free (c.cache_dir);
	g_free (c.config);
	vmi_test_bus_free (c.bus);
	vmi_test_tmpdir_free (g_steal_pointer (&src_dir));
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/dbus-cache-crash/sigkill-imports", test_sigkill_imports);
	return g_test_run ();
}
