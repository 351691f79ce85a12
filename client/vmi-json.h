/* GVariant to JSON, for vmimagectl --json: no json-glib at run time. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Appends value as JSON to out. Dictionaries with string keys become objects, other arrays and
 * tuples arrays, variants are unwrapped, integers are exact (a uint64 keeps all its digits),
 * doubles that JSON cannot hold (NaN, infinities) are null, an empty maybe is null. indent is
 * the number of spaces per level; 0 writes everything on one line.
 */
void vmi_json_append (GString *out, GVariant *value, guint indent);

/* The same as a new string, ending with a newline when indent > 0. */
char *vmi_json_from_variant (GVariant *value, guint indent);

/* Appends text as a JSON string literal: quotes, backslashes and control characters escaped. */
void vmi_json_append_string (GString *out, const char *text);

G_END_DECLS
