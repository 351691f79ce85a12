/* Built for an ABI that does not exist: the loader must refuse it before calling anything. */
#include "test-module.h"

G_MODULE_EXPORT const guint32 vmi_plugin_abi_version = 999;
G_MODULE_EXPORT const VmiFormatPlugin *vmi_plugin_query (void);

const VmiFormatPlugin *
vmi_plugin_query (void)
{
	g_error ("the query function of a module with ABI version 999 was called");
	return NULL;
}
