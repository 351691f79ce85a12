/*
 * Deflating fixed-size clusters on several threads while the plugin keeps writing in order.
 *
 * A writer submits whole clusters one after the other; worker threads compress them in
 * parallel, and the results come back to the writer callback in submission order, always on
 * the thread that calls submit or finish (so the plugin's own state needs no lock, and the
 * plugin ABI's "calls on one image are never concurrent" still holds for everything but the
 * deflate itself). At most a few clusters per worker are in flight, so memory stays bounded.
 *
 * Linked statically into the plugins that compress (not part of the plugin ABI).
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

typedef struct _VmiCompressPool VmiCompressPool;

typedef struct {
	gsize cluster_size;	/* bytes of every submitted cluster */
	int level;		/* zlib level, e.g. Z_DEFAULT_COMPRESSION */
	int window_bits;	/* as deflateInit2: -12 is qcow2's raw deflate, 15 is zlib's format */
	int mem_level;		/* as deflateInit2: 8 is zlib's default (compress2), qemu's qcow2 uses 9 */
	/*
	 * A compressed result longer than this is handed back raw (compressed = FALSE), as qcow2
	 * stores a cluster that deflate does not shrink. 0: never raw, always compressed.
	 */
	gsize raw_above;
	/*
	 * Skip the costly deflate of a cluster that looks random (byte entropy near 8 bits and
	 * almost no repeated 4-byte strings): it is handed back raw when raw_above allows,
	 * otherwise compressed at level 0 (stored blocks, a few bytes larger than the input, about
	 * what deflate would have produced). Deflate could not have saved more than a fraction of
	 * a percent of such a cluster.
	 */
	gboolean skip_incompressible;
	guint n_threads; /* 0: one per processor */
} VmiCompressPoolConfig;

/*
 * Called in submission order with the cluster's tag and its compressed bytes (compressed =
 * TRUE) or its raw bytes (compressed = FALSE, len = cluster_size). data is valid only during
 * the call. Returning FALSE stops the pool: the error comes back from submit or finish.
 */
typedef gboolean (*VmiCompressWriteFunc) (gpointer user_data, guint64 tag, const guint8 *data,
					  gsize len, gboolean compressed, GError **error);

VmiCompressPool *vmi_compress_pool_new (const VmiCompressPoolConfig *config,
					VmiCompressWriteFunc write_func, gpointer user_data,
					GError **error);

/*
 * Copies the cluster (cluster_size bytes) into the pool. Before it returns, results that are
 * ready are handed to the callback; when the pool is full it waits for the oldest. FALSE
 * with the first error of a worker or of the callback; every later call fails the same way.
 */
gboolean vmi_compress_pool_submit (VmiCompressPool *pool, guint64 tag, const guint8 *cluster,
				   GError **error);

/* Waits for every submitted cluster and hands each to the callback. */
gboolean vmi_compress_pool_finish (VmiCompressPool *pool, GError **error);

/* Stops the workers (dropping what was not delivered) and frees the pool. */
void vmi_compress_pool_free (VmiCompressPool *pool);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiCompressPool, vmi_compress_pool_free)

/* Whether the cluster looks incompressible by the cheap test above (exported for tests). */
gboolean vmi_compress_looks_incompressible (const guint8 *data, gsize len);

G_END_DECLS
