/*
 * An OVF descriptor on its own: the XML that describes virtual systems and names their disk
 * files. It is not a disk, so the plugin only inspects; the files it names are reported as
 * references and never opened.
 */
#include <string.h>

#include "vmi-ovf-parse.h"

struct _VmiImage {
	VmiOvf *ovf;
};

static gboolean
ovf_head_has (const guint8 *head, gsize head_len, const char *needle)
{
	return memmem (head, head_len, needle, strlen (needle)) != NULL;
}

/* XML (after an optional UTF-8 byte order mark and blanks) with an envelope in an OVF namespace. */
static guint
ovf_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	gsize pos = 0;

	if (head == NULL)
		return VMI_PROBE_NO;
	if (head_len >= 3 && memcmp (head, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < head_len && g_ascii_isspace (head[pos]))
		pos++;
	if (pos >= head_len || head[pos] != '<')
		return VMI_PROBE_NO;
	if (!ovf_head_has (head, head_len, "Envelope"))
		return VMI_PROBE_NO;
	if (ovf_head_has (head, head_len, "http://schemas.dmtf.org/ovf/envelope/") ||
	    ovf_head_has (head, head_len, "http://www.vmware.com/schema/ovf/1/envelope"))
		return VMI_PROBE_LIKELY;
	return VMI_PROBE_NO;
}

static VmiImage *
ovf_open (const VmiOpenArgs *args, GError **error)
{
	g_autofree VmiImage *self = g_new0 (VmiImage, 1);
	g_autofree char *data = NULL;

	data = vmi_ovf_read (args->fd, 0, args->file_size, "OVF descriptor", error);
	if (data == NULL)
		return NULL;
	self->ovf = vmi_ovf_parse (data, (gsize) args->file_size, error);
	if (self->ovf == NULL)
		return NULL;
	return g_steal_pointer (&self);
}

static gboolean
ovf_get_info (VmiImage *self, VmiImageInfo *info, GError **error)
{
	const VmiOvf *ovf = self->ovf;

	info->virtual_size = ovf->virtual_size;
	vmi_ovf_describe (ovf, info->format_specific, NULL, NULL);
	for (guint i = 0; i < ovf->unsafe_reasons->len; i++)
		g_ptr_array_add (info->unsafe_reasons,
				 g_strdup (g_ptr_array_index (ovf->unsafe_reasons, i)));
	for (guint i = 0; i < ovf->files->len; i++) {
		const VmiOvfFile *file = g_ptr_array_index (ovf->files, i);

		g_ptr_array_add (info->references, g_strdup (file->href));
	}
	return TRUE;
}

static void
ovf_close (VmiImage *self)
{
	g_clear_pointer (&self->ovf, vmi_ovf_free);
	g_free (self);
}

const VmiFormatPlugin vmi_ovf_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "ovf",
	.description = "Open Virtualization Format descriptor (OVF 0.9, 1.x, 2.x)",
	.extensions = (const char *const[]){ "ovf", NULL },
	.flags = VMI_FORMAT_CAN_INSPECT,
	.init = vmi_ovf_init,
	.probe = ovf_probe,
	.open = ovf_open,
	.get_info = ovf_get_info,
	.close = ovf_close,
};

VMI_PLUGIN_DEFINE (vmi_ovf_plugin)
