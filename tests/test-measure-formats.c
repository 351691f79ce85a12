/*
 * Tests of the writers' measure hooks. qcow2 and raw must equal qemu-img measure --output=json
 * on the same source. vmdk, vhd, vhdx and vdi have no measure in qemu-img, so each is held to the
 * file our own writer makes from the same source: never larger than required, and equal to the
 * measure of the runs that hold non-zero bytes where the layout is exact (every writer but
 * streamOptimized and compressed qcow2, whose sizes depend on deflate).
 */
#include <fcntl.h>
#include <glib/gstdio.h>
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

/* The runs of a source, as a caller of measure would give them. */
typedef struct {
	guint64 virtual_size;
	GArray *data;	 /* VmiRange: what block status calls data */
	GArray *nonzero; /* VmiRange: the 512-byte sectors of data that are not all zeros */
} Runs;

static void
runs_clear (Runs *runs)
{
	g_clear_pointer (&runs->data, g_array_unref);
	g_clear_pointer (&runs->nonzero, g_array_unref);
}

static void
append_run (GArray *runs, guint64 offset, guint64 length)
{
	if (runs->len > 0) {
		VmiRange *last = &g_array_index (runs, VmiRange, runs->len - 1);

		if (last->offset + last->length == offset) {
			last->length += length;
			return;
		}
	}
	g_array_append_val (runs, ((VmiRange) { offset, length }));
}

/* Opens path with plugin and collects its data runs and, within them, its non-zero sectors. */
static void
collect_runs (const VmiFormatPlugin *plugin, const char *path, Runs *runs)
{
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	VmiOpenArgs args = { 0 };
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) unsafe = g_ptr_array_new_with_free_func (g_free);
	g_autoptr(GPtrArray) refs = g_ptr_array_new_with_free_func (g_free);
	g_autoptr(GPtrArray) members = g_ptr_array_new ();
	VmiImageInfo info = { 0 };
	g_autofree guint8 *buf = g_malloc (MiB);
	VmiImage *image;
	guint64 pos = 0;

	g_assert_cmpint (fd, >=, 0);
	args.fd = fd;
	args.file_size = vmi_test_file_size (path);
	image = plugin->open (&args, &error);
	g_assert_no_error (error);
	info.format_specific = g_variant_dict_new (NULL);
	info.unsafe_reasons = unsafe;
	info.references = refs;
	info.members = members;
	g_assert_true (plugin->get_info (image, &info, &error));
	g_variant_dict_unref (info.format_specific);
	runs->virtual_size = info.virtual_size;
	runs->data = g_array_new (FALSE, FALSE, sizeof (VmiRange));
	runs->nonzero = g_array_new (FALSE, FALSE, sizeof (VmiRange));
	while (pos < runs->virtual_size) {
		VmiExtent extent;

		g_assert_true (plugin->block_status (image, pos, runs->virtual_size - pos, &extent, &error));
		g_assert_no_error (error);
		if (extent.kind == VMI_EXTENT_DATA) {
			append_run (runs->data, pos, extent.length);
			for (guint64 at = pos; at < pos + extent.length;) {
				gsize n = (gsize) MIN ((guint64) MiB, pos + extent.length - at);

				g_assert_true (plugin->read (image, at, buf, n, &error));
				for (gsize s = 0; s < n; s += 512) {
					gsize len = MIN ((gsize) 512, n - s);
					gboolean zero = TRUE;

					for (gsize i = 0; i < len && zero; i++)
						zero = buf[s + i] == 0;
					if (!zero)
						append_run (runs->nonzero, at + s, len);
				}
				at += n;
			}
		}
		pos += extent.length;
	}
	plugin->close (image);
	close (fd);
}

static VmiMeasurement
measure (const VmiFormatPlugin *plugin, guint64 size, GArray *runs, GVariant *options)
{
	VmiMeasurement m = { 0 };
	g_autoptr(GError) error = NULL;

	g_assert_nonnull (plugin->measure);
	g_assert_true (plugin->measure (size, (const VmiRange *) runs->data, runs->len, options, &m,
					&error));
	g_assert_no_error (error);
	g_assert_cmpuint (m.required, <=, m.fully_allocated);
	return m;
}

/* qemu-img measure --output=json -O fmt [-o opts] source (format fmt_in). */
static void
qemu_measure (const char *source, const char *fmt_in, const char *fmt, const char *opts,
	      guint64 *required, guint64 *fully)
{
	g_autofree char *out = NULL;
	g_autoptr(JsonParser) parser = json_parser_new ();
	g_autoptr(GError) error = NULL;
	JsonObject *o;

	g_assert_cmpint (vmi_test_sh (&out, "qemu-img measure --output=json -f %s -O %s %s%s '%s'",
				      fmt_in, fmt, opts != NULL ? "-o " : "", opts != NULL ? opts : "",
				      source),
			 ==, 0);
	g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
	o = json_node_get_object (json_parser_get_root (parser));
	*required = vmi_test_json_u64 (o, "required");
	*fully = vmi_test_json_u64 (o, "fully-allocated");
}

/* The sources: sparse and empty, the pattern (data, written zeros, holes), fully random. */
typedef struct {
	char *path;
	const char *fmt; /* "raw" or "qcow2" */
	const VmiFormatPlugin *plugin;
} Source;

static void
make_sources (const char *dir, Source *sources, guint *n)
{
	g_autofree char *random = g_build_filename (dir, "random.raw", NULL);
	guint i = 0;

	sources[i] = (Source) { g_build_filename (dir, "empty.raw", NULL), "raw", &vmi_raw_plugin };
	vmi_test_sh_ok ("truncate -s 64M '%s'", sources[i++].path);
	sources[i] = (Source) { g_build_filename (dir, "pattern.raw", NULL), "raw", &vmi_raw_plugin };
	vmi_test_make_pattern_image (sources[i++].path, 5 * MiB + 1536, 11);
	sources[i] = (Source) { g_build_filename (dir, "random.raw", NULL), "raw", &vmi_raw_plugin };
	vmi_test_sh_ok ("head -c %u /dev/urandom > '%s'", 3 * MiB + 1536, sources[i++].path);
	/* Sparse far apart: data at the start, in the middle and at the end of 3 GiB. */
	sources[i] = (Source) { g_build_filename (dir, "far.raw", NULL), "raw", &vmi_raw_plugin };
	vmi_test_sh_ok ("truncate -s 3G '%s' && head -c 70000 /dev/urandom | dd of='%s' conv=notrunc "
			"status=none && head -c 200000 /dev/urandom | dd of='%s' bs=1 seek=1610612000 "
			"conv=notrunc status=none && head -c 4096 /dev/urandom | dd of='%s' bs=4096 "
			"seek=786431 conv=notrunc status=none",
			sources[i].path, sources[i].path, sources[i].path, sources[i].path);
	i++;
	/* A qcow2 source with data, zero clusters and holes. */
	sources[i] = (Source) { vmi_test_qemu_img_create (dir, "src.qcow2", "qcow2", NULL, "8M"),
				"qcow2", &vmi_qcow2_plugin };
	vmi_test_sh_ok ("qemu-io -f qcow2 -c 'write -P 1 0 100k' -c 'write -z 1M 1M' "
			"-c 'write -P 2 5M 64k' '%s' >/dev/null",
			sources[i++].path);
	*n = i;
}

static void
free_sources (Source *sources, guint n)
{
	for (guint i = 0; i < n; i++)
		g_free (sources[i].path);
}

static void
test_qemu_formats (VmiTestDirFixture *fixture, gconstpointer data)
{
	static const struct {
		const VmiFormatPlugin *plugin;
		const char *fmt;
		const char *qemu_opts;
		const char *options;
	} outputs[] = {
		{ &vmi_raw_plugin, "raw", NULL, "@a{sv} {}" },
		{ &vmi_qcow2_plugin, "qcow2", NULL, "@a{sv} {}" },
		{ &vmi_qcow2_plugin, "qcow2", "cluster_size=4096", "{'cluster-size': <uint64 4096>}" },
		{ &vmi_qcow2_plugin, "qcow2", "cluster_size=512", "{'cluster-size': <uint64 512>}" },
		{ &vmi_qcow2_plugin, "qcow2", "cluster_size=2M", "{'cluster-size': <uint64 2097152>}" },
	};
	Source sources[8];
	guint n;

	if (!vmi_test_require_qemu_img () ||
	    !vmi_test_require_program ("qemu-io", "qemu-utils", "cannot write test images"))
		return;
	make_sources (fixture->dir, sources, &n);
	for (guint s = 0; s < n; s++) {
		Runs runs = { 0 };

		collect_runs (sources[s].plugin, sources[s].path, &runs);
		for (guint o = 0; o < G_N_ELEMENTS (outputs); o++) {
			g_autoptr(GVariant) opts = g_variant_ref_sink (g_variant_new_parsed (outputs[o].options));
			VmiMeasurement ours = measure (outputs[o].plugin, runs.virtual_size, runs.data, opts);
			guint64 required, fully;

			qemu_measure (sources[s].path, sources[s].fmt, outputs[o].fmt, outputs[o].qemu_opts,
				      &required, &fully);
			g_test_message ("%s -> %s %s: required %" G_GUINT64_FORMAT " (qemu-img %" G_GUINT64_FORMAT
					"), fully allocated %" G_GUINT64_FORMAT " (qemu-img %" G_GUINT64_FORMAT ")",
					sources[s].path, outputs[o].fmt, outputs[o].options, ours.required,
					required, ours.fully_allocated, fully);
			g_assert_cmpuint (ours.required, ==, required);
			g_assert_cmpuint (ours.fully_allocated, ==, fully);
		}
		runs_clear (&runs);
	}
	free_sources (sources, n);
}

/* Measures, converts with our writer, and compares with the file it made. exact: the layout
 * depends only on which units hold data, not on the bytes. */
static void
check_against_writer (const VmiFormatPlugin *plugin, const char *options, gboolean exact,
		      const Source *source, const Runs *runs, const char *dir, guint index)
{
	g_autoptr(GVariant) opts = g_variant_ref_sink (g_variant_new_parsed (options));
	g_autofree char *out = g_strdup_printf ("%s/out%u.%s", dir, index, plugin->name);
	VmiMeasurement all = measure (plugin, runs->virtual_size, runs->data, opts);
	VmiMeasurement nonzero = measure (plugin, runs->virtual_size, runs->nonzero, opts);
	guint64 size;

	g_assert_true (vmi_test_convert (source->plugin, source->path, plugin, out, opts, NULL));
	size = vmi_test_file_size (out);
	g_test_message ("%s -> %s %s: file %" G_GUINT64_FORMAT ", required %" G_GUINT64_FORMAT
			" (non-zero runs only: %" G_GUINT64_FORMAT "), fully allocated %" G_GUINT64_FORMAT,
			source->path, plugin->name, options, size, all.required, nonzero.required,
			all.fully_allocated);
	g_assert_cmpuint (size, <=, all.required);
	if (exact)
		g_assert_cmpuint (size, >=, nonzero.required);
	g_assert_cmpuint (all.fully_allocated, >=, size);
	g_unlink (out);
}

static void
test_own_writers (VmiTestDirFixture *fixture, gconstpointer data)
{
	static const struct {
		const VmiFormatPlugin *plugin;
		const char *options;
		gboolean exact;
	} outputs[] = {
		{ &vmi_qcow2_plugin, "{'compress': <true>}", FALSE },
		{ &vmi_vmdk_plugin, "@a{sv} {}", TRUE },
		{ &vmi_vmdk_plugin, "{'subformat': <'streamOptimized'>}", FALSE },
		{ &vmi_vhd_plugin, "@a{sv} {}", TRUE },
		{ &vmi_vhd_plugin, "{'subformat': <'fixed'>}", TRUE },
		{ &vmi_vhd_plugin, "{'force_size': <true>}", TRUE },
		{ &vmi_vhdx_plugin, "@a{sv} {}", TRUE },
		{ &vmi_vhdx_plugin, "{'subformat': <'fixed'>}", TRUE },
		{ &vmi_vhdx_plugin, "{'block-size': <uint64 1048576>}", TRUE },
		{ &vmi_vdi_plugin, "@a{sv} {}", TRUE },
		{ &vmi_vdi_plugin, "{'subformat': <'static'>}", TRUE },
	};
	Source sources[8];
	guint n, index = 0;

	if (!vmi_test_require_qemu_img () ||
	    !vmi_test_require_program ("qemu-io", "qemu-utils", "cannot write test images"))
		return;
	make_sources (fixture->dir, sources, &n);
	for (guint s = 0; s < n; s++) {
		Runs runs = { 0 };

		collect_runs (sources[s].plugin, sources[s].path, &runs);
		for (guint o = 0; o < G_N_ELEMENTS (outputs); o++)
			check_against_writer (outputs[o].plugin, outputs[o].options, outputs[o].exact,
					      &sources[s], &runs, fixture->dir, index++);
		runs_clear (&runs);
	}
	free_sources (sources, n);
}

/* Where the layout is exact, a source with data in every unit makes a file of fully_allocated
 * bytes; random data also pins the streamOptimized bound (deflate cannot shrink it). */
static void
test_fully_allocated (VmiTestDirFixture *fixture, gconstpointer data)
{
	static const struct {
		const VmiFormatPlugin *plugin;
		const char *options;
	} outputs[] = {
		{ &vmi_vmdk_plugin, "@a{sv} {}" },
		{ &vmi_vmdk_plugin, "{'subformat': <'streamOptimized'>}" },
		/* Without force_size the disk grows to a CHS geometry: a block more than the data. */
		{ &vmi_vhd_plugin, "{'force_size': <true>}" },
		{ &vmi_vhdx_plugin, "{'block-size': <uint64 1048576>}" },
		{ &vmi_vdi_plugin, "@a{sv} {}" },
	};
	g_autofree char *path = g_build_filename (fixture->dir, "random.raw", NULL);
	Runs runs = { 0 };

	vmi_test_sh_ok ("head -c %u /dev/urandom > '%s'", 4 * MiB, path);
	collect_runs (&vmi_raw_plugin, path, &runs);
	for (guint o = 0; o < G_N_ELEMENTS (outputs); o++) {
		g_autoptr(GVariant) opts = g_variant_ref_sink (g_variant_new_parsed (outputs[o].options));
		g_autofree char *out = g_strdup_printf ("%s/full%u", fixture->dir, o);
		VmiMeasurement m = measure (outputs[o].plugin, runs.virtual_size, runs.data, opts);

		g_assert_true (vmi_test_convert (&vmi_raw_plugin, path, outputs[o].plugin, out, opts, NULL));
		g_test_message ("random 4 MiB -> %s %s: file %" G_GUINT64_FORMAT ", required %" G_GUINT64_FORMAT
				", fully allocated %" G_GUINT64_FORMAT,
				outputs[o].plugin->name, outputs[o].options, vmi_test_file_size (out),
				m.required, m.fully_allocated);
		g_assert_cmpuint (m.required, ==, m.fully_allocated);
		g_assert_cmpuint (vmi_test_file_size (out), ==, m.required);
	}
	runs_clear (&runs);
}

static void
test_bad_arguments (void)
{
	const VmiFormatPlugin *writers[] = { &vmi_raw_plugin, &vmi_qcow2_plugin, &vmi_vmdk_plugin,
					     &vmi_vhd_plugin, &vmi_vhdx_plugin, &vmi_vdi_plugin };
	const VmiRange beyond[] = { { 0, 4096 }, { MiB, 2 * MiB } };
	const VmiRange unsorted[] = { { MiB, 4096 }, { 0, 4096 } };

	for (guint i = 0; i < G_N_ELEMENTS (writers); i++) {
		VmiMeasurement m;
		g_autoptr(GError) e1 = NULL;
		g_autoptr(GError) e2 = NULL;

		g_assert_false (writers[i]->measure (2 * MiB, beyond, 2, NULL, &m, &e1));
		g_assert_error (e1, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
		g_assert_false (writers[i]->measure (2 * MiB, unsorted, 2, NULL, &m, &e2));
		g_assert_error (e2, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	}
	/* Option values the writers would refuse too. */
	{
		const char *const bad[][2] = {
			{ "qcow2", "{'cluster-size': <uint64 3000>}" },
			{ "vmdk", "{'subformat': <'twoGbMaxExtentSparse'>}" },
			{ "vhd", "{'subformat': <'differencing'>}" },
			{ "vhdx", "{'block-size': <uint64 4096>}" },
			{ "vdi", "{'subformat': <'split'>}" },
		};

		for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
			g_autoptr(GVariant) opts = g_variant_ref_sink (g_variant_new_parsed (bad[i][1]));
			g_autoptr(GError) error = NULL;
			const VmiFormatPlugin *plugin = NULL;
			VmiMeasurement m;

			for (guint j = 0; j < G_N_ELEMENTS (writers); j++) {
				if (g_strcmp0 (writers[j]->name, bad[i][0]) == 0)
					plugin = writers[j];
			}
			g_assert_nonnull (plugin);
			g_assert_false (plugin->measure (MiB, NULL, 0, opts, &m, &error));
			g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
		}
	}
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	vmi_test_add_with_dir ("/measure/qemu-img/raw-and-qcow2", NULL, test_qemu_formats);
	vmi_test_add_with_dir ("/measure/own-writers", NULL, test_own_writers);
	vmi_test_add_with_dir ("/measure/fully-allocated", NULL, test_fully_allocated);
	g_test_add_func ("/measure/bad-arguments", test_bad_arguments);
	return g_test_run ();
}
