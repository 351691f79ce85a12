/*
 * Check, CheckFd, Compare and Measure over D-Bus: the built daemon on a private bus, its answers
 * against qemu-img and sha256sum, and the named errors of bad calls.
 */
#include "config.h"

#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <string.h>
#include <unistd.h>

#include "vmi-test-bus.h"
#include "vmi-test-util.h"

#define BUS_NAME "org.vmimaged.VMImage1"
#define MANAGER_PATH "/org/vmimaged/VMImage1/Manager"
#define MANAGER_IFACE "org.vmimaged.VMImage1.Manager"
#define JOB_IFACE "org.vmimaged.VMImage1.Job"
#define ERROR_PREFIX "org.vmimaged.VMImage1.Error."

static VmiTestBus *bus;

typedef struct {
	char *dir;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
	f->dir = vmi_test_tmpdir_new ();
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
	g_clear_pointer (&f->dir, vmi_test_tmpdir_free);
}

static GVariant *
call (const char *path, const char *iface, const char *method, GVariant *params,
      const char *reply_type, GError **error)
{
	return g_dbus_connection_call_sync (vmi_test_bus_get_connection (bus), BUS_NAME, path, iface,
					    method, params, G_VARIANT_TYPE (reply_type),
					    G_DBUS_CALL_FLAGS_NONE, 120000, NULL, error);
}

/* A floating a{sv} parsed from text, for g_variant_new's "@a{sv}". */
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

static char *
remote_error (const GError *error)
{
	g_assert_nonnull (error);
	return g_dbus_error_get_remote_error (error);
}

static void
assert_dbus_error (const GError *error, const char *name)
{
	g_autofree char *remote = remote_error (error);
	g_autofree char *expected = g_strconcat (ERROR_PREFIX, name, NULL);

	if (g_strcmp0 (remote, expected) != 0)
		g_error ("expected %s, got %s: %s", expected, remote, error->message);
}

static GVariant *
get_property (const char *path, const char *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = call (path, "org.freedesktop.DBus.Properties", "Get",
					  g_variant_new ("(ss)", JOB_IFACE, name), "(v)", &error);
	GVariant *value = NULL;

	g_assert_no_error (error);
	g_variant_get (reply, "(v)", &value);
	return value;
}

static char *
get_string (const char *path, const char *name)
{
	g_autoptr(GVariant) value = get_property (path, name);

	return g_variant_dup_string (value, NULL);
}

/* Waits for the job to complete and returns its Result; fails the test if it does not. */
static GVariant *
job_result (const char *job)
{
	gint64 end = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;

	for (;;) {
		g_autofree char *state = get_string (job, "State");

		if (g_strcmp0 (state, "completed") == 0)
			break;
		if (g_strcmp0 (state, "queued") != 0 && g_strcmp0 (state, "running") != 0) {
			g_autofree char *name = get_string (job, "Error");
			g_autofree char *message = get_string (job, "ErrorMessage");

			g_error ("job %s: %s %s %s", job, state, name, message);
		}
		if (g_get_monotonic_time () > end)
			g_error ("job %s did not end within two minutes", job);
		g_usleep (10000);
	}
	return get_property (job, "Result");
}

static char *
start_job (const char *method, GVariant *params, GError **error)
{
	g_autoptr(GVariant) reply = call (MANAGER_PATH, MANAGER_IFACE, method, params, "(o)", error);
	char *job = NULL;

	if (reply == NULL)
		return NULL;
	g_variant_get (reply, "(o)", &job);
	return job;
}

static guint64
result_u64 (GVariant *result, const char *key)
{
	guint64 value = 0;

	if (!g_variant_lookup (result, key, "t", &value))
		g_error ("no %s in %s", key, g_variant_print (result, TRUE));
	return value;
}

static char *
make_qcow2 (const char *dir, const char *name, guint32 seed, char **raw_out)
{
	g_autofree char *raw = g_build_filename (dir, "pattern.raw", NULL);
	char *path = g_build_filename (dir, name, NULL);

	vmi_test_make_pattern_image (raw, 4 * 1024 * 1024, seed);
	vmi_test_qemu_img ("convert -f raw -O qcow2 '%s' '%s'", raw, path);
	if (raw_out != NULL)
		*raw_out = g_steal_pointer (&raw);
	return path;
}

static char *
tool_digest (const char *tool, const char *path)
{
	g_autofree char *out = NULL;

	g_assert_cmpint (vmi_test_sh (&out, "%s '%s'", tool, path), ==, 0);
	return g_strndup (out, strcspn (out, " "));
}

static void
test_check (Fixture *f, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autofree char *job = NULL;
	g_autofree char *operation = NULL;
	g_autofree char *sha = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;
	const char *value = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (f->dir, "good.qcow2", 1, NULL);
	job = start_job ("Check",
			 g_variant_new ("(s@a{sv})", path,
					options ("{'sha256': <true>, 'content-sha256': <true>}")),
			 &error);
	g_assert_no_error (error);
	operation = get_string (job, "Operation");
	g_assert_cmpstr (operation, ==, "check");
	result = job_result (job);
	g_assert_cmpuint (result_u64 (result, "corruptions"), ==, 0);
	g_assert_cmpuint (result_u64 (result, "leaks"), ==, 0);
	g_assert_cmpuint (result_u64 (result, "check-errors"), ==, 0);
	sha = tool_digest ("sha256sum", path);
	g_assert_true (g_variant_lookup (result, "sha256", "&s", &value));
	g_assert_cmpstr (value, ==, sha);
	g_assert_true (g_variant_lookup (result, "content-sha256", "&s", &value));
	g_assert_cmpuint (strlen (value), ==, 64);
}

/* A refcount of zero on a used cluster: the corruptions qemu-img check counts. */
static void
test_check_corrupt (Fixture *f, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autofree char *job = NULL;
	g_autofree char *out = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;
	guint64 l1, l2, cluster, refblock;
	guint64 be = 0;
	guint16 zero = 0;
	gboolean checked = FALSE;
	int status;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (f->dir, "bad.qcow2", 2, NULL);
	vmi_test_read_bytes (path, 40, &be, 8);
	l1 = GUINT64_FROM_BE (be);
	vmi_test_read_bytes (path, l1, &be, 8);
	l2 = GUINT64_FROM_BE (be) & G_GUINT64_CONSTANT (0x00fffffffffffe00);
	vmi_test_read_bytes (path, l2, &be, 8);
	cluster = (GUINT64_FROM_BE (be) & G_GUINT64_CONSTANT (0x00fffffffffffe00)) >> 16;
	vmi_test_read_bytes (path, 48, &be, 8);
	vmi_test_read_bytes (path, GUINT64_FROM_BE (be), &be, 8);
	refblock = GUINT64_FROM_BE (be);
	vmi_test_write_bytes (path, refblock + 2 * cluster, &zero, 2);
	status = vmi_test_sh (&out, "qemu-img check -q -f qcow2 '%s'", path);
	g_assert_cmpint (status, ==, 2);

	job = start_job ("Check", g_variant_new ("(s@a{sv})", path, options ("{}")), &error);
	g_assert_no_error (error);
	result = job_result (job);
	g_assert_true (g_variant_lookup (result, "consistency-checked", "b", &checked));
	g_assert_true (checked);
	g_assert_cmpuint (result_u64 (result, "corruptions"), >, 0);
}

static void
test_check_fd (Fixture *f, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autofree char *md5 = NULL;
	g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;
	const char *job = NULL;
	const char *value = NULL;
	int fd;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (f->dir, "good.qcow2", 3, NULL);
	fd = open (path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (g_unix_fd_list_append (fds, fd, &error), ==, 0);
	close (fd);
	reply = g_dbus_connection_call_with_unix_fd_list_sync (
		vmi_test_bus_get_connection (bus), BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "CheckFd",
		g_variant_new ("(h@a{sv})", 0, options ("{'md5': <true>}")), G_VARIANT_TYPE ("(o)"),
		G_DBUS_CALL_FLAGS_NONE, 120000, fds, NULL, NULL, &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(&o)", &job);
	result = job_result (job);
	md5 = tool_digest ("md5sum", path);
	g_assert_true (g_variant_lookup (result, "md5", "&s", &value));
	g_assert_cmpstr (value, ==, md5);
	g_assert_cmpuint (result_u64 (result, "corruptions"), ==, 0);
}

/* A missing file is the error Inspect gives; a bad option is InvalidArgument. */
static void
test_check_errors (Fixture *f, gconstpointer data)
{
	g_autofree char *missing = g_build_filename (f->dir, "missing.qcow2", NULL);
	g_autofree char *raw = g_build_filename (f->dir, "disk.raw", NULL);
	g_autofree char *inspect_error = NULL;
	g_autofree char *check_error = NULL;
	g_autofree char *job = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;

	reply = call (MANAGER_PATH, MANAGER_IFACE, "Inspect",
		      g_variant_new ("(s@a{sv})", missing, options ("{}")), "(a{sv})", &error);
	g_assert_null (reply);
	inspect_error = remote_error (error);
	g_clear_error (&error);
	job = start_job ("Check", g_variant_new ("(s@a{sv})", missing, options ("{}")), &error);
	g_assert_null (job);
	check_error = remote_error (error);
	g_assert_cmpstr (check_error, ==, inspect_error);
	g_clear_error (&error);

	job = start_job ("Compare",
			 g_variant_new ("(ss@a{sv})", missing, missing, options ("{}")), &error);
	g_assert_null (job);
	g_free (check_error);
	check_error = remote_error (error);
	g_assert_cmpstr (check_error, ==, inspect_error);
	g_clear_error (&error);

	vmi_test_make_pattern_image (raw, 65536, 1);
	job = start_job ("Check", g_variant_new ("(s@a{sv})", raw, options ("{'sha1': <true>}")),
			 &error);
	g_assert_null (job);
	assert_dbus_error (error, "InvalidArgument");
	g_clear_error (&error);
	job = start_job ("Compare",
			 g_variant_new ("(ss@a{sv})", raw, raw, options ("{'strict': <'no'>}")),
			 &error);
	g_assert_null (job);
	assert_dbus_error (error, "InvalidArgument");
	g_clear_error (&error);
	/* A member of an image that is no container: refused when the job is asked for. */
	job = start_job ("Compare", g_variant_new ("(ss@a{sv})", raw, raw,
						   options ("{'member-b': <'kernel'>}")),
			 &error);
	g_assert_null (job);
	assert_dbus_error (error, "InvalidArgument");
	g_clear_error (&error);
	job = start_job ("Check", g_variant_new ("(s@a{sv})", raw, options ("{'disk': <uint64 1>}")),
			 &error);
	g_assert_null (job);
	assert_dbus_error (error, "InvalidArgument");
	g_clear_error (&error);
	job = start_job ("Check", g_variant_new ("(s@a{sv})", "relative.raw", options ("{}")),
			 &error);
	g_assert_null (job);
	assert_dbus_error (error, "InvalidArgument");
}

static void
test_compare (Fixture *f, gconstpointer data)
{
	g_autofree char *raw = NULL;
	g_autofree char *qcow2 = NULL;
	g_autofree char *job = NULL;
	g_autofree char *job2 = NULL;
	g_autofree char *operation = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GVariant) result2 = NULL;
	g_autoptr(GError) error = NULL;
	gboolean identical = FALSE;
	guint64 where = 0;

	if (!vmi_test_require_qemu_img ())
		return;
	qcow2 = make_qcow2 (f->dir, "p.qcow2", 4, &raw);
	job = start_job ("Compare", g_variant_new ("(ss@a{sv})", raw, qcow2, options ("{}")),
			 &error);
	g_assert_no_error (error);
	operation = get_string (job, "Operation");
	g_assert_cmpstr (operation, ==, "compare");
	result = job_result (job);
	g_assert_true (g_variant_lookup (result, "identical", "b", &identical));
	g_assert_true (identical);
	g_assert_false (g_variant_lookup (result, "first-difference", "t", &where));
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", qcow2, "qcow2"));

	vmi_test_write_bytes (raw, 3 * 65536 + 1234, "?", 1);
	job2 = start_job ("Compare", g_variant_new ("(ss@a{sv})", qcow2, raw,
						    options ("{'format-b': <'raw'>}")),
			  &error);
	g_assert_no_error (error);
	result2 = job_result (job2);
	g_assert_true (g_variant_lookup (result2, "identical", "b", &identical));
	g_assert_false (identical);
	g_assert_true (g_variant_lookup (result2, "first-difference", "t", &where));
	g_assert_cmpuint (where, ==, 3 * 65536 + 1234);
	g_assert_false (vmi_test_qemu_img_compare (raw, "raw", qcow2, "qcow2"));
}

static void
test_measure (Fixture *f, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (f->dir, "disk.raw", NULL);
	g_autofree char *out = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(JsonParser) parser = json_parser_new ();
	g_autoptr(GError) error = NULL;
	JsonObject *qemu;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (raw, 4 * 1024 * 1024, 5);
	reply = call (MANAGER_PATH, MANAGER_IFACE, "Measure",
		      g_variant_new ("(ss@a{sv})", raw, "qcow2",
				     options ("{'source-format': <'raw'>, 'cluster-size': <4096>}")),
		      "(a{sv})", &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(@a{sv})", &result);
	g_assert_cmpint (vmi_test_sh (&out, "qemu-img measure --output=json -f raw -O qcow2 "
					    "-o cluster_size=4096 '%s'",
				      raw),
			 ==, 0);
	g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
	qemu = json_node_get_object (json_parser_get_root (parser));
	g_assert_cmpuint (result_u64 (result, "required"), ==, vmi_test_json_u64 (qemu, "required"));
	g_assert_cmpuint (result_u64 (result, "fully-allocated"), ==,
			  vmi_test_json_u64 (qemu, "fully-allocated"));
}

static void
test_measure_errors (Fixture *f, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (f->dir, "disk.raw", NULL);
	g_autofree char *missing = g_build_filename (f->dir, "missing.raw", NULL);
	g_autofree char *inspect_error = NULL;
	g_autofree char *measure_error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;

	vmi_test_make_pattern_image (raw, 65536, 5);
	reply = call (MANAGER_PATH, MANAGER_IFACE, "Measure",
		      g_variant_new ("(ss@a{sv})", raw, "no-such-format", options ("{}")),
		      "(a{sv})", &error);
	g_assert_null (reply);
	assert_dbus_error (error, "UnknownFormat");
	g_clear_error (&error);
	reply = call (MANAGER_PATH, MANAGER_IFACE, "Measure",
		      g_variant_new ("(ss@a{sv})", raw, "qcow2", options ("{'cluster_size': <4096>}")),
		      "(a{sv})", &error);
	g_assert_null (reply);
	assert_dbus_error (error, "InvalidArgument");
	g_clear_error (&error);

	reply = call (MANAGER_PATH, MANAGER_IFACE, "Inspect",
		      g_variant_new ("(s@a{sv})", missing, options ("{}")), "(a{sv})", &error);
	g_assert_null (reply);
	inspect_error = remote_error (error);
	g_clear_error (&error);
	reply = call (MANAGER_PATH, MANAGER_IFACE, "Measure",
		      g_variant_new ("(ss@a{sv})", missing, "qcow2", options ("{}")), "(a{sv})",
		      &error);
	g_assert_null (reply);
	measure_error = remote_error (error);
	g_assert_cmpstr (measure_error, ==, inspect_error);
}

int
main (int argc, char **argv)
{
	int ret;

	g_test_init (&argc, &argv, NULL);
	bus = vmi_test_bus_new ();
	g_test_add ("/dbus-check/check", Fixture, NULL, fixture_set_up, test_check,
		    fixture_tear_down);
	g_test_add ("/dbus-check/check-corrupt", Fixture, NULL, fixture_set_up, test_check_corrupt,
		    fixture_tear_down);
	g_test_add ("/dbus-check/check-fd", Fixture, NULL, fixture_set_up, test_check_fd,
		    fixture_tear_down);
	g_test_add ("/dbus-check/errors", Fixture, NULL, fixture_set_up, test_check_errors,
		    fixture_tear_down);
	g_test_add ("/dbus-check/compare", Fixture, NULL, fixture_set_up, test_compare,
		    fixture_tear_down);
	g_test_add ("/dbus-check/measure", Fixture, NULL, fixture_set_up, test_measure,
		    fixture_tear_down);
	g_test_add ("/dbus-check/measure-errors", Fixture, NULL, fixture_set_up,
		    test_measure_errors, fixture_tear_down);
	ret = g_test_run ();
	vmi_test_bus_free (bus);
	return ret;
}
