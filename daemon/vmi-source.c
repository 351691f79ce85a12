#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-members.h"
#include "vmi-source-private.h"

const VmiOptionSpec vmi_source_options[] = {
	{ "format", "s", "read the image as this format instead of detecting it" },
	{ "classify", "b", "also consider formats whose files are valid raw disks (ami, ...)" },
	{ NULL },
};

struct _VmiSource {
	const VmiFormatPlugin *plugin;
	VmiImage *image;
	int fd;
	int dir_fd;
	VmiSiblingOpener opener; /* func NULL: openat (dir_fd) by the daemon */
	guint64 offset;	   /* the image is [offset, offset + file_size) of fd */
	guint64 file_size;
	guint64 allocated_size;
	VmiImageInfo info;
	GVariant *format_specific; /* a{sv} snapshot of info.format_specific */
	VmiRegistry *registry;	   /* for the members' detection; NULL from open_with */
	guint depth;		   /* 0, or how deep a member this is */
	GVariant *members;	   /* aa{sv}, made on first use */
};

static void
vmi_source_close_fd (int *fd)
{
	if (*fd >= 0)
		close (*fd);
	*fd = -1;
}

void
vmi_source_free (VmiSource *self)
{
	if (self == NULL)
		return;
	if (self->image != NULL)
		self->plugin->close (self->image);
	g_clear_pointer (&self->info.format_specific, g_variant_dict_unref);
	g_clear_pointer (&self->format_specific, g_variant_unref);
	g_clear_pointer (&self->info.unsafe_reasons, g_ptr_array_unref);
	g_clear_pointer (&self->info.references, g_ptr_array_unref);
	g_clear_pointer (&self->info.members, g_ptr_array_unref);
	g_clear_pointer (&self->members, g_variant_unref);
	g_clear_object (&self->registry);
	vmi_source_close_fd (&self->fd);
	vmi_source_close_fd (&self->dir_fd);
	if (self->opener.free != NULL)
		self->opener.free (self->opener.data);
	g_free (self);
}

static gboolean
vmi_source_dup_fd (int fd, int *out, GError **error)
{
	*out = fcntl (fd, F_DUPFD_CLOEXEC, 3);
	if (*out < 0) {
		int errsv = errno;
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "cannot duplicate a descriptor: %s",
			     g_strerror (errsv));
		return FALSE;
	}
	return TRUE;
}

/*
 * Only regular files and block devices have a stable size and can be read at an offset; a FIFO
 * or socket would block or consume the caller's data.
 */
/* An image that is a range of its file: [self->offset, + size) must lie inside the file. */
static gboolean
vmi_source_clip (VmiSource *self, guint64 size, GError **error)
{
	guint64 end;

	if (self->offset == 0 && size == G_MAXUINT64)
		return TRUE;
	if (size == G_MAXUINT64)
		size = self->file_size - MIN (self->offset, self->file_size);
	if (!g_uint64_checked_add (&end, self->offset, size) || end > self->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the image of %" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
			     " lies beyond the end of its %" G_GUINT64_FORMAT "-byte file",
			     size, self->offset, self->file_size);
		return FALSE;
	}
	self->file_size = size;
	/* the blocks of the whole file, at most the range's bytes: not exact, never more */
	self->allocated_size = MIN (self->allocated_size, size);
	return TRUE;
}

static gboolean
vmi_source_stat (VmiSource *self, guint64 size, GError **error)
{
	struct stat st;

	if (fstat (self->fd, &st) != 0) {
		int errsv = errno;
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "cannot stat the image: %s",
			     g_strerror (errsv));
		return FALSE;
	}
	if (S_ISDIR (st.st_mode)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "this is a directory, not an image file");
		return FALSE;
	}
	if (S_ISREG (st.st_mode)) {
		self->file_size = (guint64) st.st_size;
		self->allocated_size = (guint64) st.st_blocks * 512;
		return vmi_source_clip (self, size, error);
	}
	if (S_ISBLK (st.st_mode)) {
		off_t end = lseek (self->fd, 0, SEEK_END);

		if (end < 0) {
			int errsv = errno;
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "cannot find the size of the block device: %s",
				     g_strerror (errsv));
			return FALSE;
		}
		self->file_size = (guint64) end;
		self->allocated_size = (guint64) end;
		return vmi_source_clip (self, size, error);
	}
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     S_ISFIFO (st.st_mode)   ? "this is a FIFO, not an image file"
			     : S_ISSOCK (st.st_mode) ? "this is a socket, not an image file"
						     : "this is a device that is not a block device, "
						       "not an image file");
	return FALSE;
}

/*
 * The plugin's open_sibling: a plain name in the image's folder, not a link, a regular file. The
 * folder is only known for callers the daemon may open files for directly (see vmi-manager).
 */
static int
vmi_source_open_sibling (const char *name, gpointer user_data, GError **error)
{
	VmiSource *self = user_data;
	struct stat st;
	int fd;

	if (name[0] == '\0' || strchr (name, '/') != NULL || strcmp (name, ".") == 0 ||
	    strcmp (name, "..") == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
			     "'%s' is not a plain name in the image's folder", name);
		return -1;
	}
	if (self->opener.func != NULL)
		return self->opener.func (self->dir_fd, name, self->opener.data, error);
	fd = openat (self->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		int errsv = errno;
		g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "cannot open '%s': %s",
			     name, g_strerror (errsv));
		return -1;
	}
	if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
		close (fd);
		g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE,
			     "'%s' is not a regular file", name);
		return -1;
	}
	return fd;
}

/* size G_MAXUINT64: to the end of the file. */
static VmiSource *
vmi_source_new_range (int fd, int dir_fd, guint64 offset, guint64 size, GError **error)
{
	g_autoptr(VmiSource) self = g_new0 (VmiSource, 1);

	self->fd = -1;
	self->dir_fd = -1;
	self->offset = offset;
	if (!vmi_source_dup_fd (fd, &self->fd, error))
		return NULL;
	if (dir_fd >= 0 && !vmi_source_dup_fd (dir_fd, &self->dir_fd, error))
		return NULL;
	if (!vmi_source_stat (self, size, error))
		return NULL;
	return g_steal_pointer (&self);
}

static VmiSource *
vmi_source_new (int fd, int dir_fd, GError **error)
{
	return vmi_source_new_range (fd, dir_fd, 0, G_MAXUINT64, error);
}

static gboolean
vmi_source_open_plugin (VmiSource *self, const VmiFormatPlugin *plugin,
			GCancellable *cancellable, GError **error)
{
	VmiOpenArgs args = {
		.fd = self->fd,
		.offset = self->offset,
		.file_size = self->file_size,
		.open_sibling = self->dir_fd >= 0 ? vmi_source_open_sibling : NULL,
		.open_sibling_data = self,
		.cancellable = cancellable,
	};

	if ((plugin->flags & VMI_FORMAT_CAN_INSPECT) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the %s plugin cannot read images, only write them", plugin->name);
		return FALSE;
	}
	self->plugin = plugin;
	self->image = plugin->open (&args, error);
	if (self->image == NULL)
		return FALSE;
	self->info.format_specific = g_variant_dict_new (NULL);
	self->info.unsafe_reasons = g_ptr_array_new_with_free_func (g_free);
	self->info.references = g_ptr_array_new_with_free_func (g_free);
	self->info.members = g_ptr_array_new_with_free_func ((GDestroyNotify) vmi_member_free);
	if (!plugin->get_info (self->image, &self->info, error))
		return FALSE;
	/* Ending a dict empties it, so refill it from the snapshot for vmi_source_get_info. */
	self->format_specific = g_variant_ref_sink (g_variant_dict_end (self->info.format_specific));
	g_variant_dict_unref (self->info.format_specific);
	self->info.format_specific = g_variant_dict_new (self->format_specific);
	return TRUE;
}

VmiSource *
vmi_source_open_with (const VmiFormatPlugin *plugin, int fd, int dir_fd,
		      GCancellable *cancellable, GError **error)
{
	g_autoptr(VmiSource) self = vmi_source_new (fd, dir_fd, error);

	if (self == NULL)
		return NULL;
	if (!vmi_source_open_plugin (self, plugin, cancellable, error))
		return NULL;
	return g_steal_pointer (&self);
}

static const VmiFormatPlugin *
vmi_source_classify (VmiSource *self, VmiRegistry *registry, gboolean classify, GPtrArray *others,
		     GError **error)
{
	return vmi_registry_classify_range (registry, self->fd, self->offset, self->file_size,
					    classify, others, error);
}

/* Detects (or looks up) the format of the new source self and opens it. */
static gboolean
vmi_source_detect (VmiSource *self, VmiRegistry *registry, const char *format, gboolean classify,
		   GCancellable *cancellable, GError **error)
{
	g_autoptr(GPtrArray) others = g_ptr_array_new ();
	g_autoptr(GError) local_error = NULL;
	const VmiFormatPlugin *plugin;

	self->registry = g_object_ref (registry);
	if (format != NULL)
		plugin = vmi_registry_lookup (registry, format, error);
	else
		plugin = vmi_source_classify (self, registry, classify, others, error);
	if (plugin == NULL)
		return FALSE;
	if (!vmi_source_open_plugin (self, plugin, cancellable, &local_error)) {
		/* A classify-only format that looked at the content and said no (a .gz that is no
		 * ramdisk) leaves the file to ordinary detection, as if classify were off. */
		if (format != NULL || (plugin->flags & VMI_FORMAT_CLASSIFY_ONLY) == 0 ||
		    !g_error_matches (local_error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT)) {
			g_propagate_error (error, g_steal_pointer (&local_error));
			return FALSE;
		}
		g_ptr_array_set_size (others, 0);
		plugin = vmi_source_classify (self, registry, FALSE, others, error);
		if (plugin == NULL || !vmi_source_open_plugin (self, plugin, cancellable, error))
			return FALSE;
	}
	for (guint i = 0; i < others->len; i++) {
		const VmiFormatPlugin *other = g_ptr_array_index (others, i);

		g_ptr_array_add (self->info.unsafe_reasons,
				 g_strdup_printf ("the file is also a valid %s image: a polyglot, "
						  "which other tools may read as %s instead of %s",
						  other->name, other->name, plugin->name));
	}
	return TRUE;
}

static void
vmi_source_set_opener (VmiSource *self, const VmiSiblingOpener *opener)
{
	if (opener == NULL || opener->func == NULL)
		return;
	self->opener = *opener;
	if (opener->copy != NULL)
		self->opener.data = opener->copy (opener->data);
}

VmiSource *
vmi_source_open_as (VmiRegistry *registry, int fd, int dir_fd, const VmiSiblingOpener *opener,
		    const char *format, gboolean classify, GCancellable *cancellable,
		    GError **error)
{
	g_autoptr(VmiSource) self = vmi_source_new (fd, dir_fd, error);

	if (self == NULL)
		return NULL;
	vmi_source_set_opener (self, opener);
	if (!vmi_source_detect (self, registry, format, classify, cancellable, error))
		return NULL;
	return g_steal_pointer (&self);
}

VmiSource *
vmi_source_open_full (VmiRegistry *registry, int fd, int dir_fd, const char *format,
		      gboolean classify, GCancellable *cancellable, GError **error)
{
	return vmi_source_open_as (registry, fd, dir_fd, NULL, format, classify, cancellable,
				   error);
}

VmiSource *
vmi_source_open_range (VmiRegistry *registry, int fd, guint64 offset, guint64 size,
		       const char *format, gboolean classify, GCancellable *cancellable,
		       GError **error)
{
	g_autoptr(VmiSource) self = vmi_source_new_range (fd, -1, offset, size, error);

	if (self == NULL || !vmi_source_detect (self, registry, format, classify, cancellable, error))
		return NULL;
	return g_steal_pointer (&self);
}

VmiSource *
vmi_source_open_member_range (VmiRegistry *registry, int fd, int dir_fd, guint64 offset,
			      guint64 size, guint depth, gboolean classify,
			      GCancellable *cancellable, GError **error)
{
	g_autoptr(VmiSource) self = vmi_source_new_range (fd, dir_fd, offset, size, error);

	if (self == NULL)
		return NULL;
	self->depth = depth;
	if (!vmi_source_detect (self, registry, NULL, classify, cancellable, error))
		return NULL;
	return g_steal_pointer (&self);
}

guint64
vmi_source_get_offset (VmiSource *self)
{
	return self->offset;
}

VmiRegistry *
vmi_source_get_registry (VmiSource *self)
{
	return self->registry;
}

guint
vmi_source_get_depth (VmiSource *self)
{
	return self->depth;
}

int
vmi_source_get_dir_fd (VmiSource *self)
{
	/* A folder reached only through the caller's opener is not handed out to be read with the
	 * daemon's rights: vmi_source_open_member_beside passes both on. */
	return self->opener.func != NULL ? -1 : self->dir_fd;
}

VmiSource *
vmi_source_open_member_beside (VmiRegistry *registry, VmiSource *container, int fd, guint depth,
			       gboolean classify, GCancellable *cancellable, GError **error)
{
	g_autoptr(VmiSource) self = vmi_source_new_range (fd, container->dir_fd, 0, G_MAXUINT64,
							  error);

	if (self == NULL)
		return NULL;
	self->depth = depth;
	vmi_source_set_opener (self, &container->opener);
	if (!vmi_source_detect (self, registry, NULL, classify, cancellable, error))
		return NULL;
	return g_steal_pointer (&self);
}

int
vmi_source_open_sibling_fd (VmiSource *self, const char *name, GError **error)
{
	if (self->dir_fd < 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "\"%s\" is a file beside the image, whose folder is not known here "
			     "(an image passed as a file descriptor)",
			     name);
		return -1;
	}
	return vmi_source_open_sibling (name, self, error);
}

VmiSource *
vmi_source_open (VmiRegistry *registry, int fd, int dir_fd, const char *format,
		 GCancellable *cancellable, GError **error)
{
	return vmi_source_open_full (registry, fd, dir_fd, format, FALSE, cancellable, error);
}

const VmiFormatPlugin *
vmi_source_get_plugin (VmiSource *self)
{
	return self->plugin;
}

VmiImage *
vmi_source_get_image (VmiSource *self)
{
	return self->image;
}

guint64
vmi_source_get_virtual_size (VmiSource *self)
{
	return self->info.virtual_size;
}

gboolean
vmi_source_block_status (VmiSource *self, guint64 offset, guint64 max_length, VmiExtent *extent,
			 GError **error)
{
	*extent = (VmiExtent) { 0 };
	if (!self->plugin->block_status (self->image, offset, max_length, extent, error))
		return FALSE;
	if (extent->length == 0 || extent->length > max_length) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "the %s plugin described a run of %" G_GUINT64_FORMAT
			     " bytes at offset %" G_GUINT64_FORMAT " where at most %" G_GUINT64_FORMAT
			     " remain",
			     self->plugin->name, extent->length, offset, max_length);
		return FALSE;
	}
	return TRUE;
}

const VmiImageInfo *
vmi_source_get_info (VmiSource *self)
{
	return &self->info;
}

gboolean
vmi_source_is_safe (VmiSource *self)
{
	return self->info.unsafe_reasons->len == 0;
}

int
vmi_source_get_fd (VmiSource *self)
{
	return self->fd;
}

guint64
vmi_source_get_file_size (VmiSource *self)
{
	return self->file_size;
}

static GVariant *
vmi_source_strv (GPtrArray *strings)
{
	return g_variant_new_strv ((const char *const *) strings->pdata, (gssize) strings->len);
}

GVariant *
vmi_source_get_members (VmiSource *self, GCancellable *cancellable)
{
	if (self->members == NULL)
		self->members = g_variant_ref_sink (vmi_members_to_variant (self, cancellable));
	return self->members;
}

/* Glance's disk_format: the plugin's, or for a container that does not know it, its first
 * disk's as inspected; else the plugin's name. */
static const char *
vmi_source_disk_format (VmiSource *self)
{
	const char *format = NULL;

	if (self->info.disk_format != NULL)
		return self->info.disk_format;
	if (self->info.members->len > 0)
		format = vmi_members_first_disk_format (vmi_source_get_members (self, NULL));
	return format != NULL ? format : self->plugin->name;
}

GVariant *
vmi_source_to_variant (VmiSource *self)
{
	GVariantBuilder builder;

	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add (&builder, "{sv}", "format", g_variant_new_string (self->plugin->name));
	g_variant_builder_add (&builder, "{sv}", "virtual-size",
			       g_variant_new_uint64 (self->info.virtual_size));
	g_variant_builder_add (&builder, "{sv}", "actual-size",
			       g_variant_new_uint64 (self->allocated_size));
	g_variant_builder_add (&builder, "{sv}", "file-size", g_variant_new_uint64 (self->file_size));
	if (self->info.cluster_size != 0)
		g_variant_builder_add (&builder, "{sv}", "cluster-size",
				       g_variant_new_uint64 (self->info.cluster_size));
	if (self->info.subformat != NULL)
		g_variant_builder_add (&builder, "{sv}", "subformat",
				       g_variant_new_string (self->info.subformat));
	g_variant_builder_add (&builder, "{sv}", "format-specific", self->format_specific);
	g_variant_builder_add (&builder, "{sv}", "safe",
			       g_variant_new_boolean (vmi_source_is_safe (self)));
	g_variant_builder_add (&builder, "{sv}", "unsafe-reasons",
			       vmi_source_strv (self->info.unsafe_reasons));
	g_variant_builder_add (&builder, "{sv}", "references",
			       vmi_source_strv (self->info.references));
	g_variant_builder_add (&builder, "{sv}", "disk-format",
			       g_variant_new_string (vmi_source_disk_format (self)));
	g_variant_builder_add (&builder, "{sv}", "container-format",
			       g_variant_new_string (self->info.container_format != NULL
							     ? self->info.container_format
							     : "bare"));
	if (self->info.members->len > 0)
		g_variant_builder_add (&builder, "{sv}", "members",
				       vmi_source_get_members (self, NULL));
	return g_variant_ref_sink (g_variant_builder_end (&builder));
}
