/* Built twice, as TIE_NAME "tie-a" and "tie-b": both give the same score to "TIE!" files. */
#include "test-module.h"

static guint
tie_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return test_module_probe_marker (head, head_len, "TIE!", VMI_PROBE_WEAK);
}

static const VmiFormatPlugin tie_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = TIE_NAME,
	.description = "Test format that ties with its twin",
	.flags = VMI_FORMAT_CAN_INSPECT,
	.probe = tie_probe,
	TEST_MODULE_CALLS,
};

VMI_PLUGIN_DEFINE (tie_plugin)
