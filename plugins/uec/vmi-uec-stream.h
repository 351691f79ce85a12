/*
 * One pass over a gzipped tar, as libarchive reads it from a byte range of the daemon's fd
 * (pread only), with the bounds a hostile archive needs: a cap on the bytes of tar stream it
 * will inflate (so a gzip bomb ends in a named error), cancellation between blocks, and member
 * data handed out in order (holes of sparse members read as zeros). It never extracts anything:
 * entry names are the caller's to compare and show.
 */
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "vmi-plugin.h"

G_BEGIN_DECLS

typedef struct _VmiUecStream VmiUecStream;

/*
 * Opens the gzipped tar stored in fd at [offset, offset + size). limit caps the bytes of tar
 * stream (after gunzip) the reader may produce; reaching it is VMI_ERROR_UNSAFE_IMAGE. A file
 * that is not one gzip stream around a tar is VMI_ERROR_UNKNOWN_FORMAT.
 */
VmiUecStream *vmi_uec_stream_new (int fd, guint64 offset, guint64 size, guint64 limit,
				  GCancellable *cancellable, GError **error);
void vmi_uec_stream_free (VmiUecStream *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiUecStream, vmi_uec_stream_free)

/*
 * Moves to the next entry (the data of the current one is inflated and dropped, within the
 * limit). TRUE with *entry set (owned by the stream, valid until the next call), TRUE with
 * *entry NULL at the end of the archive, FALSE with VMI_ERROR_CORRUPT_IMAGE for a damaged or
 * truncated archive.
 */
gboolean vmi_uec_stream_next (VmiUecStream *self, struct archive_entry **entry, GError **error);

/* The number of entries returned so far (the current entry is number count - 1). */
guint vmi_uec_stream_get_count (VmiUecStream *self);

/* Up to len bytes of the current entry's data into buf: *got is 0 only at its end. */
gboolean vmi_uec_stream_read (VmiUecStream *self, void *buf, gsize len, gsize *got,
			      GError **error);

/* Drops n bytes of the current entry's data (fewer if it ends first; *skipped says how many). */
gboolean vmi_uec_stream_skip (VmiUecStream *self, guint64 n, guint64 *skipped, GError **error);

/* Bytes of the current entry's data handed out or skipped so far. */
guint64 vmi_uec_stream_get_position (VmiUecStream *self);

/* Bytes of tar stream inflated so far. */
guint64 vmi_uec_stream_get_inflated (VmiUecStream *self);

G_END_DECLS
