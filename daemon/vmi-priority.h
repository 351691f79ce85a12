/*
 * The CPU and I/O priority of the thread that runs a job. Jobs run in the background unless
 * their caller asks otherwise, so a long conversion does not make the workstation sluggish.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

typedef enum {
	VMI_PRIORITY_BACKGROUND, /* nice +10 and the idle I/O class */
	VMI_PRIORITY_NORMAL,	 /* whatever the daemon runs at */
} VmiPriority;

/* The option that chooses it (Convert, CacheImport, Export): "background" or "normal". */
#define VMI_PRIORITY_OPTION "priority"
#define VMI_PRIORITY_OPTION_DESCRIPTION \
	"\"background\" (default: nice +10, idle I/O class) or \"normal\""

/* The "priority" entry of a normalized option dictionary; absent is background. Any other
 * value is VMI_ERROR_INVALID_ARGUMENT. */
gboolean vmi_priority_from_options (GVariant *normalized, VmiPriority *priority, GError **error);

/* What vmi_priority_apply changed on the calling thread, for vmi_priority_restore. */
typedef struct {
	gboolean nice_changed;
	gboolean ioprio_changed;
	int nice;
	int ioprio;
} VmiPrioritySaved;

/*
 * Sets the calling thread's nice value (+10 from where it is, at most 19) and I/O class (idle)
 * for VMI_PRIORITY_BACKGROUND; does nothing for NORMAL. Failures are logged, not fatal: a job
 * at the wrong priority still does its work. Threads the caller starts afterwards inherit it.
 */
void vmi_priority_apply (VmiPriority priority, VmiPrioritySaved *saved);

/*
 * Puts back what vmi_priority_apply changed. Lowering a nice value again needs CAP_SYS_NICE
 * (or RLIMIT_NICE): a daemon without it cannot restore, so FALSE says the thread is still
 * niced and must not be reused for other work at normal priority.
 */
gboolean vmi_priority_restore (const VmiPrioritySaved *saved);

/* The calling thread's nice value and raw I/O priority (IOPRIO_PRIO_VALUE), for tests. */
int vmi_priority_get_thread_nice (void);
int vmi_priority_get_thread_ioprio (void);

G_END_DECLS
