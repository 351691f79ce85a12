/*
 * Tests of the VHD plugin: images made by qemu-img and by real hypervisors read back as qemu
 * reads them, our writer's output read back by qemu-img, sizes as qemu computes them, sector
 * bitmaps, differencing disks, and every malformed header refused with its named error.
 */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_vhd_plugin;
extern const VmiFormatPlugin vmi_raw_plugin;

#define KiB (1024u)
#define MiB (1024u * 1024u)
#define GiB (1024ull * 1024u * 1024u)

/* --- small helpers ------------------------------------------------------------------------- */

static void
put_be16 (guint8 *p, guint16 v)
{
	p[0] = (guint8) (v >> 8);
	p[1] = (guint8) v;
}

static void
put_be32 (guint8 *p, guint32 v)
{
	p[0] = (guint8) (v >> 24);
	p[1] = (guint8) (v >> 16);
	p[2] = (guint8) (v >> 8);
	p[3] = (guint8) v;
}

static void
put_be64 (guint8 *p, guint64 v)
{
	put_be32 (p, (guint32) (v >> 32));
	put_be32 (p + 4, (guint32) v);
}

/* The VHD checksum, written independently of the plugin's: ~sum of bytes, field zeroed. */
static void
fix_checksum (guint8 *buf, gsize len, gsize at)
{
	guint32 sum = 0;

	put_be32 (buf + at, 0);
	for (gsize i = 0; i < len; i++)
		sum += buf[i];
	put_be32 (buf + at, ~sum);
}

static char *
tmp_path (const char *dir, const char *name)
{
	return g_build_filename (dir, name, NULL);
}

#define ASSERT_OPEN_ERROR(path, code, needle)                                                      \
	G_STMT_START                                                                               \
	{                                                                                          \
		g_autofree char *msg_ = vmi_test_open_error (&vmi_vhd_plugin, (path), (code));      \
		g_assert_nonnull (strstr (msg_, (needle)));                                        \
		vmi_test_save_seed ("vhd", (path));                                                \
	}                                                                                          \
	G_STMT_END

/* The whole virtual disk through the engine into a sparse raw file (the engine checks every
 * extent block_status gives). */
static void
dump_to_raw (VmiSource *source, const char *path)
{
	g_assert_true (vmi_test_convert_source (source, &vmi_raw_plugin, path, NULL, NULL));
}

/* --- probe --------------------------------------------------------------------------------- */

static void
test_probe (void)
{
	guint8 head[VMI_PROBE_HEAD_SIZE] = { 0 };
	guint8 tail[4096] = { 0 };
	guint8 *footer = tail + sizeof tail - 512;

	g_assert_cmpuint (vmi_vhd_plugin.probe (head, sizeof head, sizeof head), ==, VMI_PROBE_NO);
	g_assert_cmpuint (vmi_vhd_plugin.probe (head, 0, 0), ==, VMI_PROBE_NO);
	memcpy (head, "conectix", 8);
	g_assert_cmpuint (vmi_vhd_plugin.probe (head, sizeof head, sizeof head), ==,
			  VMI_PROBE_CERTAIN);
	g_assert_cmpuint (vmi_vhd_plugin.probe (head, 7, 7), ==, VMI_PROBE_NO);

	/* A fixed disk is known by its footer alone, which must have the right checksum. */
	g_assert_cmpuint (vmi_vhd_plugin.probe_tail (tail, sizeof tail, 1 * MiB), ==, VMI_PROBE_NO);
	memcpy (footer, "conectix", 8);
	put_be32 (footer + 60, 2);
	fix_checksum (footer, 512, 64);
	g_assert_cmpuint (vmi_vhd_plugin.probe_tail (tail, sizeof tail, 1 * MiB), ==,
			  VMI_PROBE_CERTAIN);
	footer[100] ^= 1;
	g_assert_cmpuint (vmi_vhd_plugin.probe_tail (tail, sizeof tail, 1 * MiB), <,
			  VMI_PROBE_CERTAIN);
	g_assert_cmpuint (vmi_vhd_plugin.probe_tail (tail, 100, 100), ==, VMI_PROBE_NO);
}

/* Through the registry: the alias, and detection of dynamic (head) and fixed (tail) disks. */
static void
test_registry (void)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = NULL;

	g_assert_true (vmi_registry_add (registry, &vmi_vhd_plugin, &error));
	g_assert_true (vmi_registry_lookup (registry, "vpc", &error) == &vmi_vhd_plugin);
	g_assert_true (vmi_registry_lookup (registry, "VHD", &error) == &vmi_vhd_plugin);
	g_assert_no_error (error);
	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	for (guint i = 0; i < 2; i++) {
		g_autofree char *path = tmp_path (dir, i == 0 ? "d.vhd" : "f.vhd");
		int fd;

		vmi_test_qemu_img ("create -q -f vpc -o subformat=%s %s 3M", i == 0 ? "dynamic" : "fixed",
				   path);
		fd = open (path, O_RDONLY | O_CLOEXEC);
		g_assert_cmpint (fd, >=, 0);
		g_assert_true (vmi_registry_probe_fd (registry, fd, &error) == &vmi_vhd_plugin);
		g_assert_no_error (error);
		close (fd);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* --- images made by qemu-img --------------------------------------------------------------- */

typedef struct {
	guint64 size;
	const char *subformat;
	gboolean force_size;
} QemuCase;

static void
check_qemu_image (const QemuCase *c)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *raw = tmp_path (dir, "src.raw");
	g_autofree char *vhd = tmp_path (dir, "qemu.vhd");
	g_autofree char *dump = tmp_path (dir, "dump.raw");
	g_autoptr(VmiSource) source = NULL;
	const VmiImageInfo *info;
	guint64 qsize;

	vmi_test_make_pattern_image (raw, c->size, (guint32) c->size);
	vmi_test_qemu_img ("convert -f raw -O vpc -o subformat=%s,force_size=%s %s %s", c->subformat,
			   c->force_size ? "on" : "off", raw, vhd);
	qsize = vmi_test_qemu_img_virtual_size (vhd, "vpc");

	source = vmi_test_open (&vmi_vhd_plugin, vhd, NULL);
	info = vmi_source_get_info (source);
	g_assert_cmpuint (info->virtual_size, ==, qsize);
	g_assert_cmpstr (info->subformat, ==, c->subformat);
	g_assert_cmpuint (info->unsafe_reasons->len, ==, 0);
	g_assert_cmpuint (info->references->len, ==, 0);
	g_assert_cmpstr (vmi_test_fact_string (source, "creator-app"), ==,
			 (c->force_size ? "qem2" : "qemu"));
	/* Beyond the largest geometry (about 127 GiB) even qemu's CHS-sized disks use current_size. */
	g_assert_cmpstr (vmi_test_fact_string (source, "size-source"), ==,
			 (c->force_size || c->size > 65535ull * 16 * 255 * 512 ? "current-size" : "chs"));
	if (g_str_equal (c->subformat, "dynamic")) {
		g_autoptr(JsonObject) qinfo = vmi_test_qemu_img_info (vhd, "vpc");

		g_assert_cmpuint (info->cluster_size, ==, 2 * MiB);
		g_assert_cmpint (json_object_get_int_member (qinfo, "cluster-size"), ==,
				 info->cluster_size);
		g_assert_cmpuint (vmi_test_fact_u32 (source, "block-size"), ==, 2 * MiB);
	} else {
		g_assert_cmpuint (info->cluster_size, ==, 0);
	}
	if (c->force_size || c->size > 65535ull * 16 * 255 * 512)
		g_assert_cmpuint (qsize, ==, (c->size + 511) / 512 * 512);
	else
		g_assert_cmpuint (qsize, ==,
				  (guint64) vmi_test_fact_u32 (source, "cylinders") * vmi_test_fact_u32 (source, "heads") *
					  vmi_test_fact_u32 (source, "sectors") * 512);

	dump_to_raw (source, dump);
	g_assert_true (vmi_test_qemu_img_compare (dump, "raw", vhd, "vpc"));
	g_assert_true (vmi_test_qemu_img_compare (dump, "raw", raw, "raw"));
	vmi_test_save_seed ("vhd", vhd);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_qemu_images (void)
{
	static const QemuCase cases[] = {
		{ 5 * MiB + 3 * 512, "dynamic", FALSE },
		{ 5 * MiB + 3 * 512, "dynamic", TRUE },
		{ 5 * MiB + 3 * 512, "fixed", FALSE },
		{ 5 * MiB + 3 * 512, "fixed", TRUE },
		{ 9 * MiB + 100, "dynamic", FALSE }, /* not even whole sectors */
		{ 9 * MiB + 100, "fixed", TRUE },
		{ 5 * GiB + 7 * 512, "dynamic", FALSE },
		{ 5 * GiB + 7 * 512, "dynamic", TRUE },
		{ 130 * GiB, "dynamic", FALSE }, /* beyond the largest CHS geometry */
	};

	if (!vmi_test_require_qemu_img ())
		return;
	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		if (g_test_verbose ())
			g_printerr ("# qemu-img vpc %s size %" G_GUINT64_FORMAT " force_size %d\n",
				    cases[i].subformat, cases[i].size, cases[i].force_size);
		check_qemu_image (&cases[i]);
	}
}

/* --- our writer ---------------------------------------------------------------------------- */

static GVariant *
create_options (const char *subformat, gboolean force_size)
{
	GVariantBuilder b;

	g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
	if (subformat != NULL)
		g_variant_builder_add (&b, "{sv}", "subformat", g_variant_new_string (subformat));
	if (force_size)
		g_variant_builder_add (&b, "{sv}", "force_size", g_variant_new_boolean (TRUE));
	return g_variant_ref_sink (g_variant_builder_end (&b));
}

/* Writes the raw file src into a new VHD at dst through the engine. */
static void
write_from_raw (const char *src, const char *dst, GVariant *options)
{
	g_assert_true (vmi_test_convert (&vmi_raw_plugin, src, &vmi_vhd_plugin, dst, options, NULL));
}

typedef struct {
	guint64 size;
	const char *subformat; /* NULL: the default */
	gboolean force_size;
} WriteCase;

static void
check_write (const WriteCase *c)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *raw = tmp_path (dir, "src.raw");
	g_autofree char *ours = tmp_path (dir, "ours.vhd");
	g_autofree char *theirs = tmp_path (dir, "qemu.vhd");
	g_autofree char *dump = tmp_path (dir, "dump.raw");
	g_autoptr(GVariant) options = create_options (c->subformat, c->force_size);
	g_autoptr(VmiSource) source = NULL;
	const char *subformat = c->subformat != NULL ? c->subformat : "dynamic";
	guint64 qsize;

	vmi_test_make_pattern_image (raw, c->size, (guint32) c->size + 1);
	write_from_raw (raw, ours, options);

	/* The size qemu-img reports for our file is the size of its own conversion. */
	vmi_test_qemu_img ("convert -f raw -O vpc -o subformat=%s,force_size=%s %s %s", subformat,
			   c->force_size ? "on" : "off", raw, theirs);
	qsize = vmi_test_qemu_img_virtual_size (theirs, "vpc");
	g_assert_cmpuint (vmi_test_qemu_img_virtual_size (ours, "vpc"), ==, qsize);
	g_assert_cmpuint (qsize, >=, c->size);
	/* qemu-img has no check for vpc: content equality is the test. */
	g_assert_true (vmi_test_qemu_img_compare (ours, "vpc", raw, "raw"));
	g_assert_true (vmi_test_qemu_img_compare (ours, "vpc", theirs, "vpc"));

	/* And we read back what we wrote, with the same facts. */
	source = vmi_test_open (&vmi_vhd_plugin, ours, NULL);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, qsize);
	g_assert_cmpstr (vmi_source_get_info (source)->subformat, ==, subformat);
	g_assert_cmpstr (vmi_test_fact_string (source, "creator-app"), ==, "vmim");
	g_assert_cmpstr (vmi_test_fact_string (source, "footer"), ==, "end");
	dump_to_raw (source, dump);
	g_assert_true (vmi_test_qemu_img_compare (dump, "raw", raw, "raw"));

	if (g_str_equal (subformat, "dynamic")) {
		guint32 allocated = vmi_test_fact_u32 (source, "allocated-blocks");
		guint32 entries = vmi_test_fact_u32 (source, "max-table-entries");

		/* Blocks that were never written take no space. */
		g_assert_cmpuint (entries, ==, (qsize + 2 * MiB - 1) / (2 * MiB));
		g_assert_cmpuint (allocated, >, 0);
		g_assert_cmpuint (vmi_test_file_size (ours), ==,
				  1536 + (entries * 4 + 511) / 512 * 512 +
					  (guint64) allocated * (2 * MiB + 512) + 512);
		if (c->size > 1 * GiB)
			g_assert_cmpuint (allocated, <, entries / 10);
		/* The footer copy at 0 is the footer at the end. */
		{
			guint8 a[512], b[512];

			vmi_test_read_bytes (ours, 0, a, sizeof a);
			vmi_test_read_bytes (ours, vmi_test_file_size (ours) - 512, b, sizeof b);
			g_assert_cmpmem (a, sizeof a, b, sizeof b);
		}
	} else {
		g_assert_cmpuint (vmi_test_file_size (ours), ==, qsize + 512);
	}
	g_assert_cmpuint (vmi_test_file_allocated (ours), <, 64 * MiB);
	if (vmi_test_file_size (ours) <= MiB)
		vmi_test_save_seed ("vhd", ours);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_write (void)
{
	static const WriteCase cases[] = {
		{ 5 * MiB + 3 * 512, NULL, FALSE },  /* not a multiple of the block size */
		{ 5 * MiB + 3 * 512, "fixed", FALSE },
		{ 5 * MiB + 3 * 512, "dynamic", TRUE },
		{ 3 * MiB + 77, "dynamic", FALSE }, /* not even whole sectors */
		{ 3 * MiB + 77, "fixed", TRUE },
		{ 512 * KiB, "dynamic", FALSE },
		{ 5 * GiB + 12345, "dynamic", FALSE }, /* > 4 GiB, sparse */
		{ 5 * GiB + 12345, "dynamic", TRUE },
	};

	if (!vmi_test_require_qemu_img ())
		return;
	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		if (g_test_verbose ())
			g_printerr ("# write %s size %" G_GUINT64_FORMAT " force_size %d\n",
				    cases[i].subformat, cases[i].size, cases[i].force_size);
		check_write (&cases[i]);
	}
}

/* Through the engine: a qemu-made dynamic disk converted to our fixed one, options checked. */
static void
test_engine_convert (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *raw = NULL;
	g_autofree char *src = NULL;
	g_autofree char *dst = NULL;
	g_autoptr(GVariant) fixed = create_options ("fixed", FALSE);
	g_autoptr(GVariant) bogus = create_options ("sparse", FALSE);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) inspect = NULL;
	const char *format = NULL;
	guint64 cluster = 0;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	raw = tmp_path (dir, "src.raw");
	src = tmp_path (dir, "src.vhd");
	dst = tmp_path (dir, "dst.vhd");
	vmi_test_make_pattern_image (raw, 6 * MiB + 5 * 512, 99);
	vmi_test_qemu_img ("convert -f raw -O vpc -o subformat=dynamic,force_size=on %s %s", raw, src);

	source = vmi_test_open (&vmi_vhd_plugin, src, NULL);
	inspect = vmi_source_to_variant (source);
	g_assert_true (g_variant_lookup (inspect, "format", "&s", &format));
	g_assert_cmpstr (format, ==, "vhd");
	g_assert_true (g_variant_lookup (inspect, "cluster-size", "t", &cluster));
	g_assert_cmpuint (cluster, ==, 2 * MiB);
	g_assert_true (g_variant_lookup (inspect, "subformat", "&s", &format));
	g_assert_cmpstr (format, ==, "dynamic");

	g_assert_true (vmi_test_convert (&vmi_vhd_plugin, src, &vmi_vhd_plugin, dst, fixed, &error));
	g_assert_no_error (error);
	g_assert_true (vmi_test_qemu_img_compare (dst, "vpc", raw, "raw"));
	/* The size qemu gives when it converts the same disk. */
	vmi_test_qemu_img ("convert -f vpc -O vpc -o subformat=fixed %s %s/qemu.vhd", src, dir);
	{
		g_autofree char *theirs = tmp_path (dir, "qemu.vhd");

		g_assert_cmpuint (vmi_test_qemu_img_virtual_size (dst, "vpc"), ==,
				  vmi_test_qemu_img_virtual_size (theirs, "vpc"));
		g_assert_cmpuint (vmi_test_qemu_img_virtual_size (dst, "vpc"), >, 6 * MiB + 5 * 512);
	}
	g_clear_pointer (&source, vmi_source_free);
	source = vmi_test_open (&vmi_vhd_plugin, dst, NULL);
	g_assert_cmpstr (vmi_source_get_info (source)->subformat, ==, "fixed");

	g_assert_false (vmi_test_convert (&vmi_vhd_plugin, src, &vmi_vhd_plugin, dst, bogus,
					  &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Writes that come back to an earlier block keep both the data and the sector bitmaps right. */
static void
test_write_out_of_order (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = tmp_path (dir, "order.vhd");
	g_autofree char *expect = tmp_path (dir, "order.raw");
	g_autofree char *dump = tmp_path (dir, "dump.raw");
	g_autoptr(GVariant) options = create_options (NULL, FALSE);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	static const guint64 offsets[] = { 4 * MiB + 512, 1 * MiB, 4 * MiB + 8192, 0, 7 * MiB };
	guint8 data[4096];
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rawfd = open (expect, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	VmiImage *image;
	VmiExtent extent;

	g_assert_cmpint (ftruncate (rawfd, 8 * MiB), ==, 0);
	image = vmi_vhd_plugin.create (fd, 8 * MiB, options, &error);
	g_assert_no_error (error);
	for (gsize i = 0; i < G_N_ELEMENTS (offsets); i++) {
		memset (data, (int) (0x11 * (i + 1)), sizeof data);
		g_assert_true (vmi_vhd_plugin.write (image, offsets[i], data, sizeof data, &error));
		g_assert_no_error (error);
		g_assert_cmpint (pwrite (rawfd, data, sizeof data, (off_t) offsets[i]), ==,
				 (ssize_t) sizeof data);
	}
	g_assert_true (vmi_vhd_plugin.finish (image, &error));
	vmi_vhd_plugin.close (image);
	g_assert_cmpint (close (fd), ==, 0);
	g_assert_cmpint (close (rawfd), ==, 0);

	source = vmi_test_open (&vmi_vhd_plugin, path, NULL);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), >=, 8 * MiB);
	g_assert_cmpuint (vmi_test_fact_u32 (source, "allocated-blocks"), ==, 3);
	/* Only written sectors are marked: block 2 has data at 512 and 8192 only. */
	g_assert_true (vmi_vhd_plugin.block_status (vmi_source_get_image (source), 4 * MiB,
						    2 * MiB, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
	g_assert_cmpuint (extent.length, ==, 512);
	g_assert_true (vmi_vhd_plugin.block_status (vmi_source_get_image (source), 4 * MiB + 512,
						    2 * MiB, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, 4096);
	dump_to_raw (source, dump);
	if (vmi_test_require_qemu_img ()) {
		g_assert_true (vmi_test_qemu_img_compare (dump, "raw", expect, "raw"));
		g_assert_true (vmi_test_qemu_img_compare (path, "vpc", expect, "raw"));
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A full file system is NoSpace, not a generic failure. */
static void
test_write_no_space (void)
{
	g_autoptr(GVariant) options = create_options ("fixed", FALSE);
	g_autoptr(GError) error = NULL;
	guint8 data[512] = { 1 };
	int fd = open ("/dev/full", O_RDWR | O_CLOEXEC);
	VmiImage *image;

	if (fd < 0) {
		g_test_skip ("no /dev/full");
		return;
	}
	image = vmi_vhd_plugin.create (fd, 1 * MiB, options, &error);
	g_assert_no_error (error);
	g_assert_false (vmi_vhd_plugin.write (image, 0, data, sizeof data, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE);
	vmi_vhd_plugin.close (image);
	close (fd);
}

/* Creates an image of size through the plugin alone, with nothing written. */
static void
create_empty (const char *path, guint64 size, const char *subformat, gboolean force_size)
{
	g_autoptr(GVariant) options = create_options (subformat, force_size);
	g_autoptr(GError) error = NULL;
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	VmiImage *image;

	g_assert_cmpint (fd, >=, 0);
	image = vmi_vhd_plugin.create (fd, size, options, &error);
	g_assert_no_error (error);
	g_assert_true (vmi_vhd_plugin.finish (image, &error));
	g_assert_no_error (error);
	vmi_vhd_plugin.close (image);
	g_assert_cmpint (close (fd), ==, 0);
}

/* The CHS rounding of every size class against qemu-img create. */
static void
test_write_sizes (void)
{
	static const guint64 sizes[] = {
		0, 1, 512, 513, 1 * MiB, 10 * MiB + 1, 127 * MiB, 500 * MiB + 4097, 1 * GiB,
		3 * GiB + 5, 31 * GiB, 32 * GiB + 512, 100 * GiB, 127 * GiB,
		65535ull * 16 * 255 * 512 - 512, 65535ull * 16 * 255 * 512, 200 * GiB + 1,
	};
	g_autofree char *dir = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++) {
		for (guint force = 0; force < 2; force++) {
			g_autofree char *ours = tmp_path (dir, "ours.vhd");
			g_autofree char *theirs = tmp_path (dir, "qemu.vhd");
			g_autoptr(VmiSource) source = NULL;
			guint64 qsize;

			create_empty (ours, sizes[i], NULL, force);
			vmi_test_qemu_img ("create -q -f vpc -o force_size=%s %s %" G_GUINT64_FORMAT,
					   force ? "on" : "off", theirs, sizes[i]);
			qsize = vmi_test_qemu_img_virtual_size (theirs, "vpc");
			g_assert_cmpuint (vmi_test_qemu_img_virtual_size (ours, "vpc"), ==, qsize);
			source = vmi_test_open (&vmi_vhd_plugin, ours, NULL);
			g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, qsize);
			g_clear_pointer (&source, vmi_source_free);
			source = vmi_test_open (&vmi_vhd_plugin, theirs, NULL);
			g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, qsize);
			g_assert_cmpuint (vmi_source_get_info (source)->cluster_size, ==, 2 * MiB);
			g_assert_cmpuint (vmi_test_fact_u32 (source, "allocated-blocks"), ==, 0);
		}
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_write_bad_options (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = tmp_path (dir, "x.vhd");
	g_autoptr(GVariant) bogus = create_options ("streamOptimized", FALSE);
	g_autoptr(GVariant) none = create_options (NULL, FALSE);
	g_autoptr(GError) error = NULL;
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint (fd, >=, 0);
	g_assert_null (vmi_vhd_plugin.create (fd, 1 * MiB, bogus, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull (strstr (error->message, "streamOptimized"));
	g_clear_error (&error);
	/* 2040 GiB is the most a VHD holds. */
	g_assert_null (vmi_vhd_plugin.create (fd, 2041 * GiB, none, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_cmpint (close (fd), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* --- synthetic images ---------------------------------------------------------------------- */

/* A hand-built VHD: the reader is checked against bytes we lay out ourselves. */
typedef struct {
	guint32 type;
	const char *creator;
	guint64 current_size;
	guint16 cylinders;
	guint8 heads, sectors;
	guint32 block_size;
	guint32 entries;
} Synth;

static void
synth_footer (const Synth *s, guint8 *footer)
{
	memset (footer, 0, 512);
	memcpy (footer, "conectix", 8);
	put_be32 (footer + 8, 2);
	put_be32 (footer + 12, 0x00010000);
	put_be64 (footer + 16, s->type == 2 ? G_MAXUINT64 : 512);
	memcpy (footer + 28, s->creator, 4);
	put_be32 (footer + 32, 0x00060003);
	memcpy (footer + 36, "Wi2k", 4);
	put_be64 (footer + 40, s->current_size);
	put_be64 (footer + 48, s->current_size);
	put_be16 (footer + 56, s->cylinders);
	footer[58] = s->heads;
	footer[59] = s->sectors;
	put_be32 (footer + 60, s->type);
	footer[68] = 0x42;
	fix_checksum (footer, 512, 64);
}

/* Footer copy, header and an empty BAT; blocks are appended by synth_add_block. */
static guint64
synth_create (const char *path, const Synth *s, guint8 *header)
{
	guint8 footer[512];
	guint64 bat_bytes = ((guint64) s->entries * 4 + 511) / 512 * 512;
	g_autofree guint8 *bat = g_malloc (MAX (bat_bytes, 1));
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (close (fd), ==, 0);
	synth_footer (s, footer);
	vmi_test_write_bytes (path, 0, footer, 512);
	memset (header, 0, 1024);
	memcpy (header, "cxsparse", 8);
	put_be64 (header + 8, G_MAXUINT64);
	put_be64 (header + 16, 1536);
	put_be32 (header + 24, 0x00010000);
	put_be32 (header + 28, s->entries);
	put_be32 (header + 32, s->block_size);
	fix_checksum (header, 1024, 36);
	vmi_test_write_bytes (path, 512, header, 1024);
	memset (bat, 0xff, bat_bytes);
	if (bat_bytes > 0)
		vmi_test_write_bytes (path, 1536, bat, bat_bytes);
	return 1536 + bat_bytes;
}

/* Allocates block index at *end: bitmap then data, both given in full. */
static void
synth_add_block (const char *path, const Synth *s, guint32 index, guint64 *end,
		 const guint8 *bitmap, gsize bitmap_len, const guint8 *data)
{
	guint8 entry[4];

	put_be32 (entry, (guint32) (*end / 512));
	vmi_test_write_bytes (path, 1536 + (guint64) index * 4, entry, 4);
	vmi_test_write_bytes (path, *end, bitmap, bitmap_len);
	vmi_test_write_bytes (path, *end + bitmap_len, data, s->block_size);
	*end += bitmap_len + s->block_size;
}

static void
synth_finish (const char *path, const Synth *s, guint64 end)
{
	guint8 footer[512];

	synth_footer (s, footer);
	vmi_test_write_bytes (path, end, footer, 512);
}

/* Sectors whose bitmap bit is clear read as zeros even when the file has data there. */
static void
test_sector_bitmap (void)
{
	const Synth s = { 3, "win ", 8 * MiB, 0, 0, 0, 1 * MiB, 8 };
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = tmp_path (dir, "bitmap.vhd");
	g_autofree guint8 *data = g_malloc (s.block_size);
	g_autofree guint8 *buf = g_malloc (s.block_size);
	guint8 header[1024];
	guint8 bitmap[512] = { 0 };
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	VmiImage *image;
	VmiExtent extent;
	guint64 end;

	for (gsize i = 0; i < s.block_size; i++)
		data[i] = (guint8) (i / 512 + 1);
	/* Sectors 0-1 and 5 of block 2 are present, most significant bit first. */
	bitmap[0] = 0xc4;
	end = synth_create (path, &s, header);
	synth_add_block (path, &s, 2, &end, bitmap, sizeof bitmap, data);
	synth_finish (path, &s, end);
	vmi_test_save_seed ("vhd", path);

	source = vmi_test_open (&vmi_vhd_plugin, path, NULL);
	image = vmi_source_get_image (source);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 8 * MiB);
	g_assert_cmpuint (vmi_source_get_info (source)->cluster_size, ==, 1 * MiB);
	g_assert_cmpstr (vmi_test_fact_string (source, "size-source"), ==, "current-size");

	g_assert_true (vmi_vhd_plugin.read (image, 2 * MiB - 512, buf, 8 * 512, &error));
	g_assert_no_error (error);
	for (gsize i = 0; i < 512; i++)
		g_assert_cmpuint (buf[i], ==, 0); /* end of block 1: unallocated */
	for (guint sector = 0; sector < 7; sector++) {
		guint8 want = sector == 0 || sector == 1 || sector == 5 ? (guint8) (sector + 1) : 0;

		for (gsize i = 0; i < 512; i++)
			g_assert_cmpuint (buf[512 + sector * 512 + i], ==, want);
	}
	/* An unaligned read inside a present sector. */
	g_assert_true (vmi_vhd_plugin.read (image, 2 * MiB + 5 * 512 + 7, buf, 3, &error));
	g_assert_cmpmem (buf, 3, "\6\6\6", 3);

	/* block_status follows the bitmap inside an allocated block and merges empty blocks. */
	g_assert_true (vmi_vhd_plugin.block_status (image, 0, 8 * MiB, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
	g_assert_cmpuint (extent.length, ==, 2 * MiB);
	g_assert_true (vmi_vhd_plugin.block_status (image, 2 * MiB, 6 * MiB, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, 1024);
	g_assert_true (vmi_vhd_plugin.block_status (image, 2 * MiB + 1024, 6 * MiB, &extent,
						    &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
	g_assert_cmpuint (extent.length, ==, 3 * 512);
	g_assert_true (vmi_vhd_plugin.block_status (image, 2 * MiB + 6 * 512, 6 * MiB, &extent,
						    &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
	g_assert_cmpuint (extent.length, ==, 1 * MiB - 6 * 512); /* to the end of block 2 */
	g_assert_true (vmi_vhd_plugin.block_status (image, 3 * MiB, 100, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
	g_assert_cmpuint (extent.length, ==, 100);
	g_assert_true (vmi_vhd_plugin.block_status (image, 3 * MiB, 8 * MiB, &extent, &error));
	g_assert_cmpuint (extent.length, ==, 5 * MiB);
	g_assert_no_error (error);

	/* Out of range: refused, not read past the table. */
	g_assert_false (vmi_vhd_plugin.read (image, 8 * MiB - 512, buf, 1024, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_false (vmi_vhd_plugin.block_status (image, 8 * MiB, 512, &extent, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Every power-of-two block size from one sector up, with full bitmaps, read as qemu reads. */
static void
test_block_sizes (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *qemu = g_find_program_in_path ("qemu-img");

	for (guint32 bs = 512; bs <= 16 * MiB; bs *= 2) {
		const guint64 vsize = 32 * MiB;
		const Synth s = { 3, "win ", vsize, 0, 0, 0, bs, (guint32) (vsize / bs) };
		g_autofree char *name = g_strdup_printf ("bs-%u.vhd", bs);
		g_autofree char *path = tmp_path (dir, name);
		g_autofree char *dump = tmp_path (dir, "bs.raw");
		g_autofree char *expect = tmp_path (dir, "expect.raw");
		guint32 bitmap_len = ((bs / 512 + 7) / 8 + 511) / 512 * 512;
		g_autofree guint8 *bitmap = g_malloc (bitmap_len);
		g_autofree guint8 *data = g_malloc (bs);
		guint8 header[1024];
		g_autoptr(VmiSource) source = NULL;
		guint64 end;
		int fd;

		memset (bitmap, 0xff, bitmap_len);
		end = synth_create (path, &s, header);
		fd = open (expect, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		g_assert_cmpint (ftruncate (fd, (off_t) vsize), ==, 0);
		/* Blocks at 0, 1 MiB + one block, and the last one, in reverse file order. */
		for (gint k = 2; k >= 0; k--) {
			guint64 at = k == 0 ? 0 : k == 1 ? 1 * MiB + bs : vsize - bs;
			guint32 index = (guint32) (at / bs);

			memset (data, 0x30 + k, bs);
			memcpy (data, &bs, sizeof bs);
			synth_add_block (path, &s, index, &end, bitmap, bitmap_len, data);
			g_assert_cmpint (pwrite (fd, data, bs, (off_t) ((guint64) index * bs)), ==,
					 (ssize_t) bs);
		}
		g_assert_cmpint (close (fd), ==, 0);
		synth_finish (path, &s, end);

		source = vmi_test_open (&vmi_vhd_plugin, path, NULL);
		g_assert_cmpuint (vmi_source_get_info (source)->cluster_size, ==, bs);
		dump_to_raw (source, dump);
		if (qemu != NULL)
			g_assert_true (vmi_test_qemu_img_compare (dump, "raw", expect, "raw"));
		/* qemu skips bitmaps smaller than a sector (blocks under 4 KiB) when it reads. */
		if (bs >= 4096 && qemu != NULL)
			g_assert_true (vmi_test_qemu_img_compare (dump, "raw", path, "vpc"));
		vmi_test_save_seed ("vhd", path);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A fixed disk with the CHS rule: creator "vpc " sizes it by geometry, not current_size. */
static void
test_fixed_chs (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = tmp_path (dir, "fixed.vhd");
	/* 20/4/17 = 1360 sectors; current_size says more, as Virtual PC's files do. */
	const Synth vpc = { 2, "vpc ", 1400 * 512, 20, 4, 17, 0, 0 };
	const Synth hyperv = { 2, "win ", 1400 * 512, 20, 4, 17, 0, 0 };
	const Synth big = { 2, "win ", 1401 * 512, 20, 4, 17, 0, 0 };
	guint8 footer[512];
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint (ftruncate (fd, 1400 * 512), ==, 0);
	g_assert_cmpint (close (fd), ==, 0);
	for (guint i = 0; i < 2; i++) {
		const Synth *s = i == 0 ? &vpc : &hyperv;
		g_autoptr(VmiSource) source = NULL;

		synth_footer (s, footer);
		vmi_test_write_bytes (path, 1400 * 512, footer, 512);
		source = vmi_test_open (&vmi_vhd_plugin, path, NULL);
		g_assert_cmpuint (vmi_source_get_virtual_size (source), ==,
				  i == 0 ? 1360 * 512 : 1400 * 512);
		g_assert_cmpstr (vmi_source_get_info (source)->subformat, ==, "fixed");
		g_assert_cmpuint (vmi_source_get_info (source)->cluster_size, ==, 0);
		if (vmi_test_require_qemu_img ())
			g_assert_cmpuint (vmi_test_qemu_img_virtual_size (path, "vpc"), ==,
					  vmi_source_get_virtual_size (source));
	}
	vmi_test_save_seed ("vhd", path);
	/* A footer claiming more data than the file holds. */
	synth_footer (&big, footer);
	vmi_test_write_bytes (path, 1400 * 512, footer, 512);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "holds only 716800 bytes");
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
utf16_put (guint8 *out, const char *ascii, gboolean big_endian)
{
	for (gsize i = 0; ascii[i] != '\0'; i++) {
		out[i * 2 + (big_endian ? 1 : 0)] = (guint8) ascii[i];
		out[i * 2 + (big_endian ? 0 : 1)] = 0;
	}
}

static void
test_differencing (void)
{
	const Synth s = { 4, "win ", 8 * MiB, 0, 0, 0, 2 * MiB, 4 };
	const char *abs_path = "C:\\vms\\base disk.vhd";
	const char *rel_path = ".\\base disk.vhd";
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = tmp_path (dir, "child.vhd");
	guint8 header[1024];
	guint8 loc[512] = { 0 };
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	const VmiImageInfo *info;
	VmiExtent extent;
	guint8 buf[512];
	guint64 end;

	end = synth_create (path, &s, header);
	/* Parent name (UTF-16 big-endian) and two locators (UTF-16 little-endian). */
	utf16_put (header + 64, "base disk.vhd", TRUE);
	memcpy (header + 576, "W2ku", 4);
	put_be32 (header + 576 + 4, 512);
	put_be32 (header + 576 + 8, (guint32) strlen (abs_path) * 2);
	put_be64 (header + 576 + 16, end);
	memcpy (header + 600, "W2ru", 4);
	put_be32 (header + 600 + 4, 512);
	put_be32 (header + 600 + 8, (guint32) strlen (rel_path) * 2);
	put_be64 (header + 600 + 16, end + 512);
	fix_checksum (header, 1024, 36);
	vmi_test_write_bytes (path, 512, header, 1024);
	utf16_put (loc, abs_path, FALSE);
	vmi_test_write_bytes (path, end, loc, 512);
	memset (loc, 0, sizeof loc);
	utf16_put (loc, rel_path, FALSE);
	vmi_test_write_bytes (path, end + 512, loc, 512);
	synth_finish (path, &s, end + 1024);
	vmi_test_save_seed ("vhd", path);

	source = vmi_test_open (&vmi_vhd_plugin, path, NULL);
	info = vmi_source_get_info (source);
	g_assert_cmpstr (info->subformat, ==, "differencing");
	g_assert_cmpuint (info->virtual_size, ==, 8 * MiB);
	g_assert_false (vmi_source_is_safe (source));
	g_assert_cmpuint (info->unsafe_reasons->len, ==, 1);
	g_assert_nonnull (strstr (g_ptr_array_index (info->unsafe_reasons, 0), "base disk.vhd"));
	g_assert_cmpuint (info->references->len, ==, 3);
	g_assert_cmpstr (g_ptr_array_index (info->references, 0), ==, "base disk.vhd");
	g_assert_cmpstr (g_ptr_array_index (info->references, 1), ==, abs_path);
	g_assert_cmpstr (g_ptr_array_index (info->references, 2), ==, rel_path);
	g_assert_cmpstr (vmi_test_fact_string (source, "parent-name"), ==, "base disk.vhd");
	{
		g_autofree const char **locators = NULL;
		g_autofree char *w2ku = g_strconcat ("W2ku ", abs_path, NULL);
		g_autofree char *w2ru = g_strconcat ("W2ru ", rel_path, NULL);

		g_assert_true (g_variant_dict_lookup (info->format_specific, "parent-locators",
						      "^a&s", &locators));
		g_assert_cmpuint (g_strv_length ((char **) locators), ==, 2);
		g_assert_cmpstr (locators[0], ==, w2ku);
		g_assert_cmpstr (locators[1], ==, w2ru);
	}

	g_assert_false (vmi_vhd_plugin.read (vmi_source_get_image (source), 0, buf, sizeof buf,
					     &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_clear_error (&error);
	g_assert_false (vmi_vhd_plugin.block_status (vmi_source_get_image (source), 0, 512,
						     &extent, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_clear_pointer (&source, vmi_source_free);

	/* A locator pointing past the end of the file. */
	put_be64 (header + 600 + 16, 1 * GiB);
	fix_checksum (header, 1024, 36);
	vmi_test_write_bytes (path, 512, header, 1024);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "parent locator 1");
	/* An absurdly long one. */
	put_be64 (header + 600 + 16, end + 512);
	put_be32 (header + 600 + 8, 0x7fffffff);
	fix_checksum (header, 1024, 36);
	vmi_test_write_bytes (path, 512, header, 1024);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "parent locator 1");
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* --- the real-world corpus ----------------------------------------------------------------- */

typedef struct {
	const char *file;
	const char *creator;
	const char *version;
	const char *size_source;
	guint32 entries;
} CorpusCase;

/* The MANIFEST.tsv row of file: its virtual_size_bytes column. */
static guint64
manifest_size (const char *corpus, const char *file)
{
	g_autofree char *manifest = g_build_filename (corpus, "MANIFEST.tsv", NULL);
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	g_assert_true (g_file_get_contents (manifest, &text, NULL, NULL));
	lines = g_strsplit (text, "\n", -1);
	for (guint i = 1; lines[i] != NULL; i++) {
		g_auto(GStrv) cols = g_strsplit (lines[i], "\t", -1);

		if (g_strv_length (cols) >= 7 && g_str_equal (cols[0], file))
			return g_ascii_strtoull (cols[6], NULL, 10);
	}
	g_assert_not_reached ();
}

static void
test_corpus (void)
{
	static const CorpusCase cases[] = {
		{ "hyperv2012r2-dynamic.vhd.bz2", "win", "6.3", "current-size", 65024 },
		{ "virtualpc-dynamic.vhd.bz2", "vpc", "1.0", "chs", 65024 },
		{ "d2v-zerofilled.vhd.bz2", "d2v", NULL, "current-size", 126 },
	};
	const char *corpus = vmi_test_corpus_dir ();

	if (corpus == NULL || !vmi_test_require_qemu_img ())
		return;
	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autofree char *dir = vmi_test_tmpdir_new ();
		g_autofree char *path = vmi_test_corpus_fetch (cases[i].file, dir);
		g_autofree char *dump = tmp_path (dir, "dump.raw");
		g_autoptr(VmiSource) source = vmi_test_open (&vmi_vhd_plugin, path, NULL);
		const VmiImageInfo *info = vmi_source_get_info (source);
		guint64 expected = manifest_size (corpus, cases[i].file);

		g_assert_cmpuint (expected, >, 0);
		g_assert_cmpuint (info->virtual_size, ==, expected);
		g_assert_cmpuint (vmi_test_qemu_img_virtual_size (path, "vpc"), ==, expected);
		g_assert_cmpstr (info->subformat, ==, "dynamic");
		g_assert_cmpuint (info->cluster_size, ==, 2 * MiB);
		g_assert_cmpstr (vmi_test_fact_string (source, "creator-app"), ==, cases[i].creator);
		g_assert_cmpstr (vmi_test_fact_string (source, "host-os"), ==, "Wi2k");
		g_assert_cmpstr (vmi_test_fact_string (source, "size-source"), ==, cases[i].size_source);
		g_assert_cmpuint (vmi_test_fact_u32 (source, "max-table-entries"), ==, cases[i].entries);
		if (cases[i].version != NULL)
			g_assert_cmpstr (vmi_test_fact_string (source, "creator-version"), ==,
					 cases[i].version);
		/* MANIFEST: every block of the Disk2VHD file is allocated. */
		if (g_str_equal (cases[i].creator, "d2v"))
			g_assert_cmpuint (vmi_test_fact_u32 (source, "allocated-blocks"), ==, 126);
		g_assert_cmpuint (info->unsafe_reasons->len, ==, 0);
		dump_to_raw (source, dump);
		g_assert_true (vmi_test_qemu_img_compare (dump, "raw", path, "vpc"));
		vmi_test_save_seed ("vhd", path);
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
	}
}

/* The Virtual PC file's facts in detail (MANIFEST: CHS 65278/16/255, 65024 BAT entries). */
static void
test_corpus_facts (void)
{
	const char *corpus = vmi_test_corpus_dir ();
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	guint64 current = 0;

	if (corpus == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	path = vmi_test_corpus_fetch ("virtualpc-dynamic.vhd.bz2", dir);
	source = vmi_test_open (&vmi_vhd_plugin, path, NULL);
	g_assert_cmpuint (vmi_test_fact_u32 (source, "cylinders"), ==, 65278);
	g_assert_cmpuint (vmi_test_fact_u32 (source, "heads"), ==, 16);
	g_assert_cmpuint (vmi_test_fact_u32 (source, "sectors"), ==, 255);
	g_assert_cmpuint (vmi_test_fact_u32 (source, "max-table-entries"), ==, 65024);
	g_assert_cmpstr (vmi_test_fact_string (source, "creator-version"), ==, "1.0");
	g_assert_cmpstr (vmi_test_fact_string (source, "disk-type"), ==, "dynamic");
	g_assert_true (g_variant_dict_lookup (vmi_source_get_info (source)->format_specific,
					      "current-size", "t", &current));
	g_assert_cmpuint (current, ==, 136365211648ull);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* --- bad inputs ---------------------------------------------------------------------------- */

/*
 * A small valid dynamic VHD (qemu's layout, made by our writer), with one 2 MiB block in use
 * or, to stay small enough to be a fuzzing seed, none.
 */
static char *
make_dynamic (const char *dir, const char *name, gboolean with_block)
{
	g_autofree char *path = tmp_path (dir, name);
	g_autoptr(GVariant) options = create_options (NULL, FALSE);
	g_autoptr(GError) error = NULL;
	guint8 data[4096];
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	VmiImage *image;

	g_assert_cmpint (fd, >=, 0);
	image = vmi_vhd_plugin.create (fd, 4 * MiB, options, &error);
	g_assert_no_error (error);
	memset (data, 0x5a, sizeof data);
	if (with_block)
		g_assert_true (vmi_vhd_plugin.write (image, 2 * MiB + 8192, data, sizeof data,
						     &error));
	g_assert_true (vmi_vhd_plugin.finish (image, &error));
	g_assert_no_error (error);
	vmi_vhd_plugin.close (image);
	g_assert_cmpint (close (fd), ==, 0);
	return g_steal_pointer (&path);
}

/* Rewrites the footer (both copies) after edit changes it. */
static void
edit_footers (const char *path, void (*edit) (guint8 *footer, gpointer), gpointer data)
{
	guint64 size = vmi_test_file_size (path);
	guint8 footer[512];

	vmi_test_read_bytes (path, size - 512, footer, sizeof footer);
	edit (footer, data);
	fix_checksum (footer, 512, 64);
	vmi_test_write_bytes (path, size - 512, footer, sizeof footer);
	vmi_test_write_bytes (path, 0, footer, sizeof footer);
}

static void
edit_header (const char *path, gsize at, const void *bytes, gsize len)
{
	guint8 header[1024];

	vmi_test_read_bytes (path, 512, header, sizeof header);
	memcpy (header + at, bytes, len);
	fix_checksum (header, 1024, 36);
	vmi_test_write_bytes (path, 512, header, sizeof header);
}

static void
set_data_offset (guint8 *footer, gpointer data)
{
	put_be64 (footer + 16, *(guint64 *) data);
}

static void
set_disk_type (guint8 *footer, gpointer data)
{
	put_be32 (footer + 60, GPOINTER_TO_UINT (data));
}

static void
set_huge_size (guint8 *footer, gpointer data)
{
	memcpy (footer + 28, "win ", 4);
	put_be64 (footer + 48, 2041 * GiB);
}

static void
test_bad_tiny (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *empty = tmp_path (dir, "empty.vhd");
	g_autofree char *one = tmp_path (dir, "one-byte.vhd");
	g_autofree char *cookie = tmp_path (dir, "cookie-only.vhd");

	vmi_test_write_file (empty, "", 0);
	ASSERT_OPEN_ERROR (empty, VMI_ERROR_UNKNOWN_FORMAT, "0-byte file is too small");
	vmi_test_write_file (one, "c", 1);
	ASSERT_OPEN_ERROR (one, VMI_ERROR_UNKNOWN_FORMAT, "1-byte file is too small");
	vmi_test_write_file (cookie, "conectix\0\0\0\2", 12);
	ASSERT_OPEN_ERROR (cookie, VMI_ERROR_CORRUPT_IMAGE, "too short");
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_bad_footer (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = make_dynamic (dir, "footer.vhd", TRUE);
	guint64 size = vmi_test_file_size (path);
	guint8 orig[512], bad[512];
	g_autoptr(VmiSource) source = NULL;

	/* Our base image is sound. */
	source = vmi_test_open (&vmi_vhd_plugin, path, NULL);
	g_assert_cmpuint (vmi_test_fact_u32 (source, "allocated-blocks"), ==, 1);
	g_clear_pointer (&source, vmi_source_free);

	vmi_test_read_bytes (path, size - 512, orig, sizeof orig);
	memcpy (bad, orig, sizeof bad);
	bad[200] ^= 0x10;

	/* A damaged footer at the end: the copy at offset 0 stands in. */
	vmi_test_write_bytes (path, size - 512, bad, sizeof bad);
	source = vmi_test_open (&vmi_vhd_plugin, path, NULL);
	g_assert_cmpstr (vmi_test_fact_string (source, "footer"), ==, "copy at offset 0");
	g_assert_cmpuint (vmi_source_get_virtual_size (source), >=, 4 * MiB);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_save_seed ("vhd", path);

	/* Both damaged. */
	vmi_test_write_bytes (path, 0, bad, sizeof bad);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "checksum");

	/* Only the copy at 0 is there, and it is damaged. */
	memset (bad, 0, sizeof bad);
	vmi_test_write_bytes (path, size - 512, bad, sizeof bad);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "checksum");

	/* No cookie anywhere. */
	vmi_test_write_bytes (path, 0, bad, sizeof bad);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_UNKNOWN_FORMAT, "conectix");

	/* Wrong cookie in a footer that is otherwise intact. */
	memcpy (bad, orig, sizeof bad);
	memcpy (bad, "conectiX", 8);
	fix_checksum (bad, 512, 64);
	vmi_test_write_bytes (path, 0, bad, sizeof bad);
	vmi_test_write_bytes (path, size - 512, bad, sizeof bad);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_UNKNOWN_FORMAT, "conectix");
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_bad_truncated (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = make_dynamic (dir, "truncated.vhd", TRUE);
	guint64 size = vmi_test_file_size (path);

	/* Cut inside the data block: the copy at 0 is found, then the block is past the end. */
	g_assert_cmpint (truncate (path, (off_t) (size - 1 * MiB)), ==, 0);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "lies beyond the end");
	/* Cut inside the BAT. */
	g_assert_cmpint (truncate (path, 1600), ==, 0);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "beyond the end");
	/* Cut inside the dynamic header. */
	g_assert_cmpint (truncate (path, 1000), ==, 0);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "dynamic disk header beyond the end");
	/* Cut inside the footer copy. */
	g_assert_cmpint (truncate (path, 300), ==, 0);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "too short");
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_bad_dynamic_header (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = NULL;
	guint8 header[1024], b[8];
	guint64 offset;

	/* Bad checksum. */
	path = make_dynamic (dir, "header-checksum.vhd", FALSE);
	vmi_test_read_bytes (path, 512, header, sizeof header);
	header[700] ^= 1;
	vmi_test_write_bytes (path, 512, header, sizeof header);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "dynamic disk header at offset 0x200 has checksum");
	g_free (path);

	/* Wrong cookie. */
	path = make_dynamic (dir, "header-cookie.vhd", FALSE);
	edit_header (path, 0, "cxsparsE", 8);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "cxsparse");
	g_free (path);

	/* BAT beyond the end of the file. */
	path = make_dynamic (dir, "bat-eof.vhd", FALSE);
	put_be64 (b, vmi_test_file_size (path) - 4);
	edit_header (path, 16, b, 8);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "block allocation table at offset");
	g_free (path);

	/* Absurd max_table_entries. */
	path = make_dynamic (dir, "bat-absurd.vhd", FALSE);
	put_be32 (b, 0xffffffffu);
	edit_header (path, 28, b, 4);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "max_table_entries 4294967295");
	/* Too few entries for the disk. */
	put_be32 (b, 1);
	edit_header (path, 28, b, 4);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "too few");
	g_free (path);

	/* A BAT that would be legal with 512-byte blocks but exceeds the memory cap (64 MiB). */
	path = make_dynamic (dir, "bat-cap.vhd", FALSE);
	g_assert_cmpint (truncate (path, 80 * MiB), ==, 0);
	put_be32 (b, 512);
	edit_header (path, 32, b, 4);
	put_be32 (b, 17 * MiB);
	edit_header (path, 28, b, 4);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_NOT_SUPPORTED, "holds in memory");
	g_free (path);

	/* Block size 0, not a power of two, below a sector. */
	path = make_dynamic (dir, "block-size.vhd", FALSE);
	put_be32 (b, 0);
	edit_header (path, 32, b, 4);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "block size of 0 bytes");
	put_be32 (b, 3 * MiB);
	edit_header (path, 32, b, 4);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "not a power of two");
	put_be32 (b, 256);
	edit_header (path, 32, b, 4);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "not a power of two");
	g_free (path);

	/* A BAT entry past the end of the file. */
	path = make_dynamic (dir, "bat-entry.vhd", FALSE);
	put_be32 (b, 0x00ffffff);
	vmi_test_write_bytes (path, 1536, b, 4);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "block 0 at offset");
	g_free (path);

	/* Data offset (the header's place) beyond the end of the file, and wrapping around. */
	path = make_dynamic (dir, "data-offset.vhd", FALSE);
	offset = vmi_test_file_size (path) + 512;
	edit_footers (path, set_data_offset, &offset);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "dynamic disk header beyond the end");
	offset = G_MAXUINT64 - 100;
	edit_footers (path, set_data_offset, &offset);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "dynamic disk header beyond the end");
	g_free (path);

	/* Unknown and deprecated disk types. */
	path = make_dynamic (dir, "disk-type.vhd", FALSE);
	edit_footers (path, set_disk_type, GUINT_TO_POINTER (9));
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "disk type 9");
	edit_footers (path, set_disk_type, GUINT_TO_POINTER (5));
	ASSERT_OPEN_ERROR (path, VMI_ERROR_NOT_SUPPORTED, "disk type 5");
	g_free (path);

	/* A size beyond the 2040 GiB VHD limit. */
	path = make_dynamic (dir, "huge.vhd", FALSE);
	edit_footers (path, set_huge_size, NULL);
	ASSERT_OPEN_ERROR (path, VMI_ERROR_CORRUPT_IMAGE, "2040 GiB");
	g_free (path);
	path = NULL;
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * Random damage to the metadata of a small dynamic disk, checksums often repaired so that the
 * damage gets past them: open and read must either work or fail with a named VMI error.
 */
static void
test_bad_mutations (void)
{
	const Synth s = { 3, "win ", 64 * KiB, 0, 0, 0, 4096, 16 };
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = tmp_path (dir, "mutant.vhd");
	g_autoptr(GRand) rand = g_rand_new_with_seed (2026);
	g_autofree char *base = NULL;
	guint8 header[1024], bitmap[512], data[4096];
	gsize base_len = 0;
	guint64 end;
	guint opened = 0, refused = 0;

	memset (bitmap, 0xf0, sizeof bitmap);
	memset (data, 0x77, sizeof data);
	end = synth_create (path, &s, header);
	synth_add_block (path, &s, 3, &end, bitmap, sizeof bitmap, data);
	synth_add_block (path, &s, 15, &end, bitmap, sizeof bitmap, data);
	synth_finish (path, &s, end);
	g_assert_true (g_file_get_contents (path, &base, &base_len, NULL));

	for (guint round = 0; round < 400; round++) {
		g_autofree guint8 *img = g_memdup2 (base, base_len);
		g_autoptr(GError) error = NULL;
		g_autoptr(VmiSource) source = NULL;
		gsize len = base_len;
		int fd;
		guint flips = (guint) g_rand_int_range (rand, 1, 6);

		for (guint f = 0; f < flips; f++) {
			/* footer copy, header and BAT, or the footer at the end */
			gsize at = g_rand_boolean (rand) ? (gsize) g_rand_int_range (rand, 0, 2048)
							 : len - 512 + (gsize) g_rand_int_range (rand, 0, 512);
			img[at] = (guint8) g_rand_int (rand);
		}
		if (g_rand_int_range (rand, 0, 4) != 0) {
			fix_checksum (img, 512, 64);
			fix_checksum (img + 512, 1024, 36);
			fix_checksum (img + len - 512, 512, 64);
		}
		if (g_rand_int_range (rand, 0, 8) == 0)
			len = (gsize) g_rand_int_range (rand, 0, (gint32) len);
		/* Not g_file_set_contents, which syncs the file to disk each time. */
		fd = open (path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		g_assert_cmpint (fd, >=, 0);
		g_assert_cmpint (write (fd, img, len), ==, (ssize_t) len);
		g_assert_cmpint (close (fd), ==, 0);

		source = vmi_test_open (&vmi_vhd_plugin, path, &error);
		if (source == NULL) {
			g_assert_true (error->domain == VMI_ERROR);
			g_assert_cmpint (error->code, !=, VMI_ERROR_FAILED);
			refused++;
			continue;
		}
		opened++;
		{
			guint64 vsize = vmi_source_get_virtual_size (source);
			VmiImage *image = vmi_source_get_image (source);
			guint8 buf[8192];

			for (guint64 off = 0; off < MIN (vsize, 1 * MiB); off += sizeof buf) {
				gsize n = (gsize) MIN (sizeof buf, vsize - off);
				VmiExtent extent;

				if (!vmi_vhd_plugin.block_status (image, off, vsize - off, &extent,
								  &error) ||
				    !vmi_vhd_plugin.read (image, off, buf, n, &error)) {
					g_assert_true (error->domain == VMI_ERROR);
					break;
				}
				g_assert_cmpuint (extent.length, >, 0);
				g_assert_cmpuint (extent.length, <=, vsize - off);
			}
		}
	}
	/* The mutations reach both outcomes, so they are not all stopped at the door. */
	g_assert_cmpuint (opened, >, 20);
	g_assert_cmpuint (refused, >, 20);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/vhd/probe", test_probe);
	g_test_add_func ("/vhd/registry", test_registry);
	g_test_add_func ("/vhd/qemu-images", test_qemu_images);
	g_test_add_func ("/vhd/write", test_write);
	g_test_add_func ("/vhd/write-sizes", test_write_sizes);
	g_test_add_func ("/vhd/engine-convert", test_engine_convert);
	g_test_add_func ("/vhd/write-out-of-order", test_write_out_of_order);
	g_test_add_func ("/vhd/write-no-space", test_write_no_space);
	g_test_add_func ("/vhd/write-bad-options", test_write_bad_options);
	g_test_add_func ("/vhd/sector-bitmap", test_sector_bitmap);
	g_test_add_func ("/vhd/block-sizes", test_block_sizes);
	g_test_add_func ("/vhd/fixed-chs", test_fixed_chs);
	g_test_add_func ("/vhd/differencing", test_differencing);
	g_test_add_func ("/vhd/corpus", test_corpus);
	g_test_add_func ("/vhd/corpus-facts", test_corpus_facts);
	g_test_add_func ("/vhd/bad/tiny", test_bad_tiny);
	g_test_add_func ("/vhd/bad/footer", test_bad_footer);
	g_test_add_func ("/vhd/bad/truncated", test_bad_truncated);
	g_test_add_func ("/vhd/bad/dynamic-header", test_bad_dynamic_header);
	g_test_add_func ("/vhd/bad/mutations", test_bad_mutations);
	return g_test_run ();
}
