/*
 * Who called a method, and file operations done with that caller's identity.
 *
 * The system daemon runs as root, so opening a path named by a caller with the daemon's own
 * rights would let anyone read or overwrite any file. Every path a caller names is therefore
 * opened (or created, renamed, removed) by a short-lived child process that has switched to the
 * caller's uid and groups; only the resulting file descriptor comes back. When the caller already
 * is the daemon's user, the operation is done in-process.
 */
#pragma once

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct {
	char *sender;  /* unique bus name, or NULL */
	uid_t uid;
	gid_t gid;     /* primary group, from the password database */
	gid_t *groups; /* supplementary groups, from the bus */
	gsize n_groups;
	guint32 pid;   /* 0 when the bus did not say */
} VmiCaller;

/* Asks the bus (org.freedesktop.DBus.GetConnectionCredentials) who sender is. Blocking. */
VmiCaller *vmi_caller_new_for_sender (GDBusConnection *connection, const char *sender,
				      GCancellable *cancellable, GError **error);
/* The daemon's own identity (tests, the fd methods). */
VmiCaller *vmi_caller_new_self (void);
VmiCaller *vmi_caller_copy (const VmiCaller *self);
void vmi_caller_free (VmiCaller *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiCaller, vmi_caller_free)

/* Whether the caller is the user the daemon runs as (root on the system bus, or the session's
 * user): then operations run in-process and the daemon's rights are the caller's. */
gboolean vmi_caller_is_daemon_user (VmiCaller *self);

/*
 * Opens an absolute path read-only as the caller, without blocking on a FIFO, and accepts only
 * a regular file or a block device: anything else is VMI_ERROR_INVALID_ARGUMENT, a permission
 * problem VMI_ERROR_ACCESS_DENIED naming the path. Returns the fd (close-on-exec, blocking).
 */
int vmi_caller_open_image (VmiCaller *self, const char *path, GError **error);

/* Accepts only a regular file or a block device (an fd from a client, say). */
gboolean vmi_caller_check_image_fd (int fd, const char *what, GError **error);

/* Opens the folder of an absolute path (O_PATH) as the caller, for *at() calls. */
int vmi_caller_open_dir (VmiCaller *self, const char *path, GError **error);

/*
 * The *_at calls work on a name in dir_fd (from vmi_caller_open_dir); display is the full path,
 * for messages.
 */

/* Whether name exists in dir_fd (not following a final symlink), looked up as the caller. */
gboolean vmi_caller_exists_at (VmiCaller *self, int dir_fd, const char *name, const char *display,
			       gboolean *is_dir, gboolean *exists, GError **error);

/*
 * Creates "<.name>.XXXXXX.vmimaged-tmp" in dir_fd as the caller (O_EXCL, the given mode whatever
 * the umask, owned by the caller), returning the read-write fd and the chosen name in *tmp_name.
 */
int vmi_caller_create_temp_at (VmiCaller *self, int dir_fd, const char *name, const char *display,
			       mode_t mode, char **tmp_name, GError **error);

/* Renames from to to within dir_fd as the caller; without overwrite an existing to is EXISTS. */
gboolean vmi_caller_rename_at (VmiCaller *self, int dir_fd, const char *from, const char *to,
			       const char *display, gboolean overwrite, GError **error);

/* Removes name from dir_fd as the caller. */
gboolean vmi_caller_unlink_at (VmiCaller *self, int dir_fd, const char *name, const char *display,
			       GError **error);

/*
 * Opens a file that an image names beside itself (a VMDK extent) as the caller: name, a plain
 * name in dir_fd, read-only, not following a symbolic link, and only a regular file. Returns the
 * fd (close-on-exec, blocking) or -1 with a G_IO_ERROR as VmiOpenSiblingFunc says
 * (G_IO_ERROR_NOT_FOUND, G_IO_ERROR_PERMISSION_DENIED, G_IO_ERROR_TOO_MANY_LINKS for a link,
 * G_IO_ERROR_NOT_REGULAR_FILE), or VMI_ERROR_UNSAFE_IMAGE for a name that is not plain.
 */
int vmi_caller_open_sibling_at (VmiCaller *self, int dir_fd, const char *name, GError **error);

/* Checks that path is absolute and not empty: VMI_ERROR_INVALID_ARGUMENT otherwise. */
gboolean vmi_caller_check_path (const char *path, const char *what, GError **error);

/* Sets a VMI_ERROR from errno for an operation on path. */
void vmi_caller_set_errno_error (GError **error, int errsv, const char *what, const char *path);

G_END_DECLS
