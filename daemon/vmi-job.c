/* One background operation, exported as an org.vmimaged.VMImage1.Job. */
#include "config.h"

#include "vmi-dbus-error.h"
#include "vmi-job.h"
#include "vmi-plugin.h"

/* Progress is sampled (and signalled) this often: "at most about ten a second". */
#define VMI_JOB_TICK_MS 100
/* Rate is the average over this window. */
#define VMI_JOB_RATE_WINDOW_US (3 * G_USEC_PER_SEC)

typedef struct {
	gint64 time; /* monotonic, µs */
	guint64 bytes;
} VmiJobSample;

struct _VmiJobImpl {
	VmiJobSkeleton parent_instance;

	uid_t owner;
	char *owner_sender;
	GCancellable *cancellable;
	VmiJobFunc func;
	gpointer data;
	GDestroyNotify data_free;
	VmiPriority priority;

	/* Written by the work thread, read by the main thread. */
	GMutex lock;
	guint64 bytes_done;
	guint64 bytes_total;

	/* Main thread only. */
	gboolean started;
	gboolean finished;
	guint tick_id;
	guint watch_id;
	guint64 emitted_done;
	gint64 emitted_time;
	GArray *samples;

	/* Handed from the work thread to the main thread. */
	gboolean ok;
	GVariant *result;
	GError *error;
};

G_DEFINE_TYPE (VmiJobImpl, vmi_job_impl, VMI_TYPE_JOB_SKELETON)

enum { SIGNAL_FINISHED, SIGNAL_CANCEL_REQUESTED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

static void
vmi_job_impl_finalize (GObject *object)
{
	VmiJobImpl *self = VMI_JOB_IMPL (object);

	g_clear_handle_id (&self->tick_id, g_source_remove);
	g_clear_handle_id (&self->watch_id, g_bus_unwatch_name);
	if (self->data_free != NULL && self->data != NULL)
		self->data_free (self->data);
	g_free (self->owner_sender);
	g_clear_object (&self->cancellable);
	g_mutex_clear (&self->lock);
	g_array_unref (self->samples);
	g_clear_pointer (&self->result, g_variant_unref);
	g_clear_error (&self->error);
	G_OBJECT_CLASS (vmi_job_impl_parent_class)->finalize (object);
}

static void
vmi_job_impl_class_init (VmiJobImplClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS (klass);

	object_class->finalize = vmi_job_impl_finalize;
	signals[SIGNAL_FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass),
						 G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
						 G_TYPE_NONE, 0);
	signals[SIGNAL_CANCEL_REQUESTED] = g_signal_new ("cancel-requested",
							 G_TYPE_FROM_CLASS (klass),
							 G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
							 G_TYPE_NONE, 0);
}

static void
vmi_job_impl_init (VmiJobImpl *self)
{
	g_mutex_init (&self->lock);
	self->cancellable = g_cancellable_new ();
	self->samples = g_array_new (FALSE, FALSE, sizeof (VmiJobSample));
}

VmiJobImpl *
vmi_job_impl_new (const char *operation, uid_t owner, const char *owner_sender,
		  guint64 bytes_total, VmiJobFunc func, gpointer data, GDestroyNotify data_free)
{
	VmiJobImpl *self = g_object_new (VMI_TYPE_JOB_IMPL, NULL);
	VmiJob *iface = VMI_JOB (self);

	self->owner = owner;
	self->owner_sender = g_strdup (owner_sender);
	self->func = func;
	self->data = data;
	self->data_free = data_free;
	self->bytes_total = bytes_total;
	vmi_job_set_operation (iface, operation);
	vmi_job_set_state (iface, "queued");
	vmi_job_set_owner (iface, (guint) owner);
	vmi_job_set_bytes_total (iface, bytes_total);
	vmi_job_set_error (iface, "");
	vmi_job_set_error_message (iface, "");
	vmi_job_set_result (iface, g_variant_new ("a{sv}", NULL));
	return self;
}

void
vmi_job_impl_set_priority (VmiJobImpl *self, VmiPriority priority)
{
	g_return_if_fail (!self->started);
	self->priority = priority;
}

VmiPriority
vmi_job_impl_get_priority (VmiJobImpl *self)
{
	return self->priority;
}

const char *
vmi_job_impl_get_owner_sender (VmiJobImpl *self)
{
	return self->owner_sender;
}

uid_t
vmi_job_impl_get_owner_uid (VmiJobImpl *self)
{
	return self->owner;
}

GCancellable *
vmi_job_impl_get_cancellable (VmiJobImpl *self)
{
	return self->cancellable;
}

gboolean
vmi_job_impl_is_queued (VmiJobImpl *self)
{
	return !self->started;
}

gboolean
vmi_job_impl_is_finished (VmiJobImpl *self)
{
	return self->finished;
}

const char *
vmi_job_impl_get_object_path (VmiJobImpl *self)
{
	GDBusObject *object = g_dbus_interface_get_object (G_DBUS_INTERFACE (self));

	return object != NULL ? g_dbus_object_get_object_path (object) : NULL;
}

void
vmi_job_impl_report_progress (VmiJobImpl *self, guint64 bytes_done, guint64 bytes_total)
{
	g_mutex_lock (&self->lock);
	self->bytes_done = bytes_done;
	self->bytes_total = bytes_total;
	g_mutex_unlock (&self->lock);
}

/* Bytes per second over the last few seconds of samples; 0 until there is enough to say. */
static guint64
vmi_job_impl_update_rate (VmiJobImpl *self, gint64 now, guint64 done)
{
	VmiJobSample sample = { now, done };
	const VmiJobSample *oldest;
	guint drop = 0;

	g_array_append_val (self->samples, sample);
	while (drop + 1 < self->samples->len &&
	       now - g_array_index (self->samples, VmiJobSample, drop).time > VMI_JOB_RATE_WINDOW_US)
		drop++;
	if (drop > 0)
		g_array_remove_range (self->samples, 0, drop);
	oldest = &g_array_index (self->samples, VmiJobSample, 0);
	if (now - oldest->time < G_USEC_PER_SEC / 5 || done < oldest->bytes)
		return 0;
	return (guint64) ((gdouble) (done - oldest->bytes) * G_USEC_PER_SEC /
			  (gdouble) (now - oldest->time));
}

static void
vmi_job_impl_publish_progress (VmiJobImpl *self, gboolean force)
{
	VmiJob *iface = VMI_JOB (self);
	gint64 now = g_get_monotonic_time ();
	guint64 done, total, rate;
	gdouble fraction;

	g_mutex_lock (&self->lock);
	done = self->bytes_done;
	total = self->bytes_total;
	g_mutex_unlock (&self->lock);

	rate = vmi_job_impl_update_rate (self, now, done);
	if (!force && done == self->emitted_done && self->emitted_time != 0)
		return;
	fraction = total > 0 ? MIN (1.0, (gdouble) done / (gdouble) total) : 0.0;
	vmi_job_set_fraction (iface, fraction);
	vmi_job_set_bytes_done (iface, done);
	vmi_job_set_bytes_total (iface, total);
	vmi_job_set_rate (iface, rate);
	if (rate > 0 && total > done)
		vmi_job_set_expected_end_time (iface, (guint64) g_get_real_time () +
						      (guint64) ((gdouble) (total - done) *
								 G_USEC_PER_SEC / (gdouble) rate));
	else
		vmi_job_set_expected_end_time (iface, 0);
	g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (self));
	vmi_job_emit_progress (iface, fraction, done, total, rate);
	self->emitted_done = done;
	self->emitted_time = now;
}

static gboolean
vmi_job_impl_tick_cb (gpointer user_data)
{
	vmi_job_impl_publish_progress (VMI_JOB_IMPL (user_data), FALSE);
	return G_SOURCE_CONTINUE;
}

static gboolean
vmi_job_impl_finished_cb (gpointer user_data)
{
	g_autoptr(VmiJobImpl) self = VMI_JOB_IMPL (user_data);
	VmiJob *iface = VMI_JOB (self);
	const char *state = "completed";
	const char *error_name = "";
	const char *message = "";

	g_clear_handle_id (&self->tick_id, g_source_remove);
	g_clear_handle_id (&self->watch_id, g_bus_unwatch_name);
	self->finished = TRUE;
	if (self->ok) {
		/* Final numbers; the last Progress says 1.0 even if the previous tick was recent. */
		g_mutex_lock (&self->lock);
		self->bytes_done = self->bytes_total;
		g_mutex_unlock (&self->lock);
		vmi_job_impl_publish_progress (self, FALSE);
		if (self->result != NULL)
			vmi_job_set_result (iface, self->result);
	} else {
		vmi_dbus_error_normalize (&self->error);
		state = g_error_matches (self->error, VMI_ERROR, VMI_ERROR_CANCELLED) ? "cancelled"
										       : "failed";
		error_name = vmi_dbus_error_name (self->error->code);
		message = self->error->message;
		vmi_job_set_error (iface, error_name);
		vmi_job_set_error_message (iface, message);
	}
	/*
	 * A finished job stays on the bus for JobLingerSeconds; what its work held (the source
	 * image and its plugin's tables, the caller's descriptors) goes now, not then.
	 */
	if (self->data_free != NULL && self->data != NULL)
		self->data_free (g_steal_pointer (&self->data));
	vmi_job_set_rate (iface, 0);
	vmi_job_set_expected_end_time (iface, 0);
	vmi_job_set_state (iface, state);
	/* Completed comes after the properties have their final values. */
	g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (self));
	vmi_job_emit_completed (iface, state, error_name, message);
	if (self->ok)
		g_info ("Job %s completed", vmi_job_impl_get_object_path (self));
	else
		g_info ("Job %s %s: %s", vmi_job_impl_get_object_path (self),
			state, message);
	g_signal_emit (self, signals[SIGNAL_FINISHED], 0);
	return G_SOURCE_REMOVE;
}

static gpointer
vmi_job_impl_thread (gpointer user_data)
{
	VmiJobImpl *self = VMI_JOB_IMPL (user_data);
	g_autoptr(GVariant) result = NULL;
	GError *error = NULL;
	VmiPrioritySaved saved;

	/* Threads the work starts (the reader, the deflate pool) inherit the priority. */
	vmi_priority_apply (self->priority, &saved);
	/* Even a job cancelled while queued runs its function, which cleans up what it holds. */
	self->ok = self->func (self, self->data, self->cancellable, &result, &error);
	/* The thread ends here; put things back anyway, in case it is ever pooled. */
	(void) vmi_priority_restore (&saved);
	if (self->ok && g_cancellable_is_cancelled (self->cancellable) && result == NULL) {
		self->ok = FALSE;
		g_set_error_literal (&error, VMI_ERROR, VMI_ERROR_CANCELLED, "The job was cancelled");
	}
	if (!self->ok && error == NULL)
		g_set_error_literal (&error, VMI_ERROR, VMI_ERROR_FAILED, "The job failed");
	if (result != NULL)
		self->result = g_variant_ref_sink (g_steal_pointer (&result));
	self->error = error;
	/* The main thread takes over the reference this thread held. */
	g_idle_add (vmi_job_impl_finished_cb, self);
	return NULL;
}

void
vmi_job_impl_start (VmiJobImpl *self)
{
	g_autoptr(GError) error = NULL;
	GThread *thread;

	g_return_if_fail (!self->started);
	self->started = TRUE;
	vmi_job_set_state (VMI_JOB (self), "running");
	vmi_job_impl_publish_progress (self, TRUE);
	self->tick_id = g_timeout_add (VMI_JOB_TICK_MS, vmi_job_impl_tick_cb, self);
	thread = g_thread_try_new ("vmi-job", vmi_job_impl_thread, g_object_ref (self), &error);
	if (thread == NULL) {
		g_autoptr(GVariant) result = NULL;
		g_autoptr(GError) error_cleanup = NULL;

		/* Let the work clean up, cancelled before it started, then report why. */
		g_cancellable_cancel (self->cancellable);
		(void) self->func (self, self->data, self->cancellable, &result, &error_cleanup);
		self->ok = FALSE;
		self->error = g_error_new (VMI_ERROR, VMI_ERROR_FAILED, "Cannot start a thread: %s",
					   error->message);
		g_idle_add (vmi_job_impl_finished_cb, self);
		return;
	}
	g_thread_unref (thread);
}

void
vmi_job_impl_cancel (VmiJobImpl *self)
{
	if (self->finished || g_cancellable_is_cancelled (self->cancellable))
		return;
	g_cancellable_cancel (self->cancellable);
	g_signal_emit (self, signals[SIGNAL_CANCEL_REQUESTED], 0);
}

static void
vmi_job_impl_owner_vanished_cb (GDBusConnection *connection, const char *name, gpointer user_data)
{
	VmiJobImpl *self = VMI_JOB_IMPL (user_data);

	g_info ("Cancelling job %s: its caller %s left the bus",
		vmi_job_impl_get_object_path (self), name);
	vmi_job_impl_cancel (self);
}

void
vmi_job_impl_watch_owner (VmiJobImpl *self, GDBusConnection *connection)
{
	if (self->owner_sender == NULL || self->finished)
		return;
	g_clear_handle_id (&self->watch_id, g_bus_unwatch_name);
	self->watch_id = g_bus_watch_name_on_connection (connection, self->owner_sender,
							 G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
							 vmi_job_impl_owner_vanished_cb, self, NULL);
}
