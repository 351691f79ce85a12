/* What the members code (vmi-members.c) needs of a source beyond its public interface. */
#pragma once

#include "vmi-source.h"

G_BEGIN_DECLS

/*
 * vmi_source_open_range for a member: detected, depth levels below the image asked for; dir_fd
 * (or -1) is the folder of a member beside its container, for its own siblings.
 */
VmiSource *vmi_source_open_member_range (VmiRegistry *registry, int fd, int dir_fd,
					 guint64 offset, guint64 size, guint depth,
					 gboolean classify, GCancellable *cancellable,
					 GError **error);

/* The registry it was detected with (NULL when opened with a known plugin). */
VmiRegistry *vmi_source_get_registry (VmiSource *self);
/* 0 for an image asked for, 1 for its member, 2 for a member's member. */
guint vmi_source_get_depth (VmiSource *self);
/* The image's folder, or -1 (also when it is only opened through the caller: see below). */
int vmi_source_get_dir_fd (VmiSource *self);
/*
 * A member that is the file fd beside container (VMI_MEMBER_SIBLING), detected, depth levels
 * down: in the container's folder, its own siblings opened as the container's are (as the
 * caller), which vmi_source_open_member_range with vmi_source_get_dir_fd cannot do.
 */
VmiSource *vmi_source_open_member_beside (VmiRegistry *registry, VmiSource *container, int fd,
					  guint depth, gboolean classify,
					  GCancellable *cancellable, GError **error);
/*
 * A file beside the image, as its plugin's open_sibling would open it: a new descriptor, or -1
 * (VMI_ERROR_NOT_SUPPORTED when the folder is not known).
 */
int vmi_source_open_sibling_fd (VmiSource *self, const char *name, GError **error);

G_END_DECLS
