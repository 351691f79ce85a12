/* Validation of the a{sv} option dictionaries that every method takes. */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

/*
 * Checks options against up to two lists of specs (either may be NULL) and returns a new a{sv}
 * in which every integer is a "t" (any of y n q i u x t accepted; negative refused), booleans are
 * "b" and strings "s". An unknown name or a wrong type is VMI_ERROR_INVALID_ARGUMENT naming the
 * option. options may be NULL (empty).
 */
GVariant *vmi_options_normalize (GVariant *options, const VmiOptionSpec *specs,
				 const VmiOptionSpec *more_specs, GError **error);

/* Look-ups in a normalized dictionary. */
guint64 vmi_options_get_uint64 (GVariant *normalized, const char *name, guint64 fallback);
gboolean vmi_options_get_boolean (GVariant *normalized, const char *name, gboolean fallback);
const char *vmi_options_get_string (GVariant *normalized, const char *name, const char *fallback);

/* The dictionary without the named entries: what is left for a plugin. */
GVariant *vmi_options_filter (GVariant *normalized, const VmiOptionSpec *drop);

G_END_DECLS
