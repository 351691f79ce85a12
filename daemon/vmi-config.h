/* The daemon's settings: compiled-in defaults, then the config file, then the command line. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define VMI_CONFIG_GROUP "Daemon"
#define VMI_CONFIG_DEFAULT_MAX_PARALLEL_JOBS 2u
#define VMI_CONFIG_DEFAULT_JOB_LINGER_SECONDS 300u

typedef struct {
	char *plugin_dir;
	char *cache_dir;
	gboolean cache_dir_set;    /* by the file: then --session keeps it instead of XDG's */
	guint64 cache_limit;       /* bytes on disk; 0: no limit */
	guint max_parallel_jobs;   /* >= 1 */
	guint job_linger_seconds;  /* how long a finished job stays on the bus */
} VmiConfig;

VmiConfig *vmi_config_new (void); /* the compiled-in defaults */
void vmi_config_free (VmiConfig *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiConfig, vmi_config_free)

/*
 * Reads [Daemon] PluginDirectory, CacheDirectory, CacheLimit, MaxParallelJobs and JobLingerSeconds from
 * path. A missing file is fine unless required (the user named it); a malformed file or value,
 * or an unknown key, is an error so a typo does not silently keep the default.
 */
gboolean vmi_config_load_file (VmiConfig *self, const char *path, gboolean required, GError **error);

G_END_DECLS
