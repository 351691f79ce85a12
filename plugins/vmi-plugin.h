/*
 * vmimaged plugin ABI.
 *
 * This is the only header a format plugin includes, and the only thing the daemon knows about a
 * format. A plugin is a GModule exporting two symbols:
 *
 *   const guint32 vmi_plugin_abi_version = VMI_PLUGIN_ABI_VERSION;
 *   const VmiFormatPlugin *vmi_plugin_query (void);
 *
 * The loader reads vmi_plugin_abi_version before it calls anything, so a module built against
 * another version of this header is refused without running any of its code. Any change to a
 * structure or to the meaning of a call below bumps VMI_PLUGIN_ABI_VERSION.
 *
 * See docs/plugin-abi.md for the rules a plugin must follow.
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

G_BEGIN_DECLS

#define VMI_PLUGIN_ABI_VERSION 4u

#define VMI_PLUGIN_ABI_VERSION_SYMBOL "vmi_plugin_abi_version"
#define VMI_PLUGIN_QUERY_SYMBOL "vmi_plugin_query"

/*
 * Every error a plugin or the engine reports is in this domain; the D-Bus layer maps each code to
 * org.vmimaged.VMImage1.Error.<Name>. The quark is made from a string, not exported by the daemon,
 * so plugins need no symbol from the executable that loads them.
 */
typedef enum {
	VMI_ERROR_FAILED,	  /* Failed: anything not better described below */
	VMI_ERROR_NOT_AUTHORIZED, /* NotAuthorized: polkit said no */
	VMI_ERROR_ACCESS_DENIED,  /* AccessDenied: the caller may not open that path */
	VMI_ERROR_UNKNOWN_FORMAT, /* UnknownFormat: no plugin recognises the data */
	VMI_ERROR_CORRUPT_IMAGE,  /* CorruptImage: the format is known, its content is invalid */
	VMI_ERROR_UNSAFE_IMAGE,	  /* UnsafeImage: refused on safety grounds */
	VMI_ERROR_NOT_SUPPORTED,  /* NotSupported: valid, but a feature we do not implement */
	VMI_ERROR_INVALID_ARGUMENT, /* InvalidArgument: a bad option, size or name */
	VMI_ERROR_EXISTS,	  /* Exists: the destination is already there */
	VMI_ERROR_CANCELLED,	  /* Cancelled: the job was cancelled */
	VMI_ERROR_NO_SPACE,	  /* NoSpace: the destination file system is full */
	VMI_ERROR_LAST
} VmiError;

static inline GQuark
vmi_error_quark (void)
{
	return g_quark_from_static_string ("vmimaged-error-quark");
}
#define VMI_ERROR (vmi_error_quark ())

/* Opaque per-plugin state for one open (or being created) image. */
typedef struct _VmiImage VmiImage;

typedef enum {
	VMI_FORMAT_CAN_INSPECT = 1u << 0, /* open + get_info */
	VMI_FORMAT_CAN_READ = 1u << 1,	  /* read + block_status */
	VMI_FORMAT_CAN_WRITE = 1u << 2,	  /* create + write + finish */
	/*
	 * Files of this format are also valid raw disks (an AMI is a raw disk with a partition
	 * table), so probe is asked only when the caller asks to classify (Inspect's "classify"
	 * option); otherwise such files stay raw.
	 */
	VMI_FORMAT_CLASSIFY_ONLY = 1u << 3,
} VmiFormatFlags;

typedef enum {
	VMI_EXTENT_DATA, /* allocated; read it */
	VMI_EXTENT_ZERO, /* reads as zeros and is known to be zero (zero cluster, written zeros) */
	VMI_EXTENT_HOLE, /* unallocated: reads as zeros in this image */
} VmiExtentKind;

typedef struct {
	VmiExtentKind kind;
	guint64 length; /* > 0; from the queried offset */
} VmiExtent;

/* Probe scores: a plugin that is sure says 100; raw says 1 for anything, so it only wins alone. */
#define VMI_PROBE_NO 0u
#define VMI_PROBE_FALLBACK 1u
#define VMI_PROBE_WEAK 25u
#define VMI_PROBE_LIKELY 75u
#define VMI_PROBE_CERTAIN 100u

/*
 * How many bytes of the file's start the daemon hands to probe (fewer if the file is shorter):
 * enough for an ISO 9660 volume descriptor at 32 KiB. And of its end to probe_tail, for
 * formats whose signature is a footer (fixed VHD, Apple DMG).
 */
#define VMI_PROBE_HEAD_SIZE (64u * 1024u)
#define VMI_PROBE_TAIL_SIZE 4096u

/*
 * Opens a file that an image names beside itself (a VMDK extent), as the caller who asked for the
 * image: name is as the image writes it. The daemon refuses names with '/' or "..", symbolic links
 * and anything but a regular file, and returns a read-only descriptor the plugin owns (and
 * closes), or -1 with a G_IO_ERROR code made from errno (G_IO_ERROR_NOT_FOUND,
 * G_IO_ERROR_PERMISSION_DENIED, G_IO_ERROR_TOO_MANY_LINKS for a link, G_IO_ERROR_NOT_REGULAR_FILE)
 * or VMI_ERROR_UNSAFE_IMAGE for a name that leaves the folder. It may be called until close.
 */
typedef int (*VmiOpenSiblingFunc) (const char *name, gpointer user_data, GError **error);

typedef struct {
	int fd;		    /* opened read-only by the daemon; the plugin must not close it */
	/*
	 * The image is the byte range [offset, offset + file_size) of fd: a member stored in an
	 * archive (an OVA's disk) is read in place. Every read adds offset, none goes outside the
	 * range, and SEEK_DATA/SEEK_HOLE answers are taken relative to it and clipped to it.
	 */
	guint64 offset;
	guint64 file_size;  /* bytes of the image (st_size when offset is 0) */
	/* NULL when the image has no folder: an fd passed over D-Bus, a member of an archive. */
	VmiOpenSiblingFunc open_sibling;
	gpointer open_sibling_data;
	GCancellable *cancellable; /* nullable; long opens should check it */
} VmiOpenArgs;

/* Where the bytes of a member of a container (an OVA's disk, a UEC tarball's kernel) are. */
typedef enum {
	VMI_MEMBER_STORED,  /* bytes [offset, offset + size) of the container image, as they are */
	VMI_MEMBER_STREAM,  /* only through the plugin's read_member (compressed in the container) */
	VMI_MEMBER_SIBLING, /* a file beside the container, opened with open_sibling (name) */
	VMI_MEMBER_ABSENT,  /* named by the container but not in it */
} VmiMemberLocation;

/*
 * A member that the daemon inspects (and converts) through its own plugin. Allocate with
 * vmi_member_new; the daemon frees the array.
 */
typedef struct {
	char *name;		    /* the member's name in the container: shown, never used as a path */
	const char *role;	    /* static: "disk", "kernel", "ramdisk" or "other" */
	VmiMemberLocation location;
	guint64 offset;		    /* STORED: where the bytes start in the container image */
	guint64 size;		    /* bytes of content (uncompressed); 0 when unknown for STREAM */
	GVariantDict *facts;	    /* what the container says about it (capacity, format URI) */
} VmiMember;

static inline VmiMember *
vmi_member_new (const char *name, const char *role, VmiMemberLocation location)
{
	VmiMember *member = g_new0 (VmiMember, 1);

	member->name = g_strdup (name);
	member->role = role;
	member->location = location;
	member->facts = g_variant_dict_new (NULL);
	return member;
}

static inline void
vmi_member_free (VmiMember *member)
{
	if (member == NULL)
		return;
	g_free (member->name);
	g_variant_dict_unref (member->facts);
	g_free (member);
}

/*
 * What check reports: the findings of a consistency check, like qemu-img check. Corruptions are
 * errors that make data wrong or unsafe to write (overlapping clusters, tables pointing outside
 * the file, bad reference counts); leaks only waste space.
 */
#define VMI_CHECK_MAX_PROBLEMS 100u

typedef struct {
	guint64 corruptions;
	guint64 leaks;
	guint64 total_clusters;	     /* 0 when the format has no clusters */
	guint64 allocated_clusters;
	guint64 fragmented_clusters;
	guint64 compressed_clusters;
	guint64 image_end_offset;    /* bytes of the file in use */
	GPtrArray *problems;	     /* of char *, g_free'd: at most VMI_CHECK_MAX_PROBLEMS sentences */
} VmiCheckResult;

/* A run of the virtual disk, for measure: sorted, not overlapping. */
typedef struct {
	guint64 offset;
	guint64 length;
} VmiRange;

/* What measure answers, like qemu-img measure. */
typedef struct {
	guint64 required;	 /* bytes the output needs for the given data */
	guint64 fully_allocated; /* bytes the output needs with every block allocated */
} VmiMeasurement;

/*
 * What get_info fills in. The daemon allocates it zeroed (with the containers created) and owns
 * everything in it; the plugin only sets fields and appends.
 */
typedef struct {
	guint64 virtual_size;	     /* bytes */
	const char *subformat;	     /* static string or NULL: "v3", "dynamic", "streamOptimized" */
	guint32 cluster_size;	     /* cluster/grain/block size in bytes, 0 if the format has none */
	GVariantDict *format_specific; /* facts, with names from qemu-img info's format-specific */
	GPtrArray *unsafe_reasons;   /* of char *, g_free'd: sentences a person can read */
	GPtrArray *references;	     /* of char *, g_free'd: paths named by the image, never opened */
	/*
	 * The names OpenStack's image service uses for the file (disk_format, container_format),
	 * static strings; NULL means the plugin's name and "bare".
	 */
	const char *disk_format;
	const char *container_format;
	GPtrArray *members; /* of VmiMember *: what a container holds, in its order */
} VmiImageInfo;

/*
 * Options a writer accepts. The daemon validates option names and types against this list before
 * it calls create, so create sees only known names with the declared GVariant type ("t" for any
 * integer, "b", "s").
 */
typedef struct {
	const char *name;
	const char *type;	 /* "t", "b" or "s" */
	const char *description; /* for Formats and for error messages */
} VmiOptionSpec;

typedef struct {
	guint32 abi_version;  /* VMI_PLUGIN_ABI_VERSION */
	const char *name;     /* lower case, unique: "qcow2" */
	const char *description;
	const char *const *extensions; /* NULL-terminated, without dots */
	const char *const *aliases;    /* NULL-terminated or NULL: other names accepted for this format */
	guint32 flags;		       /* VmiFormatFlags */

	/* Optional. Called once after loading; FALSE declines and the module is unloaded. */
	gboolean (*init) (GError **error);

	/*
	 * A score (VMI_PROBE_*) that the file is this format, from its first bytes and its size.
	 * Must not allocate or do I/O: the daemon calls every plugin's probe for every file.
	 */
	guint (*probe) (const guint8 *head, gsize head_len, guint64 file_size);

	/*
	 * Optional. A score from the last bytes of the file (tail_len = MIN (file size,
	 * VMI_PROBE_TAIL_SIZE)); the plugin's score is the higher of the two. Same rules as probe.
	 */
	guint (*probe_tail) (const guint8 *tail, gsize tail_len, guint64 file_size);

	/*
	 * Reading. open validates the headers (hostile input: checked arithmetic, bounded
	 * allocations) and returns NULL with VMI_ERROR_CORRUPT_IMAGE, VMI_ERROR_NOT_SUPPORTED, ...
	 * Calls on one VmiImage are never concurrent.
	 */
	VmiImage *(*open) (const VmiOpenArgs *args, GError **error);
	gboolean (*get_info) (VmiImage *image, VmiImageInfo *info, GError **error);
	/* Reads len bytes of the virtual disk at offset; offset + len <= virtual_size. */
	gboolean (*read) (VmiImage *image, guint64 offset, void *buf, gsize len, GError **error);
	/* Describes the run of one kind that starts at offset, at most max_length long. */
	gboolean (*block_status) (VmiImage *image, guint64 offset, guint64 max_length, VmiExtent *extent,
				  GError **error);
	void (*close) (VmiImage *image); /* also frees an image from create that was never finished */

	/*
	 * Optional, for VMI_MEMBER_STREAM members: reads up to len bytes of member index (in
	 * info->members) at offset, setting *got (0 only at its end). Reading forward is cheap;
	 * going back may restart the decompression.
	 */
	gboolean (*read_member) (VmiImage *image, guint index, guint64 offset, void *buf, gsize len,
				 gsize *got, GError **error);

	/*
	 * Optional: a consistency check of the open image (qemu-img check). Findings go in result;
	 * FALSE only when the check could not run (an I/O error, cancelled).
	 */
	gboolean (*check) (VmiImage *image, VmiCheckResult *result, GCancellable *cancellable,
			   GError **error);

	/*
	 * Writing (VMI_FORMAT_CAN_WRITE). create gets an empty file opened read-write; every byte of
	 * the new image reads as zero until written, so the caller only writes data. write is called
	 * with increasing, non-overlapping ranges whose offset and length are multiples of 512 (the
	 * last may end at an unaligned virtual size); a range may cover part of a cluster, so a
	 * writer that compresses whole clusters buffers the one it is filling. finish writes the
	 * metadata and makes the file complete; then close is called. A plugin whose format cannot
	 * hold the exact virtual_size rounds it up, as qemu-img does.
	 */
	const VmiOptionSpec *create_options; /* terminated by a {NULL} entry; NULL if none */
	VmiImage *(*create) (int fd, guint64 virtual_size, GVariant *options /* a{sv} */, GError **error);
	gboolean (*write) (VmiImage *image, guint64 offset, const void *buf, gsize len, GError **error);
	gboolean (*finish) (VmiImage *image, GError **error);

	/*
	 * Optional, for writers: the size of an output holding the data ranges (qemu-img measure),
	 * with the same options as create. data lists the runs of the source that hold data.
	 */
	gboolean (*measure) (guint64 virtual_size, const VmiRange *data, gsize n_data,
			     GVariant *options /* a{sv} */, VmiMeasurement *out, GError **error);
} VmiFormatPlugin;

typedef const VmiFormatPlugin *(*VmiPluginQueryFunc) (void);

/*
 * Plugins declare their entry points with this so the names and types cannot drift. The symbols
 * are weak so that a test program can link the code of several plugins at once; in a module
 * each is the only definition, and the loader finds it as usual.
 */
#define VMI_PLUGIN_DEFINE(plugin_struct)                                                           \
	G_MODULE_EXPORT __attribute__ ((weak)) const guint32 vmi_plugin_abi_version =              \
		VMI_PLUGIN_ABI_VERSION;                                                            \
	G_MODULE_EXPORT const VmiFormatPlugin *vmi_plugin_query (void);                            \
	__attribute__ ((weak)) const VmiFormatPlugin *vmi_plugin_query (void)                      \
	{                                                                                          \
		return &(plugin_struct);                                                           \
	}

G_END_DECLS
