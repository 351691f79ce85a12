/* The progress display of a job: a bar on a terminal, "NN%" lines for logs and pipes. */
#pragma once

#include <stdio.h>

#include <glib.h>

G_BEGIN_DECLS

typedef struct _VmiProgress VmiProgress;

/* Writes to out; a bar redrawn in place when tty is TRUE, otherwise whole lines; nothing when
 * out is NULL. */
VmiProgress *vmi_progress_new (FILE *out, gboolean tty);
void vmi_progress_free (VmiProgress *progress);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiProgress, vmi_progress_free)

/* rate is bytes per second, 0 when unknown. */
void vmi_progress_update (VmiProgress *progress, double fraction, guint64 bytes_done,
			  guint64 bytes_total, guint64 rate);
/* Ends the display (the bar's line) so that what follows starts on a new line. */
void vmi_progress_end (VmiProgress *progress);

/*
 * One bar line of at most width columns: "[=====>    ]  45%  12.3 MiB/s  ETA 0:42".
 * eta_seconds < 0 means unknown. Exposed for the tests.
 */
char *vmi_progress_render_bar (double fraction, guint64 rate, gint64 eta_seconds, guint width);

/* The terminal's width in columns for fd, or $COLUMNS, or 80. */
guint vmi_progress_terminal_width (int fd);

G_END_DECLS
