/* The VirtualBox VDI plugin: detection and the entry points (see vdi-private.h for the layout). */
#include <string.h>

#include "vdi-private.h"
#include "vdi-measure.h"
#include "vdi-check.h"

static guint
vdi_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	guint32 signature;

	if (head_len < VDI_PRE_HEADER_SIZE)
		return VMI_PROBE_NO;
	memcpy (&signature, head + 0x40, sizeof signature);
	return GUINT32_FROM_LE (signature) == VDI_SIGNATURE ? VMI_PROBE_CERTAIN : VMI_PROBE_NO;
}

static const char *const vdi_extensions[] = { "vdi", NULL };

const VmiFormatPlugin vmi_vdi_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "vdi",
	.description = "VirtualBox Disk Image (VDI 1.1, dynamic and static)",
	.extensions = vdi_extensions,
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ | VMI_FORMAT_CAN_WRITE,
	.probe = vdi_probe,
	.open = vdi_open,
	.get_info = vdi_get_info,
	.read = vdi_read,
	.block_status = vdi_block_status,
	.close = vdi_close,
	.create_options = vdi_create_options,
	.create = vdi_create,
	.write = vdi_write,
	.finish = vdi_finish,
	.measure = vdi_measure,
	.check = vdi_check,
};

VMI_PLUGIN_DEFINE (vmi_vdi_plugin)
