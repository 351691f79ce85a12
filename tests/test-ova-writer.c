/*
 * Writing OVAs (plugins/ova/vmi-ova-writer.c): archives built from qemu-img images through the
 * engine, taken apart with GNU tar and checked by sha256, xmllint and qemu-img, then inspected
 * by the ova plugin itself; the round trip through qcow2 and back; bad options; sizes the VMDK
 * must round; the same over D-Bus.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <glib/gstdio.h>
#include <libxml/parser.h>

#include "vmi-ova-writer-tar.h"
#include "vmi-test-bus.h"
#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_ova_plugin;
extern const VmiFormatPlugin vmi_qcow2_plugin;
extern const VmiFormatPlugin vmi_raw_plugin;
extern const VmiFormatPlugin vmi_vmdk_plugin;

#define MiB (1024u * 1024u)

/* What a test expects of the VM an OVA describes. */
typedef struct {
	const char *name;
	guint64 cpus;
	guint64 memory_mib;
	const char *os_type;
	guint32 os_id;
	const char *firmware;
	guint64 capacity;
} VmFacts;

static GVariant *
facts_of (VmiSource *source)
{
	g_autoptr(GVariant) info = vmi_source_to_variant (source);

	return g_variant_lookup_value (info, "format-specific", G_VARIANT_TYPE_VARDICT);
}

/* The only child of an aa{sv} fact. */
static GVariant *
only_entry (GVariant *facts, const char *key)
{
	g_autoptr(GVariant) array = g_variant_lookup_value (facts, key, G_VARIANT_TYPE ("aa{sv}"));

	g_assert_nonnull (array);
	g_assert_cmpuint (g_variant_n_children (array), ==, 1);
	return g_variant_get_child_value (array, 0);
}

static void
assert_strv_empty (GVariant *facts, const char *key)
{
	g_autofree const char **strv = NULL;

	g_assert_true (g_variant_lookup (facts, key, "^a&s", &strv));
	g_assert_cmpuint (g_strv_length ((char **) strv), ==, 0);
}

/* The ova plugin's own inspection of the OVA finds the VM and disk that were written. */
static void
assert_ova_facts (const char *ova, const VmFacts *want)
{
	g_autoptr(VmiSource) source = vmi_test_open (&vmi_ova_plugin, ova, NULL);
	g_autoptr(GVariant) info = vmi_source_to_variant (source);
	g_autoptr(GVariant) facts = facts_of (source);
	g_autoptr(GVariant) vm = only_entry (facts, "virtual-systems");
	g_autoptr(GVariant) disk = only_entry (facts, "disks");
	g_autofree const char **unsafe = NULL;
	g_autofree char *vmdk_name = g_strdup_printf ("%s-disk1.vmdk", want->name);
	const char *s = NULL;
	guint64 u = 0;
	gboolean b = FALSE;

	g_assert_true (g_variant_lookup (info, "unsafe-reasons", "^a&s", &unsafe));
	if (unsafe[0] != NULL)
		g_error ("the written OVA is unsafe: %s", unsafe[0]);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, want->capacity);
	g_assert_true (g_variant_lookup (facts, "ovf-version", "&s", &s));
	g_assert_cmpstr (s, ==, "1.x");
	g_assert_true (g_variant_lookup (vm, "name", "&s", &s));
	g_assert_cmpstr (s, ==, want->name);
	g_assert_true (g_variant_lookup (vm, "cpus", "t", &u));
	g_assert_cmpuint (u, ==, want->cpus);
	g_assert_true (g_variant_lookup (vm, "memory", "t", &u));
	g_assert_cmpuint (u, ==, want->memory_mib * MiB);
	g_assert_true (g_variant_lookup (vm, "firmware", "&s", &s));
	g_assert_cmpstr (s, ==, want->firmware);
	g_assert_true (g_variant_lookup (vm, "os-type", "&s", &s));
	g_assert_cmpstr (s, ==, want->os_type);
	g_assert_true (g_variant_lookup (vm, "os-id", "u", &u) ||
		       g_variant_lookup (vm, "os-id", "t", &u));
	g_assert_cmpuint (u, ==, want->os_id);
	g_assert_true (g_variant_lookup (disk, "href", "&s", &s));
	g_assert_cmpstr (s, ==, vmdk_name);
	g_assert_true (g_variant_lookup (disk, "format-name", "&s", &s));
	g_assert_cmpstr (s, ==, "vmdk-streamOptimized");
	g_assert_true (g_variant_lookup (disk, "capacity-bytes", "t", &u));
	g_assert_cmpuint (u, ==, want->capacity);
	g_assert_true (g_variant_lookup (facts, "manifest-verified", "b", &b));
	g_assert_true (b);
	assert_strv_empty (facts, "missing-members");
	assert_strv_empty (facts, "member-size-mismatches");
}

/* Names of the archive's members, in order, as GNU tar lists them. */
static char *
tar_names (const char *ova)
{
	const char *argv[] = { "tar", "-tf", ova, NULL };
	g_autofree char *out = vmi_test_run (argv);

	g_strchomp (out);
	return g_strdelimit (g_steal_pointer (&out), "\n", ',');
}

/* Extracts the OVA with GNU tar into a new folder of dir; checks the manifest's every line. */
static char *
extract_and_verify (const char *dir, const char *ova, const char *name)
{
	g_autofree char *into = g_build_filename (dir, "x", NULL);
	g_autofree char *mf_name = g_strdup_printf ("%s.mf", name);
	g_autofree char *mf_path = g_build_filename (into, mf_name, NULL);
	g_autofree char *mf = NULL;
	g_autofree char *quoted_ova = g_shell_quote (ova);
	g_autofree char *quoted_into = g_shell_quote (into);
	g_autofree char *quoted_mf = NULL;
	g_auto(GStrv) lines = NULL;
	guint n = 0;

	g_assert_cmpint (g_mkdir (into, 0700), ==, 0);
	vmi_test_sh_ok ("tar -xf %s -C %s", quoted_ova, quoted_into);
	g_assert_true (g_file_get_contents (mf_path, &mf, NULL, NULL));
	lines = g_strsplit (mf, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_autofree char *member = NULL;
		g_autofree char *member_path = NULL;
		g_autofree char *data = NULL;
		g_autofree char *digest = NULL;
		gsize len = 0;
		const char *close_paren;

		if (lines[i][0] == '\0')
			continue;
		g_assert_true (g_str_has_prefix (lines[i], "SHA256("));
		close_paren = strstr (lines[i], ")= ");
		g_assert_nonnull (close_paren);
		member = g_strndup (lines[i] + 7, (gsize) (close_paren - lines[i] - 7));
		member_path = g_build_filename (into, member, NULL);
		g_assert_true (g_file_get_contents (member_path, &data, &len, NULL));
		digest = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guint8 *) data, len);
		g_assert_cmpstr (close_paren + 3, ==, digest);
		n++;
	}
	g_assert_cmpuint (n, ==, 2);
	/* And sha256sum, the tool a person would check it with, agrees. */
	quoted_mf = g_shell_quote (mf_name);
	vmi_test_sh_ok ("cd %s && sed -n 's/^SHA256(\\(.*\\))= \\(.*\\)$/\\2  \\1/p' %s | "
			"sha256sum --quiet -c -",
			quoted_into, quoted_mf);
	return g_steal_pointer (&into);
}

/* The descriptor is well-formed XML with an OVF 1 envelope: libxml2, and xmllint if present. */
static void
assert_ovf_well_formed (const char *path)
{
	xmlDocPtr doc = xmlReadFile (path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
	g_autofree char *xmllint = NULL;
	xmlNodePtr root;

	g_assert_nonnull (doc);
	root = xmlDocGetRootElement (doc);
	g_assert_cmpstr ((const char *) root->name, ==, "Envelope");
	g_assert_nonnull (root->ns);
	g_assert_cmpstr ((const char *) root->ns->href, ==, "http://schemas.dmtf.org/ovf/envelope/1");
	xmlFreeDoc (doc);
	xmllint = g_find_program_in_path ("xmllint");
	if (xmllint != NULL) {
		g_autofree char *quoted = g_shell_quote (path);

		vmi_test_sh_ok ("xmllint --noout %s", quoted);
	} else {
		g_test_message ("xmllint (libxml2-utils) is not installed; libxml2 parsed the OVF");
	}
}

/* The ova plugin's member-offset and member-size of the disk hold what GNU tar extracts. */
static void
assert_disk_in_place (const char *ova, const char *extracted)
{
	g_autoptr(VmiSource) source = vmi_test_open (&vmi_ova_plugin, ova, NULL);
	g_autoptr(GVariant) facts = facts_of (source);
	g_autoptr(GVariant) disk = only_entry (facts, "disks");
	g_autofree char *data = NULL;
	g_autofree guint8 *in_place = NULL;
	gsize len = 0;
	guint64 offset = 0, size = 0;

	g_assert_true (g_variant_lookup (disk, "member-offset", "t", &offset));
	g_assert_true (g_variant_lookup (disk, "member-size", "t", &size));
	g_assert_true (g_file_get_contents (extracted, &data, &len, NULL));
	g_assert_cmpuint (size, ==, len);
	g_assert_cmpuint (offset % VMI_OVA_TAR_BLOCK, ==, 0);
	in_place = g_malloc (len + 1);
	vmi_test_read_bytes (ova, offset, in_place, len);
	g_assert_true (memcmp (in_place, data, len) == 0);
}

static GVariant *
options_of (const char *text)
{
	return g_variant_ref_sink (g_variant_new_parsed (text));
}

/* Converts src (read by plugin) into an OVA at ova and checks it through and through. */
static char *
write_and_check (const char *dir, const VmiFormatPlugin *plugin, const char *src, const char *ova,
		 const char *options, const VmFacts *want)
{
	g_autoptr(GVariant) opts = options_of (options);
	g_autofree char *names = NULL;
	g_autofree char *expected = NULL;
	g_autofree char *into = NULL;
	g_autofree char *vmdk = NULL;
	g_autofree char *ovf = NULL;
	g_autofree char *file = NULL;
	g_autoptr(JsonObject) info = NULL;
	JsonObject *specific;
	guint8 head[1024];
	const char *src_fmt = plugin == &vmi_raw_plugin ? "raw" : "qcow2";

	g_assert_true (vmi_test_convert (plugin, src, &vmi_ova_plugin, ova, opts, NULL));
	vmi_test_read_bytes (ova, 0, head, sizeof head);
	g_assert_cmpuint (vmi_ova_plugin.probe (head, sizeof head, vmi_test_file_size (ova)), ==,
			  VMI_PROBE_CERTAIN);
	g_assert_cmpuint (vmi_test_file_size (ova) % VMI_OVA_TAR_RECORD, ==, 0);
	names = tar_names (ova);
	expected = g_strdup_printf ("%s.ovf,%s-disk1.vmdk,%s.mf", want->name, want->name, want->name);
	g_assert_cmpstr (names, ==, expected);
	/* Python's tarfile reads it as POSIX ustar, the format OVF requires. */
	if (g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE)) {
		g_autofree char *quoted = g_shell_quote (ova);
		g_autofree char *py = NULL;

		g_assert_cmpint (vmi_test_sh (&py, "/usr/bin/python3 -c 'import sys, tarfile; "
					      "t = tarfile.open(sys.argv[1], \"r:\"); m = t.getmembers(); "
					      "print(\",\".join(x.name for x in m), all(x.isreg() and "
					      "x.mode == 0o644 for x in m))' %s",
					      quoted),
				 ==, 0);
		g_free (expected);
		expected = g_strdup_printf ("%s True\n", names);
		g_assert_cmpstr (py, ==, expected);
	}

	into = extract_and_verify (dir, ova, want->name);
	file = g_strdup_printf ("%s-disk1.vmdk", want->name);
	vmdk = g_build_filename (into, file, NULL);
	g_free (file);
	file = g_strdup_printf ("%s.ovf", want->name);
	ovf = g_build_filename (into, file, NULL);
	assert_ovf_well_formed (ovf);
	assert_disk_in_place (ova, vmdk);
	/* The vmdk plugin reads the disk inside. */
	{
		g_autoptr(VmiSource) disk = vmi_test_open (&vmi_vmdk_plugin, vmdk, NULL);

		g_assert_cmpuint (vmi_source_get_virtual_size (disk), ==, want->capacity);
	}
	/* qemu-img cannot open a streamOptimized VMDK of 0 sectors, not even one it made. */
	if (want->capacity == 0) {
		assert_ova_facts (ova, want);
		return g_steal_pointer (&into);
	}
	g_assert_true (vmi_test_qemu_img_check (vmdk, "vmdk"));
	g_assert_true (vmi_test_qemu_img_compare (src, src_fmt, vmdk, "vmdk"));
	info = vmi_test_qemu_img_info (vmdk, "vmdk");
	g_assert_cmpuint (vmi_test_json_u64 (info, "virtual-size"), ==, want->capacity);
	specific = json_object_get_object_member (json_object_get_object_member (info, "format-specific"),
						  "data");
	g_assert_cmpstr (json_object_get_string_member (specific, "create-type"), ==, "streamOptimized");
	assert_ova_facts (ova, want);
	vmi_test_save_seed ("ova", ova);
	return g_steal_pointer (&into);
}

/* A pattern qcow2 → OVA with every option set; its VMDK → qcow2 → a second OVA, the same VM. */
static void
test_round_trip (VmiTestDirFixture *f, gconstpointer data)
{
	g_autofree char *pattern = g_build_filename (f->dir, "pattern.raw", NULL);
	g_autofree char *src = g_build_filename (f->dir, "source.qcow2", NULL);
	g_autofree char *ova = g_build_filename (f->dir, "web.ova", NULL);
	g_autofree char *back = g_build_filename (f->dir, "back.qcow2", NULL);
	g_autofree char *ova2 = g_build_filename (f->dir, "again.ova", NULL);
	g_autofree char *into = NULL;
	g_autofree char *vmdk = NULL;
	g_autofree char *dir2 = g_build_filename (f->dir, "second", NULL);
	g_autofree char *into2 = NULL;
	const char *options = "{'name': <'web-01 test'>, 'cpus': <@t 2>, 'memory-mib': <@t 2048>, "
			      "'os-type': <'ubuntu64Guest'>, 'firmware': <'efi'>}";
	VmFacts want = { "web-01 test", 2, 2048, "ubuntu64Guest", 94, "efi", 5 * MiB + 1536 };

	if (!vmi_test_require_qemu_img () ||
	    !vmi_test_require_program ("tar", "tar", "it takes the OVA apart"))
		return;
	vmi_test_make_pattern_image (pattern, want.capacity, 11);
	vmi_test_qemu_img ("convert -q -f raw -O qcow2 '%s' '%s'", pattern, src);
	into = write_and_check (f->dir, &vmi_qcow2_plugin, src, ova, options, &want);

	/* OVA → qcow2 (from the disk inside, read by the vmdk plugin) → OVA. */
	vmdk = g_build_filename (into, "web-01 test-disk1.vmdk", NULL);
	g_assert_true (vmi_test_convert (&vmi_vmdk_plugin, vmdk, &vmi_qcow2_plugin, back, NULL, NULL));
	g_assert_true (vmi_test_qemu_img_compare (pattern, "raw", back, "qcow2"));
	g_assert_cmpint (g_mkdir (dir2, 0700), ==, 0);
	into2 = write_and_check (dir2, &vmi_qcow2_plugin, back, ova2, options, &want);
	/* The two archives differ only in the VMDK's random CID and the times, never in size. */
	g_assert_cmpuint (vmi_test_file_size (ova), ==, vmi_test_file_size (ova2));
}

/* No options: a VM called vm with 1 CPU, 1 GiB, BIOS, otherGuest. */
static void
test_defaults (VmiTestDirFixture *f, gconstpointer data)
{
	g_autofree char *src = g_build_filename (f->dir, "small.qcow2", NULL);
	g_autofree char *ova = g_build_filename (f->dir, "out.ova", NULL);
	g_autofree char *into = NULL;
	VmFacts want = { "vm", 1, 1024, "otherGuest", 1, "bios", 3 * MiB };
	g_autofree char *pattern = g_build_filename (f->dir, "pattern.raw", NULL);

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (pattern, want.capacity, 3);
	vmi_test_qemu_img ("convert -q -f raw -O qcow2 '%s' '%s'", pattern, src);
	into = write_and_check (f->dir, &vmi_qcow2_plugin, src, ova, "@a{sv} {}", &want);
}

/*
 * A disk of 0 bytes (a qcow2: raw refuses empty files) and raw ones of 1000 and 1537 bytes: the
 * VMDK holds whole sectors, so 0, 1024 and 2048, with the last partial sector's data kept.
 */
static void
test_odd_sizes (VmiTestDirFixture *f, gconstpointer data)
{
	static const guint64 sizes[] = { 0, 1000, 512 * 3 + 1 };

	if (!vmi_test_require_qemu_img ())
		return;
	for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
		g_autofree char *sub = g_strdup_printf ("%s/%u", f->dir, i);
		g_autofree char *src = NULL;
		g_autofree char *ova = g_build_filename (sub, "disk.ova", NULL);
		g_autofree char *into = NULL;
		g_autofree guint8 *bytes = g_malloc (sizes[i] + 1);
		VmFacts want = { "odd", 1, 1024, "otherGuest", 1, "bios", (sizes[i] + 511) / 512 * 512 };

		g_assert_cmpint (g_mkdir (sub, 0700), ==, 0);
		if (sizes[i] == 0) {
			src = vmi_test_qemu_img_create (sub, "disk.qcow2", "qcow2", NULL, "0");
			into = write_and_check (sub, &vmi_qcow2_plugin, src, ova, "{'name': <'odd'>}",
						&want);
			continue;
		}
		for (guint64 j = 0; j < sizes[i]; j++)
			bytes[j] = (guint8) (g_random_int () | 1);
		src = g_build_filename (sub, "disk.raw", NULL);
		vmi_test_write_file (src, bytes, (gssize) sizes[i]);
		into = write_and_check (sub, &vmi_raw_plugin, src, ova, "{'name': <'odd'>}", &want);
	}
}

/* Characters XML must escape, and a space, reach the descriptor escaped and come back. */
static void
test_xml_name (VmiTestDirFixture *f, gconstpointer data)
{
	g_autofree char *src = g_build_filename (f->dir, "disk.raw", NULL);
	g_autofree char *ova = g_build_filename (f->dir, "x.ova", NULL);
	g_autofree char *into = NULL;
	g_autofree guint8 *bytes = g_malloc (MiB);
	VmFacts want = { "a<b> & \"c\" 'd'", 1, 4, "otherLinux64Guest", 101, "bios", MiB };

	if (!vmi_test_require_qemu_img ())
		return;
	for (guint i = 0; i < MiB; i++)
		bytes[i] = (guint8) (i * 7 + i / 4096);
	vmi_test_write_file (src, bytes, MiB);
	into = write_and_check (f->dir, &vmi_raw_plugin, src, ova,
				"{'name': <'a<b> & \"c\" \\'d\\''>, 'memory-mib': <@t 4>, "
				"'os-type': <'otherLinux64Guest'>}",
				&want);
}

static void
expect_bad_option (const char *dir, const char *options, const char *needle)
{
	g_autofree char *path = g_build_filename (dir, "bad.ova", NULL);
	g_autoptr(GVariant) opts = options_of (options);
	g_autoptr(GError) error = NULL;
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	VmiImage *image;

	g_assert_cmpint (fd, >=, 0);
	image = vmi_ova_plugin.create (fd, 4 * MiB, opts, &error);
	g_assert_null (image);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	if (strstr (error->message, needle) == NULL)
		g_error ("%s: the message \"%s\" does not name \"%s\"", options, error->message, needle);
	g_test_message ("%s: %s", options, error->message);
	g_assert_cmpint (close (fd), ==, 0);
}

static void
test_bad_options (VmiTestDirFixture *f, gconstpointer data)
{
	g_autofree char *long_name = g_strnfill (81, 'n');
	g_autofree char *long_option = g_strdup_printf ("{'name': <'%s'>}", long_name);
	g_autofree char *max_name = g_strnfill (80, 'n');
	g_autofree char *max_option = g_strdup_printf ("{'name': <'%s'>}", max_name);
	g_autofree char *ok_path = g_build_filename (f->dir, "ok.ova", NULL);
	g_autoptr(GVariant) ok_opts = options_of (max_option);
	g_autoptr(GError) error = NULL;
	VmiImage *image;
	int fd;

	expect_bad_option (f->dir, "{'cpus': <@t 0>}", "cpus");
	expect_bad_option (f->dir, "{'cpus': <@t 769>}", "cpus");
	expect_bad_option (f->dir, "{'memory-mib': <@t 0>}", "memory-mib");
	expect_bad_option (f->dir, "{'memory-mib': <@t 3>}", "memory-mib");
	expect_bad_option (f->dir, "{'memory-mib': <@t 18446744073709551615>}", "memory-mib");
	expect_bad_option (f->dir, "{'memory-mib': <@t 25165825>}", "memory-mib");
	expect_bad_option (f->dir, "{'name': <'a/b'>}", "'/'");
	expect_bad_option (f->dir, "{'name': <'a\\\\b'>}", "'/'");
	expect_bad_option (f->dir, "{'name': <''>}", "empty");
	expect_bad_option (f->dir, "{'name': <'..'>}", "..");
	expect_bad_option (f->dir, "{'name': <'a..b'>}", "..");
	expect_bad_option (f->dir, "{'name': <'.hidden'>}", "'.'");
	expect_bad_option (f->dir, "{'name': <'line\\nbreak'>}", "control");
	expect_bad_option (f->dir, long_option, "80 bytes");
	expect_bad_option (f->dir, "{'firmware': <'uefi'>}", "bios or efi");
	expect_bad_option (f->dir, "{'os-type': <'not a guest'>}", "guest id");
	expect_bad_option (f->dir, "{'os-type': <''>}", "guest id");
	/* A disk the VMDK cannot hold is refused by the VMDK writer, with the same code. */
	fd = open (ok_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	image = vmi_ova_plugin.create (fd, G_GUINT64_CONSTANT (3) << 40, ok_opts, &error);
	g_assert_null (image);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	/* The longest name is fine, and an OVA given up before finish is freed by close. */
	image = vmi_ova_plugin.create (fd, 4 * MiB, ok_opts, &error);
	g_assert_no_error (error);
	g_assert_nonnull (image);
	vmi_ova_plugin.close (image);
	g_assert_cmpint (close (fd), ==, 0);
}

/* ustar headers: octal sizes, base-256 beyond 8 GiB (a sparse 9 GiB member tar lists), names. */
static void
test_tar_header (VmiTestDirFixture *f, gconstpointer data)
{
	g_autofree char *path = g_build_filename (f->dir, "big.tar", NULL);
	g_autofree char *quoted = g_shell_quote (path);
	g_autofree char *listing = NULL;
	g_autofree char *name100 = g_strnfill (100, 'a');
	g_autofree char *name101 = g_strnfill (101, 'a');
	g_autoptr(GError) error = NULL;
	const guint64 big = G_GUINT64_CONSTANT (9) << 30;
	guint8 block[VMI_OVA_TAR_BLOCK];
	int fd;

	if (!vmi_test_require_program ("tar", "tar", "it lists the archive"))
		return;
	g_assert_true (vmi_ova_tar_header (block, "big.vmdk", big, 1700000000, &error));
	g_assert_no_error (error);
	g_assert_cmpuint (block[124], ==, 0x80);
	fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (pwrite (fd, block, sizeof block, 0), ==, (ssize_t) sizeof block);
	g_assert_cmpint (ftruncate (fd, (off_t) (VMI_OVA_TAR_BLOCK + big + 2 * VMI_OVA_TAR_BLOCK)),
			 ==, 0);
	g_assert_cmpint (close (fd), ==, 0);
	g_assert_cmpint (vmi_test_sh (&listing, "tar -tvf %s", quoted), ==, 0);
	g_assert_nonnull (strstr (listing, " 9663676416 "));
	g_assert_nonnull (strstr (listing, "big.vmdk"));
	/* libarchive, which the ova plugin reads archives with, takes it too. */
	{
		struct archive *archive = archive_read_new ();
		struct archive_entry *entry = NULL;

		archive_read_support_format_tar (archive);
		g_assert_cmpint (archive_read_open_filename (archive, path, 10240), ==, ARCHIVE_OK);
		g_assert_cmpint (archive_read_next_header (archive, &entry), ==, ARCHIVE_OK);
		g_assert_cmpstr (archive_entry_pathname (entry), ==, "big.vmdk");
		g_assert_cmpint (archive_entry_size (entry), ==, (gint64) big);
		g_assert_cmpint (archive_read_free (archive), ==, ARCHIVE_OK);
	}
	/* A second reader of base-256 sizes: Python's tarfile (strict about checksums). */
	if (g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE)) {
		g_autofree char *py = NULL;

		g_assert_cmpint (vmi_test_sh (&py, "/usr/bin/python3 -c 'import sys, tarfile; "
					      "print([(m.name, m.size) for m in tarfile.open(sys.argv[1])])' %s",
					      quoted),
				 ==, 0);
		g_assert_cmpstr (py, ==, "[('big.vmdk', 9663676416)]\n");
	}

	/* A small one, with the longest name ustar holds; tar checks the checksum. */
	g_assert_true (vmi_ova_tar_header (block, name100, 1234, 0, &error));
	vmi_test_write_file (path, block, sizeof block);
	fd = open (path, O_RDWR | O_CLOEXEC);
	g_assert_cmpint (ftruncate (fd, (off_t) (VMI_OVA_TAR_BLOCK * 5)), ==, 0);
	g_assert_cmpint (close (fd), ==, 0);
	g_clear_pointer (&listing, g_free);
	g_assert_cmpint (vmi_test_sh (&listing, "tar -tvf %s", quoted), ==, 0);
	g_assert_nonnull (strstr (listing, " 1234 "));
	g_assert_nonnull (strstr (listing, name100));

	g_assert_false (vmi_ova_tar_header (block, name101, 1, 0, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_false (vmi_ova_tar_header (block, "a/b", 1, 0, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_false (vmi_ova_tar_header (block, "", 1, 0, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
}

/* Over D-Bus: Convert a qcow2 to x.ova as "ova", then Inspect it. */
static char *
wait_for_job (VmiTestBus *bus, const char *job, char **message)
{
	GDBusConnection *connection = vmi_test_bus_get_connection (bus);

	for (guint i = 0; i < 6000; i++) {
		g_autoptr(GVariant) reply = NULL;
		g_autoptr(GVariant) props = NULL;
		g_autoptr(GError) error = NULL;
		const char *state = NULL;

		reply = g_dbus_connection_call_sync (
			connection, "org.vmimaged.VMImage1", job, "org.freedesktop.DBus.Properties",
			"GetAll", g_variant_new ("(s)", "org.vmimaged.VMImage1.Job"),
			G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
		g_assert_no_error (error);
		props = g_variant_get_child_value (reply, 0);
		g_assert_true (g_variant_lookup (props, "State", "&s", &state));
		if (g_strcmp0 (state, "queued") != 0 && g_strcmp0 (state, "running") != 0) {
			g_variant_lookup (props, "ErrorMessage", "s", message);
			return g_strdup (state);
		}
		g_usleep (10 * 1000);
	}
	g_error ("job %s did not end within 60 s", job);
}

static void
test_dbus (VmiTestDirFixture *f, gconstpointer data)
{
	g_autofree char *pattern = g_build_filename (f->dir, "pattern.raw", NULL);
	g_autofree char *src = g_build_filename (f->dir, "source.qcow2", NULL);
	g_autofree char *ova = g_build_filename (f->dir, "x.ova", NULL);
	g_autofree char *bad = g_build_filename (f->dir, "y.ova", NULL);
	g_autoptr(VmiTestBus) bus = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GVariant) vm = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *state = NULL;
	g_autofree char *message = NULL;
	const char *job = NULL, *s = NULL;
	guint64 u = 0;

	if (!vmi_test_require_qemu_img () ||
	    !vmi_test_require_program ("dbus-daemon", "dbus-daemon", "it runs the daemon's bus"))
		return;
	vmi_test_make_pattern_image (pattern, 2 * MiB + 512, 5);
	vmi_test_qemu_img ("convert -q -f raw -O qcow2 '%s' '%s'", pattern, src);
	bus = vmi_test_bus_new ();
	reply = g_dbus_connection_call_sync (
		vmi_test_bus_get_connection (bus), "org.vmimaged.VMImage1",
		"/org/vmimaged/VMImage1/Manager", "org.vmimaged.VMImage1.Manager", "Convert",
		g_variant_new ("(sss@a{sv})", src, ova, "ova",
			       g_variant_new_parsed ("{'name': <'dbus-vm'>, 'cpus': <@u 4>}")),
		G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	g_assert_no_error (error);
	g_variant_get (reply, "(&o)", &job);
	state = wait_for_job (bus, job, &message);
	if (g_strcmp0 (state, "completed") != 0)
		g_error ("Convert to ova: job %s: %s", state, message);
	g_clear_pointer (&reply, g_variant_unref);

	reply = g_dbus_connection_call_sync (
		vmi_test_bus_get_connection (bus), "org.vmimaged.VMImage1",
		"/org/vmimaged/VMImage1/Manager", "org.vmimaged.VMImage1.Manager", "Inspect",
		g_variant_new ("(s@a{sv})", ova, g_variant_new_parsed ("@a{sv} {}")),
		G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	g_assert_no_error (error);
	info = g_variant_get_child_value (reply, 0);
	g_assert_true (g_variant_lookup (info, "format", "&s", &s));
	g_assert_cmpstr (s, ==, "ova");
	g_assert_true (g_variant_lookup (info, "virtual-size", "t", &u));
	g_assert_cmpuint (u, ==, 2 * MiB + 512);
	facts = g_variant_lookup_value (info, "format-specific", G_VARIANT_TYPE_VARDICT);
	g_assert_nonnull (facts);
	vm = only_entry (facts, "virtual-systems");
	g_assert_true (g_variant_lookup (vm, "name", "&s", &s));
	g_assert_cmpstr (s, ==, "dbus-vm");
	g_assert_true (g_variant_lookup (vm, "cpus", "t", &u));
	g_assert_cmpuint (u, ==, 4);
	/* A bad option fails the conversion, naming the option, and leaves no file. */
	g_clear_pointer (&reply, g_variant_unref);
	reply = g_dbus_connection_call_sync (
		vmi_test_bus_get_connection (bus), "org.vmimaged.VMImage1",
		"/org/vmimaged/VMImage1/Manager", "org.vmimaged.VMImage1.Manager", "Convert",
		g_variant_new ("(sss@a{sv})", src, bad, "ova",
			       g_variant_new_parsed ("{'cpus': <@t 0>}")),
		G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	if (reply != NULL) {
		g_clear_pointer (&state, g_free);
		g_clear_pointer (&message, g_free);
		g_variant_get (reply, "(&o)", &job);
		state = wait_for_job (bus, job, &message);
		g_assert_cmpstr (state, !=, "completed");
		g_assert_nonnull (message);
		g_assert_nonnull (strstr (message, "cpus"));
	} else {
		g_autofree char *remote = g_dbus_error_get_remote_error (error);

		g_assert_cmpstr (remote, ==, "org.vmimaged.VMImage1.Error.InvalidArgument");
		g_assert_nonnull (strstr (error->message, "cpus"));
	}
	g_assert_false (g_file_test (bad, G_FILE_TEST_EXISTS));
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	vmi_test_add_with_dir ("/ova-writer/tar-header", NULL, test_tar_header);
	vmi_test_add_with_dir ("/ova-writer/round-trip", NULL, test_round_trip);
	vmi_test_add_with_dir ("/ova-writer/defaults", NULL, test_defaults);
	vmi_test_add_with_dir ("/ova-writer/odd-sizes", NULL, test_odd_sizes);
	vmi_test_add_with_dir ("/ova-writer/xml-name", NULL, test_xml_name);
	vmi_test_add_with_dir ("/ova-writer/bad-options", NULL, test_bad_options);
	vmi_test_add_with_dir ("/ova-writer/dbus", NULL, test_dbus);
	return g_test_run ();
}
