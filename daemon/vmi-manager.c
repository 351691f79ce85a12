/* org.vmimaged.VMImage1.Manager and the Cancel method of jobs. */
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-caller.h"
#include "vmi-convert-job.h"
#include "vmi-convert.h"
#include "vmi-daemon.h"
#include "vmi-dbus-error.h"
#include "vmi-manager.h"
#include "vmi-options.h"

struct _VmiManagerImpl {
	VmiManagerSkeleton parent_instance;
	VmiDaemon *daemon;
	guint n_calls; /* main thread */
};

G_DEFINE_TYPE (VmiManagerImpl, vmi_manager_impl, VMI_TYPE_MANAGER_SKELETON)

typedef enum {
	VMI_CALL_INSPECT,
	VMI_CALL_CONVERT,
	VMI_CALL_CANCEL,
} VmiCallKind;

/* One method call on its way through the worker thread. */
typedef struct {
	VmiCallKind kind;
	VmiManagerImpl *manager;
	GDBusMethodInvocation *invocation;
	char *source;      /* path, or NULL for the fd variants */
	char *destination; /* path, or NULL */
	char *format;
	GVariant *options;
	int source_fd;
	mode_t source_mode; /* permission bits of the source, for the output */
	int dest_fd;
	VmiJobImpl *job;   /* Cancel */

	/* Results, for the main thread. */
	VmiCaller *caller;
	GVariant *info;
	VmiConvertJob *convert;
	gboolean cancel_on_disconnect;
} VmiCall;

static void
vmi_call_free (VmiCall *call)
{
	if (call->invocation != NULL)
		g_dbus_method_invocation_return_error_literal (call->invocation, VMI_ERROR,
							       VMI_ERROR_FAILED,
							       "The call ended without a reply");
	g_clear_object (&call->manager);
	g_free (call->source);
	g_free (call->destination);
	g_free (call->format);
	g_clear_pointer (&call->options, g_variant_unref);
	if (call->source_fd >= 0)
		close (call->source_fd);
	if (call->dest_fd >= 0)
		close (call->dest_fd);
	g_clear_object (&call->job);
	g_clear_pointer (&call->caller, vmi_caller_free);
	g_clear_pointer (&call->info, g_variant_unref);
	g_clear_pointer (&call->convert, vmi_convert_job_free);
	g_free (call);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiCall, vmi_call_free)

static VmiCall *
vmi_call_new (VmiCallKind kind, VmiManagerImpl *manager, GDBusMethodInvocation *invocation)
{
	VmiCall *call = g_new0 (VmiCall, 1);

	call->kind = kind;
	call->manager = g_object_ref (manager);
	/* The reply consumes this reference: every reply steals it from the call. */
	call->invocation = invocation;
	call->source_fd = -1;
	call->dest_fd = -1;
	return call;
}

/* Who calls, and may they do action at all: the first thing every method does. */
static gboolean
vmi_call_authorize (VmiCall *call, const char *action, GError **error)
{
	VmiDaemon *daemon = call->manager->daemon;
	const char *sender = g_dbus_method_invocation_get_sender (call->invocation);

	call->caller = vmi_caller_new_for_sender (vmi_daemon_get_connection (daemon), sender, NULL,
						  error);
	if (call->caller == NULL)
		return FALSE;
	return vmi_authority_check (vmi_daemon_get_authority (daemon), sender, action, TRUE, NULL,
				    error);
}

static gboolean
vmi_call_check_fd_access (int fd, gboolean need_write, const char *what, GError **error)
{
	int flags = fcntl (fd, F_GETFL);
	int mode = flags & O_ACCMODE;

	if (flags < 0 || (flags & O_PATH) != 0 || (!need_write && mode == O_WRONLY) ||
	    (need_write && mode != O_RDWR)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "The %s file descriptor must be open for %s", what,
			     need_write ? "reading and writing" : "reading");
		return FALSE;
	}
	if (need_write && (flags & O_APPEND) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "The %s file descriptor must not be in append mode", what);
		return FALSE;
	}
	return TRUE;
}

/* Opens the image named by path (as the caller) or checks the fd the caller sent. */
static VmiSource *
vmi_call_open_source (VmiCall *call, const char *format, gboolean classify, GError **error)
{
	struct stat st;
	VmiRegistry *registry = vmi_daemon_get_registry (call->manager->daemon);
	g_autoptr(GError) error_dir = NULL;
	int fd = call->source_fd;
	int dir_fd = -1;
	VmiSource *source;

	if (call->source != NULL) {
		fd = vmi_caller_open_image (call->caller, call->source, error);
		if (fd < 0)
			return NULL;
		/*
		 * A plugin opens the other files of a multi-file image (VMDK extents) with openat()
		 * on this folder, in this process: with the daemon's rights, not the caller's. So
		 * only a caller who is the daemon's own user gets the folder; for anyone else the
		 * plugin reports those files as references and does not read them, or a descriptor
		 * in a shared folder could name another user's private file and have root read it.
		 * (Lifting this needs the plugin ABI to open siblings through the daemon.)
		 */
		if (vmi_caller_is_daemon_user (call->caller))
			dir_fd = vmi_caller_open_dir (call->caller, call->source, &error_dir);
	} else {
		if (!vmi_call_check_fd_access (fd, FALSE, "source", error) ||
		    !vmi_caller_check_image_fd (fd, "The source file descriptor", error))
			return NULL;
	}
	source = vmi_source_open_full (registry, fd, dir_fd, format, classify, NULL, error);
	if (source != NULL && fstat (fd, &st) == 0)
		call->source_mode = st.st_mode & 0666;
	if (source == NULL && call->source != NULL)
		g_prefix_error (error, "%s: ", call->source);
	if (call->source != NULL)
		close (fd);
	if (dir_fd >= 0)
		close (dir_fd);
	return source;
}

static gboolean
vmi_call_inspect (VmiCall *call, GError **error)
{
	g_autoptr(GVariant) options = NULL;
	g_autoptr(VmiSource) source = NULL;

	if (!vmi_call_authorize (call, VMI_ACTION_INSPECT, error))
		return FALSE;
	options = vmi_options_normalize (call->options, vmi_source_options, NULL, error);
	if (options == NULL)
		return FALSE;
	source = vmi_call_open_source (call, vmi_options_get_string (options, "format", NULL),
				       vmi_options_get_boolean (options, "classify", FALSE), error);
	if (source == NULL)
		return FALSE;
	call->info = vmi_source_to_variant (source);
	return TRUE;
}

/* The destination folder opened as the caller, with no file named like the destination in it
 * unless overwrite, and a new temporary file beside it. */
static gboolean
vmi_call_prepare_destination (VmiCall *call, VmiConvertJob *convert, GError **error)
{
	const char *path = call->destination;
	gboolean exists = FALSE;
	gboolean is_dir = FALSE;

	if (!vmi_caller_check_path (path, "destination", error))
		return FALSE;
	convert->dest_path = g_strdup (path);
	convert->dest_name = g_path_get_basename (path);
	if (g_str_has_suffix (path, "/") || g_strcmp0 (convert->dest_name, ".") == 0 ||
	    g_strcmp0 (convert->dest_name, "..") == 0 || g_strcmp0 (convert->dest_name, "/") == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "The destination %s names a folder; give the path of the new image "
			     "file", path);
		return FALSE;
	}
	convert->dir_fd = vmi_caller_open_dir (call->caller, path, error);
	if (convert->dir_fd < 0)
		return FALSE;
	if (!vmi_caller_exists_at (call->caller, convert->dir_fd, convert->dest_name, path, &is_dir,
				   &exists, error))
		return FALSE;
	if (exists && is_dir) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "The destination %s is a folder; give the path of the new image file",
			     path);
		return FALSE;
	}
	if (exists && !convert->overwrite) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_EXISTS,
			     "%s exists; remove it, choose another name or set the \"overwrite\" "
			     "option", path);
		return FALSE;
	}
	/* The copy is as private as its source: a 0600 image must not become a 0644 one. */
	convert->out_fd = vmi_caller_create_temp_at (call->caller, convert->dir_fd,
						     convert->dest_name, path,
						     call->source_mode != 0 ? call->source_mode : 0600,
						     &convert->tmp_name, error);
	return convert->out_fd >= 0;
}

static gboolean
vmi_call_convert (VmiCall *call, GError **error)
{
	VmiRegistry *registry = vmi_daemon_get_registry (call->manager->daemon);
	g_autoptr(VmiConvertJob) convert = vmi_convert_job_new ();
	const VmiFormatPlugin *src_plugin;
	struct stat st;

	if (!vmi_call_authorize (call, VMI_ACTION_CONVERT, error))
		return FALSE;
	if (call->source != NULL && !vmi_caller_check_path (call->source, "source", error))
		return FALSE;
	if (call->destination != NULL && !vmi_caller_check_path (call->destination, "destination", error))
		return FALSE;
	convert->plugin = vmi_registry_lookup (registry, call->format, error);
	if (convert->plugin == NULL)
		return FALSE;
	if ((convert->plugin->flags & VMI_FORMAT_CAN_WRITE) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged can read %s images but not write them; see Formats for the "
			     "formats with can-write", convert->plugin->name);
		return FALSE;
	}
	convert->options = vmi_options_normalize (call->options, vmi_convert_options,
						  convert->plugin->create_options, error);
	if (convert->options == NULL)
		return FALSE;
	if (call->destination == NULL && g_variant_lookup (convert->options, "overwrite", "b", NULL)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "option \"overwrite\" has no meaning for ConvertFd");
		return FALSE;
	}
	convert->overwrite = vmi_options_get_boolean (convert->options, "overwrite", FALSE);
	call->cancel_on_disconnect = vmi_options_get_boolean (convert->options,
							      "cancel-on-disconnect", FALSE);
	convert->source = vmi_call_open_source (
		call, vmi_options_get_string (convert->options, "source-format", NULL), FALSE, error);
	if (convert->source == NULL)
		return FALSE;
	src_plugin = vmi_source_get_plugin (convert->source);
	if ((src_plugin->flags & VMI_FORMAT_CAN_READ) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged can inspect %s images but not read their content",
			     src_plugin->name);
		return FALSE;
	}
	if (call->destination != NULL) {
		if (!vmi_call_prepare_destination (call, convert, error))
			return FALSE;
	} else {
		if (!vmi_call_check_fd_access (call->dest_fd, TRUE, "destination", error))
			return FALSE;
		if (fstat (call->dest_fd, &st) != 0 || !S_ISREG (st.st_mode) || st.st_size != 0) {
			g_set_error_literal (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
					     "The destination file descriptor must be an empty "
					     "regular file");
			return FALSE;
		}
		convert->out_fd = call->dest_fd;
		call->dest_fd = -1;
	}
	convert->caller = vmi_caller_copy (call->caller);
	call->convert = g_steal_pointer (&convert);
	return TRUE;
}

/* Only the owner, root, or someone polkit allows "manage" may cancel another's job. */
static gboolean
vmi_call_cancel (VmiCall *call, GError **error)
{
	VmiDaemon *daemon = call->manager->daemon;
	const char *sender = g_dbus_method_invocation_get_sender (call->invocation);

	call->caller = vmi_caller_new_for_sender (vmi_daemon_get_connection (daemon), sender, NULL,
						  error);
	if (call->caller == NULL)
		return FALSE;
	if (call->caller->uid == 0 || call->caller->uid == vmi_job_impl_get_owner_uid (call->job))
		return TRUE;
	if (!vmi_authority_is_enabled (vmi_daemon_get_authority (daemon))) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_AUTHORIZED,
			     "Only user %u (who started the job) or root may cancel it",
			     (guint) vmi_job_impl_get_owner_uid (call->job));
		return FALSE;
	}
	return vmi_authority_check (vmi_daemon_get_authority (daemon), sender, VMI_ACTION_MANAGE,
				    TRUE, NULL, error);
}

static void
vmi_call_thread (GTask *task, gpointer source_object, gpointer task_data, GCancellable *cancellable)
{
	VmiCall *call = task_data;
	GError *error = NULL;
	gboolean ok = FALSE;

	switch (call->kind) {
	case VMI_CALL_INSPECT:
		ok = vmi_call_inspect (call, &error);
		break;
	case VMI_CALL_CONVERT:
		ok = vmi_call_convert (call, &error);
		break;
	case VMI_CALL_CANCEL:
		ok = vmi_call_cancel (call, &error);
		break;
	}
	if (!ok) {
		vmi_dbus_error_normalize (&error);
		g_task_return_error (task, error);
		return;
	}
	g_task_return_boolean (task, TRUE);
}

static void vmi_manager_impl_watch_job (VmiManagerImpl *self, VmiJobImpl *job);

static void
vmi_call_start_job (VmiCall *call)
{
	VmiDaemon *daemon = call->manager->daemon;
	VmiConvertJob *convert = call->convert;
	g_autoptr(VmiJobImpl) job = NULL;
	const char *path;

	job = vmi_job_impl_new ("convert", call->caller->uid, call->caller->sender,
				vmi_source_get_virtual_size (convert->source), vmi_convert_job_run,
				g_steal_pointer (&call->convert),
				(GDestroyNotify) vmi_convert_job_free);
	vmi_manager_impl_watch_job (call->manager, job);
	path = vmi_job_queue_add (vmi_daemon_get_jobs (daemon), job);
	if (call->cancel_on_disconnect)
		vmi_job_impl_watch_owner (job, vmi_daemon_get_connection (daemon));
	g_info ("Job %s: convert %s to %s for uid %u", path,
		call->source != NULL ? call->source : "a file descriptor",
		call->destination != NULL ? call->destination : "a file descriptor",
		(guint) call->caller->uid);
	if (call->source != NULL)
		vmi_manager_complete_convert (VMI_MANAGER (call->manager),
					      g_steal_pointer (&call->invocation), path);
	else
		vmi_manager_complete_convert_fd (VMI_MANAGER (call->manager),
						 g_steal_pointer (&call->invocation), NULL, path);
}

static void vmi_call_reply (VmiCall *call, GAsyncResult *result);

static void
vmi_call_done_cb (GObject *source_object, GAsyncResult *result, gpointer user_data)
{
	VmiManagerImpl *self = VMI_MANAGER_IMPL (source_object);
	VmiCall *call = g_task_get_task_data (G_TASK (result));

	vmi_call_reply (call, result);
	/* What the call held (a temporary file of a refused Convert) goes now, not later. */
	g_clear_pointer (&call->convert, vmi_convert_job_free);
	self->n_calls--;
	vmi_daemon_check_idle (self->daemon);
}

static void
vmi_call_reply (VmiCall *call, GAsyncResult *result)
{
	g_autoptr(GError) error = NULL;

	if (!g_task_propagate_boolean (G_TASK (result), &error)) {
		g_debug ("%s from %s failed: %s",
			 g_dbus_method_invocation_get_method_name (call->invocation),
			 g_dbus_method_invocation_get_sender (call->invocation), error->message);
		g_dbus_method_invocation_return_gerror (g_steal_pointer (&call->invocation), error);
		return;
	}
	switch (call->kind) {
	case VMI_CALL_INSPECT:
		if (call->source != NULL)
			vmi_manager_complete_inspect (VMI_MANAGER (call->manager),
						      g_steal_pointer (&call->invocation), call->info);
		else
			vmi_manager_complete_inspect_fd (VMI_MANAGER (call->manager),
							 g_steal_pointer (&call->invocation), NULL,
							 call->info);
		break;
	case VMI_CALL_CONVERT:
		if (vmi_daemon_is_stopping (call->manager->daemon)) {
			g_dbus_method_invocation_return_error_literal (
				g_steal_pointer (&call->invocation), VMI_ERROR, VMI_ERROR_FAILED,
				"The daemon is stopping; try again when it is back");
			return;
		}
		vmi_call_start_job (call);
		break;
	case VMI_CALL_CANCEL:
		vmi_job_impl_cancel (call->job);
		vmi_job_complete_cancel (VMI_JOB (call->job), g_steal_pointer (&call->invocation));
		break;
	}
}

static void
vmi_call_run (VmiCall *call)
{
	g_autoptr(GTask) task = g_task_new (call->manager, NULL, vmi_call_done_cb, NULL);

	call->manager->n_calls++;
	g_task_set_task_data (task, call, (GDestroyNotify) vmi_call_free);
	g_task_run_in_thread (task, vmi_call_thread);
}

static gboolean
vmi_call_take_fd (VmiCall *call, GUnixFDList *fd_list, GVariant *handle, int *out, GError **error)
{
	gint32 index = g_variant_get_handle (handle);

	if (fd_list == NULL || index < 0 || index >= g_unix_fd_list_get_length (fd_list)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "The call did not carry the file descriptor it refers to");
		return FALSE;
	}
	*out = g_unix_fd_list_get (fd_list, index, error);
	return *out >= 0;
}

static gboolean
vmi_manager_impl_handle_inspect (VmiManager *object, GDBusMethodInvocation *invocation,
				 const char *path, GVariant *options, gpointer user_data)
{
	VmiCall *call = vmi_call_new (VMI_CALL_INSPECT, VMI_MANAGER_IMPL (object), invocation);

	call->source = g_strdup (path);
	call->options = g_variant_ref (options);
	vmi_call_run (call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_inspect_fd (VmiManager *object, GDBusMethodInvocation *invocation,
				    GUnixFDList *fd_list, GVariant *fd, GVariant *options,
				    gpointer user_data)
{
	g_autoptr(VmiCall) call = vmi_call_new (VMI_CALL_INSPECT, VMI_MANAGER_IMPL (object),
						invocation);
	GError *error = NULL;

	if (!vmi_call_take_fd (call, fd_list, fd, &call->source_fd, &error)) {
		vmi_dbus_error_normalize (&error);
		g_dbus_method_invocation_take_error (g_steal_pointer (&call->invocation), error);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	call->options = g_variant_ref (options);
	vmi_call_run (g_steal_pointer (&call));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_refuse_if_stopping (VmiManagerImpl *self, GDBusMethodInvocation *invocation)
{
	if (!vmi_daemon_is_stopping (self->daemon))
		return FALSE;
	g_dbus_method_invocation_return_error_literal (invocation, VMI_ERROR, VMI_ERROR_FAILED,
						       "The daemon is stopping; try again when it "
						       "is back");
	return TRUE;
}

static gboolean
vmi_manager_impl_handle_convert (VmiManager *object, GDBusMethodInvocation *invocation,
				 const char *source, const char *destination, const char *format,
				 GVariant *options, gpointer user_data)
{
	VmiCall *call;

	if (vmi_manager_impl_refuse_if_stopping (VMI_MANAGER_IMPL (object), invocation))
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	call = vmi_call_new (VMI_CALL_CONVERT, VMI_MANAGER_IMPL (object), invocation);
	call->source = g_strdup (source);
	call->destination = g_strdup (destination);
	call->format = g_strdup (format);
	call->options = g_variant_ref (options);
	vmi_call_run (call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_convert_fd (VmiManager *object, GDBusMethodInvocation *invocation,
				    GUnixFDList *fd_list, GVariant *source, GVariant *destination,
				    const char *format, GVariant *options, gpointer user_data)
{
	g_autoptr(VmiCall) call = NULL;
	GError *error = NULL;

	if (vmi_manager_impl_refuse_if_stopping (VMI_MANAGER_IMPL (object), invocation))
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	call = vmi_call_new (VMI_CALL_CONVERT, VMI_MANAGER_IMPL (object), invocation);
	if (!vmi_call_take_fd (call, fd_list, source, &call->source_fd, &error) ||
	    !vmi_call_take_fd (call, fd_list, destination, &call->dest_fd, &error)) {
		vmi_dbus_error_normalize (&error);
		g_dbus_method_invocation_take_error (g_steal_pointer (&call->invocation), error);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	call->format = g_strdup (format);
	call->options = g_variant_ref (options);
	vmi_call_run (g_steal_pointer (&call));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_cancel (VmiJob *object, GDBusMethodInvocation *invocation,
				gpointer user_data)
{
	VmiManagerImpl *self = VMI_MANAGER_IMPL (user_data);
	VmiJobImpl *job = VMI_JOB_IMPL (object);
	VmiCall *call;

	/* The connection that started the job needs no look-up. */
	if (g_strcmp0 (g_dbus_method_invocation_get_sender (invocation),
		       vmi_job_impl_get_owner_sender (job)) == 0) {
		vmi_job_impl_cancel (job);
		vmi_job_complete_cancel (object, invocation);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	call = vmi_call_new (VMI_CALL_CANCEL, self, invocation);
	call->job = g_object_ref (job);
	vmi_call_run (call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
vmi_manager_impl_watch_job (VmiManagerImpl *self, VmiJobImpl *job)
{
	g_signal_connect_object (job, "handle-cancel", G_CALLBACK (vmi_manager_impl_handle_cancel),
				 self, 0);
}

static void
vmi_manager_impl_class_init (VmiManagerImplClass *klass)
{
}

static void
vmi_manager_impl_init (VmiManagerImpl *self)
{
	g_signal_connect (self, "handle-inspect", G_CALLBACK (vmi_manager_impl_handle_inspect), NULL);
	g_signal_connect (self, "handle-inspect-fd",
			  G_CALLBACK (vmi_manager_impl_handle_inspect_fd), NULL);
	g_signal_connect (self, "handle-convert", G_CALLBACK (vmi_manager_impl_handle_convert), NULL);
	g_signal_connect (self, "handle-convert-fd",
			  G_CALLBACK (vmi_manager_impl_handle_convert_fd), NULL);
}

guint
vmi_manager_impl_get_n_calls (VmiManagerImpl *self)
{
	return self->n_calls;
}

VmiManagerImpl *
vmi_manager_impl_new (VmiDaemon *daemon)
{
	VmiManagerImpl *self = g_object_new (VMI_TYPE_MANAGER_IMPL, NULL);
	g_autoptr(GVariant) formats = vmi_registry_describe (vmi_daemon_get_registry (daemon));

	self->daemon = daemon;
	vmi_manager_set_version (VMI_MANAGER (self), VMI_VERSION);
	vmi_manager_set_formats (VMI_MANAGER (self), formats);
	return self;
}
