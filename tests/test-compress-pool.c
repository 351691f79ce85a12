/* The deflate pool of the compressing writers: order, results, raw fallback, errors, load. */
#include <string.h>
#include <zlib.h>

#include "vmi-compress-pool.h"

#define CLUSTER (64u * 1024u)

/* Deterministic content of cluster i: random, text, zeros or half random half text. */
static void
fill_cluster (guint8 *buf, gsize len, guint64 i)
{
	static const char text[] = "The quick brown fox jumps over the lazy vmimaged test. ";
	g_autoptr(GRand) rand = g_rand_new_with_seed ((guint32) i * 2654435761u + 1);

	switch (i % 4) {
	case 0:
		for (gsize j = 0; j < len; j++)
			buf[j] = (guint8) g_rand_int (rand);
		break;
	case 1:
		for (gsize j = 0; j < len; j++)
			buf[j] = (guint8) text[(j + i) % (sizeof text - 1)];
		break;
	case 2:
		memset (buf, 0, len);
		buf[i % len] = (guint8) i;
		break;
	default:
		for (gsize j = 0; j < len; j++)
			buf[j] = j < len / 2 ? (guint8) g_rand_int (rand)
					     : (guint8) text[j % (sizeof text - 1)];
		break;
	}
}

/* Decompresses data (raw deflate when window_bits < 0, zlib format otherwise). */
static guint8 *
inflate_all (const guint8 *data, gsize len, int window_bits, gsize expect)
{
	z_stream zs = { 0 };
	guint8 *out = g_malloc (expect + 1);
	int ret;

	g_assert_cmpint (inflateInit2 (&zs, window_bits), ==, Z_OK);
	zs.next_in = (guint8 *) data;
	zs.avail_in = (uInt) len;
	zs.next_out = out;
	zs.avail_out = (uInt) expect + 1;
	ret = inflate (&zs, Z_FINISH);
	g_assert_cmpint (ret, ==, Z_STREAM_END);
	g_assert_cmpuint (zs.total_out, ==, expect);
	inflateEnd (&zs);
	return out;
}

/* What one deflate on this thread makes of the cluster, to compare the pool with. */
static gsize
deflate_here (const guint8 *in, gsize len, int level, int window_bits, int mem_level, guint8 **out)
{
	z_stream zs = { 0 };
	gsize cap;

	g_assert_cmpint (deflateInit2 (&zs, level, Z_DEFLATED, window_bits, mem_level,
				       Z_DEFAULT_STRATEGY), ==, Z_OK);
	cap = deflateBound (&zs, (uLong) len);
	*out = g_malloc (cap);
	zs.next_in = (guint8 *) in;
	zs.avail_in = (uInt) len;
	zs.next_out = *out;
	zs.avail_out = (uInt) cap;
	g_assert_cmpint (deflate (&zs, Z_FINISH), ==, Z_STREAM_END);
	deflateEnd (&zs);
	return cap - zs.avail_out;
}

typedef struct {
	VmiCompressPoolConfig config;
	guint64 next_tag;
	guint64 n_compressed, n_raw;
	guint64 bytes_out;
	guint64 fail_at; /* G_MAXUINT64: never */
	gboolean compare_with_deflate;
	guint8 *expect;
} Sink;

static gboolean
sink_write (gpointer user_data, guint64 tag, const guint8 *data, gsize len, gboolean compressed,
	    GError **error)
{
	Sink *sink = user_data;
	gsize cluster = sink->config.cluster_size;

	/* The order of submission, whatever order the workers finished in. */
	g_assert_cmpuint (tag, ==, sink->next_tag);
	sink->next_tag++;
	if (tag == sink->fail_at) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE, "disk full at cluster %" G_GUINT64_FORMAT,
			     tag);
		return FALSE;
	}
	fill_cluster (sink->expect, cluster, tag);
	if (compressed) {
		g_autofree guint8 *plain = inflate_all (data, len, sink->config.window_bits, cluster);

		g_assert_cmpmem (plain, cluster, sink->expect, cluster);
		if (sink->config.raw_above > 0)
			g_assert_cmpuint (len, <=, sink->config.raw_above);
		if (sink->compare_with_deflate) {
			g_autofree guint8 *here = NULL;
			gsize here_len = deflate_here (sink->expect, cluster, sink->config.level,
						       sink->config.window_bits,
						       sink->config.mem_level, &here);

			g_assert_cmpmem (data, len, here, here_len);
		}
		sink->n_compressed++;
	} else {
		g_assert_cmpuint (len, ==, cluster);
		g_assert_cmpmem (data, len, sink->expect, cluster);
		sink->n_raw++;
	}
	sink->bytes_out += len;
	return TRUE;
}

static void
sink_init (Sink *sink, gsize cluster, gsize raw_above, gboolean skip, guint threads)
{
	memset (sink, 0, sizeof *sink);
	sink->config = (VmiCompressPoolConfig) {
		.cluster_size = cluster,
		.level = Z_DEFAULT_COMPRESSION,
		.window_bits = -12,
		.mem_level = 9,
		.raw_above = raw_above,
		.skip_incompressible = skip,
		.n_threads = threads,
	};
	sink->fail_at = G_MAXUINT64;
	sink->expect = g_malloc (cluster);
}

static void
run_clusters (Sink *sink, VmiCompressPool *pool, guint64 count)
{
	g_autofree guint8 *buf = g_malloc (sink->config.cluster_size);
	g_autoptr(GError) error = NULL;

	for (guint64 i = 0; i < count; i++) {
		fill_cluster (buf, sink->config.cluster_size, i);
		g_assert_true (vmi_compress_pool_submit (pool, i, buf, &error));
		g_assert_no_error (error);
	}
	g_assert_true (vmi_compress_pool_finish (pool, &error));
	g_assert_no_error (error);
	g_assert_cmpuint (sink->next_tag, ==, count);
}

/* In order, and byte for byte what deflate on one thread makes, with 1 to 8 workers. */
static void
test_order_and_identity (void)
{
	static const guint threads[] = { 1, 2, 3, 8 };

	for (guint t = 0; t < G_N_ELEMENTS (threads); t++) {
		Sink sink;
		g_autoptr(VmiCompressPool) pool = NULL;
		g_autoptr(GError) error = NULL;

		sink_init (&sink, CLUSTER, CLUSTER - 1, FALSE, threads[t]);
		sink.compare_with_deflate = TRUE;
		pool = vmi_compress_pool_new (&sink.config, sink_write, &sink, &error);
		g_assert_no_error (error);
		run_clusters (&sink, pool, 64);
		/* Random clusters do not shrink, so qcow2 would store them raw; the rest shrink. */
		g_assert_cmpuint (sink.n_raw, ==, 16);
		g_assert_cmpuint (sink.n_compressed, ==, 48);
		/* Finishing again with nothing in flight is harmless. */
		g_assert_true (vmi_compress_pool_finish (pool, &error));
		g_free (sink.expect);
	}
}

/* A cluster that does not shrink comes back raw only when the caller asks for that. */
static void
test_raw_when_not_smaller (void)
{
	Sink sink;
	g_autoptr(VmiCompressPool) pool = NULL;
	g_autoptr(GError) error = NULL;

	/* raw_above = 0: even random clusters come back compressed (as VMDK needs). */
	sink_init (&sink, CLUSTER, 0, FALSE, 2);
	sink.config.window_bits = 15;
	sink.config.mem_level = 8;
	sink.compare_with_deflate = TRUE;
	pool = vmi_compress_pool_new (&sink.config, sink_write, &sink, &error);
	g_assert_no_error (error);
	run_clusters (&sink, pool, 32);
	g_assert_cmpuint (sink.n_raw, ==, 0);
	g_assert_cmpuint (sink.n_compressed, ==, 32);
	g_free (sink.expect);
}

/*
 * Skipping incompressible clusters: raw for qcow2, stored deflate blocks for VMDK; either way
 * the output is at most a few bytes per cluster larger than full deflate's.
 */
static void
test_skip_incompressible (void)
{
	guint64 full_bytes[2] = { 0 };

	for (guint skip = 0; skip < 2; skip++) {
		for (guint vmdk = 0; vmdk < 2; vmdk++) {
			Sink sink;
			g_autoptr(VmiCompressPool) pool = NULL;
			g_autoptr(GError) error = NULL;

			sink_init (&sink, CLUSTER, vmdk ? 0 : CLUSTER - 1, skip, 2);
			if (vmdk) {
				sink.config.window_bits = 15;
				sink.config.mem_level = 8;
			}
			pool = vmi_compress_pool_new (&sink.config, sink_write, &sink, &error);
			g_assert_no_error (error);
			run_clusters (&sink, pool, 40);
			if (!skip) {
				full_bytes[vmdk] = sink.bytes_out;
			} else {
				/* 10 random clusters: at most 64 bytes more each than full deflate. */
				g_assert_cmpuint (sink.bytes_out, <=, full_bytes[vmdk] + 10 * 64);
				g_assert_cmpuint (sink.n_raw, ==, vmdk ? 0 : 10);
			}
			g_free (sink.expect);
		}
	}
}

static void
test_looks_incompressible (void)
{
	g_autofree guint8 *buf = g_malloc (CLUSTER);
	g_autoptr(GRand) rand = g_rand_new_with_seed (7);

	for (gsize i = 0; i < CLUSTER; i++)
		buf[i] = (guint8) g_rand_int (rand);
	g_assert_true (vmi_compress_looks_incompressible (buf, CLUSTER));
	/* Too small to judge. */
	g_assert_false (vmi_compress_looks_incompressible (buf, 4096));
	/* Random bytes repeated with a 2 KiB period: uniform counts, but deflate halves it. */
	for (gsize i = 2048; i < CLUSTER; i++)
		buf[i] = buf[i - 2048];
	g_assert_false (vmi_compress_looks_incompressible (buf, CLUSTER));
	/* Half text. */
	fill_cluster (buf, CLUSTER, 3);
	g_assert_false (vmi_compress_looks_incompressible (buf, CLUSTER));
	/* Text, zeros. */
	fill_cluster (buf, CLUSTER, 1);
	g_assert_false (vmi_compress_looks_incompressible (buf, CLUSTER));
	fill_cluster (buf, CLUSTER, 2);
	g_assert_false (vmi_compress_looks_incompressible (buf, CLUSTER));
	/* Random bytes of a small alphabet (hex digits): few repeats, but 4 bits per byte. */
	for (gsize i = 0; i < CLUSTER; i++)
		buf[i] = (guint8) "0123456789abcdef"[g_rand_int (rand) % 16];
	g_assert_false (vmi_compress_looks_incompressible (buf, CLUSTER));
}

/* The callback's error comes back from submit (or finish), and every later call fails too. */
static void
test_write_error (void)
{
	static const guint64 fail_at[] = { 0, 37, 99 };

	for (guint f = 0; f < G_N_ELEMENTS (fail_at); f++) {
		Sink sink;
		g_autoptr(VmiCompressPool) pool = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree guint8 *buf = g_malloc (CLUSTER);
		guint64 i;

		sink_init (&sink, CLUSTER, CLUSTER - 1, TRUE, 2);
		sink.fail_at = fail_at[f];
		pool = vmi_compress_pool_new (&sink.config, sink_write, &sink, &error);
		g_assert_no_error (error);
		for (i = 0; i < 100; i++) {
			fill_cluster (buf, CLUSTER, i);
			if (!vmi_compress_pool_submit (pool, i, buf, &error))
				break;
		}
		if (i == 100) {
			/* The failing cluster was still in flight: finish reports it. */
			g_assert_no_error (error);
			g_assert_false (vmi_compress_pool_finish (pool, &error));
		}
		g_assert_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE);
		g_assert_nonnull (strstr (error->message, "disk full"));
		/* Nothing after the failed cluster was written. */
		g_assert_cmpuint (sink.next_tag, ==, fail_at[f] + 1);
		g_clear_error (&error);
		g_assert_false (vmi_compress_pool_submit (pool, i + 1, buf, &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE);
		g_clear_error (&error);
		g_assert_false (vmi_compress_pool_finish (pool, &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE);
		g_assert_cmpuint (sink.next_tag, ==, fail_at[f] + 1);
		g_free (sink.expect);
	}
}

/* zlib refuses the settings: the pool says so instead of starting. */
static void
test_bad_settings (void)
{
	Sink sink;
	g_autoptr(VmiCompressPool) pool = NULL;
	g_autoptr(GError) error = NULL;

	sink_init (&sink, CLUSTER, 0, TRUE, 2);
	sink.config.level = 42;
	pool = vmi_compress_pool_new (&sink.config, sink_write, &sink, &error);
	g_assert_null (pool);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_FAILED);
	g_assert_nonnull (strstr (error->message, "level 42"));
	g_free (sink.expect);
}

/* Freed with clusters in flight (a conversion that failed elsewhere): no hang, no leak. */
static void
test_free_in_flight (void)
{
	Sink sink;
	VmiCompressPool *pool;
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *buf = g_malloc (CLUSTER);

	sink_init (&sink, CLUSTER, CLUSTER - 1, FALSE, 2);
	pool = vmi_compress_pool_new (&sink.config, sink_write, &sink, &error);
	g_assert_no_error (error);
	for (guint64 i = 0; i < 20; i++) {
		fill_cluster (buf, CLUSTER, i);
		g_assert_true (vmi_compress_pool_submit (pool, i, buf, &error));
	}
	vmi_compress_pool_free (pool);
	g_assert_cmpuint (sink.next_tag, <, 20);
	g_free (sink.expect);
}

/* 10000 small clusters through more workers than cores: every one, in order, intact. */
static void
test_stress (void)
{
	Sink sink;
	g_autoptr(VmiCompressPool) pool = NULL;
	g_autoptr(GError) error = NULL;

	sink_init (&sink, 4096, 4095, FALSE, 4);
	pool = vmi_compress_pool_new (&sink.config, sink_write, &sink, &error);
	g_assert_no_error (error);
	run_clusters (&sink, pool, 10000);
	g_assert_cmpuint (sink.n_raw + sink.n_compressed, ==, 10000);
	g_assert_cmpuint (sink.n_raw, ==, 2500);
	g_free (sink.expect);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/compress-pool/order-and-identity", test_order_and_identity);
	g_test_add_func ("/compress-pool/raw-when-not-smaller", test_raw_when_not_smaller);
	g_test_add_func ("/compress-pool/skip-incompressible", test_skip_incompressible);
	g_test_add_func ("/compress-pool/looks-incompressible", test_looks_incompressible);
	g_test_add_func ("/compress-pool/write-error", test_write_error);
	g_test_add_func ("/compress-pool/bad-settings", test_bad_settings);
	g_test_add_func ("/compress-pool/free-in-flight", test_free_in_flight);
	g_test_add_func ("/compress-pool/stress", test_stress);
	return g_test_run ();
}
