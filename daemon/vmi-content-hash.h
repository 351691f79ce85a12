/*
 * The content digest of a virtual disk: a SHA-256 that depends only on the disk's size and bytes,
 * not on the format or on how the format stores zeros, and costs time in proportion to the
 * allocated data, not to the virtual size. The definition is in docs/cache.md.
 */
#pragma once

#include "vmi-convert.h"

G_BEGIN_DECLS

/* The digest is computed over blocks of this size; changing it changes every digest. */
#define VMI_CONTENT_HASH_BLOCK (64u * 1024u)

/*
 * Computes the content digest of source. On success *digest is 64 lower-case hex digits and
 * *data_bytes (if non-NULL) the total length of the blocks that are not all zero: an estimate of
 * what storing the disk costs. progress gets bytes of the virtual disk done.
 */
gboolean vmi_content_hash (VmiSource *source, VmiProgressFunc progress, gpointer user_data,
			   GCancellable *cancellable, char **digest, guint64 *data_bytes,
			   GError **error);

G_END_DECLS
