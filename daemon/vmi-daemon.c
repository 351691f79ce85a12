/* The running daemon: bus name, object manager, registry, jobs, orderly stop. */
#include "config.h"

#include <glib-unix.h>
#include <signal.h>

#include "vmi-daemon.h"
#include "vmi-dbus-error.h"
#include "vmi-manager.h"

struct _VmiDaemon {
	VmiConfig *config;
	VmiRegistry *registry;
	VmiAuthority *authority;
	GDBusConnection *connection;
	GDBusObjectManagerServer *object_manager;
	VmiManagerImpl *manager;
	VmiJobQueue *jobs;
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
	return g_steal_pointer (&self);
}

void
vmi_daemon_free (VmiDaemon *self)
{
	if (self == NULL)
		return;
	g_clear_handle_id (&self->owner_id, g_bus_unown_name);
	g_clear_pointer (&self->jobs, vmi_job_queue_free);
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
}

static void
vmi_daemon_name_acquired_cb (GDBusConnection *connection, const char *name, gpointer user_data)
{
	VmiDaemon *self = user_data;

	self->name_acquired = TRUE;
	g_message ("Serving %s on the bus", name);
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
