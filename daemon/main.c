/* vmimaged: inspects and converts VM disk images for D-Bus clients. */
#include "config.h"

#include <locale.h>
#include <malloc.h>
#include <stdlib.h>

#include "vmi-config.h"
#include "vmi-daemon.h"

/* The daemon may change directory later; keep the folder the user meant now. */
static void
vmi_main_make_absolute (char **path)
{
	g_autofree char *cwd = NULL;
	char *absolute;

	if (*path == NULL || g_path_is_absolute (*path))
		return;
	cwd = g_get_current_dir ();
	absolute = g_build_filename (cwd, *path, NULL);
	g_free (*path);
	*path = absolute;
}

int
main (int argc, char **argv)
{
	gboolean session = FALSE;
	gboolean replace = FALSE;
	gboolean verbose = FALSE;
	gboolean version = FALSE;
	g_autofree char *plugin_dir = NULL;
	g_autofree char *cache_dir = NULL;
	g_autofree char *config_file = NULL;
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiConfig) config = NULL;
	g_autoptr(VmiDaemon) daemon = NULL;
	const GOptionEntry entries[] = {
		{ "session", 0, 0, G_OPTION_ARG_NONE, &session,
		  "Serve on the session bus instead of the system bus (no polkit)", NULL },
		{ "replace", 'r', 0, G_OPTION_ARG_NONE, &replace,
		  "Take the bus name over from a running daemon", NULL },
		{ "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &plugin_dir,
		  "Load format plugins from DIR (default: " VMI_PLUGIN_DIR ")", "DIR" },
		{ "cache-dir", 0, 0, G_OPTION_ARG_FILENAME, &cache_dir,
		  "Keep the cache in DIR (default: " VMI_SYSTEM_CACHE_DIR
		  ", or $XDG_CACHE_HOME/vmimaged with --session)", "DIR" },
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
		  "Read settings from FILE (default: " VMI_CONFIG_FILE ")", "FILE" },
		{ "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debugging messages", NULL },
		{ "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
		{ NULL },
	};

	/*
	 * Each job thread (and its reader and deflate workers) would otherwise get a malloc arena
	 * of its own that keeps its pages after the job; the engine's big buffers are mmap'd, so
	 * what is left to malloc is small and two arenas do not contend.
	 */
	mallopt (M_ARENA_MAX, 2);
	setlocale (LC_ALL, "");
	context = g_option_context_new ("- inspect and convert VM disk images over D-Bus");
	g_option_context_add_main_entries (context, entries, NULL);
	if (!g_option_context_parse (context, &argc, &argv, &error)) {
		g_printerr ("vmimaged: %s\n", error->message);
		return EXIT_FAILURE;
	}
	if (version) {
		g_print ("vmimaged %s\n", VMI_VERSION);
		return EXIT_SUCCESS;
	}
	if (argc > 1) {
		g_printerr ("vmimaged: unexpected argument \"%s\"\n", argv[1]);
		return EXIT_FAILURE;
	}
	if (verbose)
		g_log_set_debug_enabled (TRUE);

	/* Compiled-in defaults, then the config file, then the command line. */
	config = vmi_config_new ();
	if (!vmi_config_load_file (config, config_file != NULL ? config_file : VMI_CONFIG_FILE,
				   config_file != NULL, &error)) {
		g_printerr ("vmimaged: %s\n", error->message);
		return EXIT_FAILURE;
	}
	vmi_main_make_absolute (&plugin_dir);
	vmi_main_make_absolute (&cache_dir);
	if (plugin_dir != NULL) {
		g_free (config->plugin_dir);
		config->plugin_dir = g_steal_pointer (&plugin_dir);
	}
	if (cache_dir != NULL) {
		g_free (config->cache_dir);
		config->cache_dir = g_steal_pointer (&cache_dir);
	} else if (session && !config->cache_dir_set) {
		/* A session daemon runs as the user: the system cache is not its to write. */
		g_free (config->cache_dir);
		config->cache_dir = g_build_filename (g_get_user_cache_dir (), "vmimaged", NULL);
	}

	daemon = vmi_daemon_new (g_steal_pointer (&config), &error);
	if (daemon == NULL) {
		g_printerr ("vmimaged: %s\n", error->message);
		return EXIT_FAILURE;
	}
	return vmi_daemon_run (daemon, session, replace);
}
