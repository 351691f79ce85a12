/* Progress display: the bar on a terminal, and plain lines where a bar would be noise. */
#include "config.h"

#include <math.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmi-ctl.h"
#include "vmi-progress.h"

/* Plain lines within one tenth at most this often (µs), so a log does not get a line per
 * signal. */
#define VMI_PROGRESS_LINE_INTERVAL G_USEC_PER_SEC

struct _VmiProgress {
	FILE *out;
	gboolean tty;
	gboolean drawn;	 /* the bar's line is open */
	int last_percent; /* last printed in plain mode, -1 for none */
	gint64 last_line_time;
	guint width;
};

VmiProgress *
vmi_progress_new (FILE *out, gboolean tty)
{
	VmiProgress *progress = g_new0 (VmiProgress, 1);

	progress->out = out;
	progress->tty = tty;
	progress->last_percent = -1;
	if (tty && out != NULL)
		progress->width = vmi_progress_terminal_width (fileno (out));
	return progress;
}

void
vmi_progress_free (VmiProgress *progress)
{
	g_free (progress);
}

guint
vmi_progress_terminal_width (int fd)
{
	struct winsize ws = { 0 };
	const char *columns;
	guint64 n;

	if (ioctl (fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	columns = g_getenv ("COLUMNS");
	if (columns != NULL && g_ascii_string_to_unsigned (columns, 10, 20, 1000, &n, NULL))
		return (guint) n;
	return 80;
}

static int
percent_of (double fraction)
{
	if (!(fraction > 0.0))
		return 0;
	if (fraction >= 1.0)
		return 100;
	/* Round down, so 100% only shows when the daemon says the job is all done. */
	return (int) floor (fraction * 100.0);
}

char *
vmi_progress_render_bar (double fraction, guint64 rate, gint64 eta_seconds, guint width)
{
	g_autoptr (GString) tail = g_string_new (NULL);
	GString *line = g_string_new (NULL);
	int percent = percent_of (fraction);
	guint bar_width, filled;

	g_string_append_printf (tail, " %3d%%", percent);
	if (rate > 0) {
		g_autofree char *size = vmi_ctl_format_size (rate);

		g_string_append_printf (tail, "  %s/s", size);
	}
	if (eta_seconds >= 0) {
		if (eta_seconds >= 3600)
			g_string_append_printf (tail, "  ETA %" G_GINT64_FORMAT ":%02d:%02d",
						eta_seconds / 3600, (int) (eta_seconds / 60 % 60),
						(int) (eta_seconds % 60));
		else
			g_string_append_printf (tail, "  ETA %d:%02d", (int) (eta_seconds / 60),
						(int) (eta_seconds % 60));
	}

	/* Leave the last column free: writing into it makes some terminals wrap. */
	if (width < tail->len + 8) {
		g_string_append (line, tail->str + 1);
		return g_string_free (line, FALSE);
	}
	bar_width = MIN (width - 1 - (guint) tail->len - 2, 60u);
	filled = (guint) ((double) bar_width * CLAMP (fraction, 0.0, 1.0));
	g_string_append_c (line, '[');
	for (guint i = 0; i < bar_width; i++) {
		if (i < filled)
			g_string_append_c (line, '=');
		else if (i == filled)
			g_string_append_c (line, '>');
		else
			g_string_append_c (line, ' ');
	}
	g_string_append_c (line, ']');
	g_string_append (line, tail->str);
	return g_string_free (line, FALSE);
}

static gint64
eta_of (guint64 bytes_done, guint64 bytes_total, guint64 rate)
{
	if (rate == 0 || bytes_total == 0 || bytes_done > bytes_total)
		return -1;
	return (gint64) ((bytes_total - bytes_done + rate - 1) / rate);
}

void
vmi_progress_update (VmiProgress *progress, double fraction, guint64 bytes_done,
		     guint64 bytes_total, guint64 rate)
{
	int percent = percent_of (fraction);

	if (progress->out == NULL)
		return;
	if (progress->tty) {
		g_autofree char *bar = vmi_progress_render_bar (
			fraction, rate, eta_of (bytes_done, bytes_total, rate), progress->width);

		/* \r and erase-to-end-of-line: a shorter line must not leave bits of the last. */
		fprintf (progress->out, "\r%s\033[K", bar);
		fflush (progress->out);
		progress->drawn = TRUE;
		return;
	}

	if (percent == progress->last_percent)
		return;
	/* A line for each new tenth and at most one a second in between: a short job still shows
	 * its steps, a long one does not flood the log. */
	if (percent != 100 && progress->last_percent >= 0 &&
	    percent / 10 == progress->last_percent / 10 &&
	    g_get_monotonic_time () - progress->last_line_time < VMI_PROGRESS_LINE_INTERVAL)
		return;
	fprintf (progress->out, "%d%%\n", percent);
	fflush (progress->out);
	progress->last_percent = percent;
	progress->last_line_time = g_get_monotonic_time ();
}

void
vmi_progress_end (VmiProgress *progress)
{
	if (progress->out != NULL && progress->tty && progress->drawn) {
		fputc ('\n', progress->out);
		fflush (progress->out);
		progress->drawn = FALSE;
	}
}
