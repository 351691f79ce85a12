/*
 * What the aki front module (the daemon loads it at start, without libarchive) shares with the
 * full plugin: the format's identity, the kernel header layouts and probe.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

/* Offsets of the x86 setup header (boot.rst, "The real-mode kernel header"). */
#define X86_SETUP_SECTS 0x1f1
#define X86_SYSSIZE 0x1f4
#define X86_BOOT_FLAG 0x1fe
#define X86_HEADER 0x202
#define X86_VERSION 0x206
#define X86_KERNEL_VERSION 0x20e
#define X86_TYPE_OF_LOADER 0x210
#define X86_LOADFLAGS 0x211
#define X86_KERNEL_ALIGNMENT 0x230
#define X86_RELOCATABLE 0x234
#define X86_XLOADFLAGS 0x236
#define X86_CMDLINE_SIZE 0x238
#define X86_PAYLOAD_OFFSET 0x248
#define X86_PAYLOAD_LENGTH 0x24c
#define X86_PREF_ADDRESS 0x258
#define X86_INIT_SIZE 0x260
#define X86_HANDOVER_OFFSET 0x264
/* The header of protocol 2.15 ends here; setup_sects >= 4 makes the setup area longer. */
#define X86_HEADER_END 0x270
#define X86_SECTOR 512u
/* The version string is a line of text; more than this is not one. */
#define X86_MAX_VERSION_LEN 256u

/* arm64 Image header: 64 bytes, little endian. */
#define ARM64_TEXT_OFFSET 0x08
#define ARM64_IMAGE_SIZE 0x10
#define ARM64_FLAGS 0x18
#define ARM64_MAGIC 0x38
#define ARM64_HEADER_SIZE 0x40

#define VMI_AKI_IDENTITY                                                                           \
	.abi_version = VMI_PLUGIN_ABI_VERSION, .name = "aki",                                      \
	.description = "Kernel image (x86 bzImage, arm64 Image, vmlinux; Amazon kernel image)",    \
	.extensions = (const char *const[]){ "aki", "bzimage", "vmlinuz", "lkrn", NULL },          \
	.aliases = (const char *const[]){ "kernel", "bzimage", NULL },                             \
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ

/* An arm64 Image header, or the RISC-V one of the same layout. */
gboolean vmi_aki_is_arm64 (const guint8 *p, gsize len);
gboolean vmi_aki_is_riscv (const guint8 *p, gsize len);
guint vmi_aki_probe (const guint8 *head, gsize head_len, guint64 file_size);

G_END_DECLS
