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

/* Starts vmimagectl --session ARGS (NULL-terminated) in the fixture's folder. */
static GSubprocess *
ctl_spawn (Fixture *f, va_list args)
{
	g_autoptr (GPtrArray) argv = g_ptr_array_new ();
	g_autoptr (GSubprocessLauncher) launcher = NULL;
	g_autoptr (GError) error = NULL;
	GSubprocess *process;
	const char *arg;

	g_ptr_array_add (argv, (gpointer) vmimagectl_path ());
	g_ptr_array_add (argv, (gpointer) "--session");
	while ((arg = va_arg (args, const char *)) != NULL)
		g_ptr_array_add (argv, (gpointer) arg);
	g_ptr_array_add (argv, NULL);

	launcher = ctl_launcher (f, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	process = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
	g_assert_no_error (error);
	return process;
}

/* Runs vmimagectl --session ARGS... in the fixture's folder. */
static CtlResult *
run_ctl (Fixture *f, ...)
{
	g_autoptr (GSubprocess) process = NULL;
	va_list args;

	va_start (args, f);
	process = ctl_spawn (f, args);
	va_end (args);
	return ctl_finish (process);
}

/*
 * Runs vmimagectl --session ARGS... and interrupts it with SIGINT at its first progress line
 * (which means the job exists), as a person would.
 */
static CtlResult *
run_ctl_interrupted (Fixture *f, ...)
{
	g_autoptr (GSubprocess) process = NULL;
	g_autoptr (GDataInputStream) lines = NULL;
	g_autoptr (GError) error = NULL;
	g_autofree char *first = NULL;
	va_list args;

	va_start (args, f);
	process = ctl_spawn (f, args);
	va_end (args);
	lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
	first = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
	g_assert_no_error (error);
	g_assert_true (g_regex_match_simple ("^[0-9]+%$", first, 0, 0));
	g_assert_cmpstr (first, !=, "100%");
	g_subprocess_send_signal (process, SIGINT);
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
	g_autoptr (GError) error = NULL;
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

	result = run_ctl_interrupted (f, "convert", "-o", "compress=true", source, dest, "-O", "qcow2",
				      NULL);
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

/* ---- cache ---- */

/* A fixture whose daemon has CacheLimit=limit (bytes, as the setting's text). */
static void
fixture_set_up_limit (Fixture *f, gconstpointer data)
{
	g_autofree char *config = NULL;
	g_autofree char *text = g_strdup_printf ("[Daemon]\nCacheLimit=%s\n", (const char *) data);
	const char *args[] = { "--config", NULL, NULL };

	f->dir = vmi_test_tmpdir_new ();
	config = g_build_filename (f->dir, "limit.conf", NULL);
	vmi_test_write_file (config, text, -1);
	args[1] = config;
	f->bus = vmi_test_bus_new_full (args);
}

static char *
cache_dir_of (Fixture *f)
{
	return g_build_filename (vmi_test_bus_get_dir (f->bus), "cache", NULL);
}

/* Files in the daemon's cache folder whose names end with suffix (or start with it, for
 * ".tmp-"). */
static guint
count_cache_files (Fixture *f, const char *affix)
{
	g_autofree char *cache = cache_dir_of (f);
	g_autoptr (GDir) dir = g_dir_open (cache, 0, NULL);
	const char *name;
	guint n = 0;

	if (dir == NULL)
		return 0;
	while ((name = g_dir_read_name (dir)) != NULL) {
		if (g_str_has_suffix (name, affix) || g_str_has_prefix (name, affix))
			n++;
	}
	return n;
}

/* vmimagectl cache list --json, parsed; asserts it succeeded. */
static JsonArray *
cache_list_json (Fixture *f)
{
	g_autoptr (CtlResult) result = run_ctl (f, "cache", "list", "--json", NULL);
	g_autoptr (JsonParser) parser = json_parser_new ();
	g_autoptr (GError) error = NULL;
	JsonNode *root;

	g_assert_cmpint (result->status, ==, 0);
	g_assert_cmpstr (result->err, ==, "");
	json_parser_load_from_data (parser, result->out, -1, &error);
	g_assert_no_error (error);
	root = json_parser_get_root (parser);
	g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
	return json_array_ref (json_node_get_array (root));
}

/* The listed image with this name (asserted to be there once). */
static JsonObject *
listed_image (JsonArray *images, const char *name)
{
	JsonObject *found = NULL;

	for (guint i = 0; i < json_array_get_length (images); i++) {
		JsonObject *image = json_array_get_object_element (images, i);

		if (g_strcmp0 (json_object_get_string_member (image, "name"), name) != 0)
			continue;
		g_assert_null (found);
		found = image;
	}
	if (found == NULL)
		g_error ("no image named %s is listed", name);
	return found;
}

/* The one-line "vmimagectl: WHAT: MESSAGE" of a failure without a D-Bus error name. */
static void
assert_local_error (CtlResult *result, const char *needle)
{
	g_assert_cmpint (result->status, ==, 1);
	g_assert_true (g_str_has_prefix (result->err, "vmimagectl: cache "));
	if (strstr (result->err, needle) == NULL)
		g_error ("the message \"%s\" does not mention \"%s\"", result->err, needle);
}

static void
test_cache_import_list (Fixture *f, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (f->dir, "one.raw", NULL);
	g_autofree char *qcow2 = NULL;
	g_autofree char *again = g_build_filename (f->dir, "one-again.raw", NULL);
	g_autofree char *id_line = NULL;
	g_autoptr (CtlResult) first = NULL;
	g_autoptr (CtlResult) second = NULL;
	g_autoptr (CtlResult) quiet = NULL;
	g_autoptr (CtlResult) same = NULL;
	g_autoptr (CtlResult) table = NULL;
	g_autoptr (JsonArray) images = NULL;
	g_autoptr (GRegex) row = NULL;
	JsonObject *one, *two, *props;
	g_autofree char *id = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (raw, 1024 * 1024 + 4096, 31);
	qcow2 = make_qcow2 (f, "two.qcow2", 3 * 1024 * 1024, 32);

	/* A relative path, a name, properties; stored as raw. */
	first = run_ctl (f, "cache", "import", "one.raw", "--name", "first image", "-O", "raw",
			 "-p", "os_type=linux", "--property", "os_distro=debian", NULL);
	g_assert_cmpint (first->status, ==, 0);
	g_assert_cmpstr (first->err, ==, "");
	g_assert_true (g_regex_match_simple ("^([0-9]+%\n)*100%\nimported [^\n]+ as [0-9a-f]{32} "
					     "\\(first image\\): raw, virtual size 1 MiB, size [^\n]+\n$",
					     first->out, 0, 0));
	g_assert_nonnull (strstr (first->out, raw));
	/* The default name is the file name; the default stored format qcow2. */
	second = run_ctl (f, "cache", "import", qcow2, NULL);
	g_assert_cmpint (second->status, ==, 0);
	g_assert_nonnull (strstr (second->out, "(two.qcow2): qcow2, virtual size 3 MiB"));

	images = cache_list_json (f);
	g_assert_cmpuint (json_array_get_length (images), ==, 2);
	one = listed_image (images, "first image");
	two = listed_image (images, "two.qcow2");
	g_assert_cmpstr (json_object_get_string_member (one, "format"), ==, "raw");
	g_assert_cmpint (json_int (one, "virtual-size"), ==, 1024 * 1024 + 4096);
	g_assert_cmpint (json_int (one, "virtual-size"), ==,
			 (gint64) vmi_test_qemu_img_virtual_size (raw, "raw"));
	g_assert_cmpint (json_int (two, "virtual-size"), ==,
			 (gint64) vmi_test_qemu_img_virtual_size (qcow2, "qcow2"));
	g_assert_cmpstr (json_object_get_string_member (two, "format"), ==, "qcow2");
	g_assert_cmpint (json_int (one, "size"), >, 0);
	g_assert_cmpint (json_int (one, "last-used"), >=, json_int (one, "created"));
	g_assert_false (json_object_get_boolean_member (one, "pinned"));
	g_assert_cmpstr (json_object_get_string_member (one, "source"), ==, raw);
	g_assert_cmpuint (strlen (json_object_get_string_member (one, "checksum")), ==, 64);
	id = g_strdup (json_object_get_string_member (one, "id"));
	g_assert_true (g_str_has_prefix (json_object_get_string_member (one, "content-checksum"),
					 id));
	props = json_object_get_object_member (one, "properties");
	g_assert_cmpstr (json_object_get_string_member (props, "os_type"), ==, "linux");
	g_assert_cmpstr (json_object_get_string_member (props, "os_distro"), ==, "debian");
	g_assert_cmpuint (json_object_get_size (json_object_get_object_member (two, "properties")),
			  ==, 0);

	/* The table: a row per image, sorted by name, then the total. */
	table = run_ctl (f, "cache", "list", NULL);
	g_assert_cmpint (table->status, ==, 0);
	g_assert_true (g_str_has_prefix (table->out, "ID  "));
	row = g_regex_new ("^[0-9a-f]{12}  first image +raw +1 MiB +\\S+ [KM]iB +"
			   "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} +no$",
			   G_REGEX_MULTILINE, 0, NULL);
	g_assert_true (g_regex_match (row, table->out, 0, NULL));
	g_assert_true (strstr (table->out, "first image") < strstr (table->out, "two.qcow2"));
	g_assert_nonnull (strstr (table->out, "\n2 images, "));
	g_assert_nonnull (strstr (table->out, ", no limit\n"));

	/* The same content under another file name: the existing image, renamed; -q prints its
	 * id alone. */
	vmi_test_sh_ok ("cp '%s' '%s'", raw, again);
	same = run_ctl (f, "cache", "import", again, "--name", "renamed", NULL);
	g_assert_cmpint (same->status, ==, 0);
	g_assert_nonnull (strstr (same->out, " is already in the cache as "));
	quiet = run_ctl (f, "cache", "import", "-q", again, NULL);
	g_assert_cmpint (quiet->status, ==, 0);
	id_line = g_strconcat (id, "\n", NULL);
	g_assert_cmpstr (quiet->out, ==, id_line);
	g_clear_pointer (&images, json_array_unref);
	images = cache_list_json (f);
	g_assert_cmpuint (json_array_get_length (images), ==, 2);
	one = listed_image (images, "one-again.raw");
	g_assert_cmpstr (json_object_get_string_member (one, "id"), ==, id);
	g_assert_cmpuint (count_cache_files (f, ".img"), ==, 2);
}

static void
test_cache_export (Fixture *f, gconstpointer data)
{
	g_autofree char *source = NULL;
	g_autofree char *vmdk = g_build_filename (f->dir, "out.vmdk", NULL);
	g_autofree char *raw = g_build_filename (f->dir, "out.img", NULL);
	g_autofree char *plain = g_build_filename (f->dir, "out", NULL);
	g_autofree char *prefix = NULL;
	g_autofree char *name = NULL;
	g_autoptr (CtlResult) imported = NULL;
	g_autoptr (CtlResult) by_name = NULL;
	g_autoptr (CtlResult) by_prefix = NULL;
	g_autoptr (CtlResult) stored = NULL;
	g_autoptr (CtlResult) exists = NULL;
	g_autoptr (CtlResult) replaced = NULL;
	g_autoptr (CtlResult) bad_format = NULL;
	g_autoptr (JsonArray) images = NULL;
	g_autoptr (JsonObject) info = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	source = make_qcow2 (f, "disk.qcow2", 2 * 1024 * 1024 + 512, 33);
	imported = run_ctl (f, "cache", "import", "-q", "--name", "base", source, NULL);
	g_assert_cmpint (imported->status, ==, 0);
	prefix = g_strndup (imported->out, 6);

	/* By name; the format follows the destination's extension. */
	by_name = run_ctl (f, "cache", "export", "base", "out.vmdk", NULL);
	g_assert_cmpint (by_name->status, ==, 0);
	g_assert_true (g_regex_match_simple ("\nwrote [^\n]+/out\\.vmdk from [0-9a-f]{32} \\(base\\): "
					     "vmdk, virtual size [^\n]+\n$", by_name->out, 0, 0));
	info = vmi_test_qemu_img_info (vmdk, NULL);
	g_assert_cmpstr (json_object_get_string_member (info, "format"), ==, "vmdk");
	g_assert_true (vmi_test_qemu_img_compare (source, "qcow2", vmdk, "vmdk"));

	/* By a prefix of the id, with the format given. */
	by_prefix = run_ctl (f, "cache", "export", "-q", "-O", "raw", prefix, raw, NULL);
	g_assert_cmpint (by_prefix->status, ==, 0);
	g_assert_cmpstr (by_prefix->out, ==, "");
	g_assert_true (vmi_test_qemu_img_compare (source, "qcow2", raw, "raw"));

	/* No extension, no format: the stored format (qcow2). */
	stored = run_ctl (f, "cache", "export", "base", "out", NULL);
	g_assert_cmpint (stored->status, ==, 0);
	g_clear_pointer (&info, json_object_unref);
	info = vmi_test_qemu_img_info (plain, NULL);
	g_assert_cmpstr (json_object_get_string_member (info, "format"), ==, "qcow2");

	/* An existing destination is kept unless --overwrite. */
	exists = run_ctl (f, "cache", "export", "base", raw, "-O", "qcow2", NULL);
	g_assert_cmpint (exists->status, ==, 1);
	name = error_name_of (exists->err);
	g_assert_cmpstr (name, ==, "Exists");
	g_clear_pointer (&info, json_object_unref);
	info = vmi_test_qemu_img_info (raw, NULL);
	g_assert_cmpstr (json_object_get_string_member (info, "format"), ==, "raw");
	replaced = run_ctl (f, "cache", "export", "--overwrite", "-O", "qcow2", "base", raw, NULL);
	g_assert_cmpint (replaced->status, ==, 0);
	g_clear_pointer (&info, json_object_unref);
	info = vmi_test_qemu_img_info (raw, NULL);
	g_assert_cmpstr (json_object_get_string_member (info, "format"), ==, "qcow2");

	bad_format = run_ctl (f, "cache", "export", "-O", "no-such-format", "base", "x.img", NULL);
	g_assert_cmpint (bad_format->status, ==, 1);
	g_clear_pointer (&name, g_free);
	name = error_name_of (bad_format->err);
	g_assert_cmpstr (name, ==, "UnknownFormat");

	/* A completed export is a use. */
	images = cache_list_json (f);
	g_assert_cmpint (json_int (listed_image (images, "base"), "last-used"), >=,
			 json_int (listed_image (images, "base"), "created"));
}

static void
test_cache_set_verify_rm (Fixture *f, gconstpointer data)
{
	g_autofree char *source = g_build_filename (f->dir, "disk.raw", NULL);
	g_autofree char *cache = cache_dir_of (f);
	g_autofree char *stored = NULL;
	g_autofree char *id = NULL;
	g_autofree char *name = NULL;
	g_autoptr (CtlResult) imported = NULL;
	g_autoptr (CtlResult) set = NULL;
	g_autoptr (CtlResult) unset = NULL;
	g_autoptr (CtlResult) bad_key = NULL;
	g_autoptr (CtlResult) nothing = NULL;
	g_autoptr (CtlResult) verified = NULL;
	g_autoptr (CtlResult) damaged = NULL;
	g_autoptr (CtlResult) removed = NULL;
	g_autoptr (CtlResult) empty = NULL;
	g_autoptr (JsonArray) images = NULL;
	JsonObject *image, *props;

	vmi_test_make_pattern_image (source, 1024 * 1024, 34);
	imported = run_ctl (f, "cache", "import", "-q", "--name", "disk", source, NULL);
	g_assert_cmpint (imported->status, ==, 0);
	id = g_strndup (imported->out, 32);

	set = run_ctl (f, "cache", "set", "disk", "pinned=true", "os_distro=debian",
		       "hw_firmware_type=uefi", NULL);
	g_assert_cmpint (set->status, ==, 0);
	g_assert_nonnull (strstr (set->out, id));
	unset = run_ctl (f, "cache", "set", id, "--unset", "hw_firmware_type", "min_ram=512",
			 NULL);
	g_assert_cmpint (unset->status, ==, 0);
	images = cache_list_json (f);
	image = listed_image (images, "disk");
	g_assert_true (json_object_get_boolean_member (image, "pinned"));
	props = json_object_get_object_member (image, "properties");
	g_assert_cmpuint (json_object_get_size (props), ==, 3);
	g_assert_cmpstr (json_object_get_string_member (props, "pinned"), ==, "true");
	g_assert_cmpstr (json_object_get_string_member (props, "os_distro"), ==, "debian");
	g_assert_cmpstr (json_object_get_string_member (props, "min_ram"), ==, "512");
	g_assert_false (json_object_has_member (props, "hw_firmware_type"));

	/* A key the daemon refuses changes nothing. */
	bad_key = run_ctl (f, "cache", "set", "disk", "os type=linux", "min_disk=1", NULL);
	g_assert_cmpint (bad_key->status, ==, 1);
	name = error_name_of (bad_key->err);
	g_assert_cmpstr (name, ==, "InvalidArgument");
	nothing = run_ctl (f, "cache", "set", "disk", NULL);
	g_assert_cmpint (nothing->status, ==, 2);
	g_assert_nonnull (strstr (nothing->err, "--unset"));
	g_clear_pointer (&images, json_array_unref);
	images = cache_list_json (f);
	props = json_object_get_object_member (listed_image (images, "disk"), "properties");
	g_assert_false (json_object_has_member (props, "min_disk"));

	verified = run_ctl (f, "cache", "verify", "disk", NULL);
	g_assert_cmpint (verified->status, ==, 0);
	g_assert_nonnull (strstr (verified->out, " is intact"));

	/* One byte changed in the stored file. */
	stored = g_strdup_printf ("%s/%s.img", cache, id);
	vmi_test_write_bytes (stored, 70000, "\x5a", 1);
	damaged = run_ctl (f, "cache", "verify", "-q", id, NULL);
	g_assert_cmpint (damaged->status, ==, 1);
	g_assert_true (g_str_has_prefix (damaged->err, "vmimagectl: cache verify failed: "
					 "CorruptImage: "));
	g_assert_nonnull (strstr (damaged->err, "sha256"));
	g_assert_null (strstr (damaged->out, "intact"));

	removed = run_ctl (f, "cache", "rm", "disk", NULL);
	g_assert_cmpint (removed->status, ==, 0);
	g_assert_nonnull (strstr (removed->out, "removed "));
	g_assert_false (g_file_test (stored, G_FILE_TEST_EXISTS));
	g_assert_cmpuint (count_cache_files (f, ".entry"), ==, 0);
	empty = run_ctl (f, "cache", "list", NULL);
	g_assert_cmpint (empty->status, ==, 0);
	g_assert_cmpstr (empty->out, ==, "the cache is empty\n");
}

static void
test_cache_unknown (Fixture *f, gconstpointer data)
{
	g_autofree char *a = g_build_filename (f->dir, "a.raw", NULL);
	g_autofree char *b = g_build_filename (f->dir, "b.raw", NULL);
	g_autofree char *missing = g_build_filename (f->dir, "missing.raw", NULL);
	g_autofree char *out = g_build_filename (f->dir, "out.qcow2", NULL);
	const char *unknown = "0123456789abcdef0123456789abcdef";
	const char *const *cmd;
	const char *const commands[][5] = {
		{ "verify", unknown, NULL },
		{ "rm", unknown, NULL },
		{ "export", unknown, "out.qcow2", NULL },
		{ "set", unknown, "os_type=linux", NULL },
		{ "verify", "no-such-name", NULL },
	};
	g_autoptr (CtlResult) ambiguous = NULL;
	g_autoptr (CtlResult) short_prefix = NULL;
	g_autoptr (CtlResult) absent = NULL;
	g_autoptr (CtlResult) sub = NULL;
	g_autoptr (CtlResult) no_sub = NULL;
	g_autoptr (CtlResult) help = NULL;
	g_autoptr (CtlResult) bad_property = NULL;
	g_autoptr (CtlResult) ok = NULL;
	g_autofree char *name = NULL;

	for (gsize i = 0; i < G_N_ELEMENTS (commands); i++) {
		g_autoptr (CtlResult) result = NULL;

		cmd = commands[i];
		result = run_ctl (f, "cache", cmd[0], cmd[1], cmd[2], cmd[3], NULL);
		assert_local_error (result, "has no image with the id or name");
		g_assert_nonnull (strstr (result->err, cmd[1]));
		g_assert_nonnull (strstr (result->err, "cache list"));
		g_assert_cmpstr (result->out, ==, "");
	}
	g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));

	/* Two images with one name: the name alone is not enough. */
	vmi_test_make_pattern_image (a, 512 * 1024, 35);
	vmi_test_make_pattern_image (b, 512 * 1024, 36);
	ok = run_ctl (f, "cache", "import", "-q", "-n", "twin", a, NULL);
	g_assert_cmpint (ok->status, ==, 0);
	g_clear_pointer (&ok, ctl_result_free);
	ok = run_ctl (f, "cache", "import", "-q", "-n", "twin", b, NULL);
	g_assert_cmpint (ok->status, ==, 0);
	ambiguous = run_ctl (f, "cache", "rm", "twin", NULL);
	assert_local_error (ambiguous, "2 images are named “twin”");
	g_assert_nonnull (strstr (ambiguous->err, "give the id"));
	g_assert_cmpuint (count_cache_files (f, ".img"), ==, 2);
	/* Fewer than 4 digits is never a prefix. */
	short_prefix = run_ctl (f, "cache", "rm", "0", NULL);
	assert_local_error (short_prefix, "has no image");

	absent = run_ctl (f, "cache", "import", missing, NULL);
	g_assert_cmpint (absent->status, ==, 1);
	g_assert_nonnull (strstr (absent->err, missing));
	name = error_name_of (absent->err);
	g_assert_cmpstr (name, !=, "Failed");
	bad_property = run_ctl (f, "cache", "import", "-p", "novalue", a, NULL);
	g_assert_cmpint (bad_property->status, ==, 2);
	g_assert_nonnull (strstr (bad_property->err, "key=value"));

	sub = run_ctl (f, "cache", "frobnicate", NULL);
	g_assert_cmpint (sub->status, ==, 2);
	g_assert_nonnull (strstr (sub->err, "frobnicate"));
	no_sub = run_ctl (f, "cache", NULL);
	g_assert_cmpint (no_sub->status, ==, 2);
	g_assert_nonnull (strstr (no_sub->err, "import"));
	help = run_ctl (f, "cache", "export", "--help", NULL);
	g_assert_cmpint (help->status, ==, 0);
	g_assert_nonnull (strstr (help->out, "--overwrite"));
}

/* A name with a newline and an escape sequence cannot break the table or the terminal. */
static void
test_cache_list_control_characters (Fixture *f, gconstpointer data)
{
	g_autofree char *source = g_build_filename (f->dir, "disk.raw", NULL);
	g_autoptr (CtlResult) imported = NULL;
	g_autoptr (CtlResult) table = NULL;
	g_autoptr (JsonArray) images = NULL;
	g_auto (GStrv) lines = NULL;

	vmi_test_make_pattern_image (source, 512 * 1024, 38);
	imported = run_ctl (f, "cache", "import", "--name", "evil\nname\033[2J", source, NULL);
	g_assert_cmpint (imported->status, ==, 0);
	g_assert_nonnull (strstr (imported->out, "(evil?name?[2J)"));
	g_assert_null (strchr (imported->out, '\033'));
	table = run_ctl (f, "cache", "list", NULL);
	g_assert_cmpint (table->status, ==, 0);
	g_assert_null (strchr (table->out, '\033'));
	lines = g_strsplit (table->out, "\n", -1);
	/* Header, one row, total, and the empty string after the last newline. */
	g_assert_cmpuint (g_strv_length (lines), ==, 4);
	g_assert_nonnull (strstr (lines[1], "  evil?name?[2J  "));
	/* JSON keeps the name as it is, escaped. */
	images = cache_list_json (f);
	g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (images, 0),
							"name"), ==, "evil\nname\033[2J");
}

/* A UEC tarball: a disk, a kernel (a bzImage header of protocol 2.07) and a ramdisk. */
static char *
make_uec_tarball (Fixture *f)
{
	g_autofree char *disk = g_build_filename (f->dir, "u.img", NULL);
	g_autofree char *kernel = g_build_filename (f->dir, "u-vmlinuz-virtual", NULL);
	g_autofree char *q = g_shell_quote (f->dir);
	g_autofree guint8 *k = g_malloc0 (200 * 1024 + 3);

	vmi_test_make_pattern_image (disk, 1024 * 1024, 39);
	for (gsize i = 0x300; i < 200 * 1024 + 3; i++)
		k[i] = (guint8) (i * 7 + (i >> 9));
	k[0x1f1] = 4;
	k[0x1fe] = 0x55;
	k[0x1ff] = 0xaa;
	memcpy (k + 0x202, "HdrS", 4);
	k[0x206] = 0x07;
	k[0x207] = 0x02;
	vmi_test_write_file (kernel, k, 200 * 1024 + 3);
	vmi_test_sh_ok ("cd %s && mkdir rd && printf '#!/bin/sh\\n' > rd/init && "
			"(cd rd && echo init | cpio -o -H newc --quiet) | gzip > u-initrd-virtual && "
			"rm -rf rd && tar -cf - u.img u-vmlinuz-virtual u-initrd-virtual | gzip > u.tar.gz",
			q);
	return g_build_filename (f->dir, "u.tar.gz", NULL);
}

/* A container gives several images: a line for each, and -q prints each id. */
static void
test_cache_import_bundle (Fixture *f, gconstpointer data)
{
	g_autofree char *tarball = make_uec_tarball (f);
	g_autoptr (CtlResult) imported = NULL;
	g_autoptr (CtlResult) again = NULL;
	g_autoptr (JsonArray) images = NULL;
	JsonObject *machine;
	g_auto (GStrv) ids = NULL;

	imported = run_ctl (f, "cache", "import", "--name", "u", tarball, NULL);
	g_assert_cmpint (imported->status, ==, 0);
	g_assert_true (g_regex_match_simple ("\nimported [^\n]+/u\\.tar\\.gz: 3 images\n"
					     "  [0-9a-f]{32} \\(u/u\\.img\\): qcow2, [^\n]+\n"
					     "  [0-9a-f]{32} \\(u/u-[a-z]+-virtual\\): raw, [^\n]+\n"
					     "  [0-9a-f]{32} \\(u/u-[a-z]+-virtual\\): raw, [^\n]+\n$",
					     imported->out, 0, 0));
	images = cache_list_json (f);
	g_assert_cmpuint (json_array_get_length (images), ==, 3);
	machine = json_object_get_object_member (listed_image (images, "u/u.img"), "properties");
	g_assert_cmpstr (json_object_get_string_member (machine, "kernel_id"), ==,
			 json_object_get_string_member (listed_image (images, "u/u-vmlinuz-virtual"),
							"id"));
	g_assert_cmpstr (json_object_get_string_member (machine, "ramdisk_id"), ==,
			 json_object_get_string_member (listed_image (images, "u/u-initrd-virtual"),
							"id"));
	/* Again, quietly: the same three ids, the machine image first. */
	again = run_ctl (f, "cache", "import", "-q", "--name", "u", tarball, NULL);
	g_assert_cmpint (again->status, ==, 0);
	ids = g_strsplit (again->out, "\n", -1);
	g_assert_cmpuint (g_strv_length (ids), ==, 4);
	g_assert_cmpstr (ids[0], ==, json_object_get_string_member (listed_image (images, "u/u.img"),
								     "id"));
	g_assert_cmpstr (ids[3], ==, "");
}

static void
test_cache_limit (Fixture *f, gconstpointer data)
{
	g_autofree char *small = g_build_filename (f->dir, "small.raw", NULL);
	g_autofree char *big = g_build_filename (f->dir, "big.raw", NULL);
	g_autoptr (CtlResult) imported = NULL;
	g_autoptr (CtlResult) too_big = NULL;
	g_autoptr (CtlResult) pruned = NULL;
	g_autoptr (CtlResult) table = NULL;
	g_autoptr (JsonArray) images = NULL;

	/* Limit 2 MiB: a 1 MiB image fits, 4 MiB of random data does not. */
	vmi_test_make_pattern_image (small, 1024 * 1024, 37);
	make_random_file (big, 4 * 1024 * 1024);
	imported = run_ctl (f, "cache", "import", "-q", small, NULL);
	g_assert_cmpint (imported->status, ==, 0);
	too_big = run_ctl (f, "cache", "import", big, NULL);
	g_assert_cmpint (too_big->status, ==, 1);
	g_assert_true (g_str_has_prefix (too_big->err, "vmimagectl: cache import failed: NoSpace: "));
	g_assert_nonnull (strstr (too_big->err, "CacheLimit"));
	g_assert_null (strstr (too_big->out, "imported"));
	images = cache_list_json (f);
	g_assert_cmpuint (json_array_get_length (images), ==, 1);
	g_assert_cmpuint (count_cache_files (f, ".tmp-"), ==, 0);

	pruned = run_ctl (f, "cache", "prune", NULL);
	g_assert_cmpint (pruned->status, ==, 0);
	g_assert_true (g_regex_match_simple ("^freed 0 B; the cache takes [^\n]+ of its 2 MiB limit\n$",
					     pruned->out, 0, 0));
	table = run_ctl (f, "cache", "list", NULL);
	g_assert_nonnull (strstr (table->out, "\n1 image, "));
	g_assert_nonnull (strstr (table->out, " on disk of a 2 MiB limit\n"));
}

static void
test_cache_prune_no_limit (Fixture *f, gconstpointer data)
{
	g_autoptr (CtlResult) pruned = run_ctl (f, "cache", "prune", NULL);

	g_assert_cmpint (pruned->status, ==, 0);
	g_assert_cmpstr (pruned->out, ==,
			 "the cache has no limit (CacheLimit); nothing to prune; it takes 0 B\n");
}

static void
test_cache_import_sigint (Fixture *f, gconstpointer data)
{
	g_autofree char *source = g_build_filename (f->dir, "slow.qcow2", NULL);
	g_autoptr (CtlResult) result = NULL;
	g_autoptr (CtlResult) empty = NULL;

	/* Seconds of inflating for the content digest: time to interrupt it. */
	vmi_test_make_compressed_qcow2 (source, 4ull << 30, 0x5a);
	result = run_ctl_interrupted (f, "cache", "import", source, NULL);
	g_assert_cmpint (result->status, ==, 130);
	g_assert_nonnull (strstr (result->err, "cache import cancelled; nothing was added"));
	g_assert_null (strstr (result->out, "imported"));
	empty = run_ctl (f, "cache", "list", NULL);
	g_assert_cmpstr (empty->out, ==, "the cache is empty\n");
	g_assert_cmpuint (count_cache_files (f, ".tmp-"), ==, 0);
	g_assert_cmpuint (count_cache_files (f, ".img"), ==, 0);
}

/* ---- check, compare, measure, jobs --wait/--cancel ---- */

/* The lines of text that start with prefix, joined: what to compare with qemu-img's output. */
static char *
lines_with_prefix (const char *text, const char *prefix)
{
	g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
	GString *out = g_string_new (NULL);

	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix (lines[i], prefix))
			g_string_append_printf (out, "%s\n", lines[i]);
	}
	return g_string_free (out, FALSE);
}

/* qemu-img's exit status and stdout for a command line. */
static int
qemu_img_out (char **out, const char *format, ...) G_GNUC_PRINTF (2, 3);
static int
qemu_img_out (char **out, const char *format, ...)
{
	g_autofree char *args = NULL;
	va_list ap;

	va_start (ap, format);
	args = g_strdup_vprintf (format, ap);
	va_end (ap);
	return vmi_test_sh (out, "qemu-img %s", args);
}

static void
set_qcow2_refcount (const char *path, guint64 cluster, guint16 value)
{
	guint64 table = vmi_test_read_le64 (path, 48);
	guint64 block;
	guint16 be = GUINT16_TO_BE (value);

	/* Header fields are big-endian: the helper read them little-endian. */
	table = GUINT64_FROM_BE (GUINT64_TO_LE (table));
	block = GUINT64_FROM_BE (GUINT64_TO_LE (vmi_test_read_le64 (path, table)));
	vmi_test_write_bytes (path, block + 2 * cluster, &be, sizeof be);
}

static void
test_check_good (Fixture *f, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autofree char *qemu = NULL;
	g_autofree char *ours = NULL;
	g_autofree char *theirs = NULL;
	g_autofree char *sha = NULL;
	g_autofree char *md5 = NULL;
	g_autofree char *line = NULL;
	g_autoptr (CtlResult) result = NULL;
	g_autoptr (CtlResult) json = NULL;
	g_autoptr (JsonParser) parser = json_parser_new ();
	g_autoptr (GError) error = NULL;
	JsonObject *object;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (f, "disk.qcow2", 3 * 1024 * 1024, 3);
	g_assert_cmpint (qemu_img_out (&qemu, "check '%s'", path), ==, 0);
	result = run_ctl (f, "check", "--sha256", "--md5", path, NULL);
	g_assert_cmpint (result->status, ==, 0);
	/* The same words and image end offset as qemu-img check. */
	ours = lines_with_prefix (result->out, "No errors");
	g_assert_cmpstr (ours, ==, "No errors were found on the image.\n");
	g_free (ours);
	ours = lines_with_prefix (result->out, "Image end offset: ");
	theirs = lines_with_prefix (qemu, "Image end offset: ");
	g_assert_cmpstr (ours, ==, theirs);
	g_assert_cmpint (vmi_test_sh (&sha, "sha256sum '%s' | cut -d' ' -f1", path), ==, 0);
	g_assert_cmpint (vmi_test_sh (&md5, "md5sum '%s' | cut -d' ' -f1", path), ==, 0);
	line = g_strdup_printf ("\nsha256: %s", sha);
	g_assert_nonnull (strstr (result->out, line));
	g_free (line);
	line = g_strdup_printf ("\nmd5: %s", md5);
	g_assert_nonnull (strstr (result->out, line));

	json = run_ctl (f, "check", "--json", "--content-sha256", path, NULL);
	g_assert_cmpint (json->status, ==, 0);
	json_parser_load_from_data (parser, json->out, -1, &error);
	g_assert_no_error (error);
	object = json_node_get_object (json_parser_get_root (parser));
	g_assert_cmpint (json_int (object, "corruptions"), ==, 0);
	g_assert_cmpint (json_int (object, "leaks"), ==, 0);
	g_assert_cmpuint (strlen (json_object_get_string_member (object, "content-sha256")), ==, 64);
}

/* A used cluster with refcount 0 exits 2; an unused one with refcount 1 exits 3: as qemu-img. */
static void
test_check_exit_codes (Fixture *f, gconstpointer data)
{
	g_autofree char *bad = NULL;
	g_autofree char *leaky = NULL;
	g_autofree char *qemu = NULL;
	g_autoptr (CtlResult) result = NULL;
	g_autoptr (CtlResult) leaks = NULL;
	guint64 l1, l2, cluster, size;

	if (!vmi_test_require_qemu_img ())
		return;
	bad = make_qcow2 (f, "bad.qcow2", 2 * 1024 * 1024, 4);
	l1 = GUINT64_FROM_BE (GUINT64_TO_LE (vmi_test_read_le64 (bad, 40)));
	l2 = GUINT64_FROM_BE (GUINT64_TO_LE (vmi_test_read_le64 (bad, l1))) &
	     G_GUINT64_CONSTANT (0x00fffffffffffe00);
	cluster = (GUINT64_FROM_BE (GUINT64_TO_LE (vmi_test_read_le64 (bad, l2))) &
		   G_GUINT64_CONSTANT (0x00fffffffffffe00)) >> 16;
	set_qcow2_refcount (bad, cluster, 0);
	g_assert_cmpint (qemu_img_out (&qemu, "check '%s'", bad), ==, 2);
	result = run_ctl (f, "check", bad, NULL);
	g_assert_cmpint (result->status, ==, 2);
	g_assert_nonnull (strstr (result->out, " errors were found on the image.\n"));

	leaky = make_qcow2 (f, "leaky.qcow2", 2 * 1024 * 1024, 5);
	size = vmi_test_file_size (leaky);
	vmi_test_sh_ok ("truncate -s %" G_GUINT64_FORMAT " '%s'",
			((size + 65535) / 65536 + 1) * 65536, leaky);
	set_qcow2_refcount (leaky, (size + 65535) / 65536, 1);
	g_free (qemu);
	g_assert_cmpint (qemu_img_out (&qemu, "check '%s'", leaky), ==, 3);
	leaks = run_ctl (f, "check", leaky, NULL);
	g_assert_cmpint (leaks->status, ==, 3);
	g_assert_nonnull (strstr (leaks->out, "1 leaked clusters were found on the image.\n"));
}

static void
test_check_errors (Fixture *f, gconstpointer data)
{
	g_autofree char *missing = g_build_filename (f->dir, "missing.qcow2", NULL);
	g_autoptr (CtlResult) result = run_ctl (f, "check", missing, NULL);
	g_autoptr (CtlResult) usage = run_ctl (f, "check", NULL);

	g_assert_cmpint (result->status, ==, 1);
	g_assert_nonnull (strstr (result->err, "missing.qcow2"));
	g_assert_cmpint (usage->status, ==, 2);
}

/* An OVA is checked through its disk; a disk it lacks is the daemon's InvalidArgument. */
static void
test_check_ova (Fixture *f, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (f->dir, "disk.raw", NULL);
	g_autofree char *ova = g_build_filename (f->dir, "vm.ova", NULL);
	g_autoptr (CtlResult) converted = NULL;
	g_autoptr (CtlResult) result = NULL;
	g_autoptr (CtlResult) missing = NULL;

	vmi_test_make_pattern_image (raw, 2 * 1024 * 1024, 8);
	converted = run_ctl (f, "convert", "-q", raw, ova, "-O", "ova", NULL);
	if (converted->status != 0 && strstr (converted->err, "UnknownFormat") != NULL) {
		g_test_skip ("no ova plugin in this build");
		return;
	}
	g_assert_cmpint (converted->status, ==, 0);
	result = run_ctl (f, "check", ova, NULL);
	g_assert_cmpint (result->status, ==, 0);
	g_assert_true (g_str_has_prefix (result->out, "Checked the container's member "));
	g_assert_nonnull (strstr (result->out, "\nNo errors were found on the image.\n"));
	missing = run_ctl (f, "check", "--disk", "3", ova, NULL);
	g_assert_cmpint (missing->status, ==, 1);
	g_assert_nonnull (strstr (missing->err, "InvalidArgument"));
}

/* Output and exit status as qemu-img compare's, for a difference on a sector boundary. */
static void
test_compare (Fixture *f, gconstpointer data)
{
	g_autofree char *qcow2 = NULL;
	g_autofree char *raw = g_build_filename (f->dir, "copy.raw", NULL);
	g_autofree char *qemu = NULL;
	g_autoptr (CtlResult) same = NULL;
	g_autoptr (CtlResult) differ = NULL;
	g_autoptr (CtlResult) json = NULL;
	g_autoptr (CtlResult) quiet = NULL;
	g_autoptr (CtlResult) missing = NULL;
	g_autofree char *nowhere = g_build_filename (f->dir, "nowhere.raw", NULL);

	if (!vmi_test_require_qemu_img ())
		return;
	qcow2 = make_qcow2 (f, "disk.qcow2", 2 * 1024 * 1024, 6);
	vmi_test_qemu_img ("convert -f qcow2 -O raw '%s' '%s'", qcow2, raw);
	g_assert_cmpint (qemu_img_out (&qemu, "compare '%s' '%s'", qcow2, raw), ==, 0);
	same = run_ctl (f, "compare", qcow2, raw, NULL);
	g_assert_cmpint (same->status, ==, 0);
	g_assert_cmpstr (same->out, ==, qemu);

	vmi_test_write_bytes (raw, 1024 * 1024 + 512, "#", 1);
	g_free (qemu);
	g_assert_cmpint (qemu_img_out (&qemu, "compare '%s' '%s'", qcow2, raw), ==, 1);
	differ = run_ctl (f, "compare", qcow2, raw, NULL);
	g_assert_cmpint (differ->status, ==, 1);
	g_assert_cmpstr (differ->out, ==, qemu);
	g_assert_cmpstr (differ->out, ==, "Content mismatch at offset 1049088!\n");

	json = run_ctl (f, "compare", "--json", qcow2, raw, NULL);
	g_assert_cmpint (json->status, ==, 1);
	g_assert_nonnull (strstr (json->out, "\"first-difference\": 1049088"));
	quiet = run_ctl (f, "compare", "-q", qcow2, raw, NULL);
	g_assert_cmpint (quiet->status, ==, 1);
	g_assert_cmpstr (quiet->out, ==, "");
	missing = run_ctl (f, "compare", qcow2, nowhere, NULL);
	g_assert_cmpint (missing->status, ==, 2);
}

static void
test_measure (Fixture *f, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (f->dir, "disk.raw", NULL);
	g_autofree char *qemu = NULL;
	g_autoptr (CtlResult) result = NULL;
	g_autoptr (CtlResult) unknown = NULL;
	g_autoptr (CtlResult) usage = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (raw, 6 * 1024 * 1024, 7);
	g_assert_cmpint (qemu_img_out (&qemu, "measure -f raw -O qcow2 -o cluster_size=16384 '%s'",
				       raw),
			 ==, 0);
	result = run_ctl (f, "measure", "-O", "qcow2", "-o", "cluster-size=16K", raw, NULL);
	g_assert_cmpint (result->status, ==, 0);
	g_assert_cmpstr (result->out, ==, qemu);
	unknown = run_ctl (f, "measure", "-O", "no-such-format", raw, NULL);
	g_assert_cmpint (unknown->status, ==, 1);
	g_assert_nonnull (strstr (unknown->err, "UnknownFormat"));
	usage = run_ctl (f, "measure", raw, NULL);
	g_assert_cmpint (usage->status, ==, 2);
}

/* A check job that takes a few seconds: every cluster of a 4 GiB disk inflated. */
static char *
start_slow_check (Fixture *f, const char *path)
{
	g_autoptr (GVariant) reply = NULL;
	g_autoptr (GError) error = NULL;
	char *job = NULL;

	reply = g_dbus_connection_call_sync (
		vmi_test_bus_get_connection (f->bus), "org.vmimaged.VMImage1",
		"/org/vmimaged/VMImage1/Manager", "org.vmimaged.VMImage1.Manager", "Check",
		g_variant_new ("(s@a{sv})", path, g_variant_new ("a{sv}", NULL)),
		G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(o)", &job);
	return job;
}

static void
test_jobs_wait_cancel (Fixture *f, gconstpointer data)
{
	g_autofree char *path = g_build_filename (f->dir, "slow.qcow2", NULL);
	g_autofree char *first = NULL;
	g_autofree char *second = NULL;
	g_autoptr (CtlResult) waited = NULL;
	g_autoptr (CtlResult) cancelled = NULL;
	g_autoptr (CtlResult) after = NULL;
	g_autoptr (CtlResult) bad = NULL;
	g_autoptr (CtlResult) gone = NULL;
	const char *number;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_compressed_qcow2 (path, G_GUINT64_CONSTANT (4) << 30, 0x5a);
	first = start_slow_check (f, path);
	waited = run_ctl (f, "jobs", "--wait", first, "--json", NULL);
	g_assert_cmpint (waited->status, ==, 0);
	g_assert_nonnull (strstr (waited->out, "\"corruptions\": 0"));

	second = start_slow_check (f, path);
	number = strrchr (second, '/') + 1;
	cancelled = run_ctl (f, "jobs", "--cancel", number, NULL);
	g_assert_cmpint (cancelled->status, ==, 0);
	after = run_ctl (f, "jobs", "--wait", number, NULL);
	g_assert_cmpint (after->status, ==, 1);
	g_assert_nonnull (strstr (after->err, "Cancelled"));

	bad = run_ctl (f, "jobs", "--wait", "seven", NULL);
	g_assert_cmpint (bad->status, ==, 2);
	gone = run_ctl (f, "jobs", "--cancel", "999999", NULL);
	g_assert_cmpint (gone->status, ==, 1);
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
	ADD ("cache/import-list", test_cache_import_list);
	ADD ("cache/export", test_cache_export);
	ADD ("cache/set-verify-rm", test_cache_set_verify_rm);
	ADD ("cache/unknown", test_cache_unknown);
	ADD ("cache/prune-no-limit", test_cache_prune_no_limit);
	ADD ("cache/import-sigint", test_cache_import_sigint);
	ADD ("cache/list-control-characters", test_cache_list_control_characters);
	ADD ("cache/import-bundle", test_cache_import_bundle);
	ADD ("check/good", test_check_good);
	ADD ("check/exit-codes", test_check_exit_codes);
	ADD ("check/errors", test_check_errors);
	ADD ("check/ova", test_check_ova);
	ADD ("compare", test_compare);
	ADD ("measure", test_measure);
	ADD ("jobs/wait-cancel", test_jobs_wait_cancel);
	g_test_add ("/vmimagectl/cache/limit", Fixture, "2M", fixture_set_up_limit,
		    test_cache_limit, fixture_tear_down);
#undef ADD
	return g_test_run ();
}
