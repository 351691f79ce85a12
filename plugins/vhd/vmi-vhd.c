/* The VHD ("vpc") format plugin: Virtual PC, Hyper-V and Disk2VHD disks. */
#include <string.h>

#include "vhd-private.h"
#include "vhd-measure.h"
#include "vhd-check.h"

void
vhd_image_free (VmiImage *image)
{
	if (image == NULL)
		return;
	g_free (image->bat);
	g_free (image->bitmap);
	g_free (image->parent_name);
	g_free (image->parent_uuid);
	g_clear_pointer (&image->parent_locators, g_ptr_array_unref);
	g_clear_pointer (&image->parent_paths, g_ptr_array_unref);
	g_free (image);
}

/* Dynamic and differencing disks start with a copy of the footer. */
static guint
vhd_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	if (head_len >= 8 && memcmp (head, "conectix", 8) == 0)
		return VMI_PROBE_CERTAIN;
	return VMI_PROBE_NO;
}

/*
 * A fixed disk has its footer only in the last 512 bytes (qemu, which probes heads only, calls
 * such a file raw). The cookie alone could be disk content, so the checksum must agree too.
 */
static guint
vhd_probe_tail (const guint8 *tail, gsize tail_len, guint64 file_size)
{
	const guint8 *footer;

	if (tail_len < VHD_FOOTER_SIZE)
		return VMI_PROBE_NO;
	footer = tail + tail_len - VHD_FOOTER_SIZE;
	if (!vhd_footer_has_cookie (footer))
		return VMI_PROBE_NO;
	return vhd_footer_checksum_ok (footer) ? VMI_PROBE_CERTAIN : VMI_PROBE_LIKELY;
}

static void
vhd_close (VmiImage *image)
{
	vhd_image_free (image);
}

static const char *const vhd_extensions[] = { "vhd", NULL };
static const char *const vhd_aliases[] = { "vpc", NULL };

const VmiFormatPlugin vmi_vhd_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "vhd",
	.description = "Microsoft Virtual PC / Hyper-V virtual hard disk (VHD)",
	.extensions = vhd_extensions,
	.aliases = vhd_aliases,
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ | VMI_FORMAT_CAN_WRITE,
	.probe = vhd_probe,
	.probe_tail = vhd_probe_tail,
	.open = vhd_open,
	.get_info = vhd_get_info,
	.read = vhd_read,
	.block_status = vhd_block_status,
	.close = vhd_close,
	.create_options = vhd_create_options,
	.create = vhd_create,
	.write = vhd_write,
	.finish = vhd_finish,
	.measure = vhd_measure,
	.check = vhd_check,
};

VMI_PLUGIN_DEFINE (vmi_vhd_plugin)
