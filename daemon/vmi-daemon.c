/* The running daemon: bus name, object manager, registry, jobs, orderly stop. */
#include "config.h"

#include <glib-unix.h>
#include <malloc.h>
#include <signal.h>

#include "vmi-cache-job.h"
#include "vmi-daemon.h"
#include "vmi-dbus-error.h"
#include "vmi-image.h"
#include "vmi-manager.h"

/* With --replace, how long to wait for the replaced daemon to let go of the cache. */
#define VMI_DAEMON_CACHE_WAIT_SECONDS 30
#define VMI_DAEMON_CACHE_RETRY_MS 100

struct _VmiDaemon {
	VmiConfig *config;
	VmiRegistry *registry;
	VmiAuthority *authority;
	GDBusConnection *connection;
	GDBusObjectManagerServer *object_manager;
	VmiManagerImpl *manager;
	VmiJobQueue *jobs;
	VmiCache *cache;         /* set from any thread only before the bus; main thread after */
	GMutex cache_lock;       /* guards the pointer for the worker threads */
	GHashTable *images;      /* id → VmiObjectSkeleton exported under images/ */
	guint cache_retry_id;
	gint64 cache_retry_end;
	GMainLoop *loop;
	guint owner_id;
	gboolean name_acquired;
	gboolean session;
	gboolean stopping;
	gboolean released;
	int exit_status;
};

static void
vmi_daemon_log_formats (VmiDaemon *self)
{
	GPtrArray *plugins = vmi_registry_get_plugins (self->registry);
	g_autoptr(GString) names = g_string_new (NULL);

	for (guint i = 0; i < plugins->len; i++) {
		const VmiFormatPlugin *plugin = g_ptr_array_index (plugins, i);

		g_string_append_printf (names, "%s%s", names->len > 0 ? ", " : "", plugin->name);
	}
	if (plugins->len == 0)
		g_warning ("No format plugins in %s: every image will be an unknown format",
			   self->config->plugin_dir);
	else
		g_message ("Loaded %u formats from %s: %s", plugins->len, self->config->plugin_dir,
			   names->str);
}

VmiDaemon *
vmi_daemon_new (VmiConfig *config, GError **error)
{
	g_autoptr(VmiDaemon) self = g_new0 (VmiDaemon, 1);

	self->config = config;
	self->registry = vmi_registry_new ();
	if (!vmi_registry_load_dir (self->registry, config->plugin_dir, error))
		return NULL;
	vmi_daemon_log_formats (self);
	self->loop = g_main_loop_new (NULL, FALSE);
	g_mutex_init (&self->cache_lock);
	self->images = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
	return g_steal_pointer (&self);
}

void
vmi_daemon_free (VmiDaemon *self)
{
	if (self == NULL)
		return;
	g_clear_handle_id (&self->owner_id, g_bus_unown_name);
	g_clear_handle_id (&self->cache_retry_id, g_source_remove);
	g_clear_pointer (&self->jobs, vmi_job_queue_free);
	g_clear_pointer (&self->images, g_hash_table_unref);
	if (self->cache != NULL) {
		vmi_cache_set_changed_func (self->cache, NULL, NULL);
		g_clear_pointer (&self->cache, vmi_cache_free);
	}
	g_mutex_clear (&self->cache_lock);
	g_clear_object (&self->manager);
	g_clear_object (&self->object_manager);
	g_clear_object (&self->connection);
	g_clear_pointer (&self->authority, vmi_authority_free);
	g_clear_object (&self->registry);
	g_clear_pointer (&self->loop, g_main_loop_unref);
	vmi_config_free (self->config);
	g_free (self);
}

VmiConfig *
vmi_daemon_get_config (VmiDaemon *self)
{
	return self->config;
}

VmiRegistry *
vmi_daemon_get_registry (VmiDaemon *self)
{
	return self->registry;
}

VmiAuthority *
vmi_daemon_get_authority (VmiDaemon *self)
{
	return self->authority;
}

GDBusConnection *
vmi_daemon_get_connection (VmiDaemon *self)
{
	return self->connection;
}

VmiJobQueue *
vmi_daemon_get_jobs (VmiDaemon *self)
{
	return self->jobs;
}

VmiCache *
vmi_daemon_get_cache (VmiDaemon *self, GError **error)
{
	VmiCache *cache;

	g_mutex_lock (&self->cache_lock);
	cache = self->cache;
	g_mutex_unlock (&self->cache_lock);
	if (cache == NULL)
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "The image cache %s is not open yet (the daemon this one replaces "
			     "still has it); try again in a moment", self->config->cache_dir);
	return cache;
}

/* ---- The cache's entries as Image objects ---- */

static void
vmi_daemon_update_cache_properties (VmiDaemon *self)
{
	if (self->manager == NULL || self->cache == NULL)
		return;
	vmi_manager_set_cache_size (VMI_MANAGER (self->manager), vmi_cache_get_size (self->cache));
	vmi_manager_set_cache_limit (VMI_MANAGER (self->manager),
				     vmi_cache_get_limit (self->cache));
}

/* Main thread: the Image object of id as the cache has it now (exported, updated or gone). */
static void
vmi_daemon_sync_image (VmiDaemon *self, const char *id)
{
	g_autoptr(VmiCacheEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	VmiObjectSkeleton *object;

	if (self->object_manager == NULL || self->cache == NULL)
		return;
	/* Notifications from several threads may arrive out of order: ask for the present. */
	entry = vmi_cache_lookup (self->cache, id, &error);
	object = g_hash_table_lookup (self->images, id);
	if (entry == NULL && object != NULL) {
		g_autofree char *path = vmi_cache_job_image_path (id);

		g_debug ("Image %s left the cache", id);
		g_dbus_object_manager_server_unexport (self->object_manager, path);
		g_hash_table_remove (self->images, id);
	} else if (entry != NULL && object != NULL) {
		g_autoptr(VmiCacheImage) image = vmi_object_get_cache_image (VMI_OBJECT (object));

		vmi_image_impl_update (VMI_IMAGE_IMPL (image), entry);
	} else if (entry != NULL) {
		g_autofree char *path = vmi_cache_job_image_path (id);
		g_autoptr(VmiImageImpl) image = vmi_image_impl_new (entry);

		object = vmi_object_skeleton_new (path);
		vmi_object_skeleton_set_cache_image (object, VMI_CACHE_IMAGE (image));
		vmi_manager_impl_watch_image (self->manager, image);
		g_dbus_object_manager_server_export (self->object_manager,
						     G_DBUS_OBJECT_SKELETON (object));
		g_hash_table_insert (self->images, g_strdup (id), object);
	}
	vmi_daemon_update_cache_properties (self);
}

typedef struct {
	VmiDaemon *daemon;
	char *id;
} VmiDaemonImageChange;

static gboolean
vmi_daemon_image_changed_idle (gpointer user_data)
{
	VmiDaemonImageChange *change = user_data;

	vmi_daemon_sync_image (change->daemon, change->id);
	g_free (change->id);
	g_free (change);
	return G_SOURCE_REMOVE;
}

/* Any thread (a job's, a worker's): D-Bus objects change only in the main thread. */
static void
vmi_daemon_cache_changed_cb (VmiCache *cache, const char *id, VmiCacheEntry *entry,
			     gpointer user_data)
{
	VmiDaemonImageChange *change = g_new0 (VmiDaemonImageChange, 1);

	change->daemon = user_data;
	change->id = g_strdup (id);
	g_main_context_invoke (NULL, vmi_daemon_image_changed_idle, change);
}

/* Main thread, once both the bus objects and the cache exist. */
static void
vmi_daemon_publish_cache (VmiDaemon *self)
{
	g_autoptr(GPtrArray) entries = NULL;

	if (self->cache == NULL || self->object_manager == NULL)
		return;
	vmi_cache_set_changed_func (self->cache, vmi_daemon_cache_changed_cb, self);
	entries = vmi_cache_list (self->cache);
	for (guint i = 0; i < entries->len; i++)
		vmi_daemon_sync_image (self, vmi_cache_entry_get_id (g_ptr_array_index (entries, i)));
	vmi_daemon_update_cache_properties (self);
}

static gboolean
vmi_daemon_open_cache (VmiDaemon *self, GError **error)
{
	VmiCache *cache = vmi_cache_open (self->config->cache_dir, self->config->cache_limit,
					  error);
	g_autoptr(GPtrArray) entries = NULL;

	if (cache == NULL)
		return FALSE;
	entries = vmi_cache_list (cache);
	g_mutex_lock (&self->cache_lock);
	self->cache = cache;
	g_mutex_unlock (&self->cache_lock);
	g_message ("Image cache %s: %u images, %" G_GUINT64_FORMAT " bytes, limit %" G_GUINT64_FORMAT
		   "%s", self->config->cache_dir, entries->len,
		   vmi_cache_get_size (cache), vmi_cache_get_limit (cache),
		   vmi_cache_get_limit (cache) == 0 ? " (none)" : "");
	return TRUE;
}

static void vmi_daemon_stop (VmiDaemon *self, int exit_status);

/* --replace: the daemon being replaced lets go of the cache when it exits. */
static gboolean
vmi_daemon_cache_retry_cb (gpointer user_data)
{
	VmiDaemon *self = user_data;
	g_autoptr(GError) error = NULL;

	if (vmi_daemon_open_cache (self, &error)) {
		self->cache_retry_id = 0;
		vmi_daemon_publish_cache (self);
		return G_SOURCE_REMOVE;
	}
	if (g_error_matches (error, VMI_ERROR, VMI_ERROR_EXISTS) &&
	    g_get_monotonic_time () < self->cache_retry_end)
		return G_SOURCE_CONTINUE;
	self->cache_retry_id = 0;
	g_warning ("Cannot open the image cache: %s", error->message);
	vmi_daemon_stop (self, 1);
	return G_SOURCE_REMOVE;
}

gboolean
vmi_daemon_is_stopping (VmiDaemon *self)
{
	return self->stopping;
}

/* Last step of a stop: every job has removed its partial output and every call in flight (which
 * may hold a temporary file) has been answered. */
static gboolean
vmi_daemon_idle_cb (gpointer user_data)
{
	VmiDaemon *self = user_data;

	/* No job runs: give back what the jobs freed, so the idle daemon stays small. */
	malloc_trim (0);
	vmi_daemon_check_idle (self);
	return G_SOURCE_REMOVE;
}

void
vmi_daemon_check_idle (VmiDaemon *self)
{
	if (!self->stopping || self->released)
		return;
	if (self->jobs != NULL && vmi_job_queue_get_n_active (self->jobs) > 0)
		return;
	if (self->manager != NULL && vmi_manager_impl_get_n_calls (self->manager) > 0)
		return;
	self->released = TRUE;
	g_message ("All jobs stopped; releasing %s", VMI_DBUS_NAME);
	g_clear_handle_id (&self->owner_id, g_bus_unown_name);
	if (self->connection != NULL)
		g_dbus_connection_flush_sync (self->connection, NULL, NULL);
	g_main_loop_quit (self->loop);
}

static void
vmi_daemon_stop (VmiDaemon *self, int exit_status)
{
	if (self->stopping)
		return;
	self->stopping = TRUE;
	self->exit_status = exit_status;
	if (self->jobs != NULL && vmi_job_queue_get_n_active (self->jobs) > 0) {
		g_message ("Cancelling %u jobs", vmi_job_queue_get_n_active (self->jobs));
		vmi_job_queue_cancel_all (self->jobs);
	}
	vmi_daemon_check_idle (self);
}

static gboolean
vmi_daemon_signal_cb (gpointer user_data)
{
	g_message ("Stopping on a signal");
	vmi_daemon_stop (user_data, 0);
	return G_SOURCE_CONTINUE;
}

static void
vmi_daemon_bus_acquired_cb (GDBusConnection *connection, const char *name, gpointer user_data)
{
	VmiDaemon *self = user_data;
	g_autoptr(VmiObjectSkeleton) object = vmi_object_skeleton_new (VMI_DBUS_MANAGER_PATH);

	self->connection = g_object_ref (connection);
	/* A client's disconnect must not take the daemon down with it. */
	g_dbus_connection_set_exit_on_close (connection, FALSE);
	self->object_manager = g_dbus_object_manager_server_new (VMI_DBUS_ROOT_PATH);
	self->jobs = vmi_job_queue_new (self->object_manager, self->config->max_parallel_jobs,
					self->config->job_linger_seconds);
	vmi_job_queue_set_idle_func (self->jobs, vmi_daemon_idle_cb, self);
	self->manager = vmi_manager_impl_new (self);
	vmi_object_skeleton_set_manager (object, VMI_MANAGER (self->manager));
	g_dbus_object_manager_server_export (self->object_manager, G_DBUS_OBJECT_SKELETON (object));
	g_dbus_object_manager_server_set_connection (self->object_manager, connection);
	vmi_daemon_publish_cache (self);
}

static void
vmi_daemon_name_acquired_cb (GDBusConnection *connection, const char *name, gpointer user_data)
{
	VmiDaemon *self = user_data;

	self->name_acquired = TRUE;
	g_message ("Serving %s on the bus", name);
	/* Start-up (loading the plugins, reading the cache) freed more than it keeps. */
	malloc_trim (0);
}

static void
vmi_daemon_name_lost_cb (GDBusConnection *connection, const char *name, gpointer user_data)
{
	VmiDaemon *self = user_data;

	if (self->stopping)
		return;
	/* Expected failures, not bugs: g_warning, so that G_DEBUG=fatal-criticals stays usable. */
	if (!self->name_acquired) {
		if (connection == NULL)
			g_warning ("Cannot connect to the %s bus to own %s", self->session ? "session" : "system",
				   name);
		else
			g_warning ("%s is owned by another process; stop it or start with --replace",
				   name);
		self->stopping = TRUE;
		self->released = TRUE;
		self->exit_status = 1;
		g_main_loop_quit (self->loop);
		return;
	}
	if (connection == NULL) {
		g_warning ("Lost the connection to the bus; cancelling the jobs and stopping");
		vmi_daemon_stop (self, 1);
		return;
	}
	g_message ("Lost %s (replaced by another daemon?); stopping", name);
	vmi_daemon_stop (self, 0);
}

int
vmi_daemon_run (VmiDaemon *self, gboolean session, gboolean replace)
{
	g_autoptr(GError) error = NULL;
	GBusNameOwnerFlags flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT;
	guint sigterm_id, sigint_id;

	vmi_dbus_error_register ();
	self->session = session;
	/* On the session bus the caller owns the bus and this daemon: polkit has nothing to add. */
	self->authority = vmi_authority_new (!session, NULL, &error);
	if (self->authority == NULL) {
		g_warning ("%s", error->message);
		return 1;
	}
	/*
	 * The cache before the bus: an unsafe cache directory stops the daemon before it offers
	 * anything. A cache held by another process is the daemon this one replaces (it lets go
	 * when it exits) or, without --replace, a reason to stop.
	 */
	if (!vmi_daemon_open_cache (self, &error)) {
		if (!replace || !g_error_matches (error, VMI_ERROR, VMI_ERROR_EXISTS)) {
			if (g_error_matches (error, VMI_ERROR, VMI_ERROR_EXISTS))
				g_warning ("Cannot open the image cache: %s; another vmimaged uses "
					   "it: stop it, start with --replace, or give another "
					   "--cache-dir", error->message);
			else
				g_warning ("Cannot open the image cache: %s", error->message);
			return 1;
		}
		g_message ("The image cache is in use by the daemon being replaced; waiting up to "
			   "%d s for it", VMI_DAEMON_CACHE_WAIT_SECONDS);
		g_clear_error (&error);
		self->cache_retry_end = g_get_monotonic_time () +
					VMI_DAEMON_CACHE_WAIT_SECONDS * G_USEC_PER_SEC;
		self->cache_retry_id = g_timeout_add (VMI_DAEMON_CACHE_RETRY_MS,
						      vmi_daemon_cache_retry_cb, self);
	}
	if (replace)
		flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;
	sigterm_id = g_unix_signal_add (SIGTERM, vmi_daemon_signal_cb, self);
	sigint_id = g_unix_signal_add (SIGINT, vmi_daemon_signal_cb, self);
	self->owner_id = g_bus_own_name (session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM,
					 VMI_DBUS_NAME, flags, vmi_daemon_bus_acquired_cb,
					 vmi_daemon_name_acquired_cb, vmi_daemon_name_lost_cb, self,
					 NULL);
	g_main_loop_run (self->loop);
	g_source_remove (sigterm_id);
	g_source_remove (sigint_id);
	return self->exit_status;
}
