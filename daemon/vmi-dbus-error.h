/* The D-Bus names of the VMI_ERROR codes, and the mapping of other GErrors onto them. */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

#define VMI_DBUS_ERROR_PREFIX "org.vmimaged.VMImage1.Error."

/* Makes GDBus send every VMI_ERROR code as org.vmimaged.VMImage1.Error.<Name>. Idempotent. */
void vmi_dbus_error_register (void);

/* "org.vmimaged.VMImage1.Error.Failed" etc.; Failed for a code out of range. */
const char *vmi_dbus_error_name (gint code);

/*
 * Turns an error from GLib (GIOError, GDBusError, ...) into the closest VMI_ERROR code, keeping
 * the message, so a client never sees an unmapped "org.gtk.GDBus.UnmappedGError" name.
 */
void vmi_dbus_error_normalize (GError **error);

G_END_DECLS
