#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "vmdk-writer.h"
#include "vmi-compress-pool.h"

#define VMDK_W_GRAIN_SECTORS 128u /* 64 KiB, as qemu and VMware write */
#define VMDK_W_GRAIN_BYTES (VMDK_W_GRAIN_SECTORS * VMDK_SECTOR)
#define VMDK_W_GTES 512u
#define VMDK_W_GT_SECTORS (VMDK_W_GTES * 4u / VMDK_SECTOR)
#define VMDK_W_DESC_SECTOR 1u
#define VMDK_W_DESC_SECTORS 20u
/* Grain table entries hold 32-bit sector numbers: nothing can be placed at or past 2 TiB. */
#define VMDK_W_MAX_SECTOR (G_GUINT64_CONSTANT (1) << 32)

struct _VmdkWriter {
	int fd;
	guint64 base; /* file offset of the VMDK's first byte (a member of an OVA starts later) */
	gboolean stream;
	guint64 capacity; /* sectors */
	guint32 gt_count;
	guint64 gd_sectors;
	guint32 *gd; /* sector of each grain table */
	guint64 gd_sector, rgd_sector;
	guint64 gt_base, rgt_base; /* monolithicSparse: sectors of table 0 and its copy */
	guint8 header[VMDK_SECTOR];

	guint32 gt[VMDK_W_GTES];
	guint64 gt_index; /* G_MAXUINT64 before the first write */
	gboolean gt_used;
	guint64 next_sector;
	guint64 written_end; /* end of the last write, to enforce increasing order */

	guint8 *grain_buf; /* streamOptimized: the grain being filled */
	guint64 grain_index;
	guint8 *zbuf;	   /* a grain marker, its compressed grain and the padding */
	gsize zbuf_len;
	VmiCompressPool *pool; /* streamOptimized: deflates grains on several threads */
};

void
vmdk_writer_free (VmdkWriter *w)
{
	if (w == NULL)
		return;
	/* First: its threads stop before the state its callback uses goes away. */
	vmi_compress_pool_free (w->pool);
	g_free (w->gd);
	g_free (w->grain_buf);
	g_free (w->zbuf);
	g_free (w);
}

static guint64
vmdk_div_round_up (guint64 a, guint64 b)
{
	return a / b + (a % b != 0);
}

static void
vmdk_writer_fill_header (VmdkWriter *w, guint64 grain_offset)
{
	guint8 *h = w->header;
	guint32 flags = VMDK_FLAG_NL_DETECT;

	memset (h, 0, sizeof w->header);
	memcpy (h, VMDK_SPARSE_MAGIC, 4);
	if (w->stream)
		flags |= VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS;
	else
		flags |= VMDK_FLAG_RGD;
	vmdk_put_le32 (h + VMDK_HDR_VERSION, w->stream ? 3 : 1);
	vmdk_put_le32 (h + VMDK_HDR_FLAGS, flags);
	vmdk_put_le64 (h + VMDK_HDR_CAPACITY, w->capacity);
	vmdk_put_le64 (h + VMDK_HDR_GRAIN_SIZE, VMDK_W_GRAIN_SECTORS);
	vmdk_put_le64 (h + VMDK_HDR_DESC_OFFSET, VMDK_W_DESC_SECTOR);
	vmdk_put_le64 (h + VMDK_HDR_DESC_SIZE, VMDK_W_DESC_SECTORS);
	vmdk_put_le32 (h + VMDK_HDR_NUM_GTES, VMDK_W_GTES);
	vmdk_put_le64 (h + VMDK_HDR_RGD_OFFSET, w->stream ? 0 : w->rgd_sector);
	vmdk_put_le64 (h + VMDK_HDR_GD_OFFSET, w->stream ? VMDK_GD_AT_END : w->gd_sector);
	vmdk_put_le64 (h + VMDK_HDR_OVERHEAD, grain_offset);
	memcpy (h + VMDK_HDR_NL_CHECK, "\n \r\n", 4);
	vmdk_put_le16 (h + VMDK_HDR_COMPRESS,
		       w->stream ? VMDK_COMPRESSION_DEFLATE : VMDK_COMPRESSION_NONE);
}

/* The embedded descriptor, laid out as qemu-img writes it. */
static char *
vmdk_writer_descriptor (VmdkWriter *w, const char *adapter_type, const char *name)
{
	guint heads = strcmp (adapter_type, "ide") == 0 ? 16 : 255;
	g_autofree char *clean = g_utf8_make_valid (name, -1);

	for (char *p = clean; *p != '\0'; p++) {
		if (*p == '"' || (guchar) *p < 0x20 || *p == 0x7f)
			*p = '_';
	}
	if (strlen (clean) > 200)
		clean[200] = '\0';
	return g_strdup_printf ("# Disk DescriptorFile\n"
				"version=1\n"
				"CID=%08x\n"
				"parentCID=ffffffff\n"
				"createType=\"%s\"\n"
				"\n"
				"# Extent description\n"
				"RW %" G_GUINT64_FORMAT " SPARSE \"%s\"\n"
				"\n"
				"# The Disk Data Base\n"
				"#DDB\n"
				"\n"
				"ddb.virtualHWVersion = \"4\"\n"
				"ddb.geometry.cylinders = \"%" G_GUINT64_FORMAT "\"\n"
				"ddb.geometry.heads = \"%u\"\n"
				"ddb.geometry.sectors = \"63\"\n"
				"ddb.adapterType = \"%s\"\n"
				"ddb.toolsVersion = \"2147483647\"\n",
				g_random_int (), w->stream ? "streamOptimized" : "monolithicSparse",
				w->capacity, clean, w->capacity / (63 * heads), heads, adapter_type);
}

static gboolean
vmdk_writer_put_table (VmdkWriter *w, const guint32 *table, guint32 count, guint64 sector,
		       GError **error)
{
	g_autofree guint8 *raw = g_malloc0 (vmdk_div_round_up ((guint64) count * 4, VMDK_SECTOR) *
					    VMDK_SECTOR);

	for (guint32 i = 0; i < count; i++)
		vmdk_put_le32 (raw + 4 * i, table[i]);
	return vmi_pwrite_all (w->fd, raw,
			       vmdk_div_round_up ((guint64) count * 4, VMDK_SECTOR) * VMDK_SECTOR,
			       w->base + sector * VMDK_SECTOR, "VMDK image", error);
}

static gboolean
vmdk_writer_put_marker (VmdkWriter *w, guint64 value, guint32 type, GError **error)
{
	guint8 m[VMDK_SECTOR] = { 0 };

	vmdk_put_le64 (m, value);
	vmdk_put_le32 (m + 12, type);
	if (!vmi_pwrite_all (w->fd, m, sizeof m, w->base + w->next_sector * VMDK_SECTOR, "VMDK image",
			     error))
		return FALSE;
	w->next_sector++;
	return TRUE;
}

static gboolean
vmdk_writer_reserve (VmdkWriter *w, guint64 sectors, GError **error)
{
	if (w->next_sector + sectors > VMDK_W_MAX_SECTOR) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				     "the VMDK file would grow past 2 TiB, which its grain tables "
				     "cannot address");
		return FALSE;
	}
	return TRUE;
}

static gboolean vmdk_writer_start_pool (VmdkWriter *w, GError **error);

VmdkWriter *
vmdk_writer_new (int fd, guint64 virtual_size, const char *subformat, const char *adapter_type,
		 const char *name, GError **error)
{
	return vmdk_writer_new_at (fd, 0, virtual_size, subformat, adapter_type, name, error);
}

VmdkWriter *
vmdk_writer_new_at (int fd, guint64 base, guint64 virtual_size, const char *subformat,
		    const char *adapter_type, const char *name, GError **error)
{
	g_autoptr(VmdkWriter) w = g_new0 (VmdkWriter, 1);
	g_autofree char *desc = NULL;
	guint64 grains, meta_end;

	if (strcmp (subformat, "streamOptimized") == 0) {
		w->stream = TRUE;
	} else if (strcmp (subformat, "monolithicSparse") != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "VMDK subformat '%s' cannot be written (monolithicSparse and "
			     "streamOptimized can)",
			     subformat);
		return NULL;
	}
	if (strcmp (adapter_type, "ide") != 0 && strcmp (adapter_type, "lsilogic") != 0 &&
	    strcmp (adapter_type, "buslogic") != 0 && strcmp (adapter_type, "legacyESX") != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "VMDK adapter_type '%s' is unknown (ide, lsilogic, buslogic, legacyESX)",
			     adapter_type);
		return NULL;
	}
	if (virtual_size > (G_GUINT64_CONSTANT (2) << 40) - (G_GUINT64_CONSTANT (64) << 20)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "a %s VMDK holds less than 2 TiB; %" G_GUINT64_FORMAT " bytes is too "
			     "large",
			     subformat, virtual_size);
		return NULL;
	}
	if (base % VMDK_SECTOR != 0 || base > G_MAXINT64 / 2) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "a VMDK cannot start at file offset %" G_GUINT64_FORMAT
			     " (it must be a multiple of 512 below 2^62)",
			     base);
		return NULL;
	}
	w->fd = fd;
	w->base = base;
	w->capacity = vmdk_div_round_up (virtual_size, VMDK_SECTOR);
	grains = vmdk_div_round_up (w->capacity, VMDK_W_GRAIN_SECTORS);
	w->gt_count = (guint32) vmdk_div_round_up (grains, VMDK_W_GTES);
	w->gd_sectors = vmdk_div_round_up ((guint64) w->gt_count * 4, VMDK_SECTOR);
	w->gd = g_new0 (guint32, MAX (w->gt_count, 1));
	w->gt_index = G_MAXUINT64;
	w->grain_index = G_MAXUINT64;

	if (w->stream) {
		meta_end = VMDK_W_DESC_SECTOR + VMDK_W_DESC_SECTORS;
		w->grain_buf = g_malloc0 (VMDK_W_GRAIN_BYTES);
		w->zbuf_len = compressBound (VMDK_W_GRAIN_BYTES) + 64 + VMDK_SECTOR;
		w->zbuf = g_malloc (w->zbuf_len);
		if (!vmdk_writer_start_pool (w, error))
			return NULL;
	} else {
		/* Like qemu: redundant directory and tables, then the primary ones, all reserved. */
		w->rgd_sector = VMDK_W_DESC_SECTOR + VMDK_W_DESC_SECTORS;
		w->rgt_base = w->rgd_sector + w->gd_sectors;
		w->gd_sector = w->rgt_base + (guint64) w->gt_count * VMDK_W_GT_SECTORS;
		w->gt_base = w->gd_sector + w->gd_sectors;
		meta_end = w->gt_base + (guint64) w->gt_count * VMDK_W_GT_SECTORS;
	}
	w->next_sector = vmdk_div_round_up (meta_end, VMDK_W_GRAIN_SECTORS) * VMDK_W_GRAIN_SECTORS;
	vmdk_writer_fill_header (w, w->next_sector);

	desc = vmdk_writer_descriptor (w, adapter_type, name);
	g_assert (strlen (desc) <= VMDK_W_DESC_SECTORS * VMDK_SECTOR);
	if (!vmi_pwrite_all (fd, w->header, sizeof w->header, base, "VMDK image", error) ||
	    !vmi_pwrite_all (fd, desc, strlen (desc), base + VMDK_W_DESC_SECTOR * VMDK_SECTOR,
			     "VMDK image", error))
		return NULL;
	if (!w->stream) {
		for (guint32 i = 0; i < w->gt_count; i++)
			w->gd[i] = (guint32) (w->rgt_base + (guint64) i * VMDK_W_GT_SECTORS);
		if (!vmdk_writer_put_table (w, w->gd, w->gt_count, w->rgd_sector, error))
			return NULL;
		for (guint32 i = 0; i < w->gt_count; i++)
			w->gd[i] = (guint32) (w->gt_base + (guint64) i * VMDK_W_GT_SECTORS);
		if (!vmdk_writer_put_table (w, w->gd, w->gt_count, w->gd_sector, error))
			return NULL;
	}
	if (ftruncate (fd, (off_t) (base + w->next_sector * VMDK_SECTOR)) != 0) {
		int errsv = errno;
		g_set_error (error, VMI_ERROR, errsv == ENOSPC ? VMI_ERROR_NO_SPACE : VMI_ERROR_FAILED,
			     "cannot size the VMDK file: %s", g_strerror (errsv));
		return NULL;
	}
	return g_steal_pointer (&w);
}

/* Writes out the grain table being filled, if any grain of it was written. */
static gboolean
vmdk_writer_flush_gt (VmdkWriter *w, GError **error)
{
	if (w->gt_index == G_MAXUINT64 || !w->gt_used)
		return TRUE;
	w->gt_used = FALSE;
	if (!w->stream) {
		return vmdk_writer_put_table (w, w->gt, VMDK_W_GTES,
					      w->rgt_base + w->gt_index * VMDK_W_GT_SECTORS, error) &&
		       vmdk_writer_put_table (w, w->gt, VMDK_W_GTES,
					      w->gt_base + w->gt_index * VMDK_W_GT_SECTORS, error);
	}
	if (!vmdk_writer_reserve (w, 1 + VMDK_W_GT_SECTORS, error) ||
	    !vmdk_writer_put_marker (w, VMDK_W_GT_SECTORS, VMDK_MARKER_GT, error))
		return FALSE;
	w->gd[w->gt_index] = (guint32) w->next_sector;
	if (!vmdk_writer_put_table (w, w->gt, VMDK_W_GTES, w->next_sector, error))
		return FALSE;
	w->next_sector += VMDK_W_GT_SECTORS;
	return TRUE;
}

/*
 * Writes one compressed grain behind its grain marker, in guest order as the pool hands them
 * back, and the grain table before it when the grain belongs to the next table.
 */
static gboolean
vmdk_writer_store_grain (gpointer user_data, guint64 grain, const guint8 *data, gsize len,
			 gboolean compressed, GError **error)
{
	VmdkWriter *w = user_data;
	guint64 gt_index = grain / VMDK_W_GTES;
	guint64 sectors;

	/* The pool never hands back raw grains (raw_above = 0), and bounds what deflate makes. */
	g_assert (compressed);
	if (len > w->zbuf_len - VMDK_GRAIN_MARKER_SIZE - VMDK_SECTOR) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "zlib made %" G_GSIZE_FORMAT " bytes of a %u-byte grain", len,
			     VMDK_W_GRAIN_BYTES);
		return FALSE;
	}
	if (gt_index != w->gt_index) {
		if (!vmdk_writer_flush_gt (w, error))
			return FALSE;
		memset (w->gt, 0, sizeof w->gt);
		w->gt_index = gt_index;
	}
	vmdk_put_le64 (w->zbuf, grain * VMDK_W_GRAIN_SECTORS);
	vmdk_put_le32 (w->zbuf + 8, (guint32) len);
	memcpy (w->zbuf + VMDK_GRAIN_MARKER_SIZE, data, len);
	sectors = vmdk_div_round_up (len + VMDK_GRAIN_MARKER_SIZE, VMDK_SECTOR);
	memset (w->zbuf + VMDK_GRAIN_MARKER_SIZE + len, 0,
		sectors * VMDK_SECTOR - VMDK_GRAIN_MARKER_SIZE - len);
	if (!vmdk_writer_reserve (w, sectors, error) ||
	    !vmi_pwrite_all (w->fd, w->zbuf, sectors * VMDK_SECTOR,
			     w->base + w->next_sector * VMDK_SECTOR, "VMDK image", error))
		return FALSE;
	w->gt[grain % VMDK_W_GTES] = (guint32) w->next_sector;
	w->gt_used = TRUE;
	w->next_sector += sectors;
	return TRUE;
}

static gboolean
vmdk_writer_start_pool (VmdkWriter *w, GError **error)
{
	/* What compress2 does, as qemu writes grains: zlib format, default level and memLevel. */
	const VmiCompressPoolConfig config = {
		.cluster_size = VMDK_W_GRAIN_BYTES,
		.level = Z_DEFAULT_COMPRESSION,
		.window_bits = 15,
		.mem_level = 8,
		.raw_above = 0,
		.skip_incompressible = TRUE,
	};

	w->pool = vmi_compress_pool_new (&config, vmdk_writer_store_grain, w, error);
	return w->pool != NULL;
}

/* Hands the buffered grain to the compression pool. */
static gboolean
vmdk_writer_flush_grain (VmdkWriter *w, GError **error)
{
	if (w->grain_index == G_MAXUINT64)
		return TRUE;
	if (!vmi_compress_pool_submit (w->pool, w->grain_index, w->grain_buf, error))
		return FALSE;
	w->grain_index = G_MAXUINT64;
	memset (w->grain_buf, 0, VMDK_W_GRAIN_BYTES);
	return TRUE;
}

gboolean
vmdk_writer_write (VmdkWriter *w, guint64 offset, const guint8 *buf, gsize len, GError **error)
{
	guint64 end;

	if (!g_uint64_checked_add (&end, offset, len) || end > w->capacity * VMDK_SECTOR ||
	    offset < w->written_end) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "write of %" G_GSIZE_FORMAT " bytes at 0x%" G_GINT64_MODIFIER "x is out of "
			     "order or past the end of the disk",
			     len, offset);
		return FALSE;
	}
	w->written_end = end;
	while (len > 0) {
		guint64 grain = offset / VMDK_W_GRAIN_BYTES;
		guint32 in_grain = (guint32) (offset % VMDK_W_GRAIN_BYTES);
		gsize n = MIN (len, (gsize) (VMDK_W_GRAIN_BYTES - in_grain));
		guint64 gt_index = grain / VMDK_W_GTES;

		if (w->stream && grain != w->grain_index && !vmdk_writer_flush_grain (w, error))
			return FALSE;
		/* A stream's grain tables follow the grains the pool hands back. */
		if (!w->stream && gt_index != w->gt_index) {
			if (!vmdk_writer_flush_gt (w, error))
				return FALSE;
			memset (w->gt, 0, sizeof w->gt);
			w->gt_index = gt_index;
		}
		if (w->stream) {
			w->grain_index = grain;
			memcpy (w->grain_buf + in_grain, buf, n);
		} else {
			guint32 *gte = &w->gt[grain % VMDK_W_GTES];

			if (*gte == 0) {
				if (!vmdk_writer_reserve (w, VMDK_W_GRAIN_SECTORS, error))
					return FALSE;
				*gte = (guint32) w->next_sector;
				w->next_sector += VMDK_W_GRAIN_SECTORS;
				w->gt_used = TRUE;
			}
			if (!vmi_pwrite_all (w->fd, buf, n,
					     w->base + (guint64) *gte * VMDK_SECTOR + in_grain,
					     "VMDK image", error))
				return FALSE;
		}
		buf += n;
		offset += n;
		len -= n;
	}
	return TRUE;
}

gboolean
vmdk_writer_finish (VmdkWriter *w, GError **error)
{
	if (w->stream && (!vmdk_writer_flush_grain (w, error) ||
			  !vmi_compress_pool_finish (w->pool, error)))
		return FALSE;
	if (!vmdk_writer_flush_gt (w, error))
		return FALSE;
	if (w->stream) {
		guint8 footer[VMDK_SECTOR];

		/* Grain directory, footer (the header again, now saying where the directory is),
		 * end-of-stream: the layout VMware's stream readers expect. */
		if (!vmdk_writer_reserve (w, 1 + w->gd_sectors + 3, error) ||
		    !vmdk_writer_put_marker (w, w->gd_sectors, VMDK_MARKER_GD, error))
			return FALSE;
		w->gd_sector = w->next_sector;
		if (w->gt_count > 0 && !vmdk_writer_put_table (w, w->gd, w->gt_count, w->gd_sector, error))
			return FALSE;
		w->next_sector += w->gd_sectors;
		if (!vmdk_writer_put_marker (w, 1, VMDK_MARKER_FOOTER, error))
			return FALSE;
		memcpy (footer, w->header, sizeof footer);
		vmdk_put_le64 (footer + VMDK_HDR_GD_OFFSET, w->gd_sector);
		if (!vmi_pwrite_all (w->fd, footer, sizeof footer,
				     w->base + w->next_sector * VMDK_SECTOR, "VMDK image", error))
			return FALSE;
		w->next_sector++;
		if (!vmdk_writer_put_marker (w, 0, VMDK_MARKER_EOS, error))
			return FALSE;
	}
	/* The last grain of a monolithicSparse file is whole even when only its start was written. */
	if (ftruncate (w->fd, (off_t) (w->base + w->next_sector * VMDK_SECTOR)) != 0) {
		int errsv = errno;
		g_set_error (error, VMI_ERROR, errsv == ENOSPC ? VMI_ERROR_NO_SPACE : VMI_ERROR_FAILED,
			     "cannot size the VMDK file: %s", g_strerror (errsv));
		return FALSE;
	}
	return TRUE;
}
