/*
 * What the ovf front module (the daemon loads it at start, without libxml2) shares with the
 * full plugin: the format's identity and probe.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

#define VMI_OVF_IDENTITY                                                                           \
	.abi_version = VMI_PLUGIN_ABI_VERSION, .name = "ovf",                                      \
	.description = "Open Virtualization Format descriptor (OVF 0.9, 1.x, 2.x)",                \
	.extensions = (const char *const[]){ "ovf", NULL }, .flags = VMI_FORMAT_CAN_INSPECT

guint vmi_ovf_probe (const guint8 *head, gsize head_len, guint64 file_size);

G_END_DECLS
