#include <errno.h>
#include <unistd.h>

#include "vmi-plugin.h"
#include "vhdx-crc32c.h"
#include "vhdx-format.h"
#include "vhdx-log.h"

/*
 * Every candidate entry costs a CRC over up to its length; a hostile log could make each of
 * its sectors claim to start a huge entry. A real log is checked a few times over at most, so
 * this bounds the bytes checked in one search without refusing any.
 */
#define VHDX_LOG_CHECK_BUDGET(log_length) (8 * (log_length) + 64 * VHDX_MiB)

typedef struct {
	guint64 offset;
	guint64 length;
	guint8 *data; /* NULL: zeros */
} VhdxLogUpdate;

struct _VhdxLog {
	GArray *updates; /* of VhdxLogUpdate, in replay order */
	guint64 lo, hi;	 /* file range the updates touch */
	guint64 file_size;
	guint n_entries;
	guint64 head_sequence;
};

typedef struct {
	guint64 pos; /* in the log */
	guint32 length;
	guint32 tail;
	guint64 sequence;
	guint64 flushed_file_offset;
	guint64 last_file_offset;
} VhdxLogEntry;

typedef struct {
	const guint8 *ring; /* the whole log region */
	guint64 length;
	const guint8 *log_guid;
	guint64 budget;
	guint8 *scratch; /* one entry, unwrapped */
} VhdxLogScan;

static void
log_update_clear (gpointer p)
{
	VhdxLogUpdate *u = p;

	g_free (u->data);
}

void
vhdx_log_free (VhdxLog *log)
{
	if (log == NULL)
		return;
	g_array_unref (log->updates);
	g_free (log);
}

guint64
vhdx_log_get_file_size (const VhdxLog *log)
{
	return log->file_size;
}

guint
vhdx_log_get_n_entries (const VhdxLog *log)
{
	return log->n_entries;
}

guint64
vhdx_log_get_head_sequence (const VhdxLog *log)
{
	return log->head_sequence;
}

/* Copies len bytes of the circular log starting at pos. */
static void
ring_copy (const VhdxLogScan *scan, guint64 pos, guint8 *dst, guint64 len)
{
	guint64 first = MIN (len, scan->length - pos);

	memcpy (dst, scan->ring + pos, first);
	if (len > first)
		memcpy (dst + first, scan->ring, len - first);
}

/*
 * Checks the entry at pos; expect_sequence is 0 for any. Leaves the unwrapped entry in
 * scan->scratch. Invalid entries are not errors, just not part of a sequence.
 */
static gboolean
log_entry_check (VhdxLogScan *scan, guint64 pos, guint64 expect_sequence, VhdxLogEntry *entry)
{
	guint8 hdr[VHDX_LOG_HEADER_SIZE];
	guint32 count, desc_sectors, data_sectors = 0;
	guint64 n_sectors;
	const guint8 *e;

	ring_copy (scan, pos, hdr, sizeof hdr);
	if (vhdx_le32 (hdr) != VHDX_LOG_ENTRY_SIGNATURE)
		return FALSE;
	entry->pos = pos;
	entry->length = vhdx_le32 (hdr + 8);
	entry->tail = vhdx_le32 (hdr + 12);
	entry->sequence = vhdx_le64 (hdr + 16);
	count = vhdx_le32 (hdr + 24);
	entry->flushed_file_offset = vhdx_le64 (hdr + 48);
	entry->last_file_offset = vhdx_le64 (hdr + 56);
	if (entry->length == 0 || entry->length % VHDX_LOG_SECTOR_SIZE != 0 ||
	    entry->length > scan->length)
		return FALSE;
	if (entry->tail % VHDX_LOG_SECTOR_SIZE != 0 || entry->tail >= scan->length)
		return FALSE;
	if (entry->sequence == 0 || (expect_sequence != 0 && entry->sequence != expect_sequence))
		return FALSE;
	if (memcmp (hdr + 32, scan->log_guid, 16) != 0)
		return FALSE;
	if (entry->flushed_file_offset % VHDX_MiB != 0 || entry->last_file_offset % VHDX_MiB != 0)
		return FALSE;
	n_sectors = entry->length / VHDX_LOG_SECTOR_SIZE;
	/* 64 header bytes and 32 per descriptor, rounded up to whole sectors. */
	if (count > (n_sectors * VHDX_LOG_SECTOR_SIZE - VHDX_LOG_HEADER_SIZE) / VHDX_LOG_DESCRIPTOR_SIZE)
		return FALSE;
	desc_sectors = (VHDX_LOG_HEADER_SIZE + (guint64) count * VHDX_LOG_DESCRIPTOR_SIZE +
			VHDX_LOG_SECTOR_SIZE - 1) / VHDX_LOG_SECTOR_SIZE;
	if (scan->budget < entry->length)
		return FALSE;
	scan->budget -= entry->length;

	ring_copy (scan, pos, scan->scratch, entry->length);
	e = scan->scratch;
	if (!vhdx_crc32c_matches (vhdx_crc32c_skip_field (e, entry->length, 4), vhdx_le32 (e + 4)))
		return FALSE;
	for (guint32 i = 0; i < count; i++) {
		const guint8 *d = e + VHDX_LOG_HEADER_SIZE + (gsize) i * VHDX_LOG_DESCRIPTOR_SIZE;
		guint32 sig = vhdx_le32 (d);
		guint64 file_offset = vhdx_le64 (d + 16);

		if (vhdx_le64 (d + 24) != entry->sequence || file_offset % VHDX_LOG_SECTOR_SIZE != 0)
			return FALSE;
		if (sig == VHDX_LOG_ZERO_SIGNATURE) {
			guint64 zero_length = vhdx_le64 (d + 8);

			if (zero_length % VHDX_LOG_SECTOR_SIZE != 0 || zero_length == 0)
				return FALSE;
			if (!g_uint64_checked_add (&file_offset, file_offset, zero_length))
				return FALSE;
		} else if (sig == VHDX_LOG_DESC_SIGNATURE) {
			guint64 sector = (guint64) desc_sectors + data_sectors;
			const guint8 *s;

			if (sector >= n_sectors ||
			    !g_uint64_checked_add (&file_offset, file_offset, VHDX_LOG_SECTOR_SIZE))
				return FALSE;
			s = e + sector * VHDX_LOG_SECTOR_SIZE;
			if (vhdx_le32 (s) != VHDX_LOG_DATA_SIGNATURE ||
			    vhdx_le32 (s + 4) != (guint32) (entry->sequence >> 32) ||
			    vhdx_le32 (s + 4092) != (guint32) entry->sequence)
				return FALSE;
			data_sectors++;
		} else {
			return FALSE;
		}
	}
	return TRUE;
}

/* Turns the checked entry in scan->scratch into updates. */
static gboolean
log_entry_collect (VhdxLog *log, const guint8 *e, guint64 *mem, guint64 mem_cap, GError **error)
{
	guint32 count = vhdx_le32 (e + 24);
	guint32 desc_sectors = (VHDX_LOG_HEADER_SIZE + (guint64) count * VHDX_LOG_DESCRIPTOR_SIZE +
				VHDX_LOG_SECTOR_SIZE - 1) / VHDX_LOG_SECTOR_SIZE;
	guint32 data_sectors = 0;

	for (guint32 i = 0; i < count; i++) {
		const guint8 *d = e + VHDX_LOG_HEADER_SIZE + (gsize) i * VHDX_LOG_DESCRIPTOR_SIZE;
		VhdxLogUpdate u = { .offset = vhdx_le64 (d + 16) };

		if (vhdx_le32 (d) == VHDX_LOG_ZERO_SIGNATURE) {
			u.length = vhdx_le64 (d + 8);
		} else {
			const guint8 *s = e + ((gsize) desc_sectors + data_sectors) * VHDX_LOG_SECTOR_SIZE;

			u.length = VHDX_LOG_SECTOR_SIZE;
			u.data = g_malloc (VHDX_LOG_SECTOR_SIZE);
			/* The sector's first 8 and last 4 bytes travel in the descriptor. */
			memcpy (u.data, d + 8, 8);
			memcpy (u.data + 8, s + 8, 4084);
			memcpy (u.data + 4092, d + 4, 4);
			data_sectors++;
		}
		*mem += sizeof u + (u.data != NULL ? VHDX_LOG_SECTOR_SIZE : 0);
		if (*mem > mem_cap) {
			g_free (u.data);
			g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				     "The VHDX log holds more than %" G_GUINT64_FORMAT
				     " bytes of updates to replay", mem_cap);
			return FALSE;
		}
		log->lo = MIN (log->lo, u.offset);
		log->hi = MAX (log->hi, u.offset + u.length);
		g_array_append_val (log->updates, u);
	}
	return TRUE;
}

/* Past the end of the file (only possible after log replay grew it) reads as zeros. */
static gboolean
pread_exact (const VmiFileRange *file, guint64 offset, void *buf, gsize len, GError **error)
{
	gsize got = 0;

	if (!vmi_range_pread_upto (file, buf, len, offset, &got, "VHDX file", error))
		return FALSE;
	memset ((guint8 *) buf + got, 0, len - got);
	return TRUE;
}

VhdxLog *
vhdx_log_load (const VmiFileRange *file, const guint8 *log_guid, guint64 log_offset,
	       guint64 log_length, guint64 mem_cap, GError **error)
{
	g_autoptr(VhdxLog) log = g_new0 (VhdxLog, 1);
	g_autofree guint8 *ring = NULL;
	g_autofree guint8 *scratch = NULL;
	g_autoptr(GArray) best = g_array_new (FALSE, FALSE, sizeof (VhdxLogEntry));
	g_autoptr(GArray) current = g_array_new (FALSE, FALSE, sizeof (VhdxLogEntry));
	VhdxLogScan scan = { 0 };
	guint64 cur_tail = 0, old_tail = 0, best_sequence = 0, mem = 0;
	guint64 file_size = file->size;
	const VhdxLogEntry *head;
	guint best_first = 0;

	log->updates = g_array_new (FALSE, FALSE, sizeof (VhdxLogUpdate));
	g_array_set_clear_func (log->updates, log_update_clear);
	log->lo = G_MAXUINT64;
	log->file_size = file_size;

	if (log_length > mem_cap / 2) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "The VHDX log to replay is %" G_GUINT64_FORMAT
			     " bytes long; at most %" G_GUINT64_FORMAT " bytes are supported",
			     log_length, mem_cap / 2);
		return NULL;
	}
	ring = g_malloc (log_length);
	scratch = g_malloc (log_length);
	if (!pread_exact (file, log_offset, ring, log_length, error))
		return NULL;
	scan = (VhdxLogScan) { ring, log_length, log_guid, VHDX_LOG_CHECK_BUDGET (log_length), scratch };

	/* The search of [MS-VHDX] 2.3.3: the newest valid and complete sequence wins. */
	for (;;) {
		guint64 head_pos = cur_tail, span = 0, expect = 0;
		gboolean valid = FALSE;
		VhdxLogEntry entry;

		g_array_set_size (current, 0);
		while (span < log_length && log_entry_check (&scan, head_pos, expect, &entry) &&
		       span + entry.length <= log_length) {
			g_array_append_val (current, entry);
			span += entry.length;
			head_pos = (head_pos + entry.length) % log_length;
			expect = entry.sequence + 1;
			if (expect == 0)
				break;
		}
		if (current->len > 0) {
			const VhdxLogEntry *last = &g_array_index (current, VhdxLogEntry, current->len - 1);

			for (guint i = 0; i < current->len; i++) {
				if (g_array_index (current, VhdxLogEntry, i).pos == last->tail) {
					valid = TRUE;
					if (last->sequence > best_sequence) {
						best_sequence = last->sequence;
						g_array_set_size (best, 0);
						g_array_append_vals (best, current->data, current->len);
						best_first = i;
					}
					break;
				}
			}
		}
		if (!valid)
			cur_tail = (cur_tail + VHDX_LOG_SECTOR_SIZE) % log_length;
		else
			cur_tail = head_pos;
		if (cur_tail <= old_tail)
			break;
		old_tail = cur_tail;
	}

	if (best->len == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The VHDX header names a log to replay, but the log at offset 0x%" G_GINT64_MODIFIER
			     "x (%" G_GUINT64_FORMAT " bytes) has no valid log sequence",
			     log_offset, log_length);
		return NULL;
	}
	head = &g_array_index (best, VhdxLogEntry, best->len - 1);
	if (file_size < head->flushed_file_offset) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The VHDX file is truncated: its log says it was at least %" G_GUINT64_FORMAT
			     " bytes long, but it is %" G_GUINT64_FORMAT " bytes",
			     head->flushed_file_offset, file_size);
		return NULL;
	}
	for (guint i = best_first; i < best->len; i++) {
		const VhdxLogEntry *e = &g_array_index (best, VhdxLogEntry, i);

		ring_copy (&scan, e->pos, scratch, e->length);
		if (!log_entry_collect (log, scratch, &mem, mem_cap, error))
			return NULL;
		log->n_entries++;
	}
	log->head_sequence = head->sequence;
	log->file_size = MAX (file_size, head->last_file_offset);
	if (log->updates->len > 0)
		log->file_size = MAX (log->file_size, log->hi);
	return g_steal_pointer (&log);
}

void
vhdx_log_apply (const VhdxLog *log, guint64 offset, guint8 *buf, gsize len)
{
	guint64 end = offset + len;

	if (log == NULL || log->updates->len == 0 || end <= log->lo || offset >= log->hi)
		return;
	for (guint i = 0; i < log->updates->len; i++) {
		const VhdxLogUpdate *u = &g_array_index (log->updates, VhdxLogUpdate, i);
		guint64 lo = MAX (offset, u->offset);
		guint64 hi = MIN (end, u->offset + u->length);

		if (lo >= hi)
			continue;
		if (u->data != NULL)
			memcpy (buf + (lo - offset), u->data + (lo - u->offset), hi - lo);
		else
			memset (buf + (lo - offset), 0, hi - lo);
	}
}

gboolean
vhdx_log_touches (const VhdxLog *log, guint64 offset, guint64 len)
{
	guint64 end = offset + len;

	if (log == NULL || log->updates->len == 0 || end <= log->lo || offset >= log->hi)
		return FALSE;
	for (guint i = 0; i < log->updates->len; i++) {
		const VhdxLogUpdate *u = &g_array_index (log->updates, VhdxLogUpdate, i);

		if (MAX (offset, u->offset) < MIN (end, u->offset + u->length))
			return TRUE;
	}
	return FALSE;
}

gboolean
vhdx_file_read (const VmiFileRange *file, const VhdxLog *log, guint64 offset, void *buf, gsize len,
		GError **error)
{
	if (!pread_exact (file, offset, buf, len, error))
		return FALSE;
	vhdx_log_apply (log, offset, buf, len);
	return TRUE;
}
