/*
 * What the ari front module (the daemon loads it at start, without libarchive) shares with the
 * full plugin: the format's identity, the newc magic and probe.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

/* A newc cpio header: "070701" (or "070702" with checksums) and 13 fields of 8 hex digits. */
#define ARI_HEADER_SIZE 110u

#define VMI_ARI_IDENTITY                                                                           \
	.abi_version = VMI_PLUGIN_ABI_VERSION, .name = "ari",                                      \
	.description = "Ramdisk (initramfs: newc cpio, plain or compressed; Amazon ramdisk image)", \
	.extensions = (const char *const[]){ "ari", "initrd", "cpio", NULL },                      \
	.aliases = (const char *const[]){ "ramdisk", "initramfs", "initrd", NULL },                \
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ | VMI_FORMAT_CLASSIFY_ONLY

/* p holds at least 6 bytes. */
gboolean vmi_ari_is_newc (const guint8 *p);
guint vmi_ari_probe (const guint8 *head, gsize head_len, guint64 file_size);

G_END_DECLS
