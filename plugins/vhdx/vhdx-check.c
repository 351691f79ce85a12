/*
 * VHDX check. Open already refuses, as qemu's open does, a payload block that lies beyond the end
 * of the file or inside the header section, the BAT, the metadata region or the log; qemu-img
 * check finds nothing more (vhdx_co_check repeats those tests). This adds:
 * - two blocks (payload blocks, and the sector bitmap blocks of differencing images) that overlap
 *   in the file: every block after the first at a place is a corruption;
 * - a present sector bitmap block beyond the end of the file.
 * A log that open replayed in memory (the file still needs the replay, as after a crash of
 * Hyper-V) is not counted, since the data is whole; it gets a sentence in problems.
 * Counts: total clusters are the payload blocks of the disk, allocated those fully or partially
 * present, fragmented those not right after the previous allocated block in the file.
 * image_end_offset is the end of the last block, or the file size if no block is allocated.
 *
 * Memory: one 64-bit word per allocated block, at most the BAT's own size.
 */
#include "vmi-plugin-util.h"
#include "vhdx-check.h"
#include "vhdx-private.h"

static gint
compare_u64 (gconstpointer a, gconstpointer b)
{
	guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;

	return x < y ? -1 : x > y;
}

/* A block in the sorted list: its offset in MiB, shifted left by one, and 1 for a sector bitmap. */
#define PACK(offset_mib, is_bitmap) (((offset_mib) << 1) | (is_bitmap))

gboolean
vhdx_check (VmiImage *self, VmiCheckResult *result, GCancellable *cancellable, GError **error)
{
	g_autoptr(GArray) blocks = g_array_new (FALSE, FALSE, sizeof (guint64));
	guint64 prev_end = 0, end = 0;

	if (g_cancellable_is_cancelled (cancellable)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED, "The check was cancelled");
		return FALSE;
	}
	if (self->log != NULL) {
		vmi_check_add_problem (result, "The VHDX log holds entries that were never applied to the file (it "
				       "was not closed cleanly); they were replayed in memory to read it");
	}
	result->total_clusters = self->data_blocks;
	for (guint64 index = 0; index < self->bat_entries; index++) {
		guint64 entry = self->bat[index];
		guint state = entry & VHDX_BAT_STATE_MASK;
		guint64 offset_mib = entry >> VHDX_BAT_OFFSET_SHIFT;
		gboolean is_bitmap = (index + 1) % (self->chunk_ratio + 1) == 0;
		guint64 packed;

		if (is_bitmap) {
			if (state != VHDX_SB_PRESENT)
				continue;
			/* offset_mib < 2^44: the MiB count cannot overflow. */
			if (offset_mib * VHDX_MiB + VHDX_MiB > self->file_size) {
				result->corruptions++;
				vmi_check_add_problem (result,
						       "The sector bitmap block of BAT entry %" G_GUINT64_FORMAT " at "
						       "offset 0x%" G_GINT64_MODIFIER "x lies beyond the end of the %"
						       G_GUINT64_FORMAT "-byte file",
						       index, (guint64) (offset_mib * VHDX_MiB), self->file_size);
				continue;
			}
		} else {
			if (state != VHDX_PAYLOAD_FULLY_PRESENT && state != VHDX_PAYLOAD_PARTIALLY_PRESENT)
				continue;
			result->allocated_clusters++;
			if (prev_end != 0 && offset_mib * VHDX_MiB != prev_end)
				result->fragmented_clusters++;
			prev_end = offset_mib * VHDX_MiB + self->block_size;
		}
		end = MAX (end, offset_mib * VHDX_MiB + (is_bitmap ? VHDX_MiB : self->block_size));
		packed = PACK (offset_mib, (guint64) is_bitmap);
		g_array_append_val (blocks, packed);
	}

	g_array_sort (blocks, compare_u64);
	for (guint k = 1; k < blocks->len; k++) {
		guint64 a = g_array_index (blocks, guint64, k - 1), b = g_array_index (blocks, guint64, k);
		guint64 a_start = (a >> 1) * VHDX_MiB, b_start = (b >> 1) * VHDX_MiB;
		guint64 a_len = (a & 1) ? VHDX_MiB : self->block_size;

		if (b_start < a_start + a_len) {
			result->corruptions++;
			vmi_check_add_problem (result,
					       "Two blocks overlap in the file: a %s at offset 0x%" G_GINT64_MODIFIER
					       "x and a %s at offset 0x%" G_GINT64_MODIFIER "x",
					       (a & 1) ? "sector bitmap block" : "payload block", a_start,
					       (b & 1) ? "sector bitmap block" : "payload block", b_start);
		}
	}
	/* A last block may be cut short by the end of the file (qemu made such files). */
	result->image_end_offset = blocks->len > 0 ? MIN (end, self->file_size) : self->file_size;
	return TRUE;
}
