/* The work of a Convert or ConvertFd job. */
#include "config.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-convert-job.h"
#include "vmi-convert.h"

VmiConvertJob *
vmi_convert_job_new (void)
{
	VmiConvertJob *self = g_new0 (VmiConvertJob, 1);

	self->out_fd = -1;
	self->dir_fd = -1;
	return self;
}

static void
vmi_convert_job_remove_temp (VmiConvertJob *self)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *tmp_name = g_steal_pointer (&self->tmp_name);

	if (tmp_name == NULL || self->dir_fd < 0)
		return;
	if (!vmi_caller_unlink_at (self->caller, self->dir_fd, tmp_name, tmp_name, &error))
		g_warning ("Cannot remove the partial output %s beside %s: %s", tmp_name,
			   self->dest_path, error->message);
}

void
vmi_convert_job_free (VmiConvertJob *self)
{
	if (self == NULL)
		return;
	vmi_convert_job_remove_temp (self);
	if (self->out_fd >= 0)
		close (self->out_fd);
	if (self->dir_fd >= 0)
		close (self->dir_fd);
	g_clear_pointer (&self->source, vmi_source_free);
	g_clear_pointer (&self->options, g_variant_unref);
	g_clear_pointer (&self->caller, vmi_caller_free);
	g_free (self->dest_path);
	g_free (self->dest_name);
	g_free (self);
}

static void
vmi_convert_job_progress_cb (guint64 bytes_done, guint64 bytes_total, gpointer user_data)
{
	vmi_job_impl_report_progress (VMI_JOB_IMPL (user_data), bytes_done, bytes_total);
}

/* The virtual size of the output as its own plugin reads it back, or the source's. */
static guint64
vmi_convert_job_output_virtual_size (VmiConvertJob *self, GCancellable *cancellable)
{
	g_autoptr(VmiSource) output = NULL;
	g_autoptr(GError) error = NULL;

	if ((self->plugin->flags & VMI_FORMAT_CAN_INSPECT) == 0)
		return vmi_source_get_virtual_size (self->source);
	output = vmi_source_open_with (self->plugin, self->out_fd, -1, cancellable, &error);
	if (output == NULL) {
		g_warning ("The %s plugin cannot read back the image it wrote: %s",
			   self->plugin->name, error->message);
		return vmi_source_get_virtual_size (self->source);
	}
	return vmi_source_get_virtual_size (output);
}

static gboolean
vmi_convert_job_write (VmiConvertJob *self, VmiJobImpl *job, GCancellable *cancellable,
		       GError **error)
{
	if (!vmi_convert (self->source, self->plugin, self->out_fd, self->options,
			  vmi_convert_job_progress_cb, job, cancellable, error))
		return FALSE;
	/* The rename must not publish a file whose data is still only in the page cache. */
	if (fsync (self->out_fd) != 0) {
		int errsv = errno;

		g_set_error (error, VMI_ERROR, errsv == ENOSPC || errsv == EDQUOT ? VMI_ERROR_NO_SPACE
										  : VMI_ERROR_FAILED,
			     "Cannot write %s: %s", self->dest_path ? self->dest_path : "the output",
			     g_strerror (errsv));
		return FALSE;
	}
	if (g_cancellable_is_cancelled (cancellable)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED, "The job was cancelled");
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_convert_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable, GVariant **result,
		     GError **error)
{
	VmiConvertJob *self = data;
	GVariantBuilder builder;
	struct stat st;
	guint64 virtual_size;

	if (g_cancellable_is_cancelled (cancellable)) {
		vmi_convert_job_remove_temp (self);
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED,
				     "The job was cancelled before it started");
		return FALSE;
	}
	if (!vmi_convert_job_write (self, job, cancellable, error)) {
		if (self->dir_fd >= 0)
			vmi_convert_job_remove_temp (self);
		else if (ftruncate (self->out_fd, 0) != 0)
			g_warning ("Cannot truncate the destination after a failure: %s",
				   g_strerror (errno));
		return FALSE;
	}
	virtual_size = vmi_convert_job_output_virtual_size (self, cancellable);
	if (fstat (self->out_fd, &st) != 0)
		st.st_size = 0;
	if (self->dir_fd >= 0) {
		if (!vmi_caller_rename_at (self->caller, self->dir_fd, self->tmp_name,
					   self->dest_name, self->dest_path, self->overwrite, error)) {
			vmi_convert_job_remove_temp (self);
			return FALSE;
		}
		g_clear_pointer (&self->tmp_name, g_free);
	}
	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	if (self->dest_path != NULL)
		g_variant_builder_add (&builder, "{sv}", "destination",
				       g_variant_new_string (self->dest_path));
	g_variant_builder_add (&builder, "{sv}", "format", g_variant_new_string (self->plugin->name));
	g_variant_builder_add (&builder, "{sv}", "virtual-size", g_variant_new_uint64 (virtual_size));
	g_variant_builder_add (&builder, "{sv}", "file-size",
			       g_variant_new_uint64 ((guint64) st.st_size));
	*result = g_variant_builder_end (&builder);
	return TRUE;
}
