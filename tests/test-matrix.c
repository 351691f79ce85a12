/*
 * Every readable format and subformat, made by qemu-img from one pattern disk, converted over
 * D-Bus by the daemon into every writable format and subformat: each output must hold the same
 * disk as the pattern (qemu-img compare) and pass qemu-img check where qemu-img can check it.
 */
#include <glib/gstdio.h>
#include <string.h>

#include "vmi-test-bus.h"
#include "vmi-test-util.h"

#define MiB (1024u * 1024u)

typedef struct {
	const char *name;	 /* for messages and file names */
	const char *qemu_format; /* qemu-img's name */
	const char *qemu_options; /* qemu-img create options, or NULL */
	const char *our_format;	 /* our name */
	const char *our_options; /* GVariant text of our Convert options */
	gboolean qemu_checks;	 /* qemu-img check supports the format */
} MatrixFormat;

static const MatrixFormat formats[] = {
	{ "raw", "raw", NULL, "raw", "@a{sv} {}", FALSE },
	{ "qcow2", "qcow2", NULL, "qcow2", "@a{sv} {}", TRUE },
	{ "qcow2-compressed", "qcow2", "-c", "qcow2", "{'compress': <true>}", TRUE },
	{ "qcow2-4k", "qcow2", "-o cluster_size=4096", "qcow2", "{'cluster-size': <uint32 4096>}", TRUE },
	{ "vmdk-sparse", "vmdk", "-o subformat=monolithicSparse", "vmdk",
	  "{'subformat': <'monolithicSparse'>}", TRUE },
	{ "vmdk-stream", "vmdk", "-o subformat=streamOptimized", "vmdk",
	  "{'subformat': <'streamOptimized'>}", TRUE },
	{ "vhd-dynamic", "vpc", "-o subformat=dynamic", "vhd", "{'subformat': <'dynamic'>}", FALSE },
	{ "vhd-fixed", "vpc", "-o subformat=fixed", "vhd", "{'subformat': <'fixed'>}", FALSE },
	{ "vhdx-dynamic", "vhdx", "-o subformat=dynamic", "vhdx", "{'subformat': <'dynamic'>}", TRUE },
	{ "vhdx-fixed", "vhdx", "-o subformat=fixed", "vhdx", "{'subformat': <'fixed'>}", TRUE },
	{ "vdi-dynamic", "vdi", NULL, "vdi", "{'subformat': <'dynamic'>}", TRUE },
	{ "vdi-static", "vdi", "-o static=on", "vdi", "{'subformat': <'static'>}", TRUE },
};

static VmiTestBus *bus;
static char *workdir;
static char *pattern; /* the raw disk every image holds */

/* Waits for a job to end; returns its final state and, when it failed, its error message. */
static char *
wait_for_job (const char *job, char **message)
{
	GDBusConnection *connection = vmi_test_bus_get_connection (bus);

	for (guint i = 0; i < 6000; i++) {
		g_autoptr(GVariant) reply = NULL;
		g_autoptr(GVariant) props = NULL;
		g_autoptr(GError) error = NULL;
		const char *state = NULL;

		reply = g_dbus_connection_call_sync (
			connection, "org.vmimaged.VMImage1", job, "org.freedesktop.DBus.Properties",
			"GetAll", g_variant_new ("(s)", "org.vmimaged.VMImage1.Job"),
			G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
		g_assert_no_error (error);
		props = g_variant_get_child_value (reply, 0);
		g_assert_true (g_variant_lookup (props, "State", "&s", &state));
		if (g_strcmp0 (state, "queued") != 0 && g_strcmp0 (state, "running") != 0) {
			g_variant_lookup (props, "ErrorMessage", "s", message);
			return g_strdup (state);
		}
		g_usleep (10 * 1000);
	}
	g_error ("job %s did not end within 60 s", job);
}

static void
convert_over_bus (const char *src, const MatrixFormat *to, const char *dst)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree char *state = NULL;
	g_autofree char *message = NULL;
	const char *job = NULL;

	reply = g_dbus_connection_call_sync (
		vmi_test_bus_get_connection (bus), "org.vmimaged.VMImage1",
		"/org/vmimaged/VMImage1/Manager", "org.vmimaged.VMImage1.Manager", "Convert",
		g_variant_new ("(sss@a{sv})", src, dst, to->our_format,
			       g_variant_new_parsed (to->our_options)),
		G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(&o)", &job);
	state = wait_for_job (job, &message);
	if (g_strcmp0 (state, "completed") != 0)
		g_error ("%s -> %s: job %s: %s", src, to->name, state, message);
}

static void
test_matrix_from (gconstpointer data)
{
	const MatrixFormat *from = data;
	g_autofree char *src = g_strdup_printf ("%s/source.%s", workdir, from->name);
	g_autofree char *qsrc = g_shell_quote (src);
	g_autofree char *qpattern = g_shell_quote (pattern);

	if (!vmi_test_require_qemu_img ())
		return;
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img convert -f raw -O %s %s %s %s",
				      from->qemu_format, from->qemu_options ? from->qemu_options : "",
				      qpattern, qsrc),
			 ==, 0);
	for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
		const MatrixFormat *to = &formats[i];
		g_autofree char *dst = g_strdup_printf ("%s/%s-to.%s", workdir, from->name, to->name);

		g_test_message ("%s -> %s", from->name, to->name);
		convert_over_bus (src, to, dst);
		if (!vmi_test_qemu_img_compare (pattern, "raw", dst, to->qemu_format))
			g_error ("%s -> %s: the output does not hold the pattern disk", from->name,
				 to->name);
		if (to->qemu_checks && !vmi_test_qemu_img_check (dst, to->qemu_format))
			g_error ("%s -> %s: qemu-img check finds errors or leaks", from->name, to->name);
		g_assert_cmpint (g_unlink (dst), ==, 0);
	}
	g_assert_cmpint (g_unlink (src), ==, 0);
}

int
main (int argc, char **argv)
{
	int status;

	g_test_init (&argc, &argv, NULL);
	workdir = vmi_test_tmpdir_new ();
	pattern = g_build_filename (workdir, "pattern.raw", NULL);
	/* Not a multiple of any cluster or block size, with data in the last partial block. */
	vmi_test_make_pattern_image (pattern, 5 * MiB + 3 * 512, 7);
	bus = vmi_test_bus_new ();
	for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
		g_autofree char *name = g_strdup_printf ("/matrix/from-%s", formats[i].name);

		g_test_add_data_func (name, &formats[i], test_matrix_from);
	}
	status = g_test_run ();
	vmi_test_bus_free (bus);
	g_free (pattern);
	vmi_test_tmpdir_free (workdir);
	return status;
}
