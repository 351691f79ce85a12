/*
 * qcow2 writer: a version 3 (compat 1.1) image, written front to back in one pass.
 *
 * Layout: the header cluster, then data clusters in the order the guest writes them, each L2
 * table right after the data it maps (writes come in increasing order, so an L2 table is final
 * once a write moves past the guest range it covers), and at finish the L1 table, the refcount
 * blocks and the refcount table. Only the L2 table being filled is in memory, with the L1 table
 * (at most QCOW2_MAX_L1_BYTES, qemu's own limit) and one 16-bit refcount per host cluster (at
 * most QCOW2_WRITER_MAX_REFCOUNT_BYTES). Refcounts are exact, so qemu-img check finds neither
 * errors nor leaks.
 *
 * With compress, each full guest cluster is deflated as qemu-img convert -c does (raw deflate,
 * window bits -12, default level) and stored compressed when that saves at least one byte;
 * otherwise it is stored as is. The cluster being filled is buffered, since writes may cover
 * part of it. Compressed clusters are packed one after the other, byte to byte, as qemu packs
 * them; every host cluster that the 512-byte sectors of a compressed cluster touch counts one
 * reference for it, which is how qemu-img check counts them.
 *
 * The deflate runs on a pool of threads (vmi-compress-pool.h), several clusters at once; the
 * results come back in guest order, so the file is laid out as if deflated one by one. A
 * cluster that looks random is stored as is without trying: deflate would not have shrunk it.
 */
#define G_LOG_DOMAIN "vmimaged-qcow2"

#include <string.h>
#include <zlib.h>

#include "qcow2-private.h"
#include "vmi-compress-pool.h"

#define HEX G_GINT64_MODIFIER "x"

/* Enough for 2 TiB of 64 KiB clusters or 64 TiB of 2 MiB clusters. */
#define QCOW2_WRITER_MAX_REFCOUNT_BYTES (64u * 1024u * 1024u)
#define QCOW2_NO_INDEX G_MAXUINT64

struct _Qcow2Writer {
	int fd; /* owned by the daemon */
	guint64 size;
	guint32 cluster_bits;
	guint32 cluster_size;
	guint32 l2_entries;
	gboolean compress;
	guint64 pos; /* writes must not go below this */

	guint32 l1_size;
	guint64 *l1; /* host order, with QCOW2_OFLAG_COPIED */

	guint64 l2_index; /* which L1 entry l2 belongs to, or QCOW2_NO_INDEX */
	guint64 *l2;	  /* host order */
	gboolean l2_used;
	guint8 *raw; /* one cluster of scratch for encoding tables */

	guint64 next;	    /* first free byte of the file */
	GArray *refcounts;  /* guint16 per host cluster */

	/* compress */
	guint64 pending;   /* guest cluster held in cbuf, or QCOW2_NO_INDEX */
	guint8 *cbuf;
	VmiCompressPool *pool;
};

void
qcow2_writer_free (Qcow2Writer *w)
{
	if (w == NULL)
		return;
	/* First: its threads stop before the state its callback uses goes away. */
	vmi_compress_pool_free (w->pool);
	g_free (w->l1);
	g_free (w->l2);
	g_free (w->raw);
	g_free (w->cbuf);
	if (w->refcounts != NULL)
		g_array_unref (w->refcounts);
	g_free (w);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Qcow2Writer, qcow2_writer_free)

/* Counts one more reference to every host cluster in [start, start + len). */
static gboolean
add_refs (Qcow2Writer *w, guint64 start, guint64 len, GError **error)
{
	guint64 first = start >> w->cluster_bits;
	guint64 last = (start + len - 1) >> w->cluster_bits;

	if (last >= QCOW2_WRITER_MAX_REFCOUNT_BYTES / sizeof (guint16)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "The qcow2 image would need more than %u clusters of %u bytes; choose a "
			     "larger cluster-size",
			     (guint) (QCOW2_WRITER_MAX_REFCOUNT_BYTES / sizeof (guint16)),
			     w->cluster_size);
		return FALSE;
	}
	if (w->refcounts->len <= last)
		g_array_set_size (w->refcounts, (guint) last + 1);
	for (guint64 i = first; i <= last; i++) {
		guint16 *rc = &g_array_index (w->refcounts, guint16, i);

		/*
		 * Deflate shrinks at most about 1032:1 and never below a few bytes, so some hundreds
		 * of compressed clusters share one host cluster at most; 16 bits hold that.
		 */
		if (*rc == G_MAXUINT16) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "Host cluster %" G_GUINT64_FORMAT " would have more than %u "
				     "references",
				     i, G_MAXUINT16);
			return FALSE;
		}
		*rc += 1;
	}
	return TRUE;
}

static gboolean
alloc_cluster (Qcow2Writer *w, guint64 *host, GError **error)
{
	guint64 offset = (w->next + w->cluster_size - 1) & ~(guint64) (w->cluster_size - 1);

	if (!add_refs (w, offset, w->cluster_size, error))
		return FALSE;
	*host = offset;
	w->next = offset + w->cluster_size;
	return TRUE;
}

/* Writes the L2 table being filled, if any entry is set, and points its L1 entry at it. */
static gboolean
flush_l2 (Qcow2Writer *w, GError **error)
{
	guint64 host;

	if (w->l2_index == QCOW2_NO_INDEX)
		return TRUE;
	if (w->l2_used) {
		if (!alloc_cluster (w, &host, error))
			return FALSE;
		for (guint32 i = 0; i < w->l2_entries; i++)
			qcow2_put_be64 (w->raw + (gsize) i * 8, w->l2[i]);
		if (!vmi_pwrite_all (w->fd, w->raw, w->cluster_size, host, "qcow2 image", error))
			return FALSE;
		w->l1[w->l2_index] = host | QCOW2_OFLAG_COPIED;
	}
	w->l2_index = QCOW2_NO_INDEX;
	w->l2_used = FALSE;
	return TRUE;
}

/* The L2 entry of a guest cluster, switching tables when the guest moves to the next one. */
static gboolean
l2_entry (Qcow2Writer *w, guint64 guest_cluster, guint64 **entry, GError **error)
{
	guint64 index = guest_cluster / w->l2_entries;

	if (index != w->l2_index) {
		if (!flush_l2 (w, error))
			return FALSE;
		memset (w->l2, 0, (gsize) w->l2_entries * 8);
		w->l2_index = index;
	}
	*entry = &w->l2[guest_cluster % w->l2_entries];
	return TRUE;
}

/*
 * The pool hands back each guest cluster in order, deflated when that made it smaller (data,
 * len) or as it is.
 */
static gboolean
store_cluster (gpointer user_data, guint64 guest, const guint8 *data, gsize len,
	       gboolean compressed, GError **error)
{
	Qcow2Writer *w = user_data;
	guint64 *entry, host, nb_sectors, stored;
	guint32 csize_shift = 62 - (w->cluster_bits - 8);

	if (!l2_entry (w, guest, &entry, error))
		return FALSE;
	w->l2_used = TRUE;
	if (!compressed) {
		if (!alloc_cluster (w, &host, error) ||
		    !vmi_pwrite_all (w->fd, data, len, host, "qcow2 image", error))
			return FALSE;
		*entry = host | QCOW2_OFLAG_COPIED;
		return TRUE;
	}
	/* Packed byte to byte, as qemu does; the entry counts the 512-byte sectors touched. */
	host = w->next;
	nb_sectors = (host + len - 1) / QCOW2_COMPRESSED_SECTOR - host / QCOW2_COMPRESSED_SECTOR + 1;
	stored = nb_sectors * QCOW2_COMPRESSED_SECTOR - host % QCOW2_COMPRESSED_SECTOR;
	if (host >= (G_GUINT64_CONSTANT (1) << csize_shift)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "Compressed data at offset 0x%" HEX " is beyond what a qcow2 L2 entry "
			     "with %u-byte clusters can address",
			     host, w->cluster_size);
		return FALSE;
	}
	if (!add_refs (w, host, stored, error) ||
	    !vmi_pwrite_all (w->fd, data, len, host, "qcow2 image", error))
		return FALSE;
	w->next = host + len;
	*entry = QCOW2_OFLAG_COMPRESSED | ((nb_sectors - 1) << csize_shift) | host;
	return TRUE;
}

/* Hands the buffered guest cluster to the compression pool. */
static gboolean
flush_pending (Qcow2Writer *w, GError **error)
{
	guint64 guest = w->pending;

	if (guest == QCOW2_NO_INDEX)
		return TRUE;
	w->pending = QCOW2_NO_INDEX;
	return vmi_compress_pool_submit (w->pool, guest, w->cbuf, error);
}

Qcow2Writer *
qcow2_writer_new (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	g_autoptr(Qcow2Writer) w = g_new0 (Qcow2Writer, 1);
	guint64 cluster_size = 65536, span, l1_size, header;
	gboolean compress = FALSE;

	if (options != NULL) {
		g_variant_lookup (options, "cluster-size", "t", &cluster_size);
		g_variant_lookup (options, "compress", "b", &compress);
	}
	if (cluster_size < 512 || cluster_size > 2 * 1024 * 1024 ||
	    (cluster_size & (cluster_size - 1)) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "cluster-size %" G_GUINT64_FORMAT " is not a power of two from 512 to "
			     "2097152",
			     cluster_size);
		return NULL;
	}
	/* qemu counts qcow2 sizes in 512-byte sectors, so round up as qemu-img create does. */
	if (virtual_size > G_MAXINT64 - 511) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "The virtual size %" G_GUINT64_FORMAT " is too large for qcow2",
			     virtual_size);
		return NULL;
	}
	w->fd = fd;
	w->size = (virtual_size + 511) & ~G_GUINT64_CONSTANT (511);
	w->cluster_size = (guint32) cluster_size;
	w->cluster_bits = (guint32) __builtin_ctzll (cluster_size);
	w->l2_entries = w->cluster_size / 8;
	w->compress = compress;
	span = cluster_size * w->l2_entries;
	l1_size = w->size / span + (w->size % span != 0);
	if (l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "A virtual size of %" G_GUINT64_FORMAT " bytes needs an L1 table of %" G_GUINT64_FORMAT
			     " bytes with %u-byte clusters, more than qcow2's limit of %u; choose a "
			     "larger cluster-size",
			     w->size, l1_size * 8, w->cluster_size, QCOW2_MAX_L1_BYTES);
		return NULL;
	}
	w->l1_size = (guint32) l1_size;
	w->l1 = g_new0 (guint64, MAX (l1_size, 1));
	w->l2 = g_new0 (guint64, w->l2_entries);
	w->raw = g_malloc (w->cluster_size);
	w->l2_index = QCOW2_NO_INDEX;
	w->pending = QCOW2_NO_INDEX;
	w->refcounts = g_array_new (FALSE, TRUE, sizeof (guint16));
	if (compress) {
		/* qemu-img convert -c: raw deflate, 4 KiB window, default level, memLevel 9. */
		const VmiCompressPoolConfig config = {
			.cluster_size = w->cluster_size,
			.level = Z_DEFAULT_COMPRESSION,
			.window_bits = -12,
			.mem_level = 9,
			.raw_above = w->cluster_size - 1,
			.skip_incompressible = TRUE,
		};

		w->cbuf = g_malloc (w->cluster_size);
		w->pool = vmi_compress_pool_new (&config, store_cluster, w, error);
		if (w->pool == NULL)
			return NULL;
	}
	/* Cluster 0 is the header, written by finish. */
	if (!alloc_cluster (w, &header, error))
		return NULL;
	return g_steal_pointer (&w);
}

/* Uncompressed clusters allocated one after the other are written with one pwrite. */
typedef struct {
	const guint8 *in;
	guint64 host;
	gsize len;
} Qcow2WriteRun;

static gboolean
flush_run (Qcow2Writer *w, Qcow2WriteRun *run, GError **error)
{
	if (run->len == 0)
		return TRUE;
	if (!vmi_pwrite_all (w->fd, run->in, run->len, run->host, "qcow2 image", error))
		return FALSE;
	run->len = 0;
	return TRUE;
}

gboolean
qcow2_writer_write (Qcow2Writer *w, guint64 offset, const void *buf, gsize len, GError **error)
{
	const guint8 *in = buf;
	guint64 end;
	Qcow2WriteRun run = { NULL, 0, 0 };

	if (!g_uint64_checked_add (&end, offset, len) || end > w->size || offset < w->pos) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "Write of %" G_GSIZE_FORMAT " bytes at 0x%" HEX " is outside the %" G_GUINT64_FORMAT
			     "-byte disk or below an earlier write",
			     len, offset, w->size);
		return FALSE;
	}
	while (len > 0) {
		guint64 guest = offset >> w->cluster_bits;
		guint64 in_cluster = offset & (w->cluster_size - 1);
		gsize n = (gsize) MIN ((guint64) len, w->cluster_size - in_cluster);

		if (w->compress) {
			if (w->pending != guest) {
				if (!flush_pending (w, error))
					return FALSE;
				memset (w->cbuf, 0, w->cluster_size);
				w->pending = guest;
			}
			memcpy (w->cbuf + in_cluster, in, n);
		} else {
			guint64 *entry, host;

			if (!l2_entry (w, guest, &entry, error))
				return FALSE;
			if (*entry == 0) {
				if (!alloc_cluster (w, &host, error))
					return FALSE;
				*entry = host | QCOW2_OFLAG_COPIED;
				w->l2_used = TRUE;
			}
			host = (*entry & QCOW2_OFFSET_MASK) + in_cluster;
			if (host != run.host + run.len && !flush_run (w, &run, error))
				return FALSE;
			if (run.len == 0) {
				run.in = in;
				run.host = host;
			}
			run.len += n;
		}
		in += n;
		offset += n;
		len -= n;
	}
	if (!flush_run (w, &run, error))
		return FALSE;
	w->pos = end;
	return TRUE;
}

static gboolean
write_header (Qcow2Writer *w, guint64 l1_offset, guint64 rt_offset, guint64 rt_clusters,
	      GError **error)
{
	guint8 h[QCOW2_V3_HEADER_LENGTH_FULL + 8] = { 0 };

	qcow2_put_be32 (h, QCOW2_MAGIC);
	qcow2_put_be32 (h + QCOW2_HDR_VERSION, 3);
	qcow2_put_be32 (h + QCOW2_HDR_CLUSTER_BITS, w->cluster_bits);
	qcow2_put_be64 (h + QCOW2_HDR_SIZE, w->size);
	qcow2_put_be32 (h + QCOW2_HDR_L1_SIZE, w->l1_size);
	qcow2_put_be64 (h + QCOW2_HDR_L1_OFFSET, l1_offset);
	qcow2_put_be64 (h + QCOW2_HDR_REFCOUNT_OFFSET, rt_offset);
	qcow2_put_be32 (h + QCOW2_HDR_REFCOUNT_CLUSTERS, (guint32) rt_clusters);
	qcow2_put_be32 (h + QCOW2_HDR_REFCOUNT_ORDER, 4);
	qcow2_put_be32 (h + QCOW2_HDR_HEADER_LENGTH, QCOW2_V3_HEADER_LENGTH_FULL);
	/* compression_type 0 (zlib), then the end-of-extensions marker: all zeros. */
	return vmi_pwrite_all (w->fd, h, sizeof h, 0, "qcow2 image", error);
}

gboolean
qcow2_writer_finish (Qcow2Writer *w, GError **error)
{
	guint64 l1_offset = 0, l1_clusters, host, total, rb = 0, rt = 0;
	guint64 rb_entries = w->cluster_size / 2;
	guint64 rb_offset;

	if (w->compress &&
	    (!flush_pending (w, error) || !vmi_compress_pool_finish (w->pool, error)))
		return FALSE;
	if (!flush_l2 (w, error))
		return FALSE;

	/* The L1 table; an empty disk has none and, as qemu writes it, an L1 offset of 0. */
	l1_clusters = ((guint64) w->l1_size * 8 + w->cluster_size - 1) / w->cluster_size;
	for (guint64 i = 0; i < l1_clusters; i++) {
		if (!alloc_cluster (w, &host, error))
			return FALSE;
		if (i == 0)
			l1_offset = host;
	}
	for (guint64 i = 0; i < l1_clusters; i++) {
		memset (w->raw, 0, w->cluster_size);
		for (guint64 j = 0; j < w->cluster_size / 8; j++) {
			guint64 k = i * (w->cluster_size / 8) + j;

			if (k < w->l1_size)
				qcow2_put_be64 (w->raw + j * 8, w->l1[k]);
		}
		if (!vmi_pwrite_all (w->fd, w->raw, w->cluster_size,
				     l1_offset + i * w->cluster_size, "qcow2 image", error))
			return FALSE;
	}

	/* Refcount blocks and table must count themselves: iterate to the fixed point. */
	for (;;) {
		guint64 clusters = w->refcounts->len + rb + rt;
		guint64 nrb = (clusters + rb_entries - 1) / rb_entries;
		guint64 nrt = (nrb * 8 + w->cluster_size - 1) / w->cluster_size;

		if (nrb == rb && nrt == rt)
			break;
		rb = nrb;
		rt = nrt;
	}
	rb_offset = (guint64) w->refcounts->len * w->cluster_size;
	for (guint64 i = 0; i < rb + rt; i++) {
		if (!alloc_cluster (w, &host, error))
			return FALSE;
	}
	total = w->refcounts->len;
	for (guint64 b = 0; b < rb; b++) {
		memset (w->raw, 0, w->cluster_size);
		for (guint64 i = 0; i < rb_entries && b * rb_entries + i < total; i++)
			qcow2_put_be16 (w->raw + i * 2,
					g_array_index (w->refcounts, guint16, b * rb_entries + i));
		if (!vmi_pwrite_all (w->fd, w->raw, w->cluster_size,
				     rb_offset + b * w->cluster_size, "qcow2 image", error))
			return FALSE;
	}
	for (guint64 i = 0; i < rt; i++) {
		memset (w->raw, 0, w->cluster_size);
		for (guint64 j = 0; j < w->cluster_size / 8; j++) {
			guint64 b = i * (w->cluster_size / 8) + j;

			if (b < rb)
				qcow2_put_be64 (w->raw + j * 8, rb_offset + b * w->cluster_size);
		}
		if (!vmi_pwrite_all (w->fd, w->raw, w->cluster_size,
				     rb_offset + (rb + i) * w->cluster_size, "qcow2 image", error))
			return FALSE;
	}
	return write_header (w, l1_offset, rb_offset + rb * w->cluster_size, rt, error);
}
