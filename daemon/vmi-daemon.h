/*
 * The running daemon: the bus name, the object manager at /org/vmimaged/VMImage1, the plugin
 * registry and the jobs; and an orderly stop on SIGTERM/SIGINT.
 */
#pragma once

#include "vmi-authority.h"
#include "vmi-cache.h"
#include "vmi-config.h"
#include "vmi-job-queue.h"
#include "vmi-registry.h"

G_BEGIN_DECLS

#define VMI_DBUS_NAME "org.vmimaged.VMImage1"
#define VMI_DBUS_ROOT_PATH "/org/vmimaged/VMImage1"
#define VMI_DBUS_MANAGER_PATH "/org/vmimaged/VMImage1/Manager"

typedef struct _VmiDaemon VmiDaemon;

/* Loads the plugins named by config (the daemon takes config). */
VmiDaemon *vmi_daemon_new (VmiConfig *config, GError **error);
void vmi_daemon_free (VmiDaemon *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiDaemon, vmi_daemon_free)

/*
 * Owns the name on the system bus (or the session bus) and serves until SIGTERM/SIGINT or the
 * loss of the name. Returns the exit status: 0 after an orderly stop.
 */
int vmi_daemon_run (VmiDaemon *self, gboolean session, gboolean replace);

VmiConfig *vmi_daemon_get_config (VmiDaemon *self);
VmiRegistry *vmi_daemon_get_registry (VmiDaemon *self);
VmiAuthority *vmi_daemon_get_authority (VmiDaemon *self);
GDBusConnection *vmi_daemon_get_connection (VmiDaemon *self);
VmiJobQueue *vmi_daemon_get_jobs (VmiDaemon *self);
/*
 * The image cache, or NULL (with VMI_ERROR_FAILED) while it is not open yet: a daemon started
 * with --replace waits for the one it replaces to let go of it.
 */
VmiCache *vmi_daemon_get_cache (VmiDaemon *self, GError **error);
/* TRUE once a stop has begun: no new jobs are accepted. */
gboolean vmi_daemon_is_stopping (VmiDaemon *self);
/* During a stop: ends the main loop once no job runs and no call is in flight. */
void vmi_daemon_check_idle (VmiDaemon *self);

G_END_DECLS
