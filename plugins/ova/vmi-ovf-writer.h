/*
 * The OVF 1.0 descriptor of a one-disk virtual machine, in the dialect VMware's ovftool writes
 * and VirtualBox and vSphere import: a streamOptimized VMDK on an LSI Logic SCSI controller, one
 * E1000 NIC on "VM Network", the firmware as a vmw:Config.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

typedef struct {
	const char *name;	    /* the VirtualSystem's id and Name */
	guint64 cpus;
	guint64 memory_mib;
	const char *os_type;	    /* VMware guest id (vmw:osType) */
	guint32 os_id;		    /* CIM_OperatingSystem OsType (ovf:id) */
	const char *os_description;
	gboolean efi;
	const char *disk_href;	    /* the VMDK's member name */
	guint64 disk_capacity;	    /* bytes */
	guint64 disk_file_size;	    /* bytes of the VMDK (ovf:size) */
	guint64 disk_populated;	    /* bytes of the disk that hold data (ovf:populatedSize) */
} VmiOvfWriterParams;

/* The descriptor as UTF-8 XML, of *len bytes; VMI_ERROR_FAILED if libxml2 fails. */
char *vmi_ovf_writer_build (const VmiOvfWriterParams *params, gsize *len, GError **error);

G_END_DECLS
