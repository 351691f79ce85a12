/*
 * Images read in place at an offset of a larger file (plugin ABI 4, VmiOpenArgs.offset), as the
 * daemon reads an OVA's stored disk. Each image is put between garbage at an offset that is not
 * a multiple of 4096, opened there by its plugin, and must give what the same image gives on its
 * own: the same info, every byte the same, and block status that covers the disk and never calls
 * data a hole. A range that runs past the end of the file is refused, never read.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-plugin.h"
#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_raw_plugin, vmi_qcow2_plugin, vmi_vmdk_plugin, vmi_vhd_plugin,
	vmi_vhdx_plugin, vmi_vdi_plugin, vmi_iso_plugin, vmi_aki_plugin, vmi_ari_plugin,
	vmi_ova_plugin, vmi_ovf_plugin;

#define PATTERN_SIZE (8u * 1024u * 1024u)
/* 0xA5 garbage, a hole, 0xA5 again just before the image: a read that forgets the offset sees
 * garbage, a SEEK_DATA that forgets it sees a hole where the image has data. */
#define HEAD_GARBAGE (3u * 512u)
#define TAIL_OF_PREFIX 512u
#define PREFIX (HEAD_GARBAGE + 1024u * 1024u)
#define SUFFIX (4096u + 123u)
#define GARBAGE 0xA5

typedef struct {
	const char *name;
	const VmiFormatPlugin *plugin;
	const char *qemu_format; /* NULL: not made by qemu-img */
	const char *qemu_options;
	/* block status comes from the format's tables alone, so it must agree exactly */
	gboolean status_from_metadata;
	const char *corpus; /* a file of the shared corpus instead */
} Variant;

static const Variant variants[] = {
	{ "raw", &vmi_raw_plugin, "raw", NULL, FALSE },
	{ "qcow2", &vmi_qcow2_plugin, "qcow2", NULL, TRUE },
	{ "qcow2-4k", &vmi_qcow2_plugin, "qcow2", "-o cluster_size=4096", TRUE },
	{ "qcow2-compressed", &vmi_qcow2_plugin, "qcow2", "-c", TRUE },
	{ "vmdk-sparse", &vmi_vmdk_plugin, "vmdk", "-o subformat=monolithicSparse", TRUE },
	{ "vmdk-stream", &vmi_vmdk_plugin, "vmdk", "-o subformat=streamOptimized", TRUE },
	{ "vhd-dynamic", &vmi_vhd_plugin, "vpc", "-o subformat=dynamic", TRUE },
	{ "vhd-fixed", &vmi_vhd_plugin, "vpc", "-o subformat=fixed", FALSE },
	{ "vhdx-dynamic", &vmi_vhdx_plugin, "vhdx", "-o subformat=dynamic", FALSE },
	{ "vhdx-fixed", &vmi_vhdx_plugin, "vhdx", "-o subformat=fixed", FALSE },
	{ "vdi-dynamic", &vmi_vdi_plugin, "vdi", NULL, FALSE },
	{ "vdi-static", &vmi_vdi_plugin, "vdi", "-o static=on", FALSE },
	{ "iso", &vmi_iso_plugin, NULL, NULL, FALSE },
	{ "kernel", &vmi_aki_plugin, NULL, NULL, FALSE },
	{ "ramdisk", &vmi_ari_plugin, NULL, NULL, FALSE },
	/* containers: inspected only; their members' offsets are within the range */
	{ "ova-manifest", &vmi_ova_plugin, NULL, NULL, FALSE, "govmomi-ttylinux-pc_i486-16.1.ova.bz2" },
	{ "ova-glance", &vmi_ova_plugin, NULL, NULL, FALSE, "glance-testserver.ova" },
	{ "ovf", &vmi_ovf_plugin, NULL, NULL, FALSE, "v2v-test-i-ova.ovf" },
};

/* One open image and what it says about itself. */
typedef struct {
	VmiImage *image;
	const VmiFormatPlugin *plugin;
	guint64 virtual_size;
	const char *subformat;
	guint32 cluster_size;
	GVariant *facts;
	char *rest; /* unsafe reasons, references and members, as text */
} Opened;

static void
opened_clear (Opened *o)
{
	if (o->image != NULL)
		o->plugin->close (o->image);
	g_clear_pointer (&o->facts, g_variant_unref);
	g_clear_pointer (&o->rest, g_free);
}

static char *
describe_rest (const VmiImageInfo *info)
{
	GString *text = g_string_new (NULL);

	for (guint i = 0; i < info->unsafe_reasons->len; i++)
		g_string_append_printf (text, "unsafe: %s\n",
					(const char *) g_ptr_array_index (info->unsafe_reasons, i));
	for (guint i = 0; i < info->references->len; i++)
		g_string_append_printf (text, "reference: %s\n",
					(const char *) g_ptr_array_index (info->references, i));
	for (guint i = 0; i < info->members->len; i++) {
		const VmiMember *m = g_ptr_array_index (info->members, i);
		g_autoptr(GVariant) facts = g_variant_ref_sink (g_variant_dict_end (m->facts));
		g_autofree char *facts_text = g_variant_print (facts, FALSE);

		g_string_append_printf (text,
					"member: %s %s location %d offset %" G_GUINT64_FORMAT
					" size %" G_GUINT64_FORMAT " %s\n",
					m->name, m->role, (int) m->location, m->offset, m->size,
					facts_text);
	}
	return g_string_free (text, FALSE);
}

static VmiImage *
open_at (const VmiFormatPlugin *plugin, int fd, guint64 offset, guint64 size, GError **error)
{
	VmiOpenArgs args = { .fd = fd, .offset = offset, .file_size = size };

	return plugin->open (&args, error);
}

static void
open_and_describe (const VmiFormatPlugin *plugin, int fd, guint64 offset, guint64 size, Opened *o)
{
	g_autoptr(GError) error = NULL;
	VmiImageInfo info = { 0 };

	o->plugin = plugin;
	o->image = open_at (plugin, fd, offset, size, &error);
	g_assert_no_error (error);
	g_assert_nonnull (o->image);
	info.format_specific = g_variant_dict_new (NULL);
	info.unsafe_reasons = g_ptr_array_new_with_free_func (g_free);
	info.references = g_ptr_array_new_with_free_func (g_free);
	info.members = g_ptr_array_new_with_free_func ((GDestroyNotify) vmi_member_free);
	g_assert_true (plugin->get_info (o->image, &info, &error));
	g_assert_no_error (error);
	o->virtual_size = info.virtual_size;
	o->subformat = info.subformat;
	o->cluster_size = info.cluster_size;
	o->facts = g_variant_ref_sink (g_variant_dict_end (info.format_specific));
	o->rest = describe_rest (&info);
	g_variant_dict_unref (info.format_specific);
	g_ptr_array_unref (info.unsafe_reasons);
	g_ptr_array_unref (info.references);
	g_ptr_array_unref (info.members);
}

/* Marks in kinds (one byte per disk byte) 1 for DATA, 0 for ZERO or HOLE, and checks that the
 * runs tile the disk. */
static void
map_status (const Opened *o, guint8 *kinds)
{
	guint64 pos = 0;
	guint n = 0;

	while (pos < o->virtual_size) {
		g_autoptr(GError) error = NULL;
		VmiExtent extent = { 0 };
		guint64 max = o->virtual_size - pos;

		/* a bound that is not a whole number of anything, to see runs cut to it */
		if (n++ % 3 == 1)
			max = MIN (max, 777777);
		g_assert_true (o->plugin->block_status (o->image, pos, max, &extent, &error));
		g_assert_no_error (error);
		g_assert_cmpuint (extent.length, >, 0);
		g_assert_cmpuint (extent.length, <=, max);
		memset (kinds + pos, extent.kind == VMI_EXTENT_DATA, extent.length);
		pos += extent.length;
	}
	g_assert_cmpuint (pos, ==, o->virtual_size);
}

static void
read_all (const Opened *o, guint8 *buf)
{
	const gsize chunk = 1024 * 1024 + 4096 + 7; /* reads that straddle clusters and blocks */

	for (guint64 pos = 0; pos < o->virtual_size; pos += chunk) {
		g_autoptr(GError) error = NULL;
		gsize len = (gsize) MIN ((guint64) chunk, o->virtual_size - pos);

		g_assert_true (o->plugin->read (o->image, pos, buf + pos, len, &error));
		g_assert_no_error (error);
	}
}

static void
write_garbage (int fd, guint64 offset, gsize len)
{
	g_autofree guint8 *buf = g_malloc (len);

	memset (buf, GARBAGE, len);
	g_assert_cmpint (pwrite (fd, buf, len, (off_t) offset), ==, (gssize) len);
}

/*
 * container = [garbage, hole, garbage: PREFIX bytes] image [SUFFIX bytes of garbage]; the image
 * is copied sparsely (4 KiB of zeros of the image are not written), so the container has holes
 * inside the image that do not fall where the image's own holes do.
 */
static char *
make_container (const char *dir, const char *image_path, guint64 *image_size)
{
	char *path = g_build_filename (dir, "container", NULL);
	g_autofree guint8 *buf = g_malloc (4096);
	int in = open (image_path, O_RDONLY | O_CLOEXEC);
	int out = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	guint64 size = vmi_test_file_size (image_path);
	static const guint8 zeros[4096];

	g_assert_cmpint (in, >=, 0);
	g_assert_cmpint (out, >=, 0);
	g_assert_cmpint (ftruncate (out, (off_t) (PREFIX + size + SUFFIX)), ==, 0);
	write_garbage (out, 0, HEAD_GARBAGE);
	write_garbage (out, PREFIX - TAIL_OF_PREFIX, TAIL_OF_PREFIX);
	for (guint64 pos = 0; pos < size; pos += 4096) {
		gsize len = (gsize) MIN ((guint64) 4096, size - pos);

		g_assert_cmpint (pread (in, buf, len, (off_t) pos), ==, (gssize) len);
		if (memcmp (buf, zeros, len) != 0)
			g_assert_cmpint (pwrite (out, buf, len, (off_t) (PREFIX + pos)), ==, (gssize) len);
	}
	write_garbage (out, PREFIX + size, SUFFIX);
	close (in);
	close (out);
	*image_size = size;
	return path;
}

/* A small ISO with a file of the pattern, or NULL (skipped) without xorriso. */
static char *
make_iso (const char *dir)
{
	if (!vmi_test_require_program ("xorriso", "xorriso", "cannot make an ISO"))
		return NULL;
	vmi_test_sh_ok ("mkdir -p %s/tree/sub && head -c 700000 %s/pattern > %s/tree/sub/data.bin && "
			"echo hello > %s/tree/readme.txt && "
			"xorriso -as mkisofs -quiet -J -R -V OFFSET -o %s/image %s/tree",
			dir, dir, dir, dir, dir, dir);
	return g_build_filename (dir, "image", NULL);
}

/* A bzImage header like test-aki's (the kernel's setup sectors), then data of the pattern. */
static char *
make_kernel (const char *dir)
{
	const gsize setup_end = 5 * 512;
	g_autofree guint8 *p = g_malloc0 (setup_end + 200 * 1024);
	g_autofree char *pattern = g_build_filename (dir, "pattern", NULL);
	char *path = g_build_filename (dir, "image", NULL);

	p[0] = 'M';
	p[1] = 'Z';
	p[0x1f1] = 4; /* setup sectors */
	p[0x1fe] = 0x55;
	p[0x1ff] = 0xaa;
	memcpy (p + 0x202, "HdrS", 4);
	p[0x206] = 0x0f; /* boot protocol 2.15 */
	p[0x207] = 0x02;
	p[0x20e] = 0x00; /* kernel version string at 0x200 + 0x400 */
	p[0x20f] = 0x04;
	memcpy (p + 0x600, "6.99.0-offset (test) #1", 24);
	p[0x211] = 0x01;
	vmi_test_read_bytes (pattern, 0, p + setup_end, 200 * 1024);
	vmi_test_write_file (path, p, setup_end + 200 * 1024);
	return path;
}

/* A gzip-compressed initramfs of a few files, or NULL (skipped) without cpio. */
static char *
make_ramdisk (const char *dir)
{
	if (!vmi_test_require_program ("cpio", "cpio", "cannot make an initramfs"))
		return NULL;
	vmi_test_sh_ok ("mkdir -p %s/root/bin && head -c 300000 %s/pattern > %s/root/bin/data && "
			"echo '#!/bin/sh' > %s/root/init && "
			"cd %s/root && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n > %s/image",
			dir, dir, dir, dir, dir, dir);
	return g_build_filename (dir, "image", NULL);
}

static char *
make_image (const Variant *v, const char *dir)
{
	g_autofree char *pattern = g_build_filename (dir, "pattern", NULL);

	if (v->corpus != NULL)
		return vmi_test_corpus_dir () != NULL ? vmi_test_corpus_fetch (v->corpus, dir) : NULL;
	vmi_test_make_pattern_image (pattern, PATTERN_SIZE, 4242);
	if (v->plugin == &vmi_iso_plugin)
		return make_iso (dir);
	if (v->plugin == &vmi_aki_plugin)
		return make_kernel (dir);
	if (v->plugin == &vmi_ari_plugin)
		return make_ramdisk (dir);
	if (!vmi_test_require_qemu_img ())
		return NULL;
	vmi_test_qemu_img ("convert -q -f raw -O %s %s %s %s/image", v->qemu_format,
			   v->qemu_options != NULL ? v->qemu_options : "", pattern, dir);
	return g_build_filename (dir, "image", NULL);
}

/*
 * A range that runs into the end of the file: refused, or an error on reading (virtual_size 0:
 * the plugin does not read), never data from beyond the image.
 */
static void
check_past_end (const Variant *v, int fd, guint64 size, guint64 virtual_size)
{
	g_autofree guint8 *buf = g_malloc (1024 * 1024);

	for (guint i = 0; i < 2; i++) {
		guint64 offset = i == 0 ? PREFIX + SUFFIX + 512 : PREFIX + 1;
		g_autoptr(GError) error = NULL;
		VmiImage *image = open_at (v->plugin, fd, offset, size + (i == 0 ? 0 : SUFFIX), &error);

		if (image != NULL) {
			gboolean ok = virtual_size > 0;

			for (guint64 pos = 0; ok && pos < virtual_size; pos += 1024 * 1024)
				ok = v->plugin->read (image, pos, buf, MIN (1024 * 1024, virtual_size - pos),
						      &error);
			v->plugin->close (image);
			g_assert_false (ok);
		}
		g_assert_nonnull (error);
		g_test_message ("%s past the end: %s", v->name, error->message);
	}
}

/* Reads the whole disk, or returns FALSE with error set at the first read that fails. */
static gboolean
try_read_all (const VmiFormatPlugin *plugin, VmiImage *image, guint64 size, guint8 *buf,
	      GError **error)
{
	for (guint64 pos = 0; pos < size; pos += 1024 * 1024) {
		if (!plugin->read (image, pos, buf + pos, (gsize) MIN (1024 * 1024, size - pos), error))
			return FALSE;
	}
	return TRUE;
}

/*
 * The image cut short by CUT bytes, alone and inside the container (where garbage follows it):
 * what the plugin makes of the missing end (an error, or zeros as qcow2 reads a last cluster
 * cut short) must be the same, so nothing past the range was read.
 */
#define CUT 1000u

static void
compare_cut (const Variant *v, const char *dir, const char *image_path, guint64 size)
{
	g_autofree char *cut_path = g_build_filename (dir, "cut", NULL);
	g_autofree char *container = NULL;
	g_autoptr(GError) error0 = NULL, errorn = NULL;
	g_autofree guint8 *bytes0 = NULL, *bytesn = NULL;
	VmiImage *image0, *imagen;
	Opened o = { 0 };
	guint64 cut_size = 0;
	gboolean ok0, okn;
	int fd0, fdn;

	vmi_test_sh_ok ("head -c %" G_GUINT64_FORMAT " %s > %s", size - CUT, image_path, cut_path);
	container = make_container (dir, cut_path, &cut_size);
	g_assert_cmpuint (cut_size, ==, size - CUT);
	fd0 = open (cut_path, O_RDONLY | O_CLOEXEC);
	fdn = open (container, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd0, >=, 0);
	g_assert_cmpint (fdn, >=, 0);
	image0 = open_at (v->plugin, fd0, 0, cut_size, &error0);
	imagen = open_at (v->plugin, fdn, PREFIX, cut_size, &errorn);
	if (image0 == NULL) {
		g_assert_null (imagen);
		g_assert_true (error0->domain == errorn->domain && error0->code == errorn->code);
		g_test_message ("%s cut short: %s", v->name, error0->message);
		close (fd0);
		close (fdn);
		return;
	}
	g_assert_nonnull (imagen);
	if ((v->plugin->flags & VMI_FORMAT_CAN_READ) == 0) {
		g_test_message ("%s cut short: opens", v->name);
		v->plugin->close (image0);
		v->plugin->close (imagen);
		close (fd0);
		close (fdn);
		return;
	}
	o.plugin = v->plugin;
	o.image = image0;
	/* the virtual size, from get_info */
	{
		VmiImageInfo info = { 0 };
		g_autoptr(GError) error = NULL;

		info.format_specific = g_variant_dict_new (NULL);
		info.unsafe_reasons = g_ptr_array_new_with_free_func (g_free);
		info.references = g_ptr_array_new_with_free_func (g_free);
		info.members = g_ptr_array_new_with_free_func ((GDestroyNotify) vmi_member_free);
		g_assert_true (v->plugin->get_info (image0, &info, &error));
		o.virtual_size = info.virtual_size;
		g_variant_dict_unref (info.format_specific);
		g_ptr_array_unref (info.unsafe_reasons);
		g_ptr_array_unref (info.references);
		g_ptr_array_unref (info.members);
	}
	bytes0 = g_malloc0 (o.virtual_size);
	bytesn = g_malloc0 (o.virtual_size);
	ok0 = try_read_all (v->plugin, image0, o.virtual_size, bytes0, &error0);
	okn = try_read_all (v->plugin, imagen, o.virtual_size, bytesn, &errorn);
	g_assert_cmpint (ok0, ==, okn);
	if (ok0)
		g_assert_true (memcmp (bytes0, bytesn, o.virtual_size) == 0);
	else
		g_assert_true (error0->domain == errorn->domain && error0->code == errorn->code);
	g_test_message ("%s cut short: %s", v->name, ok0 ? "opens and reads" : error0->message);
	v->plugin->close (image0);
	v->plugin->close (imagen);
	close (fd0);
	close (fdn);
}

static void
test_variant (VmiTestDirFixture *fixture, gconstpointer data)
{
	const Variant *v = data;
	g_autofree char *image_path = make_image (v, fixture->dir);
	g_autofree char *container = NULL;
	g_autofree guint8 *bytes0 = NULL, *bytesn = NULL, *kinds0 = NULL, *kindsn = NULL;
	Opened whole = { 0 }, inside = { 0 };
	guint64 size = 0, data0 = 0, datan = 0;
	int fd0, fdn;

	if (image_path == NULL)
		return;
	container = make_container (fixture->dir, image_path, &size);
	fd0 = open (image_path, O_RDONLY | O_CLOEXEC);
	fdn = open (container, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd0, >=, 0);
	g_assert_cmpint (fdn, >=, 0);

	open_and_describe (v->plugin, fd0, 0, size, &whole);
	open_and_describe (v->plugin, fdn, PREFIX, size, &inside);
	g_assert_cmpuint (inside.virtual_size, ==, whole.virtual_size);
	g_assert_cmpstr (inside.subformat, ==, whole.subformat);
	g_assert_cmpuint (inside.cluster_size, ==, whole.cluster_size);
	if (!g_variant_equal (inside.facts, whole.facts)) {
		g_autofree char *a = g_variant_print (whole.facts, FALSE);
		g_autofree char *b = g_variant_print (inside.facts, FALSE);

		g_error ("%s: the facts differ at offset %u:\n  alone:  %s\n  inside: %s", v->name,
			 PREFIX, a, b);
	}
	g_assert_cmpstr (inside.rest, ==, whole.rest);
	g_test_message ("%s: %s", v->name, whole.rest);
	if ((v->plugin->flags & VMI_FORMAT_CAN_READ) == 0) {
		check_past_end (v, fdn, size, 0);
		opened_clear (&whole);
		opened_clear (&inside);
		close (fd0);
		close (fdn);
		compare_cut (v, fixture->dir, image_path, size);
		return;
	}

	bytes0 = g_malloc (whole.virtual_size);
	bytesn = g_malloc (whole.virtual_size);
	read_all (&whole, bytes0);
	read_all (&inside, bytesn);
	g_assert_true (memcmp (bytes0, bytesn, whole.virtual_size) == 0);

	kinds0 = g_malloc (whole.virtual_size);
	kindsn = g_malloc (whole.virtual_size);
	map_status (&whole, kinds0);
	map_status (&inside, kindsn);
	for (guint64 i = 0; i < whole.virtual_size; i++) {
		data0 += kinds0[i];
		datan += kindsn[i];
		/* what is not DATA must read as zeros */
		if (!kindsn[i] && bytes0[i] != 0)
			g_error ("%s: byte 0x%" G_GINT64_MODIFIER "x is 0x%02x but is reported as not "
				 "data at offset %u",
				 v->name, i, bytes0[i], PREFIX);
		if (v->status_from_metadata && kinds0[i] != kindsn[i])
			g_error ("%s: block status of byte 0x%" G_GINT64_MODIFIER "x differs at offset %u",
				 v->name, i, PREFIX);
	}
	/* The container's holes fall elsewhere (copied sparsely at an odd offset): a hole may be
	 * smaller there, but the holes of the image that hold no data are found inside too. */
	if (data0 < whole.virtual_size)
		g_assert_cmpuint (datan, <, whole.virtual_size);
	g_test_message ("%s: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
			" bytes are data alone, %" G_GUINT64_FORMAT " inside",
			v->name, data0, whole.virtual_size, datan);

	check_past_end (v, fdn, size, whole.virtual_size);

	opened_clear (&whole);
	opened_clear (&inside);
	close (fd0);
	close (fdn);
	compare_cut (v, fixture->dir, image_path, size);
}

/* A header field that points past the range is corrupt even when the file goes on: the bytes
 * after the range are not the image's. */
static void
test_qcow2_range_is_the_file (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *image_path = NULL;
	g_autofree char *container = NULL;
	g_autoptr(GError) error = NULL;
	guint64 size = 0;
	VmiImage *image;
	int fd;

	if (!vmi_test_require_qemu_img ())
		return;
	image_path = vmi_test_qemu_img_create (fixture->dir, "image", "qcow2", NULL, "64M");
	container = make_container (fixture->dir, image_path, &size);
	fd = open (container, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	/* the L1 table of an empty qcow2 is its last cluster: cut it off */
	image = open_at (&vmi_qcow2_plugin, fd, PREFIX, size - 65536, &error);
	g_assert_null (image);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	close (fd);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	for (gsize i = 0; i < G_N_ELEMENTS (variants); i++) {
		g_autofree char *path = g_strdup_printf ("/offset/%s", variants[i].name);

		vmi_test_add_with_dir (path, &variants[i], test_variant);
	}
	vmi_test_add_with_dir ("/offset/qcow2-range-is-the-file", NULL, test_qcow2_range_is_the_file);
	return g_test_run ();
}
