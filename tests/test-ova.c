/*
 * The OVA plugin: the corpus archives, OVAs made here with GNU tar from qemu-img disks (a SHA256
 * manifest that matches, one that does not, a gzip-compressed disk), and hostile tars built
 * byte by byte.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_ova_plugin;
extern const VmiFormatPlugin vmi_raw_plugin;

static GVariant *
facts_of (VmiSource *source)
{
	g_autoptr(GVariant) info = vmi_source_to_variant (source);

	return g_variant_lookup_value (info, "format-specific", G_VARIANT_TYPE_VARDICT);
}

static GVariant *
fact_array (GVariant *facts, const char *key)
{
	GVariant *array = g_variant_lookup_value (facts, key, G_VARIANT_TYPE ("aa{sv}"));

	g_assert_nonnull (array);
	return array;
}

static char *
fact_strv (GVariant *facts, const char *key)
{
	g_autofree const char **strv = NULL;

	g_assert_true (g_variant_lookup (facts, key, "^a&s", &strv));
	return g_strjoinv (",", (char **) strv);
}

static gboolean
fact_bool (GVariant *facts, const char *key)
{
	gboolean value = FALSE;

	g_assert_true (g_variant_lookup (facts, key, "b", &value));
	return value;
}

static char *
fact_string (GVariant *dict, const char *key)
{
	const char *s = NULL;

	return g_strdup (g_variant_lookup (dict, key, "&s", &s) ? s : "-");
}

/* "name:size" of each member, joined by ','. */
static char *
member_list (GVariant *facts)
{
	g_autoptr(GVariant) members = fact_array (facts, "members");
	g_autoptr(GString) out = g_string_new (NULL);

	for (gsize i = 0; i < g_variant_n_children (members); i++) {
		g_autoptr(GVariant) m = g_variant_get_child_value (members, i);
		const char *name = NULL;
		guint64 size = 0;

		g_assert_true (g_variant_lookup (m, "name", "&s", &name));
		g_assert_true (g_variant_lookup (m, "size", "t", &size));
		g_string_append_printf (out, "%s%s:%" G_GUINT64_FORMAT, i > 0 ? "," : "", name, size);
	}
	return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Each member's bytes at the offset the plugin reports are what GNU tar extracts. */
static void
assert_member_offsets (const char *ova, GVariant *facts)
{
	g_autoptr(GVariant) members = fact_array (facts, "members");
	g_autofree char *qova = g_shell_quote (ova);
	g_autofree char *out = g_strconcat (ova, ".member", NULL);
	g_autofree char *qout = g_shell_quote (out);
	int fd = open (ova, O_RDONLY | O_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	for (gsize i = 0; i < g_variant_n_children (members); i++) {
		g_autoptr(GVariant) m = g_variant_get_child_value (members, i);
		g_autofree char *qname = NULL;
		g_autofree char *extracted = NULL;
		g_autofree guint8 *data = NULL;
		const char *name = NULL;
		guint64 size = 0, offset = 0;
		gsize extracted_len = 0;

		g_assert_true (g_variant_lookup (m, "name", "&s", &name));
		g_assert_true (g_variant_lookup (m, "size", "t", &size));
		g_assert_true (g_variant_lookup (m, "offset", "t", &offset));
		qname = g_shell_quote (name);
		g_assert_cmpint (vmi_test_sh (NULL, "tar -xOf %s %s > %s", qova, qname, qout), ==, 0);
		g_assert_true (g_file_get_contents (out, &extracted, &extracted_len, NULL));
		data = g_malloc (size + 1);
		g_assert_cmpint (pread (fd, data, size, (off_t) offset), ==, (ssize_t) size);
		g_assert_cmpmem (data, size, extracted, extracted_len);
	}
	g_unlink (out);
	close (fd);
}

/* glance's testserver.ova: GNU tar, a VirtualBox OVF and a 4-byte placeholder disk, no .mf. */
static void
test_ova_corpus_glance (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autofree char *members = NULL, *name = NULL, *os = NULL, *href = NULL, *type = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GVariant) systems = NULL, vm = NULL, disks = NULL, disk = NULL, refs = NULL;
	g_autofree guint8 *head = NULL;
	guint64 capacity = 0, offset = 0;
	guint32 os_id = 0;
	gsize len = 0;
	char placeholder[4];
	int fd;

	if (vmi_test_corpus_dir () == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	path = vmi_test_corpus_fetch ("glance-testserver.ova", dir);
	g_assert_true (g_file_get_contents (path, (char **) &head, &len, NULL));
	g_assert_cmpuint (vmi_ova_plugin.probe (head, MIN (len, VMI_PROBE_HEAD_SIZE), len), ==,
			  VMI_PROBE_CERTAIN);
	source = vmi_test_open (&vmi_ova_plugin, path, NULL);
	facts = facts_of (source);
	members = member_list (facts);
	g_assert_cmpstr (members, ==, "testserver.ovf:13383,testserver-disk1.vmdk:4");
	assert_member_offsets (path, facts);
	systems = fact_array (facts, "virtual-systems");
	g_assert_cmpuint (g_variant_n_children (systems), ==, 1);
	vm = g_variant_get_child_value (systems, 0);
	name = fact_string (vm, "name");
	g_assert_cmpstr (name, ==, "testserver");
	g_assert_true (g_variant_lookup (vm, "os-id", "u", &os_id));
	g_assert_cmpuint (os_id, ==, 94);
	os = fact_string (vm, "os-type");
	g_assert_cmpstr (os, ==, "Ubuntu_64");
	type = fact_string (vm, "virtual-system-type");
	g_assert_cmpstr (type, ==, "virtualbox-2.2");
	g_assert_false (fact_bool (facts, "virtual-system-collection"));
	disks = fact_array (facts, "disks");
	g_assert_cmpuint (g_variant_n_children (disks), ==, 1);
	disk = g_variant_get_child_value (disks, 0);
	href = fact_string (disk, "href");
	g_assert_cmpstr (href, ==, "testserver-disk1.vmdk");
	g_free (name);
	name = fact_string (disk, "id");
	g_assert_cmpstr (name, ==, "vmdisk2");
	g_free (type);
	type = fact_string (disk, "format-name");
	g_assert_cmpstr (type, ==, "vmdk-streamOptimized");
	g_assert_true (g_variant_lookup (disk, "capacity-bytes", "t", &capacity));
	g_assert_cmpuint (capacity, ==, 8589934592);
	/* the disk's data offset leads to the placeholder "ABCD" */
	g_assert_true (g_variant_lookup (disk, "member-offset", "t", &offset));
	fd = open (path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (pread (fd, placeholder, 4, (off_t) offset), ==, 4);
	close (fd);
	g_assert_cmpmem (placeholder, 4, "ABCD", 4);
	refs = fact_array (facts, "references");
	g_assert_cmpuint (g_variant_n_children (refs), ==, 1);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 8589934592);
	g_assert_false (g_variant_lookup (facts, "manifest", "&s", NULL));
	g_assert_false (fact_bool (facts, "manifest-verified"));
	g_assert_true (vmi_source_is_safe (source));
	g_assert_cmpuint (vmi_source_get_info (source)->references->len, ==, 0);
	vmi_test_save_seed ("ova", path);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* govmomi's ttylinux: ustar with the OVF, a SHA1 manifest (BSD tag lines) and a cut VMDK. */
static void
test_ova_corpus_govmomi (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autofree char *members = NULL, *name = NULL, *os = NULL, *type = NULL, *algs = NULL;
	g_autofree char *mismatch = NULL, *build = NULL, *sizes = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autoptr(GVariant) systems = NULL, vm = NULL, disks = NULL, disk = NULL;
	g_autofree guint8 *head = NULL;
	guint64 capacity = 0;
	guint32 os_id = 0;
	gsize len = 0;

	if (vmi_test_corpus_dir () == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	path = vmi_test_corpus_fetch ("govmomi-ttylinux-pc_i486-16.1.ova.bz2", dir);
	g_assert_true (g_file_get_contents (path, (char **) &head, &len, NULL));
	g_assert_cmpuint (vmi_ova_plugin.probe (head, MIN (len, VMI_PROBE_HEAD_SIZE), len), ==,
			  VMI_PROBE_CERTAIN);
	source = vmi_test_open (&vmi_ova_plugin, path, NULL);
	facts = facts_of (source);
	members = member_list (facts);
	g_assert_cmpstr (members, ==,
			 "ttylinux-pc_i486-16.1.ovf:5005,ttylinux-pc_i486-16.1.mf:159,"
			 "ttylinux-pc_i486-16.1-disk1.vmdk:1048576");
	assert_member_offsets (path, facts);
	g_assert_true (fact_bool (facts, "manifest-verified"));
	algs = fact_strv (facts, "manifest-algorithms");
	g_assert_cmpstr (algs, ==, "SHA1");
	mismatch = fact_strv (facts, "manifest-mismatches");
	g_assert_cmpstr (mismatch, ==, "");
	/* the OVF says 10595840 bytes for the disk; the archive holds its first 1 MiB */
	sizes = fact_strv (facts, "member-size-mismatches");
	g_assert_cmpstr (sizes, ==, "ttylinux-pc_i486-16.1-disk1.vmdk");
	systems = fact_array (facts, "virtual-systems");
	vm = g_variant_get_child_value (systems, 0);
	name = fact_string (vm, "name");
	g_assert_cmpstr (name, ==, "ttylinux-pc_i486-16.1");
	g_assert_true (g_variant_lookup (vm, "os-id", "u", &os_id));
	g_assert_cmpuint (os_id, ==, 36);
	os = fact_string (vm, "os-type");
	g_assert_cmpstr (os, ==, "otherLinuxGuest");
	type = fact_string (vm, "virtual-system-type");
	g_assert_cmpstr (type, ==, "vmx-09");
	build = fact_string (facts, "vmware-build-id");
	g_assert_cmpstr (build, ==, "build-2060496");
	disks = fact_array (facts, "disks");
	g_assert_cmpuint (g_variant_n_children (disks), ==, 1);
	disk = g_variant_get_child_value (disks, 0);
	g_assert_true (g_variant_lookup (disk, "capacity-bytes", "t", &capacity));
	g_assert_cmpuint (capacity, ==, 31457280);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 31457280);
	g_assert_true (vmi_source_is_safe (source));
	vmi_test_save_seed ("ova", path);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static const char *const vmware_ovf =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<Envelope vmw:buildId=\"build-test\" xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	"xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	"xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData\" "
	"xmlns:vmw=\"http://www.vmware.com/schema/ovf\" "
	"xmlns:vssd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData\">\n"
	"  <References><File ovf:href=\"@DISK@\" ovf:id=\"file1\" ovf:size=\"@SIZE@\" @COMPRESSION@/></References>\n"
	"  <DiskSection><Info>Virtual disk information</Info>\n"
	"    <Disk ovf:capacity=\"@CAPACITY@\" ovf:capacityAllocationUnits=\"byte * 2^20\" ovf:diskId=\"vmdisk1\" "
	"ovf:fileRef=\"file1\" ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>\n"
	"  </DiskSection>\n"
	"  <NetworkSection><Info>Networks</Info><Network ovf:name=\"VM Network\"/></NetworkSection>\n"
	"  <VirtualSystem ovf:id=\"made\"><Info>A virtual machine</Info><Name>made-by-test</Name>\n"
	"    <OperatingSystemSection ovf:id=\"101\" vmw:osType=\"otherLinux64Guest\"><Info>OS</Info></OperatingSystemSection>\n"
	"    <VirtualHardwareSection><Info>hw</Info>\n"
	"      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID>"
	"<vssd:VirtualSystemType>vmx-14</vssd:VirtualSystemType></System>\n"
	"      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:ElementName>2 CPUs</rasd:ElementName>"
	"<rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>\n"
	"      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>mem</rasd:ElementName>"
	"<rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>1024</rasd:VirtualQuantity></Item>\n"
	"      <Item><rasd:ElementName>disk</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>"
	"<rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>\n"
	"      <Item><rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>nic</rasd:ElementName>"
	"<rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceType>10</rasd:ResourceType></Item>\n"
	"      <vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"efi\"/>\n"
	"    </VirtualHardwareSection>\n"
	"  </VirtualSystem>\n"
	"</Envelope>\n";

/* As VirtualBox 7 exports: capacity and memory without units, the settings in vbox:Machine. */
static const char *const vbox_ovf =
	"<?xml version=\"1.0\"?>\n"
	"<Envelope ovf:version=\"1.0\" xml:lang=\"en-US\" xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	"xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	"xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData\" "
	"xmlns:vssd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData\" "
	"xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:vbox=\"http://www.virtualbox.org/ovf/machine\">\n"
	"  <References><File ovf:id=\"file1\" ovf:href=\"@DISK@\" @COMPRESSION@/></References>\n"
	"  <DiskSection><Info>List of the virtual disks used in the package</Info>\n"
	"    <Disk ovf:capacity=\"@CAPACITY@\" ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\" "
	"ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\" "
	"vbox:uuid=\"6b992aaa-2718-434a-bf21-44b1b33c2539\"/>\n"
	"  </DiskSection>\n"
	"  <NetworkSection><Info>Logical networks used in the package</Info><Network ovf:name=\"NAT\">"
	"<Description>Logical network used by this appliance.</Description></Network></NetworkSection>\n"
	"  <VirtualSystem ovf:id=\"vbox-made\"><Info>A virtual machine</Info>\n"
	"    <OperatingSystemSection ovf:id=\"96\"><Info>The kind of installed guest operating system</Info>"
	"<Description>Debian_64</Description><vbox:OSType ovf:required=\"false\">Debian_64</vbox:OSType></OperatingSystemSection>\n"
	"    <VirtualHardwareSection><Info>Virtual hardware requirements for a virtual machine</Info>\n"
	"      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID>"
	"<vssd:VirtualSystemIdentifier>vbox-made</vssd:VirtualSystemIdentifier>"
	"<vssd:VirtualSystemType>virtualbox-2.2</vssd:VirtualSystemType></System>\n"
	"      <Item><rasd:Caption>2 virtual CPU</rasd:Caption><rasd:Description>Number of virtual CPUs</rasd:Description>"
	"<rasd:ElementName>2 virtual CPU</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>"
	"<rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>\n"
	"      <Item><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:Caption>1024 MB of memory</rasd:Caption>"
	"<rasd:ElementName>1024 MB of memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID>"
	"<rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>1024</rasd:VirtualQuantity></Item>\n"
	"      <Item><rasd:AutomaticAllocation>true</rasd:AutomaticAllocation><rasd:Caption>Ethernet adapter on 'NAT'</rasd:Caption>"
	"<rasd:Connection>NAT</rasd:Connection><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>10</rasd:ResourceType></Item>\n"
	"    </VirtualHardwareSection>\n"
	"    <vbox:Machine ovf:required=\"false\" version=\"1.19-linux\" uuid=\"{3c0c3250-2e7c-4bc3-b6ef-33f019e11aec}\" "
	"name=\"made-by-test\" OSType=\"Debian_64\"><ovf:Info>Complete VirtualBox machine configuration in VirtualBox format</ovf:Info>"
	"<Hardware><CPU count=\"2\"/><Memory RAMSize=\"1024\"/><Firmware type=\"EFI\"/></Hardware></vbox:Machine>\n"
	"  </VirtualSystem>\n"
	"</Envelope>\n";

static char *
replace (const char *text, const char *from, const char *to)
{
	g_auto(GStrv) parts = g_strsplit (text, from, -1);

	return g_strjoinv (to, parts);
}

/* The VMware-dialect descriptor for a disk file of size bytes and a capacity in MiB. */
static void
write_descriptor (const char *path, gboolean vbox, const char *disk, guint64 size,
		  const char *compression)
{
	g_autofree char *size_s = g_strdup_printf ("%" G_GUINT64_FORMAT, size);
	/* 4 MiB: VMware writes MiB with its unit, VirtualBox plain bytes */
	const char *cap_s = vbox ? "4194304" : "4";
	g_autofree char *a = replace (vbox ? vbox_ovf : vmware_ovf, "@DISK@", disk);
	g_autofree char *b = replace (a, "@SIZE@", size_s);
	g_autofree char *c = replace (b, "@CAPACITY@", cap_s);
	g_autofree char *d = replace (c, "@COMPRESSION@", compression != NULL ? compression : "");

	g_assert_true (g_file_set_contents (path, d, -1, NULL));
}

static guint64
file_size (const char *path)
{
	GStatBuf st;

	g_assert_cmpint (g_stat (path, &st), ==, 0);
	return (guint64) st.st_size;
}

/*
 * dir/pkg/ gets vm.ovf, disk (a streamOptimized VMDK made by qemu-img from a 4 MiB pattern,
 * gzip-compressed when gzip is TRUE) and vm.mf with SHA256 lines, ovftool style
 * ("SHA256(x)= hex") or sha256sum --tag style; returns the path of vm.ova (GNU tar, ustar).
 */
static char *
make_ova (const char *dir, gboolean gzip, gboolean tag_style, gboolean vbox)
{
	g_autofree char *pkg = g_build_filename (dir, "pkg", NULL);
	g_autofree char *raw = g_build_filename (dir, "disk.raw", NULL);
	g_autofree char *vmdk = g_build_filename (pkg, "disk.vmdk", NULL);
	const char *disk = gzip ? "disk.vmdk.gz" : "disk.vmdk";
	g_autofree char *disk_path = g_build_filename (pkg, disk, NULL);
	g_autofree char *ovf = g_build_filename (pkg, "vm.ovf", NULL);
	char *ova = g_build_filename (dir, "vm.ova", NULL);

	g_assert_cmpint (g_mkdir_with_parents (pkg, 0755), ==, 0);
	vmi_test_make_pattern_image (raw, 4 * 1024 * 1024, 7);
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized '%s' '%s'",
				      raw, vmdk),
			 ==, 0);
	if (gzip)
		g_assert_cmpint (vmi_test_sh (NULL, "gzip -n '%s'", vmdk), ==, 0);
	write_descriptor (ovf, vbox, disk, file_size (disk_path), gzip ? "ovf:compression=\"gzip\"" : NULL);
	if (tag_style)
		g_assert_cmpint (vmi_test_sh (NULL, "cd '%s' && sha256sum --tag vm.ovf %s > vm.mf", pkg, disk), ==, 0);
	else
		g_assert_cmpint (vmi_test_sh (NULL, "cd '%s' && for f in vm.ovf %s; do "
						    "echo \"SHA256($f)= $(sha256sum < $f | cut -d' ' -f1)\"; done > vm.mf",
					      pkg, disk),
				 ==, 0);
	g_assert_cmpint (vmi_test_sh (NULL, "tar --format=ustar -cf '%s' -C '%s' vm.ovf vm.mf %s", ova, pkg, disk),
			 ==, 0);
	return ova;
}

static void
assert_made_vm (GVariant *facts, gboolean vbox)
{
	g_autoptr(GVariant) systems = fact_array (facts, "virtual-systems");
	g_autoptr(GVariant) vm = g_variant_get_child_value (systems, 0);
	g_autofree char *name = fact_string (vm, "name");
	g_autofree char *firmware = fact_string (vm, "firmware");
	g_autofree char *networks = fact_strv (vm, "networks");
	g_autofree char *os_type = fact_string (vm, "os-type");
	g_autofree char *system_type = fact_string (vm, "virtual-system-type");
	guint64 cpus = 0, memory = 0;

	g_assert_cmpstr (name, ==, "made-by-test");
	g_assert_cmpstr (firmware, ==, "efi");
	g_assert_cmpstr (networks, ==, vbox ? "NAT" : "VM Network");
	g_assert_cmpstr (os_type, ==, vbox ? "Debian_64" : "otherLinux64Guest");
	g_assert_cmpstr (system_type, ==, vbox ? "virtualbox-2.2" : "vmx-14");
	g_assert_true (g_variant_lookup (vm, "cpus", "t", &cpus));
	g_assert_cmpuint (cpus, ==, 2);
	g_assert_true (g_variant_lookup (vm, "memory", "t", &memory));
	g_assert_cmpuint (memory, ==, 1ull << 30);
}

/*
 * Twice: a VMware-dialect descriptor with an ovftool-style manifest, then a VirtualBox-dialect
 * one with sha256sum --tag lines.
 */
static void
test_ova_made_sha256 (void)
{
	for (int tag = 0; tag <= 1; tag++) {
		g_autofree char *dir = NULL;
		g_autofree char *ova = NULL;
		g_autofree char *members = NULL, *algs = NULL, *unlisted = NULL;
		g_autoptr(VmiSource) source = NULL;
		g_autoptr(GVariant) facts = NULL, disks = NULL, disk = NULL;
		g_autoptr(JsonObject) qemu = NULL;
		g_autofree char *raw = NULL, *vmdk = NULL;
		guint64 offset = 0, size = 0;

		if (!vmi_test_require_qemu_img ())
			return;
		dir = vmi_test_tmpdir_new ();
		ova = make_ova (dir, FALSE, tag, tag);
		source = vmi_test_open (&vmi_ova_plugin, ova, NULL);
		facts = facts_of (source);
		vmdk = g_build_filename (dir, "pkg", "disk.vmdk", NULL);
		members = member_list (facts);
		{
			g_autofree char *mf = g_build_filename (dir, "pkg", "vm.mf", NULL);
			g_autofree char *ovf = g_build_filename (dir, "pkg", "vm.ovf", NULL);
			g_autofree char *expected = g_strdup_printf ("vm.ovf:%" G_GUINT64_FORMAT ",vm.mf:%" G_GUINT64_FORMAT
								     ",disk.vmdk:%" G_GUINT64_FORMAT,
								     file_size (ovf), file_size (mf), file_size (vmdk));

			g_assert_cmpstr (members, ==, expected);
		}
		assert_member_offsets (ova, facts);
		g_assert_true (fact_bool (facts, "manifest-verified"));
		algs = fact_strv (facts, "manifest-algorithms");
		g_assert_cmpstr (algs, ==, "SHA256");
		unlisted = fact_strv (facts, "manifest-unlisted");
		g_assert_cmpstr (unlisted, ==, "");
		assert_made_vm (facts, tag);
		/* the virtual size is the OVF's capacity, which is qemu-img's size of the disk */
		qemu = vmi_test_qemu_img_info (vmdk, NULL);
		g_assert_cmpuint (vmi_source_get_virtual_size (source), ==,
				  (guint64) json_object_get_int_member (qemu, "virtual-size"));
		/* the disk member in place is the VMDK qemu-img wrote, byte for byte */
		disks = fact_array (facts, "disks");
		disk = g_variant_get_child_value (disks, 0);
		g_assert_true (g_variant_lookup (disk, "member-offset", "t", &offset));
		g_assert_true (g_variant_lookup (disk, "member-size", "t", &size));
		g_assert_cmpuint (size, ==, file_size (vmdk));
		g_assert_cmpint (vmi_test_sh (NULL, "cmp -n %" G_GUINT64_FORMAT " -i %" G_GUINT64_FORMAT ":0 '%s' '%s'",
					      size, offset, ova, vmdk),
				 ==, 0);
		g_assert_true (vmi_source_is_safe (source));
		vmi_test_save_seed ("ova", ova);
		g_clear_pointer (&source, vmi_source_free);
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
	}
}

/*
 * Names longer than ustar's 100 bytes: GNU tar stores them in an 'L' member (gnu format) or a
 * pax header's path record (pax format). Detection, names and data offsets still hold.
 */
static void
test_ova_long_names (void)
{
	static const char *const formats[] = { "gnu", "pax" };
	g_autofree char *dir = NULL;
	g_autofree char *pkg = NULL;
	g_autoptr(GString) stem = g_string_new (NULL);

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	g_free (make_ova (dir, FALSE, FALSE, FALSE));
	pkg = g_build_filename (dir, "pkg", NULL);
	for (guint i = 0; i < 12; i++)
		g_string_append (stem, "long-name-");
	g_assert_cmpint (vmi_test_sh (NULL, "cd '%s' && mv vm.ovf %s.ovf && mv vm.mf %s.mf", pkg, stem->str, stem->str),
			 ==, 0);
	for (gsize f = 0; f < G_N_ELEMENTS (formats); f++) {
		g_autofree char *ova = g_strdup_printf ("%s/%s.ova", dir, formats[f]);
		g_autofree char *head = NULL;
		g_autofree char *members = NULL, *expected = NULL, *descriptor = NULL;
		g_autoptr(VmiSource) source = NULL;
		g_autoptr(GVariant) facts = NULL;
		gsize len = 0;

		g_test_message ("tar --format=%s", formats[f]);
		g_assert_cmpint (vmi_test_sh (NULL, "cd '%s' && tar --format=%s -cf '%s' %s.ovf %s.mf disk.vmdk",
					      pkg, formats[f], ova, stem->str, stem->str),
				 ==, 0);
		g_assert_true (g_file_get_contents (ova, &head, &len, NULL));
		g_assert_cmpuint (vmi_ova_plugin.probe ((const guint8 *) head, MIN (len, VMI_PROBE_HEAD_SIZE), len),
				  ==, VMI_PROBE_CERTAIN);
		source = vmi_test_open (&vmi_ova_plugin, ova, NULL);
		facts = facts_of (source);
		descriptor = fact_string (facts, "descriptor");
		expected = g_strconcat (stem->str, ".ovf", NULL);
		g_assert_cmpstr (descriptor, ==, expected);
		assert_member_offsets (ova, facts);
		/* the manifest names vm.ovf, which is now absent, and not the long name */
		g_assert_false (fact_bool (facts, "manifest-verified"));
		members = fact_strv (facts, "manifest-missing");
		g_assert_cmpstr (members, ==, "vm.ovf");
		vmi_test_save_seed ("ova", ova);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A disk changed after the manifest was written: the mismatch is named and the OVA unsafe. */
static void
test_ova_made_mismatch (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *ova = NULL;
	g_autofree char *mismatches = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autofree char *pkg = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	ova = make_ova (dir, FALSE, TRUE, FALSE);
	pkg = g_build_filename (dir, "pkg", NULL);
	/* flip one byte inside the VMDK's data, then pack again with the old manifest */
	g_assert_cmpint (vmi_test_sh (NULL, "cd '%s' && printf 'X' | dd of=disk.vmdk bs=1 seek=70000 conv=notrunc status=none "
					    "&& rm -f '%s' && tar --format=ustar -cf '%s' vm.ovf vm.mf disk.vmdk",
				      pkg, ova, ova),
			 ==, 0);
	source = vmi_test_open (&vmi_ova_plugin, ova, NULL);
	facts = facts_of (source);
	g_assert_false (fact_bool (facts, "manifest-verified"));
	mismatches = fact_strv (facts, "manifest-mismatches");
	g_assert_cmpstr (mismatches, ==, "disk.vmdk");
	g_assert_false (vmi_source_is_safe (source));
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* ovf:compression="gzip": the member is the gzip file, the disk facts say so. */
static void
test_ova_made_gzip (void)
{
	g_autofree char *dir = NULL;
	g_autofree char *ova = NULL;
	g_autofree char *compression = NULL, *href = NULL, *members = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL, disks = NULL, disk = NULL, refs = NULL, ref = NULL;
	g_autofree char *ref_compression = NULL;
	guint64 offset = 0, size = 0;
	guint8 magic[2];
	int fd;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	ova = make_ova (dir, TRUE, FALSE, FALSE);
	source = vmi_test_open (&vmi_ova_plugin, ova, NULL);
	facts = facts_of (source);
	g_assert_true (fact_bool (facts, "manifest-verified"));
	disks = fact_array (facts, "disks");
	disk = g_variant_get_child_value (disks, 0);
	href = fact_string (disk, "href");
	g_assert_cmpstr (href, ==, "disk.vmdk.gz");
	compression = fact_string (disk, "compression");
	g_assert_cmpstr (compression, ==, "gzip");
	refs = fact_array (facts, "references");
	ref = g_variant_get_child_value (refs, 0);
	ref_compression = fact_string (ref, "compression");
	g_assert_cmpstr (ref_compression, ==, "gzip");
	g_assert_true (g_variant_lookup (disk, "member-offset", "t", &offset));
	g_assert_true (g_variant_lookup (disk, "member-size", "t", &size));
	fd = open (ova, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (pread (fd, magic, 2, (off_t) offset), ==, 2);
	close (fd);
	g_assert_cmpuint (magic[0], ==, 0x1f);
	g_assert_cmpuint (magic[1], ==, 0x8b);
	g_assert_cmpint (vmi_test_sh (NULL, "tail -c +%" G_GUINT64_FORMAT " '%s' | head -c %" G_GUINT64_FORMAT " | gzip -t",
				      offset + 1, ova, size),
			 ==, 0);
	members = member_list (facts);
	g_assert_true (g_str_has_prefix (members, "vm.ovf:"));
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 4 * 1024 * 1024);
	g_assert_true (vmi_source_is_safe (source));
	vmi_test_save_seed ("ova", ova);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A ustar header; size_field overrides the real size when not NULL. */
static void
tar_header (GByteArray *tar, const char *name, guint64 size, char type, const char *link)
{
	guint8 h[512] = { 0 };
	guint sum = 0;

	g_assert_cmpuint (strlen (name), <=, 100);
	memcpy (h, name, strlen (name));
	memcpy (h + 100, "0000644", 7);
	memcpy (h + 108, "0000000", 7);
	memcpy (h + 116, "0000000", 7);
	g_snprintf ((char *) h + 124, 12, "%011" G_GINT64_MODIFIER "o", size);
	memcpy (h + 136, "14000000000", 11);
	memset (h + 148, ' ', 8);
	h[156] = (guint8) type;
	if (link != NULL)
		memcpy (h + 157, link, MIN (strlen (link), 100));
	memcpy (h + 257, "ustar", 6);
	memcpy (h + 263, "00", 2);
	for (guint i = 0; i < sizeof h; i++)
		sum += h[i];
	g_snprintf ((char *) h + 148, 8, "%06o", sum);
	g_byte_array_append (tar, h, sizeof h);
}

static void
tar_member (GByteArray *tar, const char *name, const char *data)
{
	gsize len = strlen (data);
	static const guint8 zeros[512];

	tar_header (tar, name, len, '0', NULL);
	g_byte_array_append (tar, (const guint8 *) data, (guint) len);
	g_byte_array_append (tar, zeros, (guint) ((512 - len % 512) % 512));
}

static void
tar_end (GByteArray *tar)
{
	static const guint8 zeros[1024];

	g_byte_array_append (tar, zeros, sizeof zeros);
}

static const char *const tiny_ovf =
	"<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	"xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"><References>"
	"<File ovf:id=\"f\" ovf:href=\"disk.vmdk\"/></References><DiskSection><Disk ovf:diskId=\"d\" "
	"ovf:fileRef=\"f\" ovf:capacity=\"1\" ovf:capacityAllocationUnits=\"byte * 2^20\"/></DiskSection>"
	"<VirtualSystem ovf:id=\"vm\"><Info>x</Info></VirtualSystem></Envelope>";

static char *
write_tar (const char *dir, GByteArray *tar)
{
	char *path = g_build_filename (dir, "hostile.ova", NULL);

	g_assert_true (g_file_set_contents (path, (const char *) tar->data, tar->len, NULL));
	return path;
}

/* A small archive of the tests, kept as a fuzzing seed under its own name. */
static void
save_seed_tar (const char *dir, GByteArray *tar, const char *name)
{
	g_autofree char *path = g_build_filename (dir, name, NULL);

	g_assert_true (g_file_set_contents (path, (const char *) tar->data, tar->len, NULL));
	vmi_test_save_seed ("ova", path);
	g_unlink (path);
}

static VmiSource *
open_tar (const char *dir, GByteArray *tar, GError **error)
{
	g_autofree char *path = write_tar (dir, tar);

	return vmi_test_open (&vmi_ova_plugin, path, error);
}

/* Member names that would be paths, links and duplicates: each named as unsafe. */
static void
test_ova_hostile_members (void)
{
	static const struct {
		const char *name;
		char type;
		const char *link;
	} cases[] = {
		{ "../x", '0', NULL },	 { "/etc/x", '0', NULL },    { "sub/disk.vmdk", '0', NULL },
		{ "link", '2', "/etc/passwd" }, { "hard", '1', "vm.ovf" }, { "dir/", '5', NULL },
		{ "disk.vmdk", '0', NULL }, /* a second disk.vmdk */
		{ "bad\xff\xfe.vmdk", '0', NULL }, /* not UTF-8: still a valid GVariant */
		{ "ctl\x01.vmdk", '0', NULL },
	};
	g_autofree char *dir = vmi_test_tmpdir_new ();

	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autoptr(GByteArray) tar = g_byte_array_new ();
		g_autoptr(VmiSource) source = NULL;
		g_autoptr(GError) error = NULL;
		const VmiImageInfo *info;

		g_autofree char *escaped = g_strescape (cases[i].name, NULL);
		g_autofree char *reason = NULL;

		g_test_message ("member %s", escaped);
		tar_member (tar, "vm.ovf", tiny_ovf);
		tar_member (tar, "disk.vmdk", "ABCD");
		if (cases[i].type == '0')
			tar_member (tar, cases[i].name, "evil");
		else
			tar_header (tar, cases[i].name, 0, cases[i].type, cases[i].link);
		tar_end (tar);
		if (i == 0)
			save_seed_tar (dir, tar, "dotdot.ova");
		source = open_tar (dir, tar, &error);
		g_assert_no_error (error);
		g_variant_unref (vmi_source_to_variant (source));
		info = vmi_source_get_info (source);
		g_assert_false (vmi_source_is_safe (source));
		g_assert_cmpuint (info->unsafe_reasons->len, >=, 1);
		reason = g_strescape (g_ptr_array_index (info->unsafe_reasons, 0), "\x80\xef\xbf\xbd");
		g_test_message ("%s", reason);
	}
	/* nothing was written beside the archive */
	{
		g_autofree char *listing = NULL;

		g_assert_cmpint (vmi_test_sh (&listing, "ls -A '%s'", dir), ==, 0);
		g_assert_cmpstr (g_strchomp (listing), ==, "hostile.ova");
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A member whose header claims more bytes than the file has, and an archive cut short. */
static void
test_ova_truncated (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autoptr(GByteArray) tar = g_byte_array_new ();
	g_autoptr(GByteArray) cut = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;

	tar_member (tar, "vm.ovf", tiny_ovf);
	tar_header (tar, "disk.vmdk", G_GUINT64_CONSTANT (1) << 30, '0', NULL);
	g_byte_array_append (tar, (const guint8 *) "ABCD", 4);
	source = open_tar (dir, tar, &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	g_test_message ("%s", error->message);
	g_clear_error (&error);

	/* every cut of a good archive inside its members is refused or reports fewer members */
	g_byte_array_set_size (tar, 0);
	tar_member (tar, "vm.ovf", tiny_ovf);
	tar_member (tar, "disk.vmdk", "ABCD");
	tar_end (tar);
	for (guint len = 100; len < tar->len - 1024; len += 100) {
		g_autoptr(VmiSource) partial = NULL;

		cut = g_byte_array_sized_new (len);
		g_byte_array_append (cut, tar->data, len);
		partial = open_tar (dir, cut, &error);
		g_clear_pointer (&cut, g_byte_array_unref);
		g_assert_null (partial);
		g_assert_nonnull (error);
		g_assert_true (error->domain == VMI_ERROR);
		g_assert_true (error->code == VMI_ERROR_CORRUPT_IMAGE || error->code == VMI_ERROR_UNKNOWN_FORMAT);
		g_clear_error (&error);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_ova_too_many_members (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autoptr(GByteArray) tar = g_byte_array_new ();
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	gint64 start;

	tar_member (tar, "vm.ovf", tiny_ovf);
	for (guint i = 0; i < 20000; i++) {
		char name[32];

		g_snprintf (name, sizeof name, "f%05u", i);
		tar_header (tar, name, 0, '0', NULL);
	}
	tar_end (tar);
	start = g_get_monotonic_time ();
	source = open_tar (dir, tar, &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	g_assert_cmpint (g_get_monotonic_time () - start, <, 60 * G_USEC_PER_SEC);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* The descriptor's XML is as hostile as a lone OVF's: an external entity inside an OVA. */
static void
test_ova_xxe (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autoptr(GByteArray) tar = g_byte_array_new ();
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;

	tar_member (tar, "vm.ovf",
		    "<!DOCTYPE Envelope [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"><VirtualSystem>"
		    "<Name>&x;</Name></VirtualSystem></Envelope>");
	tar_end (tar);
	source = open_tar (dir, tar, &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* OVF second: a weak guess and an unsafe reason; no OVF at all: not an OVA. */
static void
test_ova_order_and_detection (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autoptr(GByteArray) tar = g_byte_array_new ();
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autofree char *path = NULL;
	int fd;

	g_assert_true (vmi_registry_add (registry, &vmi_raw_plugin, &error));
	g_assert_true (vmi_registry_add (registry, &vmi_ova_plugin, &error));

	tar_member (tar, "disk.vmdk", "ABCD");
	tar_member (tar, "vm.ovf", tiny_ovf);
	tar_end (tar);
	g_assert_cmpuint (vmi_ova_plugin.probe (tar->data, tar->len, tar->len), ==, VMI_PROBE_WEAK);
	source = open_tar (dir, tar, &error);
	g_assert_no_error (error);
	g_assert_false (vmi_source_is_safe (source));
	g_clear_pointer (&source, vmi_source_free);

	/* a tar of other things: nobody claims it, and forcing ova says why */
	g_byte_array_set_size (tar, 0);
	tar_member (tar, "readme.txt", "hello");
	tar_end (tar);
	g_assert_cmpuint (vmi_ova_plugin.probe (tar->data, tar->len, tar->len), ==, VMI_PROBE_NO);
	path = write_tar (dir, tar);
	fd = open (path, O_RDONLY | O_CLOEXEC);
	g_assert_null (vmi_registry_probe_fd (registry, fd, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	g_clear_error (&error);
	close (fd);
	source = vmi_test_open (&vmi_ova_plugin, path, &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	g_clear_error (&error);

	/* an OVA first named: certain, and the registry picks ova over raw */
	g_byte_array_set_size (tar, 0);
	tar_member (tar, "vm.ovf", tiny_ovf);
	tar_member (tar, "disk.vmdk", "ABCD");
	tar_end (tar);
	g_assert_cmpuint (vmi_ova_plugin.probe (tar->data, tar->len, tar->len), ==, VMI_PROBE_CERTAIN);
	g_free (path);
	path = write_tar (dir, tar);
	fd = open (path, O_RDONLY | O_CLOEXEC);
	g_assert_true (vmi_registry_probe_fd (registry, fd, &error) == &vmi_ova_plugin);
	close (fd);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Manifest lines of both forms, a member it lacks, one it lists that is absent, a bad line. */
static void
test_ova_manifest_cases (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *ovf_sha1 = g_compute_checksum_for_string (G_CHECKSUM_SHA1, tiny_ovf, -1);
	g_autofree char *disk_sha256 = g_compute_checksum_for_string (G_CHECKSUM_SHA256, "ABCD", -1);
	static const struct {
		const char *mf; /* @OVF@ and @DISK@ are the right digests */
		gboolean verified;
		const char *mismatches;
		const char *missing;
		const char *unlisted;
	} cases[] = {
		{ "SHA1(vm.ovf)= @OVF@\nSHA256(disk.vmdk)= @DISK@\n", TRUE, "", "", "" },
		{ "SHA1 (vm.ovf) = @OVF@\r\nSHA256 (disk.vmdk) = @DISK@\r\n", TRUE, "", "", "" },
		{ "SHA1(vm.ovf)= @OVF@\n", FALSE, "", "", "disk.vmdk" },
		{ "SHA1(vm.ovf)= @OVF@\nSHA256(disk.vmdk)= @DISK@\nSHA1(gone.vmdk)= @OVF@\n", FALSE, "",
		  "gone.vmdk", "" },
		{ "SHA1(vm.ovf)= @OVF@\nSHA256(disk.vmdk)= "
		  "0000000000000000000000000000000000000000000000000000000000000000\n",
		  FALSE, "disk.vmdk", "", "" },
		/* a SHA1-long digest on a SHA256 line is not a digest line */
		{ "SHA1(vm.ovf)= @OVF@\nSHA256(disk.vmdk)= @OVF@\n", FALSE, "", "", "disk.vmdk" },
		{ "SHA1(vm.ovf)= @OVF@\nSHA256(disk.vmdk)= @DISK@\nMD5(disk.vmdk)= 00\n", FALSE, "", "", "" },
		{ "", FALSE, "", "", "vm.ovf,disk.vmdk" },
		{ "SHA1(vm.ovf)= @OVF@\nSHA256(disk.vmdk)= @DISK@\nSHA1(x\xff)= @OVF@\n", FALSE, "",
		  "x\xef\xbf\xbd", "" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autoptr(GByteArray) tar = g_byte_array_new ();
		g_autoptr(VmiSource) source = NULL;
		g_autoptr(GVariant) facts = NULL;
		g_autofree char *a = replace (cases[i].mf, "@OVF@", ovf_sha1);
		g_autofree char *mf = replace (a, "@DISK@", disk_sha256);
		g_autofree char *mismatches = NULL, *missing = NULL, *unlisted = NULL;

		g_autofree char *escaped = g_strescape (cases[i].mf, NULL);

		g_test_message ("manifest %s", escaped);
		tar_member (tar, "vm.ovf", tiny_ovf);
		tar_member (tar, "vm.mf", mf);
		tar_member (tar, "disk.vmdk", "ABCD");
		tar_member (tar, "vm.cert", "not really a certificate");
		tar_end (tar);
		if (i == 0)
			save_seed_tar (dir, tar, "manifest.ova");
		source = open_tar (dir, tar, NULL);
		facts = facts_of (source);
		g_assert_cmpint (fact_bool (facts, "manifest-verified"), ==, cases[i].verified);
		mismatches = fact_strv (facts, "manifest-mismatches");
		g_assert_cmpstr (mismatches, ==, cases[i].mismatches);
		missing = fact_strv (facts, "manifest-missing");
		g_assert_cmpstr (missing, ==, cases[i].missing);
		unlisted = fact_strv (facts, "manifest-unlisted");
		g_assert_cmpstr (unlisted, ==, cases[i].unlisted);
		g_assert_true (g_variant_lookup (facts, "certificate", "&s", NULL));
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A file split into chunks (ovf:chunkSize) is stored as href.000000000, href.000000001, ... */
static void
test_ova_chunked (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autoptr(GByteArray) tar = g_byte_array_new ();
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autofree char *missing = NULL;
	g_autofree char *ovf = replace (tiny_ovf, "ovf:href=\"disk.vmdk\"",
					"ovf:href=\"disk.vmdk\" ovf:chunkSize=\"2\"");

	tar_member (tar, "vm.ovf", ovf);
	tar_member (tar, "disk.vmdk.000000000", "AB");
	tar_member (tar, "disk.vmdk.000000001", "CD");
	tar_end (tar);
	source = open_tar (dir, tar, NULL);
	facts = facts_of (source);
	missing = fact_strv (facts, "missing-members");
	g_assert_cmpstr (missing, ==, "");
	g_assert_cmpuint (vmi_source_get_info (source)->references->len, ==, 0);
	g_assert_true (vmi_source_is_safe (source));
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A file the OVF names that the archive lacks: listed as missing and as a reference. */
static void
test_ova_missing_member (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autoptr(GByteArray) tar = g_byte_array_new ();
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) facts = NULL;
	g_autofree char *missing = NULL;
	const VmiImageInfo *info;

	tar_member (tar, "vm.ovf", tiny_ovf);
	tar_end (tar);
	source = open_tar (dir, tar, NULL);
	facts = facts_of (source);
	missing = fact_strv (facts, "missing-members");
	g_assert_cmpstr (missing, ==, "disk.vmdk");
	info = vmi_source_get_info (source);
	g_assert_cmpuint (info->references->len, ==, 1);
	g_assert_cmpstr (g_ptr_array_index (info->references, 0), ==, "disk.vmdk");
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/ova/corpus-glance", test_ova_corpus_glance);
	g_test_add_func ("/ova/corpus-govmomi", test_ova_corpus_govmomi);
	g_test_add_func ("/ova/made-sha256", test_ova_made_sha256);
	g_test_add_func ("/ova/made-mismatch", test_ova_made_mismatch);
	g_test_add_func ("/ova/long-names", test_ova_long_names);
	g_test_add_func ("/ova/made-gzip", test_ova_made_gzip);
	g_test_add_func ("/ova/hostile-members", test_ova_hostile_members);
	g_test_add_func ("/ova/truncated", test_ova_truncated);
	g_test_add_func ("/ova/too-many-members", test_ova_too_many_members);
	g_test_add_func ("/ova/xxe", test_ova_xxe);
	g_test_add_func ("/ova/order-and-detection", test_ova_order_and_detection);
	g_test_add_func ("/ova/manifest-cases", test_ova_manifest_cases);
	g_test_add_func ("/ova/missing-member", test_ova_missing_member);
	g_test_add_func ("/ova/chunked", test_ova_chunked);
	return g_test_run ();
}
