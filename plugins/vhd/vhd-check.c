/*
 * VHD check (qemu-img has none for vpc). Open has already refused a block that lies beyond the
 * end of the file and a footer that neither copy holds; this finds what open lets through.
 *
 * Corruptions:
 * - the footer at the end is damaged or missing, and the copy at offset 0 was used;
 * - in a dynamic or differencing disk, the copy at offset 0 differs from the footer at the end;
 * - two blocks (each a sector bitmap and its data) that overlap in the file: every block after
 *   the first at a place counts once;
 * - a block that overlaps the footer copy, the dynamic header or the BAT, or runs into the
 *   footer at the end of the file.
 * Counts: total clusters are the BAT entries, allocated those in use, fragmented those whose
 * block does not follow the previous allocated entry's in the file. image_end_offset is the end
 * of the last structure plus the footer.
 *
 * Memory: one 32-bit sector number per block in use, at most the BAT's own size.
 */
#include <string.h>

#include "vmi-plugin-util.h"
#include "vhd-check.h"
#include "vhd-private.h"

static gint
compare_u32 (gconstpointer a, gconstpointer b)
{
	guint32 x = *(const guint32 *) a, y = *(const guint32 *) b;

	return x < y ? -1 : x > y;
}

static gboolean
overlaps (guint64 a, guint64 a_len, guint64 b, guint64 b_len)
{
	return a < b + b_len && b < a + a_len;
}

static gboolean
check_footers (VmiImage *image, VmiCheckResult *result, GError **error)
{
	guint8 head[VHD_FOOTER_SIZE], tail[VHD_FOOTER_SIZE];

	if (g_strcmp0 (image->footer_source, "end") != 0) {
		result->corruptions++;
		vmi_check_add_problem (result,
				       "The footer at the end of the %" G_GUINT64_FORMAT "-byte file is damaged "
				       "or missing; the copy at offset 0 was used",
				       image->file_size);
		return TRUE;
	}
	if (image->footer.disk_type == VHD_TYPE_FIXED)
		return TRUE;
	if (!vmi_range_pread_all (&image->file, head, sizeof head, 0, "VHD file", error) ||
	    !vmi_range_pread_all (&image->file, tail, sizeof tail, image->file_size - VHD_FOOTER_SIZE,
				  "VHD file", error))
		return FALSE;
	if (memcmp (head, tail, VHD_FOOTER_SIZE) != 0) {
		result->corruptions++;
		vmi_check_add_problem (result,
				       "The footer copy at offset 0 differs from the footer at offset 0x%"
				       G_GINT64_MODIFIER "x; a reader that trusts the copy sees another disk",
				       image->file_size - VHD_FOOTER_SIZE);
	}
	return TRUE;
}

static void
check_blocks (VmiImage *image, VmiCheckResult *result)
{
	guint64 span = (guint64) image->bitmap_size + image->block_size;
	guint64 bat_end = image->bat_offset + ((guint64) image->max_table_entries * 4 + VHD_SECTOR_SIZE - 1) /
						     VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
	guint64 meta_end = MAX (MAX ((guint64) VHD_FOOTER_SIZE, image->header_offset + VHD_DYN_HEADER_SIZE),
				bat_end);
	g_autoptr(GArray) starts = g_array_new (FALSE, FALSE, sizeof (guint32));
	guint64 prev_end = 0, end = meta_end;

	result->total_clusters = image->n_bat;
	for (guint32 i = 0; i < image->n_bat; i++) {
		guint32 entry = image->bat[i];
		guint64 start = (guint64) entry * VHD_SECTOR_SIZE;

		if (entry == VHD_BAT_UNUSED)
			continue;
		result->allocated_clusters++;
		if (prev_end != 0 && start != prev_end)
			result->fragmented_clusters++;
		prev_end = start + span;
		end = MAX (end, start + span);
		g_array_append_val (starts, entry);
		/* Open checked start + span <= file size: no overflow, and inside the file. */
		if (overlaps (start, span, 0, VHD_FOOTER_SIZE) ||
		    overlaps (start, span, image->header_offset, VHD_DYN_HEADER_SIZE) ||
		    overlaps (start, span, image->bat_offset, bat_end - image->bat_offset)) {
			result->corruptions++;
			vmi_check_add_problem (result,
					       "Block %u at offset 0x%" G_GINT64_MODIFIER "x overlaps the footer copy, "
					       "the dynamic header (at 0x%" G_GINT64_MODIFIER "x) or the BAT (at 0x%"
					       G_GINT64_MODIFIER "x)",
					       i, start, image->header_offset, image->bat_offset);
		} else if (start + span > image->file_size - VHD_FOOTER_SIZE) {
			result->corruptions++;
			vmi_check_add_problem (result,
					       "Block %u at offset 0x%" G_GINT64_MODIFIER "x runs into the footer at "
					       "the end of the %" G_GUINT64_FORMAT "-byte file",
					       i, start, image->file_size);
		}
	}
	g_array_sort (starts, compare_u32);
	for (guint k = 1; k < starts->len; k++) {
		guint64 a = (guint64) g_array_index (starts, guint32, k - 1) * VHD_SECTOR_SIZE;
		guint64 b = (guint64) g_array_index (starts, guint32, k) * VHD_SECTOR_SIZE;

		if (b - a < span) {
			result->corruptions++;
			vmi_check_add_problem (result,
					       "Two blocks overlap in the file: one at offset 0x%" G_GINT64_MODIFIER
					       "x and one at offset 0x%" G_GINT64_MODIFIER "x, %" G_GUINT64_FORMAT
					       " bytes each with the sector bitmap",
					       a, b, span);
		}
	}
	result->image_end_offset = end + VHD_FOOTER_SIZE;
}

gboolean
vhd_check (VmiImage *image, VmiCheckResult *result, GCancellable *cancellable, GError **error)
{
	if (g_cancellable_is_cancelled (cancellable)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED, "The check was cancelled");
		return FALSE;
	}
	if (!check_footers (image, result, error))
		return FALSE;
	if (image->footer.disk_type == VHD_TYPE_FIXED) {
		result->image_end_offset = image->file_size;
		return TRUE;
	}
	check_blocks (image, result);
	return TRUE;
}
