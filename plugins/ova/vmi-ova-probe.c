/* OVA detection from the head of the file (tar headers only), and the writer's options. */
#include <string.h>

#include "vmi-ova-probe.h"

#define OVA_BLOCK 512u

const VmiOptionSpec vmi_ova_writer_options[] = {
	{ "name", "s", "name of the virtual machine and of the files in the OVA (default vm; "
		       "at most 80 bytes, no '/', '\\', \"..\", control characters or leading '.')" },
	{ "cpus", "t", "virtual CPUs (default 1, at most 768)" },
	{ "memory-mib", "t", "memory in MiB (default 1024, 4 to 25165824)" },
	{ "os-type", "s", "VMware guest id for the OperatingSystemSection (default otherGuest, "
			  "OVF id 1); ids like ubuntu64Guest or windows7_64Guest also set the OVF id" },
	{ "firmware", "s", "bios (default) or efi" },
	{ NULL },
};

static gboolean
ova_ends_with_ovf (const char *name, gsize len)
{
	return len > 4 && g_ascii_strncasecmp (name + len - 4, ".ovf", 4) == 0;
}

static guint64
ova_octal (const guint8 *p, gsize len)
{
	guint64 value = 0;
	gsize i = 0;

	/* base-256 sizes (high bit set) are for members of 8 GiB and more: never a descriptor */
	if (p[0] & 0x80)
		return G_MAXUINT64;
	while (i < len && p[i] == ' ')
		i++;
	for (; i < len && p[i] >= '0' && p[i] <= '7'; i++) {
		if (value > (G_MAXUINT64 >> 3))
			return G_MAXUINT64;
		value = value << 3 | (guint64) (p[i] - '0');
	}
	return value;
}

/* The path record ("27 path=long-name.ovf\n") of a pax extended header names a *.ovf. */
static gboolean
ova_pax_path_is_ovf (const guint8 *data, gsize len)
{
	gsize pos = 0;

	while (pos < len) {
		gsize record = 0, i = pos;
		const char *kv;
		gsize kv_len;

		while (i < len && g_ascii_isdigit (data[i]) && record < len)
			record = record * 10 + (gsize) (data[i++] - '0');
		if (i >= len || data[i] != ' ' || record <= i - pos + 1 || record > len - pos)
			return FALSE;
		kv = (const char *) data + i + 1;
		kv_len = record - (i + 1 - pos);
		/* the record ends with '\n', not counted in the value */
		if (kv_len > 5 && memcmp (kv, "path=", 5) == 0)
			return ova_ends_with_ovf (kv + 5, kv_len - 6);
		pos += record;
	}
	return FALSE;
}

/*
 * A tar ("ustar" at 257) whose first member is named *.ovf is an OVA; one with a *.ovf member
 * later in the head may be an OVA packed in the wrong order. Other tars are not disks and not
 * OVAs (raw refuses them too), so they stay unknown. Long names count, from a GNU 'L' member or
 * a pax 'x' header's path record.
 */
guint
vmi_ova_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	gsize pos = 0;
	gboolean first = TRUE;

	for (guint i = 0; i < 16 && pos + OVA_BLOCK <= head_len; i++) {
		const guint8 *h = head + pos;
		guint8 type = h[156];
		guint64 size = ova_octal (h + 124, 12);
		gsize name_len = strnlen ((const char *) h, 100);
		guint64 blocks;

		if (memcmp (h + 257, "ustar", 5) != 0)
			break;
		if (type == 'L' || type == 'x') {
			gsize avail = head_len - pos - OVA_BLOCK;
			const guint8 *data = h + OVA_BLOCK;
			gsize data_len = (gsize) MIN (size, avail);
			gboolean ovf = type == 'L' ? ova_ends_with_ovf ((const char *) data,
									 strnlen ((const char *) data, data_len))
						   : ova_pax_path_is_ovf (data, data_len);

			if (ovf)
				return first ? VMI_PROBE_CERTAIN : VMI_PROBE_WEAK;
		} else if (type != 'g' && type != 'K') {
			if (ova_ends_with_ovf ((const char *) h, name_len))
				return first ? VMI_PROBE_CERTAIN : VMI_PROBE_WEAK;
			first = FALSE;
		}
		if (size == G_MAXUINT64)
			break;
		blocks = (size + OVA_BLOCK - 1) / OVA_BLOCK;
		if (blocks > (head_len - pos) / OVA_BLOCK)
			break;
		pos += (gsize) (1 + blocks) * OVA_BLOCK;
	}
	return VMI_PROBE_NO;
}
