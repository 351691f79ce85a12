/*
 * The members of a container (an OVA's disks, a UEC tarball's kernel), each opened through its
 * own plugin as an image of its own: in place when the container stores it as it is, beside the
 * container when it is a sibling file, or copied out of the container's read_member into an
 * anonymous temporary file when it is compressed. Member names are shown, never used as paths.
 */
#pragma once

#include "vmi-source.h"

G_BEGIN_DECLS

/* An image asked for is depth 0; its members 1, theirs 2, and no deeper members are opened. */
#define VMI_MEMBERS_MAX_DEPTH 2u
/* Members of one container that Inspect opens; the others are listed without an inspection. */
#define VMI_MEMBERS_MAX_INSPECTED 16u
/* Members of one container that Inspect lists at all. */
#define VMI_MEMBERS_MAX_LISTED 256u
/* Inspect copies at most this much of a compressed member: enough for any format's headers. */
#define VMI_MEMBERS_INSPECT_HEAD (G_GUINT64_CONSTANT (64) << 20)
/* A conversion copies a compressed member whole, up to this. */
#define VMI_MEMBERS_MAX_STREAM (G_GUINT64_CONSTANT (64) << 40)

/* How much of a compressed member was copied out to be opened. */
typedef struct {
	guint64 copied;	   /* bytes read through read_member */
	gboolean complete; /* the member's end was reached */
} VmiMemberCopy;

/*
 * Opens member index of container through its own plugin (detected; classify-only formats are
 * considered for members whose role is not "disk"). head_only: a compressed member is copied
 * only up to VMI_MEMBERS_INSPECT_HEAD (the file still has the member's size when the container
 * knows it), for Inspect. copy (nullable) says how much was copied. Errors: VMI_ERROR_CORRUPT_IMAGE
 * for an absent member or one that lies outside the container, VMI_ERROR_NOT_SUPPORTED when a
 * sibling's folder is not known, VMI_ERROR_UNSAFE_IMAGE nested deeper than VMI_MEMBERS_MAX_DEPTH,
 * and whatever the member's plugin says.
 */
VmiSource *vmi_members_open (VmiSource *container, guint index, gboolean head_only,
			     VmiMemberCopy *copy, GCancellable *cancellable, GError **error);

/*
 * Convert's options "disk" (t: the index among the members of role "disk") and "member" (s: a
 * member's name, or a role: "kernel"), in a normalized a{sv}: *index is the member to read, or
 * -1 for the image itself. Without either option a container that cannot be read itself gives
 * its first disk. VMI_ERROR_INVALID_ARGUMENT for a choice that does not exist (or options on an
 * image without members), VMI_ERROR_CORRUPT_IMAGE for a member the container lacks.
 */
gboolean vmi_members_select (VmiSource *source, GVariant *options, gint *index, GError **error);

/*
 * What a conversion reads: *member is the member vmi_members_select chooses, opened whole
 * (a compressed one copied out into a temporary file), or NULL for source itself.
 */
gboolean vmi_members_open_chosen (VmiSource *source, GVariant *options, VmiSource **member,
				  GCancellable *cancellable, GError **error);

/*
 * The members of source as Inspect shows them, aa{sv} (floating): name, role, location
 * ("stored", "stream", "sibling", "absent"), size, offset (stored), facts, and either
 * inspection (the member's own Inspect result) or error and error-name (why it could not be
 * opened); for a compressed member also copied-bytes and copy-complete.
 */
GVariant *vmi_members_to_variant (VmiSource *source, GCancellable *cancellable);

/* The disk-format of the first member of role "disk" that has an inspection, or NULL. */
const char *vmi_members_first_disk_format (GVariant *members);

G_END_DECLS
