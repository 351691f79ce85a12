/* The text descriptor of a VMDK: a file of its own, or embedded in a sparse extent. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	VMDK_EXTENT_FLAT,   /* FLAT, VMFS: raw sectors at an offset of a file */
	VMDK_EXTENT_SPARSE, /* SPARSE, VMFSSPARSE: a hosted sparse (KDMV) or COWD file */
	VMDK_EXTENT_ZERO,   /* ZERO: reads as zeros, no file */
	VMDK_EXTENT_OTHER,  /* VMFSRDM, VMFSRAW, SESPARSE, ...: named but not supported */
} VmdkExtentKind;

typedef struct {
	char *access;	 /* RW, RDONLY, NOACCESS */
	guint64 sectors; /* size in 512-byte sectors */
	char *type;	 /* as written: FLAT, SPARSE, VMFS, ... */
	VmdkExtentKind kind;
	char *filename;	   /* as written between the quotes; NULL for ZERO */
	guint64 offset;	   /* FLAT: start in the file, in sectors */
	guint line;	   /* 1-based, for messages */
} VmdkDescExtent;

typedef struct {
	char *create_type; /* NULL if absent */
	gboolean has_cid, has_parent_cid;
	guint32 cid, parent_cid;
	char *parent_hint; /* parentFileNameHint, NULL if absent */
	char *adapter_type;
	char *hw_version;
	gboolean has_geometry;
	guint64 cylinders, heads, sectors;
	GPtrArray *extents; /* of VmdkDescExtent */
} VmdkDescriptor;

/*
 * Parses len bytes of text (a NUL ends it early, as in the zero-padded embedded descriptor).
 * Extent lines are checked only when want_extents; then a descriptor without any is an error.
 * Errors are VMI_ERROR_CORRUPT_IMAGE naming the line.
 */
VmdkDescriptor *vmdk_descriptor_parse (const char *text, gsize len, gboolean want_extents,
				       GError **error);
void vmdk_descriptor_free (VmdkDescriptor *desc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmdkDescriptor, vmdk_descriptor_free)

/* First bytes of a file look like a text descriptor (comments and blank lines, then version=N). */
gboolean vmdk_descriptor_probe (const guint8 *head, gsize len);

G_END_DECLS
