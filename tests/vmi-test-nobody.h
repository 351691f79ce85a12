/*
 * A client of the daemon running as the user nobody: the test program re-runs itself (from a
 * copy any user may run) with "--call", as a child that drops to uid and gid 65534, and makes
 * one D-Bus call. Tests use it to see the daemon refuse what the caller may not do.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Calls method on path (args as GVariant text) on the bus at address, as nobody; returns
 * "OK <reply>" or "<D-Bus error name> <message>". Needs root. */
char *vmi_test_call_as_nobody (const char *address, const char *path, const char *iface,
			       const char *method, const char *args);

/* In main, before g_test_init: TRUE when this run is such a client, with its exit status. */
gboolean vmi_test_nobody_client (int argc, char **argv, int *status);

G_END_DECLS
