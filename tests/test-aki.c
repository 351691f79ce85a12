/*
 * Tests of the kernel plugin: the real Debian kernel, iPXE and memtest86+ images, kernels made
 * by the test (bzImage, arm64 Image, compressed vmlinux), and hostile headers.
 */
#include <zlib.h>

#include "boot-test-common.h"

extern const VmiFormatPlugin vmi_aki_plugin;

#define SECTOR 512u

typedef struct {
	char *dir;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
	f->dir = vmi_test_tmpdir_new ();
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
	vmi_test_tmpdir_free (f->dir);
}

static void
put16 (guint8 *p, guint16 v)
{
	p[0] = (guint8) v;
	p[1] = (guint8) (v >> 8);
}

static void
put32 (guint8 *p, guint32 v)
{
	put16 (p, (guint16) v);
	put16 (p + 2, (guint16) (v >> 16));
}

static void
put64 (guint8 *p, guint64 v)
{
	put32 (p, (guint32) v);
	put32 (p + 4, (guint32) (v >> 32));
}

#define TEST_VERSION "6.99.0-test (builder@example.org) #1 SMP PREEMPT_DYNAMIC"

/*
 * A bzImage the way the kernel's build lays one out: an EFI stub's "MZ", 4 setup sectors with
 * the header and the version string, then 64 KiB of protected-mode code whose payload at 0x10
 * starts with an xz stream's magic.
 */
static GByteArray *
make_bzimage (void)
{
	const guint setup_sects = 4;
	const gsize setup_end = (setup_sects + 1) * SECTOR;
	GByteArray *b = g_byte_array_new ();
	guint8 *p;

	g_byte_array_set_size (b, setup_end + 64 * 1024);
	p = b->data;
	memset (p, 0, b->len);
	p[0] = 'M';
	p[1] = 'Z';
	put32 (p + 0x3c, 0x80);
	memcpy (p + 0x80, "PE\0\0", 4);
	p[0x1f1] = setup_sects;
	put32 (p + 0x1f4, (64 * 1024) / 16);
	p[0x1fe] = 0x55;
	p[0x1ff] = 0xaa;
	memcpy (p + 0x202, "HdrS", 4);
	put16 (p + 0x206, 0x020f);
	put16 (p + 0x20e, 0x0400); /* the string at 0x600 */
	memcpy (p + 0x600, TEST_VERSION, sizeof TEST_VERSION);
	p[0x211] = 0x81; /* LOADED_HIGH, CAN_USE_HEAP */
	put32 (p + 0x230, 0x200000);
	p[0x234] = 1;
	put16 (p + 0x236, 0x0003); /* XLF_KERNEL_64, XLF_CAN_BE_LOADED_ABOVE_4G */
	put32 (p + 0x238, 2047);
	put32 (p + 0x248, 0x10);
	put32 (p + 0x24c, 1024);
	put64 (p + 0x258, 0x1000000);
	put32 (p + 0x260, 0x2000000);
	memcpy (p + setup_end + 0x10, "\xfd" "7zXZ\0\0\x01", 8);
	return b;
}

static char *
write_bytes (Fixture *f, const char *name, const guint8 *data, gsize len)
{
	char *path = g_build_filename (f->dir, name, NULL);

	boot_test_write (path, data, len);
	vmi_test_save_seed ("aki", path);
	return path;
}

static void
test_bzimage (Fixture *f, gconstpointer data)
{
	g_autoptr(GByteArray) b = make_bzimage ();
	g_autofree char *path = write_bytes (f, "bzImage", b->data, b->len);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = boot_test_facts (&vmi_aki_plugin, path, &error);
	g_autofree char *version = NULL, *release = NULL, *payload = NULL;
	g_autofree const char **xloadflags = NULL;
	gboolean relocatable = FALSE, efi = FALSE;
	guint32 setup = 0;
	guint64 payload_offset = 0;
	const char *s = NULL;

	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "kernel-type", "&s", &s));
	g_assert_cmpstr (s, ==, "x86-bzimage");
	g_assert_true (g_variant_lookup (facts, "boot-protocol", "&s", &s));
	g_assert_cmpstr (s, ==, "2.15");
	version = boot_test_fact_string (facts, "kernel-version");
	g_assert_cmpstr (version, ==, TEST_VERSION);
	release = boot_test_fact_string (facts, "kernel-release");
	g_assert_cmpstr (release, ==, "6.99.0-test");
	g_assert_true (g_variant_lookup (facts, "setup-sectors", "u", &setup));
	g_assert_cmpuint (setup, ==, 4);
	g_assert_true (g_variant_lookup (facts, "relocatable", "b", &relocatable));
	g_assert_true (relocatable);
	g_assert_true (g_variant_lookup (facts, "efi-stub", "b", &efi));
	g_assert_true (efi);
	g_assert_true (g_variant_lookup (facts, "xloadflags", "^a&s", &xloadflags));
	g_assert_cmpuint (g_strv_length ((char **) xloadflags), ==, 2);
	g_assert_cmpstr (xloadflags[0], ==, "kernel-64");
	g_assert_cmpstr (xloadflags[1], ==, "can-be-loaded-above-4g");
	payload = boot_test_fact_string (facts, "payload-compression");
	g_assert_cmpstr (payload, ==, "xz");
	g_assert_true (g_variant_lookup (facts, "payload-offset", "t", &payload_offset));
	g_assert_cmpuint (payload_offset, ==, 5 * SECTOR + 0x10);
	boot_test_check_qemu_img (path);
	/* Detected without classify: a kernel is more than the raw file qemu sees. */
	g_assert_cmpstr (boot_test_detect (&vmi_aki_plugin, path, FALSE), ==, "aki");
}

static void
expect_error (Fixture *f, const char *name, const guint8 *data, gsize len, int code,
	      const char *fragment)
{
	g_autofree char *path = write_bytes (f, name, data, len);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = boot_test_facts (&vmi_aki_plugin, path, &error);

	g_assert_null (facts);
	g_assert_error (error, VMI_ERROR, code);
	if (g_test_verbose ())
		g_printerr ("# %s: %s\n", name, error->message);
	g_assert_nonnull (strstr (error->message, fragment));
}

static void
test_bad_headers (Fixture *f, gconstpointer data)
{
	g_autoptr(GByteArray) b = make_bzimage ();
	g_autoptr(GByteArray) bad = NULL;
	g_autofree guint8 *garbage = g_malloc (4096);
	g_autoptr(GRand) rand = g_rand_new_with_seed (4);

	/* Cut inside the signature and just after it. */
	expect_error (f, "cut-in-magic", b->data, 0x204, VMI_ERROR_CORRUPT_IMAGE, "truncated");
	expect_error (f, "cut-after-magic", b->data, 0x207, VMI_ERROR_CORRUPT_IMAGE, "truncated");
	/* Setup sectors that the file does not hold. */
	bad = g_byte_array_sized_new (b->len);
	g_byte_array_append (bad, b->data, b->len);
	bad->data[0x1f1] = 200;
	expect_error (f, "setup-beyond-eof", bad->data, bad->len, VMI_ERROR_CORRUPT_IMAGE,
		      "setup_sects");
	/* A kernel_version pointer beyond the end of the file, and one outside the setup code. */
	bad->data[0x1f1] = 4;
	put16 (bad->data + 0x20e, 0xff00);
	expect_error (f, "version-beyond-eof", bad->data, 0x1000, VMI_ERROR_CORRUPT_IMAGE,
		      "beyond the end of the 4096-byte file");
	put16 (bad->data + 0x20e, 0x2000);
	expect_error (f, "version-outside-setup", bad->data, bad->len, VMI_ERROR_CORRUPT_IMAGE,
		      "outside the 4 setup sectors");
	put16 (bad->data + 0x20e, 0x0400);
	/* A payload that runs past the end. */
	put32 (bad->data + 0x24c, 0x7fffffff);
	expect_error (f, "payload-beyond-eof", bad->data, bad->len, VMI_ERROR_CORRUPT_IMAGE,
		      "payload");
	put32 (bad->data + 0x24c, 1024);
	put16 (bad->data + 0x206, 0x0105);
	expect_error (f, "old-protocol", bad->data, bad->len, VMI_ERROR_CORRUPT_IMAGE, "1.05");

	/* Garbage behind compression magic: a named corruption, not a crash. */
	for (guint i = 0; i < 4096; i++)
		garbage[i] = (guint8) g_rand_int (rand);
	memcpy (garbage, "\x1f\x8b\x08\x00\0\0\0\0\0\x03", 10);
	expect_error (f, "garbage.gz", garbage, 4096, VMI_ERROR_CORRUPT_IMAGE, "gzip stream");
	memcpy (garbage, "\xfd" "7zXZ\0\0\x04\xe6\xd6\xb4\x46", 12);
	expect_error (f, "garbage.xz", garbage, 4096, VMI_ERROR_CORRUPT_IMAGE, "xz stream");
	memcpy (garbage, "\x28\xb5\x2f\xfd", 4);
	expect_error (f, "garbage.zst", garbage, 4096, VMI_ERROR_CORRUPT_IMAGE, "zstd stream");
	/* Neither header nor compression. */
	garbage[0] = 0;
	expect_error (f, "random", garbage, 4096, VMI_ERROR_UNKNOWN_FORMAT, "not a kernel");
}

static void check_vmlinux (const char *path, const char *compression, const char *arch);

/*
 * An xz stream whose block header asks for a 4 GiB dictionary, which liblzma would allocate:
 * refused before decoding.
 */
static void
test_xz_dictionary (Fixture *f, gconstpointer data)
{
	g_autofree char *path = g_build_filename (f->dir, "vmlinux.xz", NULL);
	g_autofree char *quoted = g_shell_quote (path);
	g_autofree guint8 *xz = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	gsize len = 0;
	guint32 crc;

	if (!boot_test_have ("xz")) {
		g_test_skip ("xz is not installed (Debian package xz-utils)");
		return;
	}
	g_assert_cmpint (vmi_test_sh (NULL,
				      "{ printf '\\177ELF\\002\\001\\001'; head -c 64 /dev/zero; } | "
				      "xz -T1 -c > %s",
				      quoted),
			 ==, 0);
	check_vmlinux (path, "xz", "unknown");
	g_assert_true (g_file_get_contents (path, (char **) &xz, &len, NULL));
	/* Stream header (12 bytes), then a 12-byte block header: size, flags, LZMA2 (0x21) with
	 * one property byte, the dictionary; padding; CRC32. */
	g_assert_cmpuint (len, >, 24);
	g_assert_cmpuint (xz[12], ==, 2);
	g_assert_cmpuint (xz[14], ==, 0x21);
	g_assert_cmpuint (xz[15], ==, 1);
	xz[16] = 40;
	crc = (guint32) crc32 (0, xz + 12, 8);
	memcpy (xz + 20, &crc, 4); /* little endian, as the tests' machines are */
	boot_test_write (path, xz, len);
	vmi_test_save_seed ("aki", path);
	facts = boot_test_facts (&vmi_aki_plugin, path, &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	g_assert_nonnull (strstr (error->message, "4095-MiB dictionary"));
}

/* A compressed file whose content is not a kernel is refused as an unknown format. */
static void
test_compressed_non_kernel (Fixture *f, gconstpointer data)
{
	g_autofree char *text = g_build_filename (f->dir, "notes.txt", NULL);
	g_autofree char *gz = g_build_filename (f->dir, "notes.txt.gz", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autofree char *quoted = g_shell_quote (text);

	boot_test_write (text, "hello, this is not a kernel\n", 28);
	g_assert_cmpint (vmi_test_sh (NULL, "gzip -k %s", quoted), ==, 0);
	facts = boot_test_facts (&vmi_aki_plugin, gz, &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	/* And it is not taken from raw by detection. */
	g_assert_cmpstr (boot_test_detect (&vmi_aki_plugin, gz, FALSE), ==, "raw");
	g_assert_cmpstr (boot_test_detect (&vmi_aki_plugin, gz, TRUE), ==, "raw");
}

static GByteArray *
make_arm64_image (void)
{
	GByteArray *b = g_byte_array_new ();

	g_byte_array_set_size (b, 128 * 1024);
	memset (b->data, 0, b->len);
	b->data[0] = 'M';
	b->data[1] = 'Z';
	put64 (b->data + 0x08, 0);
	put64 (b->data + 0x10, 0x2a30000);
	put64 (b->data + 0x18, 0x2 | 0x8); /* little endian, 4 KiB pages, anywhere */
	memcpy (b->data + 0x38, "ARM\x64", 4);
	put32 (b->data + 0x3c, 0x40);
	memcpy (b->data + 0x40, "PE\0\0", 4);
	return b;
}

static void
check_arm64 (const char *path, const char *compression)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = boot_test_facts (&vmi_aki_plugin, path, &error);
	const char *s = NULL;
	guint64 size = 0;
	guint32 page = 0;
	gboolean efi = FALSE;

	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "kernel-type", "&s", &s));
	g_assert_cmpstr (s, ==, "arm64-image");
	g_assert_true (g_variant_lookup (facts, "compression", "&s", &s));
	g_assert_cmpstr (s, ==, compression);
	g_assert_true (g_variant_lookup (facts, "image-size", "t", &size));
	g_assert_cmpuint (size, ==, 0x2a30000);
	g_assert_true (g_variant_lookup (facts, "page-size", "u", &page));
	g_assert_cmpuint (page, ==, 4096);
	g_assert_true (g_variant_lookup (facts, "endianness", "&s", &s));
	g_assert_cmpstr (s, ==, "little");
	g_assert_true (g_variant_lookup (facts, "physical-placement", "&s", &s));
	g_assert_cmpstr (s, ==, "anywhere");
	g_assert_true (g_variant_lookup (facts, "efi-stub", "b", &efi));
	g_assert_true (efi);
}

static void
test_arm64 (Fixture *f, gconstpointer data)
{
	g_autoptr(GByteArray) b = make_arm64_image ();
	g_autofree char *path = write_bytes (f, "Image", b->data, b->len);
	g_autofree char *quoted = g_shell_quote (path);
	g_autofree char *gz = g_strconcat (path, ".gz", NULL);

	check_arm64 (path, "none");
	boot_test_check_qemu_img (path);
	g_assert_cmpstr (boot_test_detect (&vmi_aki_plugin, path, FALSE), ==, "aki");
	/* Debian's arm64 vmlinuz is a gzipped Image: opened when named, not detected. */
	g_assert_cmpint (vmi_test_sh (NULL, "gzip -k %s", quoted), ==, 0);
	check_arm64 (gz, "gzip");
	vmi_test_save_seed ("aki", gz);
	g_assert_cmpstr (boot_test_detect (&vmi_aki_plugin, gz, FALSE), ==, "raw");
	/* Cut before the header ends: no arm64 magic, not a kernel. */
	expect_error (f, "Image-cut", b->data, 0x3a, VMI_ERROR_UNKNOWN_FORMAT, "not a kernel");
}

/* A RISC-V Image as Linux's build writes it: header version 0.2, EFI stub. */
static void
test_riscv (Fixture *f, gconstpointer data)
{
	g_autofree guint8 *image = g_malloc0 (64 * 1024);
	g_autofree char *path = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GError) error = NULL;
	const char *s = NULL;
	guint64 text_offset = 0, size = 0;
	gboolean efi = FALSE;

	image[0] = 'M';
	image[1] = 'Z';
	put64 (image + 0x08, 0x200000);
	put64 (image + 0x10, 0x1400000);
	put32 (image + 0x20, 0x00000002);
	memcpy (image + 0x30, "RISCV\0\0\0", 8);
	memcpy (image + 0x38, "RSC\x05", 4);
	put32 (image + 0x3c, 0x40);
	memcpy (image + 0x40, "PE\0\0", 4);
	path = write_bytes (f, "Image-riscv", image, 64 * 1024);
	facts = boot_test_facts (&vmi_aki_plugin, path, &error);
	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "kernel-type", "&s", &s));
	g_assert_cmpstr (s, ==, "riscv-image");
	g_assert_true (g_variant_lookup (facts, "header-version", "&s", &s));
	g_assert_cmpstr (s, ==, "0.2");
	g_assert_true (g_variant_lookup (facts, "text-offset", "t", &text_offset));
	g_assert_cmpuint (text_offset, ==, 0x200000);
	g_assert_true (g_variant_lookup (facts, "image-size", "t", &size));
	g_assert_cmpuint (size, ==, 0x1400000);
	g_assert_true (g_variant_lookup (facts, "efi-stub", "b", &efi));
	g_assert_true (efi);
	boot_test_check_qemu_img (path);
	g_assert_cmpstr (boot_test_detect (&vmi_aki_plugin, path, FALSE), ==, "aki");
}

static void
check_vmlinux (const char *path, const char *compression, const char *arch)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = boot_test_facts (&vmi_aki_plugin, path, &error);
	const char *s = NULL;

	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "kernel-type", "&s", &s));
	g_assert_cmpstr (s, ==, "elf");
	g_assert_true (g_variant_lookup (facts, "compression", "&s", &s));
	g_assert_cmpstr (s, ==, compression);
	g_assert_true (g_variant_lookup (facts, "architecture", "&s", &s));
	g_assert_cmpstr (s, ==, arch);
}

/* vmlinux compressed whole by each tool the kernel's build can use. */
static void
test_compressed_vmlinux (Fixture *f, gconstpointer data)
{
	static const struct {
		const char *command;
		const char *suffix;
		const char *compression;
	} tools[] = {
		{ "gzip -9 -c", "gz", "gzip" },	 { "xz -c", "xz", "xz" },
		{ "xz --format=lzma -c", "lzma", "lzma" }, { "zstd -q -c", "zst", "zstd" },
		{ "lz4 -q -c", "lz4", "lz4" },	 { "lz4 -l -q -c", "lz4l", "lz4-legacy" },
		{ "bzip2 -c", "bz2", "bzip2" },
	};
	g_autofree guint8 *elf = g_malloc0 (256 * 1024);
	g_autofree char *path = NULL;
	g_autofree char *quoted = NULL;

	/* An ELF64 x86-64 executable header, then text that compresses well. */
	memcpy (elf, "\x7f" "ELF\x02\x01\x01", 7);
	put16 (elf + 16, 2);
	put16 (elf + 18, 62);
	for (gsize i = 64; i < 256 * 1024; i++)
		elf[i] = (guint8) ("vmlinux "[i % 8]);
	path = write_bytes (f, "vmlinux", elf, 256 * 1024);
	quoted = g_shell_quote (path);
	check_vmlinux (path, "none", "x86_64");
	for (gsize i = 0; i < G_N_ELEMENTS (tools); i++) {
		g_autofree char *out = g_strdup_printf ("%s.%s", path, tools[i].suffix);
		g_autofree char *quoted_out = g_shell_quote (out);
		g_autofree char *tool = g_strndup (tools[i].command, strcspn (tools[i].command, " "));
		g_autofree char *found = g_find_program_in_path (tool);

		if (found == NULL) {
			g_test_message ("%s is not installed: %s not tested", tool,
					tools[i].compression);
			continue;
		}
		g_assert_cmpint (vmi_test_sh (NULL, "%s %s > %s", tools[i].command, quoted,
					      quoted_out),
				 ==, 0);
		check_vmlinux (out, tools[i].compression, "x86_64");
		vmi_test_save_seed ("aki", out);
	}
}

static void
check_real_bzimage (const char *path, const char *release, const char *payload)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = boot_test_facts (&vmi_aki_plugin, path, &error);
	const char *s = NULL;

	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "kernel-type", "&s", &s));
	g_assert_cmpstr (s, ==, "x86-bzimage");
	if (release != NULL) {
		g_assert_true (g_variant_lookup (facts, "kernel-release", "&s", &s));
		g_assert_cmpstr (s, ==, release);
	}
	if (payload != NULL) {
		g_assert_true (g_variant_lookup (facts, "payload-compression", "&s", &s));
		g_assert_cmpstr (s, ==, payload);
	}
	boot_test_check_qemu_img (path);
	g_assert_cmpstr (boot_test_detect (&vmi_aki_plugin, path, FALSE), ==, "aki");
}

/* The compression CONFIG_KERNEL_* in the kernel's config names, as the plugin names it. */
static char *
config_compression (const char *config)
{
	static const char *const names[][2] = {
		{ "CONFIG_KERNEL_GZIP=y", "gzip" }, { "CONFIG_KERNEL_XZ=y", "xz" },
		{ "CONFIG_KERNEL_ZSTD=y", "zstd" }, { "CONFIG_KERNEL_LZ4=y", "lz4-legacy" },
		{ "CONFIG_KERNEL_LZMA=y", "lzma" }, { "CONFIG_KERNEL_BZIP2=y", "bzip2" },
		{ "CONFIG_KERNEL_LZO=y", "lzo" },
	};
	g_autofree char *text = NULL;

	g_assert_true (g_file_get_contents (config, &text, NULL, NULL));
	for (gsize i = 0; i < G_N_ELEMENTS (names); i++) {
		if (strstr (text, names[i][0]) != NULL)
			return g_strdup (names[i][1]);
	}
	return NULL;
}

/*
 * Debian's kernel package, downloaded and unpacked (never installed): the cloud flavour,
 * whose package is the smallest. Only /boot is unpacked, which is all the test needs.
 */
static void
test_debian_kernel (Fixture *f, gconstpointer data)
{
	g_autofree char *deps = NULL, *package = NULL, *vmlinuz = NULL, *config = NULL;
	g_autofree char *release = NULL, *compression = NULL, *quoted_dir = g_shell_quote (f->dir);
	g_autofree char *payload_path = NULL, *gz_path = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GDir) dir = NULL;
	guint64 payload_offset = 0;
	guint32 payload_length = 0;
	const char *line, *name;

	if (vmi_test_sh (&deps, "apt-cache depends linux-image-cloud-amd64 2>/dev/null") != 0 ||
	    (line = strstr (deps, "Depends: linux-image-")) == NULL) {
		g_test_skip ("apt-cache knows no linux-image-cloud-amd64 (run apt-get update)");
		return;
	}
	package = g_strndup (line + 9, strcspn (line + 9, " \n<>"));
	if (vmi_test_sh (NULL, "cd %s && apt-get download -q %s >/dev/null 2>&1", quoted_dir,
			 package) != 0) {
		g_autofree char *msg = g_strdup_printf ("apt-get download %s failed (offline?)",
							package);
		g_test_skip (msg);
		return;
	}
	g_assert_cmpint (vmi_test_sh (NULL,
				      "cd %s && dpkg-deb --fsys-tarfile %s_*.deb | "
				      "tar -x --wildcards './boot/*' && rm %s_*.deb",
				      quoted_dir, package, package),
			 ==, 0);
	dir = g_dir_open (config = g_build_filename (f->dir, "boot", NULL), 0, &error);
	g_assert_no_error (error);
	while ((name = g_dir_read_name (dir)) != NULL) {
		if (g_str_has_prefix (name, "vmlinuz-")) {
			vmlinuz = g_build_filename (config, name, NULL);
			release = g_strdup (name + strlen ("vmlinuz-"));
		}
	}
	g_assert_nonnull (vmlinuz);
	g_free (config);
	config = g_strdup_printf ("%s/boot/config-%s", f->dir, release);
	compression = config_compression (config);
	g_test_message ("%s: release %s, payload %s", package, release, compression);
	check_real_bzimage (vmlinuz, release, compression);

	/* Its payload alone is a compressed vmlinux: the plugin must find the ELF inside. */
	facts = boot_test_facts (&vmi_aki_plugin, vmlinuz, &error);
	g_assert_true (g_variant_lookup (facts, "payload-offset", "t", &payload_offset));
	g_assert_true (g_variant_lookup (facts, "payload-length", "u", &payload_length));
	payload_path = g_build_filename (f->dir, "payload", NULL);
	g_assert_cmpint (vmi_test_sh (NULL,
				      "tail -c +%" G_GUINT64_FORMAT " '%s' | head -c %u > '%s'",
				      payload_offset + 1, vmlinuz, payload_length, payload_path),
			 ==, 0);
	if (g_strcmp0 (compression, "lzo") != 0)
		check_vmlinux (payload_path, compression, "x86_64");
	/* And the start of that vmlinux, gzipped, as a vmlinux.gz. */
	gz_path = g_build_filename (f->dir, "vmlinux.gz", NULL);
	if (g_strcmp0 (compression, "lz4-legacy") == 0) {
		g_assert_cmpint (vmi_test_sh (NULL,
					      "lz4 -dc '%s' 2>/dev/null | head -c 1048576 | gzip > '%s'",
					      payload_path, gz_path),
				 ==, 0);
		check_vmlinux (gz_path, "gzip", "x86_64");
	}
}

static void
test_installed_file (const char *path, const char *package, const char *fragment)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autofree char *version = NULL;

	if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
		g_autofree char *msg = g_strdup_printf ("%s is missing: install Debian's %s", path,
							package);
		g_test_skip (msg);
		return;
	}
	check_real_bzimage (path, NULL, NULL);
	facts = boot_test_facts (&vmi_aki_plugin, path, &error);
	g_assert_no_error (error);
	version = boot_test_fact_string (facts, "kernel-version");
	g_assert_nonnull (version);
	g_assert_nonnull (strstr (version, fragment));
	vmi_test_save_seed ("aki", path);
}

static void
test_ipxe (Fixture *f, gconstpointer data)
{
	/* iPXE's version string, e.g. "1.0.0+git-20190125.36a4c85-5.1". */
	test_installed_file ("/usr/lib/ipxe/ipxe.lkrn", "ipxe", "1.");
}

static void
test_memtest (Fixture *f, gconstpointer data)
{
	test_installed_file ("/boot/memtest86+x64.bin", "memtest86+", ".");
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD ("/aki/bzimage", test_bzimage);
	ADD ("/aki/bad-headers", test_bad_headers);
	ADD ("/aki/compressed-non-kernel", test_compressed_non_kernel);
	ADD ("/aki/xz-dictionary", test_xz_dictionary);
	ADD ("/aki/arm64", test_arm64);
	ADD ("/aki/riscv", test_riscv);
	ADD ("/aki/compressed-vmlinux", test_compressed_vmlinux);
	ADD ("/aki/debian-kernel", test_debian_kernel);
	ADD ("/aki/ipxe", test_ipxe);
	ADD ("/aki/memtest86+", test_memtest);
	return g_test_run ();
}
