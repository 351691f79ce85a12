/*
 * vmi_caller_open_sibling_at, the daemon's open_sibling for a plugin: a plain name in the image's
 * folder, as the caller, not a link, only a regular file, each refusal with the G_IO_ERROR code
 * the plugin ABI promises. As the daemon's own user (in-process) and, when run as root, as
 * nobody (in a child that switched to that uid).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vmi-caller.h"
#include "vmi-plugin.h"

#define NOBODY 65534

typedef struct {
	char *dir;
	int dir_fd;
} Fixture;

static void
write_file (const char *dir, const char *name, const char *text, mode_t mode)
{
	g_autofree char *path = g_build_filename (dir, name, NULL);
	g_autoptr(GError) error = NULL;

	g_assert_true (g_file_set_contents (path, text, -1, &error));
	g_assert_no_error (error);
	g_assert_cmpint (chmod (path, mode), ==, 0);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *fifo = NULL;
	g_autofree char *link = NULL;
	g_autofree char *sub = NULL;

	f->dir = g_dir_make_tmp ("vmimaged-caller-XXXXXX", &error);
	g_assert_no_error (error);
	g_assert_cmpint (chmod (f->dir, 0755), ==, 0);
	write_file (f->dir, "extent.vmdk", "extent data", 0644);
	write_file (f->dir, "private.vmdk", "private data", 0600);
	fifo = g_build_filename (f->dir, "fifo", NULL);
	g_assert_cmpint (mkfifo (fifo, 0644), ==, 0);
	link = g_build_filename (f->dir, "link.vmdk", NULL);
	g_assert_cmpint (symlink ("extent.vmdk", link), ==, 0);
	sub = g_build_filename (f->dir, "sub", NULL);
	g_assert_cmpint (g_mkdir (sub, 0755), ==, 0);
	f->dir_fd = open (f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint (f->dir_fd, >=, 0);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
	g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->dir);

	close (f->dir_fd);
	g_assert_cmpint (system (cmd), ==, 0);
	g_free (f->dir);
}

static void
expect_content (int fd, const char *text)
{
	char buf[64] = { 0 };
	struct stat st;

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (pread (fd, buf, sizeof buf - 1, 0), ==, (gssize) strlen (text));
	g_assert_cmpstr (buf, ==, text);
	/* read-only, close-on-exec, blocking */
	g_assert_cmpint (fcntl (fd, F_GETFL) & O_ACCMODE, ==, O_RDONLY);
	g_assert_cmpint (fcntl (fd, F_GETFL) & O_NONBLOCK, ==, 0);
	g_assert_true ((fcntl (fd, F_GETFD) & FD_CLOEXEC) != 0);
	g_assert_cmpint (fstat (fd, &st), ==, 0);
	g_assert_true (S_ISREG (st.st_mode));
	close (fd);
}

static void
expect_refused (VmiCaller *caller, int dir_fd, const char *name, GQuark domain, gint code)
{
	g_autoptr(GError) error = NULL;
	int fd = vmi_caller_open_sibling_at (caller, dir_fd, name, &error);

	g_assert_cmpint (fd, ==, -1);
	g_assert_error (error, domain, code);
	g_test_message ("%s: %s", name, error->message);
}

static void
check_common (VmiCaller *caller, int dir_fd)
{
	g_autoptr(GError) error = NULL;

	expect_content (vmi_caller_open_sibling_at (caller, dir_fd, "extent.vmdk", &error),
			"extent data");
	g_assert_no_error (error);
	expect_refused (caller, dir_fd, "missing.vmdk", G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	expect_refused (caller, dir_fd, "link.vmdk", G_IO_ERROR, G_IO_ERROR_TOO_MANY_LINKS);
	expect_refused (caller, dir_fd, "fifo", G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE);
	expect_refused (caller, dir_fd, "sub", G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE);
	expect_refused (caller, dir_fd, "..", VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	expect_refused (caller, dir_fd, ".", VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	expect_refused (caller, dir_fd, "", VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	expect_refused (caller, dir_fd, "sub/../extent.vmdk", VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	expect_refused (caller, dir_fd, "/etc/passwd", VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
}

static void
test_self (Fixture *f, gconstpointer data)
{
	g_autoptr(VmiCaller) self = vmi_caller_new_self ();
	g_autoptr(GError) error = NULL;

	check_common (self, f->dir_fd);
	/* the daemon's user reads what it may read */
	expect_content (vmi_caller_open_sibling_at (self, f->dir_fd, "private.vmdk", &error),
			"private data");
	g_assert_no_error (error);
}

static void
test_other_user (Fixture *f, gconstpointer data)
{
	g_autoptr(VmiCaller) nobody = NULL;

	if (geteuid () != 0) {
		g_test_skip ("needs root to open files as another user");
		return;
	}
	nobody = vmi_caller_new_self ();
	nobody->uid = NOBODY;
	nobody->gid = NOBODY;
	nobody->n_groups = 0;
	check_common (nobody, f->dir_fd);
	/* root's private file, which the daemon itself could read */
	expect_refused (nobody, f->dir_fd, "private.vmdk", G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add ("/caller/open-sibling/self", Fixture, NULL, fixture_set_up, test_self,
		    fixture_tear_down);
	g_test_add ("/caller/open-sibling/other-user", Fixture, NULL, fixture_set_up,
		    test_other_user, fixture_tear_down);
	return g_test_run ();
}
