/*
 * A private D-Bus for integration tests: its own dbus-daemon (which lets every user connect,
 * so a test may call as another uid) with the built vmimaged on it, serving the built plugins.
 * Nothing of the machine's buses or configuration is used.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _VmiTestBus VmiTestBus;

/*
 * Starts dbus-daemon and then vmimaged --session --plugin-dir $VMI_TEST_PLUGIN_DIR on it, and
 * returns once the daemon owns org.vmimaged.VMImage1. The daemon is $VMI_TEST_VMIMAGED, or
 * VMI_TEST_VMIMAGED as compiled in. extra_args (NULL-terminated, may be NULL) go to vmimaged
 * as well. Aborts the test with the daemon's output if it does not come up.
 */
VmiTestBus *vmi_test_bus_new (void);
VmiTestBus *vmi_test_bus_new_full (const char *const *extra_args);

/* The bus's address, for DBUS_SESSION_BUS_ADDRESS of a child process. */
const char *vmi_test_bus_get_address (VmiTestBus *bus);
/* A connection of this process to the bus (made on first use). */
GDBusConnection *vmi_test_bus_get_connection (VmiTestBus *bus);
/* The folder of this bus's files (config, the daemon's cache dir); removed by _free. */
const char *vmi_test_bus_get_dir (VmiTestBus *bus);
/* vmimaged's process, for signals; NULL once stopped. */
GSubprocess *vmi_test_bus_get_daemon (VmiTestBus *bus);

/* A GSpawnChildSetupFunc for a test's own child processes: they get SIGTERM if the test dies. */
void vmi_test_bus_child_setup (gpointer user_data);

/* Stops vmimaged with SIGTERM and asserts that it exits 0 within 60 s. Idempotent. */
void vmi_test_bus_stop_daemon (VmiTestBus *bus);

/* Stops vmimaged (if running) and the bus, and removes the folder. */
void vmi_test_bus_free (VmiTestBus *bus);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiTestBus, vmi_test_bus_free)

G_END_DECLS
