/*
 * VMDK: monolithic sparse files (monolithicSparse, streamOptimized) and text descriptors whose
 * extents (FLAT, SPARSE, VMFS, ZERO) live beside them. Extent files are opened only inside the
 * descriptor's own folder, by a plain name, without following symbolic links.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmdk-descriptor.h"
#include "vmdk-sparse.h"
#include "vmdk-writer.h"
#include "vmdk-measure.h"
#include "vmdk-check.h"
#include "vmi-plugin.h"

/*
 * Extent files kept open at once. A split disk can have a thousand extents, more than a
 * daemon's descriptor limit, so the least recently used are closed and opened again on demand,
 * and then must still be the same file (device, inode and size).
 */
#define VMDK_OPEN_EXTENT_FILES 32u

typedef struct {
	const VmdkDescExtent *desc; /* NULL for a monolithic sparse file */
	VmdkExtentKind kind;
	guint64 start, size; /* bytes of the virtual disk */
	/* fd -1 while closed; base 0 but for the image itself, which may lie in a larger file */
	VmiFileRange file;
	gboolean own_fd; /* an extent file beside the descriptor, not the image itself */
	guint64 file_size; /* file.size */
	dev_t dev;
	ino_t ino;
	guint64 last_use;
	guint64 flat_offset; /* bytes */
	VmdkSparse *sparse;
} VmdkExtent;

struct _VmiImage {
	VmdkDescriptor *desc; /* the text or embedded descriptor; NULL if there is none */
	VmdkExtent *extents;
	guint n_extents;
	guint64 virtual_size;
	guint64 budget;
	gboolean monolithic;
	char *create_type;
	GPtrArray *unsafe;     /* of char * */
	GPtrArray *references; /* of char * */
	/* Set when the image can be described but not read: every read fails with this. */
	int read_code;
	char *read_message;

	/* From the open args, to open extents again after closing them to save descriptors. */
	VmiOpenSiblingFunc open_sibling;
	gpointer open_sibling_data;
	guint n_open;
	guint64 use_clock;

	VmdkWriter *writer;
};

static void vmi_vmdk_close (VmiImage *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiImage, vmi_vmdk_close)

static void
vmi_vmdk_close (VmiImage *image)
{
	if (image == NULL)
		return;
	for (guint i = 0; i < image->n_extents; i++) {
		VmdkExtent *e = &image->extents[i];

		vmdk_sparse_free (e->sparse);
		if (e->own_fd && e->file.fd >= 0)
			close (e->file.fd);
	}
	g_free (image->extents);
	vmdk_descriptor_free (image->desc);
	g_free (image->create_type);
	g_ptr_array_unref (image->unsafe);
	g_ptr_array_unref (image->references);
	g_free (image->read_message);
	vmdk_writer_free (image->writer);
	g_free (image);
}

static VmiImage *
vmi_vmdk_image_new (void)
{
	VmiImage *image = g_new0 (VmiImage, 1);

	image->unsafe = g_ptr_array_new_with_free_func (g_free);
	image->references = g_ptr_array_new_with_free_func (g_free);
	image->budget = VMDK_METADATA_CAP;
	return image;
}

/* Reads then fail with the most serious reason: an unsafe image above anything else. */
static void G_GNUC_PRINTF (3, 4)
vmi_vmdk_set_read_error (VmiImage *image, int code, const char *format, ...)
{
	va_list args;

	if (image->read_message != NULL &&
	    (image->read_code == VMI_ERROR_UNSAFE_IMAGE || code != VMI_ERROR_UNSAFE_IMAGE))
		return;
	g_free (image->read_message);
	va_start (args, format);
	image->read_message = g_strdup_vprintf (format, args);
	va_end (args);
	image->read_code = code;
}

static void
vmi_vmdk_add_reference (VmiImage *image, const char *path)
{
	for (guint i = 0; i < image->references->len; i++) {
		if (strcmp (g_ptr_array_index (image->references, i), path) == 0)
			return;
	}
	g_ptr_array_add (image->references, g_strdup (path));
}

static guint
vmi_vmdk_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	if (head_len >= 4 &&
	    (memcmp (head, VMDK_SPARSE_MAGIC, 4) == 0 || memcmp (head, VMDK_COWD_MAGIC, 4) == 0))
		return VMI_PROBE_CERTAIN;
	if (vmdk_descriptor_probe (head, head_len))
		return VMI_PROBE_CERTAIN;
	return VMI_PROBE_NO;
}

static void
vmi_vmdk_note_parent (VmiImage *image)
{
	if (image->desc == NULL || image->desc->parent_hint == NULL)
		return;
	vmi_vmdk_add_reference (image, image->desc->parent_hint);
	g_ptr_array_add (image->unsafe,
			 g_strdup_printf ("the image is a delta on top of the parent disk '%s', "
					  "which was not opened",
					  image->desc->parent_hint));
	vmi_vmdk_set_read_error (image, VMI_ERROR_NOT_SUPPORTED,
				 "the image is a delta of the parent disk '%s'; reading it alone "
				 "would give wrong data, and parents are not followed",
				 image->desc->parent_hint);
}

static VmiImage *
vmi_vmdk_open_monolithic (const VmiFileRange *file, GError **error)
{
	g_autoptr(VmiImage) image = vmi_vmdk_image_new ();
	VmdkExtent *e;
	guint64 desc_offset, desc_size;

	image->monolithic = TRUE;
	image->extents = g_new0 (VmdkExtent, 1);
	image->n_extents = 1;
	e = &image->extents[0];
	e->kind = VMDK_EXTENT_SPARSE;
	e->file = *file;
	e->file_size = file->size;
	e->sparse = vmdk_sparse_open (&e->file, NULL, &image->budget, error);
	if (e->sparse == NULL)
		return NULL;
	e->size = vmdk_sparse_get_capacity (e->sparse);
	image->virtual_size = e->size;
	/* Like qemu: the header, not the embedded text, says what kind of file this is. */
	image->create_type = g_strdup (vmdk_sparse_is_compressed (e->sparse) ? "streamOptimized"
									     : "monolithicSparse");

	vmdk_sparse_get_descriptor (e->sparse, &desc_offset, &desc_size);
	if (desc_size > 0) {
		g_autofree char *text = g_malloc (desc_size);

		if (!vmdk_pread_exact (&e->file, text, desc_size, desc_offset,
				       "the embedded descriptor", error))
			return NULL;
		/* The extent lines only name this file; damage there does not matter. */
		image->desc = vmdk_descriptor_parse (text, desc_size, TRUE, NULL);
		if (image->desc == NULL)
			image->desc = vmdk_descriptor_parse (text, desc_size, FALSE, error);
		if (image->desc == NULL)
			return NULL;
		if (image->desc->extents->len > 0)
			e->desc = g_ptr_array_index (image->desc->extents, 0);
	}
	vmi_vmdk_note_parent (image);
	return g_steal_pointer (&image);
}

/* Closes the least recently used extent file if as many as allowed are open. */
static void
vmi_vmdk_make_room (VmiImage *image)
{
	VmdkExtent *oldest = NULL;

	if (image->n_open < VMDK_OPEN_EXTENT_FILES)
		return;
	for (guint i = 0; i < image->n_extents; i++) {
		VmdkExtent *e = &image->extents[i];

		if (e->own_fd && e->file.fd >= 0 && (oldest == NULL || e->last_use < oldest->last_use))
			oldest = e;
	}
	g_assert (oldest != NULL);
	close (oldest->file.fd);
	oldest->file.fd = -1;
	if (oldest->sparse != NULL)
		vmdk_sparse_set_fd (oldest->sparse, -1);
	image->n_open--;
}

static void
vmi_vmdk_adopt_fd (VmiImage *image, VmdkExtent *e, int fd)
{
	e->file.fd = fd;
	e->last_use = ++image->use_clock;
	if (e->sparse != NULL)
		vmdk_sparse_set_fd (e->sparse, fd);
	image->n_open++;
}

/* Makes sure the extent's file is open, opening it again if it was closed to save descriptors. */
static gboolean
vmi_vmdk_extent_open (VmiImage *image, VmdkExtent *e, GError **error)
{
	const char *name = e->desc != NULL ? e->desc->filename : NULL;
	g_autoptr(GError) local_error = NULL;
	struct stat st;
	int fd;

	if (!e->own_fd || e->file.fd >= 0) {
		e->last_use = ++image->use_clock;
		return TRUE;
	}
	vmi_vmdk_make_room (image);
	fd = image->open_sibling (name, image->open_sibling_data, &local_error);
	if (fd < 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "extent file '%s' cannot be opened again: %s", name,
			     local_error->message);
		return FALSE;
	}
	if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || st.st_dev != e->dev ||
	    st.st_ino != e->ino || (guint64) st.st_size != e->file_size) {
		close (fd);
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
			     "extent file '%s' was replaced or changed while the image was open",
			     name);
		return FALSE;
	}
	vmi_vmdk_adopt_fd (image, e, fd);
	return TRUE;
}

static gboolean
vmi_vmdk_name_is_plain (const char *name)
{
	return name[0] != '\0' && strchr (name, '/') == NULL && strcmp (name, ".") != 0 &&
	       strcmp (name, "..") != 0;
}

/* Opens one FLAT or SPARSE extent file beside the descriptor, or says why it is not opened. */
static gboolean
vmi_vmdk_open_extent_file (VmiImage *image, const VmiOpenArgs *args, VmdkExtent *e,
			   GError **error)
{
	const char *name = e->desc->filename;
	g_autoptr(GError) local_error = NULL;
	struct stat st;
	int fd;

	if (!vmi_vmdk_name_is_plain (name)) {
		vmi_vmdk_add_reference (image, name);
		g_ptr_array_add (image->unsafe,
				 g_strdup_printf ("extent file '%s' (descriptor line %u) is not a plain "
						  "name in the descriptor's folder; it was not opened",
						  name, e->desc->line));
		vmi_vmdk_set_read_error (image, VMI_ERROR_UNSAFE_IMAGE,
					 "extent file '%s' lies outside the descriptor's folder; "
					 "it is not read",
					 name);
		return TRUE;
	}
	if (args->open_sibling == NULL) {
		vmi_vmdk_add_reference (image, name);
		vmi_vmdk_set_read_error (image, VMI_ERROR_NOT_SUPPORTED,
					 "the descriptor's folder is unknown here (the image came as an "
					 "open file, or is a member of an archive), so its extent file "
					 "'%s' is not opened",
					 name);
		return TRUE;
	}
	vmi_vmdk_make_room (image);
	fd = args->open_sibling (name, args->open_sibling_data, &local_error);
	if (fd < 0) {
		vmi_vmdk_add_reference (image, name);
		if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_LINKS)) {
			g_ptr_array_add (image->unsafe,
					 g_strdup_printf ("extent file '%s' is a symbolic link; it was "
							  "not followed",
							  name));
			vmi_vmdk_set_read_error (image, VMI_ERROR_UNSAFE_IMAGE,
						 "extent file '%s' is a symbolic link, which is not "
						 "followed",
						 name);
		} else if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
			g_ptr_array_add (image->unsafe,
					 g_strdup_printf ("extent file '%s' (descriptor line %u) is "
							  "missing: the image is incomplete",
							  name, e->desc->line));
			vmi_vmdk_set_read_error (image, VMI_ERROR_CORRUPT_IMAGE,
						 "extent file '%s' is missing beside the descriptor",
						 name);
		} else if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)) {
			/* opened as the caller: a file they may not read is not read for them */
			g_ptr_array_add (image->unsafe,
					 g_strdup_printf ("extent file '%s' (descriptor line %u) cannot "
							  "be read by the caller; it was not read",
							  name, e->desc->line));
			vmi_vmdk_set_read_error (image, VMI_ERROR_ACCESS_DENIED,
						 "extent file '%s' cannot be read by the caller: %s",
						 name, local_error->message);
		} else if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE)) {
			g_ptr_array_add (image->unsafe,
					 g_strdup_printf ("extent file '%s' is not a regular file; it "
							  "was not read",
							  name));
			vmi_vmdk_set_read_error (image, VMI_ERROR_UNSAFE_IMAGE,
						 "extent file '%s' is not a regular file", name);
		} else {
			g_ptr_array_add (image->unsafe,
					 g_strdup_printf ("extent file '%s' cannot be opened: %s", name,
							  local_error->message));
			vmi_vmdk_set_read_error (image, VMI_ERROR_FAILED,
						 "cannot open extent file '%s': %s", name,
						 local_error->message);
		}
		return TRUE;
	}
	if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
		close (fd);
		vmi_vmdk_add_reference (image, name);
		g_ptr_array_add (image->unsafe,
				 g_strdup_printf ("extent file '%s' is not a regular file; it was not "
						  "read",
						  name));
		vmi_vmdk_set_read_error (image, VMI_ERROR_UNSAFE_IMAGE,
					 "extent file '%s' is not a regular file", name);
		return TRUE;
	}
	e->own_fd = TRUE;
	e->file_size = (guint64) st.st_size;
	e->file = (VmiFileRange) { .fd = -1, .base = 0, .size = e->file_size };
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	vmi_vmdk_adopt_fd (image, e, fd);
	if (e->kind == VMDK_EXTENT_SPARSE) {
		e->sparse = vmdk_sparse_open (&e->file, name, &image->budget, &local_error);
		if (e->sparse != NULL)
			return TRUE;
		/* A kind of extent we do not read (COWD): still describe the disk. */
		if (g_error_matches (local_error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED)) {
			vmi_vmdk_set_read_error (image, VMI_ERROR_NOT_SUPPORTED, "%s",
						 local_error->message);
			return TRUE;
		}
		g_propagate_error (error, g_steal_pointer (&local_error));
		return FALSE;
	}
	e->flat_offset = e->desc->offset * VMDK_SECTOR;
	if (e->file_size < e->flat_offset || e->file_size - e->flat_offset < e->size) {
		g_ptr_array_add (image->unsafe,
				 g_strdup_printf ("extent file '%s' is %" G_GUINT64_FORMAT " bytes, "
						  "shorter than the descriptor says; the rest reads "
						  "as zeros",
						  name, e->file_size));
	}
	return TRUE;
}

static VmiImage *
vmi_vmdk_open_descriptor (const VmiOpenArgs *args, const VmiFileRange *file, const guint8 *head,
			  gsize head_len, GError **error)
{
	g_autoptr(VmiImage) image = vmi_vmdk_image_new ();
	g_autofree char *text = NULL;
	g_autoptr(GError) local_error = NULL;
	guint64 start = 0;

	if (args->file_size > VMDK_MAX_DESCRIPTOR) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the %" G_GUINT64_FORMAT "-byte file has no VMDK sparse header, and as "
			     "a text descriptor it is larger than the %u bytes a descriptor may have",
			     args->file_size, VMDK_MAX_DESCRIPTOR);
		return NULL;
	}
	text = g_malloc (args->file_size);
	if (!vmdk_pread_exact (file, text, args->file_size, 0, "the descriptor", error))
		return NULL;
	image->desc = vmdk_descriptor_parse (text, args->file_size, TRUE, &local_error);
	if (image->desc == NULL) {
		if (!vmdk_descriptor_probe (head, head_len)) {
			g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
					     "this is not a VMDK: it starts with neither a sparse "
					     "header ('KDMV') nor a text descriptor ('version=1')");
			return NULL;
		}
		g_propagate_error (error, g_steal_pointer (&local_error));
		return NULL;
	}
	image->create_type = g_strdup (image->desc->create_type);
	image->n_extents = image->desc->extents->len;
	image->extents = g_new0 (VmdkExtent, image->n_extents);
	for (guint i = 0; i < image->n_extents; i++) {
		VmdkExtent *e = &image->extents[i];

		e->desc = g_ptr_array_index (image->desc->extents, i);
		e->kind = e->desc->kind;
		e->file.fd = -1;
		e->start = start;
		e->size = e->desc->sectors * VMDK_SECTOR;
		if (!g_uint64_checked_add (&start, start, e->size) || start > VMDK_MAX_VIRTUAL_SIZE) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the extents of the descriptor add up to more than 64 TiB "
				     "(at line %u)",
				     e->desc->line);
			return NULL;
		}
	}
	image->virtual_size = start;
	image->open_sibling = args->open_sibling;
	image->open_sibling_data = args->open_sibling_data;

	for (guint i = 0; i < image->n_extents; i++) {
		VmdkExtent *e = &image->extents[i];

		if (g_cancellable_set_error_if_cancelled (args->cancellable, error))
			return NULL;
		if (e->kind == VMDK_EXTENT_ZERO)
			continue;
		if (e->kind == VMDK_EXTENT_OTHER) {
			if (e->desc->filename != NULL)
				vmi_vmdk_add_reference (image, e->desc->filename);
			vmi_vmdk_set_read_error (image, VMI_ERROR_NOT_SUPPORTED,
						 "extent type %s (descriptor line %u) is not supported",
						 e->desc->type, e->desc->line);
			continue;
		}
		if (!vmi_vmdk_open_extent_file (image, args, e, error))
			return NULL;
	}
	vmi_vmdk_note_parent (image);
	return g_steal_pointer (&image);
}

static VmiImage *
vmi_vmdk_open (const VmiOpenArgs *args, GError **error)
{
	guint8 head[VMI_PROBE_HEAD_SIZE];
	gsize head_len = (gsize) MIN (args->file_size, sizeof head);
	VmiFileRange file;

	if (args->file_size < 4) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the file is %" G_GUINT64_FORMAT " bytes, too short to be a VMDK",
			     args->file_size);
		return NULL;
	}
	if (!vmi_file_range_init (&file, args, error) ||
	    !vmdk_pread_exact (&file, head, head_len, 0, "the start of the file", error))
		return NULL;
	if (memcmp (head, VMDK_SPARSE_MAGIC, 4) == 0 || memcmp (head, VMDK_COWD_MAGIC, 4) == 0)
		return vmi_vmdk_open_monolithic (&file, error);
	return vmi_vmdk_open_descriptor (args, &file, head, head_len, error);
}

static const char *
vmi_vmdk_static_subformat (const char *create_type)
{
	static const char *const known[] = {
		"monolithicSparse", "streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse",
		"twoGbMaxExtentFlat", "vmfs", "vmfsSparse", "vmfsThin", "vmfsRaw", "vmfsRDM",
		"vmfsPassthroughRawDeviceMap", "seSparse", "fullDevice", "partitionedDevice",
		"custom", NULL,
	};

	for (guint i = 0; create_type != NULL && known[i] != NULL; i++) {
		if (strcmp (create_type, known[i]) == 0)
			return known[i];
	}
	return NULL;
}

static GVariant *
vmi_vmdk_extent_info (VmdkExtent *e)
{
	GVariantBuilder b;

	g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
	if (e->desc != NULL && e->desc->filename != NULL)
		g_variant_builder_add (&b, "{sv}", "filename", g_variant_new_string (e->desc->filename));
	g_variant_builder_add (&b, "{sv}", "format",
			       g_variant_new_string (e->desc != NULL ? e->desc->type : "SPARSE"));
	g_variant_builder_add (&b, "{sv}", "virtual-size",
			       g_variant_new_uint64 (e->sparse != NULL && e->desc == NULL
							     ? vmdk_sparse_get_capacity (e->sparse)
							     : e->size));
	if (e->sparse != NULL) {
		g_variant_builder_add (&b, "{sv}", "cluster-size",
				       g_variant_new_uint64 (vmdk_sparse_get_grain_size (e->sparse)));
		if (vmdk_sparse_is_compressed (e->sparse))
			g_variant_builder_add (&b, "{sv}", "compressed", g_variant_new_boolean (TRUE));
	}
	return g_variant_builder_end (&b);
}

static gboolean
vmi_vmdk_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	GVariantDict *fs = info->format_specific;
	GVariantBuilder extents;

	info->virtual_size = image->virtual_size;
	info->subformat = vmi_vmdk_static_subformat (image->create_type);
	for (guint i = 0; i < image->n_extents; i++) {
		if (image->extents[i].sparse != NULL) {
			info->cluster_size = vmdk_sparse_get_grain_size (image->extents[i].sparse);
			break;
		}
	}
	if (image->create_type != NULL)
		g_variant_dict_insert (fs, "create-type", "s", image->create_type);
	if (image->desc != NULL) {
		VmdkDescriptor *d = image->desc;

		if (d->has_cid)
			g_variant_dict_insert (fs, "cid", "u", d->cid);
		if (d->has_parent_cid)
			g_variant_dict_insert (fs, "parent-cid", "u", d->parent_cid);
		if (d->adapter_type != NULL)
			g_variant_dict_insert (fs, "adapter-type", "s", d->adapter_type);
		if (d->hw_version != NULL)
			g_variant_dict_insert (fs, "hw-version", "s", d->hw_version);
		if (d->has_geometry) {
			g_variant_dict_insert (fs, "geometry-cylinders", "t", d->cylinders);
			g_variant_dict_insert (fs, "geometry-heads", "t", d->heads);
			g_variant_dict_insert (fs, "geometry-sectors", "t", d->sectors);
		}
		if (d->parent_hint != NULL)
			g_variant_dict_insert (fs, "parent-filename-hint", "s", d->parent_hint);
	}
	g_variant_builder_init (&extents, G_VARIANT_TYPE ("aa{sv}"));
	for (guint i = 0; i < image->n_extents; i++)
		g_variant_builder_add_value (&extents, vmi_vmdk_extent_info (&image->extents[i]));
	g_variant_dict_insert_value (fs, "extents", g_variant_builder_end (&extents));

	for (guint i = 0; i < image->unsafe->len; i++)
		g_ptr_array_add (info->unsafe_reasons, g_strdup (g_ptr_array_index (image->unsafe, i)));
	for (guint i = 0; i < image->references->len; i++)
		g_ptr_array_add (info->references, g_strdup (g_ptr_array_index (image->references, i)));
	return TRUE;
}

static gboolean
vmi_vmdk_check_readable (VmiImage *image, GError **error)
{
	if (image->read_message == NULL)
		return TRUE;
	g_set_error_literal (error, VMI_ERROR, image->read_code, image->read_message);
	return FALSE;
}

static VmdkExtent *
vmi_vmdk_find_extent (VmiImage *image, guint64 offset)
{
	guint lo = 0, hi = image->n_extents;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		VmdkExtent *e = &image->extents[mid];

		if (offset < e->start)
			hi = mid;
		else if (offset - e->start >= e->size)
			lo = mid + 1;
		else
			return e;
	}
	return NULL;
}

static gboolean
vmi_vmdk_read_flat (VmdkExtent *e, guint64 rel, guint8 *buf, gsize len, GError **error)
{
	guint64 at = e->flat_offset + rel;
	gsize in_file = at >= e->file_size ? 0 : (gsize) MIN (len, e->file_size - at);

	if (in_file > 0 &&
	    !vmdk_pread_exact (&e->file, buf, in_file, at, e->desc->filename, error))
		return FALSE;
	memset (buf + in_file, 0, len - in_file);
	return TRUE;
}

static gboolean
vmi_vmdk_read (VmiImage *image, guint64 offset, void *buf, gsize len, GError **error)
{
	guint8 *out = buf;

	if (!vmi_vmdk_check_readable (image, error))
		return FALSE;
	while (len > 0) {
		VmdkExtent *e = vmi_vmdk_find_extent (image, offset);
		guint64 rel;
		gsize n;

		if (e == NULL) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "read at 0x%" G_GINT64_MODIFIER "x is past the end of the disk",
				     offset);
			return FALSE;
		}
		rel = offset - e->start;
		n = (gsize) MIN ((guint64) len, e->size - rel);
		if (!vmi_vmdk_extent_open (image, e, error))
			return FALSE;
		if (e->kind == VMDK_EXTENT_ZERO)
			memset (out, 0, n);
		else if (e->sparse != NULL && !vmdk_sparse_read (e->sparse, rel, out, n, error))
			return FALSE;
		else if (e->sparse == NULL && !vmi_vmdk_read_flat (e, rel, out, n, error))
			return FALSE;
		out += n;
		offset += n;
		len -= n;
	}
	return TRUE;
}

/*
 * Flat extents are often sparse files: their holes read as zeros, so say so and spare the
 * caller from reading gigabytes of them. The file is only asked, never trusted for more.
 */
static gboolean
vmi_vmdk_flat_status (VmdkExtent *e, guint64 rel, guint64 max, VmiExtent *extent, GError **error)
{
	guint64 at = e->flat_offset + rel;

	if (at >= e->file_size) {
		/* past the end of a short extent file: zeros, up to the extent's end */
		extent->kind = VMI_EXTENT_HOLE;
		extent->length = max;
		return TRUE;
	}
	if (!vmi_range_block_status (&e->file, at, max, extent, error))
		return FALSE;
	/* a hole up to the end of the file goes on past it */
	if (extent->kind == VMI_EXTENT_HOLE && at + extent->length >= e->file_size)
		extent->length = max;
	return TRUE;
}

static gboolean
vmi_vmdk_block_status (VmiImage *image, guint64 offset, guint64 max_length, VmiExtent *extent,
		       GError **error)
{
	VmdkExtent *e;
	guint64 rel, max;

	if (!vmi_vmdk_check_readable (image, error))
		return FALSE;
	e = vmi_vmdk_find_extent (image, offset);
	if (e == NULL || max_length == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "block status at 0x%" G_GINT64_MODIFIER "x is past the end of the disk",
			     offset);
		return FALSE;
	}
	rel = offset - e->start;
	max = MIN (max_length, e->size - rel);
	if (!vmi_vmdk_extent_open (image, e, error))
		return FALSE;
	if (e->kind == VMDK_EXTENT_ZERO) {
		extent->kind = VMI_EXTENT_ZERO;
		extent->length = max;
		return TRUE;
	}
	if (e->sparse == NULL)
		return vmi_vmdk_flat_status (e, rel, max, extent, error);
	if (!vmdk_sparse_block_status (e->sparse, rel, max, extent, error))
		return FALSE;
	extent->length = MIN (extent->length, max);
	return TRUE;
}

/* The name the new file has in its folder, for the embedded descriptor's extent line. */
/* Each hosted sparse extent in turn; flat extents have nothing to check. */
static gboolean
vmi_vmdk_check (VmiImage *image, VmiCheckResult *result, GCancellable *cancellable,
		GError **error)
{
	for (guint i = 0; i < image->n_extents; i++) {
		VmdkExtent *e = &image->extents[i];

		if (e->sparse != NULL &&
		    (!vmi_vmdk_extent_open (image, e, error) ||
		     !vmdk_check_sparse (&e->file,
					 image->monolithic || e->desc == NULL ? NULL : e->desc->filename,
					 result, cancellable, error)))
			return FALSE;
	}
	return TRUE;
}

static char *
vmi_vmdk_file_name (int fd)
{
	g_autofree char *link = g_strdup_printf ("/proc/self/fd/%d", fd);
	g_autofree char *target = g_file_read_link (link, NULL);

	if (target == NULL || target[0] != '/' || g_str_has_suffix (target, " (deleted)"))
		return g_strdup ("disk.vmdk");
	return g_path_get_basename (target);
}

static VmiImage *
vmi_vmdk_create (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	g_autoptr(VmiImage) image = vmi_vmdk_image_new ();
	g_autofree char *name = vmi_vmdk_file_name (fd);
	const char *subformat = "monolithicSparse";
	const char *adapter_type = "ide";

	if (options != NULL) {
		g_variant_lookup (options, "subformat", "&s", &subformat);
		g_variant_lookup (options, "adapter_type", "&s", &adapter_type);
	}
	image->writer = vmdk_writer_new (fd, virtual_size, subformat, adapter_type, name, error);
	if (image->writer == NULL)
		return NULL;
	return g_steal_pointer (&image);
}

static gboolean
vmi_vmdk_write (VmiImage *image, guint64 offset, const void *buf, gsize len, GError **error)
{
	return vmdk_writer_write (image->writer, offset, buf, len, error);
}

static gboolean
vmi_vmdk_finish (VmiImage *image, GError **error)
{
	return vmdk_writer_finish (image->writer, error);
}

static const char *const vmi_vmdk_extensions[] = { "vmdk", NULL };

static const VmiOptionSpec vmi_vmdk_create_options[] = {
	{ "subformat", "s", "monolithicSparse (default) or streamOptimized" },
	{ "adapter_type", "s", "adapter in the descriptor: ide (default), lsilogic, buslogic or legacyESX" },
	{ NULL },
};

const VmiFormatPlugin vmi_vmdk_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "vmdk",
	.description = "VMware virtual disk (VMDK)",
	.extensions = vmi_vmdk_extensions,
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ | VMI_FORMAT_CAN_WRITE,
	.probe = vmi_vmdk_probe,
	.open = vmi_vmdk_open,
	.get_info = vmi_vmdk_get_info,
	.read = vmi_vmdk_read,
	.block_status = vmi_vmdk_block_status,
	.close = vmi_vmdk_close,
	.create_options = vmi_vmdk_create_options,
	.create = vmi_vmdk_create,
	.write = vmi_vmdk_write,
	.finish = vmi_vmdk_finish,
	.measure = vmdk_measure,
	.check = vmi_vmdk_check,
};

VMI_PLUGIN_DEFINE (vmi_vmdk_plugin)
