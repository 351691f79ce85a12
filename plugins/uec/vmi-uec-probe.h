/*
 * Detection of a UEC tarball from the head of the file: gzip magic, and the first bytes it
 * inflates to are a tar header. Inflates on the stack: a probe may not allocate.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

guint vmi_uec_probe (const guint8 *head, gsize head_len, guint64 file_size);

G_END_DECLS
