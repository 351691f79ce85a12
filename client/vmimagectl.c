/* vmimagectl: the command-line client of vmimaged. Each command is in its own vmi-ctl-*.c. */
#include "config.h"

#include <locale.h>
#include <string.h>

#include "vmi-ctl.h"

typedef struct {
	const char *name;
	VmiCtlCommandFunc func;
	const char *summary;
} VmiCtlCommand;

static const VmiCtlCommand commands[] = {
	{ "inspect", vmi_ctl_inspect, "Show what a disk image is and whether it is safe" },
	{ "convert", vmi_ctl_convert, "Convert a disk image into another format" },
	{ "check", vmi_ctl_check, "Check a disk image for errors (and compute its digests)" },
	{ "compare", vmi_ctl_compare, "Compare the content of two disk images" },
	{ "measure", vmi_ctl_measure, "Show how large a conversion's output would be" },
	{ "formats", vmi_ctl_formats, "List the formats the daemon can handle" },
	{ "jobs", vmi_ctl_jobs, "List the daemon's jobs; wait for or cancel one" },
	{ "cache", vmi_ctl_cache, "Manage the image cache: import, list, export, rm, prune, verify, set" },
};

static char *
commands_description (void)
{
	GString *text = g_string_new ("Commands:\n");

	for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
		g_string_append_printf (text, "  %-10s %s\n", commands[i].name, commands[i].summary);
	g_string_append (text, "\nRun 'vmimagectl COMMAND --help' for a command's options.");
	return g_string_free (text, FALSE);
}

int
main (int argc, char **argv)
{
	VmiCtl ctl = { 0 };
	gboolean version = FALSE;
	const GOptionEntry entries[] = {
		{ "session", 0, 0, G_OPTION_ARG_NONE, &ctl.session,
		  "Talk to vmimaged on the session bus", NULL },
		{ "system", 0, 0, G_OPTION_ARG_NONE, &ctl.system,
		  "Talk to vmimaged on the system bus (the default)", NULL },
		{ "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
		{ NULL }
	};
	g_autoptr (GOptionContext) context = g_option_context_new ("COMMAND [ARGUMENTS…]");
	g_autoptr (GError) error = NULL;
	g_autofree char *description = commands_description ();

	setlocale (LC_ALL, "");
	g_option_context_set_summary (context, "Inspects and converts disk images with vmimaged.");
	g_option_context_set_description (context, description);
	g_option_context_add_main_entries (context, entries, NULL);
	/* Global options end at the command; the rest belongs to the command's own parser. */
	g_option_context_set_strict_posix (context, TRUE);
	if (!g_option_context_parse (context, &argc, &argv, &error)) {
		g_printerr ("vmimagectl: %s\nTry 'vmimagectl --help'.\n", error->message);
		return VMI_CTL_EXIT_USAGE;
	}
	if (version) {
		g_print ("vmimagectl %s\n", VMI_VERSION);
		return VMI_CTL_EXIT_OK;
	}
	if (argc < 2) {
		g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);

		g_printerr ("%s", help);
		return VMI_CTL_EXIT_USAGE;
	}
	for (gsize i = 0; i < G_N_ELEMENTS (commands); i++) {
		if (strcmp (argv[1], commands[i].name) == 0)
			return commands[i].func (&ctl, argc - 1, argv + 1);
	}
	g_printerr ("vmimagectl: unknown command \"%s\"\nTry 'vmimagectl --help'.\n", argv[1]);
	return VMI_CTL_EXIT_USAGE;
}
