/* GVariant to JSON. D-Bus strings are valid UTF-8, so only escaping is needed, no transcoding. */
#include "config.h"

#include <math.h>

#include "vmi-json.h"

/* Containers nested this deep are not something the daemon sends; stop rather than recurse on.
 * (Nested variants do not count: GLib itself refuses messages with deeper nesting than D-Bus
 * allows.) */
#define VMI_JSON_MAX_DEPTH 64

void
vmi_json_append_string (GString *out, const char *text)
{
	const guchar *p;

	g_string_append_c (out, '"');
	for (p = (const guchar *) text; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			g_string_append (out, "\\\"");
			break;
		case '\\':
			g_string_append (out, "\\\\");
			break;
		case '\b':
			g_string_append (out, "\\b");
			break;
		case '\f':
			g_string_append (out, "\\f");
			break;
		case '\n':
			g_string_append (out, "\\n");
			break;
		case '\r':
			g_string_append (out, "\\r");
			break;
		case '\t':
			g_string_append (out, "\\t");
			break;
		default:
			/* DEL too: harmless in JSON, but it garbles a terminal. */
			if (*p < 0x20 || *p == 0x7f)
				g_string_append_printf (out, "\\u%04x", *p);
			else
				g_string_append_c (out, (char) *p);
		}
	}
	g_string_append_c (out, '"');
}

static void
append_newline (GString *out, guint indent, guint depth)
{
	if (indent == 0)
		return;
	g_string_append_c (out, '\n');
	for (guint i = 0; i < indent * depth; i++)
		g_string_append_c (out, ' ');
}

static void append_value (GString *out, GVariant *value, guint indent, guint depth);

static gboolean
is_object (GVariant *value)
{
	const GVariantType *type = g_variant_get_type (value);

	if (!g_variant_type_is_array (type))
		return FALSE;
	type = g_variant_type_element (type);
	if (!g_variant_type_is_dict_entry (type))
		return FALSE;
	type = g_variant_type_key (type);
	return g_variant_type_equal (type, G_VARIANT_TYPE_STRING) ||
	       g_variant_type_equal (type, G_VARIANT_TYPE_OBJECT_PATH) ||
	       g_variant_type_equal (type, G_VARIANT_TYPE_SIGNATURE);
}

static void
append_object (GString *out, GVariant *value, guint indent, guint depth)
{
	gsize n = g_variant_n_children (value);

	if (n == 0) {
		g_string_append (out, "{}");
		return;
	}
	g_string_append_c (out, '{');
	for (gsize i = 0; i < n; i++) {
		g_autoptr (GVariant) entry = g_variant_get_child_value (value, i);
		g_autoptr (GVariant) key = g_variant_get_child_value (entry, 0);
		g_autoptr (GVariant) member = g_variant_get_child_value (entry, 1);

		if (i > 0)
			g_string_append_c (out, ',');
		append_newline (out, indent, depth + 1);
		vmi_json_append_string (out, g_variant_get_string (key, NULL));
		g_string_append (out, indent > 0 ? ": " : ":");
		append_value (out, member, indent, depth + 1);
	}
	append_newline (out, indent, depth);
	g_string_append_c (out, '}');
}

/* Arrays, tuples and dictionaries whose keys are not strings (written as [key, value] pairs). */
static void
append_list (GString *out, GVariant *value, guint indent, guint depth)
{
	gsize n = g_variant_n_children (value);

	if (n == 0) {
		g_string_append (out, "[]");
		return;
	}
	g_string_append_c (out, '[');
	for (gsize i = 0; i < n; i++) {
		g_autoptr (GVariant) child = g_variant_get_child_value (value, i);

		if (i > 0)
			g_string_append_c (out, ',');
		append_newline (out, indent, depth + 1);
		append_value (out, child, indent, depth + 1);
	}
	append_newline (out, indent, depth);
	g_string_append_c (out, ']');
}

static void
append_double (GString *out, double d)
{
	char buf[G_ASCII_DTOSTR_BUF_SIZE];

	if (!isfinite (d)) {
		g_string_append (out, "null");
		return;
	}
	/* Locale-independent, and enough digits to read back the same double. */
	g_ascii_formatd (buf, sizeof buf, "%.17g", d);
	g_string_append (out, buf);
}

static void
append_value (GString *out, GVariant *value, guint indent, guint depth)
{
	if (depth > VMI_JSON_MAX_DEPTH) {
		g_string_append (out, "null");
		return;
	}
	switch (g_variant_classify (value)) {
	case G_VARIANT_CLASS_BOOLEAN:
		g_string_append (out, g_variant_get_boolean (value) ? "true" : "false");
		break;
	case G_VARIANT_CLASS_BYTE:
		g_string_append_printf (out, "%u", (guint) g_variant_get_byte (value));
		break;
	case G_VARIANT_CLASS_INT16:
		g_string_append_printf (out, "%d", (int) g_variant_get_int16 (value));
		break;
	case G_VARIANT_CLASS_UINT16:
		g_string_append_printf (out, "%u", (guint) g_variant_get_uint16 (value));
		break;
	case G_VARIANT_CLASS_INT32:
		g_string_append_printf (out, "%" G_GINT32_FORMAT, g_variant_get_int32 (value));
		break;
	case G_VARIANT_CLASS_UINT32:
		g_string_append_printf (out, "%" G_GUINT32_FORMAT, g_variant_get_uint32 (value));
		break;
	case G_VARIANT_CLASS_INT64:
		g_string_append_printf (out, "%" G_GINT64_FORMAT, g_variant_get_int64 (value));
		break;
	case G_VARIANT_CLASS_UINT64:
		g_string_append_printf (out, "%" G_GUINT64_FORMAT, g_variant_get_uint64 (value));
		break;
	case G_VARIANT_CLASS_HANDLE:
		g_string_append_printf (out, "%" G_GINT32_FORMAT, g_variant_get_handle (value));
		break;
	case G_VARIANT_CLASS_DOUBLE:
		append_double (out, g_variant_get_double (value));
		break;
	case G_VARIANT_CLASS_STRING:
	case G_VARIANT_CLASS_OBJECT_PATH:
	case G_VARIANT_CLASS_SIGNATURE:
		vmi_json_append_string (out, g_variant_get_string (value, NULL));
		break;
	case G_VARIANT_CLASS_VARIANT: {
		g_autoptr (GVariant) inner = g_variant_get_variant (value);

		append_value (out, inner, indent, depth);
		break;
	}
	case G_VARIANT_CLASS_MAYBE: {
		g_autoptr (GVariant) inner = g_variant_get_maybe (value);

		if (inner == NULL)
			g_string_append (out, "null");
		else
			append_value (out, inner, indent, depth);
		break;
	}
	case G_VARIANT_CLASS_ARRAY:
		if (is_object (value))
			append_object (out, value, indent, depth);
		else
			append_list (out, value, indent, depth);
		break;
	case G_VARIANT_CLASS_TUPLE:
	case G_VARIANT_CLASS_DICT_ENTRY:
		append_list (out, value, indent, depth);
		break;
	default:
		g_string_append (out, "null");
		break;
	}
}

void
vmi_json_append (GString *out, GVariant *value, guint indent)
{
	append_value (out, value, indent, 0);
}

char *
vmi_json_from_variant (GVariant *value, guint indent)
{
	GString *out = g_string_new (NULL);

	vmi_json_append (out, value, indent);
	if (indent > 0)
		g_string_append_c (out, '\n');
	return g_string_free (out, FALSE);
}
