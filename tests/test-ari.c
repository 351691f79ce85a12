/*
 * Tests of the ramdisk plugin: initramfs images made by cpio and each compressor the kernel
 * unpacks, with and without an early-microcode prefix (Debian's and Fedora's layout), counted
 * against cpio itself; detection only when classifying; bounds and hostile archives.
 */
#include "boot-test-common.h"

extern const VmiFormatPlugin vmi_ari_plugin;

typedef struct {
	char *dir;
	char *main_cpio;  /* the main archive, ./-prefixed names as `find .` gives them */
	char *early_cpio; /* early microcode, names without ./ as initramfs-tools writes them */
	guint main_entries;
	guint early_entries;
	guint64 main_data;
	guint64 early_data;
} Fixture;

/* The number a shell command prints; takes ownership of cmd. */
static guint64
sh_number (char *cmd)
{
	g_autofree char *out = NULL;

	g_assert_cmpint (vmi_test_sh (&out, "%s", cmd), ==, 0);
	g_free (cmd);
	return g_ascii_strtoull (out, NULL, 10);
}

static void
write_random (const char *path, gsize len, guint32 seed)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
	g_autofree guint8 *data = g_malloc (len);

	for (gsize i = 0; i < len; i++)
		data[i] = (guint8) g_rand_int (rand);
	boot_test_write (path, data, len);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
	g_autofree char *root = NULL, *early = NULL, *q = NULL;

	f->dir = vmi_test_tmpdir_new ();
	if (!boot_test_have ("cpio"))
		return;
	root = g_build_filename (f->dir, "root", NULL);
	early = g_build_filename (f->dir, "early", NULL);
	q = g_shell_quote (f->dir);
	g_assert_cmpint (vmi_test_sh (NULL,
				      "cd %s && mkdir -p root/bin root/etc root/lib/modules/6.1.0 "
				      "root/scripts early/kernel/x86/microcode && "
				      "printf '#!/bin/sh\\nexec /bin/sh\\n' > root/init && "
				      "chmod 755 root/init && echo ramdisk > root/etc/hostname && "
				      "ln -s ../bin/sh root/scripts/sh && "
				      "seq 1 20000 > root/lib/modules/6.1.0/modules.dep",
				      q),
			 ==, 0);
	{
		g_autofree char *p = g_build_filename (root, "bin", "sh", NULL);
		g_autofree char *intel = g_build_filename (early, "kernel", "x86", "microcode",
							   "GenuineIntel.bin", NULL);
		g_autofree char *amd = g_build_filename (early, "kernel", "x86", "microcode",
							 "AuthenticAMD.bin", NULL);

		write_random (p, 150 * 1024, 1);
		write_random (intel, 30 * 1024, 2);
		write_random (amd, 10 * 1024 + 3, 3);
	}
	g_assert_cmpint (vmi_test_sh (NULL,
				      "cd %s/root && find . | LC_ALL=C sort | cpio -o -H newc --quiet "
				      "> ../main.cpio && cd ../early && find kernel | LC_ALL=C sort | "
				      "cpio -o -H newc --quiet > ../early.cpio",
				      q),
			 ==, 0);
	f->main_cpio = g_build_filename (f->dir, "main.cpio", NULL);
	f->early_cpio = g_build_filename (f->dir, "early.cpio", NULL);
	/* The oracle: cpio's own listing, and the data sizes find sees (directories hold none). */
	f->main_entries = (guint) sh_number (
		g_strdup_printf ("cpio -it --quiet < '%s' | wc -l", f->main_cpio));
	f->early_entries = (guint) sh_number (
		g_strdup_printf ("cpio -it --quiet < '%s' | wc -l", f->early_cpio));
	f->main_data = sh_number (g_strdup_printf ("cd '%s'/root && find . ! -type d -printf "
						   "'%%s\\n' | awk '{s+=$1} END {print s+0}'",
						   f->dir));
	f->early_data = sh_number (g_strdup_printf ("cd '%s'/early && find . ! -type d -printf "
						    "'%%s\\n' | awk '{s+=$1} END {print s+0}'",
						    f->dir));
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
	vmi_test_tmpdir_free (f->dir);
	g_free (f->main_cpio);
	g_free (f->early_cpio);
}

static gboolean
require_cpio (Fixture *f)
{
	if (f->main_cpio == NULL) {
		g_test_skip ("cpio is not installed (Debian package cpio)");
		return FALSE;
	}
	return TRUE;
}

typedef struct {
	guint entries;
	guint64 data;
	const char *compression;
	guint segments;
	gboolean microcode;
	gboolean truncated;
} Expect;

static void
check_ramdisk (const char *path, const Expect *e)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = boot_test_facts (&vmi_ari_plugin, path, &error);
	g_autoptr(GVariant) segments = NULL;
	g_autofree const char **microcode = NULL;
	const char *s = NULL;
	guint32 entries = 0;
	guint64 total = 0;
	gboolean has_init = FALSE, truncated = TRUE;

	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "compression", "&s", &s));
	g_assert_cmpstr (s, ==, e->compression);
	g_assert_true (g_variant_lookup (facts, "entries", "u", &entries));
	g_assert_cmpuint (entries, ==, e->entries);
	g_assert_true (g_variant_lookup (facts, "total-size", "t", &total));
	g_assert_cmpuint (total, ==, e->data);
	g_assert_true (g_variant_lookup (facts, "has-init", "b", &has_init));
	g_assert_true (has_init);
	g_assert_true (g_variant_lookup (facts, "truncated-scan", "b", &truncated));
	g_assert_cmpint (truncated, ==, e->truncated);
	segments = g_variant_lookup_value (facts, "segments", G_VARIANT_TYPE ("aa{sv}"));
	g_assert_nonnull (segments);
	g_assert_cmpuint (g_variant_n_children (segments), ==, e->segments);
	g_assert_true (g_variant_lookup (facts, "early-microcode", "^a&s", &microcode));
	if (e->microcode) {
		g_assert_cmpuint (g_strv_length ((char **) microcode), ==, 2);
		g_assert_cmpstr (microcode[0], ==, "GenuineIntel");
		g_assert_cmpstr (microcode[1], ==, "AuthenticAMD");
	} else {
		g_assert_cmpuint (g_strv_length ((char **) microcode), ==, 0);
	}
	boot_test_check_qemu_img (path);
	/* A ramdisk is a raw file unless the caller classifies. */
	g_assert_cmpstr (boot_test_detect (&vmi_ari_plugin, path, FALSE), ==, "raw");
	g_assert_cmpstr (boot_test_detect (&vmi_ari_plugin, path, TRUE), ==, "ari");
	vmi_test_save_seed ("ari", path);
}

static void
test_plain (Fixture *f, gconstpointer data)
{
	Expect e = { f->main_entries, f->main_data, "none", 1, FALSE, FALSE };

	if (!require_cpio (f))
		return;
	g_assert_cmpuint (f->main_entries, >=, 10);
	check_ramdisk (f->main_cpio, &e);
}

static const struct {
	const char *command;
	const char *compression;
} compressors[] = {
	{ "gzip -9 -c", "gzip" },
	{ "xz --check=crc32 -c", "xz" },
	{ "xz --format=lzma -c", "lzma" },
	{ "zstd -q -c", "zstd" },
	{ "lz4 -l -q -c", "lz4-legacy" }, /* what the kernel's build and initramfs-tools use */
	{ "lz4 -q -c", "lz4" },
	{ "bzip2 -c", "bzip2" },
};

static gboolean
have_tool (const char *command)
{
	g_autofree char *tool = g_strndup (command, strcspn (command, " "));
	g_autofree char *path = g_find_program_in_path (tool);

	if (path == NULL)
		g_test_message ("%s is not installed: skipping it", tool);
	return path != NULL;
}

static void
test_compressed (Fixture *f, gconstpointer data)
{
	if (!require_cpio (f))
		return;
	for (gsize i = 0; i < G_N_ELEMENTS (compressors); i++) {
		g_autofree char *out = g_strdup_printf ("%s/initrd.%s", f->dir,
							compressors[i].compression);
		Expect e = { f->main_entries, f->main_data, compressors[i].compression, 1, FALSE,
			     FALSE };

		if (!have_tool (compressors[i].command))
			continue;
		g_assert_cmpint (vmi_test_sh (NULL, "%s '%s' > '%s'", compressors[i].command,
					      f->main_cpio, out),
				 ==, 0);
		check_ramdisk (out, &e);
	}
}

/*
 * Early microcode in a plain cpio, then the compressed main archive: as initramfs-tools writes
 * it (no padding) and as dracut does (padded to 512 bytes).
 */
static void
test_early_microcode (Fixture *f, gconstpointer data)
{
	if (!require_cpio (f))
		return;
	for (gsize i = 0; i < G_N_ELEMENTS (compressors); i++) {
		for (guint pad = 0; pad < 2; pad++) {
			g_autofree char *out = g_strdup_printf ("%s/initrd-early%s.%s", f->dir,
								pad ? "-padded" : "",
								compressors[i].compression);
			g_autofree char *pad_cmd = pad ? g_strdup_printf ("truncate -s %%512 '%s'", out)
						       : g_strdup ("true");
			Expect e = { f->main_entries + f->early_entries, f->main_data + f->early_data,
				     compressors[i].compression, 2, TRUE, FALSE };

			if (!have_tool (compressors[i].command))
				continue;
			g_assert_cmpint (vmi_test_sh (NULL,
						      "cp '%s' '%s' && %s && %s '%s' >> '%s'",
						      f->early_cpio, out, pad_cmd,
						      compressors[i].command, f->main_cpio, out),
					 ==, 0);
			check_ramdisk (out, &e);
		}
	}
}

/* Two plain archives back to back (a plain early cpio, then a plain main one). */
static void
test_two_plain (Fixture *f, gconstpointer data)
{
	g_autofree char *out = NULL;
	Expect e;

	if (!require_cpio (f))
		return;
	out = g_build_filename (f->dir, "two.cpio", NULL);
	g_assert_cmpint (vmi_test_sh (NULL, "cat '%s' '%s' > '%s'", f->early_cpio, f->main_cpio, out),
			 ==, 0);
	e = (Expect){ f->main_entries + f->early_entries, f->main_data + f->early_data, "none", 2,
		      TRUE, FALSE };
	check_ramdisk (out, &e);
}

/* A bomb: 80 MiB of zeros in one file, which zstd packs into a few KiB. The scan stops. */
static void
test_scan_limit (Fixture *f, gconstpointer data)
{
	g_autofree char *out = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	gboolean truncated = FALSE;
	guint64 examined = 0;
	gint64 start;

	if (!require_cpio (f) || !have_tool ("zstd"))
		return;
	out = g_build_filename (f->dir, "bomb.zst", NULL);
	g_assert_cmpint (vmi_test_sh (NULL,
				      "cd '%s' && mkdir bomb && cp root/init bomb/init && "
				      "truncate -s 80M bomb/zeros && cd bomb && "
				      "printf 'init\\nzeros\\n' | cpio -o -H newc --quiet | zstd -q -c > '%s'",
				      f->dir, out),
			 ==, 0);
	start = g_get_monotonic_time ();
	facts = boot_test_facts (&vmi_ari_plugin, out, &error);
	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "truncated-scan", "b", &truncated));
	g_assert_true (truncated);
	g_assert_true (g_variant_lookup (facts, "decompressed-size", "t", &examined));
	g_assert_cmpuint (examined, ==, 64u * 1024 * 1024);
	g_test_message ("64 MiB examined in %" G_GINT64_FORMAT " ms",
			(g_get_monotonic_time () - start) / 1000);
	vmi_test_save_seed ("ari", out);
}

/* More entries than the scan counts: it stops at 100 000 and says so. */
static void
test_entry_limit (Fixture *f, gconstpointer data)
{
	g_autoptr(GString) cpio = g_string_new (NULL);
	g_autofree char *path = g_build_filename (f->dir, "many.cpio", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	gboolean truncated = FALSE;
	guint32 entries = 0;

	for (guint i = 0; i < 100005; i++) {
		/* 110-byte header, 8-byte name "f0000000" + NUL, padded to 120. */
		g_string_append_printf (cpio,
					"070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X"
					"f%07u%c%c",
					i + 1, 0100644u, 0u, 0u, 1u, 0u, 0u, 0u, 0u, 0u, 0u, 9u, 0u, i,
					0, 0);
	}
	g_string_append_printf (cpio, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
				0u, 0u, 0u, 0u, 1u, 0u, 0u, 0u, 0u, 0u, 0u, 11u, 0u);
	g_string_append_len (cpio, "TRAILER!!!\0\0\0\0", 14);
	g_assert_cmpuint (cpio->len % 4, ==, 0);
	boot_test_write (path, cpio->str, cpio->len);
	facts = boot_test_facts (&vmi_ari_plugin, path, &error);
	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "truncated-scan", "b", &truncated));
	g_assert_true (truncated);
	g_assert_true (g_variant_lookup (facts, "entries", "u", &entries));
	g_assert_cmpuint (entries, ==, 100000);
	if (boot_test_have ("cpio"))
		g_assert_cmpint (vmi_test_sh (NULL, "test $(cpio -it --quiet < '%s' | wc -l) = 100005",
					      path),
				 ==, 0);
}

static void
expect_error (const char *path, int code, const char *fragment)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = boot_test_facts (&vmi_ari_plugin, path, &error);

	g_assert_null (facts);
	g_assert_error (error, VMI_ERROR, code);
	if (g_test_verbose ())
		g_printerr ("# %s: %s\n", path, error->message);
	g_assert_nonnull (strstr (error->message, fragment));
	vmi_test_save_seed ("ari", path);
}

/* A copy of the plain main archive with len bytes at offset replaced. */
static char *
patched (Fixture *f, const char *name, gsize offset, const char *bytes, gssize cut)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	char *path = g_build_filename (f->dir, name, NULL);

	g_assert_true (g_file_get_contents (f->main_cpio, &data, &len, NULL));
	memcpy (data + offset, bytes, strlen (bytes));
	boot_test_write (path, data, cut >= 0 ? (gsize) cut : len);
	return path;
}

static void
test_bad (Fixture *f, gconstpointer data)
{
	g_autofree char *absurd = NULL, *zero = NULL, *hex = NULL, *cut = NULL, *text = NULL;
	g_autofree char *garbage = NULL, *half = NULL, *elf = NULL, *empty = NULL;
	g_autofree char *q = g_shell_quote (f->dir);
	g_autofree guint8 *random = g_malloc (8192);
	g_autoptr(GRand) rand = g_rand_new_with_seed (9);

	if (!require_cpio (f))
		return;
	/* The first header's c_namesize (offset 94): a megabyte, zero, not hex. */
	absurd = patched (f, "absurd-name.cpio", 94, "00100000", -1);
	expect_error (absurd, VMI_ERROR_CORRUPT_IMAGE, "name of 1048576 bytes");
	zero = patched (f, "zero-name.cpio", 94, "00000000", -1);
	expect_error (zero, VMI_ERROR_CORRUPT_IMAGE, "name of 0 bytes");
	hex = patched (f, "not-hex.cpio", 54, "0000zz00", -1);
	expect_error (hex, VMI_ERROR_CORRUPT_IMAGE, "not 8 hex digits");
	/* Cut inside the 150 KiB of bin/sh. */
	cut = patched (f, "cut.cpio", 0, "070701", 100 * 1024);
	expect_error (cut, VMI_ERROR_CORRUPT_IMAGE, "but the data ends");

	/* Compressed, but not a cpio: a .gz of text, a compressed kernel. */
	g_assert_cmpint (vmi_test_sh (NULL,
				      "cd %s && echo 'just some text, not a ramdisk' | gzip > text.gz && "
				      "printf '\\177ELF\\002\\001\\001' | cat - root/bin/sh | xz -c > "
				      "vmlinux.xz && : > empty",
				      q),
			 ==, 0);
	text = g_build_filename (f->dir, "text.gz", NULL);
	expect_error (text, VMI_ERROR_UNKNOWN_FORMAT, "not a cpio archive");
	elf = g_build_filename (f->dir, "vmlinux.xz", NULL);
	expect_error (elf, VMI_ERROR_UNKNOWN_FORMAT, "aki");
	empty = g_build_filename (f->dir, "empty", NULL);
	expect_error (empty, VMI_ERROR_UNKNOWN_FORMAT, "empty");
	/* Garbage behind the magic, and a good stream cut in half. */
	for (guint i = 0; i < 8192; i++)
		random[i] = (guint8) g_rand_int (rand);
	memcpy (random, "\x1f\x8b\x08\x00\0\0\0\0\0\x03", 10);
	garbage = g_build_filename (f->dir, "garbage.gz", NULL);
	boot_test_write (garbage, random, 8192);
	expect_error (garbage, VMI_ERROR_CORRUPT_IMAGE, "gzip stream at offset 0");
	g_assert_cmpint (vmi_test_sh (NULL, "cd %s && gzip -c main.cpio | head -c 60000 > half.gz", q),
			 ==, 0);
	half = g_build_filename (f->dir, "half.gz", NULL);
	expect_error (half, VMI_ERROR_CORRUPT_IMAGE, "gzip stream");
	/* Random bytes: no cpio, no compression. */
	random[0] = 'x';
	g_free (garbage);
	garbage = g_build_filename (f->dir, "random", NULL);
	boot_test_write (garbage, random, 8192);
	expect_error (garbage, VMI_ERROR_UNKNOWN_FORMAT, "not a ramdisk");
}

/* Bytes after the last archive that the kernel would not unpack: reported, not refused. */
static void
test_trailing (Fixture *f, gconstpointer data)
{
	g_autofree char *out = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	guint64 trailing = 0;

	if (!require_cpio (f))
		return;
	out = g_build_filename (f->dir, "trailing.cpio", NULL);
	g_assert_cmpint (vmi_test_sh (NULL, "cp '%s' '%s' && printf 'junk' >> '%s'", f->main_cpio,
				      out, out),
			 ==, 0);
	facts = boot_test_facts (&vmi_ari_plugin, out, &error);
	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "trailing-bytes", "t", &trailing));
	g_assert_cmpuint (trailing, ==, 4);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD ("/ari/plain", test_plain);
	ADD ("/ari/compressed", test_compressed);
	ADD ("/ari/early-microcode", test_early_microcode);
	ADD ("/ari/two-plain", test_two_plain);
	ADD ("/ari/scan-limit", test_scan_limit);
	ADD ("/ari/entry-limit", test_entry_limit);
	ADD ("/ari/bad", test_bad);
	ADD ("/ari/trailing", test_trailing);
	return g_test_run ();
}
