#include <string.h>

#include <libxml/parser.h>
#include <libxml/SAX2.h>
#include <libxml/tree.h>

#include "vmi-ovf-parse.h"
#include "vmi-plugin-util.h"

#define OVF_NS_1 "http://schemas.dmtf.org/ovf/envelope/1"
#define OVF_NS_2 "http://schemas.dmtf.org/ovf/envelope/2"
#define OVF_NS_09 "http://www.vmware.com/schema/ovf/1/envelope"
#define VMW_NS "http://www.vmware.com/schema/ovf"
#define VBOX_NS "http://www.virtualbox.org/ovf/machine"
#define XSI_NS "http://www.w3.org/2001/XMLSchema-instance"

/* What the SAX hooks learn while libxml2 builds the tree. */
typedef struct {
	gboolean dtd;
	guint elements;
	gboolean too_many;
} OvfGuard;

typedef struct {
	VmiOvf *ovf;
	const char *ns; /* the envelope's namespace */
} OvfParser;

static void
ovf_file_free (VmiOvfFile *file)
{
	g_free (file->id);
	g_free (file->href);
	g_free (file->compression);
	g_free (file);
}

static void
ovf_disk_free (VmiOvfDisk *disk)
{
	g_free (disk->id);
	g_free (disk->file_ref);
	g_free (disk->format);
	g_free (disk->capacity);
	g_free (disk->capacity_units);
	g_free (disk);
}

static void
ovf_system_free (VmiOvfSystem *system)
{
	g_free (system->id);
	g_free (system->name);
	g_free (system->os_type);
	g_free (system->os_description);
	g_free (system->system_type);
	g_ptr_array_unref (system->networks);
	g_free (system);
}

void
vmi_ovf_free (VmiOvf *self)
{
	if (self == NULL)
		return;
	g_free (self->vmware_build_id);
	g_ptr_array_unref (self->files);
	g_ptr_array_unref (self->disks);
	g_ptr_array_unref (self->systems);
	g_ptr_array_unref (self->networks);
	g_ptr_array_unref (self->unsafe_reasons);
	g_free (self);
}

char *
vmi_ovf_read (int fd, guint64 offset, guint64 size, const char *what, GError **error)
{
	g_autofree char *data = NULL;

	if (size > VMI_OVF_MAX_DESCRIPTOR_SIZE) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the %s is %" G_GUINT64_FORMAT " bytes; real OVF descriptors are a "
			     "few KiB and this reader stops at %u bytes",
			     what, size, VMI_OVF_MAX_DESCRIPTOR_SIZE);
		return NULL;
	}
	data = g_malloc ((gsize) size + 1);
	if (!vmi_pread_all (fd, data, (gsize) size, offset, what, error))
		return NULL;
	data[size] = '\0';
	return g_steal_pointer (&data);
}

char *
vmi_ovf_href_unsafe_reason (const char *href)
{
	const char *colon = strchr (href, ':');

	if (href[0] == '\0')
		return g_strdup ("a File of the OVF References has an empty href");
	if (colon != NULL && colon > href && strspn (href, "abcdefghijklmnopqrstuvwxyz"
					       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") ==
						 (gsize) (colon - href))
		return g_strdup_printf ("the OVF references the URL \"%s\": an importer would fetch "
					"or open something outside the package",
					href);
	if (href[0] == '/' || href[0] == '\\')
		return g_strdup_printf ("the OVF references the absolute path \"%s\", outside the "
					"package",
					href);
	if (strstr (href, "..") != NULL)
		return g_strdup_printf ("the OVF references \"%s\", whose \"..\" may lead outside the "
					"package's folder",
					href);
	if (strchr (href, '/') != NULL || strchr (href, '\\') != NULL)
		return g_strdup_printf ("the OVF references \"%s\", a path with folders: files of an "
					"OVF package sit beside the descriptor",
					href);
	for (const char *c = href; *c != '\0'; c++) {
		if ((guchar) *c < 0x20 || *c == 0x7f) {
			g_autofree char *escaped = g_strescape (href, NULL);

			return g_strdup_printf ("the OVF references a file name with control "
						"characters (\"%s\")",
						escaped);
		}
	}
	return NULL;
}

/* libxml2 strings become GLib ones, trimmed, so callers free one kind only. */
static char *
ovf_take (xmlChar *s)
{
	char *copy;

	if (s == NULL)
		return NULL;
	copy = g_strstrip (g_strdup ((const char *) s));
	xmlFree (s);
	return copy;
}

/*
 * An element of that local name in namespace ns (any namespace when ns is NULL). OVF 0.9
 * descriptors qualify only the root, so an unqualified element counts as the envelope's.
 */
static gboolean
ovf_is (const xmlNode *node, const char *ns, const char *name)
{
	return node->type == XML_ELEMENT_NODE && strcmp ((const char *) node->name, name) == 0 &&
	       (ns == NULL || node->ns == NULL || strcmp ((const char *) node->ns->href, ns) == 0);
}

/* An ovf:attribute; tools that forget the prefix still name the attribute plainly. */
static char *
ovf_attr (OvfParser *p, xmlNode *node, const char *name)
{
	char *value = ovf_take (xmlGetNsProp (node, (const xmlChar *) name, (const xmlChar *) p->ns));

	if (value == NULL)
		value = ovf_take (xmlGetNoNsProp (node, (const xmlChar *) name));
	return value;
}

static char *
ovf_text (xmlNode *node)
{
	return ovf_take (xmlNodeGetContent (node));
}

/* The first element child with that local name (any namespace when ns is NULL). */
static xmlNode *
ovf_child (xmlNode *node, const char *ns, const char *name)
{
	for (xmlNode *c = node->children; c != NULL; c = c->next) {
		if (ovf_is (c, ns, name))
			return c;
	}
	return NULL;
}

static char *
ovf_child_text (xmlNode *node, const char *ns, const char *name)
{
	xmlNode *child = ovf_child (node, ns, name);

	return child != NULL ? ovf_text (child) : NULL;
}

/*
 * The kind of an envelope child: "References", "DiskSection", "VirtualSystem", ... OVF 0.9
 * writes <Section xsi:type="ovf:DiskSection_Type"> and <Content xsi:type="ovf:VirtualSystem_Type">
 * where 1.x and 2.x name the element.
 */
static char *
ovf_kind (OvfParser *p, xmlNode *node)
{
	g_autofree char *type = NULL;
	const char *local;
	gsize len;

	if (node->type != XML_ELEMENT_NODE ||
	    (node->ns != NULL && strcmp ((const char *) node->ns->href, p->ns) != 0))
		return NULL;
	if (strcmp ((const char *) node->name, "Section") != 0 &&
	    strcmp ((const char *) node->name, "Content") != 0)
		return g_strdup ((const char *) node->name);
	type = ovf_take (xmlGetNsProp (node, (const xmlChar *) "type", (const xmlChar *) XSI_NS));
	if (type == NULL)
		return NULL;
	local = strchr (type, ':') != NULL ? strchr (type, ':') + 1 : type;
	len = strlen (local);
	if (g_str_has_suffix (local, "_Type"))
		len -= strlen ("_Type");
	return g_strndup (local, len);
}

static gboolean
ovf_parse_u64 (const char *s, guint64 *out)
{
	return s != NULL && g_ascii_isdigit (s[0]) &&
	       g_ascii_string_to_unsigned (s, 10, 0, G_MAXUINT64, out, NULL);
}

/*
 * Bytes per unit of an allocation unit string: DSP0004 programmatic units ("byte * 2^30",
 * "byte*10^9", "byte * 1024") or the older CIM names ("MegaBytes"), which VMware and VirtualBox
 * read as powers of 1024. NULL or empty means bytes.
 */
static gboolean
ovf_units_bytes (const char *units, guint64 *out)
{
	static const struct {
		const char *name;
		guint shift;
	} names[] = {
		{ "byte", 0 },	    { "bytes", 0 },	  { "kilobytes", 10 }, { "kb", 10 },
		{ "megabytes", 20 }, { "mb", 20 },	  { "gigabytes", 30 }, { "gb", 30 },
		{ "terabytes", 40 }, { "tb", 40 },
	};
	const char *s = units;
	guint64 bytes = 1;

	if (s == NULL || *s == '\0') {
		*out = 1;
		return TRUE;
	}
	for (gsize i = 0; i < G_N_ELEMENTS (names); i++) {
		if (g_ascii_strcasecmp (s, names[i].name) == 0) {
			*out = G_GUINT64_CONSTANT (1) << names[i].shift;
			return TRUE;
		}
	}
	if (g_ascii_strncasecmp (s, "byte", 4) != 0)
		return FALSE;
	s += 4;
	if (*s == 's' || *s == 'S')
		s++;
	for (guint terms = 0; *s != '\0'; terms++) {
		guint64 base = 0, exponent = 1, factor = 1;
		char *end;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		if (*s != '*' || terms >= 4)
			return FALSE;
		s++;
		while (*s == ' ')
			s++;
		if (!g_ascii_isdigit (*s))
			return FALSE;
		base = g_ascii_strtoull (s, &end, 10);
		s = end;
		while (*s == ' ')
			s++;
		if (*s == '^') {
			s++;
			while (*s == ' ')
				s++;
			if (!g_ascii_isdigit (*s))
				return FALSE;
			exponent = g_ascii_strtoull (s, &end, 10);
			s = end;
		}
		if (exponent > 64)
			return FALSE;
		for (guint64 i = 0; i < exponent; i++) {
			if (!g_uint64_checked_mul (&factor, factor, base))
				return FALSE;
		}
		if (!g_uint64_checked_mul (&bytes, bytes, factor))
			return FALSE;
	}
	*out = bytes;
	return TRUE;
}

static gint64
ovf_attr_size (OvfParser *p, xmlNode *node, const char *name, GError **error)
{
	g_autofree char *s = ovf_attr (p, node, name);
	guint64 value;

	if (s == NULL)
		return -1;
	if (!ovf_parse_u64 (s, &value) || value > G_MAXINT64) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the OVF gives ovf:%s=\"%s\" on line %d, which is not a byte count", name,
			     s, node->line);
		return -2;
	}
	return (gint64) value;
}

static gboolean
ovf_parse_references (OvfParser *p, xmlNode *section, GError **error)
{
	for (xmlNode *c = section->children; c != NULL; c = c->next) {
		VmiOvfFile *file;
		char *reason;

		if (!ovf_is (c, p->ns, "File"))
			continue;
		file = g_new0 (VmiOvfFile, 1);
		g_ptr_array_add (p->ovf->files, file);
		file->id = ovf_attr (p, c, "id");
		file->href = ovf_attr (p, c, "href");
		file->compression = ovf_attr (p, c, "compression");
		if (file->id == NULL || file->href == NULL) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the File on line %d of the OVF lacks its ovf:%s", c->line,
				     file->id == NULL ? "id" : "href");
			return FALSE;
		}
		file->size = ovf_attr_size (p, c, "size", error);
		if (file->size < -1)
			return FALSE;
		file->chunk_size = ovf_attr_size (p, c, "chunkSize", error);
		if (file->chunk_size < -1)
			return FALSE;
		reason = vmi_ovf_href_unsafe_reason (file->href);
		if (reason != NULL)
			g_ptr_array_add (p->ovf->unsafe_reasons, reason);
		if (file->compression != NULL && file->compression[0] != '\0' &&
		    strcmp (file->compression, "gzip") != 0 &&
		    strcmp (file->compression, "identity") != 0)
			g_ptr_array_add (p->ovf->unsafe_reasons,
					 g_strdup_printf ("the OVF file \"%s\" has compression \"%s\", "
							  "which OVF does not define (gzip or identity)",
							  file->href, file->compression));
	}
	return TRUE;
}

/* A short name for a disk format URI, as OVF tools write them. */
static const char *
ovf_format_name (const char *uri)
{
	const char *fragment;

	if (uri == NULL)
		return "unknown";
	fragment = strrchr (uri, '#');
	if (strstr (uri, "vmdk") != NULL) {
		if (fragment == NULL)
			return "vmdk";
		if (strcmp (fragment, "#streamOptimized") == 0)
			return "vmdk-streamOptimized";
		if (strcmp (fragment, "#sparse") == 0)
			return "vmdk-sparse";
		if (strcmp (fragment, "#compressed") == 0)
			return "vmdk-compressed";
		if (strcmp (fragment, "#monolithicSparse") == 0)
			return "vmdk-monolithicSparse";
		return "vmdk";
	}
	if (strstr (uri, "qcow") != NULL)
		return "qcow2";
	if (strstr (uri, "vhdx") != NULL)
		return "vhdx";
	/* Microsoft's VHD specification page, as XenServer and Hyper-V exports cite it */
	if (strstr (uri, "bb676673") != NULL || strstr (uri, "vhd") != NULL)
		return "vhd";
	if (strstr (uri, "vdi") != NULL)
		return "vdi";
	if (strstr (uri, "raw") != NULL)
		return "raw";
	return "unknown";
}

static const VmiOvfFile *
ovf_find_file (VmiOvf *ovf, const char *id)
{
	for (guint i = 0; i < ovf->files->len; i++) {
		const VmiOvfFile *file = g_ptr_array_index (ovf->files, i);

		if (strcmp (file->id, id) == 0)
			return file;
	}
	return NULL;
}

static gboolean
ovf_parse_disk (OvfParser *p, xmlNode *node, GError **error)
{
	VmiOvfDisk *disk = g_new0 (VmiOvfDisk, 1);
	guint64 count, unit;

	g_ptr_array_add (p->ovf->disks, disk);
	disk->id = ovf_attr (p, node, "diskId");
	disk->file_ref = ovf_attr (p, node, "fileRef");
	disk->format = ovf_attr (p, node, "format");
	disk->format_name = ovf_format_name (disk->format);
	disk->capacity = ovf_attr (p, node, "capacity");
	disk->capacity_units = ovf_attr (p, node, "capacityAllocationUnits");
	disk->populated_size = ovf_attr_size (p, node, "populatedSize", error);
	if (disk->populated_size < -1)
		return FALSE;
	if (disk->id == NULL || disk->capacity == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the Disk on line %d of the OVF lacks its ovf:%s", node->line,
			     disk->id == NULL ? "diskId" : "capacity");
		return FALSE;
	}
	if (disk->file_ref != NULL) {
		disk->file = ovf_find_file (p->ovf, disk->file_ref);
		if (disk->file == NULL) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "disk \"%s\" of the OVF names the file \"%s\", which its "
				     "References do not list",
				     disk->id, disk->file_ref);
			return FALSE;
		}
	}
	/* A ${property} capacity is set by the user at deployment: valid, but no number. */
	if (disk->capacity[0] == '$')
		return TRUE;
	if (!ovf_parse_u64 (disk->capacity, &count)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "disk \"%s\" of the OVF has capacity \"%s\", which is not a number",
			     disk->id, disk->capacity);
		return FALSE;
	}
	if (!ovf_units_bytes (disk->capacity_units, &unit)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "disk \"%s\" of the OVF gives its capacity in \"%s\", which is not a "
			     "unit of bytes (such as \"byte * 2^30\")",
			     disk->id, disk->capacity_units);
		return FALSE;
	}
	if (!g_uint64_checked_mul (&disk->capacity_bytes, count, unit) ||
	    disk->capacity_bytes > G_MAXINT64) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "disk \"%s\" of the OVF has a capacity of %s × \"%s\", more than 2^63 "
			     "bytes",
			     disk->id, disk->capacity, disk->capacity_units);
		return FALSE;
	}
	disk->capacity_known = TRUE;
	if (!g_uint64_checked_add (&p->ovf->virtual_size, p->ovf->virtual_size,
				   disk->capacity_bytes)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the capacities of the OVF's disks add up to more than 2^64 "
				     "bytes");
		return FALSE;
	}
	return TRUE;
}

static void
ovf_add_unique (GPtrArray *array, char *s)
{
	if (s == NULL || s[0] == '\0' || g_ptr_array_find_with_equal_func (array, s, g_str_equal, NULL)) {
		g_free (s);
		return;
	}
	g_ptr_array_add (array, s);
}

static void
ovf_parse_operating_system (OvfParser *p, VmiOvfSystem *system, xmlNode *section)
{
	g_autofree char *id = ovf_attr (p, section, "id");
	guint64 value;

	if (system->os_id >= 0 || system->os_description != NULL)
		return;
	system->os_id = ovf_parse_u64 (id, &value) && value <= G_MAXUINT32 ? (gint64) value : -1;
	system->os_type = ovf_take (xmlGetNsProp (section, (const xmlChar *) "osType",
						 (const xmlChar *) VMW_NS));
	if (system->os_type == NULL)
		system->os_type = ovf_child_text (section, VBOX_NS, "OSType");
	system->os_description = ovf_child_text (section, p->ns, "Description");
	if (system->os_type == NULL && system->os_description != NULL)
		system->os_type = g_strdup (system->os_description);
}

static const char *
ovf_firmware_name (const char *value)
{
	if (value == NULL)
		return NULL;
	if (g_ascii_strncasecmp (value, "efi", 3) == 0 || g_ascii_strcasecmp (value, "uefi") == 0)
		return "efi";
	if (g_ascii_strcasecmp (value, "bios") == 0)
		return "bios";
	return NULL;
}

/* One Item (or StorageItem, EthernetPortItem): rasd, sasd and epasd share the field names. */
static void
ovf_parse_item (OvfParser *p, VmiOvfSystem *system, xmlNode *item, gboolean *cpus_final,
		gboolean *memory_final)
{
	g_autofree char *type = ovf_child_text (item, NULL, "ResourceType");
	g_autofree char *quantity = ovf_child_text (item, NULL, "VirtualQuantity");
	g_autofree char *units = ovf_child_text (item, NULL, "AllocationUnits");
	g_autofree char *configuration = ovf_attr (p, item, "configuration");
	/* Items of one deployment option do not override the ones that always apply. */
	gboolean always = configuration == NULL;
	guint64 count, unit;

	if (g_strcmp0 (type, "3") == 0 && ovf_parse_u64 (quantity, &count) &&
	    count <= G_MAXINT64 && (always || (!*cpus_final && system->cpus < 0))) {
		system->cpus = (gint64) count;
		*cpus_final |= always;
	} else if (g_strcmp0 (type, "4") == 0 && ovf_parse_u64 (quantity, &count) &&
		   (always || (!*memory_final && system->memory < 0))) {
		guint64 bytes;

		/* VMware and VirtualBox write MiB when they omit the unit */
		if (units == NULL)
			unit = 1u << 20;
		else if (!ovf_units_bytes (units, &unit))
			return;
		if (g_uint64_checked_mul (&bytes, count, unit) && bytes <= G_MAXINT64) {
			system->memory = (gint64) bytes;
			*memory_final |= always;
		}
	} else if (g_strcmp0 (type, "10") == 0) {
		ovf_add_unique (system->networks, ovf_child_text (item, NULL, "Connection"));
	}
}

static void
ovf_parse_hardware (OvfParser *p, VmiOvfSystem *system, xmlNode *section)
{
	gboolean cpus_final = FALSE, memory_final = FALSE;

	for (xmlNode *c = section->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (ovf_is (c, p->ns, "System")) {
			if (system->system_type == NULL)
				system->system_type = ovf_child_text (c, NULL, "VirtualSystemType");
		} else if (ovf_is (c, p->ns, "Item") || ovf_is (c, p->ns, "StorageItem") ||
			   ovf_is (c, p->ns, "EthernetPortItem")) {
			ovf_parse_item (p, system, c, &cpus_final, &memory_final);
		} else if (ovf_is (c, VMW_NS, "Config")) {
			g_autofree char *key = ovf_take (
				xmlGetNsProp (c, (const xmlChar *) "key", (const xmlChar *) VMW_NS));
			g_autofree char *value = ovf_take (
				xmlGetNsProp (c, (const xmlChar *) "value", (const xmlChar *) VMW_NS));

			if (g_strcmp0 (key, "firmware") == 0 && ovf_firmware_name (value) != NULL)
				system->firmware = ovf_firmware_name (value);
		}
	}
}

/* VirtualBox's own settings: <vbox:Machine name=…><Hardware><Firmware type="EFI"/>. */
static void
ovf_parse_vbox_machine (VmiOvfSystem *system, xmlNode *machine)
{
	xmlNode *hardware = ovf_child (machine, NULL, "Hardware");
	xmlNode *firmware = hardware != NULL ? ovf_child (hardware, NULL, "Firmware") : NULL;

	if (system->name == NULL)
		system->name = ovf_take (xmlGetNoNsProp (machine, (const xmlChar *) "name"));
	if (system->firmware != NULL)
		return;
	if (firmware != NULL) {
		g_autofree char *type = ovf_take (xmlGetNoNsProp (firmware, (const xmlChar *) "type"));

		system->firmware = ovf_firmware_name (type);
	} else {
		/* VirtualBox writes only settings that differ from its defaults, and BIOS is one */
		system->firmware = "bios";
	}
}

static void
ovf_parse_system (OvfParser *p, xmlNode *node)
{
	VmiOvfSystem *system = g_new0 (VmiOvfSystem, 1);
	xmlNode *machine = NULL;

	system->os_id = -1;
	system->cpus = -1;
	system->memory = -1;
	system->networks = g_ptr_array_new_with_free_func (g_free);
	g_ptr_array_add (p->ovf->systems, system);
	system->id = ovf_attr (p, node, "id");
	system->name = ovf_child_text (node, p->ns, "Name");
	for (xmlNode *c = node->children; c != NULL; c = c->next) {
		g_autofree char *kind = ovf_kind (p, c);

		if (g_strcmp0 (kind, "OperatingSystemSection") == 0)
			ovf_parse_operating_system (p, system, c);
		else if (g_strcmp0 (kind, "VirtualHardwareSection") == 0)
			ovf_parse_hardware (p, system, c);
		else if (ovf_is (c, VBOX_NS, "Machine") && machine == NULL)
			machine = c;
	}
	if (machine != NULL)
		ovf_parse_vbox_machine (system, machine);
	if (system->name == NULL || system->name[0] == '\0') {
		g_free (system->name);
		system->name = g_strdup (system->id);
	}
	/* VMware's default firmware is BIOS too; an EFI machine is always exported as such */
	if (system->firmware == NULL && system->system_type != NULL &&
	    g_str_has_prefix (system->system_type, "vmx-"))
		system->firmware = "bios";
}

static void
ovf_parse_content (OvfParser *p, xmlNode *parent, gboolean in_collection)
{
	for (xmlNode *c = parent->children; c != NULL; c = c->next) {
		g_autofree char *kind = ovf_kind (p, c);

		if (g_strcmp0 (kind, "VirtualSystem") == 0) {
			ovf_parse_system (p, c);
		} else if (g_strcmp0 (kind, "VirtualSystemCollection") == 0) {
			p->ovf->collection = TRUE;
			/* nesting is bounded by libxml2's depth limit (256) */
			ovf_parse_content (p, c, TRUE);
		} else if (in_collection && g_strcmp0 (kind, "NetworkSection") == 0) {
			for (xmlNode *n = c->children; n != NULL; n = n->next) {
				if (ovf_is (n, p->ns, "Network"))
					ovf_add_unique (p->ovf->networks, ovf_attr (p, n, "name"));
			}
		}
	}
}

static gboolean
ovf_parse_envelope (OvfParser *p, xmlNode *envelope, GError **error)
{
	/* References first: disks name files by id wherever the sections are. */
	for (xmlNode *c = envelope->children; c != NULL; c = c->next) {
		if (ovf_is (c, p->ns, "References") && !ovf_parse_references (p, c, error))
			return FALSE;
	}
	for (xmlNode *c = envelope->children; c != NULL; c = c->next) {
		g_autofree char *kind = ovf_kind (p, c);

		if (g_strcmp0 (kind, "DiskSection") == 0) {
			for (xmlNode *d = c->children; d != NULL; d = d->next) {
				if (ovf_is (d, p->ns, "Disk") && !ovf_parse_disk (p, d, error))
					return FALSE;
			}
		} else if (g_strcmp0 (kind, "NetworkSection") == 0) {
			for (xmlNode *n = c->children; n != NULL; n = n->next) {
				if (ovf_is (n, p->ns, "Network"))
					ovf_add_unique (p->ovf->networks, ovf_attr (p, n, "name"));
			}
		}
	}
	ovf_parse_content (p, envelope, FALSE);
	p->ovf->vmware_build_id = ovf_take (
		xmlGetNsProp (envelope, (const xmlChar *) "buildId", (const xmlChar *) VMW_NS));
	return TRUE;
}

/*
 * A document type declaration is where entities are declared; OVF has no use for one, so the
 * parser stops at the first sign of it, before any entity exists to be expanded or fetched.
 */
static void
ovf_sax_subset (void *ctx, const xmlChar *name, const xmlChar *external_id,
		const xmlChar *system_id)
{
	xmlParserCtxtPtr ctxt = ctx;
	OvfGuard *guard = ctxt->_private;

	guard->dtd = TRUE;
	xmlStopParser (ctxt);
}

static void
ovf_sax_entity_decl (void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
		     const xmlChar *system_id, xmlChar *content)
{
	ovf_sax_subset (ctx, name, public_id, system_id);
}

static xmlParserInputPtr
ovf_sax_resolve_entity (void *ctx, const xmlChar *public_id, const xmlChar *system_id)
{
	ovf_sax_subset (ctx, NULL, public_id, system_id);
	return NULL;
}

static void
ovf_sax_start_element (void *ctx, const xmlChar *localname, const xmlChar *prefix,
		       const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
		       int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	xmlParserCtxtPtr ctxt = ctx;
	OvfGuard *guard = ctxt->_private;

	if (++guard->elements > VMI_OVF_MAX_ELEMENTS) {
		guard->too_many = TRUE;
		xmlStopParser (ctxt);
		return;
	}
	xmlSAX2StartElementNs (ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes,
			       nb_defaulted, attributes);
}

/* libxml2 reports some input errors (a bad encoding) through the generic handler, to stderr. */
static void
ovf_xml_silent (void *ctx, const char *msg, ...)
{
}

static xmlDoc *
ovf_read_xml (const char *data, gsize len, GError **error)
{
	OvfGuard guard = { 0 };
	xmlParserCtxtPtr ctxt;
	xmlDoc *doc;
	const xmlError *xml_error;

	if (len > VMI_OVF_MAX_DESCRIPTOR_SIZE || len > G_MAXINT) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the OVF descriptor is %" G_GSIZE_FORMAT " bytes; this reader stops at "
			     "%u bytes",
			     len, VMI_OVF_MAX_DESCRIPTOR_SIZE);
		return NULL;
	}
	ctxt = xmlNewParserCtxt ();
	if (ctxt == NULL) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "libxml2 could not make a parser context");
		return NULL;
	}
	ctxt->_private = &guard;
	ctxt->sax->internalSubset = ovf_sax_subset;
	ctxt->sax->externalSubset = ovf_sax_subset;
	ctxt->sax->entityDecl = ovf_sax_entity_decl;
	ctxt->sax->resolveEntity = ovf_sax_resolve_entity;
	ctxt->sax->startElementNs = ovf_sax_start_element;
	/* No XML_PARSE_NOENT, DTDLOAD, DTDATTR or XINCLUDE: nothing is substituted or loaded. */
	{
		/* the handler is per thread, so this thread's own is put back */
		xmlGenericErrorFunc saved = xmlGenericError;
		void *saved_ctx = xmlGenericErrorContext;

		xmlSetGenericErrorFunc (NULL, ovf_xml_silent);
		doc = xmlCtxtReadMemory (ctxt, data, (int) len, "descriptor.ovf", NULL,
					 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
		xmlSetGenericErrorFunc (saved_ctx, saved);
	}
	xml_error = xmlCtxtGetLastError (ctxt);
	if (guard.dtd) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
				     "the OVF descriptor has a document type declaration (<!DOCTYPE> "
				     "or <!ENTITY>); OVF never needs one, and its entities could read "
				     "local files or expand without bound, so it is refused");
	} else if (guard.too_many) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the OVF descriptor has more than %u elements; this reader stops there",
			     VMI_OVF_MAX_ELEMENTS);
	} else if (doc == NULL || !ctxt->wellFormed) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the OVF descriptor is not well-formed XML: %s (line %d)",
			     xml_error != NULL && xml_error->message != NULL
				     ? g_strchomp (xml_error->message)
				     : "no document",
			     xml_error != NULL ? xml_error->line : 0);
	}
	if ((guard.dtd || guard.too_many || !ctxt->wellFormed) && doc != NULL)
		g_clear_pointer (&doc, xmlFreeDoc);
	xmlFreeParserCtxt (ctxt);
	return doc;
}

gboolean
vmi_ovf_init (GError **error)
{
	xmlInitParser ();
	return TRUE;
}

VmiOvf *
vmi_ovf_parse (const char *data, gsize len, GError **error)
{
	g_autoptr(VmiOvf) self = g_new0 (VmiOvf, 1);
	OvfParser p = { .ovf = self };
	xmlDoc *doc;
	xmlNode *root;
	const char *ns;
	gboolean ok;

	self->files = g_ptr_array_new_with_free_func ((GDestroyNotify) ovf_file_free);
	self->disks = g_ptr_array_new_with_free_func ((GDestroyNotify) ovf_disk_free);
	self->systems = g_ptr_array_new_with_free_func ((GDestroyNotify) ovf_system_free);
	self->networks = g_ptr_array_new_with_free_func (g_free);
	self->unsafe_reasons = g_ptr_array_new_with_free_func (g_free);
	doc = ovf_read_xml (data, len, error);
	if (doc == NULL)
		return NULL;
	root = xmlDocGetRootElement (doc);
	ns = root != NULL && root->ns != NULL ? (const char *) root->ns->href : "";
	if (root == NULL || strcmp ((const char *) root->name, "Envelope") != 0 ||
	    (strcmp (ns, OVF_NS_1) != 0 && strcmp (ns, OVF_NS_2) != 0 && strcmp (ns, OVF_NS_09) != 0)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "the XML document's root is <%s> in namespace \"%s\", not an OVF "
			     "<Envelope> (%s, %s or %s)",
			     root != NULL ? (const char *) root->name : "", ns, OVF_NS_1, OVF_NS_2,
			     OVF_NS_09);
		xmlFreeDoc (doc);
		return NULL;
	}
	if (strcmp (ns, OVF_NS_1) == 0) {
		p.ns = OVF_NS_1;
		self->version = "1.x";
	} else if (strcmp (ns, OVF_NS_2) == 0) {
		p.ns = OVF_NS_2;
		self->version = "2.x";
	} else {
		p.ns = OVF_NS_09;
		self->version = "0.9";
	}
	ok = ovf_parse_envelope (&p, root, error);
	xmlFreeDoc (doc);
	if (!ok)
		return NULL;
	return g_steal_pointer (&self);
}
