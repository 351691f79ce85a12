/* Loads, but its init declines (a plugin whose library or hardware is missing does this). */
#include "test-module.h"

static gboolean
declines_init (GError **error)
{
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "declines: its helper library is missing");
	return FALSE;
}

static guint
declines_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return VMI_PROBE_CERTAIN;
}

static const VmiFormatPlugin declines_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "declines",
	.description = "Test format whose init says no",
	.flags = VMI_FORMAT_CAN_INSPECT,
	.init = declines_init,
	.probe = declines_probe,
	TEST_MODULE_CALLS,
};

VMI_PLUGIN_DEFINE (declines_plugin)
