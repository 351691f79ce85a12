/*
 * qcow2 check: the reference counts qemu-img check computes, compared with the stored ones.
 *
 * Every structure that occupies host clusters (the header, the active and snapshot L1 tables,
 * their L2 tables and data clusters, the snapshot table, the refcount table and blocks, the
 * bitmap directory, tables and data, the LUKS header) adds one reference to each cluster it
 * touches, in an array of one counter per cluster of the file. Then each counter is compared
 * with the refcount stored for that cluster: stored lower than used is a corruption (the cluster
 * could be freed and reused while still in use; two structures on one cluster show up this
 * way), stored higher is a leak. The numbers and their rules follow qemu's
 * qcow2_check_refcounts (block/qcow2-refcount.c), so the counts agree with qemu-img check
 * --output=json: allocated, fragmented and compressed clusters are counted in the active L1's
 * tables only, and image_end_offset is the end of the last cluster used or counted.
 *
 * Memory: one 16-bit counter per cluster of the file (at most QCOW2_CHECK_MAX_CLUSTERS, 32 MiB
 * of counters), the refcount table entries that cover the file, and two clusters of scratch.
 * Tables are read a chunk at a time, never whole. The total number of L2 tables visited (a
 * hostile image may point every L1 entry of every snapshot at the same one) is capped too.
 */
#define G_LOG_DOMAIN "vmimaged-qcow2"

#include <string.h>

#include "vmi-plugin-util.h"
#include "qcow2-check.h"
#include "qcow2-reader.h"

#define HEX G_GINT64_MODIFIER "x"

#define QCOW2_CHECK_MAX_CLUSTERS (16u * 1024u * 1024u)
#define QCOW2_CHECK_CHUNK_ENTRIES 8192u /* L1, refcount and bitmap tables: 64 KiB at a time */
#define QCOW2_REFT_OFFSET_MASK 0xfffffffffffffe00ull
#define QCOW2_BME_OFFSET_MASK 0x00fffffffffffe00ull

typedef struct {
	Qcow2Reader *r;
	VmiCheckResult *res;
	GCancellable *cancellable;
	guint64 cs;	      /* cluster size */
	guint64 file_size;
	gboolean data_file;   /* data clusters live in another file: not counted here */

	guint16 *refs;	      /* references counted, per host cluster */
	guint64 n_refs;	      /* clusters of the file, plus one for a last partial overhang */
	guint64 file_clusters;
	guint64 ref_max;      /* the largest refcount the image's refcount width holds */

	/* The stored refcounts: the refcount table entries that cover [0, n_refs). */
	guint64 *reft;	      /* block offsets; 0 unallocated */
	gboolean *reft_bad;   /* that entry is unaligned or outside the file */
	guint64 n_reft;
	guint64 per_block;    /* refcounts in one refcount block */
	guint refcount_bits;
	guint8 *block;	      /* the refcount block last read */
	guint64 block_index;  /* which, or G_MAXUINT64 */

	guint8 *l2;	      /* one cluster: the L2 table being walked */
	guint64 l2_visits;
	guint64 l2_visit_max;
} Qcow2Check;

static void
check_free (Qcow2Check *c)
{
	g_free (c->refs);
	g_free (c->reft);
	g_free (c->reft_bad);
	g_free (c->block);
	g_free (c->l2);
}

static gboolean
cancelled (Qcow2Check *c, GError **error)
{
	if (!g_cancellable_is_cancelled (c->cancellable))
		return FALSE;
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED, "The check was cancelled");
	return TRUE;
}

/* Reads up to len bytes of the image at offset; bytes past its end read as zeros, as in qemu. */
static gboolean
read_zero_padded (Qcow2Check *c, void *buf, gsize len, guint64 offset, const char *what,
		  GError **error)
{
	gsize got = 0;

	if (offset >= c->file_size) {
		memset (buf, 0, len);
		return TRUE;
	}
	if (!qcow2_pread (&c->r->file, buf, len, offset, &got, what, error))
		return FALSE;
	memset ((guint8 *) buf + got, 0, len - got);
	return TRUE;
}

/*
 * One more reference to each cluster of [offset, offset + size). As qemu: the last cluster of
 * the file may be partly written, so a range may end less than one cluster past the end of the
 * file; one that goes further is a corruption and counts nothing.
 */
static gboolean
beyond_file (Qcow2Check *c, guint64 offset, guint64 size)
{
	guint64 end, limit;

	return !g_uint64_checked_add (&end, offset, size) ||
	       !g_uint64_checked_add (&limit, c->file_size, c->cs) || end >= limit;
}

static void
add_refs (Qcow2Check *c, guint64 offset, guint64 size, const char *what)
{
	guint64 end;

	if (size == 0)
		return;
	if (beyond_file (c, offset, size)) {
		c->res->corruptions++;
		vmi_check_add_problem (c->res,
				       "The %s at offset 0x%" HEX " (%" G_GUINT64_FORMAT " bytes) lies beyond the "
				       "end of the %" G_GUINT64_FORMAT "-byte file",
				       what, offset, size, c->file_size);
		return;
	}
	end = offset + size;
	for (guint64 k = offset / c->cs; k <= (end - 1) / c->cs; k++) {
		/* end < file_size + cs, so k < n_refs. */
		if (c->refs[k] >= c->ref_max) {
			c->res->corruptions++;
			vmi_check_add_problem (c->res,
					       "Cluster %" G_GUINT64_FORMAT " (offset 0x%" HEX ") is used more "
					       "than %" G_GUINT64_FORMAT " times, the most its refcount can hold "
					       "(the last use: the %s)",
					       k, k * c->cs, c->ref_max, what);
			continue;
		}
		c->refs[k]++;
	}
}

static guint64
refcount_entry (const guint8 *block, guint bits, guint64 index)
{
	switch (bits) {
	case 1:
	case 2:
	case 4: {
		guint per_byte = 8 / bits;

		return (block[index / per_byte] >> (bits * (index % per_byte))) & ((1u << bits) - 1);
	}
	case 8:
		return block[index];
	case 16:
		return qcow2_be16 (block + index * 2);
	case 32:
		return qcow2_be32 (block + index * 4);
	default:
		return qcow2_be64 (block + index * 8);
	}
}

/*
 * The stored refcount of host cluster k. *known is FALSE when its refcount block cannot be read
 * (its table entry is corrupt, reported once already); qemu counts that as a check error.
 */
static gboolean
stored_refcount (Qcow2Check *c, guint64 k, guint64 *value, gboolean *known, GError **error)
{
	guint64 b = k / c->per_block;

	*value = 0;
	*known = TRUE;
	if (b >= c->n_reft || c->reft[b] == 0)
		return TRUE;
	if (c->reft_bad[b]) {
		*known = FALSE;
		return TRUE;
	}
	if (c->block_index != b) {
		c->block_index = G_MAXUINT64;
		if (!read_zero_padded (c, c->block, c->cs, c->reft[b], "refcount block", error))
			return FALSE;
		c->block_index = b;
	}
	*value = refcount_entry (c->block, c->refcount_bits, k % c->per_block);
	return TRUE;
}

/*
 * The copied flag says "refcount is exactly 1": qemu checks it in the active tables. at is the
 * L1 index (l2_entry FALSE) or the guest offset (TRUE), for the message.
 */
static gboolean
check_copied (Qcow2Check *c, guint64 entry, guint64 host, gboolean l2_entry, guint64 at,
	      GError **error)
{
	guint64 stored;
	gboolean known, copied = (entry & QCOW2_OFLAG_COPIED) != 0;

	if (c->data_file && l2_entry) {
		stored = 1; /* a cluster of the data file has no refcount: qemu takes 1 */
	} else {
		if (!stored_refcount (c, host / c->cs, &stored, &known, error))
			return FALSE;
		if (!known)
			return TRUE;
	}
	if ((stored == 1) == copied)
		return TRUE;
	c->res->corruptions++;
	if (l2_entry)
		vmi_check_add_problem (c->res,
				       "The L2 entry for guest offset 0x%" HEX " %s the copied flag, but the "
				       "refcount of its cluster at offset 0x%" HEX " is %" G_GUINT64_FORMAT,
				       at, copied ? "has" : "lacks", host, stored);
	else
		vmi_check_add_problem (c->res,
				       "L1 entry %" G_GUINT64_FORMAT " %s the copied flag, but the refcount of its "
				       "L2 table at offset 0x%" HEX " is %" G_GUINT64_FORMAT,
				       at, copied ? "has" : "lacks", host, stored);
	return TRUE;
}

/*
 * The entries of one L2 table. frag: this is the active L1 (count the clusters and check the
 * copied flags, as qemu does); guest is the guest offset the table starts at, for messages.
 */
static gboolean
check_l2 (Qcow2Check *c, guint64 l2_offset, gboolean active, guint64 guest, GError **error)
{
	Qcow2Reader *r = c->r;
	guint64 next_contiguous = 0;

	if (c->l2_visits >= c->l2_visit_max)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				    "The image's L1 tables point at more than %" G_GUINT64_FORMAT
				    " L2 tables in all, far more than its %" G_GUINT64_FORMAT
				    "-byte file can hold; it is not checked",
				    c->l2_visit_max, c->file_size),
		       FALSE;
	c->l2_visits++;
	if (cancelled (c, error))
		return FALSE;
	if (!read_zero_padded (c, c->l2, c->cs, l2_offset, "L2 table", error))
		return FALSE;

	for (guint64 i = 0; i < r->l2_entries; i++) {
		const guint8 *e = c->l2 + i * r->l2_entry_size;
		guint64 entry = qcow2_be64 (e);
		guint64 bitmap = r->extended_l2 ? qcow2_be64 (e + 8) : 0;
		guint64 at = guest + i * c->cs;
		guint64 host = entry & QCOW2_OFFSET_MASK;

		if (entry & QCOW2_OFLAG_COMPRESSED) {
			guint64 coffset = entry & r->coffset_mask;
			guint64 sectors = ((entry >> r->csize_shift) & r->csize_mask) + 1;
			guint64 csize;

			if (entry & QCOW2_OFLAG_COPIED) {
				c->res->corruptions++;
				vmi_check_add_problem (c->res,
						       "The compressed cluster at guest offset 0x%" HEX " has the "
						       "copied flag, which compressed clusters never have",
						       at);
			}
			if (c->data_file) {
				c->res->corruptions++;
				vmi_check_add_problem (c->res,
						       "The cluster at guest offset 0x%" HEX " is compressed, but "
						       "an image with an external data file cannot hold compressed "
						       "clusters",
						       at);
				continue;
			}
			if (bitmap != 0) {
				c->res->corruptions++;
				vmi_check_add_problem (c->res,
						       "The compressed cluster at guest offset 0x%" HEX " has a "
						       "non-zero subcluster bitmap",
						       at);
			}
			csize = sectors * QCOW2_COMPRESSED_SECTOR - coffset % QCOW2_COMPRESSED_SECTOR;
			if (beyond_file (c, coffset, csize)) {
				c->res->corruptions++;
				vmi_check_add_problem (c->res,
						       "The compressed cluster for guest offset 0x%" HEX " at offset "
						       "0x%" HEX " (%" G_GUINT64_FORMAT " bytes) lies beyond the end of "
						       "the %" G_GUINT64_FORMAT "-byte file",
						       at, coffset, csize, c->file_size);
			} else {
				add_refs (c, coffset, csize, "compressed cluster");
			}
			if (active) {
				/* Compressed clusters are fragmented by nature, says qemu. */
				c->res->allocated_clusters++;
				c->res->compressed_clusters++;
				c->res->fragmented_clusters++;
			}
			continue;
		}
		/* A zero cluster without a host cluster, or an unallocated one: nothing to count. */
		if (!r->extended_l2 && (entry & QCOW2_OFLAG_ZERO) && host == 0)
			continue;
		if (host == 0 && !(c->data_file && (entry & QCOW2_OFLAG_COPIED)))
			continue;

		if (r->extended_l2 && ((bitmap >> 32) & bitmap) != 0) {
			c->res->corruptions++;
			vmi_check_add_problem (c->res,
					       "The extended L2 entry for guest offset 0x%" HEX " marks subclusters "
					       "both allocated and zero (bitmap 0x%016" G_GINT64_MODIFIER "x)",
					       at, bitmap);
		}
		if (host % c->cs != 0) {
			c->res->corruptions++;
			vmi_check_add_problem (c->res,
					       "The L2 entry for guest offset 0x%" HEX " points to host offset 0x%" HEX
					       ", which is not aligned to the %" G_GUINT64_FORMAT "-byte cluster size",
					       at, host, c->cs);
		}
		if (active) {
			c->res->allocated_clusters++;
			if (next_contiguous != 0 && host != next_contiguous)
				c->res->fragmented_clusters++;
			next_contiguous = host + c->cs;
			if (!check_copied (c, entry, host, TRUE, at, error))
				return FALSE;
		}
		if (c->data_file)
			continue;
		if (beyond_file (c, host, c->cs)) {
			c->res->corruptions++;
			vmi_check_add_problem (c->res,
					       "The L2 entry for guest offset 0x%" HEX " points to a data cluster at "
					       "offset 0x%" HEX ", beyond the end of the %" G_GUINT64_FORMAT "-byte file",
					       at, host, c->file_size);
			continue;
		}
		add_refs (c, host, c->cs, "data cluster");
	}
	return TRUE;
}

/* An L1 table, its L2 tables and their clusters; what names it in messages. */
static gboolean
check_l1 (Qcow2Check *c, guint64 l1_offset, guint64 l1_size, gboolean active, const char *what,
	  GError **error)
{
	g_autofree guint8 *chunk = NULL;
	guint64 span = c->cs * c->r->l2_entries;

	if (l1_size == 0)
		return TRUE;
	if (l1_size > QCOW2_MAX_L1_BYTES / 8) {
		c->res->corruptions++;
		vmi_check_add_problem (c->res, "The %s has %" G_GUINT64_FORMAT " entries, more than qcow2's limit of %u",
				       what, l1_size, QCOW2_MAX_L1_BYTES / 8);
		return TRUE;
	}
	if (l1_offset % c->cs != 0) {
		c->res->corruptions++;
		vmi_check_add_problem (c->res, "The %s at offset 0x%" HEX " is not aligned to the %" G_GUINT64_FORMAT
				       "-byte cluster size", what, l1_offset, c->cs);
	}
	add_refs (c, l1_offset, l1_size * 8, what);
	if (l1_offset >= c->file_size)
		return TRUE; /* reported by add_refs; nothing to read */

	chunk = g_malloc (QCOW2_CHECK_CHUNK_ENTRIES * 8);
	for (guint64 first = 0; first < l1_size; first += QCOW2_CHECK_CHUNK_ENTRIES) {
		guint64 n = MIN (l1_size - first, (guint64) QCOW2_CHECK_CHUNK_ENTRIES);

		if (!read_zero_padded (c, chunk, n * 8, l1_offset + first * 8, what, error))
			return FALSE;
		for (guint64 i = 0; i < n; i++) {
			guint64 entry = qcow2_be64 (chunk + i * 8);
			guint64 l2_offset = entry & QCOW2_OFFSET_MASK;
			guint64 index = first + i;

			if (l2_offset == 0)
				continue;
			add_refs (c, l2_offset, c->cs, "L2 table");
			if (l2_offset % c->cs != 0) {
				c->res->corruptions++;
				vmi_check_add_problem (c->res,
						       "Entry %" G_GUINT64_FORMAT " of the %s points to an L2 table "
						       "at offset 0x%" HEX ", which is not aligned to the "
						       "%" G_GUINT64_FORMAT "-byte cluster size",
						       index, what, l2_offset, c->cs);
			}
			if (active && !check_copied (c, entry, l2_offset, FALSE, index, error))
				return FALSE;
			if (!check_l2 (c, l2_offset, active, index * span, error))
				return FALSE;
		}
	}
	return TRUE;
}

/* The snapshot table and each snapshot's L1 table (without counting clusters, as qemu). */
static gboolean
check_snapshots (Qcow2Check *c, GError **error)
{
	Qcow2Reader *r = c->r;
	guint64 pos = r->snapshots_offset;

	/* The reader's open checked the count and that the table starts inside the file. */
	for (guint32 i = 0; i < r->nb_snapshots; i++) {
		guint8 fixed[40];
		guint64 l1_offset, entry_end;
		guint32 l1_size;
		g_autofree char *what = NULL;

		if (i > 0)
			pos = (pos + 7) & ~7ull;
		if (pos >= c->file_size || c->file_size - pos < sizeof fixed) {
			c->res->corruptions++;
			vmi_check_add_problem (c->res,
					       "Snapshot table entry %u at offset 0x%" HEX " lies beyond the end of "
					       "the %" G_GUINT64_FORMAT "-byte file",
					       i, pos, c->file_size);
			return TRUE;
		}
		if (!read_zero_padded (c, fixed, sizeof fixed, pos, "snapshot table entry", error))
			return FALSE;
		l1_offset = qcow2_be64 (fixed);
		l1_size = qcow2_be32 (fixed + 8);
		/* 40 + at most 2^32 + 2 * 2^16: no overflow from pos < 2^63. */
		entry_end = pos + 40 + qcow2_be32 (fixed + 36) + qcow2_be16 (fixed + 12) +
			    qcow2_be16 (fixed + 14);
		what = g_strdup_printf ("L1 table of snapshot %u", i);
		if (!check_l1 (c, l1_offset, l1_size, FALSE, what, error))
			return FALSE;
		pos = entry_end;
	}
	if (r->nb_snapshots > 0)
		add_refs (c, r->snapshots_offset, pos - r->snapshots_offset, "snapshot table");
	return TRUE;
}

/* The bitmap directory, each bitmap's table and the clusters the tables point to. */
static gboolean
check_bitmaps (Qcow2Check *c, GError **error)
{
	Qcow2Reader *r = c->r;
	g_autofree guint8 *dir = NULL;
	g_autofree guint8 *chunk = NULL;
	guint64 pos = 0;

	if (!r->has_bitmaps_ext || (r->autoclear & QCOW2_AUTOCLEAR_BITMAPS) == 0 ||
	    r->nb_bitmaps == 0)
		return TRUE;
	add_refs (c, r->bitmap_dir_offset, r->bitmap_dir_size, "bitmap directory");
	/* The reader's open checked the directory lies in the file. Too big to walk: qemu's own
	 * limit is 64 KiB per bitmap entry times 65535 bitmaps, and nobody makes that. */
	if (r->bitmap_dir_size > QCOW2_LIST_BYTES)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				    "The bitmap directory is %" G_GUINT64_FORMAT " bytes long; "
				    "directories of at most %u bytes are checked",
				    r->bitmap_dir_size, QCOW2_LIST_BYTES),
		       FALSE;
	dir = g_malloc (MAX (r->bitmap_dir_size, 1));
	if (!read_zero_padded (c, dir, r->bitmap_dir_size, r->bitmap_dir_offset, "bitmap directory",
			       error))
		return FALSE;
	chunk = g_malloc (QCOW2_CHECK_CHUNK_ENTRIES * 8);
	for (guint32 i = 0; i < r->nb_bitmaps; i++) {
		guint64 table_offset, table_size, entry_len;

		if (r->bitmap_dir_size - pos < 24)
			break; /* the reader's open refuses such a directory */
		table_offset = qcow2_be64 (dir + pos);
		table_size = qcow2_be32 (dir + pos + 8);
		entry_len = (24ull + qcow2_be32 (dir + pos + 20) + qcow2_be16 (dir + pos + 18) + 7) &
			    ~7ull;
		add_refs (c, table_offset, table_size * 8, "bitmap table");
		for (guint64 first = 0; first < table_size && table_offset < c->file_size;
		     first += QCOW2_CHECK_CHUNK_ENTRIES) {
			guint64 n = MIN (table_size - first, (guint64) QCOW2_CHECK_CHUNK_ENTRIES);

			if (!read_zero_padded (c, chunk, n * 8, table_offset + first * 8, "bitmap table",
					       error))
				return FALSE;
			for (guint64 j = 0; j < n; j++) {
				guint64 entry = qcow2_be64 (chunk + j * 8);
				guint64 offset = entry & QCOW2_BME_OFFSET_MASK;

				if (offset % c->cs != 0 || (offset == 0 && (entry & 1) == 0 && entry != 0)) {
					c->res->corruptions++;
					vmi_check_add_problem (c->res, "Entry %" G_GUINT64_FORMAT " of the table of bitmap %u "
							       "is invalid (0x%016" G_GINT64_MODIFIER "x)",
							       first + j, i, entry);
					continue;
				}
				if (offset != 0)
					add_refs (c, offset, c->cs, "bitmap data cluster");
			}
		}
		if (entry_len > r->bitmap_dir_size - pos)
			break;
		pos += entry_len;
	}
	return TRUE;
}

/*
 * The refcount table: which entries cover the file (kept for the stored refcounts), each
 * aligned and inside the file. The blocks' own references are counted by count_refblocks, last.
 */
static gboolean
load_reftable (Qcow2Check *c, GError **error)
{
	Qcow2Reader *r = c->r;
	guint64 entries = (guint64) r->refcount_table_clusters * c->cs / 8;

	c->n_reft = MIN (entries, (c->n_refs + c->per_block - 1) / c->per_block);
	c->reft = g_new0 (guint64, MAX (c->n_reft, 1));
	c->reft_bad = g_new0 (gboolean, MAX (c->n_reft, 1));
	if (c->n_reft == 0)
		return TRUE;
	{
		g_autofree guint8 *raw = g_malloc (c->n_reft * 8);

		if (!read_zero_padded (c, raw, c->n_reft * 8, r->refcount_table_offset,
				       "refcount table", error))
			return FALSE;
		for (guint64 i = 0; i < c->n_reft; i++) {
			guint64 offset = qcow2_be64 (raw + i * 8) & QCOW2_REFT_OFFSET_MASK;

			c->reft[i] = offset;
			c->reft_bad[i] = offset % c->cs != 0 || offset / c->cs >= c->n_refs - 1;
		}
	}
	return TRUE;
}

/* Every entry of the refcount table: its block aligned, in the file, used once. */
static gboolean
count_refblocks (Qcow2Check *c, GError **error)
{
	Qcow2Reader *r = c->r;
	guint64 entries = (guint64) r->refcount_table_clusters * c->cs / 8;
	g_autofree guint8 *chunk = g_malloc (QCOW2_CHECK_CHUNK_ENTRIES * 8);

	add_refs (c, r->refcount_table_offset, entries * 8, "refcount table");
	for (guint64 first = 0; first < entries; first += QCOW2_CHECK_CHUNK_ENTRIES) {
		guint64 n = MIN (entries - first, (guint64) QCOW2_CHECK_CHUNK_ENTRIES);

		if (cancelled (c, error) ||
		    !read_zero_padded (c, chunk, n * 8, r->refcount_table_offset + first * 8,
				       "refcount table", error))
			return FALSE;
		for (guint64 j = 0; j < n; j++) {
			guint64 offset = qcow2_be64 (chunk + j * 8) & QCOW2_REFT_OFFSET_MASK;
			guint64 i = first + j;

			if (offset % c->cs != 0) {
				c->res->corruptions++;
				vmi_check_add_problem (c->res,
						       "Refcount table entry %" G_GUINT64_FORMAT " points to a "
						       "refcount block at offset 0x%" HEX ", which is not aligned to "
						       "the %" G_GUINT64_FORMAT "-byte cluster size",
						       i, offset, c->cs);
				continue;
			}
			if (offset / c->cs >= c->n_refs - 1) {
				c->res->corruptions++;
				vmi_check_add_problem (c->res,
						       "Refcount table entry %" G_GUINT64_FORMAT " points to a "
						       "refcount block at offset 0x%" HEX ", beyond the end of the "
						       "%" G_GUINT64_FORMAT "-byte file",
						       i, offset, c->file_size);
				continue;
			}
			if (offset == 0)
				continue;
			add_refs (c, offset, c->cs, "refcount block");
			if (c->refs[offset / c->cs] != 1) {
				c->res->corruptions++;
				vmi_check_add_problem (c->res,
						       "The refcount block of refcount table entry %" G_GUINT64_FORMAT
						       " at offset 0x%" HEX " shares its cluster with other data "
						       "(%u uses)",
						       i, offset, c->refs[offset / c->cs]);
			}
		}
	}
	return TRUE;
}

/* Counted against stored, cluster by cluster: corruptions, leaks and the end of the image. */
static gboolean
compare_refcounts (Qcow2Check *c, GError **error)
{
	guint64 highest = 0;

	for (guint64 k = 0; k < c->n_refs; k++) {
		guint64 stored, used = c->refs[k];
		gboolean known;

		if (k % 65536 == 0 && cancelled (c, error))
			return FALSE;
		if (!stored_refcount (c, k, &stored, &known, error))
			return FALSE;
		/* As qemu: the cluster past the end only when something overhangs into it. */
		if (k >= c->file_clusters && used == 0)
			break;
		if (!known)
			continue;
		if (stored > 0 || used > 0)
			highest = k;
		if (stored < used) {
			c->res->corruptions++;
			vmi_check_add_problem (c->res,
					       "Cluster %" G_GUINT64_FORMAT " (offset 0x%" HEX ") has refcount "
					       "%" G_GUINT64_FORMAT " but is used %" G_GUINT64_FORMAT " time(s)",
					       k, k * c->cs, stored, used);
		} else if (stored > used) {
			c->res->leaks++;
			vmi_check_add_problem (c->res,
					       "Cluster %" G_GUINT64_FORMAT " (offset 0x%" HEX ") is leaked: its "
					       "refcount is %" G_GUINT64_FORMAT " but it is used %" G_GUINT64_FORMAT
					       " time(s)",
					       k, k * c->cs, stored, used);
		}
	}
	c->res->image_end_offset = (highest + 1) * c->cs;
	return TRUE;
}

gboolean
qcow2_reader_check (Qcow2Reader *r, VmiCheckResult *result, GCancellable *cancellable,
		    GError **error)
{
	Qcow2Check c = { 0 };
	gboolean ok;
	guint64 clusters;

	c.r = r;
	c.res = result;
	c.cancellable = cancellable;
	c.cs = r->cluster_size;
	c.file_size = r->file_size;
	c.data_file = (r->incompat & QCOW2_INCOMPAT_DATA_FILE) != 0;
	clusters = c.file_size / c.cs + (c.file_size % c.cs != 0);
	if (clusters > QCOW2_CHECK_MAX_CLUSTERS)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				    "The %" G_GUINT64_FORMAT "-byte file holds %" G_GUINT64_FORMAT
				    " clusters of %" G_GUINT64_FORMAT " bytes; at most %u clusters "
				    "are checked (one counter each in memory)",
				    c.file_size, clusters, c.cs, QCOW2_CHECK_MAX_CLUSTERS),
		       FALSE;
	/* One more: a table may end inside the cluster after the last (see add_refs). */
	c.n_refs = clusters + 1;
	c.file_clusters = clusters;
	c.refs = g_new0 (guint16, c.n_refs);
	c.refcount_bits = 1u << r->refcount_order;
	c.ref_max = c.refcount_bits >= 16 ? G_MAXUINT16 : (1u << c.refcount_bits) - 1;
	c.per_block = c.cs * 8 / c.refcount_bits;
	c.block = g_malloc (c.cs);
	c.block_index = G_MAXUINT64;
	c.l2 = g_malloc (c.cs);
	c.l2_visit_max = clusters * 64 + 65536;

	/* qemu's rounding: the disk is whole 512-byte sectors. */
	result->total_clusters = ((r->size & ~511ull) + c.cs - 1) / c.cs;

	add_refs (&c, 0, c.cs, "header");
	ok = load_reftable (&c, error) &&
	     check_l1 (&c, r->l1_offset, r->l1_size, TRUE, "active L1 table", error) &&
	     check_snapshots (&c, error);
	if (ok && r->crypt_method == QCOW2_CRYPT_LUKS && r->has_crypto_ext)
		add_refs (&c, r->crypto_offset, r->crypto_length, "LUKS header");
	ok = ok && check_bitmaps (&c, error) && count_refblocks (&c, error) &&
	     compare_refcounts (&c, error);
	check_free (&c);
	return ok;
}
