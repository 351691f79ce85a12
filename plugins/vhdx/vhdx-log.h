/*
 * Log replay in memory. A VHDX whose header names a log GUID may hold metadata (and data)
 * updates that were logged but not yet written to their place; they must be applied before
 * anything else is read. We never write to the source, so the replayed updates are kept as an
 * overlay that every read of the file goes through.
 */
#pragma once

#include <glib.h>

#include "vmi-plugin-util.h"

typedef struct _VhdxLog VhdxLog;

/*
 * Finds the active log sequence in the log region [log_offset, log_offset + log_length) of file
 * (entries must carry log_guid), checks every entry (header, descriptors, data sectors,
 * sequence numbers, CRC-32C) and keeps its updates. No valid sequence or a truncated file is
 * VMI_ERROR_CORRUPT_IMAGE. mem_cap bounds the memory the updates may take.
 */
VhdxLog *vhdx_log_load (const VmiFileRange *file, const guint8 *log_guid, guint64 log_offset,
			guint64 log_length, guint64 mem_cap, GError **error);
void vhdx_log_free (VhdxLog *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VhdxLog, vhdx_log_free)

/* The file size after replay: at least the head entry's LastFileOffset. */
guint64 vhdx_log_get_file_size (const VhdxLog *log);
/* Entries and descriptors replayed, for Inspect. */
guint vhdx_log_get_n_entries (const VhdxLog *log);
guint64 vhdx_log_get_head_sequence (const VhdxLog *log);

/* Overwrites buf, which holds file bytes [offset, offset + len), with the replayed updates. */
void vhdx_log_apply (const VhdxLog *log, guint64 offset, guint8 *buf, gsize len);

/* Whether a replayed update overlaps file bytes [offset, offset + len). */
gboolean vhdx_log_touches (const VhdxLog *log, guint64 offset, guint64 len);

/* Reads the file at offset, bytes past its end as zeros, with the log (if any) applied. */
gboolean vhdx_file_read (const VmiFileRange *file, const VhdxLog *log, guint64 offset, void *buf, gsize len,
			 GError **error);
