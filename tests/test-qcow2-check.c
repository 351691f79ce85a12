/*
 * Tests of the qcow2 check hook, with qemu-img check --output=json as the oracle: clean images
 * of many shapes, images whose refcounts or tables were broken with a byte edit, and images made
 * by our own writer. Every count qemu-img reports (corruptions, leaks, total, allocated,
 * fragmented and compressed clusters, image end offset) must be equal.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_qcow2_plugin;
extern const VmiFormatPlugin vmi_raw_plugin;

#define MiB (1024u * 1024u)

typedef struct {
	VmiCheckResult res;
	gboolean ran;
} CheckRun;

static void
check_run_clear (CheckRun *run)
{
	g_clear_pointer (&run->res.problems, g_ptr_array_unref);
}

/* Opens path with the qcow2 plugin and runs its check; FALSE with error if the check failed. */
static gboolean
run_check (const char *path, CheckRun *run, GCancellable *cancellable, GError **error)
{
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	VmiOpenArgs args = { 0 };
	VmiImage *image;
	gboolean ok;

	g_assert_cmpint (fd, >=, 0);
	memset (run, 0, sizeof *run);
	run->res.problems = g_ptr_array_new_with_free_func (g_free);
	args.fd = fd;
	args.file_size = vmi_test_file_size (path);
	image = vmi_qcow2_plugin.open (&args, error);
	if (image == NULL) {
		close (fd);
		return FALSE;
	}
	ok = vmi_qcow2_plugin.check (image, &run->res, cancellable, error);
	vmi_qcow2_plugin.close (image);
	close (fd);
	run->ran = ok;
	if (g_test_verbose ()) {
		for (guint i = 0; i < run->res.problems->len; i++)
			g_printerr ("# problem: %s\n", (char *) g_ptr_array_index (run->res.problems, i));
	}
	return ok;
}

static gboolean
has_problem (const CheckRun *run, const char *text)
{
	for (guint i = 0; i < run->res.problems->len; i++) {
		if (strstr (g_ptr_array_index (run->res.problems, i), text) != NULL)
			return TRUE;
	}
	return FALSE;
}

static guint64
json_u64_or_0 (JsonObject *object, const char *member)
{
	return json_object_has_member (object, member) ? vmi_test_json_u64 (object, member) : 0;
}

/*
 * Runs our check and qemu-img check on path; asserts every count is equal. qemu_image is what
 * qemu-img check is given (NULL: -f qcow2 path), for images that need options to open.
 */
static void
assert_check_equals_qemu_as (const char *path, const char *qemu_image, CheckRun *run)
{
	g_autofree char *out = NULL;
	g_autoptr(JsonParser) parser = json_parser_new ();
	g_autoptr(GError) error = NULL;
	JsonObject *q;
	int status;

	g_assert_true (run_check (path, run, NULL, &error));
	g_assert_no_error (error);
	if (qemu_image != NULL)
		status = vmi_test_sh (&out, "qemu-img check --output=json %s 2>/dev/null", qemu_image);
	else
		status = vmi_test_sh (&out, "qemu-img check -f qcow2 --output=json '%s' 2>/dev/null",
				      path);
	/* 0 clean, 2 corruptions, 3 leaks only: all have a JSON report. */
	g_assert_true (status == 0 || status == 2 || status == 3);
	g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
	q = json_node_get_object (json_parser_get_root (parser));
	g_test_message ("%s: ours %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " qemu-img %" G_GUINT64_FORMAT
			"/%" G_GUINT64_FORMAT " (corruptions/leaks)",
			path, run->res.corruptions, run->res.leaks, json_u64_or_0 (q, "corruptions"),
			json_u64_or_0 (q, "leaks"));
	g_assert_cmpuint (json_u64_or_0 (q, "check-errors"), ==, 0);
	g_assert_cmpuint (run->res.corruptions, ==, json_u64_or_0 (q, "corruptions"));
	g_assert_cmpuint (run->res.leaks, ==, json_u64_or_0 (q, "leaks"));
	g_assert_cmpuint (run->res.total_clusters, ==, vmi_test_json_u64 (q, "total-clusters"));
	g_assert_cmpuint (run->res.allocated_clusters, ==, json_u64_or_0 (q, "allocated-clusters"));
	g_assert_cmpuint (run->res.fragmented_clusters, ==, json_u64_or_0 (q, "fragmented-clusters"));
	g_assert_cmpuint (run->res.compressed_clusters, ==, json_u64_or_0 (q, "compressed-clusters"));
	g_assert_cmpuint (run->res.image_end_offset, ==, vmi_test_json_u64 (q, "image-end-offset"));
	/* Every finding has a sentence, up to the cap. */
	g_assert_cmpuint (run->res.problems->len, ==,
			  MIN (run->res.corruptions + run->res.leaks, (guint64) VMI_CHECK_MAX_PROBLEMS));
}

static void
assert_check_equals_qemu (const char *path, CheckRun *run)
{
	assert_check_equals_qemu_as (path, NULL, run);
}

static guint64
be64_at (const char *path, guint64 offset)
{
	guint8 b[8];

	vmi_test_read_bytes (path, offset, b, sizeof b);
	return GUINT64_FROM_BE (*(guint64 *) b);
}

static void
put_be64 (const char *path, guint64 offset, guint64 value)
{
	guint64 be = GUINT64_TO_BE (value);

	vmi_test_write_bytes (path, offset, &be, sizeof be);
}

static void
put_be16 (const char *path, guint64 offset, guint16 value)
{
	guint16 be = GUINT16_TO_BE (value);

	vmi_test_write_bytes (path, offset, &be, sizeof be);
}

/* Where the 16-bit refcount of cluster k is stored (one refcount block covers the test files). */
static guint64
refcount_at (const char *path, guint64 k)
{
	guint64 reftable = be64_at (path, 48);

	return be64_at (path, reftable) + 2 * k;
}

/* The file offset of L2 entry i of the first L2 table (64 KiB clusters, 8-byte entries). */
static guint64
l2_entry_at (const char *path, guint i)
{
	guint64 l1 = be64_at (path, 40);

	return (be64_at (path, l1) & 0x00fffffffffffe00ull) + 8ull * i;
}

/* A 4 MiB qcow2 image with data in clusters 0-3 and 10 (in that guest order). */
static char *
make_written (const char *dir, const char *name, const char *opts)
{
	g_autofree char *path = vmi_test_qemu_img_create (dir, name, "qcow2", opts, "4M");

	vmi_test_sh_ok ("qemu-io -f qcow2 -c 'write -P 0x11 0 256k' -c 'write -P 0x22 640k 64k' '%s' "
			">/dev/null",
			path);
	return g_steal_pointer (&path);
}

static gboolean
have_tools (void)
{
	return vmi_test_require_qemu_img () &&
	       vmi_test_require_program ("qemu-io", "qemu-utils", "cannot write test images");
}

/* --- clean images ------------------------------------------------------------------------ */

static void
test_clean_shapes (VmiTestDirFixture *fixture, gconstpointer data)
{
	static const char *const shapes[] = {
		"",
		"cluster_size=4096",
		"cluster_size=512",
		"cluster_size=2M",
		"compat=0.10",
		"extended_l2=on",
		"refcount_bits=1",
		"refcount_bits=8",
		"refcount_bits=64",
		"lazy_refcounts=on",
	};

	if (!have_tools ())
		return;
	for (guint i = 0; i < G_N_ELEMENTS (shapes); i++) {
		g_autofree char *name = g_strdup_printf ("shape%u.qcow2", i);
		g_autofree char *path = make_written (fixture->dir, name, shapes[i][0] ? shapes[i] : NULL);
		CheckRun run;

		/* A zero cluster with a host cluster, and one without, as qemu-io makes them. */
		vmi_test_sh_ok ("qemu-io -f qcow2 -c 'write -z 64k 64k' -c 'write -z 2M 64k' '%s' >/dev/null",
				path);
		assert_check_equals_qemu (path, &run);
		g_assert_cmpuint (run.res.corruptions, ==, 0);
		g_assert_cmpuint (run.res.leaks, ==, 0);
		g_assert_cmpuint (run.res.allocated_clusters, >, 0);
		check_run_clear (&run);
	}
}

static void
test_clean_empty_and_large (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *empty = NULL;
	g_autofree char *large = NULL;
	CheckRun run;

	if (!have_tools ())
		return;
	empty = vmi_test_qemu_img_create (fixture->dir, "empty.qcow2", "qcow2", NULL, "1G");
	assert_check_equals_qemu (empty, &run);
	g_assert_cmpuint (run.res.allocated_clusters, ==, 0);
	g_assert_cmpuint (run.res.total_clusters, ==, 16384);
	check_run_clear (&run);

	/* 1 TiB virtual: many L1 entries, a few L2 tables far apart, an unaligned virtual size. */
	large = vmi_test_qemu_img_create (fixture->dir, "large.qcow2", "qcow2", NULL, "1099511628288");
	vmi_test_sh_ok ("qemu-io -f qcow2 -c 'write -P 1 0 64k' -c 'write -P 2 500G 128k' "
			"-c 'write -P 3 1099511562240 64k' '%s' >/dev/null",
			large);
	assert_check_equals_qemu (large, &run);
	g_assert_cmpuint (run.res.allocated_clusters, ==, 4);
	check_run_clear (&run);
}

static void
test_clean_snapshots_and_bitmaps (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = NULL;
	CheckRun run;

	if (!have_tools ())
		return;
	path = make_written (fixture->dir, "snap.qcow2", NULL);
	vmi_test_qemu_img ("snapshot -c first '%s'", path);
	/* Copy-on-write after the snapshot: new clusters, shared and unshared L2 tables. */
	vmi_test_sh_ok ("qemu-io -f qcow2 -c 'write -P 0x33 64k 64k' -c 'write -P 0x44 3M 64k' '%s' "
			">/dev/null",
			path);
	vmi_test_qemu_img ("snapshot -c second '%s'", path);
	vmi_test_qemu_img ("bitmap --add '%s' dirty0", path);
	vmi_test_sh_ok ("qemu-io -f qcow2 -c 'write -P 0x55 1M 64k' '%s' >/dev/null", path);
	assert_check_equals_qemu (path, &run);
	g_assert_cmpuint (run.res.corruptions, ==, 0);
	g_assert_cmpuint (run.res.leaks, ==, 0);
	check_run_clear (&run);
}

static void
test_clean_compressed (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (fixture->dir, "pattern.raw", NULL);
	g_autofree char *qc = g_build_filename (fixture->dir, "c.qcow2", NULL);
	g_autofree char *qc4k = g_build_filename (fixture->dir, "c4k.qcow2", NULL);
	CheckRun run;

	if (!have_tools ())
		return;
	vmi_test_make_pattern_image (raw, 3 * MiB + 1536, 7);
	vmi_test_qemu_img ("convert -c -O qcow2 '%s' '%s'", raw, qc);
	vmi_test_qemu_img ("convert -c -O qcow2 -o cluster_size=4096 '%s' '%s'", raw, qc4k);
	assert_check_equals_qemu (qc, &run);
	g_assert_cmpuint (run.res.compressed_clusters, >, 0);
	g_assert_cmpuint (run.res.corruptions + run.res.leaks, ==, 0);
	check_run_clear (&run);
	assert_check_equals_qemu (qc4k, &run);
	g_assert_cmpuint (run.res.compressed_clusters, >, 0);
	check_run_clear (&run);
}

/* zstd compression, an external data file (its clusters have no refcounts), LUKS. */
static void
test_clean_features (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (fixture->dir, "pattern.raw", NULL);
	g_autofree char *zstd = g_build_filename (fixture->dir, "zstd.qcow2", NULL);
	g_autofree char *df = NULL;
	g_autofree char *luks = NULL;
	g_autofree char *luks_opts = NULL;
	CheckRun run;

	if (!have_tools ())
		return;
	vmi_test_make_pattern_image (raw, 3 * MiB, 4);
	vmi_test_qemu_img ("convert -c -O qcow2 -o compression_type=zstd '%s' '%s'", raw, zstd);
	assert_check_equals_qemu (zstd, &run);
	g_assert_cmpuint (run.res.compressed_clusters, >, 0);
	check_run_clear (&run);

	df = make_written (fixture->dir, "df.qcow2", "data_file=df.raw");
	assert_check_equals_qemu (df, &run);
	g_assert_cmpuint (run.res.corruptions + run.res.leaks, ==, 0);
	g_assert_cmpuint (run.res.allocated_clusters, ==, 5);
	check_run_clear (&run);

	luks = g_build_filename (fixture->dir, "luks.qcow2", NULL);
	vmi_test_qemu_img ("create -q -f qcow2 --object secret,id=s0,data=abc "
			   "-o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 '%s' 4M",
			   luks);
	luks_opts = g_strdup_printf ("--object secret,id=s0,data=abc --image-opts "
				     "driver=qcow2,file.filename='%s',encrypt.key-secret=s0",
				     luks);
	assert_check_equals_qemu_as (luks, luks_opts, &run);
	/* The LUKS header takes clusters of its own, all counted. */
	g_assert_cmpuint (run.res.image_end_offset, >, 1 * MiB);
	check_run_clear (&run);
}

static void
test_clean_our_writer (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (fixture->dir, "pattern.raw", NULL);
	static const char *const options[] = {
		"@a{sv} {}",
		"{'cluster-size': <uint64 4096>}",
		"{'compress': <true>}",
		"{'compress': <true>, 'cluster-size': <uint64 16384>}",
	};

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (raw, 5 * MiB + 1536, 3);
	for (guint i = 0; i < G_N_ELEMENTS (options); i++) {
		g_autofree char *out = g_strdup_printf ("%s/ours%u.qcow2", fixture->dir, i);
		g_autoptr(GVariant) opts = g_variant_ref_sink (g_variant_new_parsed (options[i]));
		CheckRun run;

		g_assert_true (vmi_test_convert (&vmi_raw_plugin, raw, &vmi_qcow2_plugin, out, opts, NULL));
		assert_check_equals_qemu (out, &run);
		g_assert_cmpuint (run.res.corruptions, ==, 0);
		g_assert_cmpuint (run.res.leaks, ==, 0);
		/* Our writer leaves no space unused: the image ends where the file does. */
		g_assert_cmpuint (run.res.image_end_offset, >=, vmi_test_file_size (out));
		check_run_clear (&run);
	}
}

/* --- broken images ----------------------------------------------------------------------- */

static void
test_leaked_cluster (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = NULL;
	guint64 size, k;
	CheckRun run;

	if (!have_tools ())
		return;
	path = make_written (fixture->dir, "leak.qcow2", NULL);
	/* One more cluster at the end of the file, counted but used by nothing. */
	size = vmi_test_file_size (path);
	k = (size + 65535) / 65536;
	g_assert_cmpint (truncate (path, (off_t) ((k + 1) * 65536)), ==, 0);
	put_be16 (path, refcount_at (path, k), 1);
	assert_check_equals_qemu (path, &run);
	g_assert_cmpuint (run.res.leaks, ==, 1);
	g_assert_cmpuint (run.res.corruptions, ==, 0);
	g_assert_cmpuint (run.res.image_end_offset, ==, (k + 1) * 65536);
	g_assert_true (has_problem (&run, "leaked"));
	check_run_clear (&run);
}

static void
test_shared_cluster (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = NULL;
	CheckRun run;

	if (!have_tools ())
		return;
	path = make_written (fixture->dir, "shared.qcow2", NULL);
	/* Guest cluster 1 now points at guest cluster 0's host cluster. */
	put_be64 (path, l2_entry_at (path, 1), be64_at (path, l2_entry_at (path, 0)));
	assert_check_equals_qemu (path, &run);
	g_assert_cmpuint (run.res.corruptions, >=, 1);
	g_assert_cmpuint (run.res.leaks, ==, 1); /* guest cluster 1's old host cluster */
	g_assert_true (has_problem (&run, "used 2 time(s)"));
	check_run_clear (&run);
}

static void
test_refcount_zero (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = NULL;
	guint64 host;
	CheckRun run;

	if (!have_tools ())
		return;
	path = make_written (fixture->dir, "zero.qcow2", NULL);
	host = be64_at (path, l2_entry_at (path, 2)) & 0x00fffffffffffe00ull;
	put_be16 (path, refcount_at (path, host / 65536), 0);
	assert_check_equals_qemu (path, &run);
	/* The refcount is too low, and the copied flag no longer matches it. */
	g_assert_cmpuint (run.res.corruptions, ==, 2);
	g_assert_cmpuint (run.res.leaks, ==, 0);
	check_run_clear (&run);
}

static void
test_bad_pointers (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *beyond = NULL;
	g_autofree char *unaligned = NULL;
	g_autofree char *metadata = NULL;
	CheckRun run;

	if (!have_tools ())
		return;
	/* A data cluster 1 GiB past the end of the file. */
	beyond = make_written (fixture->dir, "beyond.qcow2", NULL);
	put_be64 (beyond, l2_entry_at (beyond, 3), (1ull << 63) | (1ull << 30));
	assert_check_equals_qemu (beyond, &run);
	g_assert_cmpuint (run.res.corruptions, >=, 1);
	g_assert_true (has_problem (&run, "guest offset 0x30000 points to a data cluster at offset "
					 "0x40000000, beyond the end"));
	check_run_clear (&run);

	/* A data cluster half a cluster off. */
	unaligned = make_written (fixture->dir, "unaligned.qcow2", NULL);
	put_be64 (unaligned, l2_entry_at (unaligned, 3), be64_at (unaligned, l2_entry_at (unaligned, 3)) + 32768);
	assert_check_equals_qemu (unaligned, &run);
	g_assert_cmpuint (run.res.corruptions, >=, 1);
	check_run_clear (&run);

	/* A data cluster on the L1 table: two structures on one cluster. */
	metadata = make_written (fixture->dir, "metadata.qcow2", NULL);
	put_be64 (metadata, l2_entry_at (metadata, 3), (1ull << 63) | be64_at (metadata, 40));
	assert_check_equals_qemu (metadata, &run);
	g_assert_cmpuint (run.res.corruptions, >=, 1);
	check_run_clear (&run);
}

/* A snapshot's L1 entry pointing at the refcount table, read as an L2 table. */
static void
test_snapshot_l1 (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = NULL;
	guint64 snapshots, l1;
	CheckRun run;

	if (!have_tools ())
		return;
	path = make_written (fixture->dir, "snapl1.qcow2", NULL);
	vmi_test_qemu_img ("snapshot -c one '%s'", path);
	snapshots = be64_at (path, 64);
	l1 = be64_at (path, snapshots);
	put_be64 (path, l1, be64_at (path, 48));
	assert_check_equals_qemu (path, &run);
	g_assert_cmpuint (run.res.corruptions, >=, 1);
	check_run_clear (&run);
}

static void
test_absurd_file (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	CheckRun run;

	if (!vmi_test_require_qemu_img ())
		return;
	/* 512-byte clusters in a sparse 9 GiB file: 18 Mi clusters, over the counter cap. */
	path = vmi_test_qemu_img_create (fixture->dir, "absurd.qcow2", "qcow2", "cluster_size=512", "1M");
	g_assert_cmpint (truncate (path, (off_t) 9 * 1024 * MiB), ==, 0);
	g_assert_false (run_check (path, &run, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_assert_nonnull (strstr (error->message, "clusters"));
	check_run_clear (&run);
}

static void
test_cancelled (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new ();
	g_autoptr(GError) error = NULL;
	CheckRun run;

	if (!have_tools ())
		return;
	path = make_written (fixture->dir, "cancel.qcow2", NULL);
	g_cancellable_cancel (cancellable);
	g_assert_false (run_check (path, &run, cancellable, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CANCELLED);
	check_run_clear (&run);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	vmi_test_add_with_dir ("/qcow2-check/clean/shapes", NULL, test_clean_shapes);
	vmi_test_add_with_dir ("/qcow2-check/clean/empty-and-large", NULL, test_clean_empty_and_large);
	vmi_test_add_with_dir ("/qcow2-check/clean/snapshots-and-bitmaps", NULL,
			       test_clean_snapshots_and_bitmaps);
	vmi_test_add_with_dir ("/qcow2-check/clean/compressed", NULL, test_clean_compressed);
	vmi_test_add_with_dir ("/qcow2-check/clean/features", NULL, test_clean_features);
	vmi_test_add_with_dir ("/qcow2-check/clean/our-writer", NULL, test_clean_our_writer);
	vmi_test_add_with_dir ("/qcow2-check/bad/leaked-cluster", NULL, test_leaked_cluster);
	vmi_test_add_with_dir ("/qcow2-check/bad/shared-cluster", NULL, test_shared_cluster);
	vmi_test_add_with_dir ("/qcow2-check/bad/refcount-zero", NULL, test_refcount_zero);
	vmi_test_add_with_dir ("/qcow2-check/bad/pointers", NULL, test_bad_pointers);
	vmi_test_add_with_dir ("/qcow2-check/bad/snapshot-l1", NULL, test_snapshot_l1);
	vmi_test_add_with_dir ("/qcow2-check/bad/absurd-file", NULL, test_absurd_file);
	vmi_test_add_with_dir ("/qcow2-check/cancelled", NULL, test_cancelled);
	return g_test_run ();
}
