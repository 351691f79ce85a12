/*
 * Following one job to its end for a command: a progress display, Ctrl-C (which cancels the job
 * when the command owns it) and the job's Result.
 */
#pragma once

#include "vmi-ctl.h"
#include "vmi-progress.h"

G_BEGIN_DECLS

typedef struct {
	const char *what;	/* "check", for messages */
	gboolean owns_job;	/* Ctrl-C cancels the job; otherwise it only stops waiting */
	GMainLoop *loop;
	VmiJob *job;
	VmiProgress *progress;
	GVariant *result;	/* the job's Result when it completed */
	char *state;		/* its final State */
	int exit_code;
	int signal_number;	/* the first SIGINT/SIGTERM/SIGHUP seen, 0 for none */
	gboolean cancel_sent;
	gboolean finished;
	guint signal_sources[3];
	guint cancel_timeout;
} VmiCtlFollow;

/* Signals are caught from here on, so a Ctrl-C before the job exists still cancels it. */
void vmi_ctl_follow_init (VmiCtlFollow *run, const char *what, gboolean owns_job,
			  gboolean quiet);
void vmi_ctl_follow_clear (VmiCtlFollow *run);

/*
 * The method that starts the job replied: follow job_path, or (job_path NULL) report
 * call_error as "vmimagectl: failed_what: Name: message".
 */
void vmi_ctl_follow_started (VmiCtlFollow *run, GDBusConnection *connection, const char *job_path,
			     const char *failed_what, const GError *call_error);

/*
 * Runs the main loop until the job ends. Returns VMI_CTL_EXIT_OK when it completed (its Result
 * in run->result), VMI_CTL_EXIT_FAILURE after printing why it failed, 128 + the signal when
 * interrupted.
 */
int vmi_ctl_follow_wait (VmiCtlFollow *run);

G_END_DECLS
