/*
 * The daemon's jobs: numbering, export under /org/vmimaged/VMImage1/jobs/N, a limit on how many
 * run at once, and removal from the bus some time after they finish.
 */
#pragma once

#include "vmi-job.h"

G_BEGIN_DECLS

typedef struct _VmiJobQueue VmiJobQueue;

VmiJobQueue *vmi_job_queue_new (GDBusObjectManagerServer *object_manager, guint max_parallel,
				guint linger_seconds);
void vmi_job_queue_free (VmiJobQueue *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiJobQueue, vmi_job_queue_free)

/* Exports job (queued) and starts it when a slot is free. Returns its object path. */
const char *vmi_job_queue_add (VmiJobQueue *self, VmiJobImpl *job);

/* The job exported at object_path, or NULL. */
VmiJobImpl *vmi_job_queue_lookup (VmiJobQueue *self, const char *object_path);

/* Cancels every job; queued ones start at once so that they clean up. */
void vmi_job_queue_cancel_all (VmiJobQueue *self);

/* Jobs not finished yet. */
guint vmi_job_queue_get_n_active (VmiJobQueue *self);

/* Called (main thread) each time the number of active jobs drops to zero. */
void vmi_job_queue_set_idle_func (VmiJobQueue *self, GSourceFunc func, gpointer user_data);

G_END_DECLS
