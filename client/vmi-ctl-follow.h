/*
 * Following one job to its end for a command: a progress display, Ctrl-C (which cancels the job
 * when the command owns it) and the job's Result. Every command that waits for a job uses it.
 */
#pragma once

#include <stdio.h>

#include "vmi-ctl.h"
#include "vmi-progress.h"

G_BEGIN_DECLS

typedef enum {
	VMI_CTL_FOLLOW_NONE = 0,
	/* The command started the job: Ctrl-C cancels it (a second one stops waiting). Without
	 * it, Ctrl-C only stops waiting and leaves the job alone. */
	VMI_CTL_FOLLOW_OWNS_JOB = 1 << 0,
	/* A job someone else cancelled is reported as "failed", not "was cancelled" (the words
	 * convert and cache have always used). */
	VMI_CTL_FOLLOW_CANCEL_IS_FAILURE = 1 << 1,
} VmiCtlFollowFlags;

typedef struct {
	const char *what;	/* "check", for messages */
	VmiCtlFollowFlags flags;
	const char *cancelled_note; /* after our Ctrl-C: what the cancelled job left, or NULL */
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

/*
 * Signals are caught from here on, so a Ctrl-C before the job exists still cancels it.
 * cancelled_note ends the message after our Ctrl-C cancelled the job ("check cancelled; NOTE");
 * it must outlive run. progress_out is where the display goes (a bar when it is a terminal,
 * "NN%" lines otherwise); NULL shows none.
 */
void vmi_ctl_follow_init (VmiCtlFollow *run, const char *what, VmiCtlFollowFlags flags,
			  const char *cancelled_note, FILE *progress_out);
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
