/*
 * Kernels (the "aki" of Amazon's kernel/ramdisk/machine image triple): an x86 bzImage with its
 * setup header (Linux's Documentation/x86/boot.rst), an arm64 Image (Documentation/arm64/
 * booting.rst) or RISC-V one, or a vmlinux ELF, possibly compressed as a whole (Image.gz, vmlinux.xz). To qemu
 * a kernel is a raw file, so it reads as a raw disk; the value is in what Inspect says.
 *
 * A compressed kernel is not claimed by probe: its magic is that of any .gz or .xz file, and a
 * probe cannot look inside. Such files are opened as kernels only when the caller names the
 * format "aki"; open then decompresses a bounded prefix and refuses anything but a kernel.
 */
#include <string.h>

#include "boot-common/vmi-boot-compress.h"
#include "vmi-aki-probe.h"
#include "vmi-plugin-util.h"

/* Enough of a decompressed kernel to see its ELF or Image header. */
#define AKI_PREFIX_SIZE 4096u
/* A compressed kernel may not decompress to more than this before its header shows. */
#define AKI_PREFIX_LIMIT (1024u * 1024u)

typedef enum {
	AKI_X86_BZIMAGE,
	AKI_ARM64_IMAGE,
	AKI_RISCV_IMAGE,
	AKI_ELF,
} AkiKind;

struct _VmiImage {
	VmiFileRange file; /* the image's bytes in the daemon's fd */
	guint64 file_size;
	AkiKind kind;
	VmiBootCompression compression; /* of the whole file (vmlinux.gz, Image.gz) */
	guint8 head[AKI_PREFIX_SIZE];	/* the file's first bytes, or the decompressed ones */
	gsize head_len;
	gboolean efi_stub;

	/* x86 */
	guint setup_sects;
	guint16 version;
	char *kernel_version;
	guint64 payload_offset; /* in the file; 0 when the protocol has none */
	guint32 payload_length;
	VmiBootCompression payload_compression;
	gboolean payload_is_elf;
};

static guint16
aki_le16 (const guint8 *p)
{
	return (guint16) (p[0] | p[1] << 8);
}

static guint32
aki_le32 (const guint8 *p)
{
	return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

static guint64
aki_le64 (const guint8 *p)
{
	return (guint64) aki_le32 (p) | (guint64) aki_le32 (p + 4) << 32;
}

static gboolean
aki_is_elf (const guint8 *p, gsize len)
{
	return len >= 20 && memcmp (p, "\x7f" "ELF", 4) == 0;
}

/* A PE/COFF header behind the DOS "MZ" stub: the kernel boots as an EFI application too. */
static gboolean
aki_detect_efi_stub (VmiImage *self, GError **error)
{
	guint32 pe_offset;
	guint8 pe[4];

	if (self->head_len < 0x40 || self->head[0] != 'M' || self->head[1] != 'Z')
		return TRUE;
	pe_offset = aki_le32 (self->head + 0x3c);
	if ((guint64) pe_offset + sizeof pe > self->head_len)
		return TRUE;
	memcpy (pe, self->head + pe_offset, sizeof pe);
	self->efi_stub = memcmp (pe, "PE\0\0", 4) == 0;
	return TRUE;
}

/* Printable ASCII up to the first NUL; anything else shows as '?'. */
static char *
aki_string (const guint8 *p, gsize len)
{
	gsize n = 0;
	char *s;

	while (n < len && p[n] != '\0')
		n++;
	s = g_strndup ((const char *) p, n);
	for (char *c = s; *c != '\0'; c++) {
		if (!g_ascii_isprint (*c))
			*c = '?';
	}
	return s;
}

static gboolean
aki_read_kernel_version (VmiImage *self, guint64 setup_end, GError **error)
{
	guint16 pointer = aki_le16 (self->head + X86_KERNEL_VERSION);
	guint64 at = (guint64) pointer + 0x200;
	guint8 buf[X86_MAX_VERSION_LEN];
	gsize len;

	/* Zero: the kernel does not say (iPXE, memtest86+, very old kernels). */
	if (pointer == 0)
		return TRUE;
	if (at >= self->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the bzImage's kernel_version field (at 0x20e) points at offset 0x%" G_GINT64_MODIFIER
			     "x, beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     at, self->file_size);
		return FALSE;
	}
	if (at >= setup_end) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the bzImage's kernel_version field (at 0x20e) points at offset 0x%" G_GINT64_MODIFIER
			     "x, outside the %u setup sectors that end at offset 0x%" G_GINT64_MODIFIER "x",
			     at, self->setup_sects, setup_end);
		return FALSE;
	}
	len = (gsize) MIN ((guint64) sizeof buf, setup_end - at);
	if (!vmi_range_pread_all (&self->file, buf, len, at, "kernel", error))
		return FALSE;
	self->kernel_version = aki_string (buf, len);
	return TRUE;
}

/* The protected-mode payload (protocol 2.08+): where it is and how it is compressed. */
static gboolean
aki_read_payload (VmiImage *self, guint64 setup_end, GError **error)
{
	guint32 offset = aki_le32 (self->head + X86_PAYLOAD_OFFSET);
	guint8 magic[16];
	guint64 start, end;

	self->payload_length = aki_le32 (self->head + X86_PAYLOAD_LENGTH);
	start = setup_end + offset;
	end = start + self->payload_length;
	if (end > self->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the bzImage's payload (%u bytes at offset 0x%" G_GINT64_MODIFIER
			     "x) ends beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     self->payload_length, start, self->file_size);
		return FALSE;
	}
	self->payload_offset = start;
	if (self->payload_length < sizeof magic)
		return TRUE;
	if (!vmi_range_pread_all (&self->file, magic, sizeof magic, start, "kernel", error))
		return FALSE;
	self->payload_compression = vmi_boot_compression_detect (magic, sizeof magic);
	self->payload_is_elf = aki_is_elf (magic, sizeof magic);
	return TRUE;
}

static gboolean
aki_open_x86 (VmiImage *self, GError **error)
{
	guint64 setup_end;

	if (self->head_len < X86_VERSION + 2) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the bzImage setup header is truncated: the file ends at byte %" G_GUINT64_FORMAT
			     ", before the boot protocol version at 0x206",
			     self->file_size);
		return FALSE;
	}
	/* Zero means 4: the boot loaders have read it that way since the first zImage. */
	self->setup_sects = self->head[X86_SETUP_SECTS] != 0 ? self->head[X86_SETUP_SECTS] : 4;
	setup_end = ((guint64) self->setup_sects + 1) * X86_SECTOR;
	if (setup_end > self->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the bzImage's setup_sects (at 0x1f1) says the setup code fills %u "
			     "sectors, ending at offset %" G_GUINT64_FORMAT
			     ", beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     self->setup_sects, setup_end, self->file_size);
		return FALSE;
	}
	/* setup_end >= 2560 > X86_HEADER_END: the whole header is in head from here on. */
	self->version = aki_le16 (self->head + X86_VERSION);
	if (self->version < 0x0200) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the bzImage declares boot protocol %u.%02u; the \"HdrS\" header "
			     "exists since 2.00",
			     self->version >> 8, self->version & 0xff);
		return FALSE;
	}
	if (!aki_read_kernel_version (self, setup_end, error))
		return FALSE;
	if (self->version >= 0x0208 && !aki_read_payload (self, setup_end, error))
		return FALSE;
	return aki_detect_efi_stub (self, error);
}

/* The first bytes of a compressed kernel, which must be an ELF or an arm64 Image. */
static gboolean
aki_open_compressed (VmiImage *self, const VmiOpenArgs *args, GError **error)
{
	g_autoptr(VmiBootDecoder) decoder = NULL;

	decoder = vmi_boot_decoder_new (&self->file, 0, self->file_size, self->compression,
					AKI_PREFIX_LIMIT, args->cancellable, error);
	if (decoder == NULL)
		return FALSE;
	memset (self->head, 0, sizeof self->head);
	if (!vmi_boot_decoder_read_full (decoder, self->head, sizeof self->head, &self->head_len,
					 error))
		return FALSE;
	if (aki_is_elf (self->head, self->head_len)) {
		self->kind = AKI_ELF;
		return TRUE;
	}
	if (vmi_aki_is_arm64 (self->head, self->head_len) || vmi_aki_is_riscv (self->head, self->head_len)) {
		self->kind = vmi_aki_is_arm64 (self->head, self->head_len) ? AKI_ARM64_IMAGE
								       : AKI_RISCV_IMAGE;
		return aki_detect_efi_stub (self, error);
	}
	g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
		     "this %s-compressed file does not hold a kernel: its decompressed content "
		     "starts with neither an ELF header nor an arm64 or RISC-V Image header",
		     vmi_boot_compression_name (self->compression));
	return FALSE;
}

static VmiImage *
aki_open (const VmiOpenArgs *args, GError **error)
{
	g_autofree VmiImage *self = g_new0 (VmiImage, 1);

	if (!vmi_file_range_init (&self->file, args, error))
		return NULL;
	self->file_size = args->file_size;
	self->head_len = (gsize) MIN (self->file_size, (guint64) sizeof self->head);
	if (!vmi_range_pread_all (&self->file, self->head, self->head_len, 0, "kernel", error))
		return NULL;
	if (self->head_len >= X86_HEADER + 4 && memcmp (self->head + X86_HEADER, "HdrS", 4) == 0) {
		self->kind = AKI_X86_BZIMAGE;
		if (!aki_open_x86 (self, error)) {
			g_free (self->kernel_version);
			return NULL;
		}
		return g_steal_pointer (&self);
	}
	if (vmi_aki_is_arm64 (self->head, self->head_len) || vmi_aki_is_riscv (self->head, self->head_len)) {
		self->kind = vmi_aki_is_arm64 (self->head, self->head_len) ? AKI_ARM64_IMAGE
								       : AKI_RISCV_IMAGE;
		if (!aki_detect_efi_stub (self, error))
			return NULL;
		return g_steal_pointer (&self);
	}
	if (aki_is_elf (self->head, self->head_len)) {
		self->kind = AKI_ELF;
		return g_steal_pointer (&self);
	}
	self->compression = vmi_boot_compression_detect (self->head, self->head_len);
	if (self->compression != VMI_BOOT_COMPRESSION_NONE) {
		if (!aki_open_compressed (self, args, error))
			return NULL;
		return g_steal_pointer (&self);
	}
	if (self->head_len > X86_HEADER && self->head_len < X86_HEADER + 4 &&
	    memcmp (self->head + X86_HEADER, "HdrS", self->head_len - X86_HEADER) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the bzImage setup header is truncated: the file ends at byte %" G_GUINT64_FORMAT
			     ", inside the \"HdrS\" signature at 0x202",
			     self->file_size);
		return NULL;
	}
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "not a kernel: no x86 setup header (\"HdrS\" at 0x202), no arm64 or "
			     "RISC-V Image header (\"ARM\\x64\" or \"RSC\\x05\" at 0x38), no ELF "
			     "header and no known compression");
	return NULL;
}

static const char *
aki_elf_machine (guint16 machine)
{
	switch (machine) {
	case 3:
		return "i386";
	case 8:
		return "mips";
	case 20:
		return "ppc";
	case 21:
		return "ppc64";
	case 22:
		return "s390";
	case 40:
		return "arm";
	case 62:
		return "x86_64";
	case 183:
		return "aarch64";
	case 243:
		return "riscv";
	case 258:
		return "loongarch";
	default:
		return "unknown";
	}
}

static void
aki_info_x86 (VmiImage *self, VmiImageInfo *info)
{
	GVariantDict *facts = info->format_specific;
	const guint8 *h = self->head;
	guint8 loadflags = h[X86_LOADFLAGS];
	g_autofree char *protocol = g_strdup_printf ("%u.%02u", self->version >> 8,
						     self->version & 0xff);

	/* Without LOADED_HIGH the kernel loads at 0x10000: the old zImage layout. */
	info->subformat = (loadflags & 0x01) ? "bzImage" : "zImage";
	g_variant_dict_insert (facts, "kernel-type", "s",
			       (loadflags & 0x01) ? "x86-bzimage" : "x86-zimage");
	g_variant_dict_insert (facts, "architecture", "s", "x86");
	g_variant_dict_insert (facts, "boot-protocol", "s", protocol);
	g_variant_dict_insert (facts, "setup-sectors", "u", self->setup_sects);
	g_variant_dict_insert (facts, "protected-mode-size", "t",
			       (guint64) aki_le32 (h + X86_SYSSIZE) * 16);
	if (self->kernel_version != NULL && self->kernel_version[0] != '\0') {
		g_auto(GStrv) words = g_strsplit (self->kernel_version, " ", 2);

		g_variant_dict_insert (facts, "kernel-version", "s", self->kernel_version);
		/* Linux's string starts with its release ("6.1.0-13-amd64 (...) #1 SMP ..."). */
		if (g_ascii_isdigit (words[0][0]))
			g_variant_dict_insert (facts, "kernel-release", "s", words[0]);
	}
	g_variant_dict_insert (facts, "loadflags", "u", (guint32) loadflags);
	g_variant_dict_insert (facts, "loaded-high", "b", (loadflags & 0x01) != 0);
	g_variant_dict_insert (facts, "can-use-heap", "b", (loadflags & 0x80) != 0);
	if (self->version >= 0x0205) {
		g_variant_dict_insert (facts, "relocatable", "b", h[X86_RELOCATABLE] != 0);
		g_variant_dict_insert (facts, "kernel-alignment", "u",
				       aki_le32 (h + X86_KERNEL_ALIGNMENT));
	}
	if (self->version >= 0x0206)
		g_variant_dict_insert (facts, "cmdline-size", "u", aki_le32 (h + X86_CMDLINE_SIZE));
	/* memtest86+ and iPXE speak 2.08+ without a payload: length 0. */
	if (self->version >= 0x0208 && self->payload_length >= 16) {
		g_variant_dict_insert (facts, "payload-offset", "t", self->payload_offset);
		g_variant_dict_insert (facts, "payload-length", "u", self->payload_length);
		g_variant_dict_insert (facts, "payload-compression", "s",
				       self->payload_compression != VMI_BOOT_COMPRESSION_NONE
					       ? vmi_boot_compression_name (self->payload_compression)
				       : self->payload_is_elf ? "none"
							      : "unknown");
	}
	if (self->version >= 0x020a) {
		g_variant_dict_insert (facts, "preferred-address", "t", aki_le64 (h + X86_PREF_ADDRESS));
		g_variant_dict_insert (facts, "init-size", "u", aki_le32 (h + X86_INIT_SIZE));
	}
	if (self->version >= 0x020b)
		g_variant_dict_insert (facts, "handover-offset", "u",
				       aki_le32 (h + X86_HANDOVER_OFFSET));
	if (self->version >= 0x020c) {
		static const char *const names[] = { "kernel-64", "can-be-loaded-above-4g",
						     "efi-handover-32", "efi-handover-64",
						     "efi-kexec", "5-level-paging" };
		guint16 xloadflags = aki_le16 (h + X86_XLOADFLAGS);
		GVariantBuilder flags;

		g_variant_builder_init (&flags, G_VARIANT_TYPE_STRING_ARRAY);
		for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
			if (xloadflags & (1u << i))
				g_variant_builder_add (&flags, "s", names[i]);
		}
		g_variant_dict_insert (facts, "xloadflags", "as", &flags);
	}
}

static void
aki_info_arm64 (VmiImage *self, VmiImageInfo *info)
{
	GVariantDict *facts = info->format_specific;
	guint64 flags = aki_le64 (self->head + ARM64_FLAGS);
	static const guint32 page_sizes[] = { 0, 4096, 16384, 65536 };

	info->subformat = "Image";
	g_variant_dict_insert (facts, "kernel-type", "s", "arm64-image");
	g_variant_dict_insert (facts, "architecture", "s", "arm64");
	g_variant_dict_insert (facts, "text-offset", "t", aki_le64 (self->head + ARM64_TEXT_OFFSET));
	/* Zero in kernels before 3.17, whose header had no size. */
	g_variant_dict_insert (facts, "image-size", "t", aki_le64 (self->head + ARM64_IMAGE_SIZE));
	g_variant_dict_insert (facts, "endianness", "s", (flags & 1) ? "big" : "little");
	if (page_sizes[(flags >> 1) & 3] != 0)
		g_variant_dict_insert (facts, "page-size", "u", page_sizes[(flags >> 1) & 3]);
	g_variant_dict_insert (facts, "physical-placement", "s",
			       (flags & 8) ? "anywhere" : "near-dram-base");
}

static void
aki_info_riscv (VmiImage *self, VmiImageInfo *info)
{
	GVariantDict *facts = info->format_specific;
	guint32 version = aki_le32 (self->head + 0x20);
	g_autofree char *header = g_strdup_printf ("%u.%u", version >> 16, version & 0xffff);

	info->subformat = "Image";
	g_variant_dict_insert (facts, "kernel-type", "s", "riscv-image");
	g_variant_dict_insert (facts, "architecture", "s", "riscv64");
	g_variant_dict_insert (facts, "text-offset", "t", aki_le64 (self->head + ARM64_TEXT_OFFSET));
	g_variant_dict_insert (facts, "image-size", "t", aki_le64 (self->head + ARM64_IMAGE_SIZE));
	g_variant_dict_insert (facts, "endianness", "s",
			       (aki_le64 (self->head + ARM64_FLAGS) & 1) ? "big" : "little");
	g_variant_dict_insert (facts, "header-version", "s", header);
}

static void
aki_info_elf (VmiImage *self, VmiImageInfo *info)
{
	GVariantDict *facts = info->format_specific;
	gboolean big = self->head[5] == 2;
	guint16 machine = big ? (guint16) (self->head[18] << 8 | self->head[19])
			      : aki_le16 (self->head + 18);

	info->subformat = "vmlinux";
	g_variant_dict_insert (facts, "kernel-type", "s", "elf");
	g_variant_dict_insert (facts, "elf-class", "u", self->head[4] == 2 ? 64u : 32u);
	g_variant_dict_insert (facts, "architecture", "s", aki_elf_machine (machine));
	g_variant_dict_insert (facts, "endianness", "s", big ? "big" : "little");
}

static gboolean
aki_get_info (VmiImage *self, VmiImageInfo *info, GError **error)
{
	info->virtual_size = self->file_size;
	/* Glance names the container of a kernel, ramdisk or machine image like the image */
	info->container_format = "aki";
	g_variant_dict_insert (info->format_specific, "compression", "s",
			       vmi_boot_compression_name (self->compression));
	switch (self->kind) {
	case AKI_X86_BZIMAGE:
		aki_info_x86 (self, info);
		break;
	case AKI_ARM64_IMAGE:
		aki_info_arm64 (self, info);
		break;
	case AKI_RISCV_IMAGE:
		aki_info_riscv (self, info);
		break;
	case AKI_ELF:
	default:
		aki_info_elf (self, info);
		break;
	}
	if (self->kind != AKI_ELF)
		g_variant_dict_insert (info->format_specific, "efi-stub", "b", self->efi_stub);
	return TRUE;
}

static gboolean
aki_read (VmiImage *self, guint64 offset, void *buf, gsize len, GError **error)
{
	return vmi_range_pread_all (&self->file, buf, len, offset, "kernel", error);
}

static gboolean
aki_block_status (VmiImage *self, guint64 offset, guint64 max_length, VmiExtent *extent,
		  GError **error)
{
	return vmi_range_block_status (&self->file, offset, max_length, extent, error);
}

static void
aki_close (VmiImage *self)
{
	g_free (self->kernel_version);
	g_free (self);
}

const VmiFormatPlugin vmi_aki_plugin = {
	VMI_AKI_IDENTITY,
	.probe = vmi_aki_probe,
	.open = aki_open,
	.get_info = aki_get_info,
	.read = aki_read,
	.block_status = aki_block_status,
	.close = aki_close,
};

VMI_PLUGIN_DEFINE (vmi_aki_plugin)
