/* The set of format plugins the daemon loaded, and detection across them. */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

#define VMI_TYPE_REGISTRY (vmi_registry_get_type ())
G_DECLARE_FINAL_TYPE (VmiRegistry, vmi_registry, VMI, REGISTRY, GObject)

VmiRegistry *vmi_registry_new (void);

/*
 * Loads every module in dir. A module that cannot be opened, has another ABI version, lacks an
 * entry point, declines in init or repeats a format name is skipped with a warning; only an
 * unreadable directory is an error.
 */
gboolean vmi_registry_load_dir (VmiRegistry *self, const char *dir, GError **error);

/* Adds a plugin that is linked in (tests, fuzzers). VMI_ERROR_EXISTS on a duplicate name. */
gboolean vmi_registry_add (VmiRegistry *self, const VmiFormatPlugin *plugin, GError **error);

/* Plugins in load order. */
GPtrArray *vmi_registry_get_plugins (VmiRegistry *self);

/* By name or alias, case-insensitive; NULL with VMI_ERROR_UNKNOWN_FORMAT naming the known ones. */
const VmiFormatPlugin *vmi_registry_lookup (VmiRegistry *self, const char *name, GError **error);

/*
 * The plugin with the highest probe score for the file behind fd, which is read at offset 0 with
 * pread. Ties go to the plugin loaded first. NULL with VMI_ERROR_UNKNOWN_FORMAT if all say 0.
 */
const VmiFormatPlugin *vmi_registry_probe_fd (VmiRegistry *self, int fd, GError **error);
/*
 * The same, also asking the VMI_FORMAT_CLASSIFY_ONLY plugins when classify is TRUE. When
 * others is non-NULL, the other plugins that were sure (VMI_PROBE_LIKELY or more) are appended
 * to it: a file two parsers accept is a polyglot, read differently by different tools.
 */
const VmiFormatPlugin *vmi_registry_classify_fd (VmiRegistry *self, int fd, gboolean classify,
						 GPtrArray *others, GError **error);

/*
 * The same for the byte range [offset, offset + size) of fd: an image stored inside another
 * file (an OVA's disk), probed from the range's own head and tail.
 */
const VmiFormatPlugin *vmi_registry_classify_range (VmiRegistry *self, int fd, guint64 offset,
						    guint64 size, gboolean classify,
						    GPtrArray *others, GError **error);

/* Formats property: a{sa{sv}} with description, extensions, aliases, can-inspect/read/write. */
GVariant *vmi_registry_describe (VmiRegistry *self);

G_END_DECLS
