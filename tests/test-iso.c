/* The ISO 9660 plugin against images made by xorriso, Debian's ipxe.iso and the corpus. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_iso_plugin;
extern const VmiFormatPlugin vmi_raw_plugin;

static gboolean
require_xorriso (void)
{
	return vmi_test_require_program ("xorriso", "xorriso", "cannot make ISOs");
}

/* An ISO of a small tree; extra are mkisofs options (Joliet, Rock Ridge, boot images). */
static char *
make_iso (const char *dir, const char *extra)
{
	g_autofree char *tree = g_build_filename (dir, "tree", NULL);
	char *iso = g_build_filename (dir, "test.iso", NULL);

	g_assert_cmpint (vmi_test_sh (NULL,
				      "mkdir -p '%s/boot' && head -c 2048 /dev/urandom > '%s/boot/bios.img' && "
				      "head -c 65536 /dev/urandom > '%s/boot/efi.img' && "
				      "echo hello > '%s/README.TXT' && "
				      "xorriso -as mkisofs -quiet -V TESTVOL -publisher 'vmimaged tests' %s "
				      "-o '%s' '%s'",
				      tree, tree, tree, tree, extra, iso, tree),
			 ==, 0);
	return iso;
}

static GVariant *
facts_of (VmiSource *source)
{
	g_autoptr(GVariant) info = vmi_source_to_variant (source);

	return g_variant_lookup_value (info, "format-specific", G_VARIANT_TYPE_VARDICT);
}

static gboolean
fact_bool (GVariant *facts, const char *key)
{
	gboolean value = FALSE;

	g_assert_true (g_variant_lookup (facts, key, "b", &value));
	return value;
}

static void
assert_same_as_qemu (VmiSource *source, const char *path)
{
	g_autoptr(JsonObject) qemu = vmi_test_qemu_img_info (path, NULL);

	g_assert_cmpstr (json_object_get_string_member (qemu, "format"), ==, "raw");
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==,
			  vmi_test_json_u64 (qemu, "virtual-size"));
}

static void
test_iso_plain (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *iso = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL;
	const char *volume_id = NULL;

	if (!require_xorriso () || !vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	iso = make_iso (dir, "--norock");
	source = vmi_test_open (&vmi_iso_plugin, iso, NULL);
	facts = facts_of (source);
	g_assert_true (g_variant_lookup (facts, "volume-id", "&s", &volume_id));
	g_assert_cmpstr (volume_id, ==, "TESTVOL");
	g_assert_false (fact_bool (facts, "joliet"));
	g_assert_false (fact_bool (facts, "rock-ridge"));
	g_assert_false (fact_bool (facts, "el-torito"));
	g_assert_false (fact_bool (facts, "hybrid"));
	g_assert_false (fact_bool (facts, "truncated"));
	assert_same_as_qemu (source, iso);
	vmi_test_save_seed ("iso", iso);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_iso_bootable_joliet_rock_ridge (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *iso = NULL;
	g_autofree char *out = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GVariant) entries = NULL;
	g_autoptr(GVariant) first = NULL;
	g_autoptr(GVariant) second = NULL;
	g_autoptr(GError) error = NULL;
	const char *platform = NULL, *media = NULL, *publisher = NULL;

	if (!require_xorriso () || !vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	iso = make_iso (dir, "-J -R -b boot/bios.img -no-emul-boot -boot-load-size 4 "
			     "-eltorito-alt-boot -e boot/efi.img -no-emul-boot");
	source = vmi_test_open (&vmi_iso_plugin, iso, NULL);
	facts = facts_of (source);
	g_assert_true (fact_bool (facts, "joliet"));
	g_assert_true (fact_bool (facts, "rock-ridge"));
	g_assert_true (fact_bool (facts, "el-torito"));
	g_assert_true (fact_bool (facts, "bios-bootable"));
	g_assert_true (fact_bool (facts, "uefi-bootable"));
	g_assert_true (g_variant_lookup (facts, "publisher", "&s", &publisher));
	/* a-characters are upper case: mkisofs folds the publisher it is given */
	g_assert_cmpstr (publisher, ==, "VMIMAGED TESTS");
	entries = g_variant_lookup_value (facts, "boot-entries", G_VARIANT_TYPE ("aa{sv}"));
	g_assert_cmpuint (g_variant_n_children (entries), ==, 2);
	first = g_variant_get_child_value (entries, 0);
	g_assert_true (g_variant_lookup (first, "platform", "&s", &platform));
	g_assert_cmpstr (platform, ==, "bios");
	g_assert_true (g_variant_lookup (first, "media", "&s", &media));
	g_assert_cmpstr (media, ==, "no-emulation");
	second = g_variant_get_child_value (entries, 1);
	g_assert_true (g_variant_lookup (second, "platform", "&s", &platform));
	g_assert_cmpstr (platform, ==, "uefi");
	assert_same_as_qemu (source, iso);
	vmi_test_save_seed ("iso", iso);

	/* An ISO reads as a raw disk: converting it to raw gives the same bytes. */
	out = g_build_filename (dir, "out.raw", NULL);
	g_assert_true (vmi_test_convert (&vmi_iso_plugin, iso, &vmi_raw_plugin, out, NULL, &error));
	g_assert_no_error (error);
	g_assert_cmpint (vmi_test_sh (NULL, "cmp '%s' '%s'", iso, out), ==, 0);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Debian's ipxe.iso: isohybrid (an MBR in the system area), BIOS and UEFI boot entries. */
static void
test_iso_ipxe_hybrid (void)
{
	const char *path = "/usr/lib/ipxe/ipxe.iso";
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL;
	const char *table = NULL;

	if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
		g_test_skip ("/usr/lib/ipxe/ipxe.iso is absent (Debian package ipxe)");
		return;
	}
	if (!vmi_test_require_qemu_img ())
		return;
	source = vmi_test_open (&vmi_iso_plugin, path, NULL);
	facts = facts_of (source);
	g_assert_true (fact_bool (facts, "hybrid"));
	g_assert_true (g_variant_lookup (facts, "partition-table", "&s", &table));
	g_assert_cmpstr (table, ==, "mbr");
	g_assert_true (fact_bool (facts, "el-torito"));
	g_assert_true (fact_bool (facts, "bios-bootable"));
	g_assert_true (fact_bool (facts, "uefi-bootable"));
	assert_same_as_qemu (source, path);
}

/* The corpus ISO is the first 1 MiB of an 18 MB disc. */
static void
test_iso_corpus_truncated (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL;
	const char *volume_id = NULL;
	guint64 volume_size = 0;

	if (vmi_test_corpus_dir () == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	path = vmi_test_corpus_fetch ("govmomi-ttylinux-pc_i486-16.1.iso.bz2", dir);
	source = vmi_test_open (&vmi_iso_plugin, path, NULL);
	facts = facts_of (source);
	g_assert_true (g_variant_lookup (facts, "volume-id", "&s", &volume_id));
	g_assert_cmpstr (volume_id, ==, "ttylinux 16.1 i486");
	g_assert_true (g_variant_lookup (facts, "volume-size", "t", &volume_size));
	g_assert_cmpuint (volume_size, ==, 18030592);
	g_assert_true (fact_bool (facts, "truncated"));
	g_assert_true (fact_bool (facts, "joliet"));
	g_assert_true (fact_bool (facts, "el-torito"));
	g_assert_false (fact_bool (facts, "hybrid"));
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 1048576);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A 40 KiB file holding one volume descriptor sector at 32 KiB, as the caller sets it up. */
static char *
make_descriptor_file (const char *dir, const char *name, const guint8 *vd)
{
	g_autofree guint8 *contents = g_malloc0 (40 * 1024);
	char *path = g_build_filename (dir, name, NULL);

	memcpy (contents + 32 * 1024, vd, 2048);
	vmi_test_write_file (path, contents, 40 * 1024);
	vmi_test_save_seed ("iso", path);
	return path;
}

static void
expect_error (const char *path, VmiError code, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = vmi_test_open (&vmi_iso_plugin, path, &error);

	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, (gint) code);
	g_test_message ("%s: %s", path, error->message);
	g_assert_nonnull (strstr (error->message, needle));
}

static void
test_iso_bad_inputs (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	guint8 vd[2048] = { 0 };
	g_autofree char *short_file = g_build_filename (dir, "short.iso", NULL);
	g_autofree char *no_magic = NULL;
	g_autofree char *no_pvd = NULL;
	g_autofree char *block_size = NULL;

	g_assert_cmpuint (vmi_iso_plugin.probe (vd, sizeof vd, sizeof vd), ==, VMI_PROBE_NO);
	vmi_test_write_file (short_file, "CD001", 5);
	expect_error (short_file, VMI_ERROR_CORRUPT_IMAGE, "too short");

	no_magic = make_descriptor_file (dir, "no-magic.iso", vd);
	expect_error (no_magic, VMI_ERROR_UNKNOWN_FORMAT, "CD001");

	/* A terminator straight away: no primary volume descriptor. */
	vd[0] = 255;
	memcpy (vd + 1, "CD001", 5);
	vd[6] = 1;
	no_pvd = make_descriptor_file (dir, "no-pvd.iso", vd);
	expect_error (no_pvd, VMI_ERROR_CORRUPT_IMAGE, "no primary volume descriptor");

	/* A primary descriptor with a 4096-byte logical block. */
	vd[0] = 1;
	vd[128] = 0x00;
	vd[129] = 0x10;
	block_size = make_descriptor_file (dir, "block-size.iso", vd);
	expect_error (block_size, VMI_ERROR_CORRUPT_IMAGE, "4096");
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A boot record pointing at a catalog whose validation entry is wrong, or beyond the file. */
static void
test_iso_bad_boot_catalog (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *iso = NULL;
	g_autofree char *bad = NULL;
	g_autofree char *beyond = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL;
	guint32 lba = 0;
	g_autofree guint8 *contents = NULL;
	gsize len = 0;
	guint64 boot_record = 0;

	if (!require_xorriso ())
		return;
	dir = vmi_test_tmpdir_new ();
	iso = make_iso (dir, "-b boot/bios.img -no-emul-boot -boot-load-size 4");
	g_assert_true (g_file_get_contents (iso, (char **) &contents, &len, NULL));
	for (guint64 sector = 16; sector < 32; sector++) {
		if (contents[sector * 2048] == 0 &&
		    memcmp (contents + sector * 2048 + 7, "EL TORITO", 9) == 0)
			boot_record = sector * 2048;
	}
	g_assert_cmpuint (boot_record, !=, 0);
	memcpy (&lba, contents + boot_record + 0x47, 4);
	lba = GUINT32_FROM_LE (lba);

	contents[(gsize) lba * 2048 + 30] = 0; /* the 55 AA key of the validation entry */
	bad = g_build_filename (dir, "bad-catalog.iso", NULL);
	vmi_test_write_file (bad, contents, (gssize) len);
	expect_error (bad, VMI_ERROR_CORRUPT_IMAGE, "validation entry");

	lba = GUINT32_TO_LE (0x7fffffff);
	memcpy (contents + boot_record + 0x47, &lba, 4);
	beyond = g_build_filename (dir, "catalog-beyond.iso", NULL);
	vmi_test_write_file (beyond, contents, (gssize) len);
	source = vmi_test_open (&vmi_iso_plugin, beyond, NULL);
	facts = facts_of (source);
	g_assert_true (fact_bool (facts, "boot-catalog-missing"));
	g_assert_false (fact_bool (facts, "bios-bootable"));
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/iso/plain", test_iso_plain);
	g_test_add_func ("/iso/bootable-joliet-rock-ridge", test_iso_bootable_joliet_rock_ridge);
	g_test_add_func ("/iso/ipxe-hybrid", test_iso_ipxe_hybrid);
	g_test_add_func ("/iso/corpus-truncated", test_iso_corpus_truncated);
	g_test_add_func ("/iso/bad-inputs", test_iso_bad_inputs);
	g_test_add_func ("/iso/bad-boot-catalog", test_iso_bad_boot_catalog);
	return g_test_run ();
}
