/*
 * An OVF descriptor on its own: the XML that describes virtual systems and names their disk
 * files. It is not a disk, so the plugin only inspects; the files it names are reported as
 * references and as members beside it, which the daemon opens (open_sibling refuses names that
 * leave the folder). A gzip-compressed file is inflated here, for read_member.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-ovf-gunzip.h"
#include "vmi-ovf-parse.h"
#include "vmi-ovf-probe.h"

struct _VmiImage {
	VmiOvf *ovf;
	GPtrArray *entries; /* of VmiOvfEntry * */
	VmiOpenSiblingFunc open_sibling;
	gpointer open_sibling_data;
	int gunzip_fd;	      /* the sibling behind gunzip, or -1 */
	VmiOvfGunzip *gunzip; /* of entry gunzip_index */
	guint gunzip_index;
};

static void ovf_close (VmiImage *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiImage, ovf_close)

static VmiImage *
ovf_open (const VmiOpenArgs *args, GError **error)
{
	g_autoptr(VmiImage) self = g_new0 (VmiImage, 1);
	g_autofree char *data = NULL;

	self->gunzip_fd = -1;
	data = vmi_ovf_read (args->fd, args->offset, args->file_size, "OVF descriptor", error);
	if (data == NULL)
		return NULL;
	self->ovf = vmi_ovf_parse (data, (gsize) args->file_size, error);
	if (self->ovf == NULL)
		return NULL;
	self->entries = vmi_ovf_entries (self->ovf);
	self->open_sibling = args->open_sibling;
	self->open_sibling_data = args->open_sibling_data;
	return g_steal_pointer (&self);
}

static gboolean
ovf_get_info (VmiImage *self, VmiImageInfo *info, GError **error)
{
	const VmiOvf *ovf = self->ovf;

	info->virtual_size = ovf->virtual_size;
	vmi_ovf_describe (ovf, info->format_specific, NULL, NULL);
	for (guint i = 0; i < ovf->unsafe_reasons->len; i++)
		g_ptr_array_add (info->unsafe_reasons,
				 g_strdup (g_ptr_array_index (ovf->unsafe_reasons, i)));
	for (guint i = 0; i < ovf->files->len; i++) {
		const VmiOvfFile *file = g_ptr_array_index (ovf->files, i);

		g_ptr_array_add (info->references, g_strdup (file->href));
	}
	for (guint i = 0; i < self->entries->len; i++) {
		const VmiOvfEntry *entry = g_ptr_array_index (self->entries, i);

		g_ptr_array_add (info->members,
				 vmi_ovf_member_new (entry, vmi_ovf_entry_is_gzip (entry)
								    ? VMI_MEMBER_STREAM
								    : VMI_MEMBER_SIBLING));
	}
	info->disk_format = vmi_ovf_disk_format (ovf);
	info->container_format = "ovf";
	return TRUE;
}

/* Opens the gzip file of entry index beside the descriptor, as the daemon allows. */
static gboolean
ovf_start_gunzip (VmiImage *self, guint index, GError **error)
{
	const VmiOvfEntry *entry = g_ptr_array_index (self->entries, index);
	guint64 capacity = entry->disk != NULL && entry->disk->capacity_known
				   ? entry->disk->capacity_bytes
				   : 0;
	struct stat st;

	if (self->open_sibling == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the descriptor's folder is not known (an fd, or a caller other than "
			     "the daemon's user), so \"%s\" beside it cannot be read",
			     entry->file->href);
		return FALSE;
	}
	g_clear_pointer (&self->gunzip, vmi_ovf_gunzip_free);
	if (self->gunzip_fd >= 0)
		close (self->gunzip_fd);
	self->gunzip_fd = self->open_sibling (entry->file->href, self->open_sibling_data, error);
	if (self->gunzip_fd < 0)
		return FALSE;
	if (fstat (self->gunzip_fd, &st) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "cannot stat \"%s\"",
			     entry->file->href);
		return FALSE;
	}
	self->gunzip = vmi_ovf_gunzip_new (self->gunzip_fd, 0, (guint64) st.st_size,
					   vmi_ovf_gunzip_limit (capacity, (guint64) st.st_size),
					   entry->file->href);
	self->gunzip_index = index;
	return TRUE;
}

static gboolean
ovf_read_member (VmiImage *self, guint index, guint64 offset, void *buf, gsize len, gsize *got,
		 GError **error)
{
	*got = 0;
	if (index >= self->entries->len ||
	    !vmi_ovf_entry_is_gzip (g_ptr_array_index (self->entries, index))) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "member %u of the OVF is not a compressed file", index);
		return FALSE;
	}
	if ((self->gunzip == NULL || self->gunzip_index != index) &&
	    !ovf_start_gunzip (self, index, error))
		return FALSE;
	return vmi_ovf_gunzip_read (self->gunzip, offset, buf, len, got, error);
}

static void
ovf_close (VmiImage *self)
{
	g_clear_pointer (&self->gunzip, vmi_ovf_gunzip_free);
	if (self->gunzip_fd >= 0)
		close (self->gunzip_fd);
	g_clear_pointer (&self->entries, g_ptr_array_unref);
	g_clear_pointer (&self->ovf, vmi_ovf_free);
	g_free (self);
}

const VmiFormatPlugin vmi_ovf_plugin = {
	VMI_OVF_IDENTITY,
	.init = vmi_ovf_init,
	.probe = vmi_ovf_probe,
	.open = ovf_open,
	.get_info = ovf_get_info,
	.read_member = ovf_read_member,
	.close = ovf_close,
};

VMI_PLUGIN_DEFINE (vmi_ovf_plugin)
