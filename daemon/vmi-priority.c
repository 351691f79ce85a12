/* The CPU and I/O priority of a job's thread. */
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/ioprio.h>

#include "vmi-options.h"
#include "vmi-priority.h"

/* How much nicer a background job is than the daemon. */
#define VMI_PRIORITY_NICE_STEP 10

gboolean
vmi_priority_from_options (GVariant *normalized, VmiPriority *priority, GError **error)
{
	const char *name = vmi_options_get_string (normalized, VMI_PRIORITY_OPTION, "background");

	if (g_strcmp0 (name, "background") == 0) {
		*priority = VMI_PRIORITY_BACKGROUND;
		return TRUE;
	}
	if (g_strcmp0 (name, "normal") == 0) {
		*priority = VMI_PRIORITY_NORMAL;
		return TRUE;
	}
	g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
		     "option \"priority\" is \"%s\"; it must be \"background\" or \"normal\"", name);
	return FALSE;
}

/* setpriority with PRIO_PROCESS and a thread id acts on that one thread on Linux. */
static pid_t
vmi_priority_tid (void)
{
	return (pid_t) syscall (SYS_gettid);
}

int
vmi_priority_get_thread_nice (void)
{
	errno = 0;
	return getpriority (PRIO_PROCESS, (id_t) vmi_priority_tid ());
}

int
vmi_priority_get_thread_ioprio (void)
{
	return (int) syscall (SYS_ioprio_get, IOPRIO_WHO_PROCESS, vmi_priority_tid ());
}

void
vmi_priority_apply (VmiPriority priority, VmiPrioritySaved *saved)
{
	pid_t tid = vmi_priority_tid ();
	int nice_value, ioprio;

	*saved = (VmiPrioritySaved) { 0 };
	if (priority == VMI_PRIORITY_NORMAL)
		return;
	errno = 0;
	nice_value = getpriority (PRIO_PROCESS, (id_t) tid);
	if (nice_value == -1 && errno != 0) {
		g_warning ("Cannot read the priority of a job thread: %s", g_strerror (errno));
	} else if (setpriority (PRIO_PROCESS, (id_t) tid,
				MIN (nice_value + VMI_PRIORITY_NICE_STEP, 19)) != 0) {
		g_warning ("Cannot lower the CPU priority of a job thread: %s", g_strerror (errno));
	} else {
		saved->nice_changed = TRUE;
		saved->nice = nice_value;
	}
	ioprio = (int) syscall (SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid);
	if (ioprio < 0) {
		g_warning ("Cannot read the I/O priority of a job thread: %s", g_strerror (errno));
	} else if (syscall (SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid,
			    IOPRIO_PRIO_VALUE (IOPRIO_CLASS_IDLE, 0)) != 0) {
		g_warning ("Cannot lower the I/O priority of a job thread: %s", g_strerror (errno));
	} else {
		saved->ioprio_changed = TRUE;
		saved->ioprio = ioprio;
	}
}

gboolean
vmi_priority_restore (const VmiPrioritySaved *saved)
{
	pid_t tid = vmi_priority_tid ();
	gboolean ok = TRUE;

	if (saved->ioprio_changed &&
	    syscall (SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, saved->ioprio) != 0) {
		g_debug ("Cannot restore the I/O priority of a job thread: %s", g_strerror (errno));
		ok = FALSE;
	}
	if (saved->nice_changed && setpriority (PRIO_PROCESS, (id_t) tid, saved->nice) != 0) {
		g_debug ("Cannot restore the CPU priority of a job thread: %s", g_strerror (errno));
		ok = FALSE;
	}
	return ok;
}
