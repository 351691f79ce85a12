/*
 * A job's thread runs at background priority unless the job was given VMI_PRIORITY_NORMAL: the
 * job object itself (daemon/vmi-job.c) without a bus, its work reading the thread's nice value
 * where the kernel shows it, /proc/self/task/<tid>/stat.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmi-job.h"

typedef struct {
	int nice;
	int ioprio;
	gboolean finished;
} JobProbe;

static int
thread_nice_from_proc (void)
{
	g_autofree char *path = g_strdup_printf ("/proc/self/task/%ld/stat", (long) gettid ());
	g_autofree char *contents = NULL;
	g_auto(GStrv) fields = NULL;
	const char *after_comm;

	g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
	after_comm = strrchr (contents, ')');
	g_assert_nonnull (after_comm);
	fields = g_strsplit (after_comm + 2, " ", -1);
	g_assert_cmpuint (g_strv_length (fields), >, 16);
	return atoi (fields[16]);
}

static gboolean
probe_work (VmiJobImpl *job, gpointer data, GCancellable *cancellable, GVariant **result,
	    GError **error)
{
	JobProbe *probe = data;

	probe->nice = thread_nice_from_proc ();
	probe->ioprio = vmi_priority_get_thread_ioprio ();
	return TRUE;
}

static void
finished_cb (VmiJobImpl *job, gpointer user_data)
{
	((JobProbe *) user_data)->finished = TRUE;
}

static void
run_job (gboolean set, VmiPriority priority, JobProbe *probe)
{
	g_autoptr(VmiJobImpl) job = vmi_job_impl_new ("probe", getuid (), NULL, 1, probe_work,
						      probe, NULL);
	gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

	if (set)
		vmi_job_impl_set_priority (job, priority);
	g_assert_cmpint (vmi_job_impl_get_priority (job), ==, set ? priority : VMI_PRIORITY_BACKGROUND);
	g_signal_connect (job, "finished", G_CALLBACK (finished_cb), probe);
	vmi_job_impl_start (job);
	while (!probe->finished && g_get_monotonic_time () < end)
		g_main_context_iteration (NULL, TRUE);
	g_assert_true (probe->finished);
	g_assert_cmpstr (vmi_job_get_state (VMI_JOB (job)), ==, "completed");
}

static void
test_job_priority (void)
{
	int base_nice = thread_nice_from_proc ();
	int base_ioprio = vmi_priority_get_thread_ioprio ();
	JobProbe by_default = { 0 }, background = { 0 }, normal = { 0 };

	run_job (FALSE, 0, &by_default);
	run_job (TRUE, VMI_PRIORITY_BACKGROUND, &background);
	run_job (TRUE, VMI_PRIORITY_NORMAL, &normal);
	g_test_message ("nice: daemon %d, default job %d, background %d, normal %d", base_nice,
			by_default.nice, background.nice, normal.nice);
	g_assert_cmpint (by_default.nice, ==, MIN (base_nice + 10, 19));
	g_assert_cmpint (background.nice, ==, MIN (base_nice + 10, 19));
	g_assert_cmpint (normal.nice, ==, base_nice);
	/* IOPRIO_CLASS_IDLE (3) in the class bits (from bit 13) */
	g_assert_cmpint (by_default.ioprio >> 13, ==, 3);
	g_assert_cmpint (background.ioprio >> 13, ==, 3);
	g_assert_cmpint (normal.ioprio, ==, base_ioprio);
	/* The thread that started the jobs (the daemon's main thread) is untouched. */
	g_assert_cmpint (thread_nice_from_proc (), ==, base_nice);
	g_assert_cmpint (vmi_priority_get_thread_ioprio (), ==, base_ioprio);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/job/priority", test_job_priority);
	return g_test_run ();
}
