/* The work of the cache's import, export and verify jobs. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "vmi-cache-bundle.h"
#include "vmi-cache-job.h"

char *
vmi_cache_job_image_path (const char *id)
{
	return g_strconcat (VMI_DBUS_IMAGES_PATH, id, NULL);
}

static void
vmi_cache_job_progress_cb (guint64 bytes_done, guint64 bytes_total, gpointer user_data)
{
	vmi_job_impl_report_progress (VMI_JOB_IMPL (user_data), bytes_done, bytes_total);
}

static GVariant *
vmi_cache_job_image_result (const char *id)
{
	g_autofree char *path = vmi_cache_job_image_path (id);
	GVariantBuilder builder;

	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add (&builder, "{sv}", "image", g_variant_new_object_path (path));
	return g_variant_builder_end (&builder);
}

static gboolean
vmi_cache_job_check_cancelled (GCancellable *cancellable, GError **error)
{
	if (!g_cancellable_is_cancelled (cancellable))
		return TRUE;
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED,
			     "The job was cancelled before it started");
	return FALSE;
}

/* ---- Import ---- */

VmiCacheImportJob *
vmi_cache_import_job_new (VmiCache *cache)
{
	VmiCacheImportJob *self = g_new0 (VmiCacheImportJob, 1);

	self->cache = cache;
	return self;
}

void
vmi_cache_import_job_free (VmiCacheImportJob *self)
{
	if (self == NULL)
		return;
	g_clear_pointer (&self->source, vmi_source_free);
	g_clear_pointer (&self->properties, g_hash_table_unref);
	g_free (self->name);
	g_free (self->origin);
	g_free (self);
}

/* The entries of a container: image, the main one, and images, all of them. */
static GVariant *
vmi_cache_job_bundle_result (GPtrArray *entries)
{
	g_autofree char *main_path = vmi_cache_job_image_path (vmi_cache_entry_get_id (entries->pdata[0]));
	GVariantBuilder builder, paths;

	g_variant_builder_init (&paths, G_VARIANT_TYPE ("ao"));
	for (guint i = 0; i < entries->len; i++) {
		g_autofree char *path = vmi_cache_job_image_path (
			vmi_cache_entry_get_id (entries->pdata[i]));

		g_variant_builder_add (&paths, "o", path);
	}
	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add (&builder, "{sv}", "image", g_variant_new_object_path (main_path));
	g_variant_builder_add (&builder, "{sv}", "images", g_variant_builder_end (&paths));
	return g_variant_builder_end (&builder);
}

static gboolean
vmi_cache_import_job_run_bundle (VmiCacheImportJob *self, VmiJobImpl *job,
				 GCancellable *cancellable, GVariant **result, GError **error)
{
	g_autoptr(GPtrArray) entries = NULL;

	entries = vmi_cache_import_bundle (self->cache, self->source, self->store_format,
					   self->raw_format, self->name, self->origin,
					   self->properties, vmi_cache_job_progress_cb, job,
					   cancellable, error);
	g_clear_pointer (&self->source, vmi_source_free);
	if (entries == NULL)
		return FALSE;
	*result = vmi_cache_job_bundle_result (entries);
	return TRUE;
}

gboolean
vmi_cache_import_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
			  GVariant **result, GError **error)
{
	VmiCacheImportJob *self = data;
	g_autoptr(VmiCacheEntry) entry = NULL;

	if (!vmi_cache_job_check_cancelled (cancellable, error))
		return FALSE;
	if (self->bundle)
		return vmi_cache_import_job_run_bundle (self, job, cancellable, result, error);
	entry = vmi_cache_import (self->cache, self->source, self->store_format, self->name,
				  self->origin, self->properties, vmi_cache_job_progress_cb, job,
				  cancellable, error);
	/* The source is not needed any more: do not keep the caller's file open while the job
	 * lingers on the bus. */
	g_clear_pointer (&self->source, vmi_source_free);
	if (entry == NULL)
		return FALSE;
	*result = vmi_cache_job_image_result (vmi_cache_entry_get_id (entry));
	return TRUE;
}

/* ---- Export ---- */

VmiCacheExportJob *
vmi_cache_export_job_new (VmiCache *cache, const char *id, GError **error)
{
	g_autoptr(VmiCacheExportJob) self = g_new0 (VmiCacheExportJob, 1);
	g_autoptr(VmiCacheEntry) entry = NULL;

	self->cache = cache;
	self->id = g_strdup (id);
	self->convert = vmi_convert_job_new ();
	entry = vmi_cache_hold (cache, id, error);
	if (entry == NULL)
		return NULL;
	self->held = TRUE;
	return g_steal_pointer (&self);
}

static void
vmi_cache_export_job_release (VmiCacheExportJob *self)
{
	if (!self->held)
		return;
	self->held = FALSE;
	vmi_cache_release (self->cache, self->id);
}

void
vmi_cache_export_job_free (VmiCacheExportJob *self)
{
	if (self == NULL)
		return;
	/* The temporary destination goes before the hold: nothing of the job is left. */
	g_clear_pointer (&self->convert, vmi_convert_job_free);
	vmi_cache_export_job_release (self);
	g_free (self->id);
	g_free (self);
}

gboolean
vmi_cache_export_job_open (VmiCacheExportJob *self, VmiRegistry *registry, GError **error)
{
	g_autoptr(VmiCacheEntry) entry = vmi_cache_lookup (self->cache, self->id, error);
	const VmiFormatPlugin *plugin;
	int fd;

	if (entry == NULL)
		return FALSE;
	plugin = vmi_registry_lookup (registry, vmi_cache_entry_get_format (entry), error);
	if (plugin == NULL) {
		g_prefix_error (error, "The cached image %s is stored as %s, which is not loaded: ",
				self->id, vmi_cache_entry_get_format (entry));
		return FALSE;
	}
	/* The daemon's own file, inside its cache: opened with the daemon's rights. */
	fd = open (vmi_cache_entry_get_path (entry), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int errsv = errno;

		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "Cannot open the cached image %s: %s",
			     vmi_cache_entry_get_path (entry), g_strerror (errsv));
		return FALSE;
	}
	self->convert->source = vmi_source_open_with (plugin, fd, -1, NULL, error);
	close (fd);
	if (self->convert->source == NULL) {
		g_prefix_error (error, "The cached image %s cannot be read (run Verify): ",
				self->id);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_cache_export_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
			  GVariant **result, GError **error)
{
	VmiCacheExportJob *self = data;
	g_autoptr(VmiCacheEntry) touched = NULL;
	g_autoptr(GError) error_touch = NULL;
	gboolean ok;

	ok = vmi_convert_job_run (job, self->convert, cancellable, result, error);
	/* The stored file is no longer read: close it before the entry may be evicted. */
	g_clear_pointer (&self->convert->source, vmi_source_free);
	if (ok) {
		touched = vmi_cache_touch (self->cache, self->id, &error_touch);
		if (touched == NULL)
			g_warning ("Cannot record the use of cached image %s: %s", self->id,
				   error_touch->message);
	}
	vmi_cache_export_job_release (self);
	return ok;
}

/* ---- Verify ---- */

VmiCacheVerifyJob *
vmi_cache_verify_job_new (VmiCache *cache, VmiRegistry *registry, const char *id)
{
	VmiCacheVerifyJob *self = g_new0 (VmiCacheVerifyJob, 1);

	self->cache = cache;
	self->registry = g_object_ref (registry);
	self->id = g_strdup (id);
	return self;
}

void
vmi_cache_verify_job_free (VmiCacheVerifyJob *self)
{
	if (self == NULL)
		return;
	g_clear_object (&self->registry);
	g_free (self->id);
	g_free (self);
}

gboolean
vmi_cache_verify_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
			  GVariant **result, GError **error)
{
	VmiCacheVerifyJob *self = data;

	if (!vmi_cache_job_check_cancelled (cancellable, error))
		return FALSE;
	if (!vmi_cache_verify (self->cache, self->id, self->registry, vmi_cache_job_progress_cb,
			       job, cancellable, error))
		return FALSE;
	*result = vmi_cache_job_image_result (self->id);
	return TRUE;
}
