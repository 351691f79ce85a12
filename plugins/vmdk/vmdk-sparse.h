/* Reading one hosted sparse extent (KDMV): monolithicSparse, streamOptimized, split sparse files. */
#pragma once

#include "vmdk-format.h"

G_BEGIN_DECLS

typedef struct _VmdkSparse VmdkSparse;

/*
 * Validates the header (the footer's copy when the grain directory is at the end) and loads the
 * grain directory. name is the extent file name for messages, NULL for the image itself. *budget is
 * the metadata memory still allowed for this image; the directory and cached grain tables are
 * charged to it.
 */
VmdkSparse *vmdk_sparse_open (const VmiFileRange *file, const char *name, guint64 *budget,
			      GError **error);
void vmdk_sparse_free (VmdkSparse *sp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmdkSparse, vmdk_sparse_free)

/* The extent file was closed (fd -1) or opened again: the descriptor to read it through. */
void vmdk_sparse_set_fd (VmdkSparse *sp, int fd);

guint64 vmdk_sparse_get_capacity (VmdkSparse *sp); /* bytes */
guint32 vmdk_sparse_get_grain_size (VmdkSparse *sp); /* bytes */
gboolean vmdk_sparse_is_compressed (VmdkSparse *sp);
guint32 vmdk_sparse_get_version (VmdkSparse *sp);
/* Embedded descriptor location in bytes; size 0 if there is none. */
void vmdk_sparse_get_descriptor (VmdkSparse *sp, guint64 *offset, guint64 *size);

/* offset is relative to the extent; offset + len may pass the capacity (reads zeros there). */
gboolean vmdk_sparse_read (VmdkSparse *sp, guint64 offset, guint8 *buf, gsize len, GError **error);
gboolean vmdk_sparse_block_status (VmdkSparse *sp, guint64 offset, guint64 max_length,
				   VmiExtent *extent, GError **error);

G_END_DECLS
