/* polkit checks: each method asks for its action before it does any work. */
#include "config.h"

#include <polkit/polkit.h>

#include "vmi-authority.h"
#include "vmi-plugin.h"

struct _VmiAuthority {
	PolkitAuthority *authority; /* NULL when checks are off */
};

VmiAuthority *
vmi_authority_new (gboolean enabled, GCancellable *cancellable, GError **error)
{
	g_autoptr(VmiAuthority) self = g_new0 (VmiAuthority, 1);

	if (!enabled)
		return g_steal_pointer (&self);
	self->authority = polkit_authority_get_sync (cancellable, error);
	if (self->authority == NULL) {
		g_prefix_error (error, "Cannot connect to polkit: ");
		return NULL;
	}
	return g_steal_pointer (&self);
}

void
vmi_authority_free (VmiAuthority *self)
{
	if (self == NULL)
		return;
	g_clear_object (&self->authority);
	g_free (self);
}

gboolean
vmi_authority_is_enabled (VmiAuthority *self)
{
	return self->authority != NULL;
}

gboolean
vmi_authority_check (VmiAuthority *self, const char *sender, const char *action_id,
		     gboolean interactive, GCancellable *cancellable, GError **error)
{
	g_autoptr(PolkitSubject) subject = NULL;
	g_autoptr(PolkitAuthorizationResult) result = NULL;
	g_autoptr(GError) error_local = NULL;
	PolkitCheckAuthorizationFlags flags = POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE;

	if (self->authority == NULL)
		return TRUE;
	if (interactive)
		flags |= POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION;
	subject = polkit_system_bus_name_new (sender);
	result = polkit_authority_check_authorization_sync (self->authority, subject, action_id, NULL,
							    flags, cancellable, &error_local);
	if (result == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_AUTHORIZED,
			     "Cannot check authorization for %s: %s", action_id, error_local->message);
		return FALSE;
	}
	if (polkit_authorization_result_get_is_authorized (result))
		return TRUE;
	if (polkit_authorization_result_get_dismissed (result)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_AUTHORIZED,
			     "Authentication for %s was dismissed", action_id);
		return FALSE;
	}
	g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_AUTHORIZED,
		     "Not authorized to do %s; ask an administrator for the polkit action, or "
		     "authenticate when asked", action_id);
	return FALSE;
}
