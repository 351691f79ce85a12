/* The work of a Check, CheckFd or Compare job. */
#include "config.h"

#include "vmi-check-job.h"
#include "vmi-check.h"
#include "vmi-compare.h"

static void
vmi_check_job_progress_cb (guint64 bytes_done, guint64 bytes_total, gpointer user_data)
{
	vmi_job_impl_report_progress (VMI_JOB_IMPL (user_data), bytes_done, bytes_total);
}

static gboolean
vmi_check_job_cancelled (GCancellable *cancellable, GError **error)
{
	if (!g_cancellable_is_cancelled (cancellable))
		return FALSE;
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED,
			     "The job was cancelled before it started");
	return TRUE;
}

/*
 * The job sinks its Result, so it must get a floating value: a copy of the engine's (which is a
 * full reference). Consumes full; NULL stays NULL.
 */
static GVariant *
vmi_check_job_floating (GVariant *full)
{
	g_autoptr(GVariant) owned = full;
	GVariantBuilder builder;
	GVariantIter iter;
	GVariant *child;

	if (owned == NULL)
		return NULL;
	g_variant_builder_init (&builder, g_variant_get_type (owned));
	g_variant_iter_init (&iter, owned);
	while ((child = g_variant_iter_next_value (&iter)) != NULL) {
		g_variant_builder_add_value (&builder, child);
		g_variant_unref (child);
	}
	return g_variant_builder_end (&builder);
}

VmiCheckJob *
vmi_check_job_new (void)
{
	return g_new0 (VmiCheckJob, 1);
}

void
vmi_check_job_free (VmiCheckJob *self)
{
	if (self == NULL)
		return;
	g_clear_pointer (&self->source, vmi_source_free);
	g_clear_pointer (&self->options, g_variant_unref);
	g_free (self);
}

gboolean
vmi_check_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable, GVariant **result,
		   GError **error)
{
	VmiCheckJob *self = data;

	if (vmi_check_job_cancelled (cancellable, error))
		return FALSE;
	*result = vmi_check_job_floating (vmi_check (self->source, self->options,
						     vmi_check_job_progress_cb, job, cancellable,
						     error));
	return *result != NULL;
}

VmiCompareJob *
vmi_compare_job_new (void)
{
	return g_new0 (VmiCompareJob, 1);
}

void
vmi_compare_job_free (VmiCompareJob *self)
{
	if (self == NULL)
		return;
	g_clear_pointer (&self->a, vmi_source_free);
	g_clear_pointer (&self->b, vmi_source_free);
	g_clear_pointer (&self->options, g_variant_unref);
	g_free (self);
}

gboolean
vmi_compare_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
		     GVariant **result, GError **error)
{
	VmiCompareJob *self = data;

	if (vmi_check_job_cancelled (cancellable, error))
		return FALSE;
	*result = vmi_check_job_floating (vmi_compare (self->a, self->b, self->options,
						       vmi_check_job_progress_cb, job, cancellable,
						       error));
	return *result != NULL;
}
