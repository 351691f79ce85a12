/* Compression magic and names: no libarchive, so front modules can link it (vmi-plugin-lazy.h). */
#include <string.h>

#include "vmi-boot-compress.h"

VmiBootCompression
vmi_boot_compression_detect (const guint8 *p, gsize len)
{
	static const struct {
		const char *magic;
		gsize len;
		VmiBootCompression compression;
	} magics[] = {
		{ "\x1f\x8b", 2, VMI_BOOT_COMPRESSION_GZIP },
		{ "\x1f\x9e", 2, VMI_BOOT_COMPRESSION_GZIP }, /* old gzip, still accepted by Linux */
		{ "\xfd" "7zXZ\x00", 6, VMI_BOOT_COMPRESSION_XZ },
		{ "\x28\xb5\x2f\xfd", 4, VMI_BOOT_COMPRESSION_ZSTD },
		{ "\x02\x21\x4c\x18", 4, VMI_BOOT_COMPRESSION_LZ4_LEGACY },
		{ "\x04\x22\x4d\x18", 4, VMI_BOOT_COMPRESSION_LZ4_FRAME },
		{ "\x89LZO\x00\r\n\x1a\n", 9, VMI_BOOT_COMPRESSION_LZO },
		/* The .lzma header starts with the properties byte; Linux checks these three. */
		{ "\x5d\x00\x00", 3, VMI_BOOT_COMPRESSION_LZMA },
	};

	for (gsize i = 0; i < G_N_ELEMENTS (magics); i++) {
		if (len >= magics[i].len && memcmp (p, magics[i].magic, magics[i].len) == 0)
			return magics[i].compression;
	}
	if (len >= 4 && memcmp (p, "BZh", 3) == 0 && p[3] >= '1' && p[3] <= '9')
		return VMI_BOOT_COMPRESSION_BZIP2;
	return VMI_BOOT_COMPRESSION_NONE;
}

const char *
vmi_boot_compression_name (VmiBootCompression compression)
{
	switch (compression) {
	case VMI_BOOT_COMPRESSION_GZIP:
		return "gzip";
	case VMI_BOOT_COMPRESSION_XZ:
		return "xz";
	case VMI_BOOT_COMPRESSION_LZMA:
		return "lzma";
	case VMI_BOOT_COMPRESSION_ZSTD:
		return "zstd";
	case VMI_BOOT_COMPRESSION_LZ4_LEGACY:
		return "lz4-legacy";
	case VMI_BOOT_COMPRESSION_LZ4_FRAME:
		return "lz4";
	case VMI_BOOT_COMPRESSION_BZIP2:
		return "bzip2";
	case VMI_BOOT_COMPRESSION_LZO:
		return "lzo";
	case VMI_BOOT_COMPRESSION_NONE:
	default:
		return "none";
	}
}
