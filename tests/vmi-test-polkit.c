#include "vmi-test-polkit.h"

static const char vmi_test_polkit_xml[] =
	"<node><interface name='org.freedesktop.PolicyKit1.Authority'>"
	"<method name='CheckAuthorization'>"
	"<arg type='(sa{sv})' name='subject' direction='in'/>"
	"<arg type='s' name='action_id' direction='in'/>"
	"<arg type='a{ss}' name='details' direction='in'/>"
	"<arg type='u' name='flags' direction='in'/>"
	"<arg type='s' name='cancellation_id' direction='in'/>"
	"<arg type='(bba{ss})' name='result' direction='out'/>"
	"</method></interface></node>";

struct _VmiTestPolkit {
	GMutex lock;
	GPtrArray *asked; /* "action subject-kind subject-name flags" */
	GMainContext *context;
	GMainLoop *loop;
	GThread *thread;
	gboolean ready;
	GCond cond;
	char *address;
};

static void
vmi_test_polkit_method (GDBusConnection *connection, const char *sender, const char *path,
		    const char *iface, const char *method, GVariant *params,
		    GDBusMethodInvocation *invocation, gpointer user_data)
{
	VmiTestPolkit *mock = user_data;
	g_autoptr(GVariant) subject = NULL;
	g_autoptr(GVariant) details = NULL;
	const char *kind = NULL;
	const char *action = NULL;
	const char *cancellation = NULL;
	const char *name = "";
	guint32 flags = 0;
	GVariant *subject_details = NULL;
	gboolean allowed;

	g_variant_get (params, "(@(sa{sv})&s@a{ss}u&s)", &subject, &action, &details, &flags,
		       &cancellation);
	g_variant_get (subject, "(&s@a{sv})", &kind, &subject_details);
	g_variant_lookup (subject_details, "name", "&s", &name);
	g_mutex_lock (&mock->lock);
	g_ptr_array_add (mock->asked, g_strdup_printf ("%s %s %s %u", action, kind, name, flags));
	g_mutex_unlock (&mock->lock);
	allowed = g_strcmp0 (action, "org.vmimaged.VMImage1.inspect") == 0;
	g_dbus_method_invocation_return_value (invocation,
					       g_variant_new ("((bb@a{ss}))", allowed, FALSE,
							      g_variant_new ("a{ss}", NULL)));
	g_variant_unref (subject_details);
}

static gpointer
vmi_test_polkit_thread (gpointer data)
{
	VmiTestPolkit *mock = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (vmi_test_polkit_xml, &error);
	g_autoptr(GVariant) reply = NULL;
	const GDBusInterfaceVTable vtable = { vmi_test_polkit_method, NULL, NULL, { 0 } };
	guint id;

	g_assert_no_error (error);
	g_main_context_push_thread_default (mock->context);
	connection = g_dbus_connection_new_for_address_sync (
		mock->address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error (error);
	id = g_dbus_connection_register_object (connection, "/org/freedesktop/PolicyKit1/Authority",
						info->interfaces[0], &vtable, mock, NULL, &error);
	g_assert_no_error (error);
	reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
					     "/org/freedesktop/DBus", "org.freedesktop.DBus",
					     "RequestName",
					     g_variant_new ("(su)", "org.freedesktop.PolicyKit1", 4u),
					     G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
					     &error);
	g_assert_no_error (error);
	g_mutex_lock (&mock->lock);
	mock->ready = TRUE;
	g_cond_signal (&mock->cond);
	g_mutex_unlock (&mock->lock);
	g_main_loop_run (mock->loop);
	g_dbus_connection_unregister_object (connection, id);
	g_dbus_connection_close_sync (connection, NULL, NULL);
	g_main_context_pop_thread_default (mock->context);
	return NULL;
}

VmiTestPolkit *
vmi_test_polkit_start (const char *address)
{
	VmiTestPolkit *mock = g_new0 (VmiTestPolkit, 1);

	mock->address = g_strdup (address);

	g_mutex_init (&mock->lock);
	g_cond_init (&mock->cond);
	mock->asked = g_ptr_array_new_with_free_func (g_free);
	mock->context = g_main_context_new ();
	mock->loop = g_main_loop_new (mock->context, FALSE);
	mock->thread = g_thread_new ("mock-polkit", vmi_test_polkit_thread, mock);
	g_mutex_lock (&mock->lock);
	while (!mock->ready)
		g_cond_wait (&mock->cond, &mock->lock);
	g_mutex_unlock (&mock->lock);
	return mock;
}

void
vmi_test_polkit_stop (VmiTestPolkit *mock)
{
	g_main_loop_quit (mock->loop);
	g_thread_join (mock->thread);
	g_main_loop_unref (mock->loop);
	g_main_context_unref (mock->context);
	g_ptr_array_unref (mock->asked);
	g_mutex_clear (&mock->lock);
	g_cond_clear (&mock->cond);
	g_free (mock->address);
	g_free (mock);
}

char *
vmi_test_polkit_asked (VmiTestPolkit *mock)
{
	char *text;

	g_mutex_lock (&mock->lock);
	g_ptr_array_add (mock->asked, NULL);
	text = g_strjoinv ("; ", (char **) mock->asked->pdata);
	g_ptr_array_remove_index (mock->asked, mock->asked->len - 1);
	g_ptr_array_set_size (mock->asked, 0);
	g_mutex_unlock (&mock->lock);
	return text;
}
