/*
 * Tests of the machine image plugin: disks partitioned by sfdisk (GPT and MBR) with file systems
 * made by mkfs in separate files and copied in, file systems on the whole disk, and damaged
 * tables. sfdisk --json and blkid are the oracles; qemu-img says the disk is raw.
 */
#include <zlib.h>

#include "boot-test-common.h"

extern const VmiFormatPlugin vmi_ami_plugin;

#define MiB (1024u * 1024u)

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

static gboolean
require (const char *const *tools)
{
	for (guint i = 0; tools[i] != NULL; i++) {
		g_autofree char *path = g_find_program_in_path (tools[i]);

		if (path == NULL) {
			g_autofree char *msg = g_strdup_printf (
				"%s is not installed (Debian packages fdisk, e2fsprogs, dosfstools, "
				"util-linux)",
				tools[i]);
			g_test_skip (msg);
			return FALSE;
		}
	}
	return TRUE;
}

/* blkid's TYPE, LABEL and UUID of a file system image, as "type label uuid". */
static char *
blkid (const char *path)
{
	g_autofree char *out = NULL;

	g_assert_cmpint (vmi_test_sh (&out,
				      "blkid -p -o export '%s' | awk -F= '$1==\"TYPE\"{t=$2} "
				      "$1==\"LABEL\"{l=$2} $1==\"UUID\"{u=$2} END {print t\" \"l\" \"u}'",
				      path),
			 ==, 0);
	return g_strdup (g_strstrip (out));
}

static char *
facts_fs (GVariant *facts)
{
	const char *type = "", *label = "", *uuid = "";

	g_variant_lookup (facts, "filesystem", "&s", &type);
	g_variant_lookup (facts, "filesystem-label", "&s", &label);
	g_variant_lookup (facts, "filesystem-uuid", "&s", &uuid);
	return g_strdup_printf ("%s %s %s", type, label, uuid);
}

/* The file system facts of partition i. */
static char *
partition_fs (GVariant *facts, gsize i)
{
	g_autoptr(GVariant) parts = g_variant_lookup_value (facts, "partitions",
							     G_VARIANT_TYPE ("aa{sv}"));
	g_autoptr(GVariant) p = NULL;

	g_assert_nonnull (parts);
	g_assert_cmpuint (i, <, g_variant_n_children (parts));
	p = g_variant_get_child_value (parts, i);
	return facts_fs (p);
}

static JsonObject *
sfdisk_json (const char *path)
{
	g_autofree char *out = NULL;
	g_autoptr(JsonParser) parser = json_parser_new ();
	g_autoptr(GError) error = NULL;

	g_assert_cmpint (vmi_test_sh (&out, "sfdisk --json '%s'", path), ==, 0);
	json_parser_load_from_data (parser, out, -1, &error);
	g_assert_no_error (error);
	return json_object_ref (json_object_get_object_member (
		json_node_get_object (json_parser_get_root (parser)), "partitiontable"));
}

/* Every partition sfdisk lists is in the facts with the same start, size and type. */
static void
compare_with_sfdisk (const char *path, GVariant *facts)
{
	g_autoptr(JsonObject) table = sfdisk_json (path);
	g_autoptr(GVariant) parts = g_variant_lookup_value (facts, "partitions",
							     G_VARIANT_TYPE ("aa{sv}"));
	JsonArray *expected = json_object_get_array_member (table, "partitions");
	const char *label = json_object_get_string_member (table, "label");
	const char *s = NULL;

	g_assert_true (g_variant_lookup (facts, "partition-table", "&s", &s));
	g_assert_cmpstr (s, ==, g_str_equal (label, "dos") ? "mbr" : label);
	if (g_str_equal (label, "gpt")) {
		g_assert_true (g_variant_lookup (facts, "disk-guid", "&s", &s));
		g_assert_cmpstr (s, ==, json_object_get_string_member (table, "id"));
	}
	g_assert_nonnull (parts);
	g_assert_cmpuint (g_variant_n_children (parts), ==, json_array_get_length (expected));
	for (guint i = 0; i < json_array_get_length (expected); i++) {
		JsonObject *e = json_array_get_object_element (expected, i);
		g_autoptr(GVariant) p = g_variant_get_child_value (parts, i);
		guint64 start = 0, size = 0;
		gboolean bootable = FALSE;

		g_assert_true (g_variant_lookup (p, "start", "t", &start));
		g_assert_cmpuint (start, ==, json_object_get_int_member (e, "start") * 512);
		g_assert_true (g_variant_lookup (p, "size", "t", &size));
		g_assert_cmpuint (size, ==, json_object_get_int_member (e, "size") * 512);
		if (g_str_equal (label, "gpt")) {
			g_assert_true (g_variant_lookup (p, "type-guid", "&s", &s));
			g_assert_cmpstr (s, ==, json_object_get_string_member (e, "type"));
			g_assert_true (g_variant_lookup (p, "guid", "&s", &s));
			g_assert_cmpstr (s, ==, json_object_get_string_member (e, "uuid"));
			g_assert_true (g_variant_lookup (p, "name", "&s", &s));
			g_assert_cmpstr (s, ==, json_object_get_string_member (e, "name"));
		} else {
			g_autofree char *type = g_strdup_printf (
				"0x%02x", (guint) g_ascii_strtoull (
						  json_object_get_string_member (e, "type"), NULL, 16));

			g_assert_true (g_variant_lookup (p, "type", "&s", &s));
			g_assert_cmpstr (s, ==, type);
			g_assert_true (g_variant_lookup (p, "bootable", "b", &bootable));
			g_assert_cmpint (bootable, ==,
					 json_object_has_member (e, "bootable") &&
						 json_object_get_boolean_member (e, "bootable"));
		}
	}
}

static void
check_detected (const char *path)
{
	boot_test_check_qemu_img (path);
	/* Any raw disk is a machine image: only when the caller classifies. */
	g_assert_cmpstr (boot_test_detect (&vmi_ami_plugin, path, FALSE), ==, "raw");
	g_assert_cmpstr (boot_test_detect (&vmi_ami_plugin, path, TRUE), ==, "ami");
}

/* An EFI system partition (FAT32) and a Linux root (ext4) on GPT. */
static void
test_gpt (Fixture *f, gconstpointer data)
{
	static const char *const tools[] = { "sfdisk", "mkfs.vfat", "mkfs.ext4", "blkid", NULL };
	g_autofree char *q = g_shell_quote (f->dir);
	g_autofree char *disk = g_build_filename (f->dir, "gpt.img", NULL);
	g_autofree char *esp = g_build_filename (f->dir, "esp.img", NULL);
	g_autofree char *root = g_build_filename (f->dir, "root.img", NULL);
	g_autofree char *expected = NULL, *got = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	guint64 offset = 0;
	gboolean truncated = TRUE;

	if (!require (tools))
		return;
	g_assert_cmpint (vmi_test_sh (NULL,
				      "cd %s && truncate -s 80M gpt.img && "
				      "printf 'label: gpt\\nsize=36M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, "
				      "name=\"EFI system\"\\ntype=0FC63DAF-8483-4772-8E79-3D69D8477DE4, "
				      "name=\"root\"\\n' | sfdisk -q gpt.img && "
				      "truncate -s 36M esp.img && mkfs.vfat -F 32 -n ESP esp.img >/dev/null && "
				      "truncate -s 42M root.img && mkfs.ext4 -q -F -L rootfs root.img && "
				      "dd if=esp.img of=gpt.img bs=1M seek=1 conv=notrunc,sparse status=none && "
				      "dd if=root.img of=gpt.img bs=1M seek=37 conv=notrunc,sparse status=none",
				      q),
			 ==, 0);
	facts = boot_test_facts (&vmi_ami_plugin, disk, &error);
	g_assert_no_error (error);
	compare_with_sfdisk (disk, facts);
	/* The first partition's file system, as blkid sees it in its own file. */
	expected = blkid (esp);
	got = facts_fs (facts);
	g_assert_cmpstr (got, ==, expected);
	g_assert_true (g_variant_lookup (facts, "filesystem-offset", "t", &offset));
	g_assert_cmpuint (offset, ==, 1 * MiB);
	g_assert_true (g_variant_lookup (facts, "truncated", "b", &truncated));
	g_assert_false (truncated);
	/* Each partition says what it holds: the ESP and the root file system. */
	g_free (got);
	got = partition_fs (facts, 0);
	g_assert_cmpstr (got, ==, expected);
	g_free (got);
	g_free (expected);
	expected = blkid (root);
	got = partition_fs (facts, 1);
	g_assert_cmpstr (got, ==, expected);
	check_detected (disk);
}

/* A bootable ext4 partition and swap on MBR. */
static void
test_mbr (Fixture *f, gconstpointer data)
{
	static const char *const tools[] = { "sfdisk", "mkfs.ext4", "mkswap", "blkid", NULL };
	g_autofree char *q = g_shell_quote (f->dir);
	g_autofree char *disk = g_build_filename (f->dir, "mbr.img", NULL);
	g_autofree char *root = g_build_filename (f->dir, "root.img", NULL);
	g_autofree char *swap = g_build_filename (f->dir, "swap.img", NULL);
	g_autofree char *expected = NULL, *got = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;

	if (!require (tools))
		return;
	g_assert_cmpint (vmi_test_sh (NULL,
				      "cd %s && truncate -s 48M mbr.img && "
				      "printf 'label: dos\\nsize=32M, type=83, bootable\\ntype=82\\n' | "
				      "sfdisk -q mbr.img && "
				      "truncate -s 32M root.img && mkfs.ext4 -q -F -L cloudimg-rootfs "
				      "-U 2f3a0c4e-1b2d-4e5f-8a9b-0c1d2e3f4a5b root.img && "
				      "truncate -s 15M swap.img && mkswap -L swap swap.img >/dev/null && "
				      "dd if=root.img of=mbr.img bs=1M seek=1 conv=notrunc,sparse status=none && "
				      "dd if=swap.img of=mbr.img bs=1M seek=33 conv=notrunc,sparse status=none",
				      q),
			 ==, 0);
	facts = boot_test_facts (&vmi_ami_plugin, disk, &error);
	g_assert_no_error (error);
	compare_with_sfdisk (disk, facts);
	expected = blkid (root);
	got = facts_fs (facts);
	g_assert_cmpstr (got, ==, expected);
	g_assert_cmpstr (got, ==, "ext4 cloudimg-rootfs 2f3a0c4e-1b2d-4e5f-8a9b-0c1d2e3f4a5b");
	g_free (got);
	g_free (expected);
	got = partition_fs (facts, 1);
	expected = blkid (swap);
	g_assert_cmpstr (got, ==, expected);
	check_detected (disk);
}

/* Logical partitions in an extended one, as Debian's installer lays out swap. */
static void
test_mbr_logical (Fixture *f, gconstpointer data)
{
	static const char *const tools[] = { "sfdisk", "mkfs.vfat", "blkid", NULL };
	g_autofree char *q = g_shell_quote (f->dir);
	g_autofree char *disk = g_build_filename (f->dir, "logical.img", NULL);
	g_autofree char *boot = g_build_filename (f->dir, "boot.img", NULL);
	g_autofree char *expected = NULL, *got = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GVariant) parts = NULL;
	g_autoptr(GVariant) last = NULL;
	guint32 index = 0;

	if (!require (tools))
		return;
	g_assert_cmpint (vmi_test_sh (NULL,
				      "cd %s && truncate -s 24M logical.img && "
				      "printf 'label: dos\nsize=4M, type=c\ntype=5\nsize=8M, type=83\n"
				      "type=82\n' | sfdisk -q logical.img && "
				      "truncate -s 4M boot.img && mkfs.vfat -n BOOT boot.img >/dev/null && "
				      "dd if=boot.img of=logical.img bs=1M seek=1 conv=notrunc status=none",
				      q),
			 ==, 0);
	facts = boot_test_facts (&vmi_ami_plugin, disk, &error);
	g_assert_no_error (error);
	compare_with_sfdisk (disk, facts);
	parts = g_variant_lookup_value (facts, "partitions", G_VARIANT_TYPE ("aa{sv}"));
	g_assert_cmpuint (g_variant_n_children (parts), ==, 4);
	last = g_variant_get_child_value (parts, 3);
	g_assert_true (g_variant_lookup (last, "index", "u", &index));
	g_assert_cmpuint (index, ==, 6);
	expected = blkid (boot);
	got = facts_fs (facts);
	g_assert_cmpstr (got, ==, expected);
	vmi_test_save_seed ("ami", disk);
}

/* An EBR chain that points back at itself ends; nothing loops. */
static void
test_ebr_loop (Fixture *f, gconstpointer data)
{
	g_autofree guint8 *disk = g_malloc0 (64 * 1024);
	g_autofree char *path = g_build_filename (f->dir, "ebr-loop.img", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GVariant) parts = NULL;
	guint8 *ebr = disk + 8 * 512;

	/* Extended partition at LBA 8; its EBR holds a logical partition and a link to LBA 8. */
	disk[446 + 4] = 0x05;
	memcpy (disk + 446 + 8, "\x08\x00\x00\x00\x78\x00\x00\x00", 8);
	disk[510] = 0x55;
	disk[511] = 0xaa;
	ebr[446 + 4] = 0x83;
	memcpy (ebr + 446 + 8, "\x01\x00\x00\x00\x10\x00\x00\x00", 8);
	ebr[462 + 4] = 0x05;
	memcpy (ebr + 462 + 8, "\x00\x00\x00\x00\x10\x00\x00\x00", 8);
	ebr[510] = 0x55;
	ebr[511] = 0xaa;
	boot_test_write (path, disk, 64 * 1024);
	vmi_test_save_seed ("ami", path);
	facts = boot_test_facts (&vmi_ami_plugin, path, &error);
	g_assert_no_error (error);
	parts = g_variant_lookup_value (facts, "partitions", G_VARIANT_TYPE ("aa{sv}"));
	g_assert_cmpuint (g_variant_n_children (parts), ==, 2);
}

/* No partition table: the file system is the disk. */
static void
test_whole_disk (Fixture *f, gconstpointer data)
{
	static const char *const tools[] = { "mkfs.ext4", "mkfs.vfat", "mkswap", "blkid", NULL };
	static const char *const makers[] = {
		"mkfs.ext4 -q -F -L whole -O ^has_journal,^extent,^flex_bg,^64bit",
		"mkfs.ext4 -q -F -L whole -O ^extent,^flex_bg,^64bit",
		"mkfs.ext4 -q -F -L whole",
		"mkfs.vfat -n WHOLE",
		"mkfs.vfat -F 32 -n WHOLE",
		"mkswap -L whole",
	};

	if (!require (tools))
		return;
	for (guint i = 0; i < G_N_ELEMENTS (makers); i++) {
		g_autofree char *disk = g_strdup_printf ("%s/whole-%u.img", f->dir, i);
		g_autofree char *expected = NULL, *got = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) facts = NULL;
		const char *table = NULL;

		g_assert_cmpint (vmi_test_sh (NULL, "truncate -s 40M '%s' && %s '%s' >/dev/null", disk,
					      makers[i], disk),
				 ==, 0);
		facts = boot_test_facts (&vmi_ami_plugin, disk, &error);
		g_assert_no_error (error);
		g_assert_true (g_variant_lookup (facts, "partition-table", "&s", &table));
		g_assert_cmpstr (table, ==, "none");
		expected = blkid (disk);
		got = facts_fs (facts);
		g_assert_cmpstr (got, ==, expected);
		/* swap has no signature in the probe's reach; the others are classified. */
		if (i < 5)
			check_detected (disk);
	}
}

static void
put_sb (guint8 *buf, gsize at, const char *bytes, gsize len)
{
	memcpy (buf + at, bytes, len);
}

/* XFS and btrfs superblocks (no mkfs for them here): magic, UUID and label where blkid reads. */
static void
test_xfs_btrfs (Fixture *f, gconstpointer data)
{
	g_autofree guint8 *buf = g_malloc0 (128 * 1024);
	g_autofree char *xfs = g_build_filename (f->dir, "xfs.img", NULL);
	g_autofree char *btrfs = g_build_filename (f->dir, "btrfs.img", NULL);
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *got = NULL;

	put_sb (buf, 0, "XFSB", 4);
	put_sb (buf, 32, "\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef", 16);
	put_sb (buf, 108, "xfsroot", 7);
	boot_test_write (xfs, buf, 128 * 1024);
	facts = boot_test_facts (&vmi_ami_plugin, xfs, &error);
	g_assert_no_error (error);
	got = facts_fs (facts);
	g_assert_cmpstr (got, ==, "xfs xfsroot 01234567-89ab-cdef-0123-456789abcdef");
	vmi_test_save_seed ("ami", xfs);
	g_clear_pointer (&facts, g_variant_unref);
	g_clear_pointer (&got, g_free);

	memset (buf, 0, 128 * 1024);
	put_sb (buf, 65536 + 32, "\xfe\xdc\xba\x98\x76\x54\x32\x10\xfe\xdc\xba\x98\x76\x54\x32\x10", 16);
	put_sb (buf, 65536 + 64, "_BHRfS_M", 8);
	put_sb (buf, 65536 + 299, "butter", 6);
	boot_test_write (btrfs, buf, 128 * 1024);
	facts = boot_test_facts (&vmi_ami_plugin, btrfs, &error);
	g_assert_no_error (error);
	got = facts_fs (facts);
	g_assert_cmpstr (got, ==, "btrfs butter fedcba98-7654-3210-fedc-ba9876543210");
}

/*
 * qemu's GRUB boot sector (iotest 109): the first sector of a real disk, whose MBR names a Linux
 * and an LVM partition that the 512-byte file does not hold. Raw unless classifying; then a
 * machine image whose partitions are reported beyond the end.
 */
static void
test_grub_mbr (Fixture *f, gconstpointer data)
{
	const char *corpus = vmi_test_corpus_dir ();
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GVariant) parts = NULL;
	const char *table = NULL;
	gboolean truncated = FALSE;

	if (corpus == NULL)
		return;
	path = vmi_test_corpus_fetch ("grub_mbr.raw.bz2", f->dir);
	check_detected (path);
	facts = boot_test_facts (&vmi_ami_plugin, path, &error);
	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "partition-table", "&s", &table));
	g_assert_cmpstr (table, ==, "mbr");
	g_assert_true (g_variant_lookup (facts, "truncated", "b", &truncated));
	g_assert_true (truncated);
	parts = g_variant_lookup_value (facts, "partitions", G_VARIANT_TYPE ("aa{sv}"));
	g_assert_cmpuint (g_variant_n_children (parts), ==, 2);
	if (boot_test_have ("sfdisk"))
		compare_with_sfdisk (path, facts);
	/* No partition starts inside the file: no file system to look at. */
	g_assert_false (g_variant_lookup (facts, "filesystem", "&s", &table));
}

/* A 1 MiB GPT disk made without sfdisk: header at LBA 1, 128 entries at LBA 2, one partition. */
static GByteArray *
make_gpt (guint32 count, guint32 entry_size)
{
	GByteArray *b = g_byte_array_new ();
	guint8 *h, *e;
	guint32 crc;

	g_byte_array_set_size (b, MiB); /* at most 1 MiB: saved as a fuzzing seed */
	memset (b->data, 0, b->len);
	/* Protective MBR. */
	b->data[446 + 4] = 0xee;
	b->data[446 + 8] = 1;
	memcpy (b->data + 446 + 12, "\xff\x07\x00\x00", 4);
	b->data[510] = 0x55;
	b->data[511] = 0xaa;
	h = b->data + 512;
	memcpy (h, "EFI PART\x00\x00\x01\x00\x5c\x00\x00\x00", 16);
	h[24] = 1;		     /* current LBA */
	memcpy (h + 32, "\xff\x07", 2); /* backup LBA 2047 */
	h[40] = 34;
	memcpy (h + 48, "\xde\x07", 2); /* last usable LBA 2014 */
	memcpy (h + 56, "0123456789abcdef", 16);
	h[72] = 2;
	memcpy (h + 80, &count, 4); /* little-endian hosts only; the tests run on x86 and arm */
	memcpy (h + 84, &entry_size, 4);
	e = b->data + 1024;
	memcpy (e, "\xaf\x3d\xc6\x0f\x83\x84\x72\x47\x8e\x79\x3d\x69\xd8\x47\x7d\xe4", 16);
	memcpy (e + 16, "fedcba9876543210", 16);
	e[32] = 0x00;
	e[33] = 0x02; /* first LBA 512 */
	e[40] = 0xff;
	e[41] = 0x05; /* last LBA 1535: 512 KiB */
	memcpy (e + 56, "d\0a\0t\0a\0", 8);
	if (count <= 128 && entry_size == 128) {
		crc = (guint32) crc32 (0, e, 128 * 128);
		memcpy (h + 88, &crc, 4);
	}
	crc = (guint32) crc32 (0, h, 92);
	memcpy (h + 16, &crc, 4);
	return b;
}

static void
fix_header_crc (GByteArray *b)
{
	guint32 crc;

	memset (b->data + 512 + 16, 0, 4);
	crc = (guint32) crc32 (0, b->data + 512, 92);
	memcpy (b->data + 512 + 16, &crc, 4);
}

static void
expect_error (Fixture *f, const char *name, GByteArray *b, int code, const char *fragment)
{
	g_autofree char *path = g_build_filename (f->dir, name, NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;

	boot_test_write (path, b->data, b->len);
	vmi_test_save_seed ("ami", path);
	facts = boot_test_facts (&vmi_ami_plugin, path, &error);
	g_assert_null (facts);
	g_assert_error (error, VMI_ERROR, code);
	if (g_test_verbose ())
		g_printerr ("# %s: %s\n", name, error->message);
	g_assert_nonnull (strstr (error->message, fragment));
}

static void
test_gpt_made (Fixture *f, gconstpointer data)
{
	g_autoptr(GByteArray) b = make_gpt (128, 128);
	g_autofree char *path = g_build_filename (f->dir, "made-gpt.img", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GVariant) parts = NULL;
	g_autoptr(GVariant) p = NULL;
	const char *s = NULL;
	guint64 start = 0, size = 0;

	boot_test_write (path, b->data, b->len);
	vmi_test_save_seed ("ami", path);
	facts = boot_test_facts (&vmi_ami_plugin, path, &error);
	g_assert_no_error (error);
	parts = g_variant_lookup_value (facts, "partitions", G_VARIANT_TYPE ("aa{sv}"));
	g_assert_cmpuint (g_variant_n_children (parts), ==, 1);
	p = g_variant_get_child_value (parts, 0);
	g_assert_true (g_variant_lookup (p, "type-name", "&s", &s));
	g_assert_cmpstr (s, ==, "linux-filesystem");
	g_assert_true (g_variant_lookup (p, "name", "&s", &s));
	g_assert_cmpstr (s, ==, "data");
	g_assert_true (g_variant_lookup (p, "start", "t", &start));
	g_assert_cmpuint (start, ==, 256 * 1024);
	g_assert_true (g_variant_lookup (p, "size", "t", &size));
	g_assert_cmpuint (size, ==, 512 * 1024);
	if (boot_test_have ("sfdisk"))
		compare_with_sfdisk (path, facts);
}

static void
test_bad_gpt (Fixture *f, gconstpointer data)
{
	g_autoptr(GByteArray) b = make_gpt (128, 128);

	/* A damaged header: one byte of the disk GUID changed, CRC left alone. */
	b->data[512 + 60] ^= 1;
	expect_error (f, "bad-header-crc", b, VMI_ERROR_CORRUPT_IMAGE, "CRC32");
	g_byte_array_unref (b);

	/* A million entries, with a header CRC that matches. */
	b = make_gpt (1000000, 128);
	expect_error (f, "million-entries", b, VMI_ERROR_CORRUPT_IMAGE,
		      "declares 1000000 partition entries");
	g_byte_array_unref (b);

	b = make_gpt (128, 100);
	expect_error (f, "entry-size", b, VMI_ERROR_CORRUPT_IMAGE, "entries of 100 bytes");
	g_byte_array_unref (b);

	/* Header size beyond its sector. */
	b = make_gpt (128, 128);
	b->data[512 + 12] = 0x00;
	b->data[512 + 13] = 0x10;
	fix_header_crc (b);
	expect_error (f, "header-size", b, VMI_ERROR_CORRUPT_IMAGE, "its size is 4096 bytes");
	g_byte_array_unref (b);

	/* Entries far beyond the end of the file. */
	b = make_gpt (128, 128);
	memcpy (b->data + 512 + 72, "\x00\x00\x00\x00\x01\x00\x00\x00", 8);
	fix_header_crc (b);
	expect_error (f, "entries-beyond-eof", b, VMI_ERROR_CORRUPT_IMAGE, "beyond the end");
	g_byte_array_unref (b);

	/* A partition name changed behind the entries' CRC. */
	b = make_gpt (128, 128);
	b->data[1024 + 56] = 'D';
	expect_error (f, "entries-crc", b, VMI_ERROR_CORRUPT_IMAGE, "partition array is damaged");
	g_byte_array_unref (b);

	/* Empty file. */
	b = g_byte_array_new ();
	expect_error (f, "empty", b, VMI_ERROR_CORRUPT_IMAGE, "empty");
	g_byte_array_unref (b);
	b = NULL;
}

/*
 * An MBR partition that runs past the end of the file: reported (the partition and the image
 * are flagged) rather than refused, because the disk is still readable and Inspect is where a
 * person learns the image was cut short.
 */
static void
test_mbr_beyond_end (Fixture *f, gconstpointer data)
{
	g_autofree guint8 *disk = g_malloc0 (MiB);
	g_autofree char *path = g_build_filename (f->dir, "mbr-beyond.img", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GVariant) parts = NULL;
	g_autoptr(GVariant) p1 = NULL, p2 = NULL;
	gboolean beyond = FALSE, truncated = FALSE;

	/* 1: LBA 2048 + 2048 sectors (ends at 2 MiB, the file is 1 MiB); 2: LBA 8 + 8. */
	disk[446] = 0x80;
	disk[446 + 4] = 0x83;
	memcpy (disk + 446 + 8, "\x00\x08\x00\x00\x00\x08\x00\x00", 8);
	disk[462 + 4] = 0x83;
	memcpy (disk + 462 + 8, "\x08\x00\x00\x00\x08\x00\x00\x00", 8);
	/* 3: an absurd 2^32-1 sectors at LBA 2^32-1. */
	disk[478 + 4] = 0x07;
	memcpy (disk + 478 + 8, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	disk[510] = 0x55;
	disk[511] = 0xaa;
	boot_test_write (path, disk, MiB);
	vmi_test_save_seed ("ami", path);
	facts = boot_test_facts (&vmi_ami_plugin, path, &error);
	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (facts, "truncated", "b", &truncated));
	g_assert_true (truncated);
	parts = g_variant_lookup_value (facts, "partitions", G_VARIANT_TYPE ("aa{sv}"));
	g_assert_cmpuint (g_variant_n_children (parts), ==, 3);
	p1 = g_variant_get_child_value (parts, 0);
	g_assert_true (g_variant_lookup (p1, "beyond-end", "b", &beyond));
	g_assert_true (beyond);
	p2 = g_variant_get_child_value (parts, 1);
	g_assert_true (g_variant_lookup (p2, "beyond-end", "b", &beyond));
	g_assert_false (beyond);
	check_detected (path);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD ("/ami/gpt", test_gpt);
	ADD ("/ami/mbr", test_mbr);
	ADD ("/ami/mbr-logical", test_mbr_logical);
	ADD ("/ami/ebr-loop", test_ebr_loop);
	ADD ("/ami/whole-disk", test_whole_disk);
	ADD ("/ami/xfs-btrfs", test_xfs_btrfs);
	ADD ("/ami/grub-mbr", test_grub_mbr);
	ADD ("/ami/gpt-made", test_gpt_made);
	ADD ("/ami/bad-gpt", test_bad_gpt);
	ADD ("/ami/mbr-beyond-end", test_mbr_beyond_end);
	return g_test_run ();
}
