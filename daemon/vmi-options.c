#include "vmi-options.h"

static const VmiOptionSpec *
vmi_options_find_spec (const VmiOptionSpec *specs, const char *name)
{
	for (const VmiOptionSpec *spec = specs; spec != NULL && spec->name != NULL; spec++) {
		if (g_strcmp0 (spec->name, name) == 0)
			return spec;
	}
	return NULL;
}

/* busctl sends "i", gdbus "i" or "t" depending on the literal, Python "x": accept them all. */
static gboolean
vmi_options_to_uint64 (GVariant *value, guint64 *out)
{
	gint64 signed_value;

	if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTE)) {
		*out = g_variant_get_byte (value);
		return TRUE;
	}
	if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT16)) {
		*out = g_variant_get_uint16 (value);
		return TRUE;
	}
	if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32)) {
		*out = g_variant_get_uint32 (value);
		return TRUE;
	}
	if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64)) {
		*out = g_variant_get_uint64 (value);
		return TRUE;
	}
	if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT16))
		signed_value = g_variant_get_int16 (value);
	else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
		signed_value = g_variant_get_int32 (value);
	else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
		signed_value = g_variant_get_int64 (value);
	else
		return FALSE;
	if (signed_value < 0)
		return FALSE;
	*out = (guint64) signed_value;
	return TRUE;
}

static GVariant *
vmi_options_convert (const VmiOptionSpec *spec, GVariant *value, GError **error)
{
	guint64 number;

	if (g_strcmp0 (spec->type, "t") == 0) {
		if (vmi_options_to_uint64 (value, &number))
			return g_variant_ref_sink (g_variant_new_uint64 (number));
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "option \"%s\" must be a non-negative integer (any of y n q i u x t), "
			     "not a value of type %s",
			     spec->name, g_variant_get_type_string (value));
		return NULL;
	}
	if (g_strcmp0 (spec->type, "b") == 0) {
		if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
			return g_variant_ref (value);
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "option \"%s\" must be a boolean (b), not a value of type %s",
			     spec->name, g_variant_get_type_string (value));
		return NULL;
	}
	if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
		return g_variant_ref (value);
	g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
		     "option \"%s\" must be a string (s), not a value of type %s", spec->name,
		     g_variant_get_type_string (value));
	return NULL;
}

static void
vmi_options_append_names (GString *out, const VmiOptionSpec *specs)
{
	for (const VmiOptionSpec *spec = specs; spec != NULL && spec->name != NULL; spec++)
		g_string_append_printf (out, "%s%s", out->len > 0 ? ", " : "", spec->name);
}

GVariant *
vmi_options_normalize (GVariant *options, const VmiOptionSpec *specs,
		       const VmiOptionSpec *more_specs, GError **error)
{
	GVariantBuilder builder;
	GVariantIter iter;
	const char *name;
	GVariant *value;

	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	if (options == NULL)
		return g_variant_ref_sink (g_variant_builder_end (&builder));
	g_return_val_if_fail (g_variant_is_of_type (options, G_VARIANT_TYPE_VARDICT), NULL);

	g_variant_iter_init (&iter, options);
	while (g_variant_iter_next (&iter, "{&sv}", &name, &value)) {
		g_autoptr(GVariant) owned_value = value;
		g_autoptr(GVariant) converted = NULL;
		const VmiOptionSpec *spec = vmi_options_find_spec (specs, name);

		if (spec == NULL)
			spec = vmi_options_find_spec (more_specs, name);
		if (spec == NULL) {
			g_autoptr(GString) known = g_string_new (NULL);

			vmi_options_append_names (known, specs);
			vmi_options_append_names (known, more_specs);
			g_variant_builder_clear (&builder);
			g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "unknown option \"%s\"; accepted here: %s", name,
				     known->len > 0 ? known->str : "none");
			return NULL;
		}
		converted = vmi_options_convert (spec, owned_value, error);
		if (converted == NULL) {
			g_variant_builder_clear (&builder);
			return NULL;
		}
		g_variant_builder_add (&builder, "{sv}", name, converted);
	}
	return g_variant_ref_sink (g_variant_builder_end (&builder));
}

guint64
vmi_options_get_uint64 (GVariant *normalized, const char *name, guint64 fallback)
{
	guint64 value;

	if (normalized == NULL || !g_variant_lookup (normalized, name, "t", &value))
		return fallback;
	return value;
}

gboolean
vmi_options_get_boolean (GVariant *normalized, const char *name, gboolean fallback)
{
	gboolean value;

	if (normalized == NULL || !g_variant_lookup (normalized, name, "b", &value))
		return fallback;
	return value;
}

const char *
vmi_options_get_string (GVariant *normalized, const char *name, const char *fallback)
{
	const char *value;

	if (normalized == NULL || !g_variant_lookup (normalized, name, "&s", &value))
		return fallback;
	return value;
}

GVariant *
vmi_options_filter (GVariant *normalized, const VmiOptionSpec *drop)
{
	GVariantBuilder builder;
	GVariantIter iter;
	const char *name;
	GVariant *value;

	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	if (normalized != NULL) {
		g_variant_iter_init (&iter, normalized);
		while (g_variant_iter_next (&iter, "{&sv}", &name, &value)) {
			if (vmi_options_find_spec (drop, name) == NULL)
				g_variant_builder_add (&builder, "{sv}", name, value);
			g_variant_unref (value);
		}
	}
	return g_variant_ref_sink (g_variant_builder_end (&builder));
}
