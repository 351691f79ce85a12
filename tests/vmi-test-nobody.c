#include <grp.h>
#include <unistd.h>

#include "vmi-test-nobody.h"
#include "vmi-test-util.h"

static void
vmi_test_drop_to_nobody (gpointer data)
{
	if (setgroups (0, NULL) != 0 || setgid (65534) != 0 || setuid (65534) != 0)
		_exit (99);
}

char *
vmi_test_call_as_nobody (const char *address, const char *path, const char *iface, const char *method, const char *args)
{
	g_autoptr(GError) error = NULL;
	const char *self = vmi_test_self_for_other_users ();
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	const char *envp[] = { "ASAN_OPTIONS=detect_leaks=0", "LSAN_OPTIONS=detect_leaks=0", NULL };
	const char *argv[] = { self, "--call", address, path, iface, method, args, NULL };
	int status = 0;

	g_assert_no_error (error);
	g_spawn_sync ("/", (char **) argv, (char **) envp, G_SPAWN_DEFAULT, vmi_test_drop_to_nobody, NULL,
		      &out, &err, &status, &error);
	g_assert_no_error (error);
	if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
		g_error ("the client as nobody failed (status %d): %s", status, err);
	return g_strdup (g_strstrip (out));
}

gboolean
vmi_test_nobody_client (int argc, char **argv, int *status)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(GVariant) params = NULL;
	g_autoptr(GVariant) reply = NULL;

	if (argc < 2 || g_strcmp0 (argv[1], "--call") != 0)
		return FALSE;
	*status = 0;
	if (argc != 7) {
		g_printerr ("usage: %s --call ADDRESS PATH INTERFACE METHOD ARGS\n", argv[0]);
		*status = 2;
		return TRUE;
	}
	connection = g_dbus_connection_new_for_address_sync (
		argv[2],
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	if (connection == NULL) {
		g_printerr ("cannot connect to %s as uid %u: %s\n", argv[2], getuid (), error->message);
		*status = 1;
		return TRUE;
	}
	params = g_variant_parse (NULL, argv[6], NULL, NULL, &error);
	if (params == NULL) {
		g_printerr ("bad arguments %s: %s\n", argv[6], error->message);
		*status = 2;
		return TRUE;
	}
	reply = g_dbus_connection_call_sync (connection, "org.vmimaged.VMImage1", argv[3], argv[4],
					     argv[5], params, NULL, G_DBUS_CALL_FLAGS_NONE, 60000, NULL,
					     &error);
	if (reply == NULL) {
		g_autofree char *name = g_dbus_error_get_remote_error (error);

		g_print ("%s %s\n", name != NULL ? name : "(not a D-Bus error)", error->message);
	} else {
		g_autofree char *text = g_variant_print (reply, FALSE);

		g_print ("OK %s\n", text);
	}
	return TRUE;
}
