#include <string.h>

#include "vmdk-descriptor.h"
#include "vmdk-format.h"

static void
vmdk_desc_extent_free (gpointer data)
{
	VmdkDescExtent *e = data;

	g_free (e->access);
	g_free (e->type);
	g_free (e->filename);
	g_free (e);
}

void
vmdk_descriptor_free (VmdkDescriptor *desc)
{
	if (desc == NULL)
		return;
	g_free (desc->create_type);
	g_free (desc->parent_hint);
	g_free (desc->adapter_type);
	g_free (desc->hw_version);
	g_ptr_array_unref (desc->extents);
	g_free (desc);
}

static gboolean
vmdk_is_space (char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Strings end up in GVariants, which must be UTF-8, and in messages: keep them printable. */
static char *
vmdk_clean_string (const char *s, gsize len)
{
	g_autofree char *valid = g_utf8_make_valid (s, (gssize) len);

	for (char *p = valid; *p != '\0'; p++) {
		if ((guchar) *p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	return g_steal_pointer (&valid);
}

/* Next whitespace-separated token of line starting at *pos; NULL at the end. */
static char *
vmdk_next_token (const char *line, gsize len, gsize *pos)
{
	gsize start;

	while (*pos < len && vmdk_is_space (line[*pos]))
		(*pos)++;
	start = *pos;
	while (*pos < len && !vmdk_is_space (line[*pos]))
		(*pos)++;
	if (*pos == start)
		return NULL;
	return g_strndup (line + start, *pos - start);
}

static VmdkExtentKind
vmdk_extent_kind (const char *type)
{
	if (strcmp (type, "FLAT") == 0 || strcmp (type, "VMFS") == 0)
		return VMDK_EXTENT_FLAT;
	if (strcmp (type, "SPARSE") == 0 || strcmp (type, "VMFSSPARSE") == 0)
		return VMDK_EXTENT_SPARSE;
	if (strcmp (type, "ZERO") == 0)
		return VMDK_EXTENT_ZERO;
	return VMDK_EXTENT_OTHER;
}

static gboolean
vmdk_is_access (const char *tok)
{
	return strcmp (tok, "RW") == 0 || strcmp (tok, "RDONLY") == 0 ||
	       strcmp (tok, "NOACCESS") == 0;
}

/* ACCESS SECTORS TYPE ["FILENAME" [OFFSET]] */
static gboolean
vmdk_parse_extent_line (const char *line, gsize len, guint lineno, VmdkDescExtent **out,
			GError **error)
{
	g_autofree char *sectors = NULL;
	g_autofree char *offset = NULL;
	VmdkDescExtent *e = g_new0 (VmdkDescExtent, 1);
	g_autoptr(GPtrArray) hold = g_ptr_array_new_with_free_func (vmdk_desc_extent_free);
	gsize pos = 0;

	g_ptr_array_add (hold, e);
	e->line = lineno;
	e->access = vmdk_next_token (line, len, &pos);
	sectors = vmdk_next_token (line, len, &pos);
	e->type = NULL;
	if (sectors == NULL ||
	    !g_ascii_string_to_unsigned (sectors, 10, 1, VMDK_MAX_VIRTUAL_SIZE / VMDK_SECTOR, &e->sectors,
					 NULL)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "descriptor line %u: the extent size is not a number of sectors between "
			     "1 and %" G_GUINT64_FORMAT,
			     lineno, VMDK_MAX_VIRTUAL_SIZE / VMDK_SECTOR);
		return FALSE;
	}
	e->type = vmdk_next_token (line, len, &pos);
	if (e->type == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "descriptor line %u: the extent has no type", lineno);
		return FALSE;
	}
	e->kind = vmdk_extent_kind (e->type);
	{
		char *clean = vmdk_clean_string (e->type, strlen (e->type));
		g_free (e->type);
		e->type = clean;
	}
	while (pos < len && vmdk_is_space (line[pos]))
		pos++;
	if (pos < len && line[pos] == '"') {
		const char *close = memchr (line + pos + 1, '"', len - pos - 1);

		if (close == NULL) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "descriptor line %u: the extent file name has no closing quote",
				     lineno);
			return FALSE;
		}
		e->filename = vmdk_clean_string (line + pos + 1, (gsize) (close - line) - pos - 1);
		pos = (gsize) (close - line) + 1;
		offset = vmdk_next_token (line, len, &pos);
		if (offset != NULL &&
		    !g_ascii_string_to_unsigned (offset, 10, 0, G_MAXUINT64 / VMDK_SECTOR, &e->offset,
						 NULL)) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "descriptor line %u: the extent offset is not a number of sectors",
				     lineno);
			return FALSE;
		}
	} else if (e->kind != VMDK_EXTENT_ZERO) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "descriptor line %u: the %s extent names no file in quotes", lineno,
			     e->type);
		return FALSE;
	}
	while (pos < len && vmdk_is_space (line[pos]))
		pos++;
	if (pos < len) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "descriptor line %u: unexpected text after the extent", lineno);
		return FALSE;
	}
	if (e->filename != NULL && e->filename[0] == '\0') {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "descriptor line %u: the extent file name is empty", lineno);
		return FALSE;
	}
	*out = g_ptr_array_steal_index (hold, 0);
	return TRUE;
}

static char *
vmdk_unquote (const char *v, gsize len)
{
	if (len >= 2 && v[0] == '"' && v[len - 1] == '"')
		return vmdk_clean_string (v + 1, len - 2);
	return vmdk_clean_string (v, len);
}

static void
vmdk_parse_uint (const char *value, guint base, guint64 max, gboolean *has, guint64 *out)
{
	guint64 v;

	if (g_ascii_string_to_unsigned (value, base, 0, max, &v, NULL)) {
		*out = v;
		if (has != NULL)
			*has = TRUE;
	}
}

static void
vmdk_parse_key (VmdkDescriptor *desc, const char *key, const char *value)
{
	guint64 v = 0;
	gboolean has = FALSE;

	if (strcmp (key, "createType") == 0) {
		g_free (desc->create_type);
		desc->create_type = g_strdup (value);
	} else if (strcmp (key, "CID") == 0) {
		vmdk_parse_uint (value, 16, G_MAXUINT32, &has, &v);
		desc->has_cid = has;
		desc->cid = (guint32) v;
	} else if (strcmp (key, "parentCID") == 0) {
		vmdk_parse_uint (value, 16, G_MAXUINT32, &has, &v);
		desc->has_parent_cid = has;
		desc->parent_cid = (guint32) v;
	} else if (strcmp (key, "parentFileNameHint") == 0) {
		g_free (desc->parent_hint);
		desc->parent_hint = g_strdup (value);
	} else if (g_ascii_strcasecmp (key, "ddb.adapterType") == 0) {
		g_free (desc->adapter_type);
		desc->adapter_type = g_strdup (value);
	} else if (g_ascii_strcasecmp (key, "ddb.virtualHWVersion") == 0) {
		g_free (desc->hw_version);
		desc->hw_version = g_strdup (value);
	} else if (g_ascii_strcasecmp (key, "ddb.geometry.cylinders") == 0) {
		vmdk_parse_uint (value, 10, G_MAXUINT32, &desc->has_geometry, &desc->cylinders);
	} else if (g_ascii_strcasecmp (key, "ddb.geometry.heads") == 0) {
		vmdk_parse_uint (value, 10, G_MAXUINT32, NULL, &desc->heads);
	} else if (g_ascii_strcasecmp (key, "ddb.geometry.sectors") == 0) {
		vmdk_parse_uint (value, 10, G_MAXUINT32, NULL, &desc->sectors);
	}
}

VmdkDescriptor *
vmdk_descriptor_parse (const char *text, gsize len, gboolean want_extents, GError **error)
{
	g_autoptr(VmdkDescriptor) desc = g_new0 (VmdkDescriptor, 1);
	const char *nul = memchr (text, '\0', len);
	gsize pos = 0;
	guint lineno = 0;

	desc->extents = g_ptr_array_new_with_free_func (vmdk_desc_extent_free);
	if (len > VMDK_MAX_DESCRIPTOR) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the descriptor is %" G_GSIZE_FORMAT " bytes, more than the %u a VMDK "
			     "descriptor may have",
			     len, VMDK_MAX_DESCRIPTOR);
		return NULL;
	}
	if (nul != NULL)
		len = (gsize) (nul - text);

	while (pos < len) {
		const char *line = text + pos;
		const char *eol = memchr (line, '\n', len - pos);
		gsize line_len = eol != NULL ? (gsize) (eol - line) : len - pos;
		gsize start = 0, end = line_len;
		const char *eq;

		pos += line_len + 1;
		lineno++;
		while (start < end && vmdk_is_space (line[start]))
			start++;
		while (end > start && vmdk_is_space (line[end - 1]))
			end--;
		if (start == end || line[start] == '#')
			continue;
		line += start;
		line_len = end - start;

		if (want_extents) {
			gsize tpos = 0;
			g_autofree char *first = vmdk_next_token (line, line_len, &tpos);

			if (first != NULL && vmdk_is_access (first)) {
				VmdkDescExtent *e = NULL;

				if (desc->extents->len >= VMDK_MAX_EXTENTS) {
					g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
						     "the descriptor lists more than %u extents",
						     VMDK_MAX_EXTENTS);
					return NULL;
				}
				if (!vmdk_parse_extent_line (line, line_len, lineno, &e, error))
					return NULL;
				g_ptr_array_add (desc->extents, e);
				continue;
			}
		}

		eq = memchr (line, '=', line_len);
		if (eq != NULL) {
			gsize klen = (gsize) (eq - line);
			gsize vstart = klen + 1;
			g_autofree char *key = NULL;
			g_autofree char *value = NULL;

			while (klen > 0 && vmdk_is_space (line[klen - 1]))
				klen--;
			while (vstart < line_len && vmdk_is_space (line[vstart]))
				vstart++;
			key = g_strndup (line, klen);
			value = vmdk_unquote (line + vstart, line_len - vstart);
			vmdk_parse_key (desc, key, value);
		}
		/* Anything else (unknown sections, vendor lines) carries nothing we use. */
	}

	if (want_extents && desc->extents->len == 0) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the descriptor lists no extents (no line such as "
				     "'RW 2048 SPARSE \"disk.vmdk\"')");
		return NULL;
	}
	return g_steal_pointer (&desc);
}

gboolean
vmdk_descriptor_probe (const guint8 *head, gsize len)
{
	const char *text = (const char *) head;
	gsize pos = 0;

	while (pos < len) {
		const char *line = text + pos;
		const char *eol = memchr (line, '\n', len - pos);
		gsize line_len = eol != NULL ? (gsize) (eol - line) : len - pos;
		gsize start = 0, end = line_len;

		/* A first line cut off by the end of the head cannot be judged. */
		if (eol == NULL)
			return FALSE;
		pos += line_len + 1;
		while (start < end && vmdk_is_space (line[start]))
			start++;
		while (end > start && vmdk_is_space (line[end - 1]))
			end--;
		if (start == end || line[start] == '#')
			continue;
		return end - start == strlen ("version=1") &&
		       strncmp (line + start, "version=", strlen ("version=")) == 0 &&
		       line[end - 1] >= '1' && line[end - 1] <= '3';
	}
	return FALSE;
}
