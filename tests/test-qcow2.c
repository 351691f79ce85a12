/*
 * Tests of the qcow2 plugin. qemu-img (and qemu-io) make the images and are the oracle: facts
 * must equal qemu-img info, data must equal qemu-img's by qemu-img compare, block status must
 * agree with qemu-img map, and images from our writer must pass qemu-img check.
 */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_qcow2_plugin;
extern const VmiFormatPlugin vmi_raw_plugin;

#define KiB 1024u
#define MiB (1024u * 1024u)

/* --- helpers ------------------------------------------------------------------------------- */

static gboolean
have_qemu_io (void)
{
	return vmi_test_require_program ("qemu-io", "qemu-utils", "cannot write test images");
}

/* qemu-img create -f qcow2 -o opts path size */
static char *
qemu_create (const char *dir, const char *name, const char *opts, const char *size)
{
	return vmi_test_qemu_img_create (dir, name, "qcow2", opts, size);
}

/* qemu-io -f qcow2 with one or more -c commands given as one string: "-c 'write ...' -c ..." */
static void
qemu_io (const char *path, const char *commands)
{
	vmi_test_sh_ok ("qemu-io -f qcow2 %s '%s' >/dev/null", commands, path);
}

static VmiSource *
open_ok (const char *path)
{
	return vmi_test_open (&vmi_qcow2_plugin, path, NULL);
}

static void
open_fails (const char *path, VmiError code)
{
	g_autofree char *message = vmi_test_open_error (&vmi_qcow2_plugin, path, code);

	g_assert_cmpuint (strlen (message), >, 20);
}

static GVariant *
format_specific (VmiSource *source)
{
	g_autoptr(GVariant) info = vmi_source_to_variant (source);
	GVariant *fs = g_variant_lookup_value (info, "format-specific", G_VARIANT_TYPE_VARDICT);

	g_assert_nonnull (fs);
	return fs;
}

static void
assert_value_equals_json (const char *key, GVariant *ours, JsonNode *theirs)
{
	if (g_variant_is_of_type (ours, G_VARIANT_TYPE_STRING)) {
		g_assert_cmpstr (g_variant_get_string (ours, NULL), ==, json_node_get_string (theirs));
	} else if (g_variant_is_of_type (ours, G_VARIANT_TYPE_BOOLEAN)) {
		g_assert_cmpint (g_variant_get_boolean (ours), ==, json_node_get_boolean (theirs));
	} else if (g_variant_is_of_type (ours, G_VARIANT_TYPE_UINT64)) {
		g_assert_cmpuint (g_variant_get_uint64 (ours), ==, (guint64) json_node_get_int (theirs));
	} else {
		g_error ("unexpected type %s for %s", g_variant_get_type_string (ours), key);
	}
}

static void
compare_bitmaps (GVariant *ours, JsonArray *theirs)
{
	g_assert_cmpuint (g_variant_n_children (ours), ==, json_array_get_length (theirs));
	for (guint i = 0; i < json_array_get_length (theirs); i++) {
		g_autoptr(GVariant) b = g_variant_get_child_value (ours, i);
		JsonObject *t = json_array_get_object_element (theirs, i);
		g_autoptr(GVariant) name = g_variant_lookup_value (b, "name", NULL);
		g_autoptr(GVariant) gran = g_variant_lookup_value (b, "granularity", NULL);
		g_autoptr(GVariant) flags = g_variant_lookup_value (b, "flags", NULL);
		JsonArray *tflags = json_object_get_array_member (t, "flags");

		assert_value_equals_json ("name", name, json_object_get_member (t, "name"));
		assert_value_equals_json ("granularity", gran, json_object_get_member (t, "granularity"));
		g_assert_cmpuint (g_variant_n_children (flags), ==, json_array_get_length (tflags));
		for (guint j = 0; j < json_array_get_length (tflags); j++) {
			g_autoptr(GVariant) f = g_variant_get_child_value (flags, j);

			g_assert_cmpstr (g_variant_get_string (f, NULL), ==,
					 json_array_get_string_element (tflags, j));
		}
	}
}

static void
compare_snapshots (GVariant *fs, JsonObject *qemu)
{
	g_autoptr(GVariant) count = g_variant_lookup_value (fs, "snapshot-count", G_VARIANT_TYPE_UINT64);
	g_autoptr(GVariant) list = g_variant_lookup_value (fs, "snapshots", NULL);
	JsonArray *theirs = json_object_has_member (qemu, "snapshots")
				    ? json_object_get_array_member (qemu, "snapshots")
				    : NULL;
	static const char *const keys[] = { "id", "name", "vm-state-size", "date-sec", "date-nsec",
					    "vm-clock-sec", "vm-clock-nsec", "icount" };

	g_assert_nonnull (count);
	if (theirs == NULL) {
		g_assert_cmpuint (g_variant_get_uint64 (count), ==, 0);
		g_assert_null (list);
		return;
	}
	g_assert_cmpuint (g_variant_get_uint64 (count), ==, json_array_get_length (theirs));
	g_assert_nonnull (list);
	g_assert_cmpuint (g_variant_n_children (list), ==, json_array_get_length (theirs));
	for (guint i = 0; i < json_array_get_length (theirs); i++) {
		g_autoptr(GVariant) s = g_variant_get_child_value (list, i);
		JsonObject *t = json_array_get_object_element (theirs, i);

		for (gsize k = 0; k < G_N_ELEMENTS (keys); k++) {
			g_autoptr(GVariant) v = g_variant_lookup_value (s, keys[k], NULL);

			if (!json_object_has_member (t, keys[k]))
				continue;
			g_assert_nonnull (v);
			assert_value_equals_json (keys[k], v, json_object_get_member (t, keys[k]));
		}
	}
}

/* Virtual size, cluster size, subformat and every format-specific fact against qemu-img info. */
static void
compare_info (VmiSource *source, const char *path)
{
	g_autoptr(JsonObject) qemu = vmi_test_qemu_img_info (path, "qcow2");
	JsonObject *data = json_object_get_object_member (
		json_object_get_object_member (qemu, "format-specific"), "data");
	g_autoptr(GVariant) fs = format_specific (source);
	const VmiImageInfo *info = vmi_source_get_info (source);
	g_autoptr(GList) members = json_object_get_members (data);
	static const char *const ours_named_as_qemu[] = { "compat", "compression-type",
							  "refcount-bits", "lazy-refcounts", "corrupt",
							  "extended-l2", "data-file", "data-file-raw",
							  "encrypt", "bitmaps" };
	g_autoptr(GVariant) dirty = g_variant_lookup_value (fs, "dirty-flag", G_VARIANT_TYPE_BOOLEAN);

	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==,
			  vmi_test_json_u64 (qemu, "virtual-size"));
	g_assert_cmpuint (info->cluster_size, ==,
			  vmi_test_json_u64 (qemu, "cluster-size"));
	g_assert_cmpstr (info->subformat, ==,
			 g_str_equal (json_object_get_string_member (data, "compat"), "0.10") ? "v2"
											      : "v3");
	for (GList *l = members; l != NULL; l = l->next) {
		const char *key = l->data;
		g_autoptr(GVariant) ours = g_variant_lookup_value (fs, key, NULL);

		if (ours == NULL)
			g_error ("format-specific fact %s of qemu-img info is missing", key);
		if (g_str_equal (key, "encrypt")) {
			g_autoptr(GVariant) fmt = g_variant_lookup_value (ours, "format", NULL);
			JsonObject *enc = json_object_get_object_member (data, key);

			assert_value_equals_json ("format", fmt, json_object_get_member (enc, "format"));
		} else if (g_str_equal (key, "bitmaps")) {
			compare_bitmaps (ours, json_object_get_array_member (data, key));
		} else {
			assert_value_equals_json (key, ours, json_object_get_member (data, key));
		}
	}
	/* And nothing named as qemu names it that qemu does not report. */
	for (gsize i = 0; i < G_N_ELEMENTS (ours_named_as_qemu); i++) {
		g_autoptr(GVariant) v = g_variant_lookup_value (fs, ours_named_as_qemu[i], NULL);

		if (v != NULL && !json_object_has_member (data, ours_named_as_qemu[i]))
			g_error ("we report %s, qemu-img info does not", ours_named_as_qemu[i]);
	}
	g_assert_nonnull (dirty);
	g_assert_cmpint (g_variant_get_boolean (dirty), ==,
			 json_object_get_boolean_member (qemu, "dirty-flag"));
	compare_snapshots (fs, qemu);
}

typedef struct {
	guint64 start, length;
	VmiExtentKind kind;
} Extent;

/* qemu-img map --output=json as extents of our three kinds. */
static GArray *
qemu_map (const char *path)
{
	const char *argv[] = { "qemu-img", "map", "--output=json", "-f", "qcow2", path, NULL };
	g_autofree char *out = vmi_test_run (argv);
	g_autoptr(JsonParser) parser = json_parser_new ();
	g_autoptr(GError) error = NULL;
	GArray *extents = g_array_new (FALSE, FALSE, sizeof (Extent));
	JsonArray *list;

	json_parser_load_from_data (parser, out, -1, &error);
	g_assert_no_error (error);
	list = json_node_get_array (json_parser_get_root (parser));
	for (guint i = 0; i < json_array_get_length (list); i++) {
		JsonObject *o = json_array_get_object_element (list, i);
		Extent e = { vmi_test_json_u64 (o, "start"),
			     vmi_test_json_u64 (o, "length"), VMI_EXTENT_HOLE };

		if (json_object_get_boolean_member (o, "data"))
			e.kind = VMI_EXTENT_DATA;
		else if (json_object_get_boolean_member (o, "present"))
			e.kind = VMI_EXTENT_ZERO;
		g_array_append_val (extents, e);
	}
	return extents;
}

static GArray *
our_map (VmiSource *source)
{
	GArray *extents = g_array_new (FALSE, FALSE, sizeof (Extent));
	guint64 size = vmi_source_get_virtual_size (source), pos = 0;

	while (pos < size) {
		g_autoptr(GError) error = NULL;
		VmiExtent x = { 0 };
		Extent e;

		g_assert_true (vmi_qcow2_plugin.block_status (vmi_source_get_image (source), pos,
							      size - pos, &x, &error));
		g_assert_no_error (error);
		g_assert_cmpuint (x.length, >, 0);
		g_assert_cmpuint (x.length, <=, size - pos);
		e.start = pos;
		e.length = x.length;
		e.kind = x.kind;
		/* Runs of one kind are merged: the next run has another kind. */
		if (extents->len > 0)
			g_assert_cmpint (g_array_index (extents, Extent, extents->len - 1).kind, !=,
					 e.kind);
		g_array_append_val (extents, e);
		pos += x.length;
	}
	return extents;
}

static VmiExtentKind
kind_at (GArray *extents, guint64 offset)
{
	for (guint i = 0; i < extents->len; i++) {
		Extent *e = &g_array_index (extents, Extent, i);

		if (offset >= e->start && offset - e->start < e->length)
			return e->kind;
	}
	g_error ("no extent at %" G_GUINT64_FORMAT, offset);
}

/* Our block status and qemu-img map agree at every boundary either of them reports. */
static void
compare_map (VmiSource *source, const char *path)
{
	g_autoptr(GArray) theirs = qemu_map (path);
	g_autoptr(GArray) ours = our_map (source);

	for (int pass = 0; pass < 2; pass++) {
		GArray *list = pass == 0 ? theirs : ours;

		for (guint i = 0; i < list->len; i++) {
			Extent *e = &g_array_index (list, Extent, i);

			g_assert_cmpint (kind_at (ours, e->start), ==, kind_at (theirs, e->start));
			g_assert_cmpint (kind_at (ours, e->start + e->length - 1), ==,
					 kind_at (theirs, e->start + e->length - 1));
		}
	}
}

/* Converts path through our reader into raw and compares with qemu-img's reading of it. */
static void
compare_data (const char *path, const char *dir)
{
	g_autofree char *raw = g_build_filename (dir, "out.raw", NULL);

	g_assert_true (vmi_test_convert (&vmi_qcow2_plugin, path, &vmi_raw_plugin, raw, NULL, NULL));
	g_assert_true (vmi_test_qemu_img_compare (path, "qcow2", raw, "raw"));
	g_unlink (raw);
}

/* Everything a qemu-made image must give: facts, block status and data. */
static void
check_image (const char *path, const char *dir)
{
	g_autoptr(VmiSource) source = open_ok (path);

	compare_info (source, path);
	g_assert_true (vmi_source_is_safe (source));
	compare_map (source, path);
	compare_data (path, dir);
	vmi_test_save_seed ("qcow2", path);
}

static char *
read_bytes (VmiSource *source, guint64 offset, gsize len, GError **error)
{
	char *buf = g_malloc (len);

	if (!vmi_qcow2_plugin.read (vmi_source_get_image (source), offset, buf, len, error))
		g_clear_pointer (&buf, g_free);
	return buf;
}

/* Some data qemu-io writes into most test images: patterns, partial clusters, a far cluster. */
#define SOME_WRITES                                                                                \
	"-c 'write -P 0x11 0 3k' -c 'write -P 0x22 70k 200k' -c 'write -P 0x33 1m 512' "            \
	"-c 'write -P 0x44 3m 64k'"

/* --- probe --------------------------------------------------------------------------------- */

static void
test_probe (void)
{
	guint8 head[VMI_PROBE_HEAD_SIZE] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };

	g_assert_cmpuint (vmi_qcow2_plugin.probe (head, sizeof head, 1 * MiB), ==, VMI_PROBE_CERTAIN);
	head[7] = 2;
	g_assert_cmpuint (vmi_qcow2_plugin.probe (head, sizeof head, 1 * MiB), ==, VMI_PROBE_CERTAIN);
	head[7] = 1; /* qcow v1: claimed so that open can say it is not supported */
	g_assert_cmpuint (vmi_qcow2_plugin.probe (head, sizeof head, 1 * MiB), ==, VMI_PROBE_LIKELY);
	g_assert_cmpuint (vmi_qcow2_plugin.probe (head, 4, 4), ==, VMI_PROBE_NO);
	head[0] = 'q';
	g_assert_cmpuint (vmi_qcow2_plugin.probe (head, sizeof head, 1 * MiB), ==, VMI_PROBE_NO);
	g_assert_cmpuint (vmi_qcow2_plugin.probe (head, 0, 0), ==, VMI_PROBE_NO);
}

/* --- images made by qemu ------------------------------------------------------------------- */

static void
test_read_versions_and_cluster_sizes (void)
{
	static const char *const opts[] = {
		"compat=0.10",
		"compat=0.10,cluster_size=4096",
		"compat=1.1,cluster_size=512",
		"compat=1.1,cluster_size=4096",
		"compat=1.1,cluster_size=65536",
		"compat=1.1,cluster_size=2097152",
		"compat=1.1,lazy_refcounts=on,refcount_bits=1",
		"compat=1.1,refcount_bits=64",
	};
	g_autofree char *dir = NULL;

	if (!vmi_test_require_qemu_img () || !have_qemu_io ())
		return;
	dir = vmi_test_tmpdir_new ();
	for (gsize i = 0; i < G_N_ELEMENTS (opts); i++) {
		g_autofree char *name = g_strdup_printf ("img%" G_GSIZE_FORMAT ".qcow2", i);
		/* 5 MiB + 1 KiB: the last cluster is partial for every cluster size but 512 */
		g_autofree char *path = qemu_create (dir, name, opts[i], "5243904");

		qemu_io (path, SOME_WRITES " -c 'write -P 0x55 5m 1k'");
		check_image (path, dir);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_read_compressed (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *raw = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	raw = g_build_filename (dir, "pattern.raw", NULL);
	vmi_test_make_pattern_image (raw, 4 * MiB + 3 * 512, 11);
	for (guint cs = 512; cs <= 2 * MiB; cs *= 8) {
		g_autofree char *path = g_strdup_printf ("%s/c%u.qcow2", dir, cs);
		g_autoptr(VmiSource) source = NULL;
		g_autofree char *check = NULL;

		vmi_test_sh_ok ("qemu-img convert -c -f raw -O qcow2 -o cluster_size=%u '%s' '%s'", cs,
				raw, path);
		/* qemu-img check counts the compressed clusters: there must be some. */
		g_assert_cmpint (vmi_test_sh (&check, "qemu-img check --output=json '%s'", path), ==, 0);
		g_assert_nonnull (strstr (check, "\"compressed-clusters\""));
		g_assert_null (strstr (check, "\"compressed-clusters\": 0,"));
		check_image (path, dir);
		/* Reading twice the same compressed cluster in pieces uses the cached cluster. */
		source = open_ok (path);
		for (guint64 off = 0; off < 128 * KiB; off += 4 * KiB) {
			g_autoptr(GError) error = NULL;
			g_autofree char *a = read_bytes (source, off, 4 * KiB, &error);

			g_assert_no_error (error);
			g_assert_nonnull (a);
		}
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_read_zero_clusters (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GArray) ours = NULL;
	gboolean has_zero = FALSE;

	if (!vmi_test_require_qemu_img () || !have_qemu_io ())
		return;
	dir = vmi_test_tmpdir_new ();
	path = qemu_create (dir, "zero.qcow2", "compat=1.1", "4M");
	/* zero flag on allocated clusters (data written first) and on unallocated ones */
	qemu_io (path, "-c 'write -P 0x66 0 1m' -c 'write -z 128k 256k' -c 'write -z 2m 128k' "
		       "-c 'write -P 0x77 3m 64k'");
	check_image (path, dir);
	source = open_ok (path);
	ours = our_map (source);
	for (guint i = 0; i < ours->len; i++)
		has_zero |= g_array_index (ours, Extent, i).kind == VMI_EXTENT_ZERO;
	g_assert_true (has_zero);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_read_extended_l2 (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autofree char *path2 = NULL;

	if (!vmi_test_require_qemu_img () || !have_qemu_io ())
		return;
	dir = vmi_test_tmpdir_new ();
	path = qemu_create (dir, "ext.qcow2", "compat=1.1,extended_l2=on,cluster_size=65536", "4M");
	/* Subclusters are 2 KiB: partial, adjacent and zeroed ones. */
	qemu_io (path, "-c 'write -P 0x11 0 2k' -c 'write -P 0x12 6k 4k' -c 'write -z 16k 8k' "
		       "-c 'write -P 0x13 64k 64k' -c 'write -z 70k 2k' -c 'write -P 0x14 1m 30k' "
		       "-c 'write -z 2m 64k' -c 'write -P 0x15 4032k 2k'");
	check_image (path, dir);
	path2 = qemu_create (dir, "ext2m.qcow2", "compat=1.1,extended_l2=on,cluster_size=2M", "5M");
	qemu_io (path2, "-c 'write -P 0x21 64k 64k' -c 'write -z 256k 128k' -c 'write -P 0x22 4m 1k'");
	check_image (path2, dir);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Reads at random byte offsets and lengths, across clusters and subclusters, against qemu-img. */
static void
random_reads (const char *path, const char *dir, guint32 seed)
{
	g_autofree char *raw = g_build_filename (dir, "oracle.raw", NULL);
	g_autoptr(VmiSource) source = open_ok (path);
	g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
	g_autoptr(GMappedFile) map = NULL;
	guint64 size = vmi_source_get_virtual_size (source);
	const char *theirs;

	vmi_test_sh_ok ("qemu-img convert -f qcow2 -O raw '%s' '%s'", path, raw);
	map = g_mapped_file_new (raw, FALSE, NULL);
	g_assert_nonnull (map);
	g_assert_cmpuint (g_mapped_file_get_length (map), ==, size);
	theirs = g_mapped_file_get_contents (map);
	for (guint i = 0; i < 300; i++) {
		guint64 offset = (guint64) g_rand_double_range (rand, 0, (gdouble) size);
		guint64 want = (guint64) g_rand_int_range (rand, 1, 300 * 1024);
		gsize len = (gsize) MIN (want, size - offset);
		g_autoptr(GError) error = NULL;
		g_autofree char *ours = read_bytes (source, offset, len, &error);

		g_assert_no_error (error);
		if (memcmp (ours, theirs + offset, len) != 0)
			g_error ("%s: %" G_GSIZE_FORMAT " bytes at %" G_GUINT64_FORMAT " differ", path, len,
				 offset);
	}
	g_unlink (raw);
}

static void
test_read_random_ranges (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *pattern = NULL;
	g_autofree char *compressed = NULL;
	g_autofree char *ext = NULL;
	g_autofree char *small = NULL;

	if (!vmi_test_require_qemu_img () || !have_qemu_io ())
		return;
	dir = vmi_test_tmpdir_new ();
	pattern = g_build_filename (dir, "pattern.raw", NULL);
	vmi_test_make_pattern_image (pattern, 4 * MiB + 1536, 21);
	compressed = g_build_filename (dir, "c.qcow2", NULL);
	vmi_test_sh_ok ("qemu-img convert -c -f raw -O qcow2 -o cluster_size=16384 '%s' '%s'", pattern,
			compressed);
	qemu_io (compressed, "-c 'write -P 0x71 100k 3k' -c 'write -z 1m 32k'");
	random_reads (compressed, dir, 1);
	ext = qemu_create (dir, "ext.qcow2", "extended_l2=on,cluster_size=32768", "4M");
	qemu_io (ext, "-c 'write -P 0x72 1k 5k' -c 'write -z 8k 4k' -c 'write -P 0x73 40k 100k' "
		      "-c 'write -z 64k 2k' -c 'write -P 0x74 3m 1k'");
	random_reads (ext, dir, 2);
	small = qemu_create (dir, "small.qcow2", "cluster_size=512", "2M");
	qemu_io (small, "-c 'write -P 0x75 0 300k' -c 'write -z 100k 1k' -c 'write -P 0x76 1m 77k'");
	random_reads (small, dir, 3);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_read_snapshots_and_bitmaps (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) fs = NULL;
	g_autoptr(GVariant) list = NULL;
	g_autoptr(GVariant) first = NULL;
	const char *name = NULL;

	if (!vmi_test_require_qemu_img () || !have_qemu_io ())
		return;
	dir = vmi_test_tmpdir_new ();
	path = qemu_create (dir, "snap.qcow2", "compat=1.1", "4M");
	qemu_io (path, "-c 'write -P 0x31 0 128k'");
	vmi_test_sh_ok ("qemu-img snapshot -c first '%s'", path);
	/* After the snapshot the active layer's clusters are copied on write. */
	qemu_io (path, "-c 'write -P 0x32 64k 128k'");
	vmi_test_sh_ok ("qemu-img snapshot -c 'second snapshot' '%s'", path);
	qemu_io (path, "-c 'write -z 0 64k'");
	vmi_test_sh_ok ("qemu-img bitmap --add '%s' b0 && qemu-img bitmap --add -g 1M '%s' b1 && "
			"qemu-img bitmap --disable '%s' b1",
			path, path, path);
	check_image (path, dir);

	source = open_ok (path);
	fs = format_specific (source);
	list = g_variant_lookup_value (fs, "snapshots", NULL);
	g_assert_cmpuint (g_variant_n_children (list), ==, 2);
	first = g_variant_get_child_value (list, 0);
	g_assert_true (g_variant_lookup (first, "name", "&s", &name));
	g_assert_cmpstr (name, ==, "first");
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* An image that names another file: not safe, and that file is its one reference. */
static const VmiImageInfo *
assert_one_reference (VmiSource *source, const char *reference)
{
	const VmiImageInfo *info = vmi_source_get_info (source);

	g_assert_false (vmi_source_is_safe (source));
	g_assert_cmpuint (info->references->len, ==, 1);
	g_assert_cmpstr (g_ptr_array_index (info->references, 0), ==, reference);
	return info;
}

static void
test_read_backing_file (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *base = NULL;
	g_autofree char *top = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *data = NULL;
	const VmiImageInfo *info;
	VmiExtent extent = { 0 };

	if (!vmi_test_require_qemu_img () || !have_qemu_io ())
		return;
	dir = vmi_test_tmpdir_new ();
	base = qemu_create (dir, "base.qcow2", NULL, "4M");
	qemu_io (base, "-c 'write -P 0x41 0 4m'");
	top = g_build_filename (dir, "top.qcow2", NULL);
	vmi_test_sh_ok ("cd '%s' && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2", dir);
	qemu_io (top, "-c 'write -P 0x42 64k 64k' -c 'write -z 1m 64k'");

	source = open_ok (top);
	compare_info (source, top);
	info = assert_one_reference (source, "base.qcow2");
	g_assert_cmpuint (info->unsafe_reasons->len, ==, 1);
	g_assert_nonnull (strstr (g_ptr_array_index (info->unsafe_reasons, 0), "base.qcow2"));

	/* Allocated and zero clusters read; unallocated ones live in the unopened backing file. */
	data = read_bytes (source, 64 * KiB, 64 * KiB, &error);
	g_assert_no_error (error);
	for (guint i = 0; i < 64 * KiB; i++)
		g_assert_cmpint ((guint8) data[i], ==, 0x42);
	g_clear_pointer (&data, g_free);
	data = read_bytes (source, 1 * MiB, 64 * KiB, &error);
	g_assert_no_error (error);
	g_assert_cmpint (data[0], ==, 0);
	g_clear_pointer (&data, g_free);
	g_assert_null (read_bytes (source, 0, 512, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_clear_error (&error);
	g_assert_false (vmi_qcow2_plugin.block_status (vmi_source_get_image (source), 0, 4 * MiB,
						       &extent, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_clear_error (&error);
	g_assert_true (vmi_qcow2_plugin.block_status (vmi_source_get_image (source), 64 * KiB,
						      4 * MiB - 64 * KiB, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, 64 * KiB);
	vmi_test_save_seed ("qcow2", top);

	/* A conversion fails with a clear error instead of writing zeros for the backing data. */
	{
		g_autofree char *raw = g_build_filename (dir, "out.raw", NULL);

		g_assert_false (vmi_test_convert (&vmi_qcow2_plugin, top, &vmi_raw_plugin, raw, NULL,
						  &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * A version 2 overlay (its backing format lives in a header extension, as in version 3) that
 * names a file it has no business reading: reported, never opened.
 */
static void
test_read_hostile_backing_file (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *top = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	const VmiImageInfo *info;
	const char *reason;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	top = g_build_filename (dir, "hostile.qcow2", NULL);
	/* -u: qemu-img does not open the backing file either */
	vmi_test_sh_ok ("qemu-img create -q -f qcow2 -o compat=0.10 -u -b /etc/shadow -F raw '%s' 1M",
			top);
	source = open_ok (top);
	compare_info (source, top);
	info = assert_one_reference (source, "/etc/shadow");
	g_assert_cmpuint (info->unsafe_reasons->len, ==, 1);
	reason = g_ptr_array_index (info->unsafe_reasons, 0);
	g_assert_nonnull (strstr (reason, "/etc/shadow"));
	g_assert_nonnull (strstr (reason, "(format raw)"));
	g_assert_null (read_bytes (source, 0, 512, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	vmi_test_save_seed ("qcow2", top);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_read_data_file (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	path = g_build_filename (dir, "df.qcow2", NULL);
	vmi_test_sh_ok ("cd '%s' && qemu-img create -q -f qcow2 -o data_file=df.raw df.qcow2 1M", dir);
	source = open_ok (path);
	compare_info (source, path);
	assert_one_reference (source, "df.raw");
	g_assert_null (read_bytes (source, 0, 512, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	vmi_test_save_seed ("qcow2", path);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Reads the file at path, lets edit change it, and writes it to dir/name. */
static char *
patched_copy (const char *path, const char *dir, const char *name, void (*edit) (GByteArray *, gpointer),
	      gpointer user_data)
{
	g_autofree char *contents = NULL;
	gsize len = 0;
	g_autoptr(GByteArray) bytes = g_byte_array_new ();
	char *out = g_build_filename (dir, name, NULL);

	g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
	g_byte_array_append (bytes, (const guint8 *) contents, (guint) len);
	edit (bytes, user_data);
	vmi_test_write_file (out, bytes->data, bytes->len);
	vmi_test_save_seed ("qcow2", out);
	return out;
}

static void
put_be32 (GByteArray *b, gsize off, guint32 v)
{
	g_assert_cmpuint (off + 4, <=, b->len);
	b->data[off] = (guint8) (v >> 24);
	b->data[off + 1] = (guint8) (v >> 16);
	b->data[off + 2] = (guint8) (v >> 8);
	b->data[off + 3] = (guint8) v;
}

static void
put_be64 (GByteArray *b, gsize off, guint64 v)
{
	put_be32 (b, off, (guint32) (v >> 32));
	put_be32 (b, off + 4, (guint32) v);
}

static guint64
get_be64 (GByteArray *b, gsize off)
{
	guint64 v = 0;

	g_assert_cmpuint (off + 8, <=, b->len);
	for (int i = 0; i < 8; i++)
		v = (v << 8) | b->data[off + i];
	return v;
}

static void
set_corrupt_bit (GByteArray *b, gpointer user_data)
{
	b->data[79] |= 0x02; /* incompatible_features bit 1 */
}

static void
test_read_corrupt_bit (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *clean = NULL;
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) fs = NULL;
	gboolean corrupt = FALSE;
	const VmiImageInfo *info;

	if (!vmi_test_require_qemu_img () || !have_qemu_io ())
		return;
	dir = vmi_test_tmpdir_new ();
	clean = qemu_create (dir, "clean.qcow2", NULL, "2M");
	qemu_io (clean, "-c 'write -P 0x51 0 64k'");
	path = patched_copy (clean, dir, "corrupt.qcow2", set_corrupt_bit, NULL);
	source = open_ok (path);
	compare_info (source, path);
	fs = format_specific (source);
	g_assert_true (g_variant_lookup (fs, "corrupt", "b", &corrupt));
	g_assert_true (corrupt);
	g_assert_false (vmi_source_is_safe (source));
	info = vmi_source_get_info (source);
	g_assert_cmpuint (info->unsafe_reasons->len, ==, 1);
	g_assert_nonnull (strstr (g_ptr_array_index (info->unsafe_reasons, 0), "corrupt"));
	compare_data (path, dir);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
set_dirty_bit (GByteArray *b, gpointer user_data)
{
	b->data[79] |= 0x01; /* incompatible_features bit 0 */
}

/* A dirty image (lazy refcounts, not closed cleanly) is described and read as usual. */
static void
test_read_dirty_bit (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *clean = NULL;
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) fs = NULL;
	gboolean dirty = FALSE;

	if (!vmi_test_require_qemu_img () || !have_qemu_io ())
		return;
	dir = vmi_test_tmpdir_new ();
	clean = qemu_create (dir, "clean.qcow2", "lazy_refcounts=on", "2M");
	qemu_io (clean, "-c 'write -P 0x52 64k 64k'");
	path = patched_copy (clean, dir, "dirty.qcow2", set_dirty_bit, NULL);
	source = open_ok (path);
	compare_info (source, path);
	fs = format_specific (source);
	g_assert_true (g_variant_lookup (fs, "dirty-flag", "b", &dirty));
	g_assert_true (dirty);
	compare_data (path, dir);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * An unknown incompatible bit is named from the image's feature name table: qemu's table names
 * bit 0 "dirty bit"; renumber that entry to bit 10 and set bit 10.
 */
static void
unknown_named_feature (GByteArray *b, gpointer user_data)
{
	gsize pos = 112;

	for (;;) {
		guint32 type = ((guint32) b->data[pos] << 24) | ((guint32) b->data[pos + 1] << 16) |
			       ((guint32) b->data[pos + 2] << 8) | b->data[pos + 3];
		guint32 len = ((guint32) b->data[pos + 4] << 24) | ((guint32) b->data[pos + 5] << 16) |
			      ((guint32) b->data[pos + 6] << 8) | b->data[pos + 7];

		g_assert_cmpuint (type, !=, 0); /* qemu always writes the table */
		if (type == 0x6803f857u) {
			g_assert_cmpuint (b->data[pos + 8], ==, 0);
			g_assert_cmpuint (b->data[pos + 9], ==, 0);
			b->data[pos + 9] = 10;
			break;
		}
		pos += 8 + ((len + 7) & ~7u);
	}
	put_be64 (b, 72, get_be64 (b, 72) | (1u << 10));
}

static void
test_bad_named_feature (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *good = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	good = qemu_create (dir, "good.qcow2", NULL, "1M");
	path = patched_copy (good, dir, "named-feature.qcow2", unknown_named_feature, NULL);
	source = vmi_test_open (&vmi_qcow2_plugin, path, &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_assert_nonnull (strstr (error->message, "bit 10"));
	g_assert_nonnull (strstr (error->message, "dirty bit"));
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_read_encrypted (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	VmiExtent extent;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	path = g_build_filename (dir, "luks.qcow2", NULL);
	vmi_test_sh_ok ("qemu-img create -q -f qcow2 --object secret,id=sec0,data=secret -o "
			"encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 '%s' 1M",
			path);
	source = open_ok (path);
	compare_info (source, path);
	g_assert_null (read_bytes (source, 0, 512, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_clear_error (&error);
	g_assert_false (vmi_qcow2_plugin.block_status (vmi_source_get_image (source), 0, 512, &extent,
						       &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_clear_error (&error);
	g_clear_pointer (&source, vmi_source_free);

	/* The old AES method, which qemu still makes on request. */
	g_free (path);
	path = g_build_filename (dir, "aes.qcow2", NULL);
	if (vmi_test_sh (NULL, "qemu-img create -q -f qcow2 --object secret,id=sec0,data=secret -o "
			       "encrypt.format=aes,encrypt.key-secret=sec0 '%s' 1M",
			 path) == 0) {
		source = open_ok (path);
		compare_info (source, path);
		g_assert_null (read_bytes (source, 0, 512, &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
		g_assert_nonnull (strstr (error->message, "AES"));
		vmi_test_save_seed ("qcow2", path);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_read_zstd (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *raw = NULL;
	g_autofree char *path = NULL;
	g_autofree char *out = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	raw = g_build_filename (dir, "pattern.raw", NULL);
	path = g_build_filename (dir, "zstd.qcow2", NULL);
	vmi_test_make_pattern_image (raw, 2 * MiB, 5);
	if (vmi_test_sh (NULL, "qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd '%s' '%s'",
			 raw, path) != 0) {
		g_test_skip ("this qemu-img was built without zstd");
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	source = open_ok (path);
	compare_info (source, path);
	out = g_build_filename (dir, "out.raw", NULL);
	g_assert_false (vmi_test_convert (&vmi_qcow2_plugin, path, &vmi_raw_plugin, out, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_assert_nonnull (strstr (error->message, "zstd"));
	vmi_test_save_seed ("qcow2", path);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* --- hostile and broken images ------------------------------------------------------------- */

typedef struct {
	gsize offset;
	guint width; /* 1, 4 or 8 */
	guint64 value;
} FieldPatch;

static void
apply_field (GByteArray *b, gpointer user_data)
{
	const FieldPatch *p = user_data;

	if (p->width == 8)
		put_be64 (b, p->offset, p->value);
	else if (p->width == 4)
		put_be32 (b, p->offset, (guint32) p->value);
	else
		b->data[p->offset] = (guint8) p->value;
}

static void
truncate_to (GByteArray *b, gpointer user_data)
{
	g_byte_array_set_size (b, GPOINTER_TO_UINT (user_data));
}

static void
test_bad_headers (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *good = NULL;
	struct {
		const char *name;
		FieldPatch patch;
		VmiError code;
		FieldPatch patch2; /* width 0: none */
	} cases[] = {
		{ "magic", { 0, 4, 0x514649fa }, VMI_ERROR_UNKNOWN_FORMAT },
		{ "version1", { 4, 4, 1 }, VMI_ERROR_NOT_SUPPORTED },
		{ "version4", { 4, 4, 4 }, VMI_ERROR_NOT_SUPPORTED },
		{ "cluster-bits-8", { 20, 4, 8 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "cluster-bits-22", { 20, 4, 22 }, VMI_ERROR_NOT_SUPPORTED },
		{ "cluster-bits-huge", { 20, 4, 0xffffffffu }, VMI_ERROR_CORRUPT_IMAGE },
		{ "size-absurd", { 24, 8, G_GUINT64_CONSTANT (0x8000000000000200) }, VMI_ERROR_CORRUPT_IMAGE },
		{ "size-beyond-l1", { 24, 8, G_GUINT64_CONSTANT (1) << 40 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "crypt-method", { 32, 4, 3 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "l1-size-absurd", { 36, 4, 0x7fffffffu }, VMI_ERROR_CORRUPT_IMAGE },
		{ "l1-beyond-eof", { 40, 8, G_GUINT64_CONSTANT (1) << 40 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "l1-unaligned", { 40, 8, 0x30200 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "l1-offset-zero", { 40, 8, 0 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "refcount-beyond-eof", { 48, 8, G_GUINT64_CONSTANT (1) << 50 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "refcount-clusters-absurd", { 56, 4, 0xffffffffu }, VMI_ERROR_CORRUPT_IMAGE },
		{ "snapshots-absurd", { 60, 4, 0xffffffffu }, VMI_ERROR_CORRUPT_IMAGE },
		{ "snapshots-beyond-eof", { 60, 4, 1000 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "incompat-unknown", { 72, 8, 1u << 10 }, VMI_ERROR_NOT_SUPPORTED },
		{ "incompat-compression-bit", { 72, 8, 1u << 3 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "refcount-order-7", { 96, 4, 7 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "refcount-order-absurd", { 96, 4, 0xffffffffu }, VMI_ERROR_CORRUPT_IMAGE },
		{ "header-length-small", { 100, 4, 100 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "header-length-huge", { 100, 4, 0x7fffffff }, VMI_ERROR_CORRUPT_IMAGE },
		{ "compression-type-unknown", { 104, 1, 7 }, VMI_ERROR_NOT_SUPPORTED },
		/* a backing file name offset inside the first cluster, a length beyond qemu's limit */
		{ "backing-name-too-long", { 16, 4, 5000 }, VMI_ERROR_CORRUPT_IMAGE, { 8, 8, 0x200 } },
		{ "backing-name-in-header", { 16, 4, 10 }, VMI_ERROR_CORRUPT_IMAGE, { 8, 8, 16 } },
		{ "backing-name-beyond-cluster", { 16, 4, 100 }, VMI_ERROR_CORRUPT_IMAGE, { 8, 8, 0xfff0 } },
		/* qemu's first extension is its feature name table, at offset 112 */
		{ "extension-overflow", { 116, 4, 0xffffffffu }, VMI_ERROR_CORRUPT_IMAGE },
		{ "extension-past-cluster", { 116, 4, 65536 - 120 + 1 }, VMI_ERROR_CORRUPT_IMAGE },
		{ "crypto-extension-short", { 116, 4, 8 }, VMI_ERROR_CORRUPT_IMAGE, { 112, 4, 0x0537be77u } },
	};

	if (!vmi_test_require_qemu_img () || !have_qemu_io ())
		return;
	dir = vmi_test_tmpdir_new ();
	good = qemu_create (dir, "good.qcow2", "compat=1.1", "1M");
	qemu_io (good, "-c 'write -P 0x61 0 128k'");
	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autofree char *name = g_strdup_printf ("%s.qcow2", cases[i].name);
		g_autofree char *path = NULL;

		if (cases[i].patch2.width != 0) {
			g_autofree char *tmp = patched_copy (good, dir, "tmp.qcow2", apply_field,
							     &cases[i].patch2);

			path = patched_copy (tmp, dir, name, apply_field, &cases[i].patch);
		} else {
			path = patched_copy (good, dir, name, apply_field, &cases[i].patch);
		}
		if (g_test_verbose ())
			g_printerr ("# case %s\n", cases[i].name);
		open_fails (path, cases[i].code);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_bad_sizes (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *good = NULL;
	g_autofree char *empty = NULL;
	g_autofree char *one = NULL;
	g_autofree char *truncated = NULL;
	g_autofree char *v2cut = NULL;
	g_autofree char *v2 = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	good = qemu_create (dir, "good.qcow2", "compat=1.1", "1M");
	v2 = qemu_create (dir, "v2.qcow2", "compat=0.10", "1M");
	empty = patched_copy (good, dir, "empty.qcow2", truncate_to, GUINT_TO_POINTER (0));
	one = patched_copy (good, dir, "one.qcow2", truncate_to, GUINT_TO_POINTER (1));
	truncated = patched_copy (good, dir, "truncated.qcow2", truncate_to, GUINT_TO_POINTER (90));
	v2cut = patched_copy (v2, dir, "v2cut.qcow2", truncate_to, GUINT_TO_POINTER (60));
	open_fails (empty, VMI_ERROR_CORRUPT_IMAGE);
	open_fails (one, VMI_ERROR_CORRUPT_IMAGE);
	open_fails (truncated, VMI_ERROR_CORRUPT_IMAGE);
	open_fails (v2cut, VMI_ERROR_CORRUPT_IMAGE);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* The L2 table of guest cluster 0 of a 64 KiB-cluster image, as a file offset. */
static guint64
l2_of_first_cluster (GByteArray *b)
{
	guint64 l1 = get_be64 (b, 40);

	return get_be64 (b, l1) & G_GUINT64_CONSTANT (0x00fffffffffffe00);
}

static void
l2_beyond_eof (GByteArray *b, gpointer user_data)
{
	put_be64 (b, l2_of_first_cluster (b), G_GUINT64_CONSTANT (0x8000000100000000));
}

static void
l2_unaligned (GByteArray *b, gpointer user_data)
{
	guint64 l2 = l2_of_first_cluster (b);

	put_be64 (b, l2, get_be64 (b, l2) + 512);
}

static void
l1_entry_beyond_eof (GByteArray *b, gpointer user_data)
{
	put_be64 (b, get_be64 (b, 40), G_GUINT64_CONSTANT (0x8000010000000000));
}

/* Overwrites the deflate data of the first compressed cluster with garbage. */
static void
garbage_deflate (GByteArray *b, gpointer user_data)
{
	guint64 entry = get_be64 (b, l2_of_first_cluster (b));
	guint64 coffset = entry & ((G_GUINT64_CONSTANT (1) << 54) - 1); /* 64 KiB clusters: x = 54 */

	g_assert_true (entry & (G_GUINT64_CONSTANT (1) << 62));
	g_assert_cmpuint (coffset + 64, <=, b->len);
	for (guint i = 0; i < 64; i++)
		b->data[coffset + i] = (guint8) (0xff - i);
}

/* The first compressed cluster's offset is moved beyond the end of the file. */
static void
compressed_beyond_eof (GByteArray *b, gpointer user_data)
{
	guint64 l2 = l2_of_first_cluster (b);
	guint64 entry = get_be64 (b, l2);

	put_be64 (b, l2, (entry & ~((G_GUINT64_CONSTANT (1) << 54) - 1)) | (G_GUINT64_CONSTANT (1) << 40));
}

/* The extended L2 entry of cluster 0 says its subcluster 0 is both allocated and zero. */
static void
subcluster_both (GByteArray *b, gpointer user_data)
{
	guint64 l2 = l2_of_first_cluster (b);

	put_be64 (b, l2 + 8, get_be64 (b, l2 + 8) | (G_GUINT64_CONSTANT (1) << 32) | 1);
}

static void
read_fails (const char *path, guint64 offset, VmiError code)
{
	g_autoptr(VmiSource) source = open_ok (path);
	g_autoptr(GError) error = NULL;
	g_autofree char *data = read_bytes (source, offset, 4096, &error);

	g_assert_null (data);
	g_assert_error (error, VMI_ERROR, (gint) code);
	if (g_test_verbose ())
		g_printerr ("# %s: %s\n", path, error->message);
}

static void
test_bad_clusters (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *good = NULL;
	g_autofree char *raw = NULL;
	g_autofree char *compressed = NULL;
	g_autofree char *ext = NULL;
	g_autofree char *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL, *p5 = NULL, *p6 = NULL;

	if (!vmi_test_require_qemu_img () || !have_qemu_io ())
		return;
	dir = vmi_test_tmpdir_new ();
	good = qemu_create (dir, "good.qcow2", "compat=1.1", "1M");
	qemu_io (good, "-c 'write -P 0x61 0 128k'");
	p1 = patched_copy (good, dir, "l2-beyond-eof.qcow2", l2_beyond_eof, NULL);
	read_fails (p1, 0, VMI_ERROR_CORRUPT_IMAGE);
	p2 = patched_copy (good, dir, "l2-unaligned.qcow2", l2_unaligned, NULL);
	read_fails (p2, 0, VMI_ERROR_CORRUPT_IMAGE);
	p3 = patched_copy (good, dir, "l1-entry-beyond-eof.qcow2", l1_entry_beyond_eof, NULL);
	read_fails (p3, 0, VMI_ERROR_CORRUPT_IMAGE);

	raw = g_build_filename (dir, "pattern.raw", NULL);
	compressed = g_build_filename (dir, "c.qcow2", NULL);
	vmi_test_sh_ok ("head -c 1048576 /dev/zero | tr '\\0' 'x' > '%s'", raw);
	vmi_test_sh_ok ("qemu-img convert -c -f raw -O qcow2 '%s' '%s'", raw, compressed);
	p4 = patched_copy (compressed, dir, "garbage-deflate.qcow2", garbage_deflate, NULL);
	read_fails (p4, 0, VMI_ERROR_CORRUPT_IMAGE);
	p6 = patched_copy (compressed, dir, "compressed-beyond-eof.qcow2", compressed_beyond_eof, NULL);
	read_fails (p6, 0, VMI_ERROR_CORRUPT_IMAGE);

	ext = qemu_create (dir, "ext.qcow2", "compat=1.1,extended_l2=on", "1M");
	qemu_io (ext, "-c 'write -P 0x62 0 64k'");
	p5 = patched_copy (ext, dir, "subcluster-both.qcow2", subcluster_both, NULL);
	read_fails (p5, 0, VMI_ERROR_CORRUPT_IMAGE);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* --- writer -------------------------------------------------------------------------------- */

static GVariant *
writer_options (guint64 cluster_size, gboolean compress)
{
	GVariantDict dict;

	g_variant_dict_init (&dict, NULL);
	g_variant_dict_insert (&dict, "cluster-size", "t", cluster_size);
	g_variant_dict_insert (&dict, "compress", "b", compress);
	return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/* raw -> our qcow2: clean by qemu-img check, equal by qemu-img compare, and read back by us. */
/* some_random_clusters: the raw image has clusters of random data, which deflate cannot shrink */
static void
write_and_check (const char *raw, const char *dir, guint64 cluster_size, gboolean compress,
		 gboolean some_random_clusters)
{
	g_autofree char *path = g_strdup_printf ("%s/w-%" G_GUINT64_FORMAT "-%d.qcow2", dir,
						 cluster_size, compress);
	g_autofree char *back = g_build_filename (dir, "back.raw", NULL);
	g_autoptr(GVariant) options = writer_options (cluster_size, compress);
	g_autoptr(JsonObject) qemu = NULL;
	g_autofree char *check = NULL;

	g_assert_true (vmi_test_convert (&vmi_raw_plugin, raw, &vmi_qcow2_plugin, path, options, NULL));
	g_assert_true (vmi_test_qemu_img_check (path, "qcow2"));
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", path, "qcow2"));
	qemu = vmi_test_qemu_img_info (path, "qcow2");
	g_assert_cmpuint (vmi_test_json_u64 (qemu, "cluster-size"), ==, cluster_size);
	g_assert_cmpint (vmi_test_sh (&check, "qemu-img check --output=json '%s'", path), ==, 0);
	{
		g_autoptr(JsonParser) parser = json_parser_new ();
		JsonObject *o;
		gint64 compressed, allocated;

		g_assert_true (json_parser_load_from_data (parser, check, -1, NULL));
		o = json_node_get_object (json_parser_get_root (parser));
		compressed = json_object_get_int_member_with_default (o, "compressed-clusters", 0);
		allocated = json_object_get_int_member (o, "allocated-clusters");
		g_assert_cmpint (json_object_get_int_member (o, "check-errors"), ==, 0);
		if (compress) {
			/* Text compresses; a cluster of random bytes does not and is stored as is. */
			g_assert_cmpint (compressed, >, 0);
			if (some_random_clusters)
				g_assert_cmpint (compressed, <, allocated);
			else
				g_assert_cmpint (compressed, <=, allocated);
		} else {
			g_assert_cmpint (compressed, ==, 0);
		}
	}
	/* our own reader agrees too */
	{
		g_autoptr(VmiSource) source = open_ok (path);

		compare_info (source, path);
		compare_map (source, path);
	}
	g_assert_true (vmi_test_convert (&vmi_qcow2_plugin, path, &vmi_raw_plugin, back, NULL, NULL));
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", back, "raw"));
	vmi_test_save_seed ("qcow2", path);
	g_unlink (back);
	g_unlink (path);
}

static void
test_write_cluster_sizes (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *raw = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	raw = g_build_filename (dir, "pattern.raw", NULL);
	/* 3 MiB + 100 KiB + 512: not a multiple of any cluster size above 512 */
	vmi_test_make_pattern_image (raw, 3 * MiB + 100 * KiB + 512, 3);
	write_and_check (raw, dir, 512, FALSE, TRUE);
	write_and_check (raw, dir, 4096, FALSE, TRUE);
	write_and_check (raw, dir, 65536, FALSE, TRUE);
	write_and_check (raw, dir, 2 * MiB, FALSE, FALSE);
	write_and_check (raw, dir, 512, TRUE, TRUE);
	write_and_check (raw, dir, 65536, TRUE, TRUE);
	/* a 2 MiB cluster mixes random blocks with text and zeros, and compresses */
	write_and_check (raw, dir, 2 * MiB, TRUE, FALSE);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_write_odd_sizes (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *raw = NULL;
	g_autofree char *tiny = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	raw = g_build_filename (dir, "odd.raw", NULL);
	/* Not a multiple of 512 either: the writer rounds up to a sector as qemu-img does. */
	vmi_test_make_pattern_image (raw, 3 * MiB + 777, 9);
	write_and_check (raw, dir, 65536, FALSE, TRUE);
	write_and_check (raw, dir, 65536, TRUE, TRUE);
	tiny = g_build_filename (dir, "tiny.raw", NULL);
	vmi_test_make_pattern_image (tiny, 1536, 10);
	write_and_check (tiny, dir, 65536, FALSE, FALSE);
	write_and_check (tiny, dir, 4096, TRUE, FALSE);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_write_large_sparse (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *raw = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GVariant) options = writer_options (65536, FALSE);
	g_autoptr(JsonObject) qemu = NULL;
	GStatBuf st;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	raw = g_build_filename (dir, "big.raw", NULL);
	path = g_build_filename (dir, "big.qcow2", NULL);
	vmi_test_make_pattern_image (raw, 5 * G_GUINT64_CONSTANT (1024) * MiB + 4096, 4);
	g_assert_true (vmi_test_convert (&vmi_raw_plugin, raw, &vmi_qcow2_plugin, path, options, NULL));
	g_assert_true (vmi_test_qemu_img_check (path, "qcow2"));
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", path, "qcow2"));
	qemu = vmi_test_qemu_img_info (path, "qcow2");
	g_assert_cmpuint (vmi_test_json_u64 (qemu, "virtual-size"), ==,
			  5 * G_GUINT64_CONSTANT (1024) * MiB + 4096);
	/* only the data is stored: a few MiB, not 5 GiB */
	g_assert_cmpint (g_stat (path, &st), ==, 0);
	g_assert_cmpint (st.st_size, <, 16 * MiB);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_write_partial_clusters (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autofree char *expect = NULL;
	g_autofree guint8 *buf = g_malloc (8192);

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	expect = g_build_filename (dir, "expect.raw", NULL);
	for (int compress = 0; compress < 2; compress++) {
		g_autoptr(GVariant) options = writer_options (65536, compress);
		g_autoptr(GError) error = NULL;
		int fd, efd;
		VmiImage *image;
		/* 512-aligned pieces of clusters, several per cluster, some crossing a boundary */
		static const guint64 ranges[][2] = { { 0, 512 },     { 4096, 1024 },  { 65024, 1024 },
						     { 66560, 512 }, { 200704, 8192 }, { 1048064, 512 } };

		g_free (path);
		path = g_strdup_printf ("%s/partial-%d.qcow2", dir, compress);
		fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		efd = open (expect, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		g_assert_cmpint (fd, >=, 0);
		g_assert_cmpint (efd, >=, 0);
		g_assert_cmpint (ftruncate (efd, 1048576), ==, 0);
		image = vmi_qcow2_plugin.create (fd, 1048576, options, &error);
		g_assert_no_error (error);
		for (gsize i = 0; i < G_N_ELEMENTS (ranges); i++) {
			for (guint j = 0; j < ranges[i][1]; j++)
				buf[j] = (guint8) (i * 31 + j);
			g_assert_true (vmi_qcow2_plugin.write (image, ranges[i][0], buf, ranges[i][1],
							       &error));
			g_assert_cmpint (pwrite (efd, buf, ranges[i][1], (off_t) ranges[i][0]), ==,
					 (ssize_t) ranges[i][1]);
		}
		/* going backwards is refused */
		g_assert_false (vmi_qcow2_plugin.write (image, 0, buf, 512, &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
		g_clear_error (&error);
		g_assert_true (vmi_qcow2_plugin.finish (image, &error));
		g_assert_no_error (error);
		vmi_qcow2_plugin.close (image);
		close (fd);
		close (efd);
		g_assert_true (vmi_test_qemu_img_check (path, "qcow2"));
		g_assert_true (vmi_test_qemu_img_compare (expect, "raw", path, "qcow2"));
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * 10 MiB of data in 512-byte clusters: over 20000 clusters, so the refcount table itself spans
 * several clusters and counts the blocks that count it.
 */
static void
test_write_many_clusters (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *raw = NULL;
	g_autofree guint8 *buf = g_malloc (MiB);
	g_autoptr(GRand) rand = g_rand_new_with_seed (17);
	g_autoptr(JsonObject) qemu = NULL;
	int fd;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	raw = g_build_filename (dir, "full.raw", NULL);
	fd = open (raw, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	for (guint i = 0; i < 10; i++) {
		for (gsize j = 0; j < MiB; j++)
			buf[j] = (guint8) (j % 251 == 0 ? g_rand_int (rand) : i + 1);
		g_assert_cmpint (pwrite (fd, buf, MiB, (off_t) i * MiB), ==, (gssize) MiB);
	}
	close (fd);
	write_and_check (raw, dir, 512, FALSE, FALSE);
	write_and_check (raw, dir, 512, TRUE, FALSE);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * 4 MiB of 64 KiB clusters that a compressing writer might misjudge when it skips deflate for
 * clusters that look random: random, text, half random half text, random hex digits (uniform
 * over 16 values), random 2 KiB repeated (uniform bytes, yet deflate halves it), random with a
 * zero byte in every 64.
 */
static void
make_mixed_clusters (const char *path)
{
	g_autofree guint8 *buf = g_malloc (64 * KiB);
	g_autoptr(GRand) rand = g_rand_new_with_seed (99);
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint (fd, >=, 0);
	for (guint i = 0; i < 64; i++) {
		for (gsize j = 0; j < 64 * KiB; j++) {
			guint8 r = (guint8) g_rand_int (rand);
			guint8 t = (guint8) "The quick brown fox jumps over the lazy dog. "[j % 45];

			switch (i % 6) {
			case 0: buf[j] = r; break;
			case 1: buf[j] = t; break;
			case 2: buf[j] = j < 32 * KiB ? r : t; break;
			case 3: buf[j] = (guint8) "0123456789abcdef"[r % 16]; break;
			case 4: buf[j] = j < 2 * KiB ? r : buf[j - 2 * KiB]; break;
			default: buf[j] = j % 64 == 0 ? 0 : r; break;
			}
		}
		g_assert_cmpint (pwrite (fd, buf, 64 * KiB, (off_t) i * 64 * KiB), ==, (gssize) (64 * KiB));
	}
	g_assert_cmpint (close (fd), ==, 0);
}

static guint64
disk_usage (const char *path)
{
	struct stat st;

	g_assert_cmpint (stat (path, &st), ==, 0);
	return (guint64) st.st_blocks * 512;
}

/*
 * compress=true deflates on several threads and stores clusters that look random without
 * trying; the file is still clean, equal in content and at most 2% larger than qemu-img -c's.
 */
static void
test_write_compressed_size (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *raw = NULL;
	g_autofree char *theirs = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	raw = g_build_filename (dir, "mixed.raw", NULL);
	theirs = g_build_filename (dir, "theirs.qcow2", NULL);
	make_mixed_clusters (raw);
	vmi_test_sh_ok ("qemu-img convert -c -f raw -O qcow2 '%s' '%s'", raw, theirs);
	for (guint64 cluster_size = 4096; cluster_size <= 65536; cluster_size *= 16) {
		g_autofree char *ours = g_strdup_printf ("%s/ours-%" G_GUINT64_FORMAT ".qcow2", dir, cluster_size);
		g_autoptr(GVariant) options = writer_options (cluster_size, TRUE);

		g_assert_true (vmi_test_convert (&vmi_raw_plugin, raw, &vmi_qcow2_plugin, ours, options, NULL));
		g_assert_true (vmi_test_qemu_img_check (ours, "qcow2"));
		g_assert_true (vmi_test_qemu_img_compare (raw, "raw", ours, "qcow2"));
		if (cluster_size == 65536)
			g_assert_cmpuint (disk_usage (ours) * 100, <=, disk_usage (theirs) * 102);
	}
	/* The same with the writer's clusters split over many small writes. */
	write_and_check (raw, dir, 65536, TRUE, TRUE);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A disk of 0 bytes: no L1 table at all, as qemu-img create writes it. */
static void
test_write_empty_disk (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autofree char *theirs = NULL;
	g_autoptr(GVariant) options = writer_options (65536, FALSE);
	g_autoptr(GError) error = NULL;
	VmiImage *image;
	int fd;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	path = g_build_filename (dir, "empty.qcow2", NULL);
	fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	image = vmi_qcow2_plugin.create (fd, 0, options, &error);
	g_assert_no_error (error);
	g_assert_true (vmi_qcow2_plugin.finish (image, &error));
	g_assert_no_error (error);
	vmi_qcow2_plugin.close (image);
	close (fd);
	g_assert_true (vmi_test_qemu_img_check (path, "qcow2"));
	theirs = qemu_create (dir, "theirs.qcow2", NULL, "0");
	for (int i = 0; i < 2; i++) {
		const char *p = i == 0 ? path : theirs;
		g_autoptr(VmiSource) source = open_ok (p);

		g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 0);
		compare_info (source, p);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_write_bad_options (void)
{
	static const guint64 bad[] = { 0, 256, 1000, 65535, 4 * MiB };

	for (gsize i = 0; i < G_N_ELEMENTS (bad); i++) {
		g_autoptr(GVariant) options = writer_options (bad[i], FALSE);
		g_autoptr(GError) error = NULL;
		VmiImage *image = vmi_qcow2_plugin.create (-1, MiB, options, &error);

		g_assert_null (image);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	}
	/* 512-byte clusters cannot describe 2^50 bytes within qcow2's L1 limit */
	{
		g_autoptr(GVariant) options = writer_options (512, FALSE);
		g_autoptr(GError) error = NULL;

		g_assert_null (vmi_qcow2_plugin.create (-1, G_GUINT64_CONSTANT (1) << 50, options, &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	}
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/qcow2/probe", test_probe);
	g_test_add_func ("/qcow2/read/versions-and-cluster-sizes", test_read_versions_and_cluster_sizes);
	g_test_add_func ("/qcow2/read/compressed", test_read_compressed);
	g_test_add_func ("/qcow2/read/zero-clusters", test_read_zero_clusters);
	g_test_add_func ("/qcow2/read/extended-l2", test_read_extended_l2);
	g_test_add_func ("/qcow2/read/random-ranges", test_read_random_ranges);
	g_test_add_func ("/qcow2/read/snapshots-and-bitmaps", test_read_snapshots_and_bitmaps);
	g_test_add_func ("/qcow2/read/backing-file", test_read_backing_file);
	g_test_add_func ("/qcow2/read/hostile-backing-file", test_read_hostile_backing_file);
	g_test_add_func ("/qcow2/read/data-file", test_read_data_file);
	g_test_add_func ("/qcow2/read/corrupt-bit", test_read_corrupt_bit);
	g_test_add_func ("/qcow2/read/dirty-bit", test_read_dirty_bit);
	g_test_add_func ("/qcow2/read/encrypted", test_read_encrypted);
	g_test_add_func ("/qcow2/read/zstd", test_read_zstd);
	g_test_add_func ("/qcow2/bad/headers", test_bad_headers);
	g_test_add_func ("/qcow2/bad/sizes", test_bad_sizes);
	g_test_add_func ("/qcow2/bad/named-feature", test_bad_named_feature);
	g_test_add_func ("/qcow2/bad/clusters", test_bad_clusters);
	g_test_add_func ("/qcow2/write/cluster-sizes", test_write_cluster_sizes);
	g_test_add_func ("/qcow2/write/odd-sizes", test_write_odd_sizes);
	g_test_add_func ("/qcow2/write/large-sparse", test_write_large_sparse);
	g_test_add_func ("/qcow2/write/partial-clusters", test_write_partial_clusters);
	g_test_add_func ("/qcow2/write/many-clusters", test_write_many_clusters);
	g_test_add_func ("/qcow2/write/compressed-size", test_write_compressed_size);
	g_test_add_func ("/qcow2/write/empty-disk", test_write_empty_disk);
	g_test_add_func ("/qcow2/write/bad-options", test_write_bad_options);
	return g_test_run ();
}
