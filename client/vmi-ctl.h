/* Shared pieces of vmimagectl: the bus, the daemon's proxies, error reporting, argument parsing. */
#pragma once

#include <gio/gio.h>

#include "vmi-generated.h"

G_BEGIN_DECLS

#define VMI_CTL_BUS_NAME "org.vmimaged.VMImage1"
#define VMI_CTL_ROOT_PATH "/org/vmimaged/VMImage1"
#define VMI_CTL_MANAGER_PATH "/org/vmimaged/VMImage1/Manager"
#define VMI_CTL_ERROR_PREFIX "org.vmimaged.VMImage1.Error."

/* Exit codes: 130 follows the shell's 128 + SIGINT so scripts can tell an interrupt. */
typedef enum {
	VMI_CTL_EXIT_OK = 0,
	VMI_CTL_EXIT_FAILURE = 1,
	VMI_CTL_EXIT_USAGE = 2,
	VMI_CTL_EXIT_INTERRUPTED = 130,
} VmiCtlExit;

/* Settings every command shares. */
typedef struct {
	gboolean session;
	gboolean system;
} VmiCtl;

typedef int (*VmiCtlCommandFunc) (VmiCtl *ctl, int argc, char **argv);

int vmi_ctl_inspect (VmiCtl *ctl, int argc, char **argv);
int vmi_ctl_convert (VmiCtl *ctl, int argc, char **argv);
int vmi_ctl_formats (VmiCtl *ctl, int argc, char **argv);
int vmi_ctl_jobs (VmiCtl *ctl, int argc, char **argv);
int vmi_ctl_cache (VmiCtl *ctl, int argc, char **argv);
int vmi_ctl_check (VmiCtl *ctl, int argc, char **argv);
int vmi_ctl_compare (VmiCtl *ctl, int argc, char **argv);
int vmi_ctl_measure (VmiCtl *ctl, int argc, char **argv);

GBusType vmi_ctl_bus_type (const VmiCtl *ctl);

/*
 * Parses a command's arguments. entries may be NULL; the bus options are always added.
 * On --help GLib prints the help and exits 0; on a bad option prints why and returns FALSE.
 * n_args_min/n_args_max bound the positional arguments left in argv[1..].
 */
gboolean vmi_ctl_parse_args (VmiCtl *ctl, const char *command, const char *parameter_string,
			     const char *summary, const char *description,
			     const GOptionEntry *entries, int n_args_min, int n_args_max,
			     int *argc, char ***argv);

/* The bus the options chose; the error says which bus could not be reached. */
GDBusConnection *vmi_ctl_get_bus (VmiCtl *ctl, GError **error);

/* A proxy for the Manager; an error when nobody owns the bus name. */
VmiManager *vmi_ctl_get_manager (VmiCtl *ctl, GError **error);

/* Prints "vmimagectl: <what>: <ErrorName>: <message>" to stderr; returns VMI_CTL_EXIT_FAILURE. */
int vmi_ctl_fail (const char *what, const GError *error);

/* The last component of a D-Bus error name ("Exists" for org.vmimaged.VMImage1.Error.Exists). */
const char *vmi_ctl_error_short_name (const char *error_name);

/* path made absolute against the current folder (lexically; symlinks are the daemon's business). */
char *vmi_ctl_absolute_path (const char *path);

/*
 * Adds one "key=value" create option to dict: a decimal number (with an optional K, M, G, T
 * binary suffix) becomes a uint64, true/false/yes/no/on/off a boolean, anything else a string.
 */
gboolean vmi_ctl_add_key_value (GVariantDict *dict, const char *key_value, GError **error);
/* Each of key_values (may be NULL) as above; on a bad one prints "vmimagectl COMMAND: why". */
gboolean vmi_ctl_add_create_options (GVariantDict *dict, const char *command, char **key_values);
GVariant *vmi_ctl_parse_value (const char *text);

/* Sizes as qemu-img prints them: "1 GiB", "196 KiB", "1.5 MiB", "512 B". */
char *vmi_ctl_format_size (guint64 bytes);

G_END_DECLS
