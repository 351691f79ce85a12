/* Its vmi_plugin_query returns no plugin. */
#include "test-module.h"

G_MODULE_EXPORT const guint32 vmi_plugin_abi_version = VMI_PLUGIN_ABI_VERSION;
G_MODULE_EXPORT const VmiFormatPlugin *vmi_plugin_query (void);

const VmiFormatPlugin *
vmi_plugin_query (void)
{
	return NULL;
}
