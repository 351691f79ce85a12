/* org.vmimaged.VMImage1.Manager and the Cancel method of jobs. */
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-cache-bundle.h"
#include "vmi-cache-job.h"
#include "vmi-caller.h"
#include "vmi-check-job.h"
#include "vmi-check.h"
#include "vmi-compare.h"
#include "vmi-convert-job.h"
#include "vmi-convert.h"
#include "vmi-daemon.h"
#include "vmi-dbus-error.h"
#include "vmi-image.h"
#include "vmi-manager.h"
#include "vmi-source-measure.h"
#include "vmi-members.h"
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
	VMI_CALL_CACHE_IMPORT,
	VMI_CALL_CACHE_PRUNE,
	VMI_CALL_IMAGE_EXPORT,
	VMI_CALL_IMAGE_REMOVE,
	VMI_CALL_IMAGE_SET_PROPERTIES,
	VMI_CALL_IMAGE_VERIFY,
	VMI_CALL_CHECK,
	VMI_CALL_COMPARE,
	VMI_CALL_MEASURE,
} VmiCallKind;

/* The store format of CacheImport without a "format" option. */
#define VMI_CACHE_DEFAULT_FORMAT "qcow2"

/* "properties" (a{ss}) is taken out before the rest is normalized: it is listed here so that
 * the message for an unknown option names it too. */
static const VmiOptionSpec vmi_cache_import_options[] = {
	{ "name", "s", "the image's Name" },
	{ "format", "s", "the format the cache stores the image in (default qcow2)" },
	{ "source-format", "s", "format of the source; detected when absent" },
	{ "properties", "a{ss}", "metadata of the image" },
	{ "cancel-on-disconnect", "b", "cancel the job when its caller leaves the bus" },
	{ VMI_PRIORITY_OPTION, "s", VMI_PRIORITY_OPTION_DESCRIPTION },
	{ NULL },
};

static const VmiOptionSpec vmi_cache_export_options[] = {
	{ "overwrite", "b", "replace an existing destination" },
	{ "cancel-on-disconnect", "b", "cancel the job when its caller leaves the bus" },
	{ VMI_PRIORITY_OPTION, "s", VMI_PRIORITY_OPTION_DESCRIPTION },
	{ NULL },
};

typedef struct _VmiCall VmiCall;

/*
 * What one kind of call does: adding a method is a row of vmi_call_classes and its work
 * function. A call that queues a job is refused while the daemon stops, both when it arrives
 * and when its job would be queued; a call answered at once is not.
 */
typedef struct {
	const char *action; /* polkit, checked before any work; NULL: work decides (Cancel) */
	gboolean (*work) (VmiCall *call, GError **error); /* in the worker thread */
	const char *job_operation; /* of the job work set up (vmi_call_set_job), or NULL */
	void (*finish) (VmiCall *call); /* without a job: main thread, before the reply, or NULL */
	/*
	 * Reply from the worker thread (GDBus sends from any thread): for calls that only read,
	 * whose reply need not be ordered with signals of the main thread. It saves the hop
	 * through the main loop that Inspect's latency is mostly made of.
	 */
	gboolean reply_in_thread;
} VmiCallClass;

/* One method call on its way through the worker thread. */
struct _VmiCall {
	const VmiCallClass *klass;
	VmiManagerImpl *manager;
	GDBusMethodInvocation *invocation;
	char *source;      /* path, or NULL for the fd variants */
	char *destination; /* path, or NULL */
	char *source_b;    /* Compare: the second path */
	char *format;
	GVariant *options;
	int source_fd;
	mode_t source_mode; /* permission bits of the source, for the output */
	int dest_fd;
	VmiJobImpl *job;   /* Cancel */
	VmiImageImpl *image; /* the Image methods */
	GVariant *set;     /* SetProperties */
	GVariant *unset;

	/* Results, for the main thread. */
	VmiCaller *caller;
	GVariant *reply; /* the values of a reply without a job; NULL: none */
	VmiJobFunc job_run; /* the job to queue: vmi_call_set_job */
	gpointer job_data;
	GDestroyNotify job_free;
	guint64 job_bytes_total;
	char *job_what;
	gboolean cancel_on_disconnect;
	VmiPriority priority; /* of the job's thread */
};

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
	g_free (call->source_b);
	g_free (call->format);
	g_clear_pointer (&call->options, g_variant_unref);
	if (call->source_fd >= 0)
		close (call->source_fd);
	if (call->dest_fd >= 0)
		close (call->dest_fd);
	g_clear_object (&call->job);
	g_clear_object (&call->image);
	g_clear_pointer (&call->set, g_variant_unref);
	g_clear_pointer (&call->unset, g_variant_unref);
	g_clear_pointer (&call->job_data, call->job_free);
	g_free (call->job_what);
	g_clear_pointer (&call->caller, vmi_caller_free);
	g_clear_pointer (&call->reply, g_variant_unref);
	g_free (call);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiCall, vmi_call_free)

static void vmi_call_set_job (VmiCall *call, VmiJobFunc run, gpointer data,
			      GDestroyNotify free_data, const char *format, ...)
	G_GNUC_PRINTF (5, 6);

/* The job the call queues once work succeeded: run with data (freed by free_data), and what it
 * does in words for the log. Its size is call->job_bytes_total. */
static void
vmi_call_set_job (VmiCall *call, VmiJobFunc run, gpointer data, GDestroyNotify free_data,
		  const char *format, ...)
{
	va_list args;

	call->job_run = run;
	call->job_data = data;
	call->job_free = free_data;
	va_start (args, format);
	call->job_what = g_strdup_vprintf (format, args);
	va_end (args);
}

/* A path, or the file descriptor the caller sent in its place: for the log. */
static const char *
vmi_call_name (const char *path)
{
	return path != NULL ? path : "a file descriptor";
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

/* A source's siblings, opened as the caller who named the source (a VmiSourceSiblingFunc). */
static int
vmi_call_open_sibling (int dir_fd, const char *name, gpointer data, GError **error)
{
	return vmi_caller_open_sibling_at (data, dir_fd, name, error);
}

/* Opens the image named by path (as the caller) or, with path NULL, checks the fd the caller
 * sent. */
static VmiSource *
vmi_call_open_source_at (VmiCall *call, const char *path, const char *format, gboolean classify,
			 GError **error)
{
	struct stat st;
	VmiRegistry *registry = vmi_daemon_get_registry (call->manager->daemon);
	g_autoptr(GError) error_dir = NULL;
	int fd = call->source_fd;
	int dir_fd = -1;
	VmiSiblingOpener opener = {
		.func = vmi_call_open_sibling,
		.data = call->caller,
		.copy = (GBoxedCopyFunc) vmi_caller_copy,
		.free = (GDestroyNotify) vmi_caller_free,
	};
	VmiSource *source;

	if (path != NULL) {
		fd = vmi_caller_open_image (call->caller, path, error);
		if (fd < 0)
			return NULL;
		/*
		 * The other files of a multi-file image (VMDK extents) are opened in this folder as
		 * the caller, like the image itself: a descriptor in a shared folder must not get
		 * root to read another user's private file. Without the folder there are none.
		 */
		dir_fd = vmi_caller_open_dir (call->caller, path, &error_dir);
	} else {
		if (!vmi_call_check_fd_access (fd, FALSE, "source", error) ||
		    !vmi_caller_check_image_fd (fd, "The source file descriptor", error))
			return NULL;
	}
	source = vmi_source_open_as (registry, fd, dir_fd, dir_fd >= 0 ? &opener : NULL, format,
				     classify, NULL, error);
	if (source != NULL && fstat (fd, &st) == 0)
		call->source_mode = st.st_mode & 0666;
	if (source == NULL && path != NULL)
		g_prefix_error (error, "%s: ", path);
	if (path != NULL)
		close (fd);
	if (dir_fd >= 0)
		close (dir_fd);
	return source;
}

/* Opens the call's source: its path, or the fd the caller sent. */
static VmiSource *
vmi_call_open_source (VmiCall *call, const char *format, gboolean classify, GError **error)
{
	return vmi_call_open_source_at (call, call->source, format, classify, error);
}

static gboolean
vmi_call_inspect (VmiCall *call, GError **error)
{
	g_autoptr(GVariant) options = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL;

	options = vmi_options_normalize (call->options, vmi_source_options, NULL, error);
	if (options == NULL)
		return FALSE;
	source = vmi_call_open_source (call, vmi_options_get_string (options, "format", NULL),
				       vmi_options_get_boolean (options, "classify", FALSE), error);
	if (source == NULL)
		return FALSE;
	info = vmi_source_to_variant (source);
	call->reply = g_variant_ref_sink (g_variant_new ("(@a{sv})", info));
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

/*
 * The output of a conversion: the format call->format, which must be writable, and the call's
 * options checked against spec and that format's create options.
 */
static gboolean
vmi_call_set_output (VmiCall *call, VmiConvertJob *convert, const VmiOptionSpec *spec,
		     GError **error)
{
	VmiRegistry *registry = vmi_daemon_get_registry (call->manager->daemon);

	convert->plugin = vmi_registry_lookup (registry, call->format, error);
	if (convert->plugin == NULL)
		return FALSE;
	if ((convert->plugin->flags & VMI_FORMAT_CAN_WRITE) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged can read %s images but not write them; see Formats for the "
			     "formats with can-write", convert->plugin->name);
		return FALSE;
	}
	convert->options = vmi_options_normalize (call->options, spec,
						  convert->plugin->create_options, error);
	return convert->options != NULL;
}

static gboolean
vmi_call_convert (VmiCall *call, GError **error)
{
	g_autoptr(VmiConvertJob) convert = vmi_convert_job_new ();
	const VmiFormatPlugin *src_plugin;
	gint member = -1;
	struct stat st;

	if (call->source != NULL && !vmi_caller_check_path (call->source, "source", error))
		return FALSE;
	if (call->destination != NULL && !vmi_caller_check_path (call->destination, "destination", error))
		return FALSE;
	if (!vmi_call_set_output (call, convert, vmi_convert_options, error))
		return FALSE;
	if (call->destination == NULL && g_variant_lookup (convert->options, "overwrite", "b", NULL)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "option \"overwrite\" has no meaning for ConvertFd");
		return FALSE;
	}
	convert->overwrite = vmi_options_get_boolean (convert->options, "overwrite", FALSE);
	call->cancel_on_disconnect = vmi_options_get_boolean (convert->options,
							      "cancel-on-disconnect", FALSE);
	if (!vmi_priority_from_options (convert->options, &call->priority, error))
		return FALSE;
	convert->source = vmi_call_open_source (
		call, vmi_options_get_string (convert->options, "source-format", NULL), FALSE, error);
	if (convert->source == NULL)
		return FALSE;
	/* A container's member (options disk, member) is chosen now and opened by the job. */
	if (!vmi_members_select (convert->source, convert->options, &member, error))
		return FALSE;
	src_plugin = vmi_source_get_plugin (convert->source);
	if (member < 0 && (src_plugin->flags & VMI_FORMAT_CAN_READ) == 0) {
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
	call->job_bytes_total = vmi_source_get_virtual_size (convert->source);
	vmi_call_set_job (call, vmi_convert_job_run, g_steal_pointer (&convert),
			  (GDestroyNotify) vmi_convert_job_free, "convert %s to %s",
			  vmi_call_name (call->source), vmi_call_name (call->destination));
	return TRUE;
}

/* ---- Check, Compare and Measure ---- */

static gboolean
vmi_call_check (VmiCall *call, GError **error)
{
	g_autoptr(VmiCheckJob) check = vmi_check_job_new ();
	gint member = -1;

	if (call->source != NULL && !vmi_caller_check_path (call->source, "image", error))
		return FALSE;
	check->options = vmi_options_normalize (call->options, vmi_check_options, NULL, error);
	if (check->options == NULL)
		return FALSE;
	call->cancel_on_disconnect = vmi_options_get_boolean (check->options,
							      "cancel-on-disconnect", FALSE);
	check->source = vmi_call_open_source (
		call, vmi_options_get_string (check->options, "source-format", NULL), FALSE, error);
	if (check->source == NULL)
		return FALSE;
	/* A container's member ("disk", "member") is chosen now and opened by the job. */
	if (!vmi_members_select (check->source, check->options, &member, error))
		return FALSE;
	call->job_bytes_total = vmi_source_get_virtual_size (check->source);
	vmi_call_set_job (call, vmi_check_job_run, g_steal_pointer (&check),
			  (GDestroyNotify) vmi_check_job_free, "check %s",
			  vmi_call_name (call->source));
	return TRUE;
}

static gboolean
vmi_call_compare (VmiCall *call, GError **error)
{
	g_autoptr(VmiCompareJob) compare = vmi_compare_job_new ();
	g_autoptr(GVariant) choice_a = NULL;
	g_autoptr(GVariant) choice_b = NULL;
	gint member = -1;

	if (!vmi_caller_check_path (call->source, "first image", error) ||
	    !vmi_caller_check_path (call->source_b, "second image", error))
		return FALSE;
	compare->options = vmi_options_normalize (call->options, vmi_compare_options, NULL, error);
	if (compare->options == NULL)
		return FALSE;
	call->cancel_on_disconnect = vmi_options_get_boolean (compare->options,
							      "cancel-on-disconnect", FALSE);
	compare->a = vmi_call_open_source_at (
		call, call->source, vmi_options_get_string (compare->options, "format-a", NULL),
		FALSE, error);
	if (compare->a == NULL)
		return FALSE;
	compare->b = vmi_call_open_source_at (
		call, call->source_b, vmi_options_get_string (compare->options, "format-b", NULL),
		FALSE, error);
	if (compare->b == NULL)
		return FALSE;
	/* The containers' members ("disk-a", "member-b", ...) are chosen now, opened by the job. */
	choice_a = vmi_compare_choice (compare->options, "a");
	choice_b = vmi_compare_choice (compare->options, "b");
	if (!vmi_members_select (compare->a, choice_a, &member, error)) {
		g_prefix_error (error, "the first image: ");
		return FALSE;
	}
	if (!vmi_members_select (compare->b, choice_b, &member, error)) {
		g_prefix_error (error, "the second image: ");
		return FALSE;
	}
	call->job_bytes_total = MAX (vmi_source_get_virtual_size (compare->a),
				     vmi_source_get_virtual_size (compare->b));
	vmi_call_set_job (call, vmi_compare_job_run, g_steal_pointer (&compare),
			  (GDestroyNotify) vmi_compare_job_free, "compare %s with %s", call->source,
			  call->source_b);
	return TRUE;
}

/* Synchronous like Inspect: it reads the source's block map, not its data. */
static gboolean
vmi_call_measure (VmiCall *call, GError **error)
{
	VmiRegistry *registry = vmi_daemon_get_registry (call->manager->daemon);
	g_autoptr(GVariant) options = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL;
	const VmiFormatPlugin *plugin;

	if (!vmi_caller_check_path (call->source, "source", error))
		return FALSE;
	plugin = vmi_registry_lookup (registry, call->format, error);
	if (plugin == NULL)
		return FALSE;
	options = vmi_options_normalize (call->options, vmi_measure_options, plugin->create_options,
					 error);
	if (options == NULL)
		return FALSE;
	source = vmi_call_open_source (call, vmi_options_get_string (options, "source-format", NULL),
				       FALSE, error);
	if (source == NULL)
		return FALSE;
	info = vmi_measure (source, plugin, options, NULL, error);
	if (info == NULL)
		return FALSE;
	call->reply = g_variant_ref_sink (g_variant_new ("(@a{sv})", info));
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

/* ---- The cache ---- */

/* The cache, if it is open (the caller may use it: VMI_ACTION_CACHE is checked first). */
static VmiCache *
vmi_call_get_cache (VmiCall *call, GError **error)
{
	return vmi_daemon_get_cache (call->manager->daemon, error);
}

/* Takes "properties" (a{ss}, each checked) out of options; *rest is the other entries. */
static gboolean
vmi_call_split_properties (GVariant *options, GVariant **rest, GHashTable **properties,
			   GError **error)
{
	GVariantBuilder builder;
	GVariantIter iter;
	const char *name;
	GVariant *value;

	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	g_variant_iter_init (&iter, options);
	while (g_variant_iter_next (&iter, "{&sv}", &name, &value)) {
		g_autoptr(GVariant) owned = value;
		GVariantIter props;
		const char *key;
		const char *text;

		if (g_strcmp0 (name, "properties") != 0) {
			g_variant_builder_add (&builder, "{sv}", name, owned);
			continue;
		}
		if (!g_variant_is_of_type (owned, G_VARIANT_TYPE ("a{ss}"))) {
			g_variant_builder_clear (&builder);
			g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "option \"properties\" must be a dictionary of strings (a{ss}), "
				     "not a value of type %s", g_variant_get_type_string (owned));
			return FALSE;
		}
		if (*properties == NULL)
			*properties = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
		g_variant_iter_init (&props, owned);
		while (g_variant_iter_next (&props, "{&s&s}", &key, &text))
			g_hash_table_insert (*properties, g_strdup (key), g_strdup (text));
	}
	*rest = g_variant_ref_sink (g_variant_builder_end (&builder));
	return TRUE;
}

/* The format the cache stores in: one it can write and read back. */
static const VmiFormatPlugin *
vmi_call_store_format (VmiCall *call, const char *name, GError **error)
{
	VmiRegistry *registry = vmi_daemon_get_registry (call->manager->daemon);
	const VmiFormatPlugin *plugin = vmi_registry_lookup (registry, name, error);
	const guint32 needed = VMI_FORMAT_CAN_WRITE | VMI_FORMAT_CAN_READ | VMI_FORMAT_CAN_INSPECT;

	if (plugin == NULL)
		return NULL;
	if ((plugin->flags & needed) != needed) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "The cache cannot store images as %s: vmimaged must be able to write "
			     "and read back that format; see Formats (qcow2 and raw can)",
			     plugin->name);
		return NULL;
	}
	return plugin;
}

static gboolean
vmi_call_cache_import (VmiCall *call, GError **error)
{
	VmiCache *cache;
	g_autoptr(VmiCacheImportJob) import = NULL;
	g_autoptr(GVariant) rest = NULL;
	g_autoptr(GVariant) options = NULL;
	g_autoptr(GHashTable) properties = NULL;
	const VmiFormatPlugin *src_plugin;
	const char *name;

	cache = vmi_call_get_cache (call, error);
	if (cache == NULL)
		return FALSE;
	if (call->source != NULL && !vmi_caller_check_path (call->source, "source", error))
		return FALSE;
	if (!vmi_call_split_properties (call->options, &rest, &properties, error))
		return FALSE;
	options = vmi_options_normalize (rest, vmi_cache_import_options, NULL, error);
	if (options == NULL)
		return FALSE;
	if (properties != NULL) {
		GHashTableIter iter;
		gpointer key, value;

		g_hash_table_iter_init (&iter, properties);
		while (g_hash_table_iter_next (&iter, &key, &value)) {
			if (!vmi_cache_entry_check_property (key, value, error))
				return FALSE;
		}
	}
	import = vmi_cache_import_job_new (cache);
	import->store_format = vmi_call_store_format (
		call, vmi_options_get_string (options, "format", VMI_CACHE_DEFAULT_FORMAT), error);
	if (import->store_format == NULL)
		return FALSE;
	name = vmi_options_get_string (options, "name", NULL);
	if (name != NULL)
		import->name = g_strdup (name);
	else if (call->source != NULL) {
		/* A file name need not be UTF-8; a Name must be. */
		g_autofree char *base = g_path_get_basename (call->source);

		import->name = g_utf8_make_valid (base, -1);
	}
	if (import->name != NULL && !vmi_cache_entry_check_name (import->name, error))
		return FALSE;
	import->origin = g_strdup (call->source != NULL ? call->source : "fd");
	import->properties = g_steal_pointer (&properties);
	call->cancel_on_disconnect = vmi_options_get_boolean (options, "cancel-on-disconnect",
							      FALSE);
	if (!vmi_priority_from_options (options, &call->priority, error))
		return FALSE;
	import->source = vmi_call_open_source (
		call, vmi_options_get_string (options, "source-format", NULL), FALSE, error);
	if (import->source == NULL)
		return FALSE;
	src_plugin = vmi_source_get_plugin (import->source);
	/* An OVA, a UEC tarball: each image it holds becomes an entry (vmi-cache-bundle.h). */
	import->bundle = vmi_cache_bundle_is_container (import->source);
	if (import->bundle) {
		import->raw_format = vmi_call_store_format (call, "raw", error);
		if (import->raw_format == NULL)
			return FALSE;
	} else if ((src_plugin->flags & VMI_FORMAT_CAN_READ) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged can inspect %s images but not read their content",
			     src_plugin->name);
		return FALSE;
	}
	call->job_bytes_total = vmi_source_get_virtual_size (import->source);
	vmi_call_set_job (call, vmi_cache_import_job_run, g_steal_pointer (&import),
			  (GDestroyNotify) vmi_cache_import_job_free, "import %s into the cache",
			  vmi_call_name (call->source));
	return TRUE;
}

static gboolean
vmi_call_image_export (VmiCall *call, GError **error)
{
	VmiRegistry *registry = vmi_daemon_get_registry (call->manager->daemon);
	const char *id = vmi_image_impl_get_id (call->image);
	g_autoptr(VmiCacheExportJob) export = NULL;
	VmiConvertJob *convert;
	VmiCache *cache;

	cache = vmi_call_get_cache (call, error);
	if (cache == NULL)
		return FALSE;
	if (!vmi_caller_check_path (call->destination, "destination", error))
		return FALSE;
	/* Held from here: not evicted between this call and the end of the job. */
	export = vmi_cache_export_job_new (cache, id, error);
	if (export == NULL)
		return FALSE;
	convert = export->convert;
	if (!vmi_call_set_output (call, convert, vmi_cache_export_options, error))
		return FALSE;
	convert->overwrite = vmi_options_get_boolean (convert->options, "overwrite", FALSE);
	call->cancel_on_disconnect = vmi_options_get_boolean (convert->options,
							      "cancel-on-disconnect", FALSE);
	if (!vmi_priority_from_options (convert->options, &call->priority, error))
		return FALSE;
	if (!vmi_cache_export_job_open (export, registry, error))
		return FALSE;
	/* The cached file is the daemon's (0600); the copy is private to the caller too. */
	call->source_mode = 0;
	if (!vmi_call_prepare_destination (call, convert, error))
		return FALSE;
	convert->caller = vmi_caller_copy (call->caller);
	call->job_bytes_total = vmi_source_get_virtual_size (convert->source);
	vmi_call_set_job (call, vmi_cache_export_job_run, g_steal_pointer (&export),
			  (GDestroyNotify) vmi_cache_export_job_free, "export image %s to %s", id,
			  call->destination);
	return TRUE;
}

static gboolean
vmi_call_image_verify (VmiCall *call, GError **error)
{
	const char *id = vmi_image_impl_get_id (call->image);
	g_autoptr(VmiCacheEntry) entry = NULL;
	VmiCacheVerifyJob *verify;
	VmiCache *cache;

	cache = vmi_call_get_cache (call, error);
	if (cache == NULL)
		return FALSE;
	entry = vmi_cache_lookup (cache, id, error);
	if (entry == NULL)
		return FALSE;
	call->job_bytes_total = vmi_cache_entry_get_file_size (entry);
	verify = vmi_cache_verify_job_new (cache, vmi_daemon_get_registry (call->manager->daemon),
					   id);
	vmi_call_set_job (call, vmi_cache_verify_job_run, verify,
			  (GDestroyNotify) vmi_cache_verify_job_free, "verify image %s", id);
	return TRUE;
}

static gboolean
vmi_call_image_remove (VmiCall *call, GError **error)
{
	VmiCache *cache = vmi_call_get_cache (call, error);

	if (cache == NULL)
		return FALSE;
	if (!vmi_cache_remove (cache, vmi_image_impl_get_id (call->image), error))
		return FALSE;
	g_info ("Image %s removed from the cache for uid %u", vmi_image_impl_get_id (call->image),
		(guint) call->caller->uid);
	return TRUE;
}

static gboolean
vmi_call_image_set_properties (VmiCall *call, GError **error)
{
	g_autoptr(GHashTable) set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
	g_autofree const char **unset = NULL;
	g_autoptr(VmiCacheEntry) entry = NULL;
	GVariantIter iter;
	const char *key;
	const char *value;
	VmiCache *cache;

	cache = vmi_call_get_cache (call, error);
	if (cache == NULL)
		return FALSE;
	g_variant_iter_init (&iter, call->set);
	while (g_variant_iter_next (&iter, "{&s&s}", &key, &value))
		g_hash_table_insert (set, g_strdup (key), g_strdup (value));
	unset = g_variant_get_strv (call->unset, NULL);
	entry = vmi_cache_set_properties (cache, vmi_image_impl_get_id (call->image), set, unset,
					  error);
	return entry != NULL;
}

static gboolean
vmi_call_cache_prune (VmiCall *call, GError **error)
{
	VmiCache *cache = vmi_call_get_cache (call, error);
	guint64 bytes_freed;

	if (cache == NULL)
		return FALSE;
	if (!vmi_cache_prune (cache, &bytes_freed, error))
		return FALSE;
	g_info ("Cache pruned for uid %u: %" G_GUINT64_FORMAT " bytes freed",
		(guint) call->caller->uid, bytes_freed);
	call->reply = g_variant_ref_sink (g_variant_new ("(t)", bytes_freed));
	return TRUE;
}

/* ---- The kinds of call ---- */

/* Cancel's last step, in the main thread like the jobs. */
static void
vmi_call_finish_cancel (VmiCall *call)
{
	vmi_job_impl_cancel (call->job);
}

static const VmiCallClass vmi_call_classes[] = {
	[VMI_CALL_INSPECT] = { VMI_ACTION_INSPECT, vmi_call_inspect, NULL, NULL, TRUE },
	[VMI_CALL_MEASURE] = { VMI_ACTION_INSPECT, vmi_call_measure, NULL, NULL, TRUE },
	[VMI_CALL_CONVERT] = { VMI_ACTION_CONVERT, vmi_call_convert, "convert", NULL },
	[VMI_CALL_CHECK] = { VMI_ACTION_CHECK, vmi_call_check, "check", NULL },
	[VMI_CALL_COMPARE] = { VMI_ACTION_CHECK, vmi_call_compare, "compare", NULL },
	[VMI_CALL_CANCEL] = { NULL, vmi_call_cancel, NULL, vmi_call_finish_cancel },
	[VMI_CALL_CACHE_IMPORT] = { VMI_ACTION_CACHE, vmi_call_cache_import, "cache-import", NULL },
	[VMI_CALL_CACHE_PRUNE] = { VMI_ACTION_CACHE, vmi_call_cache_prune, NULL, NULL },
	[VMI_CALL_IMAGE_EXPORT] = { VMI_ACTION_CACHE, vmi_call_image_export, "cache-export", NULL },
	[VMI_CALL_IMAGE_VERIFY] = { VMI_ACTION_CACHE, vmi_call_image_verify, "cache-verify", NULL },
	[VMI_CALL_IMAGE_REMOVE] = { VMI_ACTION_CACHE, vmi_call_image_remove, NULL, NULL },
	[VMI_CALL_IMAGE_SET_PROPERTIES] = { VMI_ACTION_CACHE, vmi_call_image_set_properties, NULL,
					    NULL },
};

/* ---- A call's way: handler, worker thread, reply ---- */

static void
vmi_call_reply_error (VmiCall *call, const GError *error)
{
	g_debug ("%s from %s failed: %s", g_dbus_method_invocation_get_method_name (call->invocation),
		 g_dbus_method_invocation_get_sender (call->invocation), error->message);
	g_dbus_method_invocation_return_gerror (g_steal_pointer (&call->invocation), error);
}

static void
vmi_call_thread (GTask *task, gpointer source_object, gpointer task_data, GCancellable *cancellable)
{
	VmiCall *call = task_data;
	const char *action = call->klass->action;
	GError *error = NULL;

	if ((action != NULL && !vmi_call_authorize (call, action, &error)) ||
	    !call->klass->work (call, &error)) {
		vmi_dbus_error_normalize (&error);
		if (call->klass->reply_in_thread)
			vmi_call_reply_error (call, error);
		g_task_return_error (task, error);
		return;
	}
	if (call->klass->reply_in_thread)
		g_dbus_method_invocation_return_value (g_steal_pointer (&call->invocation),
						       call->reply);
	g_task_return_boolean (task, TRUE);
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

static void vmi_manager_impl_watch_job (VmiManagerImpl *self, VmiJobImpl *job);

/* Exports and queues the call's job for its caller and replies with the job's path (o). */
static void
vmi_call_start_job (VmiCall *call)
{
	VmiDaemon *daemon = call->manager->daemon;
	g_autoptr(VmiJobImpl) job = NULL;
	const char *path;

	if (vmi_manager_impl_refuse_if_stopping (call->manager, call->invocation)) {
		call->invocation = NULL;
		return;
	}
	job = vmi_job_impl_new (call->klass->job_operation, call->caller->uid,
				call->caller->sender, call->job_bytes_total, call->job_run,
				g_steal_pointer (&call->job_data), call->job_free);
	vmi_job_impl_set_priority (job, call->priority);
	vmi_manager_impl_watch_job (call->manager, job);
	path = vmi_job_queue_add (vmi_daemon_get_jobs (daemon), job);
	if (call->cancel_on_disconnect)
		vmi_job_impl_watch_owner (job, vmi_daemon_get_connection (daemon));
	g_info ("Job %s: %s for uid %u", path, call->job_what, (guint) call->caller->uid);
	/* Every method that starts a job, by path or by fd, returns just its path. */
	g_dbus_method_invocation_return_value (g_steal_pointer (&call->invocation),
					       g_variant_new ("(o)", path));
}

static void
vmi_call_done_cb (GObject *source_object, GAsyncResult *result, gpointer user_data)
{
	VmiManagerImpl *self = VMI_MANAGER_IMPL (source_object);
	VmiCall *call = g_task_get_task_data (G_TASK (result));
	g_autoptr(GError) error = NULL;

	if (!g_task_propagate_boolean (G_TASK (result), &error)) {
		if (call->invocation != NULL)
			vmi_call_reply_error (call, error);
	} else if (call->invocation == NULL) {
		/* replied from the worker thread */
	} else if (call->klass->job_operation != NULL) {
		vmi_call_start_job (call);
	} else {
		if (call->klass->finish != NULL)
			call->klass->finish (call);
		/* The fd variants send no fds back: the same reply as by path. */
		g_dbus_method_invocation_return_value (g_steal_pointer (&call->invocation),
						       call->reply);
	}
	/* What the call held (a temporary file of a refused Convert, a hold on a cached image)
	 * goes now, not later. */
	g_clear_pointer (&call->job_data, call->job_free);
	self->n_calls--;
	vmi_daemon_check_idle (self->daemon);
}

/* A new call of kind, with the path it names (or NULL) and its options (or NULL); NULL, with
 * the reply sent, when the daemon is stopping and the kind starts a job. */
static VmiCall *
vmi_call_new (VmiManagerImpl *manager, VmiCallKind kind, GDBusMethodInvocation *invocation,
	      const char *source, GVariant *options)
{
	VmiCall *call;

	if (vmi_call_classes[kind].job_operation != NULL &&
	    vmi_manager_impl_refuse_if_stopping (manager, invocation))
		return NULL;
	call = g_new0 (VmiCall, 1);
	call->klass = &vmi_call_classes[kind];
	call->manager = g_object_ref (manager);
	/* The reply consumes this reference: every reply steals it from the call. */
	call->invocation = invocation;
	call->source = g_strdup (source);
	call->options = options != NULL ? g_variant_ref (options) : NULL;
	call->source_fd = -1;
	call->dest_fd = -1;
	return call;
}

/* Sends call to the worker thread; NULL is a call refused already. */
static void
vmi_call_run (VmiCall *call)
{
	g_autoptr(GTask) task = NULL;

	if (call == NULL)
		return;
	task = g_task_new (call->manager, NULL, vmi_call_done_cb, NULL);
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

/* vmi_call_new for the fd variants: the source fd and, if destination is not NULL, the
 * destination fd, taken from fd_list; NULL, with the reply sent, if that fails. */
static VmiCall *
vmi_call_new_fd (VmiManagerImpl *manager, VmiCallKind kind, GDBusMethodInvocation *invocation,
		 GUnixFDList *fd_list, GVariant *source, GVariant *destination, GVariant *options)
{
	g_autoptr(VmiCall) call = vmi_call_new (manager, kind, invocation, NULL, options);
	GError *error = NULL;

	if (call == NULL)
		return NULL;
	if (!vmi_call_take_fd (call, fd_list, source, &call->source_fd, &error) ||
	    (destination != NULL &&
	     !vmi_call_take_fd (call, fd_list, destination, &call->dest_fd, &error))) {
		vmi_dbus_error_normalize (&error);
		g_dbus_method_invocation_take_error (g_steal_pointer (&call->invocation), error);
		return NULL;
	}
	return g_steal_pointer (&call);
}

/* ---- The method handlers ---- */

/* Inspect, Check and CacheImport: a path and options; user_data is the VmiCallKind. */
static gboolean
vmi_manager_impl_handle_path (VmiManager *object, GDBusMethodInvocation *invocation,
			      const char *path, GVariant *options, gpointer user_data)
{
	vmi_call_run (vmi_call_new (VMI_MANAGER_IMPL (object), GPOINTER_TO_INT (user_data),
				    invocation, path, options));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* InspectFd, CheckFd and CacheImportFd: a source fd and options; user_data is the
 * VmiCallKind. */
static gboolean
vmi_manager_impl_handle_fd (VmiManager *object, GDBusMethodInvocation *invocation,
			    GUnixFDList *fd_list, GVariant *fd, GVariant *options, gpointer user_data)
{
	vmi_call_run (vmi_call_new_fd (VMI_MANAGER_IMPL (object), GPOINTER_TO_INT (user_data),
				       invocation, fd_list, fd, NULL, options));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_convert (VmiManager *object, GDBusMethodInvocation *invocation,
				 const char *source, const char *destination, const char *format,
				 GVariant *options, gpointer user_data)
{
	VmiCall *call = vmi_call_new (VMI_MANAGER_IMPL (object), VMI_CALL_CONVERT, invocation,
				      source, options);

	if (call != NULL) {
		call->destination = g_strdup (destination);
		call->format = g_strdup (format);
	}
	vmi_call_run (call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_convert_fd (VmiManager *object, GDBusMethodInvocation *invocation,
				    GUnixFDList *fd_list, GVariant *source, GVariant *destination,
				    const char *format, GVariant *options, gpointer user_data)
{
	VmiCall *call = vmi_call_new_fd (VMI_MANAGER_IMPL (object), VMI_CALL_CONVERT, invocation,
					 fd_list, source, destination, options);

	if (call != NULL)
		call->format = g_strdup (format);
	vmi_call_run (call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_cancel (VmiJob *object, GDBusMethodInvocation *invocation,
				gpointer user_data)
{
	VmiJobImpl *job = VMI_JOB_IMPL (object);
	VmiCall *call;

	/* The connection that started the job needs no look-up. */
	if (g_strcmp0 (g_dbus_method_invocation_get_sender (invocation),
		       vmi_job_impl_get_owner_sender (job)) == 0) {
		vmi_job_impl_cancel (job);
		vmi_job_complete_cancel (object, invocation);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	call = vmi_call_new (user_data, VMI_CALL_CANCEL, invocation, NULL, NULL);
	call->job = g_object_ref (job);
	vmi_call_run (call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_compare (VmiManager *object, GDBusMethodInvocation *invocation,
				 const char *a, const char *b, GVariant *options, gpointer user_data)
{
	VmiCall *call = vmi_call_new (VMI_MANAGER_IMPL (object), VMI_CALL_COMPARE, invocation, a,
				      options);

	if (call != NULL)
		call->source_b = g_strdup (b);
	vmi_call_run (call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_measure (VmiManager *object, GDBusMethodInvocation *invocation,
				 const char *path, const char *format, GVariant *options,
				 gpointer user_data)
{
	VmiCall *call = vmi_call_new (VMI_MANAGER_IMPL (object), VMI_CALL_MEASURE, invocation,
				      path, options);

	call->format = g_strdup (format);
	vmi_call_run (call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_cache_prune (VmiManager *object, GDBusMethodInvocation *invocation,
				     gpointer user_data)
{
	vmi_call_run (vmi_call_new (VMI_MANAGER_IMPL (object), VMI_CALL_CACHE_PRUNE, invocation,
				    NULL, NULL));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* vmi_call_new for a method of a cached image. */
static VmiCall *
vmi_call_new_image (VmiManagerImpl *self, VmiCallKind kind, VmiCacheImage *image,
		    GDBusMethodInvocation *invocation, GVariant *options)
{
	VmiCall *call = vmi_call_new (self, kind, invocation, NULL, options);

	if (call != NULL)
		call->image = g_object_ref (VMI_IMAGE_IMPL (image));
	return call;
}

static gboolean
vmi_manager_impl_handle_export (VmiCacheImage *image, GDBusMethodInvocation *invocation,
				const char *destination, const char *format, GVariant *options,
				gpointer user_data)
{
	VmiCall *call = vmi_call_new_image (user_data, VMI_CALL_IMAGE_EXPORT, image, invocation,
					    options);

	if (call != NULL) {
		call->destination = g_strdup (destination);
		call->format = g_strdup (format);
	}
	vmi_call_run (call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_remove (VmiCacheImage *image, GDBusMethodInvocation *invocation,
				gpointer user_data)
{
	vmi_call_run (vmi_call_new_image (user_data, VMI_CALL_IMAGE_REMOVE, image, invocation,
					  NULL));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_set_properties (VmiCacheImage *image, GDBusMethodInvocation *invocation,
					GVariant *set, const char *const *unset,
					gpointer user_data)
{
	VmiCall *call = vmi_call_new_image (user_data, VMI_CALL_IMAGE_SET_PROPERTIES, image,
					    invocation, NULL);

	call->set = g_variant_ref (set);
	call->unset = g_variant_ref_sink (g_variant_new_strv (unset, -1));
	vmi_call_run (call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
vmi_manager_impl_handle_verify (VmiCacheImage *image, GDBusMethodInvocation *invocation,
				gpointer user_data)
{
	vmi_call_run (vmi_call_new_image (user_data, VMI_CALL_IMAGE_VERIFY, image, invocation,
					  NULL));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
vmi_manager_impl_watch_image (VmiManagerImpl *self, VmiImageImpl *image)
{
	g_signal_connect_object (image, "handle-export",
				 G_CALLBACK (vmi_manager_impl_handle_export), self, 0);
	g_signal_connect_object (image, "handle-remove",
				 G_CALLBACK (vmi_manager_impl_handle_remove), self, 0);
	g_signal_connect_object (image, "handle-set-properties",
				 G_CALLBACK (vmi_manager_impl_handle_set_properties), self, 0);
	g_signal_connect_object (image, "handle-verify",
				 G_CALLBACK (vmi_manager_impl_handle_verify), self, 0);
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
	static const struct {
		const char *path_signal; /* the method by path */
		const char *fd_signal;   /* the same with an fd */
		VmiCallKind kind;
	} by_path_or_fd[] = {
		{ "handle-inspect", "handle-inspect-fd", VMI_CALL_INSPECT },
		{ "handle-check", "handle-check-fd", VMI_CALL_CHECK },
		{ "handle-cache-import", "handle-cache-import-fd", VMI_CALL_CACHE_IMPORT },
	};

	for (gsize i = 0; i < G_N_ELEMENTS (by_path_or_fd); i++) {
		gpointer kind = GINT_TO_POINTER (by_path_or_fd[i].kind);

		g_signal_connect (self, by_path_or_fd[i].path_signal,
				  G_CALLBACK (vmi_manager_impl_handle_path), kind);
		g_signal_connect (self, by_path_or_fd[i].fd_signal,
				  G_CALLBACK (vmi_manager_impl_handle_fd), kind);
	}
	g_signal_connect (self, "handle-convert", G_CALLBACK (vmi_manager_impl_handle_convert), NULL);
	g_signal_connect (self, "handle-convert-fd",
			  G_CALLBACK (vmi_manager_impl_handle_convert_fd), NULL);
	g_signal_connect (self, "handle-cache-prune",
			  G_CALLBACK (vmi_manager_impl_handle_cache_prune), NULL);
	g_signal_connect (self, "handle-compare", G_CALLBACK (vmi_manager_impl_handle_compare),
			  NULL);
	g_signal_connect (self, "handle-measure", G_CALLBACK (vmi_manager_impl_handle_measure),
			  NULL);
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
