/*
 * qcow2 reader, part 2: from a guest offset to its cluster (L1 -> L2 -> data), reading,
 * block status and the description of the image.
 *
 * Safety decisions:
 * - The daemon never opens another file on behalf of an image. A backing file or an external
 *   data file is reported in references with an unsafe reason, and never followed.
 * - With a backing file, an unallocated cluster does not read as zeros: its data lives in the
 *   backing file. Reporting it as a hole, or reading it as zeros, would make a conversion
 *   silently produce a different disk. So read and block_status fail with NotSupported on such
 *   a range; allocated and zero clusters of the same image still read. A conversion of an
 *   overlay therefore fails with a clear message instead of producing a wrong disk.
 * - With an external data file every guest byte lives in that file, and with encryption every
 *   allocated byte is ciphertext, so read and block_status fail with NotSupported; get_info
 *   still describes the image.
 * - An image with the corrupt bit set is described and readable (qemu allows read-only use),
 *   but it is reported unsafe.
 * - A data cluster that starts beyond the end of the file is CorruptImage. The part of a
 *   cluster that runs past the end reads as zeros, as in qemu.
 */
#define G_LOG_DOMAIN "vmimaged-qcow2"

#include <string.h>

#include "qcow2-reader.h"

#define HEX G_GINT64_MODIFIER "x"

/* block_status merges at most this many clusters per call, so one call has bounded cost. */
#define QCOW2_STATUS_MAX_STEPS 65536u

typedef enum {
	QCOW2_MAP_HOLE,
	QCOW2_MAP_ZERO,
	QCOW2_MAP_DATA,
	QCOW2_MAP_COMPRESSED,
} Qcow2MapKind;

typedef struct {
	Qcow2MapKind kind;
	guint64 length; /* from the offset, within one cluster (or one L1 entry for holes) */
	guint64 host;	/* DATA: file offset of the byte at the guest offset */
	guint64 entry;	/* COMPRESSED: the L2 entry */
} Qcow2Map;

static const guint8 *
get_l2 (Qcow2Reader *r, guint64 l1_index, guint64 l2_offset, GError **error)
{
	Qcow2L2Slot *slot = NULL;
	gsize got = 0;

	for (guint i = 0; i < r->l2_slots; i++) {
		if (r->cache[i].offset == l2_offset) {
			r->cache[i].stamp = ++r->stamp;
			return r->cache[i].data;
		}
	}
	if ((l2_offset & (r->cluster_size - 1)) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "L1 entry %" G_GUINT64_FORMAT " points to an L2 table at offset 0x%" HEX
			     ", which is not aligned to the %u-byte cluster size",
			     l1_index, l2_offset, r->cluster_size);
		return NULL;
	}
	if (l2_offset > r->file_size || r->file_size - l2_offset < r->cluster_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "L1 entry %" G_GUINT64_FORMAT " points to an L2 table at offset 0x%" HEX
			     ", which lies beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     l1_index, l2_offset, r->file_size);
		return NULL;
	}
	for (guint i = 0; i < r->l2_slots; i++) {
		if (slot == NULL || r->cache[i].stamp < slot->stamp)
			slot = &r->cache[i];
	}
	if (slot->data == NULL)
		slot->data = g_malloc (r->cluster_size);
	slot->offset = 0;
	if (!qcow2_pread (&r->file, slot->data, r->cluster_size, l2_offset, &got, "L2 table", error))
		return NULL;
	if (got != r->cluster_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The L2 table at offset 0x%" HEX " is cut off by the end of the file",
			     l2_offset);
		return NULL;
	}
	slot->offset = l2_offset;
	slot->stamp = ++r->stamp;
	return slot->data;
}

static gboolean
check_data_cluster (Qcow2Reader *r, guint64 guest, guint64 host, GError **error)
{
	if ((host & (r->cluster_size - 1)) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The L2 entry for guest offset 0x%" HEX " points to host offset 0x%" HEX
			     ", which is not aligned to the %u-byte cluster size",
			     guest, host, r->cluster_size);
		return FALSE;
	}
	if (host >= r->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The L2 entry for guest offset 0x%" HEX " points to a data cluster at "
			     "offset 0x%" HEX ", beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     guest, host, r->file_size);
		return FALSE;
	}
	return TRUE;
}

/* What the guest offset maps to, and for how long that stays the same within its cluster. */
static gboolean
map_offset (Qcow2Reader *r, guint64 offset, Qcow2Map *map, GError **error)
{
	guint64 cs = r->cluster_size;
	guint64 span = cs * r->l2_entries;
	guint64 l1_index = offset / span;
	guint64 l2_index = (offset % span) / cs;
	guint64 in_cluster = offset % cs;
	guint64 cluster_start = offset - in_cluster;
	guint64 l2_offset, entry, host, bitmap, alloc, zero;
	const guint8 *l2, *e;
	guint sc, end;
	gboolean sc_alloc, sc_zero;

	memset (map, 0, sizeof *map);
	if (l1_index >= r->l1_used) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "Offset 0x%" HEX " is beyond the virtual disk", offset);
		return FALSE;
	}
	l2_offset = r->l1[l1_index] & QCOW2_OFFSET_MASK;
	if (l2_offset == 0) {
		map->kind = QCOW2_MAP_HOLE;
		map->length = span - offset % span;
		return TRUE;
	}
	l2 = get_l2 (r, l1_index, l2_offset, error);
	if (l2 == NULL)
		return FALSE;
	e = l2 + l2_index * r->l2_entry_size;
	entry = qcow2_be64 (e);
	bitmap = r->extended_l2 ? qcow2_be64 (e + 8) : 0;
	map->length = cs - in_cluster;

	if (entry & QCOW2_OFLAG_COMPRESSED) {
		map->kind = QCOW2_MAP_COMPRESSED;
		map->entry = entry;
		return TRUE;
	}
	host = entry & QCOW2_OFFSET_MASK;
	if (!r->extended_l2) {
		if (entry & QCOW2_OFLAG_ZERO) {
			map->kind = QCOW2_MAP_ZERO;
		} else if (host == 0) {
			map->kind = QCOW2_MAP_HOLE;
		} else {
			if (!check_data_cluster (r, cluster_start, host, error))
				return FALSE;
			map->kind = QCOW2_MAP_DATA;
			map->host = host + in_cluster;
		}
		return TRUE;
	}

	/* Extended L2: 32 subclusters, each allocated, zero or unallocated. */
	alloc = bitmap & 0xffffffffu;
	zero = bitmap >> 32;
	if ((alloc & zero) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The extended L2 entry for guest offset 0x%" HEX " marks subclusters both "
			     "allocated and zero (bitmap 0x%016" G_GINT64_MODIFIER "x)",
			     cluster_start, bitmap);
		return FALSE;
	}
	if (alloc != 0 && host == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The extended L2 entry for guest offset 0x%" HEX " has allocated "
			     "subclusters but no host cluster",
			     cluster_start);
		return FALSE;
	}
	sc = (guint) (in_cluster / r->subcluster_size);
	sc_alloc = (alloc >> sc) & 1;
	sc_zero = (zero >> sc) & 1;
	for (end = sc + 1; end < QCOW2_SUBCLUSTERS; end++) {
		if (((alloc >> end) & 1) != (guint64) sc_alloc || ((zero >> end) & 1) != (guint64) sc_zero)
			break;
	}
	map->length = (guint64) end * r->subcluster_size - in_cluster;
	if (sc_alloc) {
		if (!check_data_cluster (r, cluster_start, host, error))
			return FALSE;
		map->kind = QCOW2_MAP_DATA;
		map->host = host + in_cluster;
	} else {
		map->kind = sc_zero ? QCOW2_MAP_ZERO : QCOW2_MAP_HOLE;
	}
	return TRUE;
}

/* Why no byte of this image can be read, or NULL. */
static gboolean
check_readable (Qcow2Reader *r, GError **error)
{
	if (r->crypt_method != QCOW2_CRYPT_NONE) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "The image is encrypted (%s); reading encrypted qcow2 images is not "
			     "supported",
			     r->crypt_method == QCOW2_CRYPT_LUKS ? "LUKS" : "AES");
		return FALSE;
	}
	if (r->incompat & QCOW2_INCOMPAT_DATA_FILE) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "The image keeps its data in the external data file \"%s\", which is "
			     "never opened; only its metadata can be inspected",
			     r->data_file != NULL ? r->data_file : "(not named in the image)");
		return FALSE;
	}
	return TRUE;
}

static gboolean
hole_error (Qcow2Reader *r, guint64 offset, GError **error)
{
	g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
		     "Guest offset 0x%" HEX " is not allocated in this image, so its data comes from "
		     "the backing file \"%s\", which is never opened",
		     offset, r->backing_file);
	return FALSE;
}

static gboolean
check_range (Qcow2Reader *r, guint64 offset, guint64 len, GError **error)
{
	guint64 end;

	if (!g_uint64_checked_add (&end, offset, len) || end > r->size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "The range at 0x%" HEX " (%" G_GUINT64_FORMAT " bytes) is beyond the "
			     "%" G_GUINT64_FORMAT "-byte virtual disk",
			     offset, len, r->size);
		return FALSE;
	}
	return TRUE;
}

static gboolean
decompress_cluster (Qcow2Reader *r, guint64 guest, guint64 entry, GError **error)
{
	guint64 coffset = entry & r->coffset_mask;
	guint64 nb_sectors = ((entry >> r->csize_shift) & r->csize_mask) + 1;
	guint64 csize = nb_sectors * QCOW2_COMPRESSED_SECTOR - (coffset % QCOW2_COMPRESSED_SECTOR);
	gsize got = 0;
	int ret;

	if (r->dbuf_entry == entry && r->dbuf != NULL)
		return TRUE;
	if (r->compression_type == QCOW2_COMPRESSION_ZSTD) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "The cluster at guest offset 0x%" HEX " is compressed with zstd; only "
			     "zlib-compressed qcow2 clusters can be read",
			     guest);
		return FALSE;
	}
	if (coffset >= r->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The compressed cluster for guest offset 0x%" HEX " at offset 0x%" HEX
			     " lies beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     guest, coffset, r->file_size);
		return FALSE;
	}
	if (r->cbuf == NULL) {
		/* csize_mask has cluster_bits - 8 bits, so csize <= 2 * cluster_size. */
		r->cbuf = g_malloc ((gsize) r->cluster_size * 2);
		r->dbuf = g_malloc (r->cluster_size);
	}
	r->dbuf_entry = 0;
	/* The last sector of the last compressed cluster may be cut short by the end of file. */
	csize = MIN (csize, r->file_size - coffset);
	if (!qcow2_pread (&r->file, r->cbuf, csize, coffset, &got, "compressed cluster", error))
		return FALSE;
	if (!r->zstream_ready) {
		memset (&r->zstream, 0, sizeof r->zstream);
		if (inflateInit2 (&r->zstream, -12) != Z_OK) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "Could not set up zlib");
			return FALSE;
		}
		r->zstream_ready = TRUE;
	} else {
		inflateReset (&r->zstream);
	}
	r->zstream.next_in = r->cbuf;
	r->zstream.avail_in = (uInt) got;
	r->zstream.next_out = r->dbuf;
	r->zstream.avail_out = r->cluster_size;
	ret = inflate (&r->zstream, Z_FINISH);
	/* As qemu: success is a full cluster of output, whether or not the stream ended there. */
	if ((ret != Z_STREAM_END && ret != Z_BUF_ERROR && ret != Z_OK) || r->zstream.avail_out != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The compressed cluster for guest offset 0x%" HEX " at offset 0x%" HEX
			     " (%" G_GUINT64_FORMAT " bytes) does not inflate to a %u-byte cluster: %s",
			     guest, coffset, csize, r->cluster_size,
			     r->zstream.msg != NULL ? r->zstream.msg : "the data ends too early");
		return FALSE;
	}
	r->dbuf_entry = entry;
	return TRUE;
}

/* Data clusters that follow each other in the file are read with one pread. */
typedef struct {
	guint8 *out;
	guint64 host;
	gsize len;
} Qcow2DataRun;

static gboolean
flush_run (Qcow2Reader *r, Qcow2DataRun *run, GError **error)
{
	gsize got = 0;

	if (run->len == 0)
		return TRUE;
	if (!qcow2_pread (&r->file, run->out, run->len, run->host, &got, "data cluster", error))
		return FALSE;
	/* A last cluster cut short by the end of the file reads as zeros there, as in qemu. */
	memset (run->out + got, 0, run->len - got);
	run->len = 0;
	return TRUE;
}

gboolean
qcow2_reader_read (Qcow2Reader *r, guint64 offset, void *buf, gsize len, GError **error)
{
	guint8 *out = buf;
	Qcow2DataRun run = { NULL, 0, 0 };

	if (!check_range (r, offset, len, error) || !check_readable (r, error))
		return FALSE;
	while (len > 0) {
		Qcow2Map map;
		gsize n;

		if (!map_offset (r, offset, &map, error))
			return FALSE;
		n = (gsize) MIN (map.length, (guint64) len);
		if (map.kind != QCOW2_MAP_DATA || map.host != run.host + run.len) {
			if (!flush_run (r, &run, error))
				return FALSE;
		}
		switch (map.kind) {
		case QCOW2_MAP_HOLE:
			if (r->backing_file != NULL)
				return hole_error (r, offset, error);
			memset (out, 0, n);
			break;
		case QCOW2_MAP_ZERO:
			memset (out, 0, n);
			break;
		case QCOW2_MAP_DATA:
			if (run.len == 0) {
				run.out = out;
				run.host = map.host;
			}
			run.len += n;
			break;
		case QCOW2_MAP_COMPRESSED:
			if (!decompress_cluster (r, offset - offset % r->cluster_size, map.entry, error))
				return FALSE;
			memcpy (out, r->dbuf + offset % r->cluster_size, n);
			break;
		default:
			g_assert_not_reached ();
		}
		out += n;
		offset += n;
		len -= n;
	}
	return flush_run (r, &run, error);
}

static VmiExtentKind
extent_kind (Qcow2MapKind kind)
{
	switch (kind) {
	case QCOW2_MAP_HOLE:
		return VMI_EXTENT_HOLE;
	case QCOW2_MAP_ZERO:
		return VMI_EXTENT_ZERO;
	default:
		return VMI_EXTENT_DATA;
	}
}

gboolean
qcow2_reader_block_status (Qcow2Reader *r, guint64 offset, guint64 max_length, VmiExtent *extent,
			   GError **error)
{
	guint64 pos = offset, end;

	if (max_length == 0 || offset >= r->size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "Block status at 0x%" HEX " is outside the %" G_GUINT64_FORMAT
			     "-byte virtual disk",
			     offset, r->size);
		return FALSE;
	}
	if (!check_readable (r, error))
		return FALSE;
	end = offset + MIN (max_length, r->size - offset);
	for (guint steps = 0; pos < end && steps < QCOW2_STATUS_MAX_STEPS; steps++) {
		Qcow2Map map;
		VmiExtentKind kind;

		if (!map_offset (r, pos, &map, error))
			return FALSE;
		kind = extent_kind (map.kind);
		if (pos == offset) {
			if (kind == VMI_EXTENT_HOLE && r->backing_file != NULL)
				return hole_error (r, offset, error);
			extent->kind = kind;
		} else if (kind != extent->kind) {
			break;
		}
		pos += MIN (map.length, end - pos);
	}
	extent->length = pos - offset;
	return TRUE;
}

static void
add_reference (VmiImageInfo *info, const char *path)
{
	for (guint i = 0; i < info->references->len; i++) {
		if (g_strcmp0 (g_ptr_array_index (info->references, i), path) == 0)
			return;
	}
	g_ptr_array_add (info->references, g_strdup (path));
}

gboolean
qcow2_reader_get_info (Qcow2Reader *r, VmiImageInfo *info, GError **error)
{
	GVariantDict *fs = info->format_specific;

	info->virtual_size = r->size;
	info->subformat = r->version == 2 ? "v2" : "v3";
	info->cluster_size = r->cluster_size;

	/* Names and presence as in qemu-img info --output=json (ImageInfoSpecificQCow2). */
	g_variant_dict_insert (fs, "compat", "s", r->version == 2 ? "0.10" : "1.1");
	g_variant_dict_insert (fs, "compression-type", "s",
			       r->compression_type == QCOW2_COMPRESSION_ZSTD ? "zstd" : "zlib");
	g_variant_dict_insert (fs, "refcount-bits", "t", G_GUINT64_CONSTANT (1) << r->refcount_order);
	if (r->version == 3) {
		g_variant_dict_insert (fs, "lazy-refcounts", "b",
				       (r->compat & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0);
		g_variant_dict_insert (fs, "corrupt", "b", (r->incompat & QCOW2_INCOMPAT_CORRUPT) != 0);
		g_variant_dict_insert (fs, "extended-l2", "b", r->extended_l2);
	}
	if (r->incompat & QCOW2_INCOMPAT_DATA_FILE) {
		if (r->data_file != NULL)
			g_variant_dict_insert (fs, "data-file", "s", r->data_file);
		g_variant_dict_insert (fs, "data-file-raw", "b",
				       (r->autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW) != 0);
	}
	if (r->crypt_method != QCOW2_CRYPT_NONE) {
		GVariantDict encrypt;

		g_variant_dict_init (&encrypt, NULL);
		g_variant_dict_insert (&encrypt, "format", "s",
				       r->crypt_method == QCOW2_CRYPT_LUKS ? "luks" : "aes");
		g_variant_dict_insert_value (fs, "encrypt", g_variant_dict_end (&encrypt));
	}
	if (r->bitmaps != NULL)
		g_variant_dict_insert_value (fs, "bitmaps", r->bitmaps);
	/* Not in qemu's format-specific (it lists snapshots beside it), but a fact of the file. */
	g_variant_dict_insert (fs, "dirty-flag", "b", (r->incompat & QCOW2_INCOMPAT_DIRTY) != 0);
	g_variant_dict_insert (fs, "snapshot-count", "t", (guint64) r->nb_snapshots);
	if (r->snapshots != NULL)
		g_variant_dict_insert_value (fs, "snapshots", r->snapshots);

	if (r->backing_file != NULL) {
		add_reference (info, r->backing_file);
		g_ptr_array_add (info->unsafe_reasons,
				 g_strdup_printf ("The image has a backing file \"%s\"%s%s%s: its "
						  "unallocated clusters come from that file, which "
						  "is never opened, so they cannot be read",
						  r->backing_file,
						  r->backing_format != NULL ? " (format " : "",
						  r->backing_format != NULL ? r->backing_format : "",
						  r->backing_format != NULL ? ")" : ""));
	}
	if (r->incompat & QCOW2_INCOMPAT_DATA_FILE) {
		if (r->data_file != NULL)
			add_reference (info, r->data_file);
		g_ptr_array_add (info->unsafe_reasons,
				 g_strdup_printf ("The image keeps its data in the external data file "
						  "\"%s\", which is never opened",
						  r->data_file != NULL ? r->data_file
								       : "(not named in the image)"));
	}
	if (r->incompat & QCOW2_INCOMPAT_CORRUPT)
		g_ptr_array_add (info->unsafe_reasons,
				 g_strdup ("The image has its corrupt bit set: qemu found its "
					   "metadata inconsistent, and its data may be wrong"));
	return TRUE;
}
