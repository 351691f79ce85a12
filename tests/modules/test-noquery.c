/* Has the right ABI version but no vmi_plugin_query entry point. */
#include "test-module.h"

G_MODULE_EXPORT const guint32 vmi_plugin_abi_version = VMI_PLUGIN_ABI_VERSION;
