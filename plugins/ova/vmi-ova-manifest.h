/*
 * The manifest (.mf) of an OVA: one digest per member, "SHA256(name)= hex" as ovftool writes
 * it or "SHA256 (name) = hex" as `sha256sum --tag` does; SHA1, SHA256 and SHA512. Each listed
 * member is hashed in place, within a budget.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

#define VMI_OVA_MAX_MANIFEST_SIZE (1u << 20)
/* Hashing costs a few seconds per GiB; members beyond this much in total stay unchecked. */
#define VMI_OVA_MAX_HASH_BYTES (G_GUINT64_CONSTANT (16) << 30)

/* Where a member's data is: TRUE with its offset and size, FALSE if the archive lacks it. */
typedef gboolean (*VmiOvaMemberLookup) (const char *name, guint64 *offset, guint64 *size,
					gpointer user_data);

typedef struct {
	char *name;		  /* of the .mf member */
	GPtrArray *algorithms;	  /* of char *: "SHA1", "SHA256", "SHA512" as used */
	guint entries;
	guint bad_lines;	  /* lines that are neither blank nor a digest */
	GPtrArray *mismatches;	  /* of char *: members whose digest differs */
	GPtrArray *missing;	  /* of char *: listed, but not in the archive */
	GPtrArray *unlisted;	  /* of char *: in the archive, not listed */
	GPtrArray *unchecked;	  /* of char *: beyond the hashing budget */
	gboolean verified;	  /* every member listed, present and matching */
} VmiOvaManifest;

/*
 * Parses text (len bytes, NUL-terminated) and checks each entry against the member of that name
 * in fd. covered are the members the manifest should list. VMI_ERROR_CANCELLED when cancelled.
 */
VmiOvaManifest *vmi_ova_manifest_check (const char *name, const char *text, gsize len, int fd,
					VmiOvaMemberLookup lookup, gpointer user_data,
					const char *const *covered, guint n_covered,
					GCancellable *cancellable, GError **error);
void vmi_ova_manifest_free (VmiOvaManifest *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiOvaManifest, vmi_ova_manifest_free)

/* manifest, manifest-algorithms, manifest-verified, manifest-mismatches, -missing, -unlisted,
 * -unchecked and manifest-bad-lines into dict. */
void vmi_ova_manifest_describe (const VmiOvaManifest *self, GVariantDict *dict);

G_END_DECLS
