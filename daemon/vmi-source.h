/* An image opened for reading through its plugin: detection, info and the Inspect result. */
#pragma once

#include "vmi-registry.h"

G_BEGIN_DECLS

typedef struct _VmiSource VmiSource;

/*
 * Detects (or, with format non-NULL, forces) the format of fd and opens it. The source keeps its
 * own duplicates of fd and dir_fd (the image's directory, or -1), so the caller keeps its own.
 */
VmiSource *vmi_source_open (VmiRegistry *registry, int fd, int dir_fd, const char *format,
			    GCancellable *cancellable, GError **error);

/* Options of Inspect (and of a conversion's source): "format" (s) and "classify" (b). */
extern const VmiOptionSpec vmi_source_options[];

/* vmi_source_open that, when classify is TRUE, also considers VMI_FORMAT_CLASSIFY_ONLY formats. */
VmiSource *vmi_source_open_full (VmiRegistry *registry, int fd, int dir_fd, const char *format,
				 gboolean classify, GCancellable *cancellable, GError **error);

/*
 * Opens name, a plain name already checked, in the image's folder dir_fd: read-only, not a link,
 * a regular file; -1 with a G_IO_ERROR as VmiOpenSiblingFunc says. The daemon does it as the
 * caller who named the image (vmi_caller_open_sibling_at), not with its own rights.
 */
typedef int (*VmiSourceSiblingFunc) (int dir_fd, const char *name, gpointer data, GError **error);

typedef struct {
	VmiSourceSiblingFunc func;
	gpointer data;
	GBoxedCopyFunc copy; /* each source keeps a copy of data, freed with free */
	GDestroyNotify free;
} VmiSiblingOpener;

/*
 * vmi_source_open_full whose siblings (in dir_fd) are opened by opener rather than by the
 * daemon itself; NULL is the daemon itself (tests, and files it may read anyway).
 */
VmiSource *vmi_source_open_as (VmiRegistry *registry, int fd, int dir_fd,
			       const VmiSiblingOpener *opener, const char *format, gboolean classify,
			       GCancellable *cancellable, GError **error);
/*
 * An image that is the byte range [offset, offset + size) of fd (a disk stored in an archive),
 * detected from the range's own head and tail (or forced with format). It has no folder.
 */
VmiSource *vmi_source_open_range (VmiRegistry *registry, int fd, guint64 offset, guint64 size,
				  const char *format, gboolean classify, GCancellable *cancellable,
				  GError **error);
/* For tests and fuzzers: open with a known plugin, no detection. */
VmiSource *vmi_source_open_with (const VmiFormatPlugin *plugin, int fd, int dir_fd,
				 GCancellable *cancellable, GError **error);
void vmi_source_free (VmiSource *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiSource, vmi_source_free)

const VmiFormatPlugin *vmi_source_get_plugin (VmiSource *self);
VmiImage *vmi_source_get_image (VmiSource *self);
guint64 vmi_source_get_virtual_size (VmiSource *self);
/*
 * The plugin's block status at offset, at most max_length long, checked: a plugin that
 * describes an empty or overlong run is an error, since the caller would loop or overrun.
 */
gboolean vmi_source_block_status (VmiSource *self, guint64 offset, guint64 max_length,
				  VmiExtent *extent, GError **error);
const VmiImageInfo *vmi_source_get_info (VmiSource *self);
gboolean vmi_source_is_safe (VmiSource *self);
/*
 * The image's file (the source's own descriptor: do not close it) and its size in bytes; the
 * image starts at vmi_source_get_offset of that file (0 but for a range).
 */
int vmi_source_get_fd (VmiSource *self);
guint64 vmi_source_get_file_size (VmiSource *self);
guint64 vmi_source_get_offset (VmiSource *self);

/*
 * The Inspect result, a{sv}: format, virtual-size, actual-size, file-size, cluster-size (if any),
 * subformat (if any), format-specific, safe, unsafe-reasons, references, disk-format,
 * container-format and, for a container, members (see vmi-members.h).
 */
GVariant *vmi_source_to_variant (VmiSource *self);
/*
 * The members of a container with each one's own inspection (aa{sv}, vmi_members_to_variant),
 * made once: call it with a cancellable before vmi_source_to_variant to make that cancellable.
 * Owned by the source.
 */
GVariant *vmi_source_get_members (VmiSource *self, GCancellable *cancellable);

G_END_DECLS
