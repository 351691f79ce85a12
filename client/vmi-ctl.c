/* What every vmimagectl command shares: bus choice, argument parsing, errors, values. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmi-ctl.h"

GBusType
vmi_ctl_bus_type (const VmiCtl *ctl)
{
	/* The daemon is a system service; --session is for unprivileged use, tests and the demo. */
	if (ctl->session && !ctl->system)
		return G_BUS_TYPE_SESSION;
	return G_BUS_TYPE_SYSTEM;
}

gboolean
vmi_ctl_parse_args (VmiCtl *ctl, const char *command, const char *parameter_string,
		    const char *summary, const char *description, const GOptionEntry *entries,
		    int n_args_min, int n_args_max, int *argc, char ***argv)
{
	const GOptionEntry bus_entries[] = {
		{ "session", 0, 0, G_OPTION_ARG_NONE, &ctl->session,
		  "Talk to vmimaged on the session bus", NULL },
		{ "system", 0, 0, G_OPTION_ARG_NONE, &ctl->system,
		  "Talk to vmimaged on the system bus (the default)", NULL },
		{ NULL }
	};
	g_autoptr (GOptionContext) context = g_option_context_new (parameter_string);
	g_autoptr (GError) error = NULL;
	g_autofree char *prgname = g_strdup_printf ("vmimagectl %s", command);
	g_autoptr (GArray) all = g_array_new (TRUE, TRUE, sizeof (GOptionEntry));

	/* One list, so that --help shows the bus options beside the command's own. */
	for (const GOptionEntry *e = entries; e != NULL && e->long_name != NULL; e++)
		g_array_append_val (all, *e);
	g_array_append_vals (all, bus_entries, G_N_ELEMENTS (bus_entries) - 1);

	g_set_prgname (prgname);
	g_option_context_set_summary (context, summary);
	if (description != NULL)
		g_option_context_set_description (context, description);
	g_option_context_add_main_entries (context, (const GOptionEntry *) (void *) all->data, NULL);

	if (!g_option_context_parse (context, argc, argv, &error)) {
		g_printerr ("vmimagectl %s: %s\n", command, error->message);
		g_printerr ("Try 'vmimagectl %s --help'.\n", command);
		return FALSE;
	}
	/* (*argv)[0] is the command itself. */
	if (*argc - 1 < n_args_min || *argc - 1 > n_args_max) {
		g_printerr ("vmimagectl %s: expected %s\n", command, parameter_string);
		g_printerr ("Try 'vmimagectl %s --help'.\n", command);
		return FALSE;
	}
	return TRUE;
}

GDBusConnection *
vmi_ctl_get_bus (VmiCtl *ctl, GError **error)
{
	GBusType bus_type = vmi_ctl_bus_type (ctl);
	g_autoptr (GError) local_error = NULL;
	GDBusConnection *connection = g_bus_get_sync (bus_type, NULL, &local_error);

	if (connection == NULL) {
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
			     "cannot connect to the %s bus: %s",
			     bus_type == G_BUS_TYPE_SESSION ? "session" : "system",
			     local_error->message);
		return NULL;
	}
	return connection;
}

VmiManager *
vmi_ctl_get_manager (VmiCtl *ctl, GError **error)
{
	GBusType bus_type = vmi_ctl_bus_type (ctl);
	g_autoptr (GDBusConnection) connection = vmi_ctl_get_bus (ctl, error);
	g_autoptr (VmiManager) manager = NULL;
	g_autofree char *owner = NULL;

	if (connection == NULL)
		return NULL;
	manager = vmi_manager_proxy_new_sync (connection, G_DBUS_PROXY_FLAGS_NONE, VMI_CTL_BUS_NAME,
					      VMI_CTL_MANAGER_PATH, NULL, error);
	if (manager == NULL)
		return NULL;
	/* A proxy is made even when nobody owns the name; every call would then fail obscurely. */
	owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (manager));
	if (owner == NULL) {
		g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN,
			     "vmimaged is not running on the %s bus (nobody owns %s)%s",
			     bus_type == G_BUS_TYPE_SESSION ? "session" : "system",
			     VMI_CTL_BUS_NAME,
			     bus_type == G_BUS_TYPE_SESSION ? "" :
			     "; for a daemon started with --session, use vmimagectl --session");
		return NULL;
	}
	return g_steal_pointer (&manager);
}

const char *
vmi_ctl_error_short_name (const char *error_name)
{
	const char *dot;

	if (error_name == NULL || *error_name == '\0')
		return "Failed";
	dot = strrchr (error_name, '.');
	return dot != NULL ? dot + 1 : error_name;
}

int
vmi_ctl_fail (const char *what, const GError *error)
{
	g_autofree char *remote = NULL;
	g_autoptr (GError) copy = g_error_copy (error);
	const char *name = NULL;

	/* Local errors (no bus, no daemon) read best without a name. */
	if (g_dbus_error_is_remote_error (copy)) {
		remote = g_dbus_error_get_remote_error (copy);
		g_dbus_error_strip_remote_error (copy);
		name = vmi_ctl_error_short_name (remote);
	}
	if (name != NULL)
		g_printerr ("vmimagectl: %s: %s: %s\n", what, name, copy->message);
	else
		g_printerr ("vmimagectl: %s: %s\n", what, copy->message);
	return VMI_CTL_EXIT_FAILURE;
}

char *
vmi_ctl_absolute_path (const char *path)
{
	/* The daemon does not share our working folder, so it only accepts absolute paths. */
	return g_canonicalize_filename (path, NULL);
}

static gboolean
parse_uint64 (const char *text, guint64 *out)
{
	static const char suffixes[] = "KMGTPE";
	g_autofree char *digits = g_strdup (text);
	gsize len = strlen (digits);
	guint shift = 0;
	guint64 value;

	if (len == 0)
		return FALSE;
	if (len > 1) {
		const char *s = strchr (suffixes, g_ascii_toupper (digits[len - 1]));

		if (s != NULL && *s != '\0') {
			shift = 10 * (guint) (s - suffixes + 1);
			digits[len - 1] = '\0';
		}
	}
	if (!g_ascii_string_to_unsigned (digits, 10, 0, G_MAXUINT64, &value, NULL))
		return FALSE;
	if (shift > 0 && value > (G_MAXUINT64 >> shift))
		return FALSE;
	*out = value << shift;
	return TRUE;
}

GVariant *
vmi_ctl_parse_value (const char *text)
{
	guint64 number;

	if (parse_uint64 (text, &number))
		return g_variant_new_uint64 (number);
	if (g_ascii_strcasecmp (text, "true") == 0 || g_ascii_strcasecmp (text, "yes") == 0 ||
	    g_ascii_strcasecmp (text, "on") == 0)
		return g_variant_new_boolean (TRUE);
	if (g_ascii_strcasecmp (text, "false") == 0 || g_ascii_strcasecmp (text, "no") == 0 ||
	    g_ascii_strcasecmp (text, "off") == 0)
		return g_variant_new_boolean (FALSE);
	return g_variant_new_string (text);
}

gboolean
vmi_ctl_add_key_value (GVariantDict *dict, const char *key_value, GError **error)
{
	const char *eq = strchr (key_value, '=');
	g_autofree char *key = NULL;

	if (eq == NULL || eq == key_value) {
		g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			     "option \"%s\" is not of the form key=value", key_value);
		return FALSE;
	}
	if (!g_utf8_validate (key_value, -1, NULL)) {
		g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			     "option \"%s\" is not valid UTF-8", key_value);
		return FALSE;
	}
	key = g_strndup (key_value, (gsize) (eq - key_value));
	g_variant_dict_insert_value (dict, key, vmi_ctl_parse_value (eq + 1));
	return TRUE;
}

gboolean
vmi_ctl_add_create_options (GVariantDict *dict, const char *command, char **key_values)
{
	for (guint i = 0; key_values != NULL && key_values[i] != NULL; i++) {
		g_autoptr (GError) error = NULL;

		if (!vmi_ctl_add_key_value (dict, key_values[i], &error)) {
			g_printerr ("vmimagectl %s: %s\n", command, error->message);
			return FALSE;
		}
	}
	return TRUE;
}

char *
vmi_ctl_format_size (guint64 bytes)
{
	static const char *const units[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
	guint i = 0;

	/*
	 * Like qemu-img: move to the next unit once the number reaches 1000 of the current one, so
	 * the number never needs four digits ("1000 KiB" is shown as "0.977 MiB").
	 */
	while (i + 1 < G_N_ELEMENTS (units) && (double) bytes >= 1000.0 * (double) (1ull << (10 * i)))
		i++;
	return g_strdup_printf ("%0.3g %sB", (double) bytes / (double) (1ull << (10 * i)), units[i]);
}
