/*
 * qcow2 measure: qemu-img measure -O qcow2, by qemu's own formula (qcow2_measure and
 * qcow2_calc_prealloc_size in block/qcow2.c), so the numbers are equal to qemu-img's.
 *
 * fully_allocated is the header, the L1 and L2 tables and the refcount structures of a disk
 * whose every cluster is allocated (its size rounded up to a cluster), plus every cluster.
 * required is the same metadata (qemu keeps the full L1 and L2 counts: an overestimate) plus one
 * cluster for each cluster the data touches. Our writer makes only the L2 tables the data needs, so its file is never larger
 * than required; with compress it is smaller still (qemu's measure knows no compression, and
 * compressed clusters are stored only when they shrink).
 */
#define G_LOG_DOMAIN "vmimaged-qcow2"

#include "qcow2-check.h"
#include "vmi-measure.h"

/* Refcount blocks and table clusters for clusters, to the fixed point (16-bit refcounts). */
static guint64
refcount_metadata (guint64 clusters, guint64 cs)
{
	guint64 per_block = cs * 8 / 16, per_table = cs / 8;
	guint64 table = 0, blocks = 0, n = 0, last;

	do {
		last = n;
		blocks = (clusters + table + blocks + per_block - 1) / per_block;
		table = (blocks + per_table - 1) / per_table;
		n = clusters + blocks + table;
	} while (n != last);
	return (blocks + table) * cs;
}

gboolean
qcow2_measure (guint64 virtual_size, const VmiRange *data, gsize n_data, GVariant *options,
	       VmiMeasurement *out, GError **error)
{
	guint64 cs = 65536, size, aligned, meta, nl2e, nl1e, clusters;

	if (options != NULL)
		g_variant_lookup (options, "cluster-size", "t", &cs);
	if (cs < 512 || cs > 2 * 1024 * 1024 || (cs & (cs - 1)) != 0)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "cluster-size %" G_GUINT64_FORMAT " is not a power of two from "
				    "512 to 2097152",
				    cs),
		       FALSE;
	/* Bounds as the writer's: sizes up to 2^63 keep every sum below in 64 bits. */
	if (virtual_size > G_MAXINT64 - 2 * 1024 * 1024)
		return g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				    "The virtual size %" G_GUINT64_FORMAT " is too large for qcow2",
				    virtual_size),
		       FALSE;
	size = (virtual_size + 511) & ~511ull;
	aligned = (size + cs - 1) & ~(cs - 1);

	meta = cs; /* the header */
	nl2e = aligned / cs;
	nl2e = (nl2e + cs / 8 - 1) / (cs / 8) * (cs / 8);
	meta += nl2e * 8;
	nl1e = nl2e * 8 / cs;
	nl1e = (nl1e + cs / 8 - 1) / (cs / 8) * (cs / 8);
	meta += nl1e * 8;
	meta += refcount_metadata ((meta + aligned) / cs, cs);
	out->fully_allocated = meta + aligned;

	/* Each cluster that holds data counts once, however many runs touch it. */
	if (!vmi_measure_count_units (virtual_size, data, n_data, cs, &clusters, error))
		return FALSE;
	/* qemu measures a source's size rounded up to a cluster, as the data counts clusters. */
	out->required = out->fully_allocated - aligned + clusters * cs;
	return TRUE;
}
