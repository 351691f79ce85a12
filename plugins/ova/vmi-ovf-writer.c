#include <libxml/xmlwriter.h>

#include "vmi-ovf-writer.h"

#define OVF_NS "http://schemas.dmtf.org/ovf/envelope/1"
#define OVF_VMDK_STREAM "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
/* ESXi 5.5, Workstation 10 and later; EFI and every guest id below are in it. */
#define OVF_HARDWARE "vmx-10"
#define OVF_NETWORK "VM Network"

/* The calls after the first failure do nothing, so building reads as the document it makes. */
typedef struct {
	xmlTextWriterPtr w;
	gboolean ok;
} OvfOut;

static void
ovf_start (OvfOut *o, const char *element)
{
	o->ok = o->ok && xmlTextWriterStartElement (o->w, BAD_CAST element) >= 0;
}

static void
ovf_end (OvfOut *o)
{
	o->ok = o->ok && xmlTextWriterEndElement (o->w) >= 0;
}

static void
ovf_attr (OvfOut *o, const char *name, const char *value)
{
	o->ok = o->ok && xmlTextWriterWriteAttribute (o->w, BAD_CAST name, BAD_CAST value) >= 0;
}

static void
ovf_attr_u64 (OvfOut *o, const char *name, guint64 value)
{
	char text[24];

	g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, value);
	ovf_attr (o, name, text);
}

static void
ovf_text (OvfOut *o, const char *element, const char *text)
{
	o->ok = o->ok && xmlTextWriterWriteElement (o->w, BAD_CAST element, BAD_CAST text) >= 0;
}

static void
ovf_text_u64 (OvfOut *o, const char *element, guint64 value)
{
	char text[24];

	g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, value);
	ovf_text (o, element, text);
}

/* A vmw:Config of the hardware: ignored by importers that do not know it (required false). */
static void
ovf_vmw_config (OvfOut *o, const char *key, const char *value)
{
	ovf_start (o, "vmw:Config");
	ovf_attr (o, "ovf:required", "false");
	ovf_attr (o, "vmw:key", key);
	ovf_attr (o, "vmw:value", value);
	ovf_end (o);
}

static void
ovf_envelope_start (OvfOut *o)
{
	o->ok = o->ok && xmlTextWriterStartDocument (o->w, "1.0", "UTF-8", NULL) >= 0;
	ovf_start (o, "Envelope");
	ovf_attr (o, "xmlns", OVF_NS);
	ovf_attr (o, "xmlns:cim", "http://schemas.dmtf.org/wbem/wscim/1/common");
	ovf_attr (o, "xmlns:ovf", OVF_NS);
	ovf_attr (o, "xmlns:rasd",
		  "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData");
	ovf_attr (o, "xmlns:vmw", "http://www.vmware.com/schema/ovf");
	ovf_attr (o, "xmlns:vssd",
		  "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData");
	ovf_attr (o, "xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance");
}

static void
ovf_references_and_disks (OvfOut *o, const VmiOvfWriterParams *p)
{
	ovf_start (o, "References");
	ovf_start (o, "File");
	ovf_attr (o, "ovf:href", p->disk_href);
	ovf_attr (o, "ovf:id", "file1");
	ovf_attr_u64 (o, "ovf:size", p->disk_file_size);
	ovf_end (o);
	ovf_end (o);

	ovf_start (o, "DiskSection");
	ovf_text (o, "Info", "Virtual disk information");
	ovf_start (o, "Disk");
	ovf_attr_u64 (o, "ovf:capacity", p->disk_capacity);
	ovf_attr (o, "ovf:capacityAllocationUnits", "byte");
	ovf_attr (o, "ovf:diskId", "vmdisk1");
	ovf_attr (o, "ovf:fileRef", "file1");
	ovf_attr (o, "ovf:format", OVF_VMDK_STREAM);
	ovf_attr_u64 (o, "ovf:populatedSize", p->disk_populated);
	ovf_end (o);
	ovf_end (o);

	ovf_start (o, "NetworkSection");
	ovf_text (o, "Info", "The list of logical networks");
	ovf_start (o, "Network");
	ovf_attr (o, "ovf:name", OVF_NETWORK);
	ovf_text (o, "Description", "The " OVF_NETWORK " network");
	ovf_end (o);
	ovf_end (o);
}

/* An Item; its rasd elements follow in the order of the RASD schema (alphabetical). */
static void
ovf_item_start (OvfOut *o, gboolean required)
{
	ovf_start (o, "Item");
	if (!required)
		ovf_attr (o, "ovf:required", "false");
}

static void
ovf_hardware (OvfOut *o, const VmiOvfWriterParams *p)
{
	g_autofree char *cpu_name = g_strdup_printf ("%" G_GUINT64_FORMAT " virtual CPU(s)", p->cpus);
	g_autofree char *memory_name = g_strdup_printf ("%" G_GUINT64_FORMAT "MB of memory",
							p->memory_mib);

	ovf_start (o, "VirtualHardwareSection");
	ovf_text (o, "Info", "Virtual hardware requirements");
	ovf_start (o, "System");
	ovf_text (o, "vssd:ElementName", "Virtual Hardware Family");
	ovf_text (o, "vssd:InstanceID", "0");
	ovf_text (o, "vssd:VirtualSystemIdentifier", p->name);
	ovf_text (o, "vssd:VirtualSystemType", OVF_HARDWARE);
	ovf_end (o);

	ovf_item_start (o, TRUE);
	ovf_text (o, "rasd:AllocationUnits", "hertz * 10^6");
	ovf_text (o, "rasd:Description", "Number of Virtual CPUs");
	ovf_text (o, "rasd:ElementName", cpu_name);
	ovf_text (o, "rasd:InstanceID", "1");
	ovf_text (o, "rasd:ResourceType", "3");
	ovf_text_u64 (o, "rasd:VirtualQuantity", p->cpus);
	ovf_end (o);

	ovf_item_start (o, TRUE);
	ovf_text (o, "rasd:AllocationUnits", "byte * 2^20");
	ovf_text (o, "rasd:Description", "Memory Size");
	ovf_text (o, "rasd:ElementName", memory_name);
	ovf_text (o, "rasd:InstanceID", "2");
	ovf_text (o, "rasd:ResourceType", "4");
	ovf_text_u64 (o, "rasd:VirtualQuantity", p->memory_mib);
	ovf_end (o);

	/* LSI Logic: what the VMDK's ddb.adapterType says, and a controller both importers have. */
	ovf_item_start (o, TRUE);
	ovf_text (o, "rasd:Address", "0");
	ovf_text (o, "rasd:Description", "SCSI Controller");
	ovf_text (o, "rasd:ElementName", "SCSI Controller 0");
	ovf_text (o, "rasd:InstanceID", "3");
	ovf_text (o, "rasd:ResourceSubType", "lsilogic");
	ovf_text (o, "rasd:ResourceType", "6");
	ovf_end (o);

	ovf_item_start (o, TRUE);
	ovf_text (o, "rasd:AddressOnParent", "0");
	ovf_text (o, "rasd:ElementName", "Hard Disk 1");
	ovf_text (o, "rasd:HostResource", "ovf:/disk/vmdisk1");
	ovf_text (o, "rasd:InstanceID", "4");
	ovf_text (o, "rasd:Parent", "3");
	ovf_text (o, "rasd:ResourceType", "17");
	ovf_end (o);

	ovf_item_start (o, FALSE);
	ovf_text (o, "rasd:AddressOnParent", "7");
	ovf_text (o, "rasd:AutomaticAllocation", "true");
	ovf_text (o, "rasd:Connection", OVF_NETWORK);
	ovf_text (o, "rasd:Description", "E1000 ethernet adapter on \"" OVF_NETWORK "\"");
	ovf_text (o, "rasd:ElementName", "Ethernet 1");
	ovf_text (o, "rasd:InstanceID", "5");
	ovf_text (o, "rasd:ResourceSubType", "E1000");
	ovf_text (o, "rasd:ResourceType", "10");
	ovf_end (o);

	ovf_vmw_config (o, "firmware", p->efi ? "efi" : "bios");
	ovf_end (o);
}

static void
ovf_virtual_system (OvfOut *o, const VmiOvfWriterParams *p)
{
	ovf_start (o, "VirtualSystem");
	ovf_attr (o, "ovf:id", p->name);
	ovf_text (o, "Info", "A virtual machine");
	ovf_text (o, "Name", p->name);
	ovf_start (o, "OperatingSystemSection");
	ovf_attr_u64 (o, "ovf:id", p->os_id);
	ovf_attr (o, "vmw:osType", p->os_type);
	ovf_text (o, "Info", "The kind of installed guest operating system");
	ovf_text (o, "Description", p->os_description);
	ovf_end (o);
	ovf_hardware (o, p);
	ovf_end (o);
}

char *
vmi_ovf_writer_build (const VmiOvfWriterParams *params, gsize *len, GError **error)
{
	xmlBufferPtr buffer = xmlBufferCreate ();
	OvfOut o = { NULL, buffer != NULL };
	char *xml = NULL;

	if (o.ok)
		o.w = xmlNewTextWriterMemory (buffer, 0);
	o.ok = o.w != NULL;
	o.ok = o.ok && xmlTextWriterSetIndent (o.w, 1) >= 0 &&
	       xmlTextWriterSetIndentString (o.w, BAD_CAST "  ") >= 0;
	ovf_envelope_start (&o);
	ovf_references_and_disks (&o, params);
	ovf_virtual_system (&o, params);
	ovf_end (&o);
	o.ok = o.ok && xmlTextWriterEndDocument (o.w) >= 0;
	/* Freeing the writer flushes it into the buffer. */
	if (o.w != NULL)
		xmlFreeTextWriter (o.w);
	if (o.ok) {
		*len = (gsize) xmlBufferLength (buffer);
		xml = g_strndup ((const char *) xmlBufferContent (buffer), *len);
	} else {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "libxml2 could not write the OVF descriptor (out of memory?)");
	}
	if (buffer != NULL)
		xmlBufferFree (buffer);
	return xml;
}
