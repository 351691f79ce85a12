/* Exports the right ABI version, but its plugin structure says another. */
#include "test-module.h"

static guint
structabi_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return VMI_PROBE_CERTAIN;
}

static const VmiFormatPlugin structabi_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION + 1,
	.name = "structabi",
	.flags = VMI_FORMAT_CAN_INSPECT,
	.probe = structabi_probe,
	TEST_MODULE_CALLS,
};

VMI_PLUGIN_DEFINE (structabi_plugin)
