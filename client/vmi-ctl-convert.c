/* vmimagectl convert: starts a Convert job, shows its progress and waits for its end. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <glib-unix.h>

#include "vmi-ctl.h"
#include "vmi-progress.h"

/* After Cancel, how long to wait for the job to say it stopped before giving up on it. */
#define CANCEL_TIMEOUT_SECONDS 30

typedef struct {
	GMainLoop *loop;
	VmiManager *manager;
	VmiJob *job;
	VmiProgress *progress;
	char *destination;
	int exit_code;
	int signal_number; /* the first SIGINT/SIGTERM/SIGHUP seen, 0 for none */
	gboolean cancel_sent;
	gboolean finished;
	guint signal_sources[3];
	guint cancel_timeout;
} ConvertRun;

static void
convert_run_clear (ConvertRun *run)
{
	for (guint i = 0; i < G_N_ELEMENTS (run->signal_sources); i++)
		g_clear_handle_id (&run->signal_sources[i], g_source_remove);
	g_clear_handle_id (&run->cancel_timeout, g_source_remove);
	if (run->job != NULL)
		g_signal_handlers_disconnect_by_data (run->job, run);
	g_clear_object (&run->job);
	g_clear_object (&run->manager);
	g_clear_pointer (&run->progress, vmi_progress_free);
	g_clear_pointer (&run->loop, g_main_loop_unref);
	g_clear_pointer (&run->destination, g_free);
}

static void
finish (ConvertRun *run, int exit_code)
{
	if (run->finished)
		return;
	run->finished = TRUE;
	run->exit_code = exit_code;
	g_main_loop_quit (run->loop);
}

static void
print_result (ConvertRun *run)
{
	g_autoptr (GVariant) result = vmi_job_dup_result (run->job);
	g_autoptr (GVariantDict) dict = g_variant_dict_new (result);
	const char *destination = run->destination;
	const char *format = "?";
	guint64 virtual_size = 0, file_size = 0;
	g_autofree char *vsize = NULL;
	g_autofree char *fsize = NULL;

	g_variant_dict_lookup (dict, "destination", "&s", &destination);
	g_variant_dict_lookup (dict, "format", "&s", &format);
	g_variant_dict_lookup (dict, "virtual-size", "t", &virtual_size);
	g_variant_dict_lookup (dict, "file-size", "t", &file_size);
	vsize = vmi_ctl_format_size (virtual_size);
	fsize = vmi_ctl_format_size (file_size);
	g_print ("wrote %s: %s, virtual size %s, file size %s\n", destination, format, vsize, fsize);
}

/* The job's final state, from the Completed signal or, if we came late, from its properties. */
static void
job_ended (ConvertRun *run, const char *state, const char *error_name, const char *message)
{
	if (run->finished)
		return;
	if (g_strcmp0 (state, "completed") == 0) {
		vmi_progress_update (run->progress, 1.0, 0, 0, 0);
		vmi_progress_end (run->progress);
		print_result (run);
		finish (run, VMI_CTL_EXIT_OK);
		return;
	}
	vmi_progress_end (run->progress);
	if (g_strcmp0 (state, "cancelled") == 0 && run->signal_number != 0) {
		g_printerr ("vmimagectl: convert cancelled; %s was not written\n", run->destination);
		finish (run, 128 + run->signal_number);
		return;
	}
	g_printerr ("vmimagectl: convert failed: %s: %s\n", vmi_ctl_error_short_name (error_name),
		    message != NULL && *message != '\0' ? message : "(no message)");
	finish (run, VMI_CTL_EXIT_FAILURE);
}

static gboolean
state_is_final (const char *state)
{
	return g_strcmp0 (state, "completed") == 0 || g_strcmp0 (state, "failed") == 0 ||
	       g_strcmp0 (state, "cancelled") == 0;
}

static void
check_properties (ConvertRun *run)
{
	const char *state = vmi_job_get_state (run->job);

	if (state_is_final (state))
		job_ended (run, state, vmi_job_get_error (run->job),
			   vmi_job_get_error_message (run->job));
}

static void
on_completed (VmiJob *job, const char *state, const char *error_name, const char *message,
	      ConvertRun *run)
{
	job_ended (run, state, error_name, message);
}

static void
on_progress (VmiJob *job, double fraction, guint64 bytes_done, guint64 bytes_total, guint64 rate,
	     ConvertRun *run)
{
	if (!run->finished)
		vmi_progress_update (run->progress, fraction, bytes_done, bytes_total, rate);
}

static void
on_properties_changed (GDBusProxy *proxy, GVariant *changed, GStrv invalidated, ConvertRun *run)
{
	/* Completed normally says it first; this covers a daemon that only updates State. */
	check_properties (run);
}

static void
on_name_owner (GObject *object, GParamSpec *pspec, ConvertRun *run)
{
	g_autofree char *owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (object));

	if (owner != NULL || run->finished)
		return;
	vmi_progress_end (run->progress);
	g_printerr ("vmimagectl: convert failed: vmimaged left the bus before the job ended\n");
	finish (run, VMI_CTL_EXIT_FAILURE);
}

static void
on_cancel_done (GObject *object, GAsyncResult *result, gpointer user_data)
{
	ConvertRun *run = user_data;
	g_autoptr (GError) error = NULL;

	if (vmi_job_call_cancel_finish (VMI_JOB (object), result, &error))
		return;
	vmi_progress_end (run->progress);
	vmi_ctl_fail ("cannot cancel the job", error);
	finish (run, 128 + run->signal_number);
}

static gboolean
on_cancel_timeout (gpointer user_data)
{
	ConvertRun *run = user_data;

	run->cancel_timeout = 0;
	vmi_progress_end (run->progress);
	g_printerr ("vmimagectl: the job did not stop within %d s of being cancelled; giving up "
		    "on it\n", CANCEL_TIMEOUT_SECONDS);
	finish (run, 128 + run->signal_number);
	return G_SOURCE_REMOVE;
}

static void
send_cancel (ConvertRun *run)
{
	if (run->cancel_sent || run->job == NULL || run->finished)
		return;
	run->cancel_sent = TRUE;
	vmi_job_call_cancel (run->job, NULL, on_cancel_done, run);
	run->cancel_timeout = g_timeout_add_seconds (CANCEL_TIMEOUT_SECONDS, on_cancel_timeout, run);
}

static void
on_signal (ConvertRun *run, int signal_number)
{
	if (run->signal_number != 0) {
		/* A second interrupt: the user does not want to wait for the cancellation. */
		vmi_progress_end (run->progress);
		g_printerr ("vmimagectl: interrupted again; not waiting for the job\n");
		finish (run, 128 + run->signal_number);
		return;
	}
	run->signal_number = signal_number;
	vmi_progress_end (run->progress);
	g_printerr ("vmimagectl: cancelling…\n");
	/* Before the job exists, Convert's reply sends the cancel. */
	send_cancel (run);
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

static void
on_convert_done (GObject *object, GAsyncResult *result, gpointer user_data)
{
	ConvertRun *run = user_data;
	g_autoptr (GError) error = NULL;
	g_autofree char *job_path = NULL;

	if (!vmi_manager_call_convert_finish (VMI_MANAGER (object), &job_path, result, &error)) {
		g_autofree char *what = g_strdup_printf ("cannot convert to %s", run->destination);

		finish (run, vmi_ctl_fail (what, error));
		return;
	}

	/* Subscribing loads the properties after the signal match is in place, so nothing is
	 * missed between the two: either the properties show the end, or a signal will. */
	run->job = vmi_job_proxy_new_sync (g_dbus_proxy_get_connection (G_DBUS_PROXY (object)),
					   G_DBUS_PROXY_FLAGS_NONE, VMI_CTL_BUS_NAME, job_path,
					   NULL, &error);
	if (run->job == NULL) {
		finish (run, vmi_ctl_fail ("cannot follow the job", error));
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
		send_cancel (run);
	check_properties (run);
}

int
vmi_ctl_convert (VmiCtl *ctl, int argc, char **argv)
{
	g_autofree char *out_format = NULL;
	g_autofree char *source_format = NULL;
	g_auto (GStrv) create_options = NULL;
	gboolean overwrite = FALSE;
	gboolean quiet = FALSE;
	const GOptionEntry entries[] = {
		{ "output-format", 'O', 0, G_OPTION_ARG_STRING, &out_format,
		  "Write the destination in FORMAT (see vmimagectl formats)", "FORMAT" },
		{ "source-format", 'f', 0, G_OPTION_ARG_STRING, &source_format,
		  "Skip detection and read the source as FORMAT", "FORMAT" },
		{ "option", 'o', 0, G_OPTION_ARG_STRING_ARRAY, &create_options,
		  "A create option of the destination format (repeatable): numbers, "
		  "true/false or strings", "KEY=VALUE" },
		{ "overwrite", 0, 0, G_OPTION_ARG_NONE, &overwrite,
		  "Replace the destination if it exists", NULL },
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Show no progress", NULL },
		{ NULL }
	};
	ConvertRun run = { 0 };
	g_autoptr (GError) error = NULL;
	g_autoptr (GVariantDict) options = g_variant_dict_new (NULL);
	g_autofree char *source = NULL;
	int exit_code;

	if (!vmi_ctl_parse_args (ctl, "convert", "SOURCE DESTINATION -O FORMAT",
				 "Converts a disk image into another format in a vmimaged job.\n"
				 "The destination appears only when the job completes; Ctrl-C "
				 "cancels the job and leaves nothing behind.",
				 "Examples:\n"
				 "  vmimagectl convert disk.qcow2 disk.img -O raw\n"
				 "  vmimagectl convert -o cluster-size=64K a.img b.qcow2 -O qcow2\n\n"
				 "Exit status: 0 when the job completed, 1 when it failed, 130 when "
				 "interrupted by Ctrl-C.",
				 entries, 2, 2, &argc, &argv))
		return VMI_CTL_EXIT_USAGE;
	if (out_format == NULL) {
		g_printerr ("vmimagectl convert: the destination format is missing (-O FORMAT)\n");
		g_printerr ("Try 'vmimagectl convert --help'.\n");
		return VMI_CTL_EXIT_USAGE;
	}
	for (guint i = 0; create_options != NULL && create_options[i] != NULL; i++) {
		if (!vmi_ctl_add_key_value (options, create_options[i], &error)) {
			g_printerr ("vmimagectl convert: %s\n", error->message);
			return VMI_CTL_EXIT_USAGE;
		}
	}
	if (overwrite)
		g_variant_dict_insert (options, "overwrite", "b", TRUE);
	if (source_format != NULL)
		g_variant_dict_insert (options, "source-format", "s", source_format);
	/* The job belongs to this command: if we die unexpectedly, the daemon cancels it. */
	g_variant_dict_insert (options, "cancel-on-disconnect", "b", TRUE);

	source = vmi_ctl_absolute_path (argv[1]);
	run.destination = vmi_ctl_absolute_path (argv[2]);
	run.manager = vmi_ctl_get_manager (ctl, &error);
	if (run.manager == NULL) {
		g_free (run.destination);
		return vmi_ctl_fail ("convert", error);
	}
	run.loop = g_main_loop_new (NULL, FALSE);
	run.progress = vmi_progress_new (quiet ? NULL : stdout, isatty (STDOUT_FILENO));

	/* Signals are caught before the job exists, so an early Ctrl-C still cancels it. */
	run.signal_sources[0] = g_unix_signal_add (SIGINT, on_sigint, &run);
	run.signal_sources[1] = g_unix_signal_add (SIGTERM, on_sigterm, &run);
	run.signal_sources[2] = g_unix_signal_add (SIGHUP, on_sighup, &run);

	vmi_manager_call_convert (run.manager, source, run.destination, out_format,
				  g_variant_dict_end (options), NULL, on_convert_done, &run);
	g_main_loop_run (run.loop);

	exit_code = run.exit_code;
	convert_run_clear (&run);
	return exit_code;
}
