/* The D-Bus names of the VMI_ERROR codes, and the mapping of other GErrors onto them. */
#include "config.h"

#include <gio/gio.h>

#include "vmi-dbus-error.h"

static const GDBusErrorEntry vmi_dbus_error_entries[] = {
	{ VMI_ERROR_FAILED, VMI_DBUS_ERROR_PREFIX "Failed" },
	{ VMI_ERROR_NOT_AUTHORIZED, VMI_DBUS_ERROR_PREFIX "NotAuthorized" },
	{ VMI_ERROR_ACCESS_DENIED, VMI_DBUS_ERROR_PREFIX "AccessDenied" },
	{ VMI_ERROR_UNKNOWN_FORMAT, VMI_DBUS_ERROR_PREFIX "UnknownFormat" },
	{ VMI_ERROR_CORRUPT_IMAGE, VMI_DBUS_ERROR_PREFIX "CorruptImage" },
	{ VMI_ERROR_UNSAFE_IMAGE, VMI_DBUS_ERROR_PREFIX "UnsafeImage" },
	{ VMI_ERROR_NOT_SUPPORTED, VMI_DBUS_ERROR_PREFIX "NotSupported" },
	{ VMI_ERROR_INVALID_ARGUMENT, VMI_DBUS_ERROR_PREFIX "InvalidArgument" },
	{ VMI_ERROR_EXISTS, VMI_DBUS_ERROR_PREFIX "Exists" },
	{ VMI_ERROR_CANCELLED, VMI_DBUS_ERROR_PREFIX "Cancelled" },
	{ VMI_ERROR_NO_SPACE, VMI_DBUS_ERROR_PREFIX "NoSpace" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (vmi_dbus_error_entries) == VMI_ERROR_LAST);

void
vmi_dbus_error_register (void)
{
	static gsize quark = 0;

	/* The same quark name as vmi_error_quark(), so both sides agree on the domain. */
	g_dbus_error_register_error_domain ("vmimaged-error-quark", &quark, vmi_dbus_error_entries,
					    G_N_ELEMENTS (vmi_dbus_error_entries));
	g_assert (quark == VMI_ERROR);
}

const char *
vmi_dbus_error_name (gint code)
{
	if (code < 0 || code >= VMI_ERROR_LAST)
		return vmi_dbus_error_entries[VMI_ERROR_FAILED].dbus_error_name;
	return vmi_dbus_error_entries[code].dbus_error_name;
}

static gint
vmi_dbus_error_code_for_io_error (gint code)
{
	switch (code) {
	case G_IO_ERROR_CANCELLED:
		return VMI_ERROR_CANCELLED;
	case G_IO_ERROR_NO_SPACE:
		return VMI_ERROR_NO_SPACE;
	case G_IO_ERROR_PERMISSION_DENIED:
		return VMI_ERROR_ACCESS_DENIED;
	case G_IO_ERROR_EXISTS:
		return VMI_ERROR_EXISTS;
	case G_IO_ERROR_INVALID_ARGUMENT:
	case G_IO_ERROR_IS_DIRECTORY:
	case G_IO_ERROR_NOT_REGULAR_FILE:
	case G_IO_ERROR_FILENAME_TOO_LONG:
		return VMI_ERROR_INVALID_ARGUMENT;
	case G_IO_ERROR_NOT_SUPPORTED:
		return VMI_ERROR_NOT_SUPPORTED;
	default:
		return VMI_ERROR_FAILED;
	}
}

void
vmi_dbus_error_normalize (GError **error)
{
	GError *old;
	gint code = VMI_ERROR_FAILED;

	if (error == NULL || *error == NULL || (*error)->domain == VMI_ERROR)
		return;
	old = *error;
	if (old->domain == G_IO_ERROR)
		code = vmi_dbus_error_code_for_io_error (old->code);
	else if (old->domain == G_DBUS_ERROR && old->code == G_DBUS_ERROR_ACCESS_DENIED)
		code = VMI_ERROR_NOT_AUTHORIZED;
	else if (old->domain == G_FILE_ERROR && (old->code == G_FILE_ERROR_ACCES || old->code == G_FILE_ERROR_PERM))
		code = VMI_ERROR_ACCESS_DENIED;
	else if (old->domain == G_FILE_ERROR && old->code == G_FILE_ERROR_NOSPC)
		code = VMI_ERROR_NO_SPACE;
	*error = g_error_new_literal (VMI_ERROR, code, old->message);
	g_error_free (old);
}
