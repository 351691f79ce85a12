/* Kernel detection from the head of the file: only the magic of each header layout. */
#include <string.h>

#include "vmi-aki-probe.h"

static gboolean
aki_is_bzimage (const guint8 *p, gsize len)
{
	return len >= X86_HEADER + 4 && memcmp (p + X86_HEADER, "HdrS", 4) == 0 &&
	       p[X86_BOOT_FLAG] == 0x55 && p[X86_BOOT_FLAG + 1] == 0xaa;
}

gboolean
vmi_aki_is_arm64 (const guint8 *p, gsize len)
{
	return len >= ARM64_HEADER_SIZE && memcmp (p + ARM64_MAGIC, "ARM\x64", 4) == 0;
}

/* RISC-V reuses the arm64 layout (Documentation/riscv/boot-image-header.rst): magic2 at 0x38. */
gboolean
vmi_aki_is_riscv (const guint8 *p, gsize len)
{
	return len >= ARM64_HEADER_SIZE && memcmp (p + ARM64_MAGIC, "RSC\x05", 4) == 0;
}

guint
vmi_aki_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	/* Above raw's fallback (a kernel is a raw file to qemu) but below any disk format that
	 * is sure of itself. */
	if (aki_is_bzimage (head, head_len) || vmi_aki_is_arm64 (head, head_len) ||
	    vmi_aki_is_riscv (head, head_len))
		return VMI_PROBE_LIKELY;
	return VMI_PROBE_NO;
}
