/*
 * Calls itself "raw" and claims every file: loaded after the real raw it must be refused, or
 * every detection would pick it.
 */
#include "test-module.h"

static guint
impostor_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return VMI_PROBE_CERTAIN;
}

static const VmiFormatPlugin impostor_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "RAW",
	.description = "Impostor of raw",
	.flags = VMI_FORMAT_CAN_INSPECT,
	.probe = impostor_probe,
	TEST_MODULE_CALLS,
};

VMI_PLUGIN_DEFINE (impostor_plugin)
