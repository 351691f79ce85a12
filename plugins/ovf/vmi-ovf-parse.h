/*
 * The OVF descriptor parser that the ovf plugin (a descriptor on its own) and the ova plugin (a
 * descriptor inside a tar) share. It reads the envelope with libxml2 from memory, without the
 * network, and refuses any document type declaration, so neither external entities nor entity
 * expansion can happen.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

/* Real descriptors are tens of KiB; this bounds the file and, with the element cap, the tree. */
#define VMI_OVF_MAX_DESCRIPTOR_SIZE (16u * 1024u * 1024u)
#define VMI_OVF_MAX_ELEMENTS 200000u

/* A <File> of <References>. */
typedef struct {
	char *id;
	char *href;
	gint64 size;	     /* -1: not given */
	char *compression;   /* "gzip" or NULL */
	gint64 chunk_size;   /* -1: not chunked */
} VmiOvfFile;

/* A <Disk> of the DiskSection. */
typedef struct {
	char *id;
	char *file_ref;		 /* NULL: an empty disk that the importer creates */
	const VmiOvfFile *file;	 /* the File that file_ref names, or NULL */
	char *format;		 /* format URI, or NULL */
	const char *format_name; /* static: "vmdk-streamOptimized", "vmdk-sparse", "unknown" */
	char *capacity;		 /* as written */
	char *capacity_units;	 /* as written, or NULL (bytes) */
	gboolean capacity_known; /* FALSE for a ${property} reference */
	guint64 capacity_bytes;
	gint64 populated_size; /* -1: not given */
} VmiOvfDisk;

/* A <VirtualSystem> (or an OVF 0.9 <Content xsi:type="ovf:VirtualSystem_Type">). */
typedef struct {
	char *id;
	char *name;
	gint64 os_id; /* -1: no OperatingSystemSection */
	char *os_type;
	char *os_description;
	char *system_type; /* vssd:VirtualSystemType */
	gint64 cpus;	   /* -1: not given */
	gint64 memory;	   /* bytes, -1: not given */
	const char *firmware; /* "bios", "efi" or NULL */
	GPtrArray *networks;  /* of char *: the networks its NICs connect to */
} VmiOvfSystem;

typedef struct {
	const char *version; /* "0.9", "1.x" or "2.x", by the envelope's namespace */
	char *vmware_build_id;
	gboolean collection; /* a VirtualSystemCollection (vApp) */
	GPtrArray *files;    /* of VmiOvfFile * */
	GPtrArray *disks;    /* of VmiOvfDisk * */
	GPtrArray *systems;  /* of VmiOvfSystem * */
	GPtrArray *networks; /* of char *: the NetworkSection */
	guint64 virtual_size; /* the sum of the disks' capacities */
	GPtrArray *unsafe_reasons; /* of char * */
} VmiOvf;

/*
 * libxml2 2.9 sets up its global state on first use, which two threads must not do at once:
 * each plugin's init calls this while the daemon loads modules, before any job runs.
 */
gboolean vmi_ovf_init (GError **error);

/*
 * Parses a descriptor of len bytes. Errors: VMI_ERROR_UNSAFE_IMAGE for a DTD or entity
 * declaration, VMI_ERROR_CORRUPT_IMAGE for XML that is not well-formed or an OVF that breaks its
 * own references, VMI_ERROR_UNKNOWN_FORMAT for XML that is not an OVF envelope,
 * VMI_ERROR_NOT_SUPPORTED beyond the size caps.
 */
VmiOvf *vmi_ovf_parse (const char *data, gsize len, GError **error);
void vmi_ovf_free (VmiOvf *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiOvf, vmi_ovf_free)

/* Reads size bytes at offset of fd (a descriptor, or the member of a tar) within the cap. */
char *vmi_ovf_read (int fd, guint64 offset, guint64 size, const char *what, GError **error);

/* The reason an href is unsafe ('/', "..", a URL, ...) as a sentence, or NULL when it is fine. */
char *vmi_ovf_href_unsafe_reason (const char *href);

/*
 * Where the file of an href is stored, for an OVA: TRUE with its offset and size when it is a
 * member of the archive.
 */
typedef gboolean (*VmiOvfMemberLookup) (const char *href, guint64 *offset, guint64 *size,
					gpointer user_data);

/*
 * The facts of the descriptor into dict: ovf-version, virtual-system-collection,
 * virtual-systems, disks, references, networks, vmware-build-id. With lookup, each disk also
 * gets member-offset and member-size.
 */
void vmi_ovf_describe (const VmiOvf *self, GVariantDict *dict, VmiOvfMemberLookup lookup,
		       gpointer user_data);

/*
 * The files of a package as members of the container (VmiImageInfo.members): the file of each
 * disk in DiskSection order (role "disk"), then the files no disk uses (role "other": an ISO for
 * a CD drive). A file two disks name is listed once.
 */
typedef struct {
	const VmiOvfFile *file;
	const VmiOvfDisk *disk; /* NULL for role "other" */
} VmiOvfEntry;

/* Of VmiOvfEntry *, freed with the array; at most VMI_OVF_MAX_MEMBERS. */
#define VMI_OVF_MAX_MEMBERS 256u
GPtrArray *vmi_ovf_entries (const VmiOvf *self);

/* TRUE when the file is stored with ovf:compression="gzip". */
gboolean vmi_ovf_entry_is_gzip (const VmiOvfEntry *entry);

/*
 * A new member for entry: named by its href (shown, never a path), with the facts href, file-id,
 * file-size, compression, chunk-size and, for a disk, disk-id, format, format-name, capacity,
 * capacity-units, capacity-bytes and populated-size.
 */
VmiMember *vmi_ovf_member_new (const VmiOvfEntry *entry, VmiMemberLocation location);

/* The Glance disk_format of the first disk by its format URI ("vmdk", "qcow2", ...) or NULL. */
const char *vmi_ovf_disk_format (const VmiOvf *self);

G_END_DECLS
