/*
 * One background operation, exported as an org.vmimaged.VMImage1.Job.
 *
 * The work runs in its own thread; the job reports progress from there and the main thread turns
 * it into properties and Progress signals, at most about ten a second. All D-Bus state changes
 * happen on the main thread.
 */
#pragma once

#include <sys/types.h>

#include "vmi-generated.h"
#include "vmi-priority.h"

G_BEGIN_DECLS

#define VMI_TYPE_JOB_IMPL (vmi_job_impl_get_type ())
G_DECLARE_FINAL_TYPE (VmiJobImpl, vmi_job_impl, VMI, JOB_IMPL, VmiJobSkeleton)

/*
 * The work, run in the job's thread. It must honour cancellable and, whether it succeeds or not,
 * leave nothing half-done behind (remove partial outputs) before it returns. On success it may
 * set *result (a floating or full a{sv}) for the Result property.
 */
typedef gboolean (*VmiJobFunc) (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
				GVariant **result, GError **error);

VmiJobImpl *vmi_job_impl_new (const char *operation, uid_t owner, const char *owner_sender,
			      guint64 bytes_total, VmiJobFunc func, gpointer data,
			      GDestroyNotify data_free);

/* Before vmi_job_impl_start: the CPU and I/O priority of the job's thread (default
 * VMI_PRIORITY_BACKGROUND). */
void vmi_job_impl_set_priority (VmiJobImpl *self, VmiPriority priority);
VmiPriority vmi_job_impl_get_priority (VmiJobImpl *self);

/* The path the job is exported at, or NULL before it is. */
const char *vmi_job_impl_get_object_path (VmiJobImpl *self);
const char *vmi_job_impl_get_owner_sender (VmiJobImpl *self);
uid_t vmi_job_impl_get_owner_uid (VmiJobImpl *self);
GCancellable *vmi_job_impl_get_cancellable (VmiJobImpl *self);
gboolean vmi_job_impl_is_queued (VmiJobImpl *self);
gboolean vmi_job_impl_is_finished (VmiJobImpl *self);

/* Main thread: starts the work thread. Signal "finished" follows when it is done. */
void vmi_job_impl_start (VmiJobImpl *self);

/* Main thread: asks the job to stop; emits "cancel-requested" so a queued job can be started
 * at once to clean up. Does nothing to a finished job. */
void vmi_job_impl_cancel (VmiJobImpl *self);

/* Cancel the job when owner_sender leaves connection (cancel-on-disconnect). Main thread. */
void vmi_job_impl_watch_owner (VmiJobImpl *self, GDBusConnection *connection);

/* Any thread, typically the work thread: how much of the work is done. */
void vmi_job_impl_report_progress (VmiJobImpl *self, guint64 bytes_done, guint64 bytes_total);

G_END_DECLS
