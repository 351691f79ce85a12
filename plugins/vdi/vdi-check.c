/*
 * VDI check: the block map, as qemu-img check does it (vdi_co_check in qemu's block/vdi.c), and
 * what qemu leaves out.
 *
 * Corruptions, counted as qemu counts them: an entry pointing at an image block at or past
 * blocks_allocated; an image block used by two entries (the second is counted); a header whose
 * blocks_allocated differs from the entries that point at blocks. Also a corruption here, not in
 * qemu: an image block that lies (partly) beyond the end of the file. Leaks (not in qemu): image
 * blocks below blocks_allocated that no entry uses. The block counts are reported as clusters:
 * total (entries), allocated, fragmented (an entry whose image block does not follow the
 * previous allocated entry's).
 *
 * Memory: one bit per allocated image block (at most 4 MiB, as blocks_allocated <=
 * blocks_in_image and the block map itself is capped at 128 MiB).
 */
#include "vmi-plugin-util.h"
#include "vdi-check.h"
#include "vdi-private.h"

#define VDI_CHECK_CANCEL_STEP 65536u

gboolean
vdi_check (VmiImage *self, VmiCheckResult *result, GCancellable *cancellable, GError **error)
{
	const VdiHeader *h = &self->header;
	g_autofree guint8 *used = g_malloc0 ((gsize) h->blocks_allocated / 8 + 1);
	guint64 counted = 0, prev = G_MAXUINT64, end = h->offset_data;

	result->total_clusters = h->blocks_in_image;
	for (guint32 i = 0; i < h->blocks_in_image; i++) {
		guint32 entry = self->bmap[i];
		guint64 start;

		if (i % VDI_CHECK_CANCEL_STEP == 0 && g_cancellable_is_cancelled (cancellable)) {
			g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED,
					     "The check was cancelled");
			return FALSE;
		}
		if (entry == VDI_BLOCK_FREE || entry == VDI_BLOCK_ZERO)
			continue;
		if (entry >= h->blocks_allocated) {
			result->corruptions++;
			vmi_check_add_problem (result,
					       "Block %u (virtual offset 0x%" G_GINT64_MODIFIER "x) points to image "
					       "block %u, but the header says only %u blocks are allocated",
					       i, (guint64) i * h->block_size, entry, h->blocks_allocated);
			continue;
		}
		counted++;
		result->allocated_clusters++;
		if (prev != G_MAXUINT64 && entry != prev + 1)
			result->fragmented_clusters++;
		prev = entry;
		if (used[entry / 8] & (1u << (entry % 8))) {
			result->corruptions++;
			vmi_check_add_problem (result,
					       "Block %u (virtual offset 0x%" G_GINT64_MODIFIER "x) points to image "
					       "block %u, which an earlier block also uses",
					       i, (guint64) i * h->block_size, entry);
			continue;
		}
		used[entry / 8] |= (guint8) (1u << (entry % 8));
		/* entry < 2^30 and block_size <= 2^28: no overflow. */
		start = h->offset_data + (guint64) entry * h->block_size;
		end = MAX (end, start + h->block_size);
		if (start + h->block_size > self->file_size) {
			result->corruptions++;
			vmi_check_add_problem (result,
					       "Block %u (virtual offset 0x%" G_GINT64_MODIFIER "x) is stored at "
					       "offset 0x%" G_GINT64_MODIFIER "x, which lies beyond the end of the "
					       "%" G_GUINT64_FORMAT "-byte file",
					       i, (guint64) i * h->block_size, start, self->file_size);
		}
	}
	if (counted != h->blocks_allocated) {
		result->corruptions++;
		vmi_check_add_problem (result,
				       "The header says %u blocks are allocated, but the block map points to %"
				       G_GUINT64_FORMAT,
				       h->blocks_allocated, counted);
	}
	for (guint32 b = 0; b < h->blocks_allocated; b++) {
		if ((used[b / 8] & (1u << (b % 8))) == 0 && counted == h->blocks_allocated) {
			result->leaks++;
			vmi_check_add_problem (result, "Image block %u (offset 0x%" G_GINT64_MODIFIER "x) is allocated "
					       "but no block of the disk uses it",
					       b, h->offset_data + (guint64) b * h->block_size);
		}
	}
	result->image_end_offset = MIN (end, self->file_size);
	return TRUE;
}
