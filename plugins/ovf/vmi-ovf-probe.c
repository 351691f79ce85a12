/* OVF descriptor detection from the head of the file: text only, no XML parser. */
#include <string.h>

#include "vmi-ovf-probe.h"

static gboolean
ovf_head_has (const guint8 *head, gsize head_len, const char *needle)
{
	return memmem (head, head_len, needle, strlen (needle)) != NULL;
}

/* XML (after an optional UTF-8 byte order mark and blanks) with an envelope in an OVF namespace. */
guint
vmi_ovf_probe (const guint8 *head, gsize head_len, guint64 file_size)
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
