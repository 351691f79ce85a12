/*
 * The conversion engine's pipeline (reader thread, ring of buffers, in-order writer), its
 * zero detection, cancellation, errors on either side, the raw → raw clone, and the priority
 * of a job's thread. Real raw and qcow2 plugins, plus fake ones that fail or watch the order.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-convert.h"
#include "vmi-options.h"
#include "vmi-priority.h"
#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_raw_plugin;
extern const VmiFormatPlugin vmi_qcow2_plugin;

#define MiB (1024u * 1024u)
#define KiB 1024u

/* ---- a raw disk with written zeros, data at odd places and an odd size ---- */

#define MIXED_SIZE (40u * MiB + 1536u)

typedef struct {
	guint64 offset;
	gsize len;
	int kind; /* 0 zeros (written), 1 random, 2 text */
} MixedRun;

static const MixedRun mixed_runs[] = {
	{ 0, 4 * MiB, 0 },		      /* written zeros: must not be written out */
	{ 4 * MiB + 4 * KiB, 1 * MiB, 1 },    /* data that starts inside a granule */
	{ 6 * MiB, 192 * KiB, 0 },	      /* more written zeros between data */
	{ 6 * MiB + 192 * KiB, 8 * KiB, 2 },
	{ 7 * MiB - 64 * KiB, 9 * MiB, 1 },   /* crosses two chunk boundaries */
	{ 30 * MiB, 2 * MiB, 2 },
	{ MIXED_SIZE - 1536, 1536, 1 },       /* the unaligned end */
};

static guint64
mixed_data_bytes (void)
{
	guint64 total = 0;

	for (guint i = 0; i < G_N_ELEMENTS (mixed_runs); i++) {
		if (mixed_runs[i].kind != 0)
			total += mixed_runs[i].len;
	}
	return total;
}

static void
make_mixed_raw (const char *path)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed (42);
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (ftruncate (fd, MIXED_SIZE), ==, 0);
	for (guint i = 0; i < G_N_ELEMENTS (mixed_runs); i++) {
		const MixedRun *run = &mixed_runs[i];
		g_autofree guint8 *buf = g_malloc0 (run->len);

		for (gsize j = 0; j < run->len && run->kind != 0; j++)
			buf[j] = run->kind == 1 ? (guint8) g_rand_int (rand)
						: (guint8) "pipeline text "[j % 14];
		g_assert_cmpint (pwrite (fd, buf, run->len, (off_t) run->offset), ==, (gssize) run->len);
	}
	g_assert_cmpint (close (fd), ==, 0);
}

static gboolean
files_equal (const char *a, const char *b)
{
	g_autofree char *da = NULL;
	g_autofree char *db = NULL;
	gsize la = 0, lb = 0;

	g_assert_true (g_file_get_contents (a, &da, &la, NULL));
	g_assert_true (g_file_get_contents (b, &db, &lb, NULL));
	return la == lb && memcmp (da, db, la) == 0;
}

/* Whether [offset, offset + len) of the file is a hole (SEEK_DATA jumps past it). */
static gboolean
is_hole (const char *path, guint64 offset, guint64 len)
{
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	off_t data;

	g_assert_cmpint (fd, >=, 0);
	data = lseek (fd, (off_t) offset, SEEK_DATA);
	close (fd);
	return data < 0 || (guint64) data >= offset + len;
}

typedef struct {
	GThread *thread;
	guint calls;
	guint64 last_done;
	guint64 total;
	gboolean went_back;
	gboolean other_thread;
	GCancellable *cancel_at_data; /* cancelled once progress passes cancel_after */
	guint64 cancel_after;
	gint64 cancel_time;
} ProgressLog;

static void
progress_cb (guint64 done, guint64 total, gpointer user_data)
{
	ProgressLog *log = user_data;

	if (g_thread_self () != log->thread)
		log->other_thread = TRUE;
	if (done < log->last_done)
		log->went_back = TRUE;
	log->calls++;
	log->last_done = done;
	log->total = total;
	if (log->cancel_at_data != NULL && log->cancel_time == 0 && done > log->cancel_after) {
		log->cancel_time = g_get_monotonic_time ();
		g_cancellable_cancel (log->cancel_at_data);
	}
}

static gboolean
convert_with (VmiSource *source, const VmiFormatPlugin *dst, const char *dst_path,
	      GVariant *options, ProgressLog *log, GCancellable *cancellable, GError **error)
{
	int fd = open (dst_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	gboolean ok;

	g_assert_cmpint (fd, >=, 0);
	log->thread = g_thread_self ();
	ok = vmi_convert (source, dst, fd, options, progress_cb, log, cancellable, error);
	g_assert_cmpint (close (fd), ==, 0);
	return ok;
}

/* Written zeros in the source become holes; the data comes through byte for byte. */
static void
test_zero_detection (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "mixed.raw", NULL);
	g_autofree char *out = g_build_filename (dir, "out.raw", NULL);
	g_autofree char *out_qcow2 = g_build_filename (dir, "out.qcow2", NULL);
	g_autofree char *back = g_build_filename (dir, "back.raw", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(VmiSource) qcow2 = NULL;
	g_autoptr(GError) error = NULL;
	ProgressLog log = { 0 };

	make_mixed_raw (src);
	source = vmi_test_open (&vmi_raw_plugin, src, NULL);
	g_assert_true (convert_with (source, &vmi_raw_plugin, out, NULL, &log, NULL, &error));
	g_assert_no_error (error);
	g_assert_true (files_equal (src, out));
	g_assert_false (log.went_back);
	g_assert_false (log.other_thread);
	g_assert_cmpuint (log.last_done, ==, MIXED_SIZE);
	g_assert_cmpuint (log.total, ==, MIXED_SIZE);
	/* Unless the file system cloned the file (then nothing was written at all), the zeros
	 * are holes and only the data takes space. */
	if (vmi_test_file_allocated (out) < vmi_test_file_allocated (src)) {
		g_assert_true (is_hole (out, 0, 4 * MiB));
		g_assert_true (is_hole (out, 6 * MiB, 128 * KiB));
		g_assert_cmpuint (vmi_test_file_allocated (out), <=, mixed_data_bytes () + 2 * 64 * KiB * G_N_ELEMENTS (mixed_runs));
	}

	/* The same into qcow2, read back through the qcow2 plugin: no cluster for the zeros. */
	g_assert_true (vmi_test_convert_source (source, &vmi_qcow2_plugin, out_qcow2, NULL, NULL));
	qcow2 = vmi_test_open (&vmi_qcow2_plugin, out_qcow2, NULL);
	{
		VmiExtent extent = { 0 };

		g_assert_true (vmi_qcow2_plugin.block_status (vmi_source_get_image (qcow2), 0,
							      MIXED_SIZE, &extent, &error));
		g_assert_no_error (error);
		g_assert_cmpint (extent.kind, !=, VMI_EXTENT_DATA);
		g_assert_cmpuint (extent.length, >=, 4 * MiB);
	}
	g_assert_true (vmi_test_convert_source (qcow2, &vmi_raw_plugin, back, NULL, NULL));
	g_assert_true (files_equal (src, back));
	if (vmi_test_require_qemu_img ())
		g_assert_true (vmi_test_qemu_img_compare (src, "raw", out_qcow2, "qcow2"));
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A 1 TiB sparse disk: time follows the data, progress reaches the end, in few calls. */
static void
test_sparse_progress (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "huge.raw", NULL);
	g_autofree char *out = g_build_filename (dir, "huge.qcow2", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	const guint64 size = 1024ull * 1024 * MiB;
	ProgressLog log = { 0 };
	guint8 data[4096];
	int fd;

	memset (data, 0x5a, sizeof data);
	fd = open (src, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	if (ftruncate (fd, (off_t) size) != 0) {
		close (fd);
		g_test_skip ("the file system cannot hold a 1 TiB sparse file");
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	g_assert_cmpint (pwrite (fd, data, sizeof data, 3 * MiB), ==, sizeof data);
	g_assert_cmpint (pwrite (fd, data, sizeof data, (off_t) (size / 2)), ==, sizeof data);
	g_assert_cmpint (close (fd), ==, 0);
	source = vmi_test_open (&vmi_raw_plugin, src, NULL);
	g_assert_true (convert_with (source, &vmi_qcow2_plugin, out, NULL, &log, NULL, &error));
	g_assert_no_error (error);
	g_assert_cmpuint (log.last_done, ==, size);
	g_assert_false (log.went_back);
	/* Holes are reported in steps, not per extent and not never. */
	g_assert_cmpuint (log.calls, >=, 3);
	g_assert_cmpuint (log.calls, <=, size / (64 * MiB) + 8);
	if (vmi_test_require_qemu_img ())
		g_assert_true (vmi_test_qemu_img_compare (src, "raw", out, "qcow2"));
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- fake plugins: a source that fails to read, a destination that checks and fails ---- */

struct _VmiImage {
	int fd;
	guint64 size;
	guint64 next_write;
	guint writes;
};

static guint64 fake_fail_read_at = G_MAXUINT64;
static guint fake_fail_write_at = G_MAXUINT;
static guint fake_bad_writes;

static VmiImage *
fake_open (const VmiOpenArgs *args, GError **error)
{
	VmiImage *image = g_new0 (VmiImage, 1);

	image->fd = args->fd;
	image->size = args->file_size;
	return image;
}

static gboolean
fake_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	info->virtual_size = image->size;
	return TRUE;
}

static gboolean
fake_read (VmiImage *image, guint64 offset, void *buf, gsize len, GError **error)
{
	if (offset + len > fake_fail_read_at) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "fake read error at %" G_GUINT64_FORMAT, offset);
		return FALSE;
	}
	return pread (image->fd, buf, len, (off_t) offset) == (gssize) len;
}

/* Every byte is data: the pipeline reads and zero-checks all of it. */
static gboolean
fake_block_status (VmiImage *image, guint64 offset, guint64 max_length, VmiExtent *extent,
		   GError **error)
{
	extent->kind = VMI_EXTENT_DATA;
	extent->length = max_length;
	return TRUE;
}

static void
fake_close (VmiImage *image)
{
	g_free (image);
}

static VmiImage *
fake_create (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	VmiImage *image = g_new0 (VmiImage, 1);

	image->fd = fd;
	image->size = virtual_size;
	g_assert_cmpint (ftruncate (fd, (off_t) virtual_size), ==, 0);
	return image;
}

/* The contract of write: in order, not overlapping, 512-aligned but for the end, and in
 * slices short enough that cancellation is seen between them. */
static gboolean
fake_write (VmiImage *image, guint64 offset, const void *buf, gsize len, GError **error)
{
	if (offset < image->next_write || offset % 512 != 0 || len == 0 || len > MiB ||
	    (len % 512 != 0 && offset + len != image->size))
		fake_bad_writes++;
	image->next_write = offset + len;
	if (++image->writes == fake_fail_write_at) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE, "fake write error at %" G_GUINT64_FORMAT,
			     offset);
		return FALSE;
	}
	/* A slow destination, so that the reader fills the ring and has to wait. */
	g_usleep (200);
	return pwrite (image->fd, buf, len, (off_t) offset) == (gssize) len;
}

static gboolean
fake_finish (VmiImage *image, GError **error)
{
	return TRUE;
}

static const VmiFormatPlugin fake_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "fake",
	.description = "test plugin",
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ | VMI_FORMAT_CAN_WRITE,
	.open = fake_open,
	.get_info = fake_get_info,
	.read = fake_read,
	.block_status = fake_block_status,
	.close = fake_close,
	.create = fake_create,
	.write = fake_write,
	.finish = fake_finish,
};

static void
fake_reset (void)
{
	fake_fail_read_at = G_MAXUINT64;
	fake_fail_write_at = G_MAXUINT;
	fake_bad_writes = 0;
}

/* Every write follows the contract, and the data arrives whole through the fake source. */
static void
test_write_order (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "mixed.raw", NULL);
	g_autofree char *out = g_build_filename (dir, "out.fake", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	ProgressLog log = { 0 };

	fake_reset ();
	make_mixed_raw (src);
	source = vmi_test_open (&fake_plugin, src, NULL);
	g_assert_true (convert_with (source, &fake_plugin, out, NULL, &log, NULL, &error));
	g_assert_no_error (error);
	g_assert_cmpuint (fake_bad_writes, ==, 0);
	g_assert_true (files_equal (src, out));
	g_assert_cmpuint (log.last_done, ==, MIXED_SIZE);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A read error in the reader thread comes back from vmi_convert, whole. */
static void
test_read_error (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "mixed.raw", NULL);
	g_autofree char *out = g_build_filename (dir, "out.raw", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	ProgressLog log = { 0 };

	fake_reset ();
	make_mixed_raw (src);
	fake_fail_read_at = 21 * MiB;
	source = vmi_test_open (&fake_plugin, src, NULL);
	g_assert_false (convert_with (source, &vmi_raw_plugin, out, NULL, &log, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	g_assert_nonnull (strstr (error->message, "fake read error at 20971520"));
	g_assert_cmpuint (log.last_done, <=, 20 * MiB);
	fake_reset ();
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A write error stops the reader (which may be waiting for a buffer) and comes back. */
static void
test_write_error (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "mixed.raw", NULL);
	g_autofree char *out = g_build_filename (dir, "out.fake", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	ProgressLog log = { 0 };

	fake_reset ();
	make_mixed_raw (src);
	fake_fail_write_at = 3;
	source = vmi_test_open (&vmi_raw_plugin, src, NULL);
	g_assert_false (convert_with (source, &fake_plugin, out, NULL, &log, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE);
	g_assert_nonnull (strstr (error->message, "fake write error"));
	g_assert_cmpuint (log.last_done, <, MIXED_SIZE);
	fake_reset ();
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Cancelled before it starts, and cancelled in the middle: VMI_ERROR_CANCELLED, promptly. */
static void
test_cancel (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "mixed.raw", NULL);
	g_autofree char *out = g_build_filename (dir, "out.qcow2", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new ();
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) compress = g_variant_ref_sink (g_variant_new_parsed ("{'compress': <true>}"));
	ProgressLog log = { 0 };
	gint64 latency;

	make_mixed_raw (src);
	source = vmi_test_open (&vmi_raw_plugin, src, NULL);
	g_cancellable_cancel (cancellable);
	g_assert_false (convert_with (source, &vmi_qcow2_plugin, out, compress, &log, cancellable,
				      &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CANCELLED);
	g_clear_error (&error);

	/* Into compressed qcow2 (deflate on a pool): cancelled once the first data is written. */
	g_cancellable_reset (cancellable);
	log = (ProgressLog) { .cancel_at_data = cancellable, .cancel_after = 5 * MiB };
	g_assert_false (convert_with (source, &vmi_qcow2_plugin, out, compress, &log, cancellable,
				      &error));
	latency = g_get_monotonic_time () - log.cancel_time;
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CANCELLED);
	g_assert_cmpint (log.cancel_time, >, 0);
	g_assert_cmpuint (log.last_done, <, MIXED_SIZE);
	g_test_message ("cancel to return: %.1f ms", latency / 1000.0);
	/* A hang detector, not a timing test: the target is 200 ms end to end over D-Bus. */
	g_assert_cmpint (latency, <, 2 * G_USEC_PER_SEC);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* raw → raw: a clone where the file system shares blocks, the pipeline elsewhere; the same
 * bytes either way. */
static void
test_raw_clone (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *src = g_build_filename (dir, "mixed.raw", NULL);
	g_autofree char *out = g_build_filename (dir, "out.raw", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	ProgressLog log = { 0 };

	make_mixed_raw (src);
	source = vmi_test_open (&vmi_raw_plugin, src, NULL);
	g_assert_true (convert_with (source, &vmi_raw_plugin, out, NULL, &log, NULL, &error));
	g_assert_no_error (error);
	g_assert_true (files_equal (src, out));
	g_assert_cmpuint (log.last_done, ==, MIXED_SIZE);
	/* Holes stay holes whichever way it went. */
	g_assert_true (is_hole (out, 20 * MiB, 10 * MiB));
	if (vmi_test_file_allocated (out) >= vmi_test_file_allocated (src))
		g_test_message ("the file system cloned the file");
	else
		g_test_message ("the file system cannot clone: the pipeline copied");
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- the priority of a job's thread ---- */

/* Field 19 of /proc/self/task/<tid>/stat: the thread's nice value, as the kernel sees it. */
static int
thread_nice_from_proc (void)
{
	g_autofree char *path = g_strdup_printf ("/proc/self/task/%ld/stat", (long) gettid ());
	g_autofree char *contents = NULL;
	g_auto(GStrv) fields = NULL;
	const char *after_comm;

	g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
	/* The command name may hold spaces: count fields after its closing parenthesis. */
	after_comm = strrchr (contents, ')');
	g_assert_nonnull (after_comm);
	fields = g_strsplit (after_comm + 2, " ", -1);
	g_assert_cmpuint (g_strv_length (fields), >, 16);
	return atoi (fields[16]);
}

static void
test_priority_option (void)
{
	struct {
		const char *value;
		gboolean ok;
		VmiPriority priority;
	} cases[] = {
		{ NULL, TRUE, VMI_PRIORITY_BACKGROUND },
		{ "background", TRUE, VMI_PRIORITY_BACKGROUND },
		{ "normal", TRUE, VMI_PRIORITY_NORMAL },
		{ "high", FALSE, 0 },
		{ "", FALSE, 0 },
		{ "Normal", FALSE, 0 },
	};

	for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autoptr(GVariantDict) dict = g_variant_dict_new (NULL);
		g_autoptr(GVariant) options = NULL;
		g_autoptr(GError) error = NULL;
		VmiPriority priority = 42;

		if (cases[i].value != NULL)
			g_variant_dict_insert (dict, "priority", "s", cases[i].value);
		options = g_variant_ref_sink (g_variant_dict_end (dict));
		g_assert_cmpint (vmi_priority_from_options (options, &priority, &error), ==,
				 cases[i].ok);
		if (cases[i].ok) {
			g_assert_no_error (error);
			g_assert_cmpint (priority, ==, cases[i].priority);
		} else {
			g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
			g_assert_nonnull (strstr (error->message, "\"background\" or \"normal\""));
		}
	}
	/* Convert accepts the option and does not pass it to the plugin. */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) given = g_variant_ref_sink (
			g_variant_new_parsed ("{'priority': <'normal'>}"));
		g_autoptr(GVariant) options = vmi_options_normalize (given, vmi_convert_options,
								     NULL, &error);
		g_autoptr(GVariant) rest = NULL;

		g_assert_no_error (error);
		rest = vmi_options_filter (options, vmi_convert_options);
		g_assert_cmpuint (g_variant_n_children (rest), ==, 0);
	}
}

typedef struct {
	VmiPriority priority;
	int nice_before, nice_during, nice_after, nice_child;
	int ioprio_before, ioprio_during, ioprio_after;
	gboolean restored;
} PriorityProbe;

static gpointer
priority_child_thread (gpointer data)
{
	return GINT_TO_POINTER (thread_nice_from_proc () + 100);
}

static gpointer
priority_thread (gpointer data)
{
	PriorityProbe *probe = data;
	VmiPrioritySaved saved;

	probe->nice_before = thread_nice_from_proc ();
	probe->ioprio_before = vmi_priority_get_thread_ioprio ();
	vmi_priority_apply (probe->priority, &saved);
	probe->nice_during = thread_nice_from_proc ();
	probe->ioprio_during = vmi_priority_get_thread_ioprio ();
	/* What the job starts (the reader, the deflate workers) inherits it. */
	probe->nice_child = GPOINTER_TO_INT (
		g_thread_join (g_thread_new ("child", priority_child_thread, NULL))) - 100;
	probe->restored = vmi_priority_restore (&saved);
	probe->nice_after = thread_nice_from_proc ();
	probe->ioprio_after = vmi_priority_get_thread_ioprio ();
	return NULL;
}

static void
test_priority_thread (void)
{
	PriorityProbe background = { .priority = VMI_PRIORITY_BACKGROUND };
	PriorityProbe normal = { .priority = VMI_PRIORITY_NORMAL };
	int main_nice = thread_nice_from_proc ();
	int main_ioprio = vmi_priority_get_thread_ioprio ();

	g_assert_cmpint (vmi_priority_get_thread_nice (), ==, main_nice);
	g_thread_join (g_thread_new ("background", priority_thread, &background));
	g_assert_cmpint (background.nice_during, ==, MIN (background.nice_before + 10, 19));
	g_assert_cmpint (background.nice_child, ==, background.nice_during);
	/* IOPRIO_CLASS_IDLE (3) << IOPRIO_CLASS_SHIFT (13) */
	g_assert_cmpint (background.ioprio_during >> 13, ==, 3);
	g_assert_cmpint (background.ioprio_after, ==, background.ioprio_before);
	/* Lowering nice again needs CAP_SYS_NICE (root has it); without, restore says so. */
	if (background.restored)
		g_assert_cmpint (background.nice_after, ==, background.nice_before);
	else
		g_assert_cmpint (background.nice_after, ==, background.nice_during);
	g_test_message ("nice %d -> %d -> %d (restored: %s)", background.nice_before,
			background.nice_during, background.nice_after,
			background.restored ? "yes" : "no");

	g_thread_join (g_thread_new ("normal", priority_thread, &normal));
	g_assert_true (normal.restored);
	g_assert_cmpint (normal.nice_during, ==, normal.nice_before);
	g_assert_cmpint (normal.ioprio_during, ==, normal.ioprio_before);

	/* Only the job's threads changed: never the daemon's main thread. */
	g_assert_cmpint (thread_nice_from_proc (), ==, main_nice);
	g_assert_cmpint (vmi_priority_get_thread_ioprio (), ==, main_ioprio);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/convert/pipeline/zero-detection", test_zero_detection);
	g_test_add_func ("/convert/pipeline/sparse-progress", test_sparse_progress);
	g_test_add_func ("/convert/pipeline/write-order", test_write_order);
	g_test_add_func ("/convert/pipeline/read-error", test_read_error);
	g_test_add_func ("/convert/pipeline/write-error", test_write_error);
	g_test_add_func ("/convert/pipeline/cancel", test_cancel);
	g_test_add_func ("/convert/raw-clone", test_raw_clone);
	g_test_add_func ("/priority/option", test_priority_option);
	g_test_add_func ("/priority/thread", test_priority_thread);
	return g_test_run ();
}
