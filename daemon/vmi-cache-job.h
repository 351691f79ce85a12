/*
 * The work of the cache's jobs: CacheImport (store a source), Image.Export (convert the stored
 * file into the caller's destination while the entry is held) and Image.Verify.
 */
#pragma once

#include "vmi-cache.h"
#include "vmi-convert-job.h"
#include "vmi-job.h"

G_BEGIN_DECLS

#define VMI_DBUS_IMAGES_PATH "/org/vmimaged/VMImage1/images/"

/* The object path of the Image with this id. */
char *vmi_cache_job_image_path (const char *id);

typedef struct {
	VmiCache *cache;		/* the daemon's; outlives every job */
	VmiSource *source;
	const VmiFormatPlugin *store_format;
	char *name;			/* nullable */
	char *origin;			/* Source of the entry: the path, or "fd" */
	GHashTable *properties;		/* nullable, string → string */
	/* A container (vmi_cache_bundle_is_container): each member becomes an entry, kernels
	 * and ramdisks stored as raw_format. */
	gboolean bundle;
	const VmiFormatPlugin *raw_format;
} VmiCacheImportJob;

VmiCacheImportJob *vmi_cache_import_job_new (VmiCache *cache);
void vmi_cache_import_job_free (VmiCacheImportJob *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiCacheImportJob, vmi_cache_import_job_free)
/* A VmiJobFunc; data is a VmiCacheImportJob. Result: image (o); for a container also images
 * (ao), every entry it gave, image first. */
gboolean vmi_cache_import_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
				   GVariant **result, GError **error);

/*
 * An export holds its entry from vmi_cache_export_job_new until the job has run (or, for a job
 * that never started, until it is freed), so the stored file it reads is never evicted.
 */
typedef struct {
	VmiCache *cache;
	char *id;
	gboolean held;
	VmiConvertJob *convert;		/* its source is the stored file */
} VmiCacheExportJob;

/* Holds the entry; NULL with VMI_ERROR_INVALID_ARGUMENT if there is no such entry. */
VmiCacheExportJob *vmi_cache_export_job_new (VmiCache *cache, const char *id, GError **error);
void vmi_cache_export_job_free (VmiCacheExportJob *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiCacheExportJob, vmi_cache_export_job_free)
/* Opens the entry's stored file with the plugin of its format, as convert->source. */
gboolean vmi_cache_export_job_open (VmiCacheExportJob *self, VmiRegistry *registry,
				    GError **error);
/* A VmiJobFunc; data is a VmiCacheExportJob. Result as for Convert. */
gboolean vmi_cache_export_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
				   GVariant **result, GError **error);

typedef struct {
	VmiCache *cache;
	VmiRegistry *registry;
	char *id;
} VmiCacheVerifyJob;

VmiCacheVerifyJob *vmi_cache_verify_job_new (VmiCache *cache, VmiRegistry *registry,
					     const char *id);
void vmi_cache_verify_job_free (VmiCacheVerifyJob *self);
/* A VmiJobFunc; data is a VmiCacheVerifyJob. Result: image (o). */
gboolean vmi_cache_verify_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
				   GVariant **result, GError **error);

G_END_DECLS
