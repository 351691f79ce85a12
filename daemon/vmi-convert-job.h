/*
 * The work of a Convert or ConvertFd job: run the engine into the output, then either publish
 * the output (rename the temporary file over the destination) or remove every trace of it.
 */
#pragma once

#include "vmi-caller.h"
#include "vmi-job.h"
#include "vmi-source.h"

G_BEGIN_DECLS

typedef struct {
	VmiCaller *caller;		/* whose identity renames and removes files */
	VmiSource *source;
	const VmiFormatPlugin *plugin;	/* of the destination */
	GVariant *options;		/* normalized Convert options */
	int out_fd;			/* the temporary file, or the caller's fd for ConvertFd */
	int dir_fd;			/* the destination's folder; -1 for ConvertFd */
	char *dest_path;		/* NULL for ConvertFd */
	char *dest_name;		/* basename of dest_path */
	char *tmp_name;			/* in dir_fd; NULL once renamed or removed */
	gboolean overwrite;
} VmiConvertJob;

VmiConvertJob *vmi_convert_job_new (void);
/* Closes the fds; a temporary file still there is removed (a job that never ran). */
void vmi_convert_job_free (VmiConvertJob *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiConvertJob, vmi_convert_job_free)

/* A VmiJobFunc; data is a VmiConvertJob. Result: destination, format, virtual-size, file-size. */
gboolean vmi_convert_job_run (VmiJobImpl *job, gpointer data, GCancellable *cancellable,
			      GVariant **result, GError **error);

G_END_DECLS
