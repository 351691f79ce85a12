/* Who called a method, and file operations done with that caller's identity. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmi-caller.h"
#include "vmi-plugin.h"

#define VMI_NOGROUP_GID 65534
/* How long one file operation as the caller may take. */
#define VMI_CALLER_TIMEOUT_MS (60 * 1000)

typedef enum {
	VMI_CALLER_OP_OPEN_IMAGE,
	VMI_CALLER_OP_OPEN_DIR,
	VMI_CALLER_OP_STAT_AT,
	VMI_CALLER_OP_CREATE_AT,
	VMI_CALLER_OP_RENAME_AT,
	VMI_CALLER_OP_UNLINK_AT,
	VMI_CALLER_OP_OPEN_SIBLING_AT,
} VmiCallerOpKind;

typedef struct {
	VmiCallerOpKind kind;
	int dir_fd;
	const char *name;
	const char *name2;
	gboolean overwrite;
	mode_t mode; /* for VMI_CALLER_OP_CREATE_AT */
} VmiCallerOp;

/* What the op sends back: result is an fd (>= 0, passed with SCM_RIGHTS), 0, or -errno. */
typedef struct {
	int result;
	int value; /* st_mode for VMI_CALLER_OP_STAT_AT */
	int switch_failed;
} VmiCallerReply;

VmiCaller *
vmi_caller_new_self (void)
{
	VmiCaller *self = g_new0 (VmiCaller, 1);
	int n = getgroups (0, NULL);

	self->uid = geteuid ();
	self->gid = getegid ();
	if (n > 0) {
		self->groups = g_new0 (gid_t, n);
		n = getgroups (n, self->groups);
		self->n_groups = n > 0 ? (gsize) n : 0;
	}
	self->pid = (guint32) getpid ();
	return self;
}

VmiCaller *
vmi_caller_copy (const VmiCaller *self)
{
	VmiCaller *copy = g_memdup2 (self, sizeof *self);

	copy->sender = g_strdup (self->sender);
	copy->groups = g_memdup2 (self->groups, sizeof (gid_t) * MAX (self->n_groups, 1));
	return copy;
}

void
vmi_caller_free (VmiCaller *self)
{
	if (self == NULL)
		return;
	g_free (self->sender);
	g_free (self->groups);
	g_free (self);
}

static gid_t
vmi_caller_primary_gid (uid_t uid, const gid_t *groups, gsize n_groups)
{
	struct passwd pw;
	struct passwd *result = NULL;
	char buf[4096];

	if (getpwuid_r (uid, &pw, buf, sizeof buf, &result) == 0 && result != NULL)
		return pw.pw_gid;
	/* A uid without a passwd entry: never fall back to the daemon's own (root) group. */
	if (n_groups > 0)
		return groups[0];
	return VMI_NOGROUP_GID;
}

VmiCaller *
vmi_caller_new_for_sender (GDBusConnection *connection, const char *sender,
			   GCancellable *cancellable, GError **error)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) creds = NULL;
	g_autoptr(GVariant) gids = NULL;
	g_autoptr(VmiCaller) self = g_new0 (VmiCaller, 1);
	guint32 uid = 0;
	guint32 pid = 0;

	reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
					     "org.freedesktop.DBus", "GetConnectionCredentials",
					     g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(a{sv})"),
					     G_DBUS_CALL_FLAGS_NONE, -1, cancellable, error);
	if (reply == NULL) {
		g_prefix_error (error, "Cannot find out who %s is: ", sender);
		return NULL;
	}
	creds = g_variant_get_child_value (reply, 0);
	if (!g_variant_lookup (creds, "UnixUserID", "u", &uid)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_ACCESS_DENIED,
			     "The bus did not report the user id of %s", sender);
		return NULL;
	}
	self->sender = g_strdup (sender);
	self->uid = uid;
	if (g_variant_lookup (creds, "ProcessID", "u", &pid))
		self->pid = pid;
	gids = g_variant_lookup_value (creds, "UnixGroupIDs", G_VARIANT_TYPE ("au"));
	if (gids != NULL) {
		gsize n = 0;
		const guint32 *v = g_variant_get_fixed_array (gids, &n, sizeof (guint32));

		self->groups = g_new0 (gid_t, MAX (n, 1));
		for (gsize i = 0; i < n; i++)
			self->groups[i] = v[i];
		self->n_groups = n;
	} else {
		/* An old bus: take the groups from the group database instead. */
		struct passwd pw;
		struct passwd *result = NULL;
		char buf[4096];
		int n = 64;

		self->groups = g_new0 (gid_t, n);
		if (getpwuid_r (uid, &pw, buf, sizeof buf, &result) == 0 && result != NULL &&
		    getgrouplist (pw.pw_name, pw.pw_gid, self->groups, &n) >= 0)
			self->n_groups = (gsize) n;
	}
	self->gid = vmi_caller_primary_gid (self->uid, self->groups, self->n_groups);
	return g_steal_pointer (&self);
}

/* Only async-signal-safe calls from here on: this runs in a child forked from a threaded process. */
static int
vmi_caller_op_exec (const VmiCallerOp *op, int *value)
{
	struct stat st;
	int fd;

	switch (op->kind) {
	case VMI_CALLER_OP_OPEN_IMAGE:
		/* O_NONBLOCK: a FIFO must not block the open; the type is checked afterwards. */
		fd = open (op->name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		return fd >= 0 ? fd : -errno;
	case VMI_CALLER_OP_OPEN_DIR:
		fd = open (op->name, O_PATH | O_DIRECTORY | O_CLOEXEC);
		return fd >= 0 ? fd : -errno;
	case VMI_CALLER_OP_STAT_AT:
		if (fstatat (op->dir_fd, op->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return -errno;
		*value = (int) st.st_mode;
		return 0;
	case VMI_CALLER_OP_CREATE_AT:
		fd = openat (op->dir_fd, op->name,
			     O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, op->mode);
		if (fd < 0)
			return -errno;
		/* The mode asked for, whatever the daemon's umask. */
		(void) fchmod (fd, op->mode);
		return fd;
	case VMI_CALLER_OP_RENAME_AT:
		if (renameat2 (op->dir_fd, op->name, op->dir_fd, op->name2,
			       op->overwrite ? 0 : RENAME_NOREPLACE) == 0)
			return 0;
		if (op->overwrite || (errno != EINVAL && errno != ENOSYS))
			return -errno;
		/* A file system without RENAME_NOREPLACE: link(2) also refuses to replace. */
		if (linkat (op->dir_fd, op->name, op->dir_fd, op->name2, 0) != 0)
			return -errno;
		(void) unlinkat (op->dir_fd, op->name, 0);
		return 0;
	case VMI_CALLER_OP_UNLINK_AT:
		return unlinkat (op->dir_fd, op->name, 0) == 0 ? 0 : -errno;
	case VMI_CALLER_OP_OPEN_SIBLING_AT:
		/* Looked at before it is opened: opening a device or FIFO can have effects. */
		if (fstatat (op->dir_fd, op->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return -errno;
		if (S_ISLNK (st.st_mode))
			return -ELOOP;
		if (!S_ISREG (st.st_mode)) {
			*value = (int) st.st_mode;
			return -EINVAL;
		}
		fd = openat (op->dir_fd, op->name,
			     O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		return fd >= 0 ? fd : -errno;
	default:
		return -EINVAL;
	}
}

static gboolean
vmi_caller_op_returns_fd (const VmiCallerOp *op)
{
	return op->kind == VMI_CALLER_OP_OPEN_IMAGE || op->kind == VMI_CALLER_OP_OPEN_DIR ||
	       op->kind == VMI_CALLER_OP_CREATE_AT || op->kind == VMI_CALLER_OP_OPEN_SIBLING_AT;
}

/* Closes every descriptor above stderr but keep_a and keep_b (either may be -1). */
static void
vmi_caller_close_other_fds (int keep_a, int keep_b)
{
	unsigned int lo = (unsigned int) MIN (keep_a, keep_b);
	unsigned int hi = (unsigned int) MAX (keep_a, keep_b);
	unsigned int from = 3;

	if (keep_a < 0 || keep_b < 0)
		lo = hi;
	if (hi >= 3 && lo >= 3 && lo < hi) {
		if (lo > from)
			(void) close_range (from, lo - 1, 0);
		from = lo + 1;
	}
	if (hi >= 3) {
		if (hi > from)
			(void) close_range (from, hi - 1, 0);
		from = hi + 1;
	}
	(void) close_range (from, ~0u, 0);
}

G_GNUC_NORETURN static void
vmi_caller_child (VmiCaller *self, const VmiCallerOp *op, int sock)
{
	VmiCallerReply reply = { 0 };
	struct iovec iov = { &reply, sizeof reply };
	struct msghdr msg = { 0 };
	union {
		char buf[CMSG_SPACE (sizeof (int))];
		struct cmsghdr align;
	} control;

	memset (&control, 0, sizeof control);
	/*
	 * The child becomes the caller: it must hold nothing of the daemon's (the bus socket,
	 * other callers' files, which /proc/self/fd would reach) and must not be traceable.
	 */
	vmi_caller_close_other_fds (sock, op->dir_fd);
	(void) prctl (PR_SET_DUMPABLE, 0);
	if (setgroups (self->n_groups, self->groups) != 0 ||
	    setresgid (self->gid, self->gid, self->gid) != 0 ||
	    setresuid (self->uid, self->uid, self->uid) != 0) {
		reply.result = -errno;
		reply.switch_failed = 1;
	} else {
		reply.result = vmi_caller_op_exec (op, &reply.value);
	}
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (reply.result >= 0 && vmi_caller_op_returns_fd (op)) {
		struct cmsghdr *cmsg;

		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof control.buf;
		cmsg = CMSG_FIRSTHDR (&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN (sizeof (int));
		memcpy (CMSG_DATA (cmsg), &reply.result, sizeof (int));
	}
	if (sendmsg (sock, &msg, MSG_NOSIGNAL) < 0)
		_exit (1);
	_exit (0);
}

static gboolean
vmi_caller_receive (int sock, VmiCallerReply *reply, int *fd_out, gboolean *timed_out)
{
	struct iovec iov = { reply, sizeof *reply };
	struct msghdr msg = { 0 };
	union {
		char buf[CMSG_SPACE (sizeof (int))];
		struct cmsghdr align;
	} control;
	ssize_t n;

	memset (&control, 0, sizeof control);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof control.buf;
	/* A path on a hung network or FUSE mount (or a child the caller stopped) must not hold a
	 * daemon thread for ever. */
	for (;;) {
		struct pollfd pfd = { sock, POLLIN, 0 };
		int r = poll (&pfd, 1, VMI_CALLER_TIMEOUT_MS);

		if (r > 0)
			break;
		if (r == 0 || errno != EINTR) {
			*timed_out = TRUE;
			return FALSE;
		}
	}
	do
		n = recvmsg (sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t) sizeof *reply)
		return FALSE;
	for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c != NULL; c = CMSG_NXTHDR (&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN (sizeof (int)))
			memcpy (fd_out, CMSG_DATA (c), sizeof (int));
	}
	return TRUE;
}

/* Returns like vmi_caller_op_exec; *switch_failed when the child could not become the caller. */
static int
vmi_caller_run (VmiCaller *self, const VmiCallerOp *op, int *value, gboolean *switch_failed)
{
	VmiCallerReply reply = { 0 };
	int sv[2];
	int fd = -1;
	int status = 0;
	pid_t pid;
	gboolean ok;
	gboolean timed_out = FALSE;

	*switch_failed = FALSE;
	if (vmi_caller_is_daemon_user (self))
		return vmi_caller_op_exec (op, value);

	if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return -errno;
	pid = fork ();
	if (pid < 0) {
		int errsv = errno;

		close (sv[0]);
		close (sv[1]);
		return -errsv;
	}
	if (pid == 0) {
		close (sv[0]);
		vmi_caller_child (self, op, sv[1]);
	}
	close (sv[1]);
	ok = vmi_caller_receive (sv[0], &reply, &fd, &timed_out);
	close (sv[0]);
	if (timed_out)
		kill (pid, SIGKILL);
	while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!ok) {
		if (fd >= 0)
			close (fd);
		return timed_out ? -ETIMEDOUT : -EIO;
	}
	*switch_failed = reply.switch_failed != 0;
	*value = reply.value;
	if (reply.result >= 0 && vmi_caller_op_returns_fd (op)) {
		if (fd < 0)
			return -EIO;
		return fd;
	}
	if (fd >= 0)
		close (fd);
	return reply.result;
}

void
vmi_caller_set_errno_error (GError **error, int errsv, const char *what, const char *path)
{
	gint code;

	switch (errsv) {
	case EACCES:
	case EPERM:
	case EROFS:
		code = VMI_ERROR_ACCESS_DENIED;
		break;
	case ENOENT:
	case ENOTDIR:
	case ELOOP:
	case ENAMETOOLONG:
	case EISDIR:
	case ENXIO:
		code = VMI_ERROR_INVALID_ARGUMENT;
		break;
	case EEXIST:
	case ENOTEMPTY:
		code = VMI_ERROR_EXISTS;
		break;
	case ENOSPC:
	case EDQUOT:
		code = VMI_ERROR_NO_SPACE;
		break;
	default:
		code = VMI_ERROR_FAILED;
		break;
	}
	g_set_error (error, VMI_ERROR, code, "Cannot %s %s: %s", what, path, g_strerror (errsv));
}

static gboolean
vmi_caller_check (VmiCaller *self, int result, gboolean switch_failed, const char *what,
		  const char *path, GError **error)
{
	if (switch_failed) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_ACCESS_DENIED,
			     "Cannot %s %s: the daemon cannot act as user %u (%s); run it as root "
			     "or call it as the user it runs as",
			     what, path, (guint) self->uid, g_strerror (-result));
		return FALSE;
	}
	if (result < 0) {
		vmi_caller_set_errno_error (error, -result, what, path);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_caller_is_daemon_user (VmiCaller *self)
{
	return self->uid == geteuid ();
}

gboolean
vmi_caller_check_path (const char *path, const char *what, GError **error)
{
	if (path == NULL || *path == '\0') {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "The %s path is empty; give an absolute path", what);
		return FALSE;
	}
	if (!g_path_is_absolute (path)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "The %s path \"%s\" is relative; the daemon has no working directory "
			     "of yours, so give an absolute path", what, path);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_caller_check_image_fd (int fd, const char *path, GError **error)
{
	struct stat st;
	const char *kind = NULL;

	if (fstat (fd, &st) != 0) {
		vmi_caller_set_errno_error (error, errno, "examine", path);
		return FALSE;
	}
	if (S_ISREG (st.st_mode) || S_ISBLK (st.st_mode))
		return TRUE;
	if (S_ISDIR (st.st_mode))
		kind = "a directory";
	else if (S_ISFIFO (st.st_mode))
		kind = "a FIFO";
	else if (S_ISSOCK (st.st_mode))
		kind = "a socket";
	else if (S_ISCHR (st.st_mode))
		kind = "a character device";
	else
		kind = "not a regular file";
	g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
		     "%s is %s; an image must be a regular file or a block device", path, kind);
	return FALSE;
}

int
vmi_caller_open_image (VmiCaller *self, const char *path, GError **error)
{
	VmiCallerOp op = { VMI_CALLER_OP_OPEN_IMAGE, -1, path, NULL, FALSE };
	gboolean switch_failed = FALSE;
	int value = 0;
	int fd;
	int flags;

	if (!vmi_caller_check_path (path, "image", error))
		return -1;
	fd = vmi_caller_run (self, &op, &value, &switch_failed);
	if (fd == -ENXIO) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "%s is a socket or a device that is not there; an image must be a "
			     "regular file or a block device", path);
		return -1;
	}
	if (!vmi_caller_check (self, fd, switch_failed, "open", path, error))
		return -1;
	if (!vmi_caller_check_image_fd (fd, path, error)) {
		close (fd);
		return -1;
	}
	flags = fcntl (fd, F_GETFL);
	if (flags >= 0)
		(void) fcntl (fd, F_SETFL, flags & ~O_NONBLOCK);
	return fd;
}

int
vmi_caller_open_dir (VmiCaller *self, const char *path, GError **error)
{
	g_autofree char *dir = NULL;
	VmiCallerOp op = { VMI_CALLER_OP_OPEN_DIR, -1, NULL, NULL, FALSE };
	gboolean switch_failed = FALSE;
	int value = 0;
	int fd;

	if (!vmi_caller_check_path (path, "image", error))
		return -1;
	dir = g_path_get_dirname (path);
	op.name = dir;
	fd = vmi_caller_run (self, &op, &value, &switch_failed);
	if (!vmi_caller_check (self, fd, switch_failed, "open the folder", dir, error))
		return -1;
	return fd;
}

gboolean
vmi_caller_exists_at (VmiCaller *self, int dir_fd, const char *name, const char *display,
		      gboolean *is_dir, gboolean *exists, GError **error)
{
	VmiCallerOp op = { VMI_CALLER_OP_STAT_AT, dir_fd, name, NULL, FALSE };
	gboolean switch_failed = FALSE;
	int value = 0;
	int r = vmi_caller_run (self, &op, &value, &switch_failed);

	if (!switch_failed && r == -ENOENT) {
		*exists = FALSE;
		*is_dir = FALSE;
		return TRUE;
	}
	if (!vmi_caller_check (self, r, switch_failed, "look up", display, error))
		return FALSE;
	*exists = TRUE;
	*is_dir = S_ISDIR ((mode_t) value);
	return TRUE;
}

int
vmi_caller_create_temp_at (VmiCaller *self, int dir_fd, const char *name, const char *display,
			   mode_t mode, char **tmp_name, GError **error)
{
	/* A few tries in case another job picked the same random suffix. */
	for (guint attempt = 0; attempt < 8; attempt++) {
		g_autofree char *candidate = NULL;
		VmiCallerOp op = { VMI_CALLER_OP_CREATE_AT, dir_fd, NULL, NULL, FALSE, mode };
		gboolean switch_failed = FALSE;
		int value = 0;
		int fd;

		candidate = g_strdup_printf (".%s.%06x.vmimaged-tmp", name,
					     (guint) g_random_int_range (0, 0x1000000));
		op.name = candidate;
		fd = vmi_caller_run (self, &op, &value, &switch_failed);
		if (fd == -EEXIST && !switch_failed)
			continue;
		if (!vmi_caller_check (self, fd, switch_failed, "create a temporary file beside", display, error))
			return -1;
		*tmp_name = g_steal_pointer (&candidate);
		return fd;
	}
	g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
		     "Cannot create a temporary file beside %s: every name tried exists", display);
	return -1;
}

gboolean
vmi_caller_rename_at (VmiCaller *self, int dir_fd, const char *from, const char *to,
		      const char *display, gboolean overwrite, GError **error)
{
	VmiCallerOp op = { VMI_CALLER_OP_RENAME_AT, dir_fd, from, to, overwrite };
	gboolean switch_failed = FALSE;
	int value = 0;
	int r = vmi_caller_run (self, &op, &value, &switch_failed);

	if (r == -EEXIST && !switch_failed) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_EXISTS,
			     "%s appeared while the job ran; set \"overwrite\" to replace it", display);
		return FALSE;
	}
	return vmi_caller_check (self, r, switch_failed, "rename the output to", display, error);
}

gboolean
vmi_caller_unlink_at (VmiCaller *self, int dir_fd, const char *name, const char *display,
		      GError **error)
{
	VmiCallerOp op = { VMI_CALLER_OP_UNLINK_AT, dir_fd, name, NULL, FALSE };
	gboolean switch_failed = FALSE;
	int value = 0;
	int r = vmi_caller_run (self, &op, &value, &switch_failed);

	return vmi_caller_check (self, r, switch_failed, "remove", display, error);
}

int
vmi_caller_open_sibling_at (VmiCaller *self, int dir_fd, const char *name, GError **error)
{
	VmiCallerOp op = { VMI_CALLER_OP_OPEN_SIBLING_AT, dir_fd, name, NULL, FALSE };
	gboolean switch_failed = FALSE;
	struct stat st;
	int value = 0;
	int fd;

	if (name[0] == '\0' || strchr (name, '/') != NULL || strcmp (name, ".") == 0 ||
	    strcmp (name, "..") == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
			     "'%s' is not a plain name in the image's folder", name);
		return -1;
	}
	fd = vmi_caller_run (self, &op, &value, &switch_failed);
	if (switch_failed) {
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
			     "cannot open '%s': the daemon cannot act as user %u (%s)", name,
			     (guint) self->uid, g_strerror (-fd));
		return -1;
	}
	if (fd == -EINVAL && value != 0) {
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE,
			     "'%s' is not a regular file", name);
		return -1;
	}
	if (fd == -ELOOP) {
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_LINKS,
			     "'%s' is a symbolic link, which is not followed", name);
		return -1;
	}
	if (fd < 0) {
		g_set_error (error, G_IO_ERROR, g_io_error_from_errno (-fd), "cannot open '%s': %s",
			     name, g_strerror (-fd));
		return -1;
	}
	/* The child checked before it opened; what it opened is checked again here. */
	if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
		close (fd);
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE,
			     "'%s' is not a regular file", name);
		return -1;
	}
	value = fcntl (fd, F_GETFL);
	if (value >= 0)
		(void) fcntl (fd, F_SETFL, value & ~O_NONBLOCK);
	return fd;
}
