#include <string.h>
#include <zlib.h>

#include "vmdk-sparse.h"

/* Grain tables kept in memory per extent; streams read them in order, so a few suffice. */
#define VMDK_GT_CACHE 16u
/* block_status looks at no more grains than this per call, so one call costs bounded time. */
#define VMDK_STATUS_MAX_GRAINS 65536u

typedef enum {
	VMDK_GRAIN_HOLE,
	VMDK_GRAIN_ZERO,
	VMDK_GRAIN_DATA,
} VmdkGrainKind;

typedef struct {
	guint64 index; /* grain directory index, G_MAXUINT64 if the slot is empty */
	guint32 *table;
} VmdkGtSlot;

struct _VmdkSparse {
	VmiFileRange file;
	guint64 file_size; /* file.size */
	char *name;

	guint32 version;
	guint32 flags;
	guint64 capacity;    /* bytes */
	guint32 grain_bytes;
	guint32 num_gtes;
	guint64 gt_span;     /* virtual bytes covered by one grain table */
	gboolean compressed; /* deflate grains */
	gboolean markers;    /* grains are preceded by {lba, size} */
	gboolean zero_grain; /* GTE 1 means a zeroed grain */
	guint64 desc_offset, desc_size;

	guint64 gd_entries;
	guint32 *gd;
	VmdkGtSlot gt_cache[VMDK_GT_CACHE];
	guint next_slot;

	guint64 *budget;
	guint64 charged;

	/* The last decompressed grain: callers read a grain in several pieces. */
	guint8 *grain_buf;
	guint64 grain_cached; /* grain index, G_MAXUINT64 if none */
	guint8 *zbuf;
	gsize zbuf_len;
};

gboolean
vmdk_pread_exact (const VmiFileRange *file, void *buf, gsize len, guint64 offset, const char *what,
		  GError **error)
{
	g_autoptr(GError) local_error = NULL;
	gsize got = 0;

	/* what names a structure ("the grain directory") or an extent file, not the image. */
	if (!vmi_range_pread_upto (file, buf, len, offset, &got, "VMDK file", &local_error)) {
		g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s: ", what);
		return FALSE;
	}
	if (got < len) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%s at offset 0x%" G_GINT64_MODIFIER "x (%" G_GSIZE_FORMAT
			     " bytes) is cut off by the end of the file",
			     what, offset, len);
		return FALSE;
	}
	return TRUE;
}

void
vmdk_sparse_free (VmdkSparse *sp)
{
	if (sp == NULL)
		return;
	for (guint i = 0; i < VMDK_GT_CACHE; i++)
		g_free (sp->gt_cache[i].table);
	if (sp->budget != NULL)
		*sp->budget += sp->charged;
	g_free (sp->gd);
	g_free (sp->grain_buf);
	g_free (sp->zbuf);
	g_free (sp->name);
	g_free (sp);
}

static gboolean
vmdk_sparse_charge (VmdkSparse *sp, guint64 bytes, const char *what, GError **error)
{
	if (bytes > *sp->budget) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "%sthe %s needs %" G_GUINT64_FORMAT " bytes of memory, more than the "
			     "%u bytes of metadata allowed for one image",
			     sp->name, what, bytes, VMDK_METADATA_CAP);
		return FALSE;
	}
	*sp->budget -= bytes;
	sp->charged += bytes;
	return TRUE;
}

/* Reads the footer of a stream whose header says the grain directory is at the end. */
static gboolean
vmdk_sparse_read_footer (VmdkSparse *sp, guint8 *header, GError **error)
{
	guint8 tail[3 * VMDK_SECTOR];
	const guint8 *marker = tail, *footer = tail + VMDK_SECTOR, *eos = tail + 2 * VMDK_SECTOR;
	guint64 at;

	if (sp->file_size < 4 * VMDK_SECTOR) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sthe grain directory is at the end of the stream, but the %" G_GUINT64_FORMAT
			     "-byte file is too short to hold the footer",
			     sp->name, sp->file_size);
		return FALSE;
	}
	at = sp->file_size - sizeof tail;
	if (!vmdk_pread_exact (&sp->file, tail, sizeof tail, at, "the stream footer", error))
		return FALSE;
	if (vmdk_le32 (marker + 8) != 0 || vmdk_le32 (marker + 12) != VMDK_MARKER_FOOTER ||
	    memcmp (footer, VMDK_SPARSE_MAGIC, 4) != 0 || vmdk_le64 (eos) != 0 ||
	    vmdk_le32 (eos + 8) != 0 || vmdk_le32 (eos + 12) != VMDK_MARKER_EOS) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sthe grain directory is at the end of the stream, but there is no "
			     "footer and end-of-stream marker at offset 0x%" G_GINT64_MODIFIER "x "
			     "(a truncated streamOptimized file?)",
			     sp->name, at);
		return FALSE;
	}
	memcpy (header, footer, VMDK_SECTOR);
	return TRUE;
}

static gboolean
vmdk_sparse_parse_header (VmdkSparse *sp, const guint8 *h, GError **error)
{
	guint64 grain_sectors = vmdk_le64 (h + VMDK_HDR_GRAIN_SIZE);
	guint64 capacity = vmdk_le64 (h + VMDK_HDR_CAPACITY);
	guint16 compress = vmdk_le16 (h + VMDK_HDR_COMPRESS);
	guint64 overhead = vmdk_le64 (h + VMDK_HDR_OVERHEAD);

	sp->version = vmdk_le32 (h + VMDK_HDR_VERSION);
	sp->flags = vmdk_le32 (h + VMDK_HDR_FLAGS);
	if (sp->version < 1 || sp->version > 3) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "%sVMDK sparse extent version %u is not supported (1 to 3 are)",
			     sp->name, sp->version);
		return FALSE;
	}
	if (compress != VMDK_COMPRESSION_NONE && compress != VMDK_COMPRESSION_DEFLATE) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "%scompression algorithm %u is not supported (only deflate, 1)",
			     sp->name, compress);
		return FALSE;
	}
	sp->compressed = compress == VMDK_COMPRESSION_DEFLATE;
	sp->markers = (sp->flags & VMDK_FLAG_MARKERS) != 0;
	sp->zero_grain = (sp->flags & VMDK_FLAG_ZERO_GRAIN) != 0;

	if (grain_sectors == 0 || (grain_sectors & (grain_sectors - 1)) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sthe grain size of %" G_GUINT64_FORMAT " sectors is not a power of two",
			     sp->name, grain_sectors);
		return FALSE;
	}
	if (grain_sectors > VMDK_MAX_GRAIN_SIZE / VMDK_SECTOR) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "%sthe grain size of %" G_GUINT64_FORMAT " sectors is larger than the "
			     "%u bytes this reader supports",
			     sp->name, grain_sectors, VMDK_MAX_GRAIN_SIZE);
		return FALSE;
	}
	sp->grain_bytes = (guint32) grain_sectors * VMDK_SECTOR;

	sp->num_gtes = vmdk_le32 (h + VMDK_HDR_NUM_GTES);
	if (sp->num_gtes == 0 || sp->num_gtes > VMDK_MAX_GTES) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%s%u entries per grain table is absurd (VMware writes 512, at most %u "
			     "are accepted)",
			     sp->name, sp->num_gtes, VMDK_MAX_GTES);
		return FALSE;
	}
	sp->gt_span = (guint64) sp->grain_bytes * sp->num_gtes;

	if (capacity > VMDK_MAX_VIRTUAL_SIZE / VMDK_SECTOR) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sthe capacity of %" G_GUINT64_FORMAT " sectors is absurd (more than "
			     "64 TiB)",
			     sp->name, capacity);
		return FALSE;
	}
	sp->capacity = capacity * VMDK_SECTOR;

	sp->desc_offset = vmdk_le64 (h + VMDK_HDR_DESC_OFFSET);
	sp->desc_size = vmdk_le64 (h + VMDK_HDR_DESC_SIZE);
	if (sp->desc_offset != 0 && sp->desc_size != 0) {
		guint64 end;

		if (sp->desc_size > VMDK_MAX_DESCRIPTOR / VMDK_SECTOR) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "%sthe embedded descriptor of %" G_GUINT64_FORMAT " sectors is "
				     "larger than the %u bytes a descriptor may have",
				     sp->name, sp->desc_size, VMDK_MAX_DESCRIPTOR);
			return FALSE;
		}
		if (sp->desc_offset > G_MAXUINT64 / VMDK_SECTOR ||
		    !g_uint64_checked_add (&end, sp->desc_offset * VMDK_SECTOR,
					   sp->desc_size * VMDK_SECTOR) ||
		    end > sp->file_size) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "%sthe embedded descriptor at sector %" G_GUINT64_FORMAT
				     " lies beyond the end of the %" G_GUINT64_FORMAT "-byte file",
				     sp->name, sp->desc_offset, sp->file_size);
			return FALSE;
		}
		sp->desc_offset *= VMDK_SECTOR;
		sp->desc_size *= VMDK_SECTOR;
	} else {
		sp->desc_offset = sp->desc_size = 0;
	}

	/* Last: damage to the fields above says more about a file than these four bytes do. */
	if ((sp->flags & VMDK_FLAG_NL_DETECT) != 0 &&
	    memcmp (h + VMDK_HDR_NL_CHECK, "\n \r\n", 4) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sthe header's newline check bytes are damaged (was the file copied "
			     "in text mode?)",
			     sp->name);
		return FALSE;
	}
	if (overhead > sp->file_size / VMDK_SECTOR) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sthe header says grains start at sector %" G_GUINT64_FORMAT
			     ", beyond the end of the %" G_GUINT64_FORMAT "-byte file (truncated?)",
			     sp->name, overhead, sp->file_size);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vmdk_sparse_load_gd (VmdkSparse *sp, guint64 gd_sector, GError **error)
{
	guint64 gd_bytes, gd_offset, end;
	g_autofree guint8 *raw = NULL;

	sp->gd_entries = sp->capacity / sp->gt_span + (sp->capacity % sp->gt_span != 0);
	if (sp->gd_entries == 0)
		return TRUE;
	gd_bytes = sp->gd_entries * 4;
	if (!vmdk_sparse_charge (sp, gd_bytes, "grain directory", error))
		return FALSE;
	if (gd_sector == 0 || gd_sector > G_MAXUINT64 / VMDK_SECTOR ||
	    !g_uint64_checked_add (&end, gd_sector * VMDK_SECTOR, gd_bytes) ||
	    end > sp->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sthe grain directory at sector %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT
			     " bytes) lies beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     sp->name, gd_sector, gd_bytes, sp->file_size);
		return FALSE;
	}
	gd_offset = gd_sector * VMDK_SECTOR;
	raw = g_malloc (gd_bytes);
	if (!vmdk_pread_exact (&sp->file, raw, gd_bytes, gd_offset, "the grain directory", error))
		return FALSE;
	sp->gd = g_new (guint32, sp->gd_entries);
	for (guint64 i = 0; i < sp->gd_entries; i++) {
		guint64 gt = vmdk_le32 (raw + 4 * i);

		sp->gd[i] = (guint32) gt;
		if (gt != 0 && gt * VMDK_SECTOR + (guint64) sp->num_gtes * 4 > sp->file_size) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "%sgrain table %" G_GUINT64_FORMAT " at offset 0x%" G_GINT64_MODIFIER
				     "x lies beyond the end of the %" G_GUINT64_FORMAT "-byte file",
				     sp->name, i, gt * VMDK_SECTOR, sp->file_size);
			return FALSE;
		}
	}
	return TRUE;
}

VmdkSparse *
vmdk_sparse_open (const VmiFileRange *file, const char *name, guint64 *budget, GError **error)
{
	g_autoptr(VmdkSparse) sp = g_new0 (VmdkSparse, 1);
	guint64 file_size = file->size;
	guint8 header[VMDK_SECTOR];
	guint64 gd_sector;

	sp->file = *file;
	sp->file_size = file_size;
	/* Messages start with it: nothing for the image itself, the file name for an extent. */
	sp->name = name != NULL ? g_strdup_printf ("extent file '%s': ", name) : g_strdup ("");
	sp->budget = budget;
	sp->grain_cached = G_MAXUINT64;
	for (guint i = 0; i < VMDK_GT_CACHE; i++)
		sp->gt_cache[i].index = G_MAXUINT64;

	if (file_size < VMDK_SECTOR) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sthe %" G_GUINT64_FORMAT "-byte file is too short for the 512-byte "
			     "VMDK sparse header",
			     sp->name, file_size);
		return NULL;
	}
	if (!vmdk_pread_exact (&sp->file, header, sizeof header, 0, "the sparse header", error))
		return NULL;
	if (memcmp (header, VMDK_COWD_MAGIC, 4) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "%sESX 'COWD' sparse extents (vmfsSparse snapshots) are not supported",
			     sp->name);
		return NULL;
	}
	if (memcmp (header, VMDK_SPARSE_MAGIC, 4) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sthis is not a VMDK sparse extent (it does not start with 'KDMV')",
			     sp->name);
		return NULL;
	}
	gd_sector = vmdk_le64 (header + VMDK_HDR_GD_OFFSET);
	if (gd_sector == VMDK_GD_AT_END) {
		if (!vmdk_sparse_read_footer (sp, header, error))
			return NULL;
		gd_sector = vmdk_le64 (header + VMDK_HDR_GD_OFFSET);
		if (gd_sector == VMDK_GD_AT_END) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "%sthe stream footer does not say where the grain directory is",
				     sp->name);
			return NULL;
		}
	}
	if (!vmdk_sparse_parse_header (sp, header, error))
		return NULL;
	/* The redundant directory (rgdOffset) is only a backup; the primary one is authoritative. */
	if (!vmdk_sparse_load_gd (sp, gd_sector, error))
		return NULL;
	if (!vmdk_sparse_charge (sp, (guint64) VMDK_GT_CACHE * sp->num_gtes * 4, "grain table cache",
				 error))
		return NULL;
	return g_steal_pointer (&sp);
}

void
vmdk_sparse_set_fd (VmdkSparse *sp, int fd)
{
	sp->file.fd = fd;
}

guint64
vmdk_sparse_get_capacity (VmdkSparse *sp)
{
	return sp->capacity;
}

guint32
vmdk_sparse_get_grain_size (VmdkSparse *sp)
{
	return sp->grain_bytes;
}

gboolean
vmdk_sparse_is_compressed (VmdkSparse *sp)
{
	return sp->compressed;
}

guint32
vmdk_sparse_get_version (VmdkSparse *sp)
{
	return sp->version;
}

void
vmdk_sparse_get_descriptor (VmdkSparse *sp, guint64 *offset, guint64 *size)
{
	*offset = sp->desc_offset;
	*size = sp->desc_size;
}

static const guint32 *
vmdk_sparse_get_gt (VmdkSparse *sp, guint64 gd_index, GError **error)
{
	guint64 gt_bytes = (guint64) sp->num_gtes * 4;
	g_autofree guint8 *raw = NULL;
	VmdkGtSlot *slot;

	for (guint i = 0; i < VMDK_GT_CACHE; i++) {
		if (sp->gt_cache[i].index == gd_index)
			return sp->gt_cache[i].table;
	}
	raw = g_malloc (gt_bytes);
	if (!vmdk_pread_exact (&sp->file, raw, gt_bytes, (guint64) sp->gd[gd_index] * VMDK_SECTOR,
			       "a grain table", error))
		return NULL;
	slot = &sp->gt_cache[sp->next_slot];
	sp->next_slot = (sp->next_slot + 1) % VMDK_GT_CACHE;
	if (slot->table == NULL)
		slot->table = g_new (guint32, sp->num_gtes);
	for (guint i = 0; i < sp->num_gtes; i++)
		slot->table[i] = vmdk_le32 (raw + 4 * i);
	slot->index = gd_index;
	return slot->table;
}

/* What grain `grain` is, and for data its sector in the file. */
static gboolean
vmdk_sparse_lookup (VmdkSparse *sp, guint64 grain, VmdkGrainKind *kind, guint64 *sector,
		    GError **error)
{
	guint64 gd_index = grain / sp->num_gtes;
	const guint32 *gt;
	guint32 gte;

	*kind = VMDK_GRAIN_HOLE;
	if (gd_index >= sp->gd_entries || sp->gd[gd_index] == 0)
		return TRUE;
	gt = vmdk_sparse_get_gt (sp, gd_index, error);
	if (gt == NULL)
		return FALSE;
	gte = gt[grain % sp->num_gtes];
	if (gte == 0)
		return TRUE;
	if (gte == VMDK_GTE_ZEROED && sp->zero_grain) {
		*kind = VMDK_GRAIN_ZERO;
		return TRUE;
	}
	if ((guint64) gte * VMDK_SECTOR >= sp->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sgrain %" G_GUINT64_FORMAT " (virtual offset 0x%" G_GINT64_MODIFIER
			     "x) at offset 0x%" G_GINT64_MODIFIER "x lies beyond the end of the %"
			     G_GUINT64_FORMAT "-byte file",
			     sp->name, grain, grain * sp->grain_bytes, (guint64) gte * VMDK_SECTOR,
			     sp->file_size);
		return FALSE;
	}
	*kind = VMDK_GRAIN_DATA;
	*sector = gte;
	return TRUE;
}

static gboolean
vmdk_sparse_inflate (VmdkSparse *sp, guint64 grain, guint64 sector, GError **error)
{
	guint64 at = sector * VMDK_SECTOR;
	guint64 avail = sp->file_size - at;
	guint64 max_in = compressBound (sp->grain_bytes) + VMDK_SECTOR;
	guint64 size;
	z_stream zs = { 0 };
	int zret;

	if (sp->grain_buf == NULL) {
		sp->grain_buf = g_malloc (sp->grain_bytes);
		sp->zbuf_len = (gsize) max_in;
		sp->zbuf = g_malloc (sp->zbuf_len);
	}
	sp->grain_cached = G_MAXUINT64;
	if (sp->markers) {
		guint8 marker[VMDK_GRAIN_MARKER_SIZE];

		if (!vmdk_pread_exact (&sp->file, marker, sizeof marker, at, "a grain marker", error))
			return FALSE;
		size = vmdk_le32 (marker + 8);
		at += VMDK_GRAIN_MARKER_SIZE;
		avail -= MIN (avail, VMDK_GRAIN_MARKER_SIZE);
		if (size == 0 || size > max_in || size > avail) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "%sthe compressed grain %" G_GUINT64_FORMAT " at offset 0x%"
				     G_GINT64_MODIFIER "x claims %" G_GUINT64_FORMAT " bytes, which %s",
				     sp->name, grain, at - VMDK_GRAIN_MARKER_SIZE, size,
				     size == 0 ? "is a metadata marker, not a grain"
				     : size > max_in ? "is more than a grain can compress to"
						     : "runs past the end of the file");
			return FALSE;
		}
	} else {
		size = MIN (avail, max_in);
	}
	if (!vmdk_pread_exact (&sp->file, sp->zbuf, size, at, "a compressed grain", error))
		return FALSE;

	if (inflateInit (&zs) != Z_OK) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_FAILED, "cannot start zlib");
		return FALSE;
	}
	zs.next_in = sp->zbuf;
	zs.avail_in = (uInt) size;
	zs.next_out = sp->grain_buf;
	zs.avail_out = sp->grain_bytes;
	zret = inflate (&zs, Z_FINISH);
	inflateEnd (&zs);
	if (zret != Z_STREAM_END) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "%sthe compressed grain %" G_GUINT64_FORMAT " (virtual offset 0x%"
			     G_GINT64_MODIFIER "x) at offset 0x%" G_GINT64_MODIFIER "x is not valid "
			     "deflate data%s",
			     sp->name, grain, grain * sp->grain_bytes, at,
			     zs.avail_out == 0 ? " (it inflates to more than a grain)" : "");
		return FALSE;
	}
	/* The last grain of a disk may be stored short. */
	memset (sp->grain_buf + (sp->grain_bytes - zs.avail_out), 0, zs.avail_out);
	sp->grain_cached = grain;
	return TRUE;
}

gboolean
vmdk_sparse_read (VmdkSparse *sp, guint64 offset, guint8 *buf, gsize len, GError **error)
{
	while (len > 0) {
		guint64 grain = offset / sp->grain_bytes;
		guint32 in_grain = (guint32) (offset % sp->grain_bytes);
		gsize n = MIN (len, (gsize) (sp->grain_bytes - in_grain));
		VmdkGrainKind kind = VMDK_GRAIN_HOLE;
		guint64 sector = 0;

		if (offset < sp->capacity && !vmdk_sparse_lookup (sp, grain, &kind, &sector, error))
			return FALSE;
		if (kind != VMDK_GRAIN_DATA) {
			memset (buf, 0, n);
		} else if (sp->compressed) {
			if (sp->grain_cached != grain &&
			    !vmdk_sparse_inflate (sp, grain, sector, error))
				return FALSE;
			memcpy (buf, sp->grain_buf + in_grain, n);
		} else {
			guint64 at = sector * VMDK_SECTOR + in_grain;
			gsize in_file = at >= sp->file_size ? 0 : (gsize) MIN (n, sp->file_size - at);

			/* A last grain cut short by the end of the file reads as zeros there. */
			if (in_file > 0 && !vmdk_pread_exact (&sp->file, buf, in_file, at, "a grain", error))
				return FALSE;
			memset (buf + in_file, 0, n - in_file);
		}
		buf += n;
		offset += n;
		len -= n;
	}
	return TRUE;
}

gboolean
vmdk_sparse_block_status (VmdkSparse *sp, guint64 offset, guint64 max_length, VmiExtent *extent,
			  GError **error)
{
	guint64 grain = offset / sp->grain_bytes;
	guint64 end, limit;
	VmdkGrainKind first = VMDK_GRAIN_HOLE;
	guint64 sector;

	if (!g_uint64_checked_add (&limit, offset, max_length))
		limit = G_MAXUINT64;
	if (offset >= sp->capacity) {
		extent->kind = VMI_EXTENT_HOLE;
		extent->length = max_length;
		return TRUE;
	}
	if (!vmdk_sparse_lookup (sp, grain, &first, &sector, error))
		return FALSE;
	end = (grain + 1) * sp->grain_bytes;
	for (guint n = 0; n < VMDK_STATUS_MAX_GRAINS && end < limit && end < sp->capacity; n++) {
		guint64 next = end / sp->grain_bytes;
		guint64 gd_index = next / sp->num_gtes;
		VmdkGrainKind kind;

		/* A missing grain table is a hole as wide as the table. */
		if (first == VMDK_GRAIN_HOLE && gd_index < sp->gd_entries && sp->gd[gd_index] == 0 &&
		    next % sp->num_gtes == 0) {
			end += sp->gt_span;
			continue;
		}
		if (!vmdk_sparse_lookup (sp, next, &kind, &sector, error))
			return FALSE;
		if (kind != first)
			break;
		end += sp->grain_bytes;
	}
	if (end >= sp->capacity && first == VMDK_GRAIN_HOLE)
		end = limit; /* holes run on past the capacity */
	extent->kind = first == VMDK_GRAIN_DATA ? VMI_EXTENT_DATA
		       : first == VMDK_GRAIN_ZERO ? VMI_EXTENT_ZERO
						  : VMI_EXTENT_HOLE;
	extent->length = MIN (end, limit) - offset;
	return TRUE;
}
