/* The daemon's jobs: numbering, export, a limit on parallel work, removal after a while. */
#include "config.h"

#include "vmi-job-queue.h"

#define VMI_JOB_PATH_PREFIX "/org/vmimaged/VMImage1/jobs/"

struct _VmiJobQueue {
	GDBusObjectManagerServer *object_manager;
	guint max_parallel;
	guint linger_seconds;
	guint64 next_id;
	GPtrArray *jobs; /* of VmiJobImpl, not yet removed from the bus, in start order */
	GHashTable *linger_ids; /* VmiJobImpl -> timeout id */
	GSourceFunc idle_func;
	gpointer idle_data;
};

static void vmi_job_queue_schedule (VmiJobQueue *self);

VmiJobQueue *
vmi_job_queue_new (GDBusObjectManagerServer *object_manager, guint max_parallel,
		   guint linger_seconds)
{
	VmiJobQueue *self = g_new0 (VmiJobQueue, 1);

	self->object_manager = g_object_ref (object_manager);
	self->max_parallel = MAX (max_parallel, 1);
	self->linger_seconds = linger_seconds;
	self->next_id = 1;
	self->jobs = g_ptr_array_new_with_free_func (g_object_unref);
	self->linger_ids = g_hash_table_new (NULL, NULL);
	return self;
}

void
vmi_job_queue_free (VmiJobQueue *self)
{
	GHashTableIter iter;
	gpointer value;

	if (self == NULL)
		return;
	g_hash_table_iter_init (&iter, self->linger_ids);
	while (g_hash_table_iter_next (&iter, NULL, &value))
		g_source_remove (GPOINTER_TO_UINT (value));
	g_hash_table_unref (self->linger_ids);
	for (guint i = 0; i < self->jobs->len; i++)
		g_signal_handlers_disconnect_by_data (g_ptr_array_index (self->jobs, i), self);
	g_ptr_array_unref (self->jobs);
	g_object_unref (self->object_manager);
	g_free (self);
}

guint
vmi_job_queue_get_n_active (VmiJobQueue *self)
{
	guint n = 0;

	for (guint i = 0; i < self->jobs->len; i++) {
		if (!vmi_job_impl_is_finished (g_ptr_array_index (self->jobs, i)))
			n++;
	}
	return n;
}

void
vmi_job_queue_set_idle_func (VmiJobQueue *self, GSourceFunc func, gpointer user_data)
{
	self->idle_func = func;
	self->idle_data = user_data;
}

static void
vmi_job_queue_remove (VmiJobQueue *self, VmiJobImpl *job)
{
	g_autofree char *path = g_strdup (vmi_job_impl_get_object_path (job));

	g_debug ("Removing job %s from the bus", path);
	g_dbus_object_manager_server_unexport (self->object_manager, path);
	g_signal_handlers_disconnect_by_data (job, self);
	g_ptr_array_remove (self->jobs, job);
}

typedef struct {
	VmiJobQueue *queue;
	VmiJobImpl *job;
} VmiJobQueueLinger;

static gboolean
vmi_job_queue_linger_cb (gpointer user_data)
{
	VmiJobQueueLinger *linger = user_data;

	g_hash_table_remove (linger->queue->linger_ids, linger->job);
	vmi_job_queue_remove (linger->queue, linger->job);
	return G_SOURCE_REMOVE;
}

static void
vmi_job_queue_finished_cb (VmiJobImpl *job, gpointer user_data)
{
	VmiJobQueue *self = user_data;
	VmiJobQueueLinger *linger = g_new0 (VmiJobQueueLinger, 1);
	guint id;

	linger->queue = self;
	linger->job = job;
	id = g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, self->linger_seconds,
					 vmi_job_queue_linger_cb, linger, g_free);
	g_hash_table_insert (self->linger_ids, job, GUINT_TO_POINTER (id));
	vmi_job_queue_schedule (self);
	if (vmi_job_queue_get_n_active (self) == 0 && self->idle_func != NULL)
		self->idle_func (self->idle_data);
}

static void
vmi_job_queue_cancel_requested_cb (VmiJobImpl *job, gpointer user_data)
{
	vmi_job_queue_schedule (user_data);
}

static void
vmi_job_queue_schedule (VmiJobQueue *self)
{
	guint running = 0;

	for (guint i = 0; i < self->jobs->len; i++) {
		VmiJobImpl *job = g_ptr_array_index (self->jobs, i);

		if (!vmi_job_impl_is_queued (job) && !vmi_job_impl_is_finished (job))
			running++;
	}
	for (guint i = 0; i < self->jobs->len; i++) {
		VmiJobImpl *job = g_ptr_array_index (self->jobs, i);
		gboolean cancelled;

		if (!vmi_job_impl_is_queued (job))
			continue;
		/* A cancelled job takes no slot for long: it only removes its temporary file. */
		cancelled = g_cancellable_is_cancelled (vmi_job_impl_get_cancellable (job));
		if (!cancelled && running >= self->max_parallel)
			continue;
		vmi_job_impl_start (job);
		if (!cancelled)
			running++;
	}
}

const char *
vmi_job_queue_add (VmiJobQueue *self, VmiJobImpl *job)
{
	g_autofree char *path = g_strdup_printf (VMI_JOB_PATH_PREFIX "%" G_GUINT64_FORMAT,
						 self->next_id++);
	g_autoptr(VmiObjectSkeleton) object = vmi_object_skeleton_new (path);

	vmi_object_skeleton_set_job (object, VMI_JOB (job));
	g_dbus_object_manager_server_export (self->object_manager, G_DBUS_OBJECT_SKELETON (object));
	g_ptr_array_add (self->jobs, g_object_ref (job));
	g_signal_connect (job, "finished", G_CALLBACK (vmi_job_queue_finished_cb), self);
	g_signal_connect (job, "cancel-requested", G_CALLBACK (vmi_job_queue_cancel_requested_cb),
			  self);
	vmi_job_queue_schedule (self);
	return vmi_job_impl_get_object_path (job);
}

VmiJobImpl *
vmi_job_queue_lookup (VmiJobQueue *self, const char *object_path)
{
	for (guint i = 0; i < self->jobs->len; i++) {
		VmiJobImpl *job = g_ptr_array_index (self->jobs, i);
		const char *path = vmi_job_impl_get_object_path (job);

		if (g_strcmp0 (path, object_path) == 0)
			return job;
	}
	return NULL;
}

void
vmi_job_queue_cancel_all (VmiJobQueue *self)
{
	g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func (g_object_unref);

	/* Cancelling may start queued jobs and change the list: work on a copy. */
	for (guint i = 0; i < self->jobs->len; i++)
		g_ptr_array_add (jobs, g_object_ref (g_ptr_array_index (self->jobs, i)));
	for (guint i = 0; i < jobs->len; i++)
		vmi_job_impl_cancel (g_ptr_array_index (jobs, i));
}
