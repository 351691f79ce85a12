/*
 * Members of containers: OVAs and OVFs made here from qemu-img disks, inspected through the
 * engine with every built plugin (each member through its own plugin) and over D-Bus, converted
 * with the "disk" and "member" options and compared with qemu-img; compressed members, a gzip
 * bomb, hostile member names, nesting and count bounds; and the Glance names of every format.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vmi-members.h"
#include "vmi-test-bus.h"
#include "vmi-test-util.h"

#define MiB (1024u * 1024u)

static VmiRegistry *registry;
static VmiTestBus *bus;

static const char *const vmdk_stream_uri =
	"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";

/* A file of the OVF: href, the file's bytes, the disk's capacity (0: not a disk). */
typedef struct {
	const char *href;
	const char *path; /* the file's content, for sizes */
	guint64 capacity;
	const char *format; /* URI, or NULL */
	gboolean gzip;
} TestFile;

static char *
ovf_text (const TestFile *files, guint n)
{
	g_autoptr(GString) refs = g_string_new ("<References>");
	g_autoptr(GString) disks = g_string_new ("<DiskSection><Info>disks</Info>");

	for (guint i = 0; i < n; i++) {
		g_autofree char *href = g_markup_escape_text (files[i].href, -1);

		g_string_append_printf (refs, "<File ovf:id=\"file%u\" ovf:href=\"%s\" ovf:size=\"%" G_GUINT64_FORMAT "\"%s/>",
					i, href, vmi_test_file_size (files[i].path),
					files[i].gzip ? " ovf:compression=\"gzip\"" : "");
		if (files[i].capacity == 0)
			continue;
		g_string_append_printf (disks, "<Disk ovf:diskId=\"vmdisk%u\" ovf:fileRef=\"file%u\" ovf:capacity=\"%" G_GUINT64_FORMAT "\"%s%s%s/>",
					i, i, files[i].capacity, files[i].format ? " ovf:format=\"" : "",
					files[i].format ? files[i].format : "", files[i].format ? "\"" : "");
	}
	g_string_append (refs, "</References>");
	g_string_append (disks, "</DiskSection>");
	return g_strdup_printf (
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
		"xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\">\n%s\n%s\n"
		"<VirtualSystem ovf:id=\"vm\"><Info>a machine</Info><Name>members</Name></VirtualSystem>\n"
		"</Envelope>\n",
		refs->str, disks->str);
}

/* dir/name: a raw pattern disk of size bytes made into fmt by qemu-img; *raw gets the pattern. */
static char *
make_disk (const char *dir, const char *name, guint64 size, guint32 seed, const char *fmt,
	   const char *options, char **raw)
{
	g_autofree char *pattern = g_strdup_printf ("%s/%s.pattern", dir, name);
	char *path = g_build_filename (dir, name, NULL);

	vmi_test_make_pattern_image (pattern, size, seed);
	vmi_test_sh_ok ("qemu-img convert -q -f raw -O %s %s '%s' '%s'", fmt, options ? options : "",
			pattern, path);
	if (raw != NULL)
		*raw = g_steal_pointer (&pattern);
	return path;
}

/* dir/name.ova: a ustar (GNU tar) of name.ovf for files, then the files under their hrefs. */
static char *
make_ova (const char *dir, const char *name, const TestFile *files, guint n)
{
	g_autofree char *pkg = g_strdup_printf ("%s/%s.pkg", dir, name);
	g_autofree char *ovf = g_strdup_printf ("%s/%s.ovf", pkg, name);
	g_autofree char *xml = ovf_text (files, n);
	g_autoptr(GString) list = g_string_new (NULL);
	char *ova = g_strdup_printf ("%s/%s.ova", dir, name);

	g_assert_cmpint (g_mkdir_with_parents (pkg, 0755), ==, 0);
	g_assert_true (g_file_set_contents (ovf, xml, -1, NULL));
	for (guint i = 0; i < n; i++) {
		g_autofree char *target = g_build_filename (pkg, files[i].href, NULL);
		g_autofree char *quoted = g_shell_quote (files[i].href);

		vmi_test_sh_ok ("cp '%s' '%s'", files[i].path, target);
		g_string_append_printf (list, " %s", quoted);
	}
	vmi_test_sh_ok ("tar --format=ustar -cf '%s' -C '%s' %s.ovf%s", ova, pkg, name, list->str);
	return ova;
}

static VmiSource *
open_path (const char *path, gboolean with_folder, GError **error)
{
	g_autofree char *folder = g_path_get_dirname (path);
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	int dir_fd = with_folder ? open (folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	VmiSource *source;

	g_assert_cmpint (fd, >=, 0);
	source = vmi_source_open (registry, fd, dir_fd, NULL, NULL, error);
	close (fd);
	if (dir_fd >= 0)
		close (dir_fd);
	if (error == NULL)
		g_assert_nonnull (source);
	return source;
}

/* The variant, under --verbose. */
static void
show (GVariant *value)
{
	g_autofree char *text = g_variant_print (value, TRUE);

	g_test_message ("%s", text);
}

/* Member i of an Inspect result. */
static GVariant *
member_of (GVariant *info, gsize i)
{
	g_autoptr(GVariant) members = g_variant_lookup_value (info, "members", G_VARIANT_TYPE ("aa{sv}"));

	g_assert_nonnull (members);
	g_assert_cmpuint (g_variant_n_children (members), >, i);
	return g_variant_get_child_value (members, i);
}

static gsize
n_members (GVariant *info)
{
	g_autoptr(GVariant) members = g_variant_lookup_value (info, "members", G_VARIANT_TYPE ("aa{sv}"));

	return members != NULL ? g_variant_n_children (members) : 0;
}

static const char *
str_of (GVariant *dict, const char *key)
{
	const char *value = NULL;

	if (!g_variant_lookup (dict, key, "&s", &value))
		g_error ("no string \"%s\" in %s", key, g_variant_print (dict, TRUE));
	return value;
}

static guint64
u64_of (GVariant *dict, const char *key)
{
	guint64 value = 0;

	if (!g_variant_lookup (dict, key, "t", &value))
		g_error ("no integer \"%s\" in %s", key, g_variant_print (dict, TRUE));
	return value;
}

static GVariant *
inspection_of (GVariant *member)
{
	GVariant *inspection = g_variant_lookup_value (member, "inspection", G_VARIANT_TYPE_VARDICT);

	if (inspection == NULL)
		g_error ("member not inspected: %s", g_variant_print (member, TRUE));
	return inspection;
}

/* Converts path (detected, with its folder) into dst as format with options (GVariant text). */
static gboolean
convert_path (const char *path, const char *format, const char *dst, const char *options,
	      GError **error)
{
	g_autoptr(VmiSource) source = open_path (path, TRUE, NULL);
	g_autoptr(GVariant) opts = g_variant_ref_sink (g_variant_new_parsed (options));
	const VmiFormatPlugin *plugin = vmi_registry_lookup (registry, format, NULL);
	int fd = open (dst, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	gboolean ok;

	g_assert_nonnull (plugin);
	g_assert_cmpint (fd, >=, 0);
	ok = vmi_convert (source, plugin, fd, opts, NULL, NULL, NULL, error);
	close (fd);
	return ok;
}

/* The OVA of one streamOptimized VMDK: members, nested inspection, Glance names, conversions. */
static void
test_members_ova_one_disk (void)
{
	g_autofree char *dir = NULL, *raw = NULL, *vmdk = NULL, *ova = NULL;
	g_autofree char *out = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, member = NULL, nested = NULL, facts = NULL;
	guint64 offset, size;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	vmdk = make_disk (dir, "disk.vmdk", 4 * MiB + 3 * 512, 11, "vmdk", "-o subformat=streamOptimized", &raw);
	ova = make_ova (dir, "one", (TestFile[]){ { "disk.vmdk", vmdk, 4 * MiB + 3 * 512, vmdk_stream_uri, FALSE } }, 1);
	source = open_path (ova, FALSE, NULL);
	info = vmi_source_to_variant (source);
	show (info);
	g_assert_cmpstr (str_of (info, "format"), ==, "ova");
	g_assert_cmpstr (str_of (info, "disk-format"), ==, "vmdk");
	g_assert_cmpstr (str_of (info, "container-format"), ==, "ova");
	g_assert_cmpuint (n_members (info), ==, 1);
	member = member_of (info, 0);
	g_assert_cmpstr (str_of (member, "name"), ==, "disk.vmdk");
	g_assert_cmpstr (str_of (member, "role"), ==, "disk");
	g_assert_cmpstr (str_of (member, "location"), ==, "stored");
	size = u64_of (member, "size");
	offset = u64_of (member, "offset");
	g_assert_cmpuint (size, ==, vmi_test_file_size (vmdk));
	/* the bytes at offset are the VMDK qemu-img wrote */
	vmi_test_sh_ok ("cmp -n %" G_GUINT64_FORMAT " -i %" G_GUINT64_FORMAT ":0 '%s' '%s'", size, offset, ova, vmdk);
	facts = g_variant_lookup_value (member, "facts", G_VARIANT_TYPE_VARDICT);
	g_assert_cmpstr (str_of (facts, "href"), ==, "disk.vmdk");
	g_assert_cmpstr (str_of (facts, "disk-id"), ==, "vmdisk0");
	g_assert_cmpstr (str_of (facts, "format"), ==, vmdk_stream_uri);
	g_assert_cmpuint (u64_of (facts, "capacity-bytes"), ==, 4 * MiB + 3 * 512);
	nested = inspection_of (member);
	g_assert_cmpstr (str_of (nested, "format"), ==, "vmdk");
	g_assert_cmpstr (str_of (nested, "subformat"), ==, "streamOptimized");
	g_assert_cmpstr (str_of (nested, "disk-format"), ==, "vmdk");
	g_assert_cmpstr (str_of (nested, "container-format"), ==, "bare");
	g_assert_cmpuint (u64_of (nested, "virtual-size"), ==, vmi_test_qemu_img_virtual_size (vmdk, "vmdk"));
	g_assert_cmpuint (u64_of (nested, "file-size"), ==, size);

	/* disk 0, and the default: the disk inside, equal to the VMDK qemu-img reads */
	out = g_build_filename (dir, "out.qcow2", NULL);
	g_assert_true (convert_path (ova, "qcow2", out, "{'disk': <uint64 0>}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (vmdk, "vmdk", out, "qcow2"));
	g_assert_true (vmi_test_qemu_img_check (out, "qcow2"));
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", out, "qcow2"));
	g_free (out);
	out = g_build_filename (dir, "out.raw", NULL);
	g_assert_true (convert_path (ova, "raw", out, "@a{sv} {}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (vmdk, "vmdk", out, "raw"));
	g_assert_cmpuint (vmi_test_file_size (out), ==, vmi_test_qemu_img_virtual_size (vmdk, "vmdk"));

	/* OVA → OVA: the disk inside goes through the ova writer and reads back the same */
	if (vmi_registry_lookup (registry, "ova", NULL)->create != NULL) {
		g_autofree char *again = g_build_filename (dir, "again.ova", NULL);
		g_autofree char *inner = g_build_filename (dir, "inner.vmdk", NULL);
		g_autoptr(VmiSource) copy = NULL;
		g_autoptr(GVariant) copy_info = NULL, copy_member = NULL, copy_nested = NULL;

		g_assert_true (convert_path (ova, "ova", again, "@a{sv} {}", NULL));
		copy = open_path (again, FALSE, NULL);
		copy_info = vmi_source_to_variant (copy);
		g_assert_cmpstr (str_of (copy_info, "format"), ==, "ova");
		copy_member = member_of (copy_info, 0);
		copy_nested = inspection_of (copy_member);
		g_assert_cmpstr (str_of (copy_nested, "format"), ==, "vmdk");
		g_assert_cmpuint (u64_of (copy_nested, "virtual-size"), ==, 4 * MiB + 3 * 512);
		vmi_test_sh_ok ("tar -xOf '%s' --wildcards '*.vmdk' > '%s'", again, inner);
		g_assert_true (vmi_test_qemu_img_compare (raw, "raw", inner, "vmdk"));
	}
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Two disks: disk 1 is the second; disk 5 does not exist; member by name; both options. */
static void
test_members_two_disks (void)
{
	g_autofree char *dir = NULL, *raw1 = NULL, *raw2 = NULL, *d1 = NULL, *d2 = NULL, *ova = NULL;
	g_autofree char *out = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, m1 = NULL, m2 = NULL, i1 = NULL, i2 = NULL;
	g_autoptr(GError) error = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	d1 = make_disk (dir, "first.vmdk", 2 * MiB, 21, "vmdk", "-o subformat=streamOptimized", &raw1);
	d2 = make_disk (dir, "second.qcow2", 3 * MiB + 512, 22, "qcow2", NULL, &raw2);
	ova = make_ova (dir, "two",
			(TestFile[]){ { "first.vmdk", d1, 2 * MiB, vmdk_stream_uri, FALSE },
				      { "second.qcow2", d2, 3 * MiB + 512, "http://www.gnome.org/~markmc/qcow-image-format.html", FALSE } },
			2);
	source = open_path (ova, FALSE, NULL);
	info = vmi_source_to_variant (source);
	g_assert_cmpuint (n_members (info), ==, 2);
	m1 = member_of (info, 0);
	m2 = member_of (info, 1);
	i1 = inspection_of (m1);
	i2 = inspection_of (m2);
	g_assert_cmpstr (str_of (i1, "format"), ==, "vmdk");
	g_assert_cmpstr (str_of (i2, "format"), ==, "qcow2");
	g_assert_cmpuint (u64_of (i1, "virtual-size"), ==, 2 * MiB);
	g_assert_cmpuint (u64_of (i2, "virtual-size"), ==, 3 * MiB + 512);
	g_assert_cmpuint (u64_of (info, "virtual-size"), ==, 5 * MiB + 512);

	out = g_build_filename (dir, "out.raw", NULL);
	g_assert_true (convert_path (ova, "raw", out, "{'disk': <uint64 1>}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (raw2, "raw", out, "raw"));
	g_assert_true (convert_path (ova, "raw", out, "{'disk': <uint64 0>}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (raw1, "raw", out, "raw"));
	g_assert_true (convert_path (ova, "qcow2", out, "{'member': <'second.qcow2'>}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (raw2, "raw", out, "qcow2"));
	/* an integer of any width, as D-Bus clients send it */
	g_assert_true (convert_path (ova, "qcow2", out, "{'disk': <int32 1>}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (raw2, "raw", out, "qcow2"));

	g_assert_false (convert_path (ova, "raw", out, "{'disk': <uint64 5>}", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_test_message ("%s", error->message);
	g_assert_nonnull (strstr (error->message, "2 disks"));
	g_clear_error (&error);
	g_assert_false (convert_path (ova, "raw", out, "{'member': <'third.vmdk'>}", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_false (convert_path (ova, "raw", out, "{'disk': <uint64 0>, 'member': <'first.vmdk'>}", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	/* an image that is no container has no disk to choose */
	g_assert_false (convert_path (d2, "raw", out, "{'disk': <uint64 0>}", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	/* the engine's selection on its own */
	{
		g_autoptr(GVariant) none = g_variant_ref_sink (g_variant_new_parsed ("@a{sv} {}"));
		gint index = 7;

		g_assert_true (vmi_members_select (source, none, &index, &error));
		g_assert_no_error (error);
		g_assert_cmpint (index, ==, 0);
	}
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ovf:compression="gzip": a STREAM member, inspected from a copy and converted whole. */
static void
test_members_gzip (void)
{
	g_autofree char *dir = NULL, *raw = NULL, *vmdk = NULL, *gz = NULL, *ova = NULL, *out = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, member = NULL, nested = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	vmdk = make_disk (dir, "disk.vmdk", 4 * MiB, 31, "vmdk", "-o subformat=streamOptimized", &raw);
	vmi_test_sh_ok ("gzip -n -k '%s'", vmdk);
	gz = g_strconcat (vmdk, ".gz", NULL);
	ova = make_ova (dir, "gz", (TestFile[]){ { "disk.vmdk.gz", gz, 4 * MiB, vmdk_stream_uri, TRUE } }, 1);
	source = open_path (ova, FALSE, NULL);
	info = vmi_source_to_variant (source);
	member = member_of (info, 0);
	show (member);
	g_assert_cmpstr (str_of (member, "location"), ==, "stream");
	g_assert_cmpuint (u64_of (member, "copied-bytes"), ==, vmi_test_file_size (vmdk));
	nested = inspection_of (member);
	g_assert_cmpstr (str_of (nested, "format"), ==, "vmdk");
	g_assert_cmpuint (u64_of (nested, "virtual-size"), ==, 4 * MiB);
	g_assert_cmpuint (u64_of (nested, "file-size"), ==, vmi_test_file_size (vmdk));

	out = g_build_filename (dir, "out.qcow2", NULL);
	g_assert_true (convert_path (ova, "qcow2", out, "@a{sv} {}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", out, "qcow2"));
	g_assert_true (convert_path (ova, "raw", out, "{'disk': <uint64 0>}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (vmdk, "vmdk", out, "raw"));
	/* a cancelled conversion stops while the member is inflated */
	{
		g_autoptr(GCancellable) cancellable = g_cancellable_new ();
		g_autoptr(GVariant) none = g_variant_ref_sink (g_variant_new_parsed ("@a{sv} {}"));
		g_autoptr(GError) error = NULL;
		int fd = open (out, O_RDWR | O_TRUNC | O_CLOEXEC);

		g_assert_cmpint (fd, >=, 0);
		g_cancellable_cancel (cancellable);
		g_assert_false (vmi_convert (source, vmi_registry_lookup (registry, "raw", NULL), fd,
					     none, NULL, NULL, cancellable, &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_CANCELLED);
		close (fd);
	}
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * A compressed member larger than Inspect's head: Inspect copies 64 MiB and says so
 * (copy-complete false); Convert copies it whole, and the output equals the disk.
 */
static void
test_members_gzip_head (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *disk = g_build_filename (dir, "big.raw", NULL);
	g_autofree char *gz = g_strconcat (disk, ".gz", NULL);
	g_autofree char *ova = NULL, *out = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, member = NULL;
	gboolean complete = TRUE;

	/* 70 MiB of zeros, then 1 MiB of data: a small gzip */
	vmi_test_sh_ok ("(head -c 70M /dev/zero; head -c 1M /dev/urandom) > '%s' && gzip -n -k -1 '%s'", disk, disk);
	ova = make_ova (dir, "head", (TestFile[]){ { "big.raw.gz", gz, 71 * MiB, NULL, TRUE } }, 1);
	source = open_path (ova, FALSE, NULL);
	info = vmi_source_to_variant (source);
	member = member_of (info, 0);
	show (member);
	g_assert_cmpuint (u64_of (member, "copied-bytes"), ==, VMI_MEMBERS_INSPECT_HEAD);
	g_assert_true (g_variant_lookup (member, "copy-complete", "b", &complete));
	g_assert_false (complete);
	g_clear_pointer (&member, g_variant_unref);
	out = g_build_filename (dir, "out.raw", NULL);
	g_assert_true (convert_path (ova, "raw", out, "@a{sv} {}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (disk, "raw", out, "raw"));
	/* the zeros stayed holes on the way */
	g_assert_cmpuint (vmi_test_file_allocated (out), <, 8 * MiB);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* The read_member of the ova plugin on its own: forward, back, past the end. */
static void
test_members_read_member (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *data = g_build_filename (dir, "data.raw", NULL);
	g_autofree char *gz = g_strconcat (data, ".gz", NULL);
	g_autofree char *ova = NULL;
	g_autofree char *expected = NULL;
	g_autofree guint8 *buf = g_malloc (MiB);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	const VmiFormatPlugin *plugin;
	gsize len = 0, got = 0;
	static const guint64 offsets[] = { 0, 700000, 1000, 2 * MiB - 10, 5, 2 * MiB, 3 * MiB };

	vmi_test_make_pattern_image (data, 2 * MiB, 41);
	g_assert_true (g_file_get_contents (data, &expected, &len, NULL));
	vmi_test_sh_ok ("gzip -n -k '%s'", data);
	ova = make_ova (dir, "rm", (TestFile[]){ { "data.raw.gz", gz, 2 * MiB, NULL, TRUE } }, 1);
	source = open_path (ova, FALSE, NULL);
	plugin = vmi_source_get_plugin (source);
	g_assert_nonnull (plugin->read_member);
	for (gsize i = 0; i < G_N_ELEMENTS (offsets); i++) {
		gsize want = 300000;

		g_assert_true (plugin->read_member (vmi_source_get_image (source), 0, offsets[i], buf, want, &got, &error));
		g_assert_no_error (error);
		g_assert_cmpuint (got, ==, offsets[i] >= len ? 0 : MIN (want, len - offsets[i]));
		if (got > 0)
			g_assert_cmpmem (buf, got, expected + offsets[i], got);
	}
	/* a member that is not compressed has no stream */
	g_assert_false (plugin->read_member (vmi_source_get_image (source), 9, 0, buf, 10, &got, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * A gzip member that inflates far beyond its disk's declared capacity (40 MiB of zeros for a
 * 1 MiB disk): Inspect names UnsafeImage for it, Convert fails with VMI_ERROR_UNSAFE_IMAGE. A
 * damaged and a truncated gzip member are CorruptImage.
 */
static void
test_members_gzip_bomb (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *bomb = g_build_filename (dir, "bomb.raw.gz", NULL);
	g_autofree char *cut = g_build_filename (dir, "cut.raw.gz", NULL);
	g_autofree char *ova = NULL, *out = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, m0 = NULL, m1 = NULL;
	g_autoptr(GError) error = NULL;

	vmi_test_sh_ok ("head -c 40M /dev/zero | gzip -n > '%s'", bomb);
	g_assert_cmpuint (vmi_test_file_size (bomb), <, 100 * 1024);
	/* a real disk's gzip cut in the middle */
	vmi_test_sh_ok ("head -c 1M /dev/urandom | gzip -n | head -c 500000 > '%s'", cut);
	ova = make_ova (dir, "bomb",
			(TestFile[]){ { "bomb.raw.gz", bomb, MiB, NULL, TRUE },
				      { "cut.raw.gz", cut, MiB, NULL, TRUE } },
			2);
	source = open_path (ova, FALSE, NULL);
	info = vmi_source_to_variant (source);
	m0 = member_of (info, 0);
	m1 = member_of (info, 1);
	show (m0);
	show (m1);
	g_assert_false (g_variant_lookup (m0, "inspection", "@a{sv}", NULL));
	g_assert_cmpstr (str_of (m0, "error-name"), ==, "UnsafeImage");
	g_assert_nonnull (strstr (str_of (m0, "error"), "bomb.raw.gz"));
	g_assert_nonnull (strstr (str_of (m0, "error"), "decompression bomb"));
	g_assert_cmpstr (str_of (m1, "error-name"), ==, "CorruptImage");
	g_assert_nonnull (strstr (str_of (m1, "error"), "ends early"));

	out = g_build_filename (dir, "out.raw", NULL);
	g_assert_false (convert_path (ova, "raw", out, "{'disk': <uint64 0>}", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	g_test_message ("%s", error->message);
	g_clear_error (&error);
	g_assert_false (convert_path (ova, "raw", out, "{'member': <'cut.raw.gz'>}", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- a tar written byte by byte, for names GNU tar would not store ---- */

static void tar_add_entry (GByteArray *tar, const char *name, const void *data, gsize size,
			   char type, const char *link);

static void
tar_add (GByteArray *tar, const char *name, const void *data, gsize size)
{
	tar_add_entry (tar, name, data, size, '0', NULL);
}

static void
tar_add_entry (GByteArray *tar, const char *name, const void *data, gsize size, char type,
	       const char *link)
{
	guint8 h[512] = { 0 };
	guint sum = 0;
	static const guint8 zeros[512] = { 0 };

	g_assert_cmpuint (strlen (name), <, 100);
	memcpy (h, name, strlen (name));
	memcpy (h + 100, "0000644", 7);
	memcpy (h + 108, "0000000", 7);
	memcpy (h + 116, "0000000", 7);
	g_snprintf ((char *) h + 124, 12, "%011" G_GINT64_MODIFIER "o", (gint64) size);
	memcpy (h + 136, "00000000000", 11);
	h[156] = (guint8) type;
	if (link != NULL)
		memcpy (h + 157, link, MIN (strlen (link), 100));
	memcpy (h + 257, "ustar", 6);
	memcpy (h + 263, "00", 2);
	memset (h + 148, ' ', 8);
	for (guint i = 0; i < 512; i++)
		sum += h[i];
	g_snprintf ((char *) h + 148, 8, "%06o", sum);
	g_byte_array_append (tar, h, 512);
	g_byte_array_append (tar, data, (guint) size);
	if (size % 512 != 0)
		g_byte_array_append (tar, zeros, (guint) (512 - size % 512));
}

static char *
tar_write (const char *dir, const char *name, GByteArray *tar)
{
	static const guint8 zeros[1024] = { 0 };
	char *path = g_build_filename (dir, name, NULL);

	g_byte_array_append (tar, zeros, sizeof zeros);
	vmi_test_write_file (path, tar->data, tar->len);
	return path;
}

/*
 * Members named "../x" and "/etc/x" are only names: their bytes come from the archive, and the
 * files "../x" (which exists beside the folder, with other content) and /etc/x are not touched.
 * A lone OVF naming "../x" beside it is refused by the sibling opener.
 */
static void
test_members_hostile_names (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *sub = g_build_filename (dir, "sub", NULL);
	g_autofree char *decoy = g_build_filename (dir, "x", NULL);
	g_autofree char *disk = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *ova = NULL, *ovf = NULL, *out = NULL, *xml = NULL, *data = NULL;
	g_autoptr(GByteArray) tar = g_byte_array_new ();
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, m0 = NULL, m1 = NULL, i0 = NULL, i1 = NULL;
	g_autoptr(GError) error = NULL;
	GStatBuf before, after;
	gsize len = 0;

	g_assert_cmpint (g_mkdir (sub, 0755), ==, 0);
	vmi_test_write_file (decoy, "not the member", -1);
	g_assert_cmpint (g_stat (decoy, &before), ==, 0);
	vmi_test_make_pattern_image (disk, MiB + 512, 51);
	g_assert_true (g_file_get_contents (disk, &data, &len, NULL));
	xml = ovf_text ((TestFile[]){ { "../x", disk, MiB + 512, NULL, FALSE },
				      { "/etc/x", disk, MiB + 512, NULL, FALSE } },
			2);
	tar_add (tar, "t.ovf", xml, strlen (xml));
	tar_add (tar, "../x", data, len);
	tar_add (tar, "/etc/x", data, len);
	ova = tar_write (sub, "t.ova", tar);

	source = open_path (ova, TRUE, NULL);
	info = vmi_source_to_variant (source);
	g_assert_false (vmi_source_is_safe (source));
	m0 = member_of (info, 0);
	m1 = member_of (info, 1);
	g_assert_cmpstr (str_of (m0, "name"), ==, "../x");
	g_assert_cmpstr (str_of (m1, "name"), ==, "/etc/x");
	g_assert_cmpstr (str_of (m0, "location"), ==, "stored");
	i0 = inspection_of (m0);
	i1 = inspection_of (m1);
	g_assert_cmpstr (str_of (i0, "format"), ==, "raw");
	g_assert_cmpuint (u64_of (i0, "virtual-size"), ==, MiB + 512);
	g_assert_cmpuint (u64_of (i1, "virtual-size"), ==, MiB + 512);
	out = g_build_filename (dir, "out.raw", NULL);
	g_assert_true (convert_path (ova, "raw", out, "{'member': <'../x'>}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (disk, "raw", out, "raw"));
	g_assert_true (convert_path (ova, "raw", out, "{'member': <'/etc/x'>}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (disk, "raw", out, "raw"));
	g_assert_cmpint (g_stat (decoy, &after), ==, 0);
	g_assert_cmpint (after.st_size, ==, before.st_size);
	g_assert_cmpint (after.st_mtime, ==, before.st_mtime);
	g_assert_false (g_file_test ("/etc/x", G_FILE_TEST_EXISTS));
	g_clear_pointer (&source, vmi_source_free);
	g_clear_pointer (&info, g_variant_unref);
	g_clear_pointer (&m0, g_variant_unref);

	/* the same names in a lone descriptor: siblings that leave the folder are refused */
	ovf = g_build_filename (sub, "t.ovf", NULL);
	g_assert_true (g_file_set_contents (ovf, xml, -1, NULL));
	source = open_path (ovf, TRUE, NULL);
	info = vmi_source_to_variant (source);
	m0 = member_of (info, 0);
	g_assert_cmpstr (str_of (m0, "location"), ==, "sibling");
	g_assert_cmpstr (str_of (m0, "error-name"), ==, "UnsafeImage");
	g_assert_false (convert_path (ovf, "raw", out, "{'member': <'../x'>}", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	g_clear_error (&error);
	g_assert_false (convert_path (ovf, "raw", out, "{'member': <'/etc/x'>}", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A lone OVF: its disks are siblings, opened through the folder; without one, not at all. */
static void
test_members_ovf_siblings (void)
{
	g_autofree char *dir = NULL, *raw = NULL, *vmdk = NULL, *gz = NULL, *ovf = NULL, *xml = NULL;
	g_autofree char *out = NULL, *raw_disk = NULL, *raw2 = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, m0 = NULL, m1 = NULL, i0 = NULL, i1 = NULL;
	g_autoptr(GError) error = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	vmdk = make_disk (dir, "disk.vmdk", 2 * MiB, 61, "vmdk", NULL, &raw);
	raw_disk = make_disk (dir, "data.img", MiB, 62, "raw", NULL, &raw2);
	vmi_test_sh_ok ("gzip -n '%s'", raw_disk);
	gz = g_strconcat (raw_disk, ".gz", NULL);
	xml = ovf_text ((TestFile[]){ { "disk.vmdk", vmdk, 2 * MiB, "http://www.vmware.com/interfaces/specifications/vmdk.html#sparse", FALSE },
				      { "data.img.gz", gz, MiB, NULL, TRUE } },
			2);
	ovf = g_build_filename (dir, "vm.ovf", NULL);
	g_assert_true (g_file_set_contents (ovf, xml, -1, NULL));
	source = open_path (ovf, TRUE, NULL);
	info = vmi_source_to_variant (source);
	g_assert_cmpstr (str_of (info, "container-format"), ==, "ovf");
	g_assert_cmpstr (str_of (info, "disk-format"), ==, "vmdk");
	m0 = member_of (info, 0);
	m1 = member_of (info, 1);
	g_assert_cmpstr (str_of (m0, "location"), ==, "sibling");
	g_assert_cmpstr (str_of (m1, "location"), ==, "stream");
	i0 = inspection_of (m0);
	i1 = inspection_of (m1);
	g_assert_cmpstr (str_of (i0, "format"), ==, "vmdk");
	g_assert_cmpuint (u64_of (i0, "virtual-size"), ==, 2 * MiB);
	g_assert_cmpstr (str_of (i1, "format"), ==, "raw");
	g_assert_cmpuint (u64_of (i1, "virtual-size"), ==, MiB);
	out = g_build_filename (dir, "out.qcow2", NULL);
	g_assert_true (convert_path (ovf, "qcow2", out, "@a{sv} {}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", out, "qcow2"));
	g_assert_true (convert_path (ovf, "qcow2", out, "{'disk': <uint64 1>}", NULL));
	g_assert_true (vmi_test_qemu_img_compare (raw2, "raw", out, "qcow2"));
	g_clear_pointer (&source, vmi_source_free);
	g_clear_pointer (&info, g_variant_unref);
	g_clear_pointer (&m0, g_variant_unref);

	/* without the folder (an fd over D-Bus): listed, not opened */
	source = open_path (ovf, FALSE, NULL);
	info = vmi_source_to_variant (source);
	m0 = member_of (info, 0);
	g_assert_cmpstr (str_of (m0, "error-name"), ==, "NotSupported");
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * An OVA in an OVA in an OVA: the members of the middle one (depth 1) are inspected, down to
 * the disk of the inner one (depth 2); the disk of a third level is listed, not opened. A
 * container of 20 disks inspects its first VMI_MEMBERS_MAX_INSPECTED.
 */
static void
test_members_bounds (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *disk = g_build_filename (dir, "d.raw", NULL);
	g_autofree char *inner = NULL, *middle = NULL, *outer = NULL, *many = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, m = NULL, mi = NULL, mm = NULL, mmi = NULL, d = NULL;
	g_autoptr(GVariant) di = NULL, deep = NULL;
	TestFile files[20];
	char *names[20] = { NULL };

	vmi_test_make_pattern_image (disk, 64 * 1024, 71);
	inner = make_ova (dir, "inner", (TestFile[]){ { "d.raw", disk, 64 * 1024, NULL, FALSE } }, 1);
	middle = make_ova (dir, "middle", (TestFile[]){ { "inner.ova", inner, 64 * 1024, NULL, FALSE } }, 1);
	source = open_path (middle, FALSE, NULL);
	info = vmi_source_to_variant (source);
	m = member_of (info, 0);
	mi = inspection_of (m);
	g_assert_cmpstr (str_of (mi, "format"), ==, "ova");
	d = member_of (mi, 0);
	di = inspection_of (d);
	g_assert_cmpstr (str_of (di, "format"), ==, "raw");
	g_assert_cmpuint (u64_of (di, "virtual-size"), ==, 64 * 1024);
	g_clear_pointer (&source, vmi_source_free);
	g_clear_pointer (&info, g_variant_unref);
	g_clear_pointer (&m, g_variant_unref);
	g_clear_pointer (&mi, g_variant_unref);
	g_clear_pointer (&d, g_variant_unref);

	outer = make_ova (dir, "outer", (TestFile[]){ { "middle.ova", middle, 64 * 1024, NULL, FALSE } }, 1);
	source = open_path (outer, FALSE, NULL);
	info = vmi_source_to_variant (source);
	m = member_of (info, 0);
	mi = inspection_of (m);
	mm = member_of (mi, 0);
	mmi = inspection_of (mm);
	g_assert_cmpstr (str_of (mmi, "format"), ==, "ova");
	deep = member_of (mmi, 0);
	g_assert_false (g_variant_lookup (deep, "inspection", "@a{sv}", NULL));
	g_assert_cmpstr (str_of (deep, "error-name"), ==, "UnsafeImage");
	g_assert_nonnull (strstr (str_of (deep, "error"), "nested"));
	g_clear_pointer (&source, vmi_source_free);
	g_clear_pointer (&info, g_variant_unref);

	for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
		names[i] = g_strdup_printf ("d%02u.raw", i);
		files[i] = (TestFile){ names[i], disk, 64 * 1024, NULL, FALSE };
	}
	many = make_ova (dir, "many", files, G_N_ELEMENTS (files));
	source = open_path (many, FALSE, NULL);
	info = vmi_source_to_variant (source);
	g_assert_cmpuint (n_members (info), ==, G_N_ELEMENTS (files));
	for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
		g_autoptr(GVariant) member = member_of (info, i);

		g_assert_cmpint (g_variant_lookup (member, "inspection", "@a{sv}", NULL), ==,
				 i < VMI_MEMBERS_MAX_INSPECTED);
	}
	g_clear_pointer (&source, vmi_source_free);
	for (guint i = 0; i < G_N_ELEMENTS (files); i++)
		g_free (names[i]);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A file stored in chunks (ovf:chunkSize, href.000000000, ...) reads as the pieces joined. */
static void
test_members_chunked (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *disk = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *xml = NULL, *plain = NULL, *ova = NULL, *out = NULL, *data = NULL;
	g_autoptr(GByteArray) tar = g_byte_array_new ();
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, m = NULL, inspection = NULL, facts = NULL;
	gsize len = 0;
	guint32 chunks = 0;

	vmi_test_make_pattern_image (disk, MiB + 512, 121);
	g_assert_true (g_file_get_contents (disk, &data, &len, NULL));
	plain = ovf_text ((TestFile[]){ { "disk.raw", disk, MiB + 512, NULL, FALSE } }, 1);
	{
		g_auto(GStrv) parts = g_strsplit (plain, "ovf:href=\"disk.raw\"", 2);

		xml = g_strjoinv ("ovf:href=\"disk.raw\" ovf:chunkSize=\"400000\"", parts);
	}
	tar_add (tar, "t.ovf", xml, strlen (xml));
	tar_add (tar, "disk.raw.000000000", data, 400000);
	tar_add (tar, "disk.raw.000000001", data + 400000, 400000);
	tar_add (tar, "disk.raw.000000002", data + 800000, len - 800000);
	ova = tar_write (dir, "t.ova", tar);
	source = open_path (ova, FALSE, NULL);
	info = vmi_source_to_variant (source);
	m = member_of (info, 0);
	show (m);
	g_assert_cmpstr (str_of (m, "location"), ==, "stream");
	g_assert_cmpuint (u64_of (m, "size"), ==, len);
	facts = g_variant_lookup_value (m, "facts", G_VARIANT_TYPE_VARDICT);
	g_assert_true (g_variant_lookup (facts, "chunks", "u", &chunks));
	g_assert_cmpuint (chunks, ==, 3);
	inspection = inspection_of (m);
	g_assert_cmpstr (str_of (inspection, "format"), ==, "raw");
	g_assert_cmpuint (u64_of (inspection, "virtual-size"), ==, len);
	out = g_build_filename (dir, "out.raw", NULL);
	g_assert_true (convert_path (ova, "raw", out, "@a{sv} {}", NULL));
	vmi_test_sh_ok ("cmp '%s' '%s'", disk, out);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* An absent member is listed; choosing it is CorruptImage. So is a link: never followed. */
static void
test_members_absent (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *disk = g_build_filename (dir, "d.raw", NULL);
	g_autofree char *xml = NULL, *ova = NULL, *out = NULL;
	g_autoptr(GByteArray) tar = g_byte_array_new ();
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, m = NULL;
	g_autoptr(GError) error = NULL;

	vmi_test_make_pattern_image (disk, 64 * 1024, 81);
	xml = ovf_text ((TestFile[]){ { "gone.vmdk", disk, 64 * 1024, vmdk_stream_uri, FALSE },
				      { "link.raw", disk, 64 * 1024, NULL, FALSE } },
			2);
	tar_add (tar, "t.ovf", xml, strlen (xml));
	tar_add_entry (tar, "link.raw", NULL, 0, '2', "/etc/passwd");
	ova = tar_write (dir, "t.ova", tar);
	source = open_path (ova, FALSE, NULL);
	info = vmi_source_to_variant (source);
	m = member_of (info, 0);
	g_assert_cmpstr (str_of (m, "location"), ==, "absent");
	g_assert_cmpstr (str_of (m, "error-name"), ==, "CorruptImage");
	g_clear_pointer (&m, g_variant_unref);
	m = member_of (info, 1);
	g_assert_cmpstr (str_of (m, "name"), ==, "link.raw");
	g_assert_cmpstr (str_of (m, "location"), ==, "absent");
	g_assert_false (g_variant_lookup (m, "inspection", "@a{sv}", NULL));
	g_assert_false (vmi_source_is_safe (source));
	out = g_build_filename (dir, "out.raw", NULL);
	g_assert_false (convert_path (ova, "raw", out, "@a{sv} {}", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * A UEC tarball (a gzipped tar of a machine image and a kernel): its members stream through
 * the uec plugin's read_member; "member" chooses by role ("kernel") or by name, the default is
 * the machine image.
 */
/* server.tar.gz in dir: a 1 MiB pattern machine image and an arm64 kernel; their paths. */
static char *
make_uec (const char *dir, char **disk, char **kernel)
{
	g_autofree char *uec = g_build_filename (dir, "server.tar.gz", NULL);
	guint8 image[64 * 1024] = { 0 };

	*disk = g_build_filename (dir, "server-cloudimg-amd64.img", NULL);
	*kernel = g_build_filename (dir, "vmlinuz-6.1.0-arm64", NULL);
	vmi_test_make_pattern_image (*disk, MiB, 111);
	/* an arm64 Image header ("ARM\x64" at 0x38, image_size 64 KiB) and some text */
	memcpy (image + 0x38, "ARM\x64", 4);
	image[0x12] = 0x01;
	memcpy (image + 4096, "a kernel of the test", 20);
	vmi_test_write_file (*kernel, image, sizeof image);
	vmi_test_sh_ok ("tar -czf '%s' -C '%s' server-cloudimg-amd64.img vmlinuz-6.1.0-arm64", uec, dir);
	return g_steal_pointer (&uec);
}

static void
test_members_uec_roles (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *disk = NULL, *kernel = NULL, *uec = NULL;
	g_autofree char *out = g_build_filename (dir, "out.raw", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL, m0 = NULL, m1 = NULL, i1 = NULL;
	g_autoptr(GError) error = NULL;

	if (vmi_registry_lookup (registry, "uec", NULL) == NULL) {
		g_test_skip ("the uec plugin is not built");
		return;
	}
	uec = make_uec (dir, &disk, &kernel);
	source = open_path (uec, FALSE, NULL);
	info = vmi_source_to_variant (source);
	m0 = member_of (info, 0);
	m1 = member_of (info, 1);
	g_assert_cmpstr (str_of (m0, "role"), ==, "disk");
	g_assert_cmpstr (str_of (m1, "role"), ==, "kernel");
	g_assert_cmpstr (str_of (m1, "location"), ==, "stream");
	i1 = inspection_of (m1);
	g_assert_cmpstr (str_of (i1, "format"), ==, "aki");
	g_assert_true (convert_path (uec, "raw", out, "{'member': <'kernel'>}", NULL));
	vmi_test_sh_ok ("cmp '%s' '%s'", kernel, out);
	g_assert_true (convert_path (uec, "raw", out, "{'member': <'vmlinuz-6.1.0-arm64'>}", NULL));
	vmi_test_sh_ok ("cmp '%s' '%s'", kernel, out);
	g_assert_true (convert_path (uec, "raw", out, "@a{sv} {}", NULL));
	vmi_test_sh_ok ("cmp '%s' '%s'", disk, out);
	g_assert_false (convert_path (uec, "raw", out, "{'member': <'ramdisk'>}", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* vmi_source_open_range: an image inside another file, detected from its own head and tail. */
static void
test_members_open_range (void)
{
	g_autofree char *dir = NULL, *raw = NULL, *vhd = NULL, *big = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	guint64 size;
	int fd;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	/* a fixed VHD is known by its footer: detection must read the range's tail, not the file's */
	vhd = make_disk (dir, "d.vhd", MiB, 91, "vpc", "-o subformat=fixed", &raw);
	size = vmi_test_file_size (vhd);
	big = g_build_filename (dir, "big", NULL);
	vmi_test_sh_ok ("(head -c 12345 /dev/urandom; cat '%s'; head -c 7000 /dev/urandom) > '%s'", vhd, big);
	fd = open (big, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	source = vmi_source_open_range (registry, fd, 12345, size, NULL, FALSE, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_source_get_plugin (source)->name, ==, "vhd");
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, vmi_test_qemu_img_virtual_size (vhd, "vpc"));
	g_assert_cmpuint (vmi_source_get_offset (source), ==, 12345);
	g_clear_pointer (&source, vmi_source_free);
	/* a range beyond the file */
	g_assert_null (vmi_source_open_range (registry, fd, 12345, size + 7001, NULL, FALSE, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	g_clear_error (&error);
	g_assert_null (vmi_source_open_range (registry, fd, G_MAXUINT64 - 10, 100, NULL, FALSE, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	close (fd);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* disk-format and container-format of each format, as Glance names them. */
static void
test_members_glance_names (void)
{
	static const struct {
		const char *name;
		const char *qemu_format; /* NULL: made otherwise */
		const char *qemu_options;
		const char *format;
		const char *disk_format;
		const char *container_format;
	} cases[] = {
		{ "raw", "raw", NULL, "raw", "raw", "bare" },
		{ "qcow2", "qcow2", NULL, "qcow2", "qcow2", "bare" },
		{ "vmdk", "vmdk", NULL, "vmdk", "vmdk", "bare" },
		{ "vmdk-stream", "vmdk", "-o subformat=streamOptimized", "vmdk", "vmdk", "bare" },
		{ "vhd", "vpc", NULL, "vhd", "vhd", "bare" },
		{ "vhd-fixed", "vpc", "-o subformat=fixed", "vhd", "vhd", "bare" },
		{ "vhdx", "vhdx", NULL, "vhdx", "vhdx", "bare" },
		{ "vdi", "vdi", NULL, "vdi", "vdi", "bare" },
		{ "iso", NULL, NULL, "iso", "iso", "bare" },
		{ "ova", NULL, NULL, "ova", "vmdk", "ova" },
		{ "ovf", NULL, NULL, "ovf", "vmdk", "ovf" },
		/* classify-only formats: a kernel, a ramdisk, a machine image */
		{ "aki", NULL, NULL, "aki", "aki", "aki" },
		{ "ari", NULL, NULL, "ari", "ari", "ari" },
		{ "ami", NULL, NULL, "ami", "ami", "ami" },
	};
	g_autofree char *dir = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autofree char *path = g_strdup_printf ("%s/image.%s", dir, cases[i].name);
		g_autoptr(VmiSource) source = NULL;
		g_autoptr(GVariant) info = NULL;

		g_test_message ("%s", cases[i].name);
		if (cases[i].qemu_format != NULL) {
			g_free (make_disk (dir, strrchr (path, '/') + 1, MiB, 1, cases[i].qemu_format,
					   cases[i].qemu_options, NULL));
		} else if (strcmp (cases[i].name, "iso") == 0) {
			g_autofree char *tree = g_build_filename (dir, "tree", NULL);

			if (!vmi_test_require_program ("xorriso", "xorriso", "an ISO 9660 image"))
				continue;
			g_assert_cmpint (g_mkdir (tree, 0755), ==, 0);
			vmi_test_sh_ok ("echo hello > '%s/hello.txt' && xorriso -as mkisofs -quiet -o '%s' '%s'",
					tree, path, tree);
		} else if (strcmp (cases[i].name, "aki") == 0) {
			/* an arm64 Image: its 64-byte header ("ARM\x64" at 0x38) and a body */
			guint8 kernel[64 * 1024] = { 0 };

			memcpy (kernel + 0x38, "ARM\x64", 4);
			kernel[0x10 + 2] = 0x01; /* image_size 64 KiB, little-endian */
			vmi_test_write_file (path, kernel, sizeof kernel);
		} else if (strcmp (cases[i].name, "ari") == 0) {
			if (!vmi_test_require_program ("cpio", "cpio", "a newc ramdisk"))
				continue;
			vmi_test_sh_ok ("cd '%s' && echo init > init && echo init | cpio --quiet -o -H newc | gzip -n > '%s'",
					dir, path);
		} else if (strcmp (cases[i].name, "ami") == 0) {
			if (!vmi_test_require_program ("sfdisk", "fdisk", "a partitioned machine image"))
				continue;
			vmi_test_sh_ok ("truncate -s 4M '%s' && echo ',,83' | sfdisk -q '%s' > /dev/null", path, path);
		} else {
			g_autofree char *vmdk = make_disk (dir, "member.vmdk", MiB, 2, "vmdk",
							   "-o subformat=streamOptimized", NULL);
			g_autofree char *ova = make_ova (dir, "glance", (TestFile[]){ { "member.vmdk", vmdk, MiB, vmdk_stream_uri, FALSE } }, 1);

			if (strcmp (cases[i].name, "ova") == 0) {
				vmi_test_sh_ok ("mv '%s' '%s'", ova, path);
			} else {
				g_autofree char *xml = ovf_text ((TestFile[]){ { "member.vmdk", vmdk, MiB, vmdk_stream_uri, FALSE } }, 1);

				g_assert_true (g_file_set_contents (path, xml, -1, NULL));
			}
		}
		{
			int fd = open (path, O_RDONLY | O_CLOEXEC);
			g_autoptr(GError) error = NULL;

			g_assert_cmpint (fd, >=, 0);
			/* classify: raw disks may be machine images, plain files kernels */
			source = vmi_source_open_full (registry, fd, -1, NULL, TRUE, NULL, &error);
			g_assert_no_error (error);
			close (fd);
		}
		info = vmi_source_to_variant (source);
		g_assert_cmpstr (str_of (info, "format"), ==, cases[i].format);
		g_assert_cmpstr (str_of (info, "disk-format"), ==, cases[i].disk_format);
		g_assert_cmpstr (str_of (info, "container-format"), ==, cases[i].container_format);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ---- over D-Bus ---- */

static GVariant *
bus_inspect (const char *path, GError **error)
{
	g_autoptr(GVariant) reply = g_dbus_connection_call_sync (
		vmi_test_bus_get_connection (bus), "org.vmimaged.VMImage1",
		"/org/vmimaged/VMImage1/Manager", "org.vmimaged.VMImage1.Manager", "Inspect",
		g_variant_new ("(s@a{sv})", path, g_variant_new_parsed ("@a{sv} {}")),
		G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);

	return reply != NULL ? g_variant_get_child_value (reply, 0) : NULL;
}

/* The Error of the last job that failed. */
static char *job_error;

/* Starts a Convert and waits for its job; TRUE when it completed, else *message says why. */
static gboolean
bus_convert (const char *src, const char *dst, const char *format, const char *options,
	     GError **error, char **message)
{
	GDBusConnection *connection = vmi_test_bus_get_connection (bus);
	g_autoptr(GVariant) reply = NULL;
	const char *job = NULL;

	reply = g_dbus_connection_call_sync (
		connection, "org.vmimaged.VMImage1", "/org/vmimaged/VMImage1/Manager",
		"org.vmimaged.VMImage1.Manager", "Convert",
		g_variant_new ("(sss@a{sv})", src, dst, format, g_variant_new_parsed (options)),
		G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
	if (reply == NULL)
		return FALSE;
	g_variant_get (reply, "(&o)", &job);
	for (guint i = 0; i < 6000; i++) {
		g_autoptr(GVariant) props = NULL;
		g_autoptr(GVariant) all = NULL;
		const char *state = NULL;

		all = g_dbus_connection_call_sync (connection, "org.vmimaged.VMImage1", job,
						   "org.freedesktop.DBus.Properties", "GetAll",
						   g_variant_new ("(s)", "org.vmimaged.VMImage1.Job"),
						   G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
						   NULL, NULL);
		g_assert_nonnull (all);
		props = g_variant_get_child_value (all, 0);
		g_assert_true (g_variant_lookup (props, "State", "&s", &state));
		if (g_strcmp0 (state, "queued") != 0 && g_strcmp0 (state, "running") != 0) {
			if (g_strcmp0 (state, "completed") == 0)
				return TRUE;
			g_free (*message);
			*message = NULL;
			g_variant_lookup (props, "ErrorMessage", "s", message);
			g_free (job_error);
			job_error = NULL;
			g_variant_lookup (props, "Error", "s", &job_error);
			return FALSE;
		}
		g_usleep (10 * 1000);
	}
	g_error ("job %s did not end within 60 s", job);
}

static void
test_members_dbus (void)
{
	g_autofree char *dir = NULL, *raw = NULL, *raw2 = NULL, *vmdk = NULL, *d2 = NULL, *ova = NULL;
	g_autofree char *gz = NULL, *ova_gz = NULL, *out = NULL, *message = NULL;
	g_autoptr(GVariant) info = NULL, member = NULL, nested = NULL;
	g_autoptr(GError) error = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	/* the daemon only for this test, so the others run without a bus */
	bus = vmi_test_bus_new ();
	dir = vmi_test_tmpdir_new ();
	vmdk = make_disk (dir, "disk.vmdk", 4 * MiB, 101, "vmdk", "-o subformat=streamOptimized", &raw);
	d2 = make_disk (dir, "disk2.vdi", 2 * MiB, 102, "vdi", NULL, &raw2);
	ova = make_ova (dir, "bus",
			(TestFile[]){ { "disk.vmdk", vmdk, 4 * MiB, vmdk_stream_uri, FALSE },
				      { "disk2.vdi", d2, 2 * MiB, NULL, FALSE } },
			2);
	info = bus_inspect (ova, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (str_of (info, "disk-format"), ==, "vmdk");
	g_assert_cmpstr (str_of (info, "container-format"), ==, "ova");
	member = member_of (info, 0);
	nested = inspection_of (member);
	g_assert_cmpstr (str_of (nested, "format"), ==, "vmdk");
	g_assert_cmpuint (u64_of (nested, "virtual-size"), ==, vmi_test_qemu_img_virtual_size (vmdk, "vmdk"));
	g_clear_pointer (&member, g_variant_unref);
	g_clear_pointer (&nested, g_variant_unref);
	member = member_of (info, 1);
	nested = inspection_of (member);
	g_assert_cmpstr (str_of (nested, "format"), ==, "vdi");

	out = g_build_filename (dir, "out.qcow2", NULL);
	g_assert_true (bus_convert (ova, out, "qcow2", "{'disk': <uint64 0>}", &error, &message));
	g_assert_true (vmi_test_qemu_img_compare (vmdk, "vmdk", out, "qcow2"));
	g_unlink (out);
	g_assert_true (bus_convert (ova, out, "raw", "{'disk': <uint64 1>}", &error, &message));
	g_assert_true (vmi_test_qemu_img_compare (raw2, "raw", out, "raw"));
	g_unlink (out);
	g_assert_false (bus_convert (ova, out, "raw", "{'disk': <uint64 5>}", &error, &message));
	g_assert_true (g_dbus_error_is_remote_error (error));
	{
		g_autofree char *name = g_dbus_error_get_remote_error (error);

		g_assert_cmpstr (name, ==, "org.vmimaged.VMImage1.Error.InvalidArgument");
	}
	g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
	g_clear_error (&error);

	/* a lone OVF over the bus: its disks beside it, opened as the caller */
	{
		g_autofree char *xml = ovf_text ((TestFile[]){ { "disk.vmdk", vmdk, 4 * MiB, vmdk_stream_uri, FALSE },
							       { "../disk2.vdi", d2, 2 * MiB, NULL, FALSE } },
						 2);
		g_autofree char *ovf = g_build_filename (dir, "vm.ovf", NULL);
		g_autoptr(GVariant) ovf_info = NULL, m0 = NULL, m1 = NULL, i0 = NULL;

		g_assert_true (g_file_set_contents (ovf, xml, -1, NULL));
		ovf_info = bus_inspect (ovf, &error);
		g_assert_no_error (error);
		g_assert_cmpstr (str_of (ovf_info, "container-format"), ==, "ovf");
		m0 = member_of (ovf_info, 0);
		i0 = inspection_of (m0);
		g_assert_cmpstr (str_of (i0, "format"), ==, "vmdk");
		g_assert_cmpuint (u64_of (i0, "virtual-size"), ==, 4 * MiB);
		m1 = member_of (ovf_info, 1);
		g_assert_cmpstr (str_of (m1, "error-name"), ==, "UnsafeImage");
		g_assert_true (bus_convert (ovf, out, "raw", "@a{sv} {}", &error, &message));
		g_assert_true (vmi_test_qemu_img_compare (raw, "raw", out, "raw"));
		g_unlink (out);
	}

	/* a compressed member converts over the bus too */
	vmi_test_sh_ok ("gzip -n -k '%s'", vmdk);
	gz = g_strconcat (vmdk, ".gz", NULL);
	ova_gz = make_ova (dir, "busgz", (TestFile[]){ { "disk.vmdk.gz", gz, 4 * MiB, vmdk_stream_uri, TRUE } }, 1);
	g_assert_true (bus_convert (ova_gz, out, "qcow2", "@a{sv} {}", &error, &message));
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", out, "qcow2"));
	g_unlink (out);

	/* a gzip bomb: named in Inspect's members, and the job fails with UnsafeImage */
	{
		g_autofree char *bomb = g_build_filename (dir, "bomb.raw.gz", NULL);
		g_autofree char *ova_bomb = NULL;
		g_autoptr(GVariant) bomb_info = NULL, m0 = NULL;

		vmi_test_sh_ok ("head -c 40M /dev/zero | gzip -n > '%s'", bomb);
		ova_bomb = make_ova (dir, "busbomb", (TestFile[]){ { "bomb.raw.gz", bomb, MiB, NULL, TRUE } }, 1);
		bomb_info = bus_inspect (ova_bomb, &error);
		g_assert_no_error (error);
		m0 = member_of (bomb_info, 0);
		g_assert_cmpstr (str_of (m0, "error-name"), ==, "UnsafeImage");
		g_assert_false (bus_convert (ova_bomb, out, "raw", "@a{sv} {}", &error, &message));
		g_assert_no_error (error);
		g_test_message ("%s: %s", job_error, message);
		g_assert_cmpstr (job_error, ==, "org.vmimaged.VMImage1.Error.UnsafeImage");
		g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
		g_clear_pointer (&job_error, g_free);
	}

	/* a UEC tarball: its members inspected through their plugins, the machine image converted */
	if (vmi_registry_lookup (registry, "uec", NULL) != NULL) {
		g_autofree char *disk = NULL, *kernel = NULL, *uec = make_uec (dir, &disk, &kernel);
		g_autoptr(GVariant) uec_info = bus_inspect (uec, &error);
		g_autoptr(GVariant) m0 = NULL, m1 = NULL, i0 = NULL, i1 = NULL;

		g_assert_no_error (error);
		g_assert_cmpstr (str_of (uec_info, "format"), ==, "uec");
		g_assert_cmpuint (u64_of (uec_info, "virtual-size"), ==, MiB);
		m0 = member_of (uec_info, 0);
		m1 = member_of (uec_info, 1);
		g_assert_cmpstr (str_of (m0, "role"), ==, "disk");
		g_assert_cmpstr (str_of (m1, "role"), ==, "kernel");
		i0 = inspection_of (m0);
		i1 = inspection_of (m1);
		g_assert_cmpuint (u64_of (i0, "virtual-size"), ==, MiB);
		g_assert_cmpstr (str_of (i1, "format"), ==, "aki");
		g_assert_true (bus_convert (uec, out, "qcow2", "@a{sv} {}", &error, &message));
		g_assert_true (vmi_test_qemu_img_compare (disk, "raw", out, "qcow2"));
		g_unlink (out);
		g_assert_true (bus_convert (uec, out, "raw", "{'member': <'kernel'>}", &error, &message));
		vmi_test_sh_ok ("cmp '%s' '%s'", kernel, out);
		g_unlink (out);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

int
main (int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	const char *plugin_dir = g_getenv ("VMI_TEST_PLUGIN_DIR");
	int status;

	g_test_init (&argc, &argv, NULL);
	registry = vmi_registry_new ();
	g_assert_nonnull (plugin_dir);
	g_assert_true (vmi_registry_load_dir (registry, plugin_dir, &error));
	g_assert_no_error (error);
	g_test_add_func ("/members/ova-one-disk", test_members_ova_one_disk);
	g_test_add_func ("/members/two-disks", test_members_two_disks);
	g_test_add_func ("/members/gzip", test_members_gzip);
	g_test_add_func ("/members/gzip-head", test_members_gzip_head);
	g_test_add_func ("/members/read-member", test_members_read_member);
	g_test_add_func ("/members/gzip-bomb", test_members_gzip_bomb);
	g_test_add_func ("/members/hostile-names", test_members_hostile_names);
	g_test_add_func ("/members/ovf-siblings", test_members_ovf_siblings);
	g_test_add_func ("/members/bounds", test_members_bounds);
	g_test_add_func ("/members/chunked", test_members_chunked);
	g_test_add_func ("/members/absent", test_members_absent);
	g_test_add_func ("/members/uec-roles", test_members_uec_roles);
	g_test_add_func ("/members/open-range", test_members_open_range);
	g_test_add_func ("/members/glance-names", test_members_glance_names);
	g_test_add_func ("/members/dbus", test_members_dbus);
	status = g_test_run ();
	g_clear_pointer (&bus, vmi_test_bus_free);
	g_object_unref (registry);
	return status;
}
