/* Tests of the raw plugin: detection, reading, holes, writing and the inputs it must refuse. */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_raw_plugin;

#define MiB (1024u * 1024u)

/* --- probe --------------------------------------------------------------------------------- */

static guint
probe_bytes (const void *head, gsize len)
{
	return vmi_raw_plugin.probe (head, len, len);
}

/* A 4 KiB head of zeros with magic written at offset. */
static guint
probe_magic (gsize offset, const char *magic, gsize magic_len)
{
	guint8 head[VMI_PROBE_HEAD_SIZE] = { 0 };

	g_assert_cmpuint (offset + magic_len, <=, sizeof head);
	memcpy (head + offset, magic, magic_len);
	return probe_bytes (head, sizeof head);
}

#define PROBE_MAGIC(offset, str) probe_magic ((offset), (str), sizeof (str) - 1)

static void
test_probe_fallback (void)
{
	guint8 head[VMI_PROBE_HEAD_SIZE] = { 0 };
	g_autoptr(GRand) rand = g_rand_new_with_seed (7);

	/* zeros, random bytes, an MBR signature, nothing at all: raw, but only as a fallback */
	g_assert_cmpuint (probe_bytes (head, sizeof head), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (probe_bytes (head, 0), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (vmi_raw_plugin.probe (head, 0, 0), ==, VMI_PROBE_FALLBACK);
	for (gsize i = 0; i < sizeof head; i++)
		head[i] = (guint8) g_rand_int (rand);
	g_assert_cmpuint (probe_bytes (head, sizeof head), ==, VMI_PROBE_FALLBACK);
	head[510] = 0x55;
	head[511] = 0xaa;
	g_assert_cmpuint (probe_bytes (head, 512), ==, VMI_PROBE_FALLBACK);
}

static void
test_probe_foreign_magic (void)
{
	/* Every format of qemu's block drivers and OpenStack's format_inspector with a head magic */
	g_assert_cmpuint (PROBE_MAGIC (0, "QFI\xfb\0\0\0\3"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "QFI\xfb\0\0\0\1"), ==, VMI_PROBE_NO); /* qcow v1 */
	g_assert_cmpuint (PROBE_MAGIC (0, "QED\0"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "KDMV"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "COWD"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "conectix"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "vhdxfile"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (64, "\x7f\x10\xda\xbe"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "LUKS\xba\xbe\0\1"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "LUKS\xba\xbe\0\2"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "Bochs Virtual HD Image"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "WithoutFreeSpace"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "WithouFreSpacExt"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (0, "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount "
				      "-r -t iso9660 /dev/cloop $1\n"),
			  ==, VMI_PROBE_NO);
	/* a tar archive (an OVA) */
	g_assert_cmpuint (PROBE_MAGIC (257, "ustar\0" "00"), ==, VMI_PROBE_NO);
	g_assert_cmpuint (PROBE_MAGIC (257, "ustar  \0"), ==, VMI_PROBE_NO);
}

static void
test_probe_near_misses (void)
{
	/* Magic at the wrong place, cut short, or only similar is still raw. */
	g_assert_cmpuint (PROBE_MAGIC (1, "QFI\xfb"), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (PROBE_MAGIC (63, "\x7f\x10\xda\xbe"), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (PROBE_MAGIC (256, "ustar"), ==, VMI_PROBE_FALLBACK);
	/* compressed files stay raw unless the caller classifies (a ramdisk is one, see ari) */
	g_assert_cmpuint (PROBE_MAGIC (0, "\x1f\x8b\x08\0"), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (PROBE_MAGIC (0, "\xfd" "7zXZ\0\0\4"), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (PROBE_MAGIC (0, "\x28\xb5\x2f\xfd"), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (PROBE_MAGIC (0, "BZh91AY&SY"), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (PROBE_MAGIC (0, "Bochs Virtual HD Imagery"), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (probe_bytes ("QFI", 3), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (probe_bytes ("conecti", 7), ==, VMI_PROBE_FALLBACK);
	g_assert_cmpuint (probe_bytes ("\0\0\0\0", 4), ==, VMI_PROBE_FALLBACK); /* VDI offset unseen */
}

static void
test_probe_vmdk_descriptor (void)
{
	static const char *const descriptors[] = {
		"# Disk DescriptorFile\nversion=1\nCID=fffffffe\n",
		"# Disk DescriptorFile\r\nversion=3\r\n",
		"version=2\n",
		"# a comment\n   \n\n# Disk DescriptorFile\nversion=1",
	};
	static const char *const texts[] = {
		"# Disk DescriptorFile\nversion=4\n",
		"# Disk DescriptorFile\nCID=fffffffe\nversion=1\n",
		"version=10\n",
		"Hello, world\n",
		"# only comments\n# and nothing else\n",
		" ",
		"   \r",
		"#",
	};

	/* copied without their NUL: the head the daemon passes is not a string (found by fuzz-raw) */
	for (gsize i = 0; i < G_N_ELEMENTS (descriptors); i++) {
		g_autofree char *head = g_memdup2 (descriptors[i], strlen (descriptors[i]));

		g_assert_cmpuint (probe_bytes (head, strlen (descriptors[i])), ==, VMI_PROBE_NO);
	}
	for (gsize i = 0; i < G_N_ELEMENTS (texts); i++) {
		g_autofree char *head = g_memdup2 (texts[i], strlen (texts[i]));

		g_assert_cmpuint (probe_bytes (head, strlen (texts[i])), ==, VMI_PROBE_FALLBACK);
	}
}

static guint
probe_file (const char *path)
{
	g_autofree char *contents = NULL;
	gsize len = 0;
	GStatBuf st;

	g_assert_cmpint (g_stat (path, &st), ==, 0);
	g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
	return vmi_raw_plugin.probe ((const guint8 *) contents, MIN (len, VMI_PROBE_HEAD_SIZE),
				     (guint64) st.st_size);
}

/* Images qemu-img makes, which qemu-img itself must not call raw, and neither may we. */
static void
test_probe_qemu_images (void)
{
	static const char *const formats[][2] = {
		{ "qcow2", "" },
		{ "qcow", "" },
		{ "qed", "" },
		{ "vdi", "" },
		{ "vhdx", "" },
		{ "vpc", "-o subformat=dynamic" },
		{ "vmdk", "" },
		{ "vmdk", "-o subformat=streamOptimized" },
		{ "parallels", "" },
		{ "luks", "--object secret,id=s0,data=vmi -o key-secret=s0,iter-time=10" },
	};
	char *dir;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	for (gsize i = 0; i < G_N_ELEMENTS (formats); i++) {
		g_autofree char *path = g_strdup_printf ("%s/img%" G_GSIZE_FORMAT, dir, i);
		g_autoptr(JsonObject) info = NULL;

		g_assert_cmpint (vmi_test_sh (NULL, "qemu-img create -q -f %s %s '%s' 1M", formats[i][0],
					      formats[i][1], path),
				 ==, 0);
		/* luks needs its secret to be opened, so ask qemu only about the others */
		if (strcmp (formats[i][0], "luks") != 0) {
			info = vmi_test_qemu_img_info (path, NULL);
			g_assert_cmpstr (json_object_get_string_member (info, "format"), ==,
					 formats[i][0]);
		}
		g_test_message ("%s %s", formats[i][0], formats[i][1]);
		g_assert_cmpuint (probe_file (path), ==, VMI_PROBE_NO);
	}
	vmi_test_tmpdir_free (dir);
}

/*
 * A fixed VHD is a raw disk followed by a 512-byte footer. qemu-img's probe sees only the head
 * and calls it raw; raw's head probe cannot tell either (the vhd plugin's probe_tail claims it
 * with a higher score), and open does not refuse it: forced raw, it is the disk plus the footer.
 */
static void
test_probe_fixed_vhd_is_raw (void)
{
	char *dir;
	g_autofree char *path = NULL;
	g_autoptr(JsonObject) info = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	path = g_build_filename (dir, "fixed.vhd", NULL);
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img create -q -f vpc -o subformat=fixed '%s' 1M", path),
			 ==, 0);
	info = vmi_test_qemu_img_info (path, NULL);
	g_assert_cmpstr (json_object_get_string_member (info, "format"), ==, "raw");
	g_assert_cmpuint (probe_file (path), ==, VMI_PROBE_FALLBACK);
	vmi_test_tmpdir_free (dir);
}

/* --- the real-world corpus ----------------------------------------------------------------- */

static VmiRegistry *
raw_registry (void)
{
	g_autoptr(GError) error = NULL;
	VmiRegistry *registry = vmi_registry_new ();

	g_assert_true (vmi_registry_add (registry, &vmi_raw_plugin, &error));
	g_assert_no_error (error);
	return registry;
}

/* Opens path with detection among the plugins of registry. */
static VmiSource *
detect_open (VmiRegistry *registry, const char *path, GError **error)
{
	VmiSource *source;
	int fd = open (path, O_RDONLY | O_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	source = vmi_source_open (registry, fd, -1, NULL, NULL, error);
	close (fd);
	return source;
}

static void
test_corpus_grub_mbr (void)
{
	const char *corpus = vmi_test_corpus_dir ();
	g_autoptr(VmiRegistry) registry = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(JsonObject) info = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	g_autofree char *expected = NULL;
	guint8 buf[512];
	gsize len = 0;
	char *dir;

	if (corpus == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	path = vmi_test_corpus_fetch ("grub_mbr.raw.bz2", dir);
	registry = raw_registry ();
	source = detect_open (registry, path, &error);
	g_assert_no_error (error);
	g_assert_true (vmi_source_get_plugin (source) == &vmi_raw_plugin);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 512);
	g_assert_true (vmi_source_is_safe (source));
	g_assert_true (vmi_raw_plugin.read (vmi_source_get_image (source), 0, buf, sizeof buf, &error));
	g_assert_no_error (error);
	g_assert_true (g_file_get_contents (path, &expected, &len, NULL));
	g_assert_cmpmem (buf, sizeof buf, expected, len);
	g_assert_cmpuint (buf[510], ==, 0x55);
	g_assert_cmpuint (buf[511], ==, 0xaa);
	if (vmi_test_require_qemu_img ()) {
		info = vmi_test_qemu_img_info (path, NULL);
		g_assert_cmpstr (json_object_get_string_member (info, "format"), ==, "raw");
		g_assert_cmpint (json_object_get_int_member (info, "virtual-size"), ==, 512);
	}
	vmi_test_tmpdir_free (dir);
}

/* An ISO 9660 image is a raw disk for qemu-img, and for us: its magic is no reason to refuse. */
static void
test_corpus_iso (void)
{
	const char *corpus = vmi_test_corpus_dir ();
	g_autoptr(VmiRegistry) registry = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	char *dir;

	if (corpus == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	path = vmi_test_corpus_fetch ("govmomi-ttylinux-pc_i486-16.1.iso.bz2", dir);
	g_assert_cmpuint (probe_file (path), ==, VMI_PROBE_FALLBACK);
	registry = raw_registry ();
	source = detect_open (registry, path, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 1048576);
	if (vmi_test_require_qemu_img ()) {
		g_autoptr(JsonObject) info = vmi_test_qemu_img_info (path, NULL);

		g_assert_cmpstr (json_object_get_string_member (info, "format"), ==, "raw");
		g_assert_cmpint (json_object_get_int_member (info, "virtual-size"), ==, 1048576);
	}
	vmi_test_tmpdir_free (dir);
}

/* Formats vmimaged does not read: never raw, whether detected or forced (for DMG). */
static void
test_corpus_negatives (void)
{
	static const struct {
		const char *name;
		const char *in_message;
	} samples[] = {
		{ "simple-dmg.dmg.bz2", "DMG" },
		{ "empty.bochs.bz2", NULL },
		{ "parallels-v2.bz2", NULL },
	};
	const char *corpus = vmi_test_corpus_dir ();
	g_autoptr(VmiRegistry) registry = NULL;
	char *dir;

	if (corpus == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	registry = raw_registry ();
	for (gsize i = 0; i < G_N_ELEMENTS (samples); i++) {
		g_autofree char *path = vmi_test_corpus_fetch (samples[i].name, dir);
		g_autoptr(VmiSource) source = NULL;
		g_autoptr(GError) error = NULL;

		g_test_message ("%s", samples[i].name);
		source = detect_open (registry, path, &error);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
		g_assert_null (source);
		if (samples[i].in_message != NULL) {
			g_assert_nonnull (strstr (error->message, samples[i].in_message));
			/* the trailer is all there is, so forcing raw cannot get past it either */
			g_clear_error (&error);
			source = vmi_test_open (&vmi_raw_plugin, path, &error);
			g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
		} else {
			g_assert_cmpuint (probe_file (path), ==, VMI_PROBE_NO);
		}
	}
	vmi_test_tmpdir_free (dir);
}

/* The other disk images of the corpus: the first 4 KiB is enough for probe. */
static void
test_corpus_other_formats (void)
{
	static const char *const names[] = {
		"hyperv2012r2-dynamic.vhd.bz2", "virtualpc-dynamic.vhd.bz2",
		"d2v-zerofilled.vhd.bz2",	"iotest-dynamic-1G.vhdx.bz2",
		"test-disk2vhd.vhdx.bz2",	"iotest-version3.vmdk.bz2",
		"afl9.vmdk.bz2",		"virtmanager-esx4-vmfs-descriptor.vmdk",
	};
	const char *corpus = vmi_test_corpus_dir ();
	char *dir;

	if (corpus == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	for (gsize i = 0; i < G_N_ELEMENTS (names); i++) {
		g_autofree char *src = g_build_filename (corpus, names[i], NULL);
		g_autofree char *head = g_build_filename (dir, "head", NULL);

		g_test_message ("%s", names[i]);
		g_assert_cmpint (vmi_test_sh (NULL, "%s '%s' | head -c %u > '%s'",
					      g_str_has_suffix (names[i], ".bz2") ? "bzcat" : "cat",
					      src, VMI_PROBE_HEAD_SIZE, head),
				 ==, 0);
		g_assert_cmpuint (probe_file (head), ==, VMI_PROBE_NO);
	}
	vmi_test_tmpdir_free (dir);
}

/* --- reading ------------------------------------------------------------------------------- */

typedef struct {
	char *dir;
	char *path;
	guint64 size;
} SparseFixture;

/*
 * 4 MiB: a hole, 64 KiB of data at 1 MiB, a hole, 4 KiB of data at the end. Returns FALSE (and
 * skips) when the file system does not keep holes.
 */
static gboolean
sparse_fixture_init (SparseFixture *fx)
{
	g_autofree guint8 *buf = g_malloc (64 * 1024);
	int fd;

	fx->dir = vmi_test_tmpdir_new ();
	fx->path = g_build_filename (fx->dir, "sparse.img", NULL);
	fx->size = 4 * MiB;
	for (gsize i = 0; i < 64 * 1024; i++)
		buf[i] = (guint8) (i * 7 + 1);
	fd = open (fx->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (ftruncate (fd, (off_t) fx->size), ==, 0);
	g_assert_cmpint (pwrite (fd, buf, 64 * 1024, MiB), ==, 64 * 1024);
	g_assert_cmpint (pwrite (fd, buf, 4096, (off_t) fx->size - 4096), ==, 4096);
	g_assert_cmpint (fsync (fd), ==, 0);
	if (lseek (fd, 0, SEEK_DATA) != MiB) {
		g_test_skip ("the file system of $TMPDIR does not report holes with SEEK_DATA");
		close (fd);
		return FALSE;
	}
	close (fd);
	return TRUE;
}

static void
sparse_fixture_clear (SparseFixture *fx)
{
	vmi_test_tmpdir_free (fx->dir);
	g_free (fx->path);
}

static void
test_read_sparse (void)
{
	SparseFixture fx = { 0 };
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *buf = g_malloc (2 * MiB);
	VmiImage *image;

	if (!sparse_fixture_init (&fx)) {
		sparse_fixture_clear (&fx);
		return;
	}
	source = vmi_test_open (&vmi_raw_plugin, fx.path, NULL);
	image = vmi_source_get_image (source);

	/* a read across hole, data and hole */
	memset (buf, 0xee, 2 * MiB);
	g_assert_true (vmi_raw_plugin.read (image, MiB / 2, buf, 2 * MiB, &error));
	g_assert_no_error (error);
	for (gsize i = 0; i < 2 * MiB; i++) {
		guint64 off = MiB / 2 + i;
		guint8 want = off >= MiB && off < MiB + 64 * 1024 ? (guint8) ((off - MiB) * 7 + 1) : 0;

		if (buf[i] != want)
			g_error ("byte at offset %" G_GUINT64_FORMAT " is 0x%02x, not 0x%02x", off,
				 buf[i], want);
	}
	/* the very last byte: data byte 4095 */
	g_assert_true (vmi_raw_plugin.read (image, fx.size - 1, buf, 1, &error));
	g_assert_no_error (error);
	g_assert_cmpuint (buf[0], ==, (guint8) (4095 * 7 + 1));

	/* beyond the end, and an offset whose end overflows */
	g_assert_false (vmi_raw_plugin.read (image, fx.size - 1, buf, 2, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_false (vmi_raw_plugin.read (image, G_MAXUINT64 - 1, buf, 4, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	sparse_fixture_clear (&fx);
}

static void
test_block_status_sparse (void)
{
	static const struct {
		guint64 offset;
		VmiExtentKind kind;
		guint64 length;
	} expected[] = {
		{ 0, VMI_EXTENT_HOLE, MiB },
		{ MiB, VMI_EXTENT_DATA, 64 * 1024 },
		{ MiB + 64 * 1024, VMI_EXTENT_HOLE, 3 * MiB - 64 * 1024 - 4096 },
		{ 4 * MiB - 4096, VMI_EXTENT_DATA, 4096 },
	};
	SparseFixture fx = { 0 };
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	VmiImage *image;
	VmiExtent extent = { 0 };
	guint64 offset = 0;

	if (!sparse_fixture_init (&fx)) {
		sparse_fixture_clear (&fx);
		return;
	}
	source = vmi_test_open (&vmi_raw_plugin, fx.path, NULL);
	image = vmi_source_get_image (source);

	/* the walk the converter does */
	for (gsize i = 0; i < G_N_ELEMENTS (expected); i++) {
		g_assert_cmpuint (offset, ==, expected[i].offset);
		g_assert_true (vmi_raw_plugin.block_status (image, offset, fx.size - offset, &extent,
							    &error));
		g_assert_no_error (error);
		g_assert_cmpint (extent.kind, ==, expected[i].kind);
		g_assert_cmpuint (extent.length, ==, expected[i].length);
		offset += extent.length;
	}
	g_assert_cmpuint (offset, ==, fx.size);

	/* max_length bounds both kinds; a start inside a run gives the rest of the run */
	g_assert_true (vmi_raw_plugin.block_status (image, 0, 4096, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
	g_assert_cmpuint (extent.length, ==, 4096);
	g_assert_true (vmi_raw_plugin.block_status (image, MiB, 512, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, 512);
	g_assert_true (vmi_raw_plugin.block_status (image, MiB + 4096, G_MAXUINT64, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, 60 * 1024);
	g_assert_true (vmi_raw_plugin.block_status (image, fx.size - 1, G_MAXUINT64, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, 1);
	g_assert_no_error (error);

	/* out of range */
	g_assert_false (vmi_raw_plugin.block_status (image, fx.size, 1, &extent, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_false (vmi_raw_plugin.block_status (image, 0, 0, &extent, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	sparse_fixture_clear (&fx);
}

/* The file lost its tail after open: a read must fail, not invent zeros; status says hole. */
static void
test_read_file_shrank (void)
{
	SparseFixture fx = { 0 };
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	VmiExtent extent = { 0 };
	guint8 buf[8192];

	if (!sparse_fixture_init (&fx)) {
		sparse_fixture_clear (&fx);
		return;
	}
	source = vmi_test_open (&vmi_raw_plugin, fx.path, NULL);
	g_assert_cmpint (truncate (fx.path, (off_t) (fx.size - 4096)), ==, 0);
	g_assert_false (vmi_raw_plugin.read (vmi_source_get_image (source), fx.size - 8192, buf,
					     sizeof buf, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_FAILED);
	g_assert_nonnull (strstr (error->message, "shrank"));
	g_clear_error (&error);
	g_assert_true (vmi_raw_plugin.block_status (vmi_source_get_image (source), fx.size - 4096,
						    4096, &extent, &error));
	g_assert_no_error (error);
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
	g_assert_cmpuint (extent.length, ==, 4096);
	sparse_fixture_clear (&fx);
}

static void
test_info (void)
{
	char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = g_build_filename (dir, "odd.img", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) variant = NULL;
	g_autoptr(GVariant) specific = NULL;
	const VmiImageInfo *info;
	const char *format = NULL;
	guint64 vsize = 0;

	/* an odd size: kept exactly, where qemu rounds up to the next 512 bytes */
	vmi_test_write_file (path, "not a sector", 12);
	g_assert_cmpint (truncate (path, 1000), ==, 0);
	source = vmi_test_open (&vmi_raw_plugin, path, NULL);
	info = vmi_source_get_info (source);
	g_assert_cmpuint (info->virtual_size, ==, 1000);
	g_assert_null (info->subformat);
	g_assert_cmpuint (info->cluster_size, ==, 0);
	g_assert_cmpuint (info->unsafe_reasons->len, ==, 0);
	g_assert_cmpuint (info->references->len, ==, 0);
	g_assert_true (vmi_source_is_safe (source));

	variant = vmi_source_to_variant (source);
	g_assert_true (g_variant_lookup (variant, "format", "&s", &format));
	g_assert_cmpstr (format, ==, "raw");
	g_assert_true (g_variant_lookup (variant, "virtual-size", "t", &vsize));
	g_assert_cmpuint (vsize, ==, 1000);
	g_assert_false (g_variant_lookup (variant, "subformat", "&s", &format));
	specific = g_variant_lookup_value (variant, "format-specific", G_VARIANT_TYPE_VARDICT);
	g_assert_nonnull (specific);
	g_assert_cmpuint (g_variant_n_children (specific), ==, 0);

	if (vmi_test_require_qemu_img ()) {
		g_autoptr(JsonObject) qinfo = vmi_test_qemu_img_info (path, NULL);

		g_assert_cmpstr (json_object_get_string_member (qinfo, "format"), ==, "raw");
		g_assert_cmpint (json_object_get_int_member (qinfo, "virtual-size"), ==, 1024);
	}
	vmi_test_tmpdir_free (dir);
}

/* --- writing ------------------------------------------------------------------------------- */

static void
test_convert_round_trip (void)
{
	/* an odd size and a virtual size far above the data, so holes must survive */
	static const guint64 sizes[] = { 256 * (guint64) MiB + 12345, 3 * MiB };
	char *dir = vmi_test_tmpdir_new ();

	for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++) {
		g_autofree char *src = g_strdup_printf ("%s/src%" G_GSIZE_FORMAT ".img", dir, i);
		g_autofree char *dst = g_strdup_printf ("%s/dst%" G_GSIZE_FORMAT ".img", dir, i);
		g_autoptr(GError) error = NULL;
		GStatBuf st;

		vmi_test_make_pattern_image (src, sizes[i], 42 + i);
		g_assert_true (vmi_test_convert (&vmi_raw_plugin, src, &vmi_raw_plugin, dst, NULL,
						 &error));
		g_assert_no_error (error);
		g_assert_cmpint (g_stat (dst, &st), ==, 0);
		g_assert_cmpuint (st.st_size, ==, sizes[i]);
		g_assert_cmpint (vmi_test_sh (NULL, "cmp '%s' '%s'", src, dst), ==, 0);
		if (sizes[i] > 64 * MiB) {
			g_test_message ("%" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT
					" allocated in the copy",
					sizes[i], vmi_test_file_allocated (dst));
			g_assert_cmpuint (vmi_test_file_allocated (dst), <, sizes[i] / 16);
		}
		if (vmi_test_require_qemu_img ())
			g_assert_true (vmi_test_qemu_img_compare (src, "raw", dst, "raw"));
		vmi_test_save_seed ("raw", src);
	}
	vmi_test_tmpdir_free (dir);
}

static int
open_new (const char *path)
{
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint (fd, >=, 0);
	return fd;
}

static void
test_create (void)
{
	char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = g_build_filename (dir, "new.img", NULL);
	g_autoptr(GError) error = NULL;
	guint8 block[1024];
	VmiImage *image;
	int fd = open_new (path);

	/* size 0, and a size off_t cannot hold */
	g_assert_null (vmi_raw_plugin.create (fd, 0, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_null (vmi_raw_plugin.create (fd, G_MAXUINT64, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);

	/* holes until written; the size exact, even when odd */
	image = vmi_raw_plugin.create (fd, 8 * MiB + 100, NULL, &error);
	g_assert_no_error (error);
	g_assert_nonnull (image);
	memset (block, 0x5a, sizeof block);
	g_assert_true (vmi_raw_plugin.write (image, 4 * MiB, block, sizeof block, &error));
	g_assert_true (vmi_raw_plugin.write (image, 8 * MiB, block, 100, &error));
	g_assert_no_error (error);
	/* beyond the end */
	g_assert_false (vmi_raw_plugin.write (image, 8 * MiB, block, 512, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_true (vmi_raw_plugin.finish (image, &error));
	g_assert_no_error (error);
	vmi_raw_plugin.close (image);
	g_assert_cmpint (lseek (fd, 0, SEEK_END), ==, 8 * MiB + 100);
	g_assert_cmpint (lseek (fd, 0, SEEK_DATA), ==, 4 * MiB);
	g_assert_cmpuint (vmi_test_file_allocated (path), <=, 64 * 1024);
	close (fd);

	/* a destination that is not empty would keep its old bytes in the "holes" */
	fd = open (path, O_RDWR | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	g_assert_null (vmi_raw_plugin.create (fd, MiB, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull (strstr (error->message, "not empty"));
	close (fd);
	vmi_test_tmpdir_free (dir);
}

/* /dev/full in place of the file: every write fails with ENOSPC. */
static void
test_write_no_space (void)
{
	char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = g_build_filename (dir, "full.img", NULL);
	g_autoptr(GError) error = NULL;
	guint8 block[512] = { 1 };
	VmiImage *image;
	int fd = open_new (path);
	int full = open ("/dev/full", O_WRONLY | O_CLOEXEC);

	if (full < 0) {
		g_test_skip ("no /dev/full");
		close (fd);
		vmi_test_tmpdir_free (dir);
		return;
	}
	image = vmi_raw_plugin.create (fd, MiB, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpint (dup3 (full, fd, O_CLOEXEC), ==, fd);
	g_assert_false (vmi_raw_plugin.write (image, 0, block, sizeof block, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE);
	g_assert_nonnull (strstr (error->message, "offset 0x0"));
	vmi_raw_plugin.close (image);
	close (full);
	close (fd);
	vmi_test_tmpdir_free (dir);
}

/* --- inputs that are not images ------------------------------------------------------------ */

static void
test_empty_file (void)
{
	char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = g_build_filename (dir, "empty.img", NULL);
	g_autoptr(VmiRegistry) registry = raw_registry ();
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;

	vmi_test_write_file (path, "", 0);
	/* detected: raw is the only candidate and refuses with the reason */
	source = detect_open (registry, path, &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	g_assert_nonnull (strstr (error->message, "empty"));
	g_clear_error (&error);
	/* forced */
	source = vmi_test_open (&vmi_raw_plugin, path, &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	vmi_test_tmpdir_free (dir);
}

/* Calls the plugin's open directly, without the engine's own checks in front of it. */
static void
assert_plugin_refuses_fd (int fd, gint code)
{
	g_autoptr(GError) error = NULL;
	VmiOpenArgs args = { .fd = fd, .file_size = 0 };
	VmiImage *image = vmi_raw_plugin.open (&args, &error);

	g_assert_null (image);
	g_assert_error (error, VMI_ERROR, code);
}

/* Through the engine, detected and forced; then the plugin alone. */
static void
assert_refuses_fd (int fd, const char *in_message)
{
	g_autoptr(VmiRegistry) registry = raw_registry ();
	g_autoptr(VmiSource) detected = NULL;
	g_autoptr(VmiSource) forced = NULL;
	g_autoptr(GError) error = NULL;

	detected = vmi_source_open (registry, fd, -1, NULL, NULL, &error);
	g_assert_null (detected);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull (strstr (error->message, in_message));
	g_clear_error (&error);
	forced = vmi_source_open_with (&vmi_raw_plugin, fd, -1, NULL, &error);
	g_assert_null (forced);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	assert_plugin_refuses_fd (fd, VMI_ERROR_INVALID_ARGUMENT);
}

static void
test_directory (void)
{
	char *dir = vmi_test_tmpdir_new ();
	int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	assert_refuses_fd (fd, "directory");
	close (fd);
	vmi_test_tmpdir_free (dir);
}

/* Must not hang: no writer will ever come, and a read of a FIFO would block. */
static void
test_fifo (void)
{
	char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = g_build_filename (dir, "fifo", NULL);
	int fd;

	g_assert_cmpint (mkfifo (path, 0600), ==, 0);
	fd = open (path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (write (fd, "QFI\xfb", 4), ==, 4); /* data the engine must not consume */
	assert_refuses_fd (fd, "FIFO");
	close (fd);
	vmi_test_tmpdir_free (dir);
}

static void
test_char_device (void)
{
	int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	assert_refuses_fd (fd, "device");
	close (fd);
}

/* Hand-made DMG trailers: the magic and the header size both have to match. */
static void
test_dmg_trailer (void)
{
	static const struct {
		guint64 size;
		const char *trailer;
		gsize trailer_len;
		gboolean refused;
	} cases[] = {
		{ MiB, "koly\0\0\0\4\0\0\2\0", 12, TRUE },
		{ 512, "koly\0\0\0\4\0\0\2\0", 12, TRUE }, /* the whole file is the trailer */
		{ MiB, "koly\0\0\0\4\0\0\1\0", 12, FALSE }, /* header size 256 */
		{ MiB, "kolx\0\0\0\4\0\0\2\0", 12, FALSE },
		{ 511, "koly\0\0\0\4\0\0\2\0", 12, FALSE }, /* too short to end in a trailer */
	};
	char *dir = vmi_test_tmpdir_new ();

	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autofree char *path = g_strdup_printf ("%s/%" G_GSIZE_FORMAT ".img", dir, i);
		g_autoptr(VmiSource) source = NULL;
		g_autoptr(GError) error = NULL;
		int fd = open_new (path);
		guint64 at = cases[i].size >= 512 ? cases[i].size - 512 : 0;

		g_assert_cmpint (ftruncate (fd, (off_t) cases[i].size), ==, 0);
		g_assert_cmpint (pwrite (fd, cases[i].trailer, cases[i].trailer_len, (off_t) at), ==,
				 (ssize_t) cases[i].trailer_len);
		close (fd);
		source = vmi_test_open (&vmi_raw_plugin, path, &error);
		if (cases[i].refused) {
			g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
			g_assert_nonnull (strstr (error->message, "koly"));
		} else {
			g_assert_no_error (error);
			g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, cases[i].size);
		}
	}
	vmi_test_tmpdir_free (dir);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);

	g_test_add_func ("/raw/probe/fallback", test_probe_fallback);
	g_test_add_func ("/raw/probe/foreign-magic", test_probe_foreign_magic);
	g_test_add_func ("/raw/probe/near-misses", test_probe_near_misses);
	g_test_add_func ("/raw/probe/vmdk-descriptor", test_probe_vmdk_descriptor);
	g_test_add_func ("/raw/probe/qemu-images", test_probe_qemu_images);
	g_test_add_func ("/raw/probe/fixed-vhd-is-raw", test_probe_fixed_vhd_is_raw);
	g_test_add_func ("/raw/corpus/grub-mbr", test_corpus_grub_mbr);
	g_test_add_func ("/raw/corpus/iso", test_corpus_iso);
	g_test_add_func ("/raw/corpus/negatives", test_corpus_negatives);
	g_test_add_func ("/raw/corpus/other-formats", test_corpus_other_formats);
	g_test_add_func ("/raw/read/sparse", test_read_sparse);
	g_test_add_func ("/raw/read/block-status", test_block_status_sparse);
	g_test_add_func ("/raw/read/file-shrank", test_read_file_shrank);
	g_test_add_func ("/raw/read/info", test_info);
	g_test_add_func ("/raw/write/round-trip", test_convert_round_trip);
	g_test_add_func ("/raw/write/create", test_create);
	g_test_add_func ("/raw/write/no-space", test_write_no_space);
	g_test_add_func ("/raw/bad/empty-file", test_empty_file);
	g_test_add_func ("/raw/bad/directory", test_directory);
	g_test_add_func ("/raw/bad/fifo", test_fifo);
	g_test_add_func ("/raw/bad/char-device", test_char_device);
	g_test_add_func ("/raw/bad/dmg-trailer", test_dmg_trailer);
	return g_test_run ();
}
