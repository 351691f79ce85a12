/*
 * vmimagectl end to end: the built client against the built daemon on a private bus, with
 * qemu-img as the oracle for what the images are.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmi-test-bus.h"
#include "vmi-test-util.h"

/* Longer than any command here needs, short of meson's own timeout. */
#define CTL_TIMEOUT_SECONDS 60

typedef struct {
	VmiTestBus *bus;
	char *dir;
} Fixture;

typedef struct {
	int status; /* exit status, or 128 + signal when killed */
	char *out;
	char *err;
} CtlResult;

static void
ctl_result_free (CtlResult *result)
{
	g_free (result->out);
	g_free (result->err);
	g_free (result);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CtlResult, ctl_result_free)

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
	f->bus = vmi_test_bus_new ();
	f->dir = vmi_test_tmpdir_new ();
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
	g_clear_pointer (&f->bus, vmi_test_bus_free);
	g_clear_pointer (&f->dir, vmi_test_tmpdir_free);
}

static const char *
vmimagectl_path (void)
{
	const char *path = g_getenv ("VMI_TEST_VMIMAGECTL");

	return path != NULL ? path : VMI_TEST_VMIMAGECTL;
}

static GSubprocessLauncher *
ctl_launcher (Fixture *f, GSubprocessFlags flags)
{
	GSubprocessLauncher *launcher = g_subprocess_launcher_new (flags);

	g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS",
				      vmi_test_bus_get_address (f->bus), TRUE);
	/* Plain, untranslated output; and no system bus to fall back to by mistake. */
	g_subprocess_launcher_setenv (launcher, "LC_ALL", "C.UTF-8", TRUE);
	g_subprocess_launcher_setenv (launcher, "DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent",
				      TRUE);
	g_subprocess_launcher_set_cwd (launcher, f->dir);
	g_subprocess_launcher_set_child_setup (launcher, vmi_test_bus_child_setup, NULL, NULL);
	return launcher;
}

static int
exit_status_of (GSubprocess *process)
{
	if (g_subprocess_get_if_signaled (process))
		return 128 + g_subprocess_get_term_sig (process);
	return g_subprocess_get_exit_status (process);
}

static void
on_communicated (GObject *object, GAsyncResult *result, gpointer user_data)
{
	GAsyncResult **out = user_data;

	*out = g_object_ref (result);
}

static gboolean
set_flag (gpointer user_data)
{
	*(gboolean *) user_data = TRUE;
	return G_SOURCE_REMOVE;
}

/* Collects the rest of a started vmimagectl's output and its exit status, within a time limit. */
static CtlResult *
ctl_finish (GSubprocess *process)
{
	CtlResult *result = g_new0 (CtlResult, 1);
	g_autoptr (GAsyncResult) async_result = NULL;
	g_autoptr (GError) error = NULL;
	gboolean timed_out = FALSE;
	guint timeout = g_timeout_add_seconds (CTL_TIMEOUT_SECONDS, set_flag, &timed_out);

	g_subprocess_communicate_utf8_async (process, NULL, NULL, on_communicated, &async_result);
	while (async_result == NULL && !timed_out)
		g_main_context_iteration (NULL, TRUE);
	if (timed_out) {
		g_subprocess_force_exit (process);
		g_error ("vmimagectl did not end within %d s", CTL_TIMEOUT_SECONDS);
	}
	g_source_remove (timeout);
	g_subprocess_communicate_utf8_finish (process, async_result, &result->out, &result->err,
					      &error);
	g_assert_no_error (error);
	g_subprocess_wait (process, NULL, &error);
	g_assert_no_error (error);
	result->status = exit_status_of (process);
	if (g_test_verbose ())
		g_printerr ("# exit %d\n# stdout: %s\n# stderr: %s\n", result->status, result->out,
			    result->err);
	return result;
}

/* Runs vmimagectl --session ARGS... in the fixture's folder. */
static CtlResult *
run_ctl (Fixture *f, ...)
{
	g_autoptr (GPtrArray) argv = g_ptr_array_new ();
	g_autoptr (GSubprocessLauncher) launcher = NULL;
	g_autoptr (GSubprocess) process = NULL;
	g_autoptr (GError) error = NULL;
	va_list args;
	const char *arg;

	g_ptr_array_add (argv, (gpointer) vmimagectl_path ());
	g_ptr_array_add (argv, (gpointer) "--session");
	va_start (args, f);
	while ((arg = va_arg (args, const char *)) != NULL)
		g_ptr_array_add (argv, (gpointer) arg);
	va_end (args);
	g_ptr_array_add (argv, NULL);

	launcher = ctl_launcher (f, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	process = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
	g_assert_no_error (error);
	return ctl_finish (process);
}

static char *
make_qcow2 (Fixture *f, const char *name, guint64 size, guint32 seed)
{
	g_autofree char *raw = g_build_filename (f->dir, "pattern.raw", NULL);
	char *path = g_build_filename (f->dir, name, NULL);
	const char *argv[] = { "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, path,
			       NULL };
	g_autofree char *out = NULL;

	vmi_test_make_pattern_image (raw, size, seed);
	out = vmi_test_run (argv);
	g_unlink (raw);
	return path;
}

static gint64
json_int (JsonObject *object, const char *member)
{
	g_assert_true (json_object_has_member (object, member));
	return json_object_get_int_member (object, member);
}

static void
test_inspect_human (Fixture *f, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autoptr (JsonObject) qemu = NULL;
	g_autoptr (CtlResult) result = NULL;
	g_autofree char *line = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (f, "disk.qcow2", 5 * 1024 * 1024 + 4096, 1);
	qemu = vmi_test_qemu_img_info (path, NULL);

	result = run_ctl (f, "inspect", path, NULL);
	g_assert_cmpint (result->status, ==, 0);
	g_assert_cmpstr (result->err, ==, "");
	line = g_strdup_printf ("image: %s\n", path);
	g_assert_true (g_str_has_prefix (result->out, line));
	g_assert_nonnull (strstr (result->out, "\nfile format: qcow2\n"));
	g_clear_pointer (&line, g_free);
	/* 5 MiB + 4 KiB: qemu-img's own rendering is "5 MiB", with the exact byte count after. */
	line = g_strdup_printf ("\nvirtual size: 5 MiB (%" G_GINT64_FORMAT " bytes)\n",
				json_int (qemu, "virtual-size"));
	g_assert_nonnull (strstr (result->out, line));
	g_clear_pointer (&line, g_free);
	line = g_strdup_printf ("\ncluster_size: %" G_GINT64_FORMAT "\n",
				json_int (qemu, "cluster-size"));
	g_assert_nonnull (strstr (result->out, line));
	g_assert_nonnull (strstr (result->out, "\nFormat specific information:\n"));
	g_assert_nonnull (strstr (result->out, "\n    compat: 1.1\n"));
	g_assert_true (g_str_has_suffix (result->out, "\nsafe: yes\n"));
}

static gint64
file_size (const char *path)
{
	GStatBuf st;

	g_assert_cmpint (g_stat (path, &st), ==, 0);
	return st.st_size;
}

static void
test_inspect_json (Fixture *f, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autoptr (JsonObject) qemu = NULL;
	g_autoptr (CtlResult) result = NULL;
	g_autoptr (JsonParser) parser = json_parser_new ();
	g_autoptr (GError) error = NULL;
	JsonObject *info, *specific, *qemu_specific;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (f, "disk.qcow2", 3 * 1024 * 1024, 2);
	qemu = vmi_test_qemu_img_info (path, NULL);
	qemu_specific = json_object_get_object_member (
		json_object_get_object_member (qemu, "format-specific"), "data");

	/* A relative path: the client makes it absolute against its own folder. */
	result = run_ctl (f, "inspect", "--json", "disk.qcow2", NULL);
	g_assert_cmpint (result->status, ==, 0);
	json_parser_load_from_data (parser, result->out, -1, &error);
	g_assert_no_error (error);
	info = json_node_get_object (json_parser_get_root (parser));
	g_assert_nonnull (info);
	g_assert_cmpstr (json_object_get_string_member (info, "format"), ==, "qcow2");
	g_assert_cmpint (json_int (info, "virtual-size"), ==, json_int (qemu, "virtual-size"));
	g_assert_cmpint (json_int (info, "cluster-size"), ==, json_int (qemu, "cluster-size"));
	g_assert_cmpint (json_int (info, "file-size"), ==, file_size (path));
	g_assert_true (json_object_get_boolean_member (info, "safe"));
	g_assert_cmpuint (json_array_get_length (json_object_get_array_member (info,
									       "unsafe-reasons")),
			  ==, 0);
	specific = json_object_get_object_member (info, "format-specific");
	g_assert_nonnull (specific);
	g_assert_cmpstr (json_object_get_string_member (specific, "compat"), ==,
			 json_object_get_string_member (qemu_specific, "compat"));
	g_assert_cmpint (json_int (specific, "refcount-bits"), ==,
			 json_int (qemu_specific, "refcount-bits"));
}

static void
test_inspect_unsafe (Fixture *f, gconstpointer data)
{
	g_autofree char *base = NULL;
	g_autofree char *overlay = g_build_filename (f->dir, "overlay.qcow2", NULL);
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2",
			       "-F", "qcow2", overlay, NULL };
	g_autofree char *out = NULL;
	g_autoptr (CtlResult) human = NULL;
	g_autoptr (CtlResult) json = NULL;
	g_autoptr (JsonParser) parser = json_parser_new ();
	g_autoptr (GError) error = NULL;
	JsonObject *info;
	JsonArray *reasons;

	if (!vmi_test_require_qemu_img ())
		return;
	base = make_qcow2 (f, "base.qcow2", 1024 * 1024, 3);
	out = vmi_test_run (argv);

	/* Unsafe is a finding, not an error: exit 0 and say why. */
	human = run_ctl (f, "inspect", overlay, NULL);
	g_assert_cmpint (human->status, ==, 0);
	g_assert_nonnull (strstr (human->out, "\nsafe: no — "));
	g_assert_nonnull (strstr (human->out, "base.qcow2"));

	json = run_ctl (f, "inspect", "--json", overlay, NULL);
	g_assert_cmpint (json->status, ==, 0);
	json_parser_load_from_data (parser, json->out, -1, &error);
	g_assert_no_error (error);
	info = json_node_get_object (json_parser_get_root (parser));
	g_assert_false (json_object_get_boolean_member (info, "safe"));
	reasons = json_object_get_array_member (info, "unsafe-reasons");
	g_assert_cmpuint (json_array_get_length (reasons), >, 0);
	/* Each reason the JSON gives is in the human summary too. */
	for (guint i = 0; i < json_array_get_length (reasons); i++)
		g_assert_nonnull (strstr (human->out, json_array_get_string_element (reasons, i)));
}

/* stderr is "vmimagectl: <what>: <ErrorName>: <message>"; returns the name. */
static char *
error_name_of (const char *err)
{
	g_autoptr (GRegex) regex = g_regex_new ("^vmimagectl: .*: ([A-Za-z]+): .+\n$",
						G_REGEX_DOTALL, 0, NULL);
	g_autoptr (GMatchInfo) match = NULL;

	if (!g_regex_match (regex, err, 0, &match))
		g_error ("not a vmimagectl error message: \"%s\"", err);
	return g_match_info_fetch (match, 1);
}

static void
test_inspect_errors (Fixture *f, gconstpointer data)
{
	g_autofree char *missing = g_build_filename (f->dir, "missing.qcow2", NULL);
	g_autoptr (CtlResult) absent = NULL;
	g_autoptr (CtlResult) bad_format = NULL;
	g_autoptr (CtlResult) folder = NULL;
	g_autofree char *name = NULL;
	g_autofree char *raw = g_build_filename (f->dir, "disk.raw", NULL);

	absent = run_ctl (f, "inspect", missing, NULL);
	g_assert_cmpint (absent->status, ==, 1);
	g_assert_cmpstr (absent->out, ==, "");
	name = error_name_of (absent->err);
	g_assert_nonnull (strstr (absent->err, missing));

	vmi_test_make_pattern_image (raw, 1024 * 1024, 4);
	bad_format = run_ctl (f, "inspect", "--format", "no-such-format", raw, NULL);
	g_assert_cmpint (bad_format->status, ==, 1);
	g_clear_pointer (&name, g_free);
	name = error_name_of (bad_format->err);
	g_assert_cmpstr (name, ==, "UnknownFormat");

	folder = run_ctl (f, "inspect", f->dir, NULL);
	g_assert_cmpint (folder->status, ==, 1);
	g_clear_pointer (&name, g_free);
	name = error_name_of (folder->err);
	g_assert_cmpstr (name, !=, "Failed");
}

static void
test_convert (Fixture *f, gconstpointer data)
{
	g_autofree char *source = NULL;
	g_autofree char *dest = g_build_filename (f->dir, "disk.raw", NULL);
	g_autoptr (CtlResult) result = NULL;
	g_autoptr (CtlResult) jobs = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	source = make_qcow2 (f, "disk.qcow2", 6 * 1024 * 1024 + 512, 5);

	result = run_ctl (f, "convert", "disk.qcow2", "disk.raw", "-O", "raw", NULL);
	g_assert_cmpint (result->status, ==, 0);
	g_assert_cmpstr (result->err, ==, "");
	/* Not a terminal: plain progress lines, the last one 100%, then what was written. */
	g_assert_true (g_regex_match_simple ("^([0-9]+%\n)*100%\nwrote [^\n]+\n$", result->out, 0,
					     0));
	g_assert_nonnull (strstr (result->out, dest));
	g_assert_true (vmi_test_qemu_img_compare (source, "qcow2", dest, "raw"));

	jobs = run_ctl (f, "jobs", NULL);
	g_assert_cmpint (jobs->status, ==, 0);
	g_assert_true (g_str_has_prefix (jobs->out, "JOB "));
	g_assert_nonnull (strstr (jobs->out, " convert "));
	g_assert_nonnull (strstr (jobs->out, " completed "));
}

static char *
read_file (const char *path)
{
	g_autoptr (GError) error = NULL;
	char *contents = NULL;

	g_file_get_contents (path, &contents, NULL, &error);
	g_assert_no_error (error);
	return contents;
}

static void
test_convert_exists (Fixture *f, gconstpointer data)
{
	g_autofree char *source = NULL;
	g_autofree char *dest = g_build_filename (f->dir, "disk.raw", NULL);
	g_autofree char *after = NULL;
	g_autoptr (CtlResult) refused = NULL;
	g_autoptr (CtlResult) replaced = NULL;
	g_autoptr (GError) error = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	source = make_qcow2 (f, "disk.qcow2", 2 * 1024 * 1024, 6);
	g_file_set_contents (dest, "precious", -1, &error);
	g_assert_no_error (error);

	refused = run_ctl (f, "convert", source, dest, "-O", "raw", NULL);
	g_assert_cmpint (refused->status, !=, 0);
	g_assert_nonnull (strstr (refused->err, "Exists"));
	after = read_file (dest);
	g_assert_cmpstr (after, ==, "precious");

	replaced = run_ctl (f, "convert", "--overwrite", source, dest, "-O", "raw", NULL);
	g_assert_cmpint (replaced->status, ==, 0);
	g_assert_true (vmi_test_qemu_img_compare (source, "qcow2", dest, "raw"));
}

static void
test_convert_options (Fixture *f, gconstpointer data)
{
	g_autofree char *source = g_build_filename (f->dir, "disk.raw", NULL);
	g_autofree char *dest = g_build_filename (f->dir, "disk.qcow2", NULL);
	g_autofree char *other = g_build_filename (f->dir, "other.qcow2", NULL);
	g_autoptr (CtlResult) result = NULL;
	g_autoptr (CtlResult) unknown = NULL;
	g_autoptr (CtlResult) no_format = NULL;
	g_autoptr (JsonObject) qemu = NULL;
	g_autofree char *name = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (source, 2 * 1024 * 1024, 7);

	/* "4K" is parsed by the client into the uint64 4096. */
	result = run_ctl (f, "convert", "-q", "-o", "cluster-size=4K", source, dest, "-O", "qcow2",
			  NULL);
	g_assert_cmpint (result->status, ==, 0);
	g_assert_true (g_str_has_prefix (result->out, "wrote "));
	qemu = vmi_test_qemu_img_info (dest, "qcow2");
	g_assert_cmpint (json_int (qemu, "cluster-size"), ==, 4096);
	g_assert_true (vmi_test_qemu_img_compare (source, "raw", dest, "qcow2"));

	unknown = run_ctl (f, "convert", "-o", "colour=blue", source, other, "-O", "qcow2", NULL);
	g_assert_cmpint (unknown->status, ==, 1);
	name = error_name_of (unknown->err);
	g_assert_cmpstr (name, ==, "InvalidArgument");
	g_assert_nonnull (strstr (unknown->err, "colour"));
	g_assert_false (g_file_test (other, G_FILE_TEST_EXISTS));

	no_format = run_ctl (f, "convert", source, other, NULL);
	g_assert_cmpint (no_format->status, ==, 2);
	g_assert_nonnull (strstr (no_format->err, "-O"));
}

/* Random data: deflate cannot shrink it, so compressing 32 MiB takes a while. */
static void
make_random_file (const char *path, gsize size)
{
	g_autoptr (GRand) rand = g_rand_new_with_seed (42);
	g_autofree guint32 *data = g_new (guint32, size / 4);
	g_autoptr (GError) error = NULL;

	for (gsize i = 0; i < size / 4; i++)
		data[i] = g_rand_int (rand);
	g_file_set_contents (path, (const char *) data, (gssize) size, &error);
	g_assert_no_error (error);
}

static gboolean
qcow2_can_compress (Fixture *f)
{
	g_autoptr (CtlResult) formats = run_ctl (f, "formats", "--json", NULL);
	g_autoptr (JsonParser) parser = json_parser_new ();
	g_autoptr (GError) error = NULL;
	JsonObject *all, *qcow2, *create;

	g_assert_cmpint (formats->status, ==, 0);
	json_parser_load_from_data (parser, formats->out, -1, &error);
	g_assert_no_error (error);
	all = json_node_get_object (json_parser_get_root (parser));
	qcow2 = json_object_has_member (all, "qcow2") ?
		json_object_get_object_member (all, "qcow2") : NULL;
	if (qcow2 == NULL || !json_object_has_member (qcow2, "create-options"))
		return FALSE;
	create = json_object_get_object_member (qcow2, "create-options");
	return json_object_has_member (create, "compress");
}

static void
test_convert_sigint (Fixture *f, gconstpointer data)
{
	g_autofree char *source = g_build_filename (f->dir, "big.raw", NULL);
	g_autofree char *dest = g_build_filename (f->dir, "big.qcow2", NULL);
	g_autoptr (GSubprocessLauncher) launcher = NULL;
	g_autoptr (GSubprocess) process = NULL;
	g_autoptr (GDataInputStream) lines = NULL;
	g_autoptr (GError) error = NULL;
	g_autofree char *first = NULL;
	g_autoptr (CtlResult) result = NULL;
	g_autoptr (CtlResult) jobs = NULL;
	g_autoptr (GDir) dir = NULL;
	const char *name;
	guint n_files = 0;

	if (!qcow2_can_compress (f)) {
		g_test_skip ("the qcow2 plugin has no \"compress\" option to make a slow job with");
		return;
	}
	make_random_file (source, 32 * 1024 * 1024);

	launcher = ctl_launcher (f, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	process = g_subprocess_launcher_spawn (launcher, &error, vmimagectl_path (), "--session",
					       "convert", "-o", "compress=true", source, dest,
					       "-O", "qcow2", NULL);
	g_assert_no_error (error);
	/* The first progress line means the job exists; interrupt it then, as a person would. */
	lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
	first = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
	g_assert_no_error (error);
	g_assert_true (g_regex_match_simple ("^[0-9]+%$", first, 0, 0));
	g_assert_cmpstr (first, !=, "100%");
	g_subprocess_send_signal (process, SIGINT);

	result = ctl_finish (process);
	g_assert_cmpint (result->status, ==, 130);
	g_assert_nonnull (strstr (result->err, "cancel"));
	g_assert_null (strstr (result->out, "wrote "));
	g_assert_false (g_file_test (dest, G_FILE_TEST_EXISTS));
	/* Nothing else either: no temporary file left beside the destination. */
	dir = g_dir_open (f->dir, 0, &error);
	g_assert_no_error (error);
	while ((name = g_dir_read_name (dir)) != NULL) {
		g_assert_cmpstr (name, ==, "big.raw");
		n_files++;
	}
	g_assert_cmpuint (n_files, ==, 1);

	jobs = run_ctl (f, "jobs", NULL);
	g_assert_nonnull (strstr (jobs->out, " cancelled "));
	g_assert_nonnull (strstr (jobs->out, " Cancelled\n"));
}

static void
test_convert_terminal (Fixture *f, gconstpointer data)
{
	g_autofree char *source = g_build_filename (f->dir, "disk.raw", NULL);
	g_autofree char *dest = g_build_filename (f->dir, "disk.qcow2", NULL);
	g_autoptr (GSubprocessLauncher) launcher = NULL;
	g_autoptr (GSubprocess) process = NULL;
	g_autoptr (GError) error = NULL;
	g_autoptr (GString) screen = g_string_new (NULL);
	int master, slave;
	char buf[4096];
	ssize_t n;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (source, 4 * 1024 * 1024, 8);
	/* A pseudo-terminal as standard output: vmimagectl must draw its bar there. */
	master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
	g_assert_cmpint (master, >=, 0);
	g_assert_cmpint (grantpt (master), ==, 0);
	g_assert_cmpint (unlockpt (master), ==, 0);
	slave = open (ptsname (master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	g_assert_cmpint (slave, >=, 0);

	launcher = ctl_launcher (f, G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_subprocess_launcher_take_stdout_fd (launcher, slave);
	process = g_subprocess_launcher_spawn (launcher, &error, vmimagectl_path (), "--session",
					       "convert", source, dest, "-O", "qcow2", NULL);
	g_assert_no_error (error);
	g_clear_object (&launcher); /* closes our copy of the slave, so reads end with EIO */
	while ((n = read (master, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
		if (n > 0)
			g_string_append_len (screen, buf, n);
	}
	close (master);
	g_subprocess_wait (process, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpint (exit_status_of (process), ==, 0);

	/* Redrawn in place (carriage return, erase to the end of the line), ending full. */
	g_assert_true (g_str_has_prefix (screen->str, "\r["));
	g_assert_nonnull (strstr (screen->str, "\033[K"));
	g_assert_nonnull (strstr (screen->str, "=] 100%"));
	g_assert_null (strstr (screen->str, "\n0%"));
	g_assert_nonnull (strstr (screen->str, "\nwrote "));
	g_assert_true (vmi_test_qemu_img_compare (source, "raw", dest, "qcow2"));
}

static void
test_formats (Fixture *f, gconstpointer data)
{
	g_autoptr (CtlResult) table = run_ctl (f, "formats", NULL);
	g_autoptr (CtlResult) json = run_ctl (f, "formats", "--json", NULL);
	g_autoptr (JsonParser) parser = json_parser_new ();
	g_autoptr (GError) error = NULL;
	g_autoptr (GRegex) raw_row = g_regex_new ("^raw +yes +yes +yes +[a-z,]+ +\\S.*$",
						  G_REGEX_MULTILINE, 0, NULL);
	JsonObject *raw;

	g_assert_cmpint (table->status, ==, 0);
	g_assert_true (g_str_has_prefix (table->out, "FORMAT "));
	g_assert_true (g_regex_match (raw_row, table->out, 0, NULL));

	g_assert_cmpint (json->status, ==, 0);
	json_parser_load_from_data (parser, json->out, -1, &error);
	g_assert_no_error (error);
	raw = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)),
					     "raw");
	g_assert_nonnull (raw);
	g_assert_true (json_object_get_boolean_member (raw, "can-write"));
	g_assert_nonnull (json_object_get_string_member (raw, "description"));
}

static void
test_usage (Fixture *f, gconstpointer data)
{
	g_autoptr (CtlResult) none = run_ctl (f, NULL);
	g_autoptr (CtlResult) unknown = run_ctl (f, "frobnicate", NULL);
	g_autoptr (CtlResult) extra = run_ctl (f, "inspect", "a", "b", NULL);
	g_autoptr (CtlResult) bad_option = run_ctl (f, "formats", "--colour", NULL);
	g_autoptr (CtlResult) help = run_ctl (f, "convert", "--help", NULL);

	g_assert_cmpint (none->status, ==, 2);
	g_assert_nonnull (strstr (none->err, "inspect"));
	g_assert_cmpint (unknown->status, ==, 2);
	g_assert_nonnull (strstr (unknown->err, "frobnicate"));
	g_assert_cmpint (extra->status, ==, 2);
	g_assert_cmpint (bad_option->status, ==, 2);
	g_assert_nonnull (strstr (bad_option->err, "--colour"));
	g_assert_cmpint (help->status, ==, 0);
	g_assert_nonnull (strstr (help->out, "--overwrite"));
	g_assert_nonnull (strstr (help->out, "--session"));
}

static void
test_no_daemon (Fixture *f, gconstpointer data)
{
	g_autoptr (CtlResult) result = NULL;

	vmi_test_bus_stop_daemon (f->bus);
	result = run_ctl (f, "formats", NULL);
	g_assert_cmpint (result->status, ==, 1);
	g_assert_nonnull (strstr (result->err, "not running"));
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
#define ADD(path, func) \
	g_test_add ("/vmimagectl/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
	ADD ("inspect/human", test_inspect_human);
	ADD ("inspect/json", test_inspect_json);
	ADD ("inspect/unsafe", test_inspect_unsafe);
	ADD ("inspect/errors", test_inspect_errors);
	ADD ("convert/qcow2-to-raw", test_convert);
	ADD ("convert/exists", test_convert_exists);
	ADD ("convert/options", test_convert_options);
	ADD ("convert/sigint", test_convert_sigint);
	ADD ("convert/terminal", test_convert_terminal);
	ADD ("formats", test_formats);
	ADD ("usage", test_usage);
	ADD ("no-daemon", test_no_daemon);
#undef ADD
	return g_test_run ();
}
