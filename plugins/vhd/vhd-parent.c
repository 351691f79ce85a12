/*
 * What a differencing VHD says about its parent: the parent's name (UTF-16 big-endian in the
 * header) and up to eight platform-specific locators pointing at it. They are only reported;
 * nothing here opens a file.
 */
#include <string.h>

#include "vhd-private.h"

/* UTF-16 of either byte order to UTF-8, stopping at the first NUL; NULL if not valid text. */
static char *
vhd_utf16_to_utf8 (const guint8 *data, gsize len, gboolean big_endian)
{
	gsize n = len / 2;
	g_autofree gunichar2 *units = g_new (gunichar2, n + 1);
	gsize used = 0;

	for (; used < n; used++) {
		const guint8 *u = data + used * 2;

		units[used] = big_endian ? (gunichar2) ((u[0] << 8) | u[1])
					 : (gunichar2) ((u[1] << 8) | u[0]);
		if (units[used] == 0)
			break;
	}
	return g_utf16_to_utf8 (units, (glong) used, NULL, NULL, NULL);
}

static char *
vhd_bytes_to_utf8 (const guint8 *data, gsize len)
{
	gsize end = 0;

	while (end < len && data[end] != 0)
		end++;
	return g_utf8_make_valid ((const char *) data, (gssize) end);
}

static void
vhd_add_parent_path (VmiImage *image, const char *path)
{
	if (path[0] == '\0')
		return;
	for (guint i = 0; i < image->parent_paths->len; i++) {
		if (g_strcmp0 (g_ptr_array_index (image->parent_paths, i), path) == 0)
			return;
	}
	g_ptr_array_add (image->parent_paths, g_strdup (path));
}

static gboolean
vhd_parse_locator (VmiImage *image, guint index, const guint8 *entry, GError **error)
{
	char code[4];
	guint32 length = vhd_get_be32 (entry + 8);
	guint64 offset = vhd_get_be64 (entry + 16);
	g_autofree guint8 *data = NULL;
	g_autofree char *code_str = NULL;
	g_autofree char *path = NULL;
	guint64 end;

	memcpy (code, entry, 4);
	if (vhd_get_be32 (entry) == 0 || length == 0)
		return TRUE;
	code_str = vhd_fourcc_to_string (code);
	if (length > VHD_MAX_LOCATOR_BYTES) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "parent locator %u (%s) claims %u bytes, more than the %u a path "
			     "can take",
			     index, code_str, length, VHD_MAX_LOCATOR_BYTES);
		return FALSE;
	}
	if (!g_uint64_checked_add (&end, offset, length) || end > image->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "parent locator %u (%s) at offset 0x%" G_GINT64_MODIFIER "x (%u bytes) "
			     "lies beyond the end of the %" G_GUINT64_FORMAT "-byte file",
			     index, code_str, offset, length, image->file_size);
		return FALSE;
	}
	data = g_malloc (length);
	if (!vmi_range_pread_all (&image->file, data, length, offset, "VHD file", error))
		return FALSE;
	/* W2ku/W2ru are UTF-16 little-endian Windows paths; MacX is a UTF-8 file URL. */
	if (memcmp (code, "W2ku", 4) == 0 || memcmp (code, "W2ru", 4) == 0)
		path = vhd_utf16_to_utf8 (data, length, FALSE);
	else
		path = vhd_bytes_to_utf8 (data, length);
	if (path == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "parent locator %u (%s) at offset 0x%" G_GINT64_MODIFIER "x is not "
			     "valid UTF-16 text",
			     index, code_str, offset);
		return FALSE;
	}
	g_ptr_array_insert (image->parent_locators, (gint) image->parent_locators->len - 1,
			    g_strdup_printf ("%s %s", code_str, path));
	vhd_add_parent_path (image, path);
	return TRUE;
}

gboolean
vhd_parse_parent (VmiImage *image, const guint8 *header, GError **error)
{
	image->parent_locators = g_ptr_array_new_with_free_func (g_free);
	g_ptr_array_add (image->parent_locators, NULL);
	image->parent_paths = g_ptr_array_new_with_free_func (g_free);
	image->parent_name =
		vhd_utf16_to_utf8 (header + VHD_H_PARENT_NAME, VHD_H_PARENT_NAME_SIZE, TRUE);
	if (image->parent_name == NULL) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the parent name in the dynamic disk header is not valid "
				     "UTF-16 text");
		return FALSE;
	}
	if (image->parent_name[0] == '\0')
		g_clear_pointer (&image->parent_name, g_free);
	else
		vhd_add_parent_path (image, image->parent_name);
	image->parent_uuid = vhd_uuid_to_string (header + VHD_H_PARENT_UUID);
	for (guint i = 0; i < VHD_H_N_LOCATORS; i++) {
		if (!vhd_parse_locator (image, i, header + VHD_H_LOCATORS + i * VHD_H_LOCATOR_SIZE,
					error))
			return FALSE;
	}
	return TRUE;
}
