/*
 * What the ova front module (the daemon loads it at start, without libarchive and libxml2)
 * shares with the full plugin: the format's identity, its create options and probe.
 */
#pragma once

#include "vmi-ova-writer.h" /* vmi_ova_writer_options */

G_BEGIN_DECLS

#define VMI_OVA_IDENTITY                                                                           \
	.abi_version = VMI_PLUGIN_ABI_VERSION, .name = "ova",                                      \
	.description = "Open Virtualization Format archive (tar of an OVF, its manifest and disks)", \
	.extensions = (const char *const[]){ "ova", NULL },                                        \
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_WRITE,                                    \
	.create_options = vmi_ova_writer_options

guint vmi_ova_probe (const guint8 *head, gsize head_len, guint64 file_size);

G_END_DECLS
