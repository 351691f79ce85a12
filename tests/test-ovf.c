/* The OVF descriptor plugin against the real descriptors of the corpus and hostile XML. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_ovf_plugin;
extern const VmiFormatPlugin vmi_raw_plugin;

/*
 * What the MANIFEST.tsv row of each corpus descriptor says, transcribed: VMs as
 * "name|os-id|os-type" joined by ';', disks as "id|href|format-name|capacity-bytes", references
 * as "href|size|compression" ('-' where the descriptor gives none), virtual system types joined
 * by ','.
 */
typedef struct {
	const char *file;
	const char *version;
	gboolean collection;
	const char *systems;
	const char *disks;
	const char *references;
	const char *system_types;
	const char *build_id;
} CorpusOvf;

static const CorpusOvf corpus_ovfs[] = {
	{ "v2v-test-i-ova.ovf", "1.x", FALSE, "TestOva|74|windows7_64Guest",
	  "vmdisk1|test-ova.vmdk|vmdk-streamOptimized|34359738368", "test-ova.vmdk|349405696|-",
	  "vmx-08", "build-1623387" },
	{ "v2v-test-i-ova-two-disks.ovf", "1.x", FALSE,
	  "2K8R2EESP1_2_Medium|103|windows7Server64Guest",
	  "vmdisk1|disk1.vmdk|vmdk-streamOptimized|53687091200;"
	  "vmdisk2|disk2.vmdk|vmdk-streamOptimized|483183820800",
	  "disk1.vmdk|7804077568|-;disk2.vmdk|178523318784|-", "vmx-10", "build-1750787" },
	{ "v2v-test-i-ova-gz.ovf", "1.x", FALSE, "2K8R2EESP1_2_Medium|103|windows7Server64Guest",
	  "vmdisk1|disk1.vmdk.gz|vmdk-streamOptimized|53687091200", "disk1.vmdk.gz|7804077568|gzip",
	  "vmx-10", "build-1750787" },
	{ "virtmanager-test1.ovf", "1.x", FALSE, "test.ovf|80|rhel5_64Guest",
	  "vmdisk1|test.ovf-disk1.vmdk|vmdk-streamOptimized|8589934592",
	  "test.ovf-disk1.vmdk|953269760|-;testfile|1234|-", "vmx-07", "build-162856" },
	{ "virtmanager-CentOS-6.4-i386-Gnome.ovf", "1.x", FALSE, "CentOS-6.4-i386-Gnome|79|RedHat",
	  "vmdisk1|CentOS-6.4-i386-Gnome-disk1.vmdk|vmdk-streamOptimized|19327352832",
	  "CentOS-6.4-i386-Gnome-disk1.vmdk|-|-", "virtualbox-2.2", NULL },
	{ "govmomi-vbox1.ovf", "1.x", FALSE, "vbox1|67|WindowsXP",
	  "vmdisk1|vbox1.vmdk|vmdk-sparse|10737418240", "vbox1.vmdk|1376768|-", "virtualbox-2.2",
	  NULL },
	{ "govmomi-vbox5.ovf", "1.x", FALSE, "vbox5|93|Ubuntu",
	  "vmdisk1|vbox5.vmdk|vmdk-sparse|4194304;vmdisk2|vbox2.vmdk|vmdk-sparse|10737418240",
	  "vbox5.vmdk|66048|-;vbox2.vmdk|1376768|-", "virtualbox-2.2", NULL },
	{ "govmomi-vApp_with_2vms.ovf", "1.x", TRUE,
	  "sql2k5-win-2k3-32-ent-sp2-ovf|69|winNetStandardGuest;centos-5.5-32-esx-qa|36|centosGuest",
	  "vmdisk-8d158857-e2a0-4082-93bd-a2d154fd9a1d-2000|vApp_with_2vms-disk1.vmdk|"
	  "vmdk-streamOptimized|4294967296;"
	  "vmdisk-1e592958-26a9-4099-ba4f-ccdd6ad36335-2000|vApp_with_2vms-disk2.vmdk|"
	  "vmdk-streamOptimized|10737418240",
	  "vApp_with_2vms-disk1.vmdk|1224347136|-;vApp_with_2vms-disk2.vmdk|2954143744|-",
	  "vmx-04,vmx-08", "build-1274719" },
	/*
	 * MANIFEST says VirtualSystemType=- here, but the 0.9 descriptor's unqualified <System>
	 * does hold <vssd:VirtualSystemType>vmx-04</vssd:VirtualSystemType>; the OS has only a
	 * Description.
	 */
	{ "govmomi-smallxp-vapp.ovf", "0.9", FALSE, "smallxp-vapp|75|OS Description",
	  "vmdisk1|smallxp-vapp.vmdk|vmdk-sparse|1610612736", "smallxp-vapp.vmdk|256508928|-",
	  "vmx-04", NULL },
	{ "govmomi-converter_winxp.ovf", "1.x", FALSE, "converter_winxp|67|winXPProGuest",
	  "vmdisk1|converter_winxp-disk1.vmdk|vmdk-streamOptimized|7516192768",
	  "converter_winxp-disk1.vmdk|1657243136|-", "vmx-07", "build-258672" },
	{ "govmomi-Zimbra_606_Ubuntu_8041_i386_OVF10.ovf", "1.x", FALSE,
	  "Zimbra_Appliance_6.0.6|93|ubuntuGuest",
	  "system|system.vmdk|vmdk-streamOptimized|6442450944;"
	  "data|data.vmdk|vmdk-streamOptimized|12884901888",
	  "system.vmdk|1470013440|-;data.vmdk|604282368|-", "vmx-04", NULL },
	{ "govmomi-virtualsystemcollection.ovf", "2.x", TRUE,
	  "Virtual Appliance One|58|OS;Virtual Appliance Two|58|OS",
	  "vmdisk1|vmdisk1.vmdk|vmdk-sparse|4294967296", "vmdisk1.vmdk|2000000000|-", "", NULL },
	{ "govmomi-bitnami-tomcatstack-8.0.36-x86_64.ovf", "1.x", FALSE,
	  "bitnami-tomcatstack-8.0.36-2-linux-ubuntu-14.04-x86_64|94|ubuntu64Guest",
	  "vmdisk1|bitnami-tomcatstack-8.0.36-2-linux-ubuntu-14.04-x86_64-disk1.vmdk|"
	  "vmdk-streamOptimized|18253611008",
	  "bitnami-tomcatstack-8.0.36-2-linux-ubuntu-14.04-x86_64-disk1.vmdk|551212032|-", "vmx-07",
	  "build-467744" },
};

static GVariant *
facts_of (VmiSource *source)
{
	g_autoptr(GVariant) info = vmi_source_to_variant (source);

	return g_variant_lookup_value (info, "format-specific", G_VARIANT_TYPE_VARDICT);
}

static char *
dict_string (GVariant *dict, const char *key)
{
	const char *s = NULL;

	if (!g_variant_lookup (dict, key, "&s", &s))
		return g_strdup ("-");
	return g_strdup (s);
}

static char *
dict_number (GVariant *dict, const char *key, const char *type)
{
	guint64 t;
	guint32 u;

	if (strcmp (type, "t") == 0 && g_variant_lookup (dict, key, "t", &t))
		return g_strdup_printf ("%" G_GUINT64_FORMAT, t);
	if (strcmp (type, "u") == 0 && g_variant_lookup (dict, key, "u", &u))
		return g_strdup_printf ("%u", u);
	return g_strdup ("-");
}

/* An aa{sv} fact as "a|b|c;a|b|c": each key given as "name:type" (s, t or u). */
static char *
flatten (GVariant *facts, const char *array_key, const char *const *fields)
{
	g_autoptr(GVariant) array = g_variant_lookup_value (facts, array_key, G_VARIANT_TYPE ("aa{sv}"));
	g_autoptr(GString) out = g_string_new (NULL);

	g_assert_nonnull (array);
	for (gsize i = 0; i < g_variant_n_children (array); i++) {
		g_autoptr(GVariant) d = g_variant_get_child_value (array, i);

		if (i > 0)
			g_string_append_c (out, ';');
		for (guint f = 0; fields[f] != NULL; f++) {
			g_auto(GStrv) spec = g_strsplit (fields[f], ":", 2);
			g_autofree char *value = strcmp (spec[1], "s") == 0
							 ? dict_string (d, spec[0])
							 : dict_number (d, spec[0], spec[1]);

			if (f > 0)
				g_string_append_c (out, '|');
			g_string_append (out, value);
		}
	}
	return g_string_free (g_steal_pointer (&out), FALSE);
}

static char *
system_types (GVariant *facts)
{
	g_autoptr(GVariant) array = g_variant_lookup_value (facts, "virtual-systems", G_VARIANT_TYPE ("aa{sv}"));
	g_autoptr(GString) out = g_string_new (NULL);

	for (gsize i = 0; i < g_variant_n_children (array); i++) {
		g_autoptr(GVariant) d = g_variant_get_child_value (array, i);
		const char *type = NULL;

		if (!g_variant_lookup (d, "virtual-system-type", "&s", &type))
			continue;
		if (out->len > 0)
			g_string_append_c (out, ',');
		g_string_append (out, type);
	}
	return g_string_free (g_steal_pointer (&out), FALSE);
}

/* MANIFEST.tsv's row for file: its fields, or NULL. */
static GStrv
manifest_row (const char *file)
{
	g_autofree char *path = g_build_filename (vmi_test_corpus_dir (), "MANIFEST.tsv", NULL);
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
	lines = g_strsplit (text, "\n", -1);
	for (guint i = 1; lines[i] != NULL; i++) {
		GStrv fields = g_strsplit (lines[i], "\t", -1);

		if (g_strv_length (fields) >= 8 && strcmp (fields[0], file) == 0)
			return fields;
		g_strfreev (fields);
	}
	return NULL;
}

/* "disks=2 [" in the facts column: the count MANIFEST gives for key. */
static guint
manifest_count (const char *facts, const char *key)
{
	g_autofree char *needle = g_strconcat (key, "=", NULL);
	const char *p = strstr (facts, needle);

	g_assert_nonnull (p);
	return (guint) g_ascii_strtoull (p + strlen (needle), NULL, 10);
}

static void
test_ovf_corpus (void)
{
	g_autofree char *dir = NULL;

	if (vmi_test_corpus_dir () == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	for (gsize i = 0; i < G_N_ELEMENTS (corpus_ovfs); i++) {
		const CorpusOvf *c = &corpus_ovfs[i];
		g_autofree char *path = vmi_test_corpus_fetch (c->file, dir);
		g_auto(GStrv) row = manifest_row (c->file);
		g_autoptr(VmiSource) source = NULL;
		g_autoptr(GVariant) facts = NULL;
		g_autoptr(GVariant) systems = NULL;
		g_autofree char *version = NULL, *got_systems = NULL, *got_disks = NULL;
		g_autofree char *got_refs = NULL, *got_types = NULL, *build = NULL;
		g_autofree char *head = NULL;
		gsize head_len = 0;
		const VmiImageInfo *info;
		gboolean collection = FALSE;
		g_auto(GStrv) hrefs = NULL;

		g_test_message ("%s", c->file);
		g_assert_nonnull (row);
		g_assert_true (g_file_get_contents (path, &head, &head_len, NULL));
		g_assert_cmpuint (vmi_ovf_plugin.probe ((const guint8 *) head, MIN (head_len, VMI_PROBE_HEAD_SIZE), head_len),
				  ==, VMI_PROBE_LIKELY);
		source = vmi_test_open (&vmi_ovf_plugin, path, NULL);
		facts = facts_of (source);
		version = dict_string (facts, "ovf-version");
		g_assert_cmpstr (version, ==, c->version);
		g_assert_true (strstr (row[7], c->version[0] == '0' ? "OVF 0.9" : c->version[0] == '1' ? "OVF 1.x" : "OVF 2.x") != NULL);
		g_assert_true (g_variant_lookup (facts, "virtual-system-collection", "b", &collection));
		g_assert_cmpint (collection, ==, c->collection);
		g_assert_true (strstr (row[7], c->collection ? "VirtualSystemCollection=yes"
							      : "VirtualSystemCollection=no") != NULL);
		got_systems = flatten (facts, "virtual-systems",
				       (const char *const[]){ "name:s", "os-id:u", "os-type:s", NULL });
		g_assert_cmpstr (got_systems, ==, c->systems);
		systems = g_variant_lookup_value (facts, "virtual-systems", G_VARIANT_TYPE ("aa{sv}"));
		g_assert_cmpuint (g_variant_n_children (systems), ==, manifest_count (row[7], "VMs"));
		got_disks = flatten (facts, "disks",
				     (const char *const[]){ "id:s", "href:s", "format-name:s",
							    "capacity-bytes:t", NULL });
		g_assert_cmpstr (got_disks, ==, c->disks);
		got_refs = flatten (facts, "references",
				    (const char *const[]){ "href:s", "size:t", "compression:s", NULL });
		g_assert_cmpstr (got_refs, ==, c->references);
		got_types = system_types (facts);
		g_assert_cmpstr (got_types, ==, c->system_types);
		build = dict_string (facts, "vmware-build-id");
		g_assert_cmpstr (build, ==, c->build_id != NULL ? c->build_id : "-");
		/* the virtual size is the disks' capacities added, as MANIFEST's column says */
		g_assert_cmpuint (vmi_source_get_virtual_size (source), ==,
				  g_ascii_strtoull (row[6], NULL, 10));
		/* every href is a reference, none is unsafe */
		info = vmi_source_get_info (source);
		g_assert_cmpuint (info->references->len, ==, manifest_count (row[7], "References"));
		hrefs = g_strsplit (c->references, ";", -1);
		for (guint r = 0; hrefs[r] != NULL; r++) {
			g_autofree char *href = g_strndup (hrefs[r], strcspn (hrefs[r], "|"));

			g_assert_cmpstr (g_ptr_array_index (info->references, r), ==, href);
		}
		g_assert_true (vmi_source_is_safe (source));
		vmi_test_save_seed ("ovf", path);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* CPUs, memory in bytes from its allocation units, firmware and networks of one corpus VM each. */
static void
test_ovf_hardware (void)
{
	static const struct {
		const char *file;
		guint vm;
		guint64 cpus;
		guint64 memory;
		const char *firmware;
		const char *networks;
	} cases[] = {
		/* "byte * 2^20" */
		{ "v2v-test-i-ova.ovf", 0, 1, 2048ull << 20, "bios", "VM Network" },
		/* VirtualBox: no AllocationUnits (MiB), no Firmware element in vbox:Machine */
		{ "virtmanager-CentOS-6.4-i386-Gnome.ovf", 0, 1, 512ull << 20, "bios", "NAT" },
		/* OVF 0.9: "MegaBytes", two CPUs */
		{ "govmomi-smallxp-vapp.ovf", 0, 2, 512ull << 20, "bios", "VMNetwork" },
		/* OVF 2.0: "byte*2^30", an EthernetPortItem */
		{ "govmomi-virtualsystemcollection.ovf", 1, 1, 1ull << 30, NULL, "VS Network" },
	};
	g_autofree char *dir = NULL;

	if (vmi_test_corpus_dir () == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autofree char *path = vmi_test_corpus_fetch (cases[i].file, dir);
		g_autoptr(VmiSource) source = vmi_test_open (&vmi_ovf_plugin, path, NULL);
		g_autoptr(GVariant) facts = facts_of (source);
		g_autoptr(GVariant) systems = g_variant_lookup_value (facts, "virtual-systems", G_VARIANT_TYPE ("aa{sv}"));
		g_autoptr(GVariant) vm = g_variant_get_child_value (systems, cases[i].vm);
		g_autofree const char **networks = NULL;
		g_autofree char *joined = NULL;
		const char *firmware = NULL;
		guint64 cpus = 0, memory = 0;

		g_test_message ("%s", cases[i].file);
		g_assert_true (g_variant_lookup (vm, "cpus", "t", &cpus));
		g_assert_cmpuint (cpus, ==, cases[i].cpus);
		g_assert_true (g_variant_lookup (vm, "memory", "t", &memory));
		g_assert_cmpuint (memory, ==, cases[i].memory);
		g_variant_lookup (vm, "firmware", "&s", &firmware);
		g_assert_cmpstr (firmware, ==, cases[i].firmware);
		g_assert_true (g_variant_lookup (vm, "networks", "^a&s", &networks));
		joined = g_strjoinv (",", (char **) networks);
		g_assert_cmpstr (joined, ==, cases[i].networks);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* An OVF 1.0 envelope around body (References, sections, VirtualSystem). */
static char *
write_ovf (const char *dir, const char *name, const char *prologue, const char *body)
{
	char *path = g_build_filename (dir, name, NULL);
	g_autofree char *xml = g_strdup_printf (
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n%s"
		"<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
		"xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\" "
		"xmlns:vmw=\"http://www.vmware.com/schema/ovf\" "
		"xmlns:vbox=\"http://www.virtualbox.org/ovf/machine\" "
		"xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData\" "
		"xmlns:vssd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData\">\n"
		"%s\n</Envelope>\n",
		prologue, body);

	g_assert_true (g_file_set_contents (path, xml, -1, NULL));
	return path;
}

static const char *const one_disk =
	"<References><File ovf:id=\"f1\" ovf:href=\"disk.vmdk\" ovf:size=\"1000\"/></References>"
	"<DiskSection><Info>x</Info><Disk ovf:diskId=\"d1\" ovf:fileRef=\"f1\" ovf:capacity=\"%s\" %s "
	"ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>"
	"</DiskSection>";

static guint64
capacity_of (const char *dir, const char *capacity, const char *units_attr, GError **error)
{
	g_autofree char *body = g_strdup_printf (one_disk, capacity, units_attr);
	g_autofree char *path = write_ovf (dir, "units.ovf", "", body);
	g_autoptr(VmiSource) source = vmi_test_open (&vmi_ovf_plugin, path, error);

	return source != NULL ? vmi_source_get_virtual_size (source) : 0;
}

static void
test_ovf_capacity_units (void)
{
	static const struct {
		const char *capacity;
		const char *units;
		guint64 bytes;
	} cases[] = {
		{ "4096", "", 4096 },
		{ "32", "ovf:capacityAllocationUnits=\"byte * 2^30\"", 32ull << 30 },
		{ "6144", "ovf:capacityAllocationUnits=\"byte*2^20\"", 6144ull << 20 },
		{ "5", "ovf:capacityAllocationUnits=\"byte * 10^9\"", 5000000000ull },
		{ "3", "ovf:capacityAllocationUnits=\"GigaBytes\"", 3ull << 30 },
		{ "7", "ovf:capacityAllocationUnits=\"MegaBytes\"", 7ull << 20 },
		{ "9", "ovf:capacityAllocationUnits=\"byte * 1024\"", 9216 },
		{ "2", "ovf:capacityAllocationUnits=\"byte\"", 2 },
	};
	static const struct {
		const char *capacity;
		const char *units;
	} bad[] = {
		{ "lots", "" },
		{ "-1", "" },
		{ "8", "ovf:capacityAllocationUnits=\"hertz * 10^6\"" },
		{ "8", "ovf:capacityAllocationUnits=\"byte * 2^\"" },
		/* overflow */
		{ "18446744073709551615", "ovf:capacityAllocationUnits=\"byte * 2^10\"" },
		{ "1", "ovf:capacityAllocationUnits=\"byte * 2^64\"" },
		{ "1", "ovf:capacityAllocationUnits=\"byte * 2^99999999999999999999\"" },
	};
	g_autofree char *dir = vmi_test_tmpdir_new ();

	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
		g_assert_cmpuint (capacity_of (dir, cases[i].capacity, cases[i].units, NULL), ==,
				  cases[i].bytes);
	for (gsize i = 0; i < G_N_ELEMENTS (bad); i++) {
		g_autoptr(GError) error = NULL;

		g_test_message ("capacity %s %s", bad[i].capacity, bad[i].units);
		capacity_of (dir, bad[i].capacity, bad[i].units, &error);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A ${property} capacity is set at deployment: the disk is listed, its size is not known. */
static void
test_ovf_property_capacity (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *body = g_strdup_printf (one_disk, "${disk.size}", "");
	g_autofree char *path = write_ovf (dir, "prop.ovf", "", body);
	g_autoptr(VmiSource) source = vmi_test_open (&vmi_ovf_plugin, path, NULL);
	g_autoptr(GVariant) facts = facts_of (source);
	g_autofree char *disks = flatten (facts, "disks",
					  (const char *const[]){ "capacity:s", "capacity-bytes:t", NULL });

	g_assert_cmpstr (disks, ==, "${disk.size}|-");
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 0);
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_ovf_firmware (void)
{
	static const struct {
		const char *hardware; /* inside VirtualSystem */
		const char *firmware;
	} cases[] = {
		{ "<VirtualHardwareSection><Info>x</Info><System><vssd:VirtualSystemType>vmx-13"
		  "</vssd:VirtualSystemType></System><vmw:Config ovf:required=\"false\" "
		  "vmw:key=\"firmware\" vmw:value=\"efi\"/></VirtualHardwareSection>",
		  "efi" },
		{ "<VirtualHardwareSection><Info>x</Info><System><vssd:VirtualSystemType>vmx-13"
		  "</vssd:VirtualSystemType></System></VirtualHardwareSection>",
		  "bios" },
		{ "<vbox:Machine ovf:required=\"false\" name=\"vboxname\"><Hardware><Firmware "
		  "type=\"EFI\"/></Hardware></vbox:Machine>",
		  "efi" },
		{ "<vbox:Machine ovf:required=\"false\" name=\"vboxname\"><Hardware><BIOS/></Hardware>"
		  "</vbox:Machine>",
		  "bios" },
		{ "<VirtualHardwareSection><Info>x</Info><System><vssd:VirtualSystemType>xen-3"
		  "</vssd:VirtualSystemType></System></VirtualHardwareSection>",
		  NULL },
	};
	g_autofree char *dir = vmi_test_tmpdir_new ();

	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autofree char *body = g_strdup_printf ("<VirtualSystem ovf:id=\"vm\"><Info>x</Info>%s"
							 "</VirtualSystem>",
							 cases[i].hardware);
		g_autofree char *path = write_ovf (dir, "fw.ovf", "", body);
		g_autoptr(VmiSource) source = vmi_test_open (&vmi_ovf_plugin, path, NULL);
		g_autoptr(GVariant) facts = facts_of (source);
		g_autofree char *got = flatten (facts, "virtual-systems",
						(const char *const[]){ "firmware:s", NULL });

		g_assert_cmpstr (got, ==, cases[i].firmware != NULL ? cases[i].firmware : "-");
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Items of a deployment option (ovf:configuration) yield to those that always apply. */
static void
test_ovf_configurations (void)
{
	static const struct {
		const char *items;
		const char *memory;
		const char *cpus;
	} cases[] = {
		{ "<Item ovf:configuration=\"big\"><rasd:ResourceType>4</rasd:ResourceType>"
		  "<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:VirtualQuantity>4096"
		  "</rasd:VirtualQuantity></Item>"
		  "<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:AllocationUnits>byte * 2^20"
		  "</rasd:AllocationUnits><rasd:VirtualQuantity>1024</rasd:VirtualQuantity></Item>"
		  "<Item ovf:configuration=\"big\"><rasd:ResourceType>3</rasd:ResourceType>"
		  "<rasd:VirtualQuantity>8</rasd:VirtualQuantity></Item>",
		  "1073741824", "8" },
		{ "<Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2"
		  "</rasd:VirtualQuantity></Item>"
		  "<Item ovf:configuration=\"big\"><rasd:ResourceType>3</rasd:ResourceType>"
		  "<rasd:VirtualQuantity>8</rasd:VirtualQuantity></Item>"
		  "<Item ovf:configuration=\"small\"><rasd:ResourceType>4</rasd:ResourceType>"
		  "<rasd:AllocationUnits>GigaBytes</rasd:AllocationUnits><rasd:VirtualQuantity>2"
		  "</rasd:VirtualQuantity></Item>"
		  "<Item ovf:configuration=\"big\"><rasd:ResourceType>4</rasd:ResourceType>"
		  "<rasd:AllocationUnits>GigaBytes</rasd:AllocationUnits><rasd:VirtualQuantity>16"
		  "</rasd:VirtualQuantity></Item>",
		  "2147483648", "2" },
		/* memory in a unit that is not bytes is left out, not guessed */
		{ "<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:AllocationUnits>hertz"
		  "</rasd:AllocationUnits><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>",
		  "-", "-" },
	};
	g_autofree char *dir = vmi_test_tmpdir_new ();

	for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autofree char *body = g_strdup_printf ("<VirtualSystem ovf:id=\"vm\"><Info>x</Info>"
							 "<VirtualHardwareSection><Info>x</Info>%s"
							 "</VirtualHardwareSection></VirtualSystem>",
							 cases[i].items);
		g_autofree char *path = write_ovf (dir, "config.ovf", "", body);
		g_autoptr(VmiSource) source = vmi_test_open (&vmi_ovf_plugin, path, NULL);
		g_autoptr(GVariant) facts = facts_of (source);
		g_autofree char *got = flatten (facts, "virtual-systems",
						(const char *const[]){ "memory:t", "cpus:t", NULL });
		g_autofree char *expected = g_strdup_printf ("%s|%s", cases[i].memory, cases[i].cpus);

		g_assert_cmpstr (got, ==, expected);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* hrefs that lead outside the package make the descriptor unsafe, and are never opened. */
static void
test_ovf_hostile_hrefs (void)
{
	static const char *const hrefs[] = { "../x.vmdk", "/etc/passwd", "http://example.com/x.vmdk",
					     "file:///etc/shadow", "sub/x.vmdk", "..", "a\\b.vmdk" };
	g_autofree char *dir = vmi_test_tmpdir_new ();

	for (gsize i = 0; i < G_N_ELEMENTS (hrefs); i++) {
		g_autofree char *body = g_strdup_printf ("<References><File ovf:id=\"f\" ovf:href=\"%s\"/>"
							 "</References>",
							 hrefs[i]);
		g_autofree char *path = write_ovf (dir, "href.ovf", "", body);
		g_autoptr(VmiSource) source = vmi_test_open (&vmi_ovf_plugin, path, NULL);
		const VmiImageInfo *info = vmi_source_get_info (source);

		g_test_message ("href %s", hrefs[i]);
		g_assert_false (vmi_source_is_safe (source));
		g_assert_cmpuint (info->unsafe_reasons->len, ==, 1);
		g_assert_cmpuint (info->references->len, ==, 1);
		g_assert_cmpstr (g_ptr_array_index (info->references, 0), ==, hrefs[i]);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* An open(2) or read(2) of path while the parser runs shows as an inotify event. */
static int
watch_file (const char *path)
{
	int fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (inotify_add_watch (fd, path, IN_OPEN | IN_ACCESS), >=, 0);
	return fd;
}

static void
assert_not_touched (int inotify_fd)
{
	char buf[4096];
	ssize_t n = read (inotify_fd, buf, sizeof buf);

	g_assert_cmpint (n, <, 0);
	g_assert_cmpint (errno, ==, EAGAIN);
	close (inotify_fd);
}

/* An external entity naming a local file is refused before anything opens that file. */
static void
test_ovf_xxe (void)
{
	static const char *const prologues[] = {
		"<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM \"file://@FILE@\">]>\n",
		"<!DOCTYPE Envelope [<!ENTITY % p SYSTEM \"file://@FILE@\"> %p;]>\n",
		"<!DOCTYPE Envelope SYSTEM \"file://@FILE@\">\n",
	};
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *secret = g_build_filename (dir, "secret", NULL);

	g_assert_true (g_file_set_contents (secret, "TOP-SECRET-CONTENT", -1, NULL));
	for (gsize i = 0; i < G_N_ELEMENTS (prologues); i++) {
		g_auto(GStrv) parts = g_strsplit (prologues[i], "@FILE@", -1);
		g_autofree char *prologue = g_strjoinv (secret, parts);
		g_autofree char *path = write_ovf (
			dir, "xxe.ovf", prologue,
			"<VirtualSystem ovf:id=\"vm\"><Info>x</Info><Name>&xxe;</Name></VirtualSystem>");
		g_autoptr(GError) error = NULL;
		g_autoptr(VmiSource) source = NULL;
		int watch = watch_file (secret);

		source = vmi_test_open (&vmi_ovf_plugin, path, &error);
		g_assert_null (source);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
		g_assert_null (strstr (error->message, "TOP-SECRET"));
		assert_not_touched (watch);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Billion laughs: ten levels of ten references would be 10^9 copies; refused at the DOCTYPE. */
static void
test_ovf_billion_laughs (void)
{
	g_autoptr(GString) prologue = g_string_new ("<!DOCTYPE Envelope [\n<!ENTITY lol0 \"lol\">\n");
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	gint64 start;

	for (guint level = 1; level < 10; level++) {
		g_string_append_printf (prologue, "<!ENTITY lol%u \"", level);
		for (guint i = 0; i < 10; i++)
			g_string_append_printf (prologue, "&lol%u;", level - 1);
		g_string_append (prologue, "\">\n");
	}
	g_string_append (prologue, "]>\n");
	path = write_ovf (dir, "lol.ovf", prologue->str,
			  "<VirtualSystem ovf:id=\"vm\"><Info>x</Info><Name>&lol9;</Name></VirtualSystem>");
	start = g_get_monotonic_time ();
	source = vmi_test_open (&vmi_ovf_plugin, path, &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
assert_open_fails (const char *path, int code)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = vmi_test_open (&vmi_ovf_plugin, path, &error);

	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, code);
	g_test_message ("%s", error->message);
}

static void
test_ovf_bad_documents (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = g_build_filename (dir, "bad.ovf", NULL);
	g_autoptr(GString) many = g_string_new ("<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\">");
	int fd;

	/* XML, but not an envelope; an envelope in a foreign namespace */
	g_assert_true (g_file_set_contents (path, "<?xml version=\"1.0\"?><VirtualSystem xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"/>", -1, NULL));
	assert_open_fails (path, VMI_ERROR_UNKNOWN_FORMAT);
	g_assert_true (g_file_set_contents (path, "<Envelope xmlns=\"urn:other\"/>", -1, NULL));
	assert_open_fails (path, VMI_ERROR_UNKNOWN_FORMAT);
	/* not XML at all, and empty */
	g_assert_true (g_file_set_contents (path, "version=1\n", -1, NULL));
	assert_open_fails (path, VMI_ERROR_CORRUPT_IMAGE);
	g_assert_true (g_file_set_contents (path, "", 0, NULL));
	assert_open_fails (path, VMI_ERROR_CORRUPT_IMAGE);
	/* a disk naming a File that References lack */
	g_free (path);
	path = write_ovf (dir, "ref.ovf", "",
			  "<References/><DiskSection><Disk ovf:diskId=\"d\" ovf:fileRef=\"nope\" "
			  "ovf:capacity=\"1\"/></DiskSection>");
	assert_open_fails (path, VMI_ERROR_CORRUPT_IMAGE);
	/* a File without href, a size that is not a number */
	g_free (path);
	path = write_ovf (dir, "ref.ovf", "", "<References><File ovf:id=\"f\"/></References>");
	assert_open_fails (path, VMI_ERROR_CORRUPT_IMAGE);
	g_free (path);
	path = write_ovf (dir, "ref.ovf", "",
			  "<References><File ovf:id=\"f\" ovf:href=\"a\" ovf:size=\"12x\"/></References>");
	assert_open_fails (path, VMI_ERROR_CORRUPT_IMAGE);
	/* more elements than the cap, each tiny: refused before the tree grows large */
	for (guint i = 0; i <= 200000; i++)
		g_string_append (many, "<a/>");
	g_string_append (many, "</Envelope>");
	g_free (path);
	path = g_build_filename (dir, "many.ovf", NULL);
	g_assert_true (g_file_set_contents (path, many->str, (gssize) many->len, NULL));
	assert_open_fails (path, VMI_ERROR_NOT_SUPPORTED);
	/* larger than the descriptor cap: a sparse 17 MiB file, never read */
	fd = open (path, O_WRONLY | O_TRUNC);
	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (ftruncate (fd, 17 * 1024 * 1024), ==, 0);
	close (fd);
	assert_open_fails (path, VMI_ERROR_NOT_SUPPORTED);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* Every corpus descriptor cut short is not well-formed, never half-read. */
static void
test_ovf_truncated (void)
{
	g_autofree char *dir = NULL;

	if (vmi_test_corpus_dir () == NULL)
		return;
	dir = vmi_test_tmpdir_new ();
	for (gsize i = 0; i < G_N_ELEMENTS (corpus_ovfs); i++) {
		g_autofree char *corpus = vmi_test_corpus_fetch (corpus_ovfs[i].file, dir);
		g_autofree char *path = g_build_filename (dir, "cut.ovf", NULL);
		g_autofree char *text = NULL;
		gsize len = 0;

		g_assert_true (g_file_get_contents (corpus, &text, &len, NULL));
		for (gsize cut = 1; cut < 8; cut++) {
			g_assert_true (g_file_set_contents (path, text, (gssize) (len * cut / 8), NULL));
			assert_open_fails (path, VMI_ERROR_CORRUPT_IMAGE);
		}
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_ovf_probe (void)
{
	static const char *const no[] = {
		"<?xml version=\"1.0\"?><html/>",
		"<?xml version=\"1.0\"?><Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"/>",
		"Envelope http://schemas.dmtf.org/ovf/envelope/1",
		"",
	};
	const char *yes = "\xef\xbb\xbf  \n<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/2\"/>";
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = NULL;

	for (gsize i = 0; i < G_N_ELEMENTS (no); i++)
		g_assert_cmpuint (vmi_ovf_plugin.probe ((const guint8 *) no[i], strlen (no[i]), strlen (no[i])),
				  ==, VMI_PROBE_NO);
	g_assert_cmpuint (vmi_ovf_plugin.probe ((const guint8 *) yes, strlen (yes), strlen (yes)), ==,
			  VMI_PROBE_LIKELY);

	/* with raw loaded too, a descriptor is detected as ovf, not as a raw disk */
	if (vmi_test_corpus_dir () == NULL)
		return;
	g_assert_true (vmi_registry_add (registry, &vmi_raw_plugin, &error));
	g_assert_true (vmi_registry_add (registry, &vmi_ovf_plugin, &error));
	dir = vmi_test_tmpdir_new ();
	for (gsize i = 0; i < G_N_ELEMENTS (corpus_ovfs); i++) {
		g_autofree char *path = vmi_test_corpus_fetch (corpus_ovfs[i].file, dir);
		int fd = open (path, O_RDONLY | O_CLOEXEC);

		g_assert_cmpint (fd, >=, 0);
		g_assert_true (vmi_registry_probe_fd (registry, fd, &error) == &vmi_ovf_plugin);
		close (fd);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/ovf/corpus", test_ovf_corpus);
	g_test_add_func ("/ovf/hardware", test_ovf_hardware);
	g_test_add_func ("/ovf/capacity-units", test_ovf_capacity_units);
	g_test_add_func ("/ovf/property-capacity", test_ovf_property_capacity);
	g_test_add_func ("/ovf/firmware", test_ovf_firmware);
	g_test_add_func ("/ovf/configurations", test_ovf_configurations);
	g_test_add_func ("/ovf/hostile-hrefs", test_ovf_hostile_hrefs);
	g_test_add_func ("/ovf/xxe", test_ovf_xxe);
	g_test_add_func ("/ovf/billion-laughs", test_ovf_billion_laughs);
	g_test_add_func ("/ovf/bad-documents", test_ovf_bad_documents);
	g_test_add_func ("/ovf/truncated", test_ovf_truncated);
	g_test_add_func ("/ovf/probe", test_ovf_probe);
	return g_test_run ();
}
