/*
 * VMDK check of a hosted sparse extent (monolithicSparse, streamOptimized, the files of a split
 * sparse disk).
 *
 * qemu-img check (vmdk_co_check) walks the grains in guest order and stops at the first grain
 * whose offset lies at or past the end of its file, counting one corruption. This walks them all
 * and counts every such grain, so on an image with one bad grain both say 1. It also finds what
 * qemu does not look for: two grains, or a grain and the extent's own metadata (header,
 * descriptor, grain directories and tables, stream markers and footer), on the same sectors;
 * each structure that starts inside an earlier one is a corruption. Counts: total clusters are the
 * grains of the capacity, allocated those with a sector, compressed those of a compressed
 * extent, fragmented those that do not start where the previous allocated grain ends.
 *
 * The extent was validated by vmdk_sparse_open (header fields, grain directory and tables inside
 * the file), so sizes here are bounded. Memory: the grain directory, one grain table, and one
 * 64-bit word per grain or table for the overlap test, at most VMDK_CHECK_MAX_ITEMS (32 MiB);
 * past that the overlap test is skipped (and a sentence says so), the rest still runs.
 */
#include <string.h>

#include "vmi-plugin-util.h"
#include "vmdk-check.h"

#define VMDK_CHECK_MAX_ITEMS (4u * 1024u * 1024u)
/* An item of the overlap test: start sector (40 bits) and length in sectors (24 bits). */
#define ITEM(start, len) (((guint64) (start) << 24) | (guint64) (len))
#define ITEM_START(item) ((item) >> 24)
#define ITEM_LEN(item) ((item) & 0xffffffu)

typedef struct {
	const VmiFileRange *file;
	const char *name; /* "extent file 'x': " or "" */
	VmiCheckResult *res;
	GArray *items;	  /* guint64 ITEMs, NULL once there are too many */
	guint64 end;	  /* end of the last structure, bytes */
} VmdkCheck;

static void
vmdk_check_clear (VmdkCheck *c)
{
	g_clear_pointer (&c->items, g_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (VmdkCheck, vmdk_check_clear)

static void G_GNUC_PRINTF (2, 3)
problem (VmdkCheck *c, const char *format, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start (ap, format);
	msg = g_strdup_vprintf (format, ap);
	va_end (ap);
	vmi_check_add_problem (c->res, "%s%s", c->name, msg);
}

static void
add_item (VmdkCheck *c, guint64 sector, guint64 sectors)
{
	guint64 item;

	c->end = MAX (c->end, MIN ((sector + sectors) * VMDK_SECTOR, c->file->size));
	if (c->items == NULL)
		return;
	if (c->items->len >= VMDK_CHECK_MAX_ITEMS) {
		g_clear_pointer (&c->items, g_array_unref);
		problem (c, "more than %u grains and tables: overlaps between them are not checked",
			 VMDK_CHECK_MAX_ITEMS);
		return;
	}
	item = ITEM (sector, MIN (sectors, (guint64) 0xffffffu));
	g_array_append_val (c->items, item);
}

static gint
compare_u64 (gconstpointer a, gconstpointer b)
{
	guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;

	return x < y ? -1 : x > y;
}

static void
check_overlaps (VmdkCheck *c)
{
	guint64 end = 0;

	if (c->items == NULL)
		return;
	g_array_sort (c->items, compare_u64);
	for (guint k = 0; k < c->items->len; k++) {
		guint64 item = g_array_index (c->items, guint64, k);

		if (k > 0 && ITEM_START (item) < end) {
			c->res->corruptions++;
			problem (c,
				 "the grain or table at sector %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT
				 " sectors) starts inside another one, which ends at sector %" G_GUINT64_FORMAT,
				 ITEM_START (item), ITEM_LEN (item), end);
		}
		end = MAX (end, ITEM_START (item) + ITEM_LEN (item));
	}
}

/* Whether bytes bytes at sector lie inside the file. */
static gboolean
inside (const VmiFileRange *file, guint64 sector, guint64 bytes)
{
	guint64 end;

	return sector <= G_MAXUINT64 / VMDK_SECTOR &&
	       g_uint64_checked_add (&end, sector * VMDK_SECTOR, bytes) && end <= file->size;
}

static guint64
sectors_for (guint64 bytes)
{
	return bytes / VMDK_SECTOR + (bytes % VMDK_SECTOR != 0);
}

/* A directory (primary or redundant): its sectors and its tables' sectors. Returns the entries. */
static guint32 *
load_directory (VmdkCheck *c, guint64 gd_sector, guint64 entries, guint32 num_gtes,
		gboolean markers, GError **error)
{
	g_autofree guint8 *raw = g_malloc (MAX (entries * 4, 1));
	guint32 *gd = g_new0 (guint32, MAX (entries, 1));

	if (!vmi_range_pread_all (c->file, raw, entries * 4, gd_sector * VMDK_SECTOR,
				  "VMDK grain directory", error)) {
		g_free (gd);
		return NULL;
	}
	add_item (c, gd_sector - (markers ? 1 : 0), sectors_for (entries * 4) + (markers ? 1 : 0));
	for (guint64 i = 0; i < entries; i++) {
		gd[i] = vmdk_le32 (raw + 4 * i);
		if (gd[i] != 0)
			add_item (c, gd[i] - (markers ? 1 : 0),
				  sectors_for ((guint64) num_gtes * 4) + (markers ? 1 : 0));
	}
	return gd;
}

gboolean
vmdk_check_sparse (const VmiFileRange *file, const char *name, VmiCheckResult *result,
		   GCancellable *cancellable, GError **error)
{
	g_auto (VmdkCheck) c = { file, "", result, g_array_new (FALSE, FALSE, sizeof (guint64)), 0 };
	g_autofree char *prefix = name != NULL ? g_strdup_printf ("extent file '%s': ", name) : NULL;
	guint8 h[VMDK_SECTOR], tail[3 * VMDK_SECTOR];
	g_autofree guint32 *gd = NULL;
	g_autofree guint32 *rgd = NULL;
	g_autofree guint8 *gt = NULL;
	guint64 capacity, grain_sectors, gd_sector, rgd_sector, gt_span, entries, grains;
	guint64 prev_end = 0;
	guint32 num_gtes, flags;
	gboolean compressed, markers, zero_grain, at_end = FALSE;

	if (prefix != NULL)
		c.name = prefix;
	if (!vmi_range_pread_all (file, h, sizeof h, 0, "VMDK header", error))
		return FALSE;
	if (memcmp (h, VMDK_SPARSE_MAGIC, 4) != 0) {
		return TRUE; /* a COWD extent: not checked */
	}
	add_item (&c, 0, 1);
	if (vmdk_le64 (h + VMDK_HDR_GD_OFFSET) == VMDK_GD_AT_END) {
		/* open found the footer: marker, footer, end-of-stream in the last three sectors */
		if (!vmi_range_pread_all (file, tail, sizeof tail, file->size - sizeof tail,
					  "VMDK stream footer", error))
			return FALSE;
		memcpy (h, tail + VMDK_SECTOR, VMDK_SECTOR);
		add_item (&c, file->size / VMDK_SECTOR - 3, 3);
		at_end = TRUE;
	}
	flags = vmdk_le32 (h + VMDK_HDR_FLAGS);
	capacity = vmdk_le64 (h + VMDK_HDR_CAPACITY);
	grain_sectors = vmdk_le64 (h + VMDK_HDR_GRAIN_SIZE);
	num_gtes = vmdk_le32 (h + VMDK_HDR_NUM_GTES);
	gd_sector = vmdk_le64 (h + VMDK_HDR_GD_OFFSET);
	rgd_sector = vmdk_le64 (h + VMDK_HDR_RGD_OFFSET);
	compressed = (flags & VMDK_FLAG_COMPRESSED) != 0;
	markers = (flags & VMDK_FLAG_MARKERS) != 0;
	zero_grain = (flags & VMDK_FLAG_ZERO_GRAIN) != 0;
	/* Open read the descriptor only if it is inside the file; a bogus location is not ours. */
	if (vmdk_le64 (h + VMDK_HDR_DESC_SIZE) > 0 &&
	    inside (file, vmdk_le64 (h + VMDK_HDR_DESC_OFFSET), vmdk_le64 (h + VMDK_HDR_DESC_SIZE) * VMDK_SECTOR))
		add_item (&c, vmdk_le64 (h + VMDK_HDR_DESC_OFFSET), vmdk_le64 (h + VMDK_HDR_DESC_SIZE));
	gt_span = grain_sectors * num_gtes; /* both bounded by open */
	entries = capacity / gt_span + (capacity % gt_span != 0);
	grains = capacity / grain_sectors + (capacity % grain_sectors != 0);
	result->total_clusters += grains;

	/* Tables written in the stream have a marker sector before them; those in the header area
	 * (qemu's streamOptimized puts them there) do not. */
	gd = load_directory (&c, gd_sector, entries, num_gtes, markers && at_end, error);
	if (gd == NULL)
		return FALSE;
	if ((flags & VMDK_FLAG_RGD) && rgd_sector != 0 && rgd_sector != gd_sector &&
	    !inside (file, rgd_sector, entries * 4)) {
		result->corruptions++;
		problem (&c, "the redundant grain directory at sector %" G_GUINT64_FORMAT " (%"
			 G_GUINT64_FORMAT " bytes) lies beyond the end of the %" G_GUINT64_FORMAT
			 "-byte file",
			 rgd_sector, entries * 4, file->size);
	} else if ((flags & VMDK_FLAG_RGD) && rgd_sector != 0 && rgd_sector != gd_sector) {
		rgd = load_directory (&c, rgd_sector, entries, num_gtes, FALSE, error);
		if (rgd == NULL)
			return FALSE;
	}
	gt = g_malloc ((gsize) num_gtes * 4);
	for (guint64 i = 0; i < entries; i++) {
		if (gd[i] == 0)
			continue;
		if (g_cancellable_is_cancelled (cancellable)) {
			g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED, "The check was cancelled");
			return FALSE;
		}
		if (!vmi_range_pread_all (file, gt, (gsize) num_gtes * 4, (guint64) gd[i] * VMDK_SECTOR,
					  "VMDK grain table", error))
			return FALSE;
		for (guint32 j = 0; j < num_gtes && i * num_gtes + j < grains; j++) {
			guint64 sector = vmdk_le32 (gt + 4 * j), length = grain_sectors;
			guint64 grain = i * num_gtes + j;

			if (sector == 0 || (zero_grain && sector == VMDK_GTE_ZEROED))
				continue;
			if (sector * VMDK_SECTOR >= file->size) {
				result->corruptions++;
				problem (&c,
					 "grain %" G_GUINT64_FORMAT " (guest offset 0x%" G_GINT64_MODIFIER
					 "x) is at offset 0x%" G_GINT64_MODIFIER "x, beyond the end of the "
					 "%" G_GUINT64_FORMAT "-byte file",
					 grain, grain * grain_sectors * VMDK_SECTOR, sector * VMDK_SECTOR,
					 file->size);
				continue;
			}
			result->allocated_clusters++;
			if (compressed) {
				guint8 marker[VMDK_GRAIN_MARKER_SIZE];

				result->compressed_clusters++;
				length = 1;
				if (markers && !inside (file, sector, VMDK_GRAIN_MARKER_SIZE)) {
					length = sectors_for (file->size) - sector + 1; /* reported below */
				} else if (markers) {
					if (!vmi_range_pread_all (file, marker, sizeof marker,
								  sector * VMDK_SECTOR, "VMDK grain marker",
								  error))
						return FALSE;
					length = sectors_for (VMDK_GRAIN_MARKER_SIZE + (guint64) vmdk_le32 (marker + 8));
				}
				if ((sector + length) * VMDK_SECTOR > file->size) {
					result->corruptions++;
					problem (&c,
						 "the compressed grain %" G_GUINT64_FORMAT " at offset 0x%"
						 G_GINT64_MODIFIER "x (%" G_GUINT64_FORMAT " sectors) runs past "
						 "the end of the %" G_GUINT64_FORMAT "-byte file",
						 grain, sector * VMDK_SECTOR, length, file->size);
				}
			}
			if (prev_end != 0 && sector != prev_end)
				result->fragmented_clusters++;
			prev_end = sector + length;
			add_item (&c, sector, length);
		}
	}
	check_overlaps (&c);
	result->image_end_offset += c.end;
	return TRUE;
}
