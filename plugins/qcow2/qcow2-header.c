/*
 * qcow2 reader, part 1: the header, its extensions, the snapshot table and the bitmap
 * directory. Everything here runs once at open and treats every field as hostile.
 *
 * Metadata memory is bounded, and nothing is allocated before the file is known to hold it:
 * - the L1 entries the virtual size needs: at most QCOW2_MAX_L1_BYTES (32 MiB), qemu's own
 *   limit, so every image qemu makes opens;
 * - the L2 cache: at most QCOW2_L2_CACHE_BYTES (8 MiB; 16 tables of 64 KiB, 4 of 2 MiB);
 * - for compressed clusters, 3 x cluster size (6 MiB with 2 MiB clusters), on first use;
 * - the snapshot and bitmap listings, QCOW2_LIST_BYTES (1 MiB) each, plus GVariant overhead;
 * - during open only, the first cluster (at most 2 MiB).
 * So at most about 50 MiB with 2 MiB clusters and a 32 MiB L1 table; a usual image (64 KiB
 * clusters, a few GiB) needs a few MiB. The virtual size is reported exactly as the header
 * says; qemu 7.2 rounds it down to a multiple of 512, which only a hand-made image shows.
 */
#define G_LOG_DOMAIN "vmimaged-qcow2"

#include <string.h>

#include "qcow2-reader.h"

#define HEX G_GINT64_MODIFIER "x"

static gboolean G_GNUC_PRINTF (3, 4)
fail (GError **error, int code, const char *format, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start (ap, format);
	msg = g_strdup_vprintf (format, ap);
	va_end (ap);
	g_set_error_literal (error, VMI_ERROR, code, msg);
	return FALSE;
}

/*
 * Checks that a table of count entries of entry_size bytes at offset is cluster aligned and lies
 * inside the file. what names the table in messages.
 */
static gboolean
check_table (Qcow2Reader *r, const char *what, guint64 offset, guint64 count, guint64 entry_size,
	     GError **error)
{
	guint64 bytes, end;

	if (count == 0)
		return TRUE;
	if (!g_uint64_checked_mul (&bytes, count, entry_size) ||
	    !g_uint64_checked_add (&end, offset, bytes))
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The %s at offset 0x%" HEX " with %" G_GUINT64_FORMAT
				" entries does not fit in 64 bits",
				what, offset, count);
	if (offset == 0)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
			     "The %s has %" G_GUINT64_FORMAT " entries but its offset is 0, where the "
			     "header is",
			     what, count);
	if ((offset & (r->cluster_size - 1)) != 0)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The %s offset 0x%" HEX " is not aligned to the %u-byte cluster size",
				what, offset, r->cluster_size);
	if (end > r->file_size)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The %s at offset 0x%" HEX " (%" G_GUINT64_FORMAT
				" bytes) lies beyond the end of the %" G_GUINT64_FORMAT "-byte file",
				what, offset, bytes, r->file_size);
	return TRUE;
}

static gboolean
read_exact (Qcow2Reader *r, void *buf, gsize len, guint64 offset, const char *what, GError **error)
{
	gsize got = 0;

	if (!qcow2_pread (&r->file, buf, len, offset, &got, what, error))
		return FALSE;
	if (got != len)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The %s at offset 0x%" HEX " (%" G_GSIZE_FORMAT
				" bytes) lies beyond the end of the %" G_GUINT64_FORMAT "-byte file",
				what, offset, len, r->file_size);
	return TRUE;
}

/* Names of feature bits from the feature name table, for messages about unknown features. */
typedef struct {
	char names[3][64][47];
} Qcow2FeatureNames;

static gboolean
parse_extensions (Qcow2Reader *r, const guint8 *cluster, gsize end, Qcow2FeatureNames *names,
		  GError **error)
{
	gsize pos = r->header_length;

	/* Each extension is at least 8 bytes, so this loop runs at most end / 8 times. */
	while (pos + 8 <= end) {
		guint32 type = qcow2_be32 (cluster + pos);
		guint32 len = qcow2_be32 (cluster + pos + 4);
		const guint8 *data = cluster + pos + 8;
		gsize padded;

		if (type == QCOW2_EXT_END)
			return TRUE;
		if (len > end - pos - 8)
			return fail (error, VMI_ERROR_CORRUPT_IMAGE,
					"Header extension 0x%08x at offset 0x%" G_GSIZE_MODIFIER
					"x is %u bytes long and runs past the header area (%" G_GSIZE_FORMAT
					" bytes)",
					type, pos, len, end);
		switch (type) {
		case QCOW2_EXT_BACKING_FORMAT:
			g_free (r->backing_format);
			r->backing_format = g_utf8_make_valid ((const char *) data, MIN (len, 1023u));
			break;
		case QCOW2_EXT_DATA_FILE:
			g_free (r->data_file);
			r->data_file = g_utf8_make_valid ((const char *) data, MIN (len, 4096u));
			break;
		case QCOW2_EXT_FEATURE_TABLE:
			for (guint32 i = 0; i + 48 <= len; i += 48) {
				guint8 kind = data[i], bit = data[i + 1];

				if (kind < 3 && bit < 64) {
					memcpy (names->names[kind][bit], data + i + 2, 46);
					names->names[kind][bit][46] = '\0';
				}
			}
			break;
		case QCOW2_EXT_CRYPTO:
			if (len < 16)
				return fail (error, VMI_ERROR_CORRUPT_IMAGE,
						"The encryption header extension is %u bytes long, not 16",
						len);
			r->crypto_offset = qcow2_be64 (data);
			r->crypto_length = qcow2_be64 (data + 8);
			r->has_crypto_ext = TRUE;
			break;
		case QCOW2_EXT_BITMAPS:
			if (len < 24)
				return fail (error, VMI_ERROR_CORRUPT_IMAGE,
						"The bitmaps header extension is %u bytes long, not 24",
						len);
			r->nb_bitmaps = qcow2_be32 (data);
			r->bitmap_dir_size = qcow2_be64 (data + 8);
			r->bitmap_dir_offset = qcow2_be64 (data + 16);
			r->has_bitmaps_ext = TRUE;
			break;
		default:
			/* Unknown extensions may be skipped: that is the rule of the format. */
			break;
		}
		padded = ((gsize) len + 7) & ~(gsize) 7;
		if (padded > end - pos - 8)
			return TRUE; /* the padding of the last extension may be cut by the end */
		pos += 8 + padded;
	}
	return TRUE;
}

static char *
feature_name (const Qcow2FeatureNames *names, guint kind, guint bit)
{
	if (names->names[kind][bit][0] == '\0')
		return g_strdup_printf ("bit %u", bit);
	g_autofree char *valid = g_utf8_make_valid (names->names[kind][bit], -1);

	return g_strdup_printf ("bit %u, \"%s\"", bit, valid);
}

/* The snapshot table: listed up to QCOW2_MAX_LISTED_SNAPSHOTS entries and QCOW2_LIST_BYTES. */
static gboolean
parse_snapshots (Qcow2Reader *r, GError **error)
{
	GVariantBuilder list;
	guint64 pos = r->snapshots_offset;
	gsize listed_bytes = 0;

	if (r->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The image claims %u snapshots; qcow2 allows at most %u",
				r->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
	if (r->nb_snapshots == 0)
		return TRUE;
	/* Each entry is at least 40 bytes. */
	if (!check_table (r, "snapshot table", r->snapshots_offset, r->nb_snapshots, 40, error))
		return FALSE;

	g_variant_builder_init (&list, G_VARIANT_TYPE ("aa{sv}"));
	for (guint32 i = 0; i < r->nb_snapshots && i < QCOW2_MAX_LISTED_SNAPSHOTS; i++) {
		guint8 fixed[40];
		guint8 extra[24] = { 0 };
		guint32 id_len, name_len, extra_len;
		guint64 vm_state, entry_len;
		g_autofree char *id = NULL;
		g_autofree char *name = NULL;
		GVariantDict dict;

		if (!read_exact (r, fixed, sizeof fixed, pos, "snapshot table entry", error)) {
			g_variant_builder_clear (&list);
			return FALSE;
		}
		id_len = qcow2_be16 (fixed + 12);
		name_len = qcow2_be16 (fixed + 14);
		extra_len = qcow2_be32 (fixed + 36);
		if (extra_len > QCOW2_MAX_SNAPSHOT_EXTRA_DATA) {
			g_variant_builder_clear (&list);
			return fail (error, VMI_ERROR_CORRUPT_IMAGE,
					"Snapshot table entry %u at offset 0x%" HEX
					" has %u bytes of extra data; at most %u are allowed",
					i, pos, extra_len, QCOW2_MAX_SNAPSHOT_EXTRA_DATA);
		}
		listed_bytes += 64 + id_len + name_len;
		if (listed_bytes > QCOW2_LIST_BYTES)
			break;
		id = g_malloc (id_len + 1u);
		name = g_malloc (name_len + 1u);
		if (!read_exact (r, extra, MIN (extra_len, sizeof extra), pos + 40,
				 "snapshot extra data", error) ||
		    !read_exact (r, id, id_len, pos + 40 + extra_len, "snapshot ID", error) ||
		    !read_exact (r, name, name_len, pos + 40 + extra_len + id_len, "snapshot name",
				 error)) {
			g_variant_builder_clear (&list);
			return FALSE;
		}
		id[id_len] = '\0';
		name[name_len] = '\0';
		vm_state = extra_len >= 8 ? qcow2_be64 (extra) : qcow2_be32 (fixed + 32);

		g_variant_dict_init (&dict, NULL);
		g_variant_dict_insert_value (&dict, "id",
					     g_variant_new_take_string (g_utf8_make_valid (id, id_len)));
		g_variant_dict_insert_value (
			&dict, "name", g_variant_new_take_string (g_utf8_make_valid (name, name_len)));
		g_variant_dict_insert (&dict, "vm-state-size", "t", vm_state);
		g_variant_dict_insert (&dict, "date-sec", "t", (guint64) qcow2_be32 (fixed + 16));
		g_variant_dict_insert (&dict, "date-nsec", "t", (guint64) qcow2_be32 (fixed + 20));
		/* qemu-img splits the guest clock as it splits the date. */
		g_variant_dict_insert (&dict, "vm-clock-sec", "t", qcow2_be64 (fixed + 24) / 1000000000u);
		g_variant_dict_insert (&dict, "vm-clock-nsec", "t", qcow2_be64 (fixed + 24) % 1000000000u);
		if (extra_len >= 16)
			g_variant_dict_insert (&dict, "disk-size", "t", qcow2_be64 (extra + 8));
		if (extra_len >= 24)
			g_variant_dict_insert (&dict, "icount", "t", qcow2_be64 (extra + 16));
		g_variant_builder_add_value (&list, g_variant_dict_end (&dict));

		entry_len = (40ull + extra_len + id_len + name_len + 7) & ~7ull;
		pos += entry_len; /* pos < file size and entry_len < 2^18: cannot overflow */
	}
	r->snapshots = g_variant_ref_sink (g_variant_builder_end (&list));
	return TRUE;
}

/* The bitmap directory: listed with qemu's names when it is at most QCOW2_LIST_BYTES. */
static gboolean
parse_bitmaps (Qcow2Reader *r, GError **error)
{
	g_autofree guint8 *dir = NULL;
	GVariantBuilder list;
	gsize pos = 0;

	/* Without the autoclear bit a program that knows no bitmaps wrote the image last. */
	if (!r->has_bitmaps_ext || (r->autoclear & QCOW2_AUTOCLEAR_BITMAPS) == 0)
		return TRUE;
	if (r->nb_bitmaps > QCOW2_MAX_BITMAPS)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The image claims %u bitmaps; qcow2 allows at most %u", r->nb_bitmaps,
				QCOW2_MAX_BITMAPS);
	if (!check_table (r, "bitmap directory", r->bitmap_dir_offset, r->bitmap_dir_size, 1, error))
		return FALSE;
	if (r->bitmap_dir_size > QCOW2_LIST_BYTES)
		return TRUE; /* valid, but too big to list: only the count is reported */

	dir = g_malloc (MAX (r->bitmap_dir_size, 1));
	if (!read_exact (r, dir, r->bitmap_dir_size, r->bitmap_dir_offset, "bitmap directory", error))
		return FALSE;
	g_variant_builder_init (&list, G_VARIANT_TYPE ("aa{sv}"));
	for (guint32 i = 0; i < r->nb_bitmaps; i++) {
		GVariantBuilder flags;
		GVariantDict dict;
		guint32 flag_bits, extra_len, name_len;
		guint64 entry_len;
		g_autofree char *name = NULL;

		if (r->bitmap_dir_size - pos < 24) {
			g_variant_builder_clear (&list);
			return fail (error, VMI_ERROR_CORRUPT_IMAGE,
					"Bitmap directory entry %u runs past the %" G_GUINT64_FORMAT
					"-byte bitmap directory",
					i, r->bitmap_dir_size);
		}
		flag_bits = qcow2_be32 (dir + pos + 12);
		name_len = qcow2_be16 (dir + pos + 18);
		extra_len = qcow2_be32 (dir + pos + 20);
		entry_len = (24ull + extra_len + name_len + 7) & ~7ull;
		if (entry_len > r->bitmap_dir_size - pos) {
			g_variant_builder_clear (&list);
			return fail (error, VMI_ERROR_CORRUPT_IMAGE,
					"Bitmap directory entry %u runs past the %" G_GUINT64_FORMAT
					"-byte bitmap directory",
					i, r->bitmap_dir_size);
		}
		name = g_utf8_make_valid ((const char *) dir + pos + 24 + extra_len, name_len);
		g_variant_builder_init (&flags, G_VARIANT_TYPE ("as"));
		if (flag_bits & 1u)
			g_variant_builder_add (&flags, "s", "in-use");
		if (flag_bits & 2u)
			g_variant_builder_add (&flags, "s", "auto");
		g_variant_dict_init (&dict, NULL);
		g_variant_dict_insert (&dict, "name", "s", name);
		g_variant_dict_insert (&dict, "granularity", "t",
				       dir[pos + 17] < 64 ? G_GUINT64_CONSTANT (1) << dir[pos + 17] : 0);
		g_variant_dict_insert_value (&dict, "flags", g_variant_builder_end (&flags));
		g_variant_builder_add_value (&list, g_variant_dict_end (&dict));
		pos += entry_len;
	}
	r->bitmaps = g_variant_ref_sink (g_variant_builder_end (&list));
	return TRUE;
}

static gboolean
parse_backing_file (Qcow2Reader *r, const guint8 *cluster, gsize cluster_len, guint64 offset,
		    guint32 size, GError **error)
{
	if (offset == 0 || size == 0)
		return TRUE;
	if (size > QCOW2_MAX_BACKING_FILE_NAME)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The backing file name is %u bytes long; at most %u are allowed", size,
				QCOW2_MAX_BACKING_FILE_NAME);
	if (offset >= cluster_len || size > cluster_len - offset)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The backing file name at offset 0x%" HEX " (%u bytes) lies outside the "
				"first cluster of the image",
				offset, size);
	r->backing_file = g_utf8_make_valid ((const char *) cluster + offset, size);
	return TRUE;
}

/* The fixed part of the header, and every check that needs no other part of the file. */
static gboolean
parse_header (Qcow2Reader *r, const guint8 *h, gsize h_len, GError **error)
{
	guint32 cluster_bits;

	if (h_len < QCOW2_V2_HEADER_LENGTH)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The file is %" G_GUINT64_FORMAT " bytes long, too short for a qcow2 "
				"header (%u bytes)",
				r->file_size, QCOW2_V2_HEADER_LENGTH);
	if (qcow2_be32 (h) != QCOW2_MAGIC)
		return fail (error, VMI_ERROR_UNKNOWN_FORMAT,
				"The file does not start with the qcow2 magic \"QFI\\xfb\"");
	r->version = qcow2_be32 (h + QCOW2_HDR_VERSION);
	if (r->version == 1)
		return fail (error, VMI_ERROR_NOT_SUPPORTED,
				"The image is a qcow version 1 image (the original qcow format), which "
				"is not supported; only qcow2 (versions 2 and 3) is");
	if (r->version != 2 && r->version != 3)
		return fail (error, VMI_ERROR_NOT_SUPPORTED,
				"The image has qcow2 version %u; only versions 2 and 3 are supported",
				r->version);
	if (r->version == 3 && h_len < QCOW2_V3_HEADER_LENGTH)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The file is %" G_GUINT64_FORMAT " bytes long, too short for a qcow2 "
				"version 3 header (%u bytes)",
				r->file_size, QCOW2_V3_HEADER_LENGTH);

	cluster_bits = qcow2_be32 (h + QCOW2_HDR_CLUSTER_BITS);
	if (cluster_bits < QCOW2_MIN_CLUSTER_BITS || cluster_bits > 63)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The cluster_bits field is %u; qcow2 clusters are 2^9 (512 bytes) or "
				"larger",
				cluster_bits);
	if (cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return fail (error, VMI_ERROR_NOT_SUPPORTED,
				"The image has clusters of 2^%u bytes; clusters of 512 bytes to 2 MiB "
				"(cluster_bits 9 to 21) are supported, as in qemu",
				cluster_bits);
	r->cluster_bits = cluster_bits;
	r->cluster_size = 1u << cluster_bits;

	r->size = qcow2_be64 (h + QCOW2_HDR_SIZE);
	if (r->size > G_MAXINT64)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The virtual size 0x%" HEX " is larger than 2^63 bytes", r->size);
	r->crypt_method = qcow2_be32 (h + QCOW2_HDR_CRYPT_METHOD);
	if (r->crypt_method > QCOW2_CRYPT_LUKS)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The encryption method is %u; qcow2 defines 0 (none), 1 (AES) and 2 "
				"(LUKS)",
				r->crypt_method);
	r->l1_size = qcow2_be32 (h + QCOW2_HDR_L1_SIZE);
	r->l1_offset = qcow2_be64 (h + QCOW2_HDR_L1_OFFSET);
	r->refcount_table_offset = qcow2_be64 (h + QCOW2_HDR_REFCOUNT_OFFSET);
	r->refcount_table_clusters = qcow2_be32 (h + QCOW2_HDR_REFCOUNT_CLUSTERS);
	r->nb_snapshots = qcow2_be32 (h + QCOW2_HDR_NB_SNAPSHOTS);
	r->snapshots_offset = qcow2_be64 (h + QCOW2_HDR_SNAPSHOTS_OFFSET);

	if (r->version == 2) {
		r->refcount_order = 4;
		r->header_length = QCOW2_V2_HEADER_LENGTH;
		return TRUE;
	}
	r->incompat = qcow2_be64 (h + QCOW2_HDR_INCOMPAT);
	r->compat = qcow2_be64 (h + QCOW2_HDR_COMPAT);
	r->autoclear = qcow2_be64 (h + QCOW2_HDR_AUTOCLEAR);
	r->refcount_order = qcow2_be32 (h + QCOW2_HDR_REFCOUNT_ORDER);
	if (r->refcount_order > 6)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The refcount_order field is %u; refcounts are 2^0 to 2^6 bits wide",
				r->refcount_order);
	r->header_length = qcow2_be32 (h + QCOW2_HDR_HEADER_LENGTH);
	if (r->header_length < QCOW2_V3_HEADER_LENGTH)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The header_length field is %u; a version 3 header is at least %u bytes",
				r->header_length, QCOW2_V3_HEADER_LENGTH);
	if (r->header_length > r->cluster_size)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The header_length field (%u) is larger than the cluster size (%u)",
				r->header_length, r->cluster_size);
	return TRUE;
}

/*
 * After the extensions (whose feature table names unknown bits) and the compression type
 * byte: the feature bits.
 */
static gboolean
check_features (Qcow2Reader *r, const Qcow2FeatureNames *names, GError **error)
{
	guint64 unknown = r->incompat & ~QCOW2_INCOMPAT_KNOWN;

	if (unknown != 0) {
		guint bit = (guint) __builtin_ctzll (unknown);
		g_autofree char *name = feature_name (names, 0, bit);

		return fail (error, VMI_ERROR_NOT_SUPPORTED,
				"The image uses incompatible feature %s, which is not supported "
				"(incompatible_features = 0x%" HEX ")",
				name, r->incompat);
	}
	if (r->compression_type > QCOW2_COMPRESSION_ZSTD)
		return fail (error, VMI_ERROR_NOT_SUPPORTED,
				"The image uses compression type %u; only 0 (zlib) and 1 (zstd) exist",
				r->compression_type);
	if ((r->compression_type != QCOW2_COMPRESSION_ZLIB) !=
	    ((r->incompat & QCOW2_INCOMPAT_COMPRESSION) != 0))
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The compression type (%u) and the compression type feature bit "
				"disagree",
				r->compression_type);
	if (r->version == 2 && r->crypt_method == QCOW2_CRYPT_LUKS)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"LUKS encryption needs qcow2 version 3, but the image is version 2");
	if (r->crypt_method == QCOW2_CRYPT_LUKS && r->has_crypto_ext &&
	    !check_table (r, "LUKS header", r->crypto_offset, r->crypto_length, 1, error))
		return FALSE;
	r->extended_l2 = (r->incompat & QCOW2_INCOMPAT_EXTL2) != 0;
	return TRUE;
}

/* The L1 table: big enough for the virtual size, inside the file, within our memory cap. */
static gboolean
load_l1 (Qcow2Reader *r, GError **error)
{
	guint64 span = (guint64) r->cluster_size * r->l2_entries;
	guint64 needed = r->size / span + (r->size % span != 0);
	g_autofree guint8 *raw = NULL;

	if (needed > r->l1_size)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The L1 table is too small: l1_size is %u, but the virtual size of "
				"%" G_GUINT64_FORMAT " bytes needs %" G_GUINT64_FORMAT " entries",
				r->l1_size, r->size, needed);
	if ((guint64) r->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The L1 table is too large: l1_size %u means %" G_GUINT64_FORMAT
				" bytes, and at most %u are allowed",
				r->l1_size, (guint64) r->l1_size * 8, QCOW2_MAX_L1_BYTES);
	if (!check_table (r, "L1 table", r->l1_offset, r->l1_size, 8, error))
		return FALSE;
	/* Only the entries the virtual disk uses; the rest may hold anything. */
	r->l1_used = (guint32) needed;
	r->l1 = g_new0 (guint64, MAX (needed, 1));
	if (needed == 0)
		return TRUE;
	raw = g_malloc (needed * 8);
	if (!read_exact (r, raw, needed * 8, r->l1_offset, "L1 table", error))
		return FALSE;
	for (guint64 i = 0; i < needed; i++)
		r->l1[i] = qcow2_be64 (raw + i * 8);
	return TRUE;
}

Qcow2Reader *
qcow2_reader_open (const VmiOpenArgs *args, GError **error)
{
	g_autoptr(Qcow2Reader) r = g_new0 (Qcow2Reader, 1);
	g_autofree guint8 *cluster = NULL;
	g_autofree Qcow2FeatureNames *names = g_new0 (Qcow2FeatureNames, 1);
	guint8 head[QCOW2_V3_HEADER_LENGTH_FULL] = { 0 };
	gsize got = 0, cluster_len, ext_end;
	guint64 backing_offset;
	guint32 backing_size;

	if (!vmi_file_range_init (&r->file, args, error))
		return NULL;
	r->file_size = args->file_size;
	if (!qcow2_pread (&r->file, head, sizeof head, 0, &got, "qcow2 header", error))
		return NULL;
	if (got == 0)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
			     "The file is empty: a qcow2 image starts with a header of at least 72 bytes"),
		       NULL;
	if (got < 4)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
			     "The file has only %" G_GSIZE_FORMAT " byte(s), too few for a qcow2 header",
			     got),
		       NULL;
	if (qcow2_be32 (head) != QCOW2_MAGIC)
		return fail (error, VMI_ERROR_UNKNOWN_FORMAT,
				"The file does not start with the qcow2 magic \"QFI\\xfb\""),
		       NULL;
	if (!parse_header (r, head, got, error))
		return NULL;

	/* The header, its extensions and the backing file name all live in the first cluster. */
	cluster_len = (gsize) MIN ((guint64) r->cluster_size, r->file_size);
	cluster = g_malloc (cluster_len);
	if (!qcow2_pread (&r->file, cluster, cluster_len, 0, &got, "first cluster", error))
		return NULL;
	cluster_len = got;
	if (cluster_len < r->header_length)
		return fail (error, VMI_ERROR_CORRUPT_IMAGE,
				"The header is %u bytes long, but the file has only %" G_GSIZE_FORMAT,
				r->header_length, cluster_len),
		       NULL;
	if (r->version == 3 && r->header_length > QCOW2_HDR_COMPRESSION_TYPE)
		r->compression_type = cluster[QCOW2_HDR_COMPRESSION_TYPE];

	backing_offset = qcow2_be64 (cluster + QCOW2_HDR_BACKING_OFFSET);
	backing_size = qcow2_be32 (cluster + QCOW2_HDR_BACKING_SIZE);
	ext_end = cluster_len;
	if (backing_offset != 0 && backing_size != 0 && backing_offset < ext_end) {
		if (backing_offset < r->header_length)
			return fail (error, VMI_ERROR_CORRUPT_IMAGE,
					"The backing file name at offset 0x%" HEX
					" overlaps the %u-byte header",
					backing_offset, r->header_length),
			       NULL;
		ext_end = (gsize) backing_offset;
	}
	/* Version 2 images have extensions too (qemu writes the backing format there). */
	if (!parse_extensions (r, cluster, ext_end, names, error))
		return NULL;
	if (!parse_backing_file (r, cluster, cluster_len, backing_offset, backing_size, error) ||
	    !check_features (r, names, error))
		return NULL;

	r->l2_entry_size = r->extended_l2 ? 16 : 8;
	r->l2_entries = r->cluster_size / r->l2_entry_size;
	r->subcluster_size = r->cluster_size / QCOW2_SUBCLUSTERS;
	r->csize_shift = 62 - (r->cluster_bits - 8);
	r->csize_mask = (1ull << (r->cluster_bits - 8)) - 1;
	r->coffset_mask = (1ull << r->csize_shift) - 1;

	if (!check_table (r, "refcount table", r->refcount_table_offset, r->refcount_table_clusters,
			  r->cluster_size, error) ||
	    !load_l1 (r, error) || !parse_snapshots (r, error) || !parse_bitmaps (r, error))
		return NULL;

	r->l2_slots = (guint) CLAMP (QCOW2_L2_CACHE_BYTES / r->cluster_size, 1, QCOW2_L2_CACHE_MAX);
	return g_steal_pointer (&r);
}

void
qcow2_reader_free (Qcow2Reader *r)
{
	if (r == NULL)
		return;
	for (guint i = 0; i < QCOW2_L2_CACHE_MAX; i++)
		g_free (r->cache[i].data);
	if (r->zstream_ready)
		inflateEnd (&r->zstream);
	g_free (r->cbuf);
	g_free (r->dbuf);
	g_free (r->l1);
	g_free (r->backing_file);
	g_free (r->backing_format);
	g_free (r->data_file);
	g_clear_pointer (&r->snapshots, g_variant_unref);
	g_clear_pointer (&r->bitmaps, g_variant_unref);
	g_free (r);
}
