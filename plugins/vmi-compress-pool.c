#include <string.h>
#include <zlib.h>

#include "vmi-compress-pool.h"

/* Clusters in flight per worker, and in all (so 2 MiB clusters do not take 64 MiB). */
#define POOL_JOBS_PER_WORKER 4u
#define POOL_MAX_BYTES_IN_FLIGHT (8u * 1024u * 1024u)

typedef enum {
	JOB_FREE,
	JOB_QUEUED,
	JOB_DONE,
} JobState;

typedef struct {
	JobState state;
	guint64 tag;
	guint8 *in;  /* cluster_size */
	guint8 *out; /* out_cap */
	gsize out_len;
	gboolean compressed;
	GError *error;
} Job;

typedef struct {
	VmiCompressPool *pool;
	GThread *thread;
	z_stream zs;	    /* at the configured level */
	z_stream stored;    /* level 0, for incompressible clusters that must be compressed */
	gboolean zs_ready, stored_ready;
} Worker;

struct _VmiCompressPool {
	VmiCompressPoolConfig config;
	VmiCompressWriteFunc write_func;
	gpointer user_data;
	gsize out_cap;

	GMutex lock;
	GCond work_cond; /* a job was queued, or shutdown */
	GCond done_cond; /* a job is done */
	gboolean shutdown;

	Job *jobs;
	guint n_jobs;
	/* Counters of submitted clusters: head <= next_take <= tail, tail - head <= n_jobs. */
	guint64 head;	   /* oldest not yet delivered */
	guint64 next_take; /* next for a worker */
	guint64 tail;	   /* next to submit */

	Worker *workers;
	guint n_workers;
	GError *error; /* sticky: the first failure */
};

/*
 * How far the byte counts of the first n bytes are from uniform (chi-squared). The entropy
 * falls short of 8 bits by about chi2 / (2 n ln 2), so below n / 36 it is above 7.98 bits and
 * Huffman coding could save at most 0.25%. Random bytes give about 255.
 */
static gboolean
counts_look_uniform (guint32 (*hist)[256], gsize n)
{
	double expected = (double) n / 256, chi2 = 0;

	for (guint b = 0; b < 256; b++) {
		double c = (double) hist[0][b] + hist[1][b] + hist[2][b] + hist[3][b];

		chi2 += (c - expected) * (c - expected) / expected;
	}
	return chi2 <= (double) n / 36;
}

gboolean
vmi_compress_looks_incompressible (const guint8 *data, gsize len)
{
	/* Four tables, so that runs of one byte value do not wait on one counter. */
	guint32 hist[4][256] = { { 0 } };
	guint32 *seen;
	gsize repeats = 0, limit = len / 512, first = 16 * 1024;

	/* The estimate of a small sample is too low to say anything; deflate it. */
	if (len < first)
		return FALSE;
	/* The first 16 KiB already tell text or code (most clusters) from random bytes. */
	for (gsize i = 0; i < first; i++)
		hist[i % 4][data[i]]++;
	if (!counts_look_uniform (hist, first))
		return FALSE;
	for (gsize i = first; i < len; i++)
		hist[i % 4][data[i]]++;
	if (!counts_look_uniform (hist, len))
		return FALSE;

	/*
	 * What else deflate gains is repeated strings. Count 4-byte strings seen before (the last
	 * one per hash); random data has next to none.
	 */
	seen = g_new0 (guint32, 4096);
	for (gsize i = 0; i + 4 <= len; i++) {
		guint32 v, h;

		memcpy (&v, data + i, 4);
		h = (v * 2654435761u) >> 20;
		if (seen[h] == v && ++repeats >= limit)
			break;
		seen[h] = v;
	}
	g_free (seen);
	return repeats < limit;
}

static void
compress_job (VmiCompressPool *pool, Worker *worker, Job *job)
{
	const VmiCompressPoolConfig *c = &pool->config;
	z_stream *zs = &worker->zs;
	int ret;

	job->compressed = TRUE;
	if (c->skip_incompressible && vmi_compress_looks_incompressible (job->in, c->cluster_size)) {
		if (c->raw_above > 0) {
			job->compressed = FALSE;
			return;
		}
		zs = &worker->stored;
	}
	if (deflateReset (zs) != Z_OK) {
		g_set_error_literal (&job->error, VMI_ERROR, VMI_ERROR_FAILED,
				     "zlib could not reset its deflate stream");
		return;
	}
	zs->next_in = job->in;
	zs->avail_in = (uInt) c->cluster_size;
	zs->next_out = job->out;
	zs->avail_out = (uInt) pool->out_cap;
	ret = deflate (zs, Z_FINISH);
	if (ret != Z_STREAM_END) {
		/* The buffer is deflateBound, so anything else is zlib failing. */
		g_set_error (&job->error, VMI_ERROR, VMI_ERROR_FAILED,
			     "zlib failed to compress a %" G_GSIZE_FORMAT "-byte cluster (error %d)",
			     c->cluster_size, ret);
		return;
	}
	job->out_len = pool->out_cap - zs->avail_out;
	if (c->raw_above > 0 && job->out_len > c->raw_above)
		job->compressed = FALSE;
}

static gpointer
worker_main (gpointer data)
{
	Worker *worker = data;
	VmiCompressPool *pool = worker->pool;

	g_mutex_lock (&pool->lock);
	for (;;) {
		Job *job;

		while (!pool->shutdown && pool->next_take == pool->tail)
			g_cond_wait (&pool->work_cond, &pool->lock);
		if (pool->shutdown)
			break;
		job = &pool->jobs[pool->next_take % pool->n_jobs];
		pool->next_take++;
		g_mutex_unlock (&pool->lock);

		compress_job (pool, worker, job);

		g_mutex_lock (&pool->lock);
		job->state = JOB_DONE;
		g_cond_broadcast (&pool->done_cond);
	}
	g_mutex_unlock (&pool->lock);
	return NULL;
}

static gboolean
init_stream (z_stream *zs, int level, const VmiCompressPoolConfig *c, GError **error)
{
	memset (zs, 0, sizeof *zs);
	if (deflateInit2 (zs, level, Z_DEFLATED, c->window_bits, c->mem_level,
			  Z_DEFAULT_STRATEGY) != Z_OK) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "zlib could not set up deflate (level %d, window bits %d, memory level %d)",
			     level, c->window_bits, c->mem_level);
		return FALSE;
	}
	return TRUE;
}

VmiCompressPool *
vmi_compress_pool_new (const VmiCompressPoolConfig *config, VmiCompressWriteFunc write_func,
		       gpointer user_data, GError **error)
{
	g_autoptr(VmiCompressPool) pool = g_new0 (VmiCompressPool, 1);
	guint n_workers = config->n_threads != 0 ? config->n_threads : g_get_num_processors ();
	gboolean need_stored = config->skip_incompressible && config->raw_above == 0;
	guint max_jobs;

	g_return_val_if_fail (config->cluster_size > 0 && config->cluster_size <= G_MAXUINT32 / 2,
			      NULL);
	g_return_val_if_fail (write_func != NULL, NULL);

	pool->config = *config;
	pool->write_func = write_func;
	pool->user_data = user_data;
	g_mutex_init (&pool->lock);
	g_cond_init (&pool->work_cond);
	g_cond_init (&pool->done_cond);

	n_workers = CLAMP (n_workers, 1u, 64u);
	pool->workers = g_new0 (Worker, n_workers);
	for (guint i = 0; i < n_workers; i++) {
		Worker *worker = &pool->workers[i];

		/* Counted first, so free ends exactly the streams that were set up. */
		pool->n_workers = i + 1;
		worker->pool = pool;
		if (!init_stream (&worker->zs, config->level, config, error))
			return NULL;
		worker->zs_ready = TRUE;
		pool->out_cap = MAX (pool->out_cap, deflateBound (&worker->zs, (uLong) config->cluster_size));
		if (need_stored) {
			if (!init_stream (&worker->stored, 0, config, error))
				return NULL;
			worker->stored_ready = TRUE;
			pool->out_cap = MAX (pool->out_cap,
					     deflateBound (&worker->stored, (uLong) config->cluster_size));
		}
	}

	/* At least one job per worker plus one being filled, whatever the cluster size. */
	max_jobs = (guint) MAX (POOL_MAX_BYTES_IN_FLIGHT / (config->cluster_size + pool->out_cap),
				(gsize) n_workers + 1);
	pool->n_jobs = MIN (n_workers * POOL_JOBS_PER_WORKER, max_jobs);
	pool->jobs = g_new0 (Job, pool->n_jobs);
	for (guint i = 0; i < pool->n_jobs; i++) {
		pool->jobs[i].in = g_malloc (config->cluster_size);
		pool->jobs[i].out = g_malloc (pool->out_cap);
	}

	for (guint i = 0; i < pool->n_workers; i++) {
		pool->workers[i].thread = g_thread_try_new ("vmi-deflate", worker_main,
							    &pool->workers[i], error);
		if (pool->workers[i].thread == NULL)
			return NULL;
	}
	return g_steal_pointer (&pool);
}

/* Hands the oldest cluster to the callback; called with the lock held, returns with it held. */
static gboolean
deliver_head (VmiCompressPool *pool, GError **error)
{
	Job *job = &pool->jobs[pool->head % pool->n_jobs];
	gboolean ok;

	g_mutex_unlock (&pool->lock);
	if (job->error != NULL) {
		g_propagate_error (&pool->error, g_steal_pointer (&job->error));
		ok = FALSE;
	} else if (job->compressed) {
		ok = pool->write_func (pool->user_data, job->tag, job->out, job->out_len, TRUE,
				       &pool->error);
	} else {
		ok = pool->write_func (pool->user_data, job->tag, job->in, pool->config.cluster_size,
				       FALSE, &pool->error);
	}
	g_mutex_lock (&pool->lock);
	job->state = JOB_FREE;
	pool->head++;
	if (!ok) {
		if (pool->error == NULL)
			g_set_error_literal (&pool->error, VMI_ERROR, VMI_ERROR_FAILED,
					     "writing a compressed cluster failed");
		if (error != NULL)
			*error = g_error_copy (pool->error);
	}
	return ok;
}

/* Delivers finished clusters in order: all that are ready, and (wait) until at most keep remain. */
static gboolean
deliver (VmiCompressPool *pool, guint64 keep, GError **error)
{
	gboolean ok = TRUE;

	g_mutex_lock (&pool->lock);
	while (ok && pool->head < pool->tail) {
		Job *job = &pool->jobs[pool->head % pool->n_jobs];

		if (job->state != JOB_DONE) {
			if (pool->tail - pool->head <= keep)
				break;
			g_cond_wait (&pool->done_cond, &pool->lock);
			continue;
		}
		ok = deliver_head (pool, error);
	}
	g_mutex_unlock (&pool->lock);
	return ok;
}

static gboolean
check_failed (VmiCompressPool *pool, GError **error)
{
	if (pool->error == NULL)
		return TRUE;
	if (error != NULL)
		*error = g_error_copy (pool->error);
	return FALSE;
}

gboolean
vmi_compress_pool_submit (VmiCompressPool *pool, guint64 tag, const guint8 *cluster, GError **error)
{
	Job *job;

	if (!check_failed (pool, error) || !deliver (pool, pool->n_jobs - 1, error))
		return FALSE;
	/* The slot at tail is free and no worker looks at it until tail moves past it. */
	job = &pool->jobs[pool->tail % pool->n_jobs];
	g_assert (job->state == JOB_FREE);
	job->tag = tag;
	job->state = JOB_QUEUED;
	memcpy (job->in, cluster, pool->config.cluster_size);
	g_mutex_lock (&pool->lock);
	pool->tail++;
	g_cond_signal (&pool->work_cond);
	g_mutex_unlock (&pool->lock);
	return TRUE;
}

gboolean
vmi_compress_pool_finish (VmiCompressPool *pool, GError **error)
{
	return check_failed (pool, error) && deliver (pool, 0, error);
}

void
vmi_compress_pool_free (VmiCompressPool *pool)
{
	if (pool == NULL)
		return;
	g_mutex_lock (&pool->lock);
	pool->shutdown = TRUE;
	g_cond_broadcast (&pool->work_cond);
	g_mutex_unlock (&pool->lock);
	for (guint i = 0; i < pool->n_workers; i++) {
		Worker *worker = &pool->workers[i];

		/* A worker busy with a job finishes it, then sees the shutdown. */
		if (worker->thread != NULL)
			g_thread_join (worker->thread);
		if (worker->zs_ready)
			deflateEnd (&worker->zs);
		if (worker->stored_ready)
			deflateEnd (&worker->stored);
	}
	for (guint i = 0; pool->jobs != NULL && i < pool->n_jobs; i++) {
		g_free (pool->jobs[i].in);
		g_free (pool->jobs[i].out);
		g_clear_error (&pool->jobs[i].error);
	}
	g_free (pool->jobs);
	g_free (pool->workers);
	g_clear_error (&pool->error);
	g_mutex_clear (&pool->lock);
	g_cond_clear (&pool->work_cond);
	g_cond_clear (&pool->done_cond);
	g_free (pool);
}
