/* A well-formed plugin: "good", alias "GoodAlias", sure of files that start with "GOOD". */
#include "test-module.h"

static guint
good_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return test_module_probe_marker (head, head_len, "GOOD", VMI_PROBE_CERTAIN);
}

static const char *const good_extensions[] = { "good", NULL };
static const char *const good_aliases[] = { "GoodAlias", NULL };

static const VmiFormatPlugin good_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "good",
	.description = "Test format that loads",
	.extensions = good_extensions,
	.aliases = good_aliases,
	.flags = VMI_FORMAT_CAN_INSPECT,
	.probe = good_probe,
	TEST_MODULE_CALLS,
};

VMI_PLUGIN_DEFINE (good_plugin)
