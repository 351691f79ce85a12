/*
 * Tests of the check hooks of vmdk, vhd, vhdx and vdi: a good image made by qemu-img and one made
 * by our writer (no findings), and images broken with a byte edit. qemu-img check is the oracle
 * where it has an answer (vmdk: grains beyond the end of the file; vdi: block map entries;
 * vhdx: clean images); what qemu does not look for (overlaps, footer copies, leaked VDI blocks)
 * is asserted from the edit made.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_raw_plugin;
extern const VmiFormatPlugin vmi_qcow2_plugin;
extern const VmiFormatPlugin vmi_vmdk_plugin;
extern const VmiFormatPlugin vmi_vhd_plugin;
extern const VmiFormatPlugin vmi_vhdx_plugin;
extern const VmiFormatPlugin vmi_vdi_plugin;

#define MiB (1024u * 1024u)

typedef struct {
	VmiCheckResult res;
} CheckRun;

static void
check_run_clear (CheckRun *run)
{
	g_clear_pointer (&run->res.problems, g_ptr_array_unref);
}

static int
open_sibling (const char *name, gpointer user_data, GError **error)
{
	g_autofree char *path = g_build_filename (user_data, name, NULL);
	int fd = open (path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot open %s", name);
	return fd;
}

/* Opens path with plugin and runs its check; asserts that both work. */
static void
run_check (const VmiFormatPlugin *plugin, const char *path, CheckRun *run)
{
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	g_autofree char *dir = g_path_get_dirname (path);
	g_autoptr(GError) error = NULL;
	VmiOpenArgs args = { 0 };
	VmiImage *image;

	g_assert_cmpint (fd, >=, 0);
	memset (run, 0, sizeof *run);
	run->res.problems = g_ptr_array_new_with_free_func (g_free);
	args.fd = fd;
	args.file_size = vmi_test_file_size (path);
	args.open_sibling = open_sibling;
	args.open_sibling_data = dir;
	image = plugin->open (&args, &error);
	g_assert_no_error (error);
	g_assert_nonnull (plugin->check);
	g_assert_true (plugin->check (image, &run->res, NULL, &error));
	g_assert_no_error (error);
	plugin->close (image);
	close (fd);
	for (guint i = 0; i < run->res.problems->len; i++)
		g_test_message ("%s: %s", path, (char *) g_ptr_array_index (run->res.problems, i));
	g_test_message ("%s: %" G_GUINT64_FORMAT " corruptions, %" G_GUINT64_FORMAT " leaks, %"
			G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " allocated, end %" G_GUINT64_FORMAT,
			path, run->res.corruptions, run->res.leaks, run->res.allocated_clusters,
			run->res.total_clusters, run->res.image_end_offset);
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

/* The corruptions qemu-img check --output=json counts (0 when it reports none). */
static guint64
qemu_corruptions (const char *path, const char *fmt)
{
	g_autofree char *out = NULL;
	g_autoptr(JsonParser) parser = json_parser_new ();
	g_autoptr(GError) error = NULL;
	JsonObject *o;
	int status;

	status = vmi_test_sh (&out, "qemu-img check -f %s --output=json '%s' 2>/dev/null", fmt, path);
	g_assert_true (status == 0 || status == 2 || status == 3);
	g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
	o = json_node_get_object (json_parser_get_root (parser));
	return json_object_has_member (o, "corruptions") ? vmi_test_json_u64 (o, "corruptions") : 0;
}

static guint32
le32_at (const char *path, guint64 offset)
{
	return vmi_test_read_le32 (path, offset);
}

static guint32
be32_at (const char *path, guint64 offset)
{
	guint32 v;

	vmi_test_read_bytes (path, offset, &v, sizeof v);
	return GUINT32_FROM_BE (v);
}

static void
put_be32 (const char *path, guint64 offset, guint32 value)
{
	guint32 be = GUINT32_TO_BE (value);

	vmi_test_write_bytes (path, offset, &be, sizeof be);
}

static gboolean
have_tools (void)
{
	return vmi_test_require_qemu_img () &&
	       vmi_test_require_program ("qemu-io", "qemu-utils", "cannot write test images");
}

/* A pattern disk of a few MiB converted by qemu-img to fmt (with opts). */
static char *
qemu_image (const char *dir, const char *name, const char *fmt, const char *opts)
{
	g_autofree char *raw = g_build_filename (dir, "pattern.raw", NULL);
	char *path = g_build_filename (dir, name, NULL);

	if (!g_file_test (raw, G_FILE_TEST_EXISTS))
		vmi_test_make_pattern_image (raw, 5 * MiB + 1536, 5);
	vmi_test_qemu_img ("convert -O %s %s%s '%s' '%s'", fmt, opts != NULL ? "-o " : "",
			   opts != NULL ? opts : "", raw, path);
	return path;
}

/* The same disk written by our writer of plugin with options. */
static char *
our_image (const char *dir, const char *name, const VmiFormatPlugin *plugin, const char *options)
{
	g_autofree char *raw = g_build_filename (dir, "pattern.raw", NULL);
	g_autoptr(GVariant) opts = g_variant_ref_sink (g_variant_new_parsed (options));
	char *path = g_build_filename (dir, name, NULL);

	if (!g_file_test (raw, G_FILE_TEST_EXISTS))
		vmi_test_make_pattern_image (raw, 5 * MiB + 1536, 5);
	g_assert_true (vmi_test_convert (&vmi_raw_plugin, raw, plugin, path, opts, NULL));
	return path;
}

/* clusters: the image has blocks or grains to count (all but a fixed VHD). */
static void
assert_clean_full (const VmiFormatPlugin *plugin, const char *path, const char *qemu_fmt,
		   gboolean clusters)
{
	CheckRun run;

	run_check (plugin, path, &run);
	g_assert_cmpuint (run.res.corruptions, ==, 0);
	g_assert_cmpuint (run.res.leaks, ==, 0);
	g_assert_cmpuint (run.res.total_clusters > 0, ==, clusters);
	g_assert_cmpuint (run.res.allocated_clusters > 0, ==, clusters);
	g_assert_cmpuint (run.res.allocated_clusters, <=, run.res.total_clusters);
	g_assert_cmpuint (run.res.image_end_offset, <=, vmi_test_file_size (path));
	g_assert_cmpuint (run.res.problems->len, ==, 0);
	if (qemu_fmt != NULL)
		g_assert_cmpuint (qemu_corruptions (path, qemu_fmt), ==, 0);
	check_run_clear (&run);
}

static void
assert_clean (const VmiFormatPlugin *plugin, const char *path, const char *qemu_fmt)
{
	assert_clean_full (plugin, path, qemu_fmt, TRUE);
}

/* --- vmdk -------------------------------------------------------------------------------- */

/* The file offset of entry j of the first grain table of a monolithicSparse file. */
static guint64
vmdk_gte_at (const char *path, guint j)
{
	guint64 gd = vmi_test_read_le64 (path, 56) * 512;

	return (guint64) le32_at (path, gd) * 512 + 4ull * j;
}

static void
test_vmdk (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *sparse = NULL, *stream = NULL, *ours = NULL, *ours_stream = NULL;
	g_autofree char *beyond = NULL, *shared = NULL;
	CheckRun run;

	if (!have_tools ())
		return;
	sparse = qemu_image (fixture->dir, "q.vmdk", "vmdk", NULL);
	stream = qemu_image (fixture->dir, "qs.vmdk", "vmdk", "subformat=streamOptimized");
	ours = our_image (fixture->dir, "o.vmdk", &vmi_vmdk_plugin, "@a{sv} {}");
	ours_stream = our_image (fixture->dir, "os.vmdk", &vmi_vmdk_plugin,
				 "{'subformat': <'streamOptimized'>}");
	assert_clean (&vmi_vmdk_plugin, sparse, "vmdk");
	assert_clean (&vmi_vmdk_plugin, stream, "vmdk");
	assert_clean (&vmi_vmdk_plugin, ours, "vmdk");
	assert_clean (&vmi_vmdk_plugin, ours_stream, "vmdk");
	run_check (&vmi_vmdk_plugin, stream, &run);
	g_assert_cmpuint (run.res.compressed_clusters, ==, run.res.allocated_clusters);
	check_run_clear (&run);

	/* One grain 1 GiB past the end of the file: qemu-img check stops at it (a failed check). */
	vmi_test_sh_ok ("cp '%s' '%s/beyond.vmdk'", sparse, fixture->dir);
	beyond = g_build_filename (fixture->dir, "beyond.vmdk", NULL);
	vmi_test_write_le32 (beyond, vmdk_gte_at (beyond, 3), 2u * 1024u * 1024u);
	run_check (&vmi_vmdk_plugin, beyond, &run);
	g_assert_cmpuint (run.res.corruptions, ==, 1);
	{
		g_autofree char *out = NULL;

		g_assert_cmpint (vmi_test_sh (&out, "qemu-img check -f vmdk '%s' 2>&1", beyond), ==, 1);
		g_assert_nonnull (strstr (out, "cluster offset for sector 384 points after EOF"));
	}
	g_assert_true (has_problem (&run, "grain 3 (guest offset 0x30000) is at offset 0x40000000, "
					  "beyond the end"));
	check_run_clear (&run);

	/* Grain 1 on grain 0's sectors: qemu does not look; one overlap here. */
	vmi_test_sh_ok ("cp '%s' '%s/shared.vmdk'", sparse, fixture->dir);
	shared = g_build_filename (fixture->dir, "shared.vmdk", NULL);
	vmi_test_write_le32 (shared, vmdk_gte_at (shared, 1), le32_at (shared, vmdk_gte_at (shared, 0)));
	run_check (&vmi_vmdk_plugin, shared, &run);
	g_assert_cmpuint (run.res.corruptions, ==, 1);
	g_assert_true (has_problem (&run, "starts inside another one"));
	check_run_clear (&run);
}

/* --- vhd --------------------------------------------------------------------------------- */

static void
test_vhd (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *dynamic = NULL, *ours = NULL, *ours_fixed = NULL;
	g_autofree char *shared = NULL, *copy = NULL;
	guint64 bat;
	CheckRun run;

	if (!have_tools ())
		return;
	dynamic = qemu_image (fixture->dir, "q.vhd", "vpc", NULL);
	ours = our_image (fixture->dir, "o.vhd", &vmi_vhd_plugin, "@a{sv} {}");
	ours_fixed = our_image (fixture->dir, "of.vhd", &vmi_vhd_plugin, "{'subformat': <'fixed'>}");
	/* qemu-img has no check for vpc. */
	assert_clean (&vmi_vhd_plugin, dynamic, NULL);
	assert_clean (&vmi_vhd_plugin, ours, NULL);
	assert_clean_full (&vmi_vhd_plugin, ours_fixed, NULL, FALSE);

	/* Block 1 on block 0's sectors. */
	vmi_test_sh_ok ("cp '%s' '%s/shared.vhd'", dynamic, fixture->dir);
	shared = g_build_filename (fixture->dir, "shared.vhd", NULL);
	bat = (guint64) be32_at (shared, 512 + 16 + 4); /* the dynamic header's table offset, low half */
	put_be32 (shared, bat + 4, be32_at (shared, bat));
	run_check (&vmi_vhd_plugin, shared, &run);
	g_assert_cmpuint (run.res.corruptions, ==, 1);
	g_assert_true (has_problem (&run, "Two blocks overlap"));
	check_run_clear (&run);

	/* The footer copy at offset 0 no longer equals the footer at the end. */
	vmi_test_sh_ok ("cp '%s' '%s/copy.vhd'", dynamic, fixture->dir);
	copy = g_build_filename (fixture->dir, "copy.vhd", NULL);
	vmi_test_write_bytes (copy, 200, "x", 1);
	run_check (&vmi_vhd_plugin, copy, &run);
	g_assert_cmpuint (run.res.corruptions, ==, 1);
	g_assert_true (has_problem (&run, "footer copy at offset 0 differs"));
	check_run_clear (&run);
}

/* --- vhdx -------------------------------------------------------------------------------- */

static void
test_vhdx (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *qemu = NULL, *ours = NULL, *shared = NULL;
	const guint64 bat = 2 * MiB; /* our writer: 1 MiB of headers, 1 MiB of log, then the BAT */
	guint64 entry0;
	CheckRun run;

	if (!have_tools ())
		return;
	qemu = qemu_image (fixture->dir, "q.vhdx", "vhdx", NULL);
	ours = our_image (fixture->dir, "o.vhdx", &vmi_vhdx_plugin, "{'block-size': <uint64 1048576>}");
	assert_clean (&vmi_vhdx_plugin, qemu, "vhdx");
	assert_clean (&vmi_vhdx_plugin, ours, "vhdx");

	/* Payload block 1 on block 0's MiB. */
	vmi_test_sh_ok ("cp '%s' '%s/shared.vhdx'", ours, fixture->dir);
	shared = g_build_filename (fixture->dir, "shared.vhdx", NULL);
	entry0 = vmi_test_read_le64 (shared, bat);
	g_assert_cmpuint (entry0 & 7, ==, 6); /* fully present */
	vmi_test_write_le64 (shared, bat + 8, entry0);
	run_check (&vmi_vhdx_plugin, shared, &run);
	g_assert_cmpuint (run.res.corruptions, ==, 1);
	g_assert_true (has_problem (&run, "Two blocks overlap"));
	check_run_clear (&run);
}

/* --- vdi --------------------------------------------------------------------------------- */

static void
test_vdi (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *qemu = NULL, *qemu_static = NULL, *ours = NULL;
	g_autofree char *dup = NULL, *cut = NULL;
	guint64 bmap;
	CheckRun run;

	if (!have_tools ())
		return;
	qemu = qemu_image (fixture->dir, "q.vdi", "vdi", NULL);
	qemu_static = qemu_image (fixture->dir, "qs.vdi", "vdi", "static=on");
	ours = our_image (fixture->dir, "o.vdi", &vmi_vdi_plugin, "@a{sv} {}");
	assert_clean (&vmi_vdi_plugin, qemu, "vdi");
	assert_clean (&vmi_vdi_plugin, qemu_static, "vdi");
	assert_clean (&vmi_vdi_plugin, ours, "vdi");

	/* Block 1 points at block 0's image block: qemu-img counts that duplicate; its old image
	 * block is now used by nothing (a leak, which qemu does not count). */
	vmi_test_sh_ok ("cp '%s' '%s/dup.vdi'", qemu, fixture->dir);
	dup = g_build_filename (fixture->dir, "dup.vdi", NULL);
	bmap = le32_at (dup, 0x154);
	vmi_test_write_le32 (dup, bmap + 4, le32_at (dup, bmap));
	run_check (&vmi_vdi_plugin, dup, &run);
	g_assert_cmpuint (run.res.corruptions, ==, qemu_corruptions (dup, "vdi"));
	g_assert_cmpuint (run.res.corruptions, ==, 1);
	g_assert_cmpuint (run.res.leaks, ==, 1);
	g_assert_true (has_problem (&run, "which an earlier block also uses"));
	check_run_clear (&run);

	/* The last image block cut off by the end of the file. */
	vmi_test_sh_ok ("cp '%s' '%s/cut.vdi'", qemu, fixture->dir);
	cut = g_build_filename (fixture->dir, "cut.vdi", NULL);
	g_assert_cmpint (truncate (cut, (off_t) (vmi_test_file_size (cut) - 4096)), ==, 0);
	run_check (&vmi_vdi_plugin, cut, &run);
	g_assert_cmpuint (run.res.corruptions, ==, 1);
	g_assert_true (has_problem (&run, "beyond the end"));
	check_run_clear (&run);
}

/* --- hostile bytes ---------------------------------------------------------------------- */

/*
 * Random damage to the metadata of good images: open may refuse (a VMI_ERROR), and check must
 * then either run (findings in the result) or fail with a VMI_ERROR; never crash, hang or leak
 * (ASan runs this too).
 */
static void
mutate_and_check (const VmiFormatPlugin *plugin, const char *good, const char *dir, guint rounds,
		  guint64 span)
{
	g_autofree char *path = g_build_filename (dir, "mutant", NULL);
	guint64 len = vmi_test_file_size (good);
	guint opened = 0, checked = 0;

	vmi_test_sh_ok ("cp '%s' '%s'", good, path);
	for (guint round = 0; round < rounds; round++) {
		g_autoptr(GError) error = NULL;
		guint edits = (guint) g_test_rand_int_range (1, 9);
		guint64 at[8];
		guint8 saved[8];
		VmiOpenArgs args = { 0 };
		VmiImage *image;
		CheckRun run = { 0 };
		gboolean ok;
		int fd;

		/* Edits in place, undone after the round: the file is written once, not per round. */
		for (guint e = 0; e < edits; e++) {
			guint8 b = (guint8) g_test_rand_int_range (0, 256);

			at[e] = (guint64) g_test_rand_int_range (0, (gint32) MIN (len, span));
			vmi_test_read_bytes (path, at[e], &saved[e], 1);
			vmi_test_write_bytes (path, at[e], &b, 1);
		}
		fd = open (path, O_RDONLY | O_CLOEXEC);
		g_assert_cmpint (fd, >=, 0);
		args.fd = fd;
		args.file_size = len;
		image = plugin->open (&args, &error);
		if (image == NULL) {
			g_assert_nonnull (error);
		} else {
			opened++;
			run.res.problems = g_ptr_array_new_with_free_func (g_free);
			ok = plugin->check (image, &run.res, NULL, &error);
			g_assert_true (ok == (error == NULL));
			if (!ok)
				g_assert_true (error->domain == VMI_ERROR);
			checked += ok;
			g_assert_cmpuint (run.res.problems->len, <=, VMI_CHECK_MAX_PROBLEMS);
			check_run_clear (&run);
			plugin->close (image);
		}
		close (fd);
		for (guint e = edits; e-- > 0;)
			vmi_test_write_bytes (path, at[e], &saved[e], 1);
	}
	g_test_message ("%s: %u of %u mutants opened, %u checked", good, opened, rounds, checked);
	g_assert_cmpuint (opened, >, 0);
}

static void
test_hostile (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (fixture->dir, "small.raw", NULL);
	static const struct {
		const VmiFormatPlugin *plugin;
		const char *options;
		guint64 span; /* where the metadata is */
	} cases[] = {
		/* Our qcow2 writer puts tables among the data and at the end: all of the file. */
		{ &vmi_qcow2_plugin, "{'cluster-size': <uint64 4096>}", G_MAXUINT64 },
		{ &vmi_qcow2_plugin, "{'compress': <true>, 'cluster-size': <uint64 4096>}", G_MAXUINT64 },
		{ &vmi_vmdk_plugin, "@a{sv} {}", 64 * 1024 },
		{ &vmi_vmdk_plugin, "{'subformat': <'streamOptimized'>}", 1024 * 1024 },
		{ &vmi_vhd_plugin, "@a{sv} {}", 4096 },
		{ &vmi_vhdx_plugin, "{'block-size': <uint64 1048576>}", 4 * MiB },
		{ &vmi_vdi_plugin, "@a{sv} {}", 4096 },
	};

	vmi_test_make_pattern_image (raw, MiB + 4096, 9);
	for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autoptr(GVariant) opts = g_variant_ref_sink (g_variant_new_parsed (cases[i].options));
		g_autofree char *good = g_strdup_printf ("%s/good%u", fixture->dir, i);

		g_assert_true (vmi_test_convert (&vmi_raw_plugin, raw, cases[i].plugin, good, opts, NULL));
		/* -m thorough: a short fuzzing run. */
		mutate_and_check (cases[i].plugin, good, fixture->dir, g_test_thorough () ? 20000 : 150,
				  cases[i].span);
	}
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	vmi_test_add_with_dir ("/check/vmdk", NULL, test_vmdk);
	vmi_test_add_with_dir ("/check/vhd", NULL, test_vhd);
	vmi_test_add_with_dir ("/check/vhdx", NULL, test_vhdx);
	vmi_test_add_with_dir ("/check/vdi", NULL, test_vdi);
	vmi_test_add_with_dir ("/check/hostile", NULL, test_hostile);
	return g_test_run ();
}
