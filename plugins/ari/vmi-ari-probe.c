/* Ramdisk detection from the head of the file: a newc header or a compression magic. */
#include <string.h>

#include "boot-common/vmi-boot-compress.h"
#include "vmi-ari-probe.h"

gboolean
vmi_ari_is_newc (const guint8 *p)
{
	return memcmp (p, "07070", 5) == 0 && (p[5] == '1' || p[5] == '2');
}

guint
vmi_ari_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	VmiBootCompression compression;

	if (head_len >= ARI_HEADER_SIZE && vmi_ari_is_newc (head))
		return VMI_PROBE_LIKELY;
	/*
	 * Only asked when classifying; open confirms the cpio inside, and refuses a compression
	 * this build's libarchive cannot decode (asking libarchive here would map it into every
	 * daemon). LZO is left out: no build can look inside it.
	 */
	compression = vmi_boot_compression_detect (head, head_len);
	if (compression != VMI_BOOT_COMPRESSION_NONE && compression != VMI_BOOT_COMPRESSION_LZO)
		return VMI_PROBE_WEAK;
	return VMI_PROBE_NO;
}
