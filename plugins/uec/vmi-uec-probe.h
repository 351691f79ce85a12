/*
 * Detection of a UEC tarball from the head of the file: gzip magic, and the first bytes it
 * inflates to are a tar header. Inflates on the stack: a probe may not allocate.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

/* Shared with the front module (vmi-plugin-lazy.h), which the daemon loads without libarchive. */
#define VMI_UEC_IDENTITY                                                                           \
	.abi_version = VMI_PLUGIN_ABI_VERSION, .name = "uec",                                      \
	.description = "UEC tarball (gzipped tar of a machine image, a kernel and a ramdisk)",     \
	.extensions = (const char *const[]){ "tar.gz", "tgz", NULL },                              \
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ

guint vmi_uec_probe (const guint8 *head, gsize head_len, guint64 file_size);

G_END_DECLS
