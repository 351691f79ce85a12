/*
 * The work of the jobs that read images and write nothing: Check (and CheckFd), and Compare.
 * The sources are opened as the caller before the job is queued; the job only reads them.
 */
#pragma once

#include "vmi-job.h"
#include "vmi-source.h"

G_BEGIN_DECLS

typedef struct {
	VmiSource *source;
	GVariant *options; /* normalized Check options */
} VmiCheckJob;

VmiCheckJob *vmi_check_job_new (void);
void vmi_check_job_free (VmiCheckJob *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiCheckJob, vmi_check_job_free)
/* A VmiJobFunc; data is a VmiCheckJob. Result: vmi_check's. */
gboolean vmi_check_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
			    GVariant **result, GError **error);

typedef struct {
	VmiSource *a;
	VmiSource *b;
	GVariant *options; /* normalized Compare options */
} VmiCompareJob;

VmiCompareJob *vmi_compare_job_new (void);
void vmi_compare_job_free (VmiCompareJob *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiCompareJob, vmi_compare_job_free)
/* A VmiJobFunc; data is a VmiCompareJob. Result: vmi_compare's. */
gboolean vmi_compare_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
			      GVariant **result, GError **error);

G_END_DECLS
