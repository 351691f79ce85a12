/* Following a job: progress, Ctrl-C, the end. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <glib-unix.h>

#include "vmi-ctl-follow.h"

/* After Cancel, how long to wait for the job to say it stopped before giving up on it. */
#define FOLLOW_CANCEL_TIMEOUT_SECONDS 30

static void
follow_finish (VmiCtlFollow *run, int exit_code)
{
	if (run->finished)
		return;
	run->finished = TRUE;
	run->exit_code = exit_code;
	vmi_progress_end (run->progress);
	g_main_loop_quit (run->loop);
}

static void
follow_ended (VmiCtlFollow *run, const char *state, const char *error_name, const char *message)
{
	if (run->finished)
		return;
	g_free (run->state);
	run->state = g_strdup (state);
	if (g_strcmp0 (state, "completed") == 0) {
		vmi_progress_update (run->progress, 1.0, 0, 0, 0);
		run->result = vmi_job_dup_result (run->job);
		follow_finish (run, VMI_CTL_EXIT_OK);
		return;
	}
	vmi_progress_end (run->progress);
	if (g_strcmp0 (state, "cancelled") == 0 && run->signal_number != 0) {
		g_printerr ("vmimagectl: %s cancelled%s%s\n", run->what,
			    run->cancelled_note != NULL ? "; " : "",
			    run->cancelled_note != NULL ? run->cancelled_note : "");
		follow_finish (run, 128 + run->signal_number);
		return;
	}
	g_printerr ("vmimagectl: %s %s: %s: %s\n", run->what,
		    g_strcmp0 (state, "cancelled") == 0 &&
		    !(run->flags & VMI_CTL_FOLLOW_CANCEL_IS_FAILURE) ? "was cancelled" : "failed",
		    vmi_ctl_error_short_name (error_name),
		    message != NULL && *message != '\0' ? message : "(no message)");
	follow_finish (run, VMI_CTL_EXIT_FAILURE);
}

static void
follow_check_state (VmiCtlFollow *run)
{
	const char *state = vmi_job_get_state (run->job);

	if (g_strcmp0 (state, "completed") == 0 || g_strcmp0 (state, "failed") == 0 ||
	    g_strcmp0 (state, "cancelled") == 0)
		follow_ended (run, state, vmi_job_get_error (run->job),
			      vmi_job_get_error_message (run->job));
}

static void
on_completed (VmiJob *job, const char *state, const char *error_name, const char *message,
	      VmiCtlFollow *run)
{
	follow_ended (run, state, error_name, message);
}

static void
on_progress (VmiJob *job, double fraction, guint64 done, guint64 total, guint64 rate,
	     VmiCtlFollow *run)
{
	if (!run->finished)
		vmi_progress_update (run->progress, fraction, done, total, rate);
}

static void
on_properties_changed (GDBusProxy *proxy, GVariant *changed, GStrv invalidated,
		       VmiCtlFollow *run)
{
	follow_check_state (run);
}

static void
on_name_owner (GObject *object, GParamSpec *pspec, VmiCtlFollow *run)
{
	g_autofree char *owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (object));

	if (owner != NULL || run->finished)
		return;
	vmi_progress_end (run->progress);
	g_printerr ("vmimagectl: %s failed: vmimaged left the bus before the job ended\n",
		    run->what);
	follow_finish (run, VMI_CTL_EXIT_FAILURE);
}

static void
on_cancel_done (GObject *object, GAsyncResult *result, gpointer user_data)
{
	VmiCtlFollow *run = user_data;
	g_autoptr (GError) error = NULL;

	if (vmi_job_call_cancel_finish (VMI_JOB (object), result, &error))
		return;
	vmi_progress_end (run->progress);
	vmi_ctl_fail ("cannot cancel the job", error);
	follow_finish (run, 128 + run->signal_number);
}

static gboolean
on_cancel_timeout (gpointer user_data)
{
	VmiCtlFollow *run = user_data;

	run->cancel_timeout = 0;
	vmi_progress_end (run->progress);
	g_printerr ("vmimagectl: the job did not stop within %d s of being cancelled; giving up "
		    "on it\n", FOLLOW_CANCEL_TIMEOUT_SECONDS);
	follow_finish (run, 128 + run->signal_number);
	return G_SOURCE_REMOVE;
}

static void
follow_send_cancel (VmiCtlFollow *run)
{
	if (run->cancel_sent || run->job == NULL || run->finished)
		return;
	run->cancel_sent = TRUE;
	vmi_job_call_cancel (run->job, NULL, on_cancel_done, run);
	run->cancel_timeout = g_timeout_add_seconds (FOLLOW_CANCEL_TIMEOUT_SECONDS,
						     on_cancel_timeout, run);
}

static void
on_signal (VmiCtlFollow *run, int signal_number)
{
	gboolean owns_job = (run->flags & VMI_CTL_FOLLOW_OWNS_JOB) != 0;

	if (run->signal_number != 0 || !owns_job) {
		/* Not our job, or a second interrupt: stop waiting, leave the job alone. The exit
		 * status names the interrupt that cancelled the job, if one did. */
		vmi_progress_end (run->progress);
		if (owns_job)
			g_printerr ("vmimagectl: interrupted again; not waiting for the job\n");
		follow_finish (run, 128 + (run->signal_number != 0 ? run->signal_number
								 : signal_number));
		return;
	}
	run->signal_number = signal_number;
	vmi_progress_end (run->progress);
	g_printerr ("vmimagectl: cancelling…\n");
	/* Before the job exists, the method's reply sends the cancel. */
	follow_send_cancel (run);
}

static gboolean
on_sigint (gpointer user_data)
{
	on_signal (user_data, SIGINT);
	return G_SOURCE_CONTINUE;
}

static gboolean
on_sigterm (gpointer user_data)
{
	on_signal (user_data, SIGTERM);
	return G_SOURCE_CONTINUE;
}

static gboolean
on_sighup (gpointer user_data)
{
	on_signal (user_data, SIGHUP);
	return G_SOURCE_CONTINUE;
}

void
vmi_ctl_follow_init (VmiCtlFollow *run, const char *what, VmiCtlFollowFlags flags,
		     const char *cancelled_note, FILE *progress_out)
{
	run->what = what;
	run->flags = flags;
	run->cancelled_note = cancelled_note;
	run->loop = g_main_loop_new (NULL, FALSE);
	run->progress = vmi_progress_new (progress_out,
					  progress_out != NULL && isatty (fileno (progress_out)));
	run->signal_sources[0] = g_unix_signal_add (SIGINT, on_sigint, run);
	run->signal_sources[1] = g_unix_signal_add (SIGTERM, on_sigterm, run);
	run->signal_sources[2] = g_unix_signal_add (SIGHUP, on_sighup, run);
}

void
vmi_ctl_follow_clear (VmiCtlFollow *run)
{
	for (guint i = 0; i < G_N_ELEMENTS (run->signal_sources); i++)
		g_clear_handle_id (&run->signal_sources[i], g_source_remove);
	g_clear_handle_id (&run->cancel_timeout, g_source_remove);
	if (run->job != NULL)
		g_signal_handlers_disconnect_by_data (run->job, run);
	g_clear_object (&run->job);
	g_clear_pointer (&run->progress, vmi_progress_free);
	g_clear_pointer (&run->loop, g_main_loop_unref);
	g_clear_pointer (&run->result, g_variant_unref);
	g_clear_pointer (&run->state, g_free);
}

void
vmi_ctl_follow_started (VmiCtlFollow *run, GDBusConnection *connection, const char *job_path,
			const char *failed_what, const GError *call_error)
{
	g_autoptr (GError) error = NULL;

	if (job_path == NULL) {
		follow_finish (run, vmi_ctl_fail (failed_what, call_error));
		return;
	}
	/* Subscribing loads the properties after the signal match is in place, so nothing is
	 * missed between the two: either the properties show the end, or a signal will. */
	run->job = vmi_job_proxy_new_sync (connection, G_DBUS_PROXY_FLAGS_NONE, VMI_CTL_BUS_NAME,
					   job_path, NULL, &error);
	if (run->job == NULL) {
		follow_finish (run, vmi_ctl_fail ("cannot follow the job", error));
		return;
	}
	if (vmi_job_get_state (run->job) == NULL) {
		g_printerr ("vmimagectl: %s: there is no job %s\n", run->what, job_path);
		follow_finish (run, VMI_CTL_EXIT_FAILURE);
		return;
	}
	g_signal_connect (run->job, "completed", G_CALLBACK (on_completed), run);
	g_signal_connect (run->job, "progress", G_CALLBACK (on_progress), run);
	g_signal_connect (run->job, "g-properties-changed", G_CALLBACK (on_properties_changed), run);
	g_signal_connect (run->job, "notify::g-name-owner", G_CALLBACK (on_name_owner), run);
	vmi_progress_update (run->progress, vmi_job_get_fraction (run->job),
			     vmi_job_get_bytes_done (run->job), vmi_job_get_bytes_total (run->job),
			     vmi_job_get_rate (run->job));
	if (run->signal_number != 0)
		follow_send_cancel (run);
	follow_check_state (run);
}

int
vmi_ctl_follow_wait (VmiCtlFollow *run)
{
	if (!run->finished)
		g_main_loop_run (run->loop);
	return run->exit_code;
}
