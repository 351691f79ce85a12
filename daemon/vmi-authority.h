/* polkit checks: each method asks for its action before it does any work. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define VMI_ACTION_INSPECT "org.vmimaged.VMImage1.inspect"
#define VMI_ACTION_CONVERT "org.vmimaged.VMImage1.convert"
#define VMI_ACTION_CHECK "org.vmimaged.VMImage1.check"
#define VMI_ACTION_CACHE "org.vmimaged.VMImage1.cache"
#define VMI_ACTION_MANAGE "org.vmimaged.VMImage1.manage"

typedef struct _VmiAuthority VmiAuthority;

/*
 * With enabled FALSE (--session: the caller owns the bus and the daemon) every check passes
 * without asking polkit. Otherwise connects to polkit; failing that is an error.
 */
VmiAuthority *vmi_authority_new (gboolean enabled, GCancellable *cancellable, GError **error);
void vmi_authority_free (VmiAuthority *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiAuthority, vmi_authority_free)

gboolean vmi_authority_is_enabled (VmiAuthority *self);

/*
 * Whether the bus client sender may do action_id; a "no" or a dismissed dialog is
 * VMI_ERROR_NOT_AUTHORIZED. Blocking (it may wait for the user to type a password): call it
 * from a worker thread. interactive lets polkit ask the user to authenticate.
 */
gboolean vmi_authority_check (VmiAuthority *self, const char *sender, const char *action_id,
			      gboolean interactive, GCancellable *cancellable, GError **error);

G_END_DECLS
