#include <string.h>

#include "vmi-content-hash.h"

/* Bytes read per window: a multiple of the block size, small enough to cancel promptly. */
#define VMI_CONTENT_HASH_WINDOW (64u * VMI_CONTENT_HASH_BLOCK)

static const char vmi_content_hash_magic[] = "vmimaged content digest v1";

static gboolean
vmi_content_hash_is_zero (const guint8 *buf, gsize len)
{
	if (len == 0)
		return TRUE;
	/* Compare the buffer with itself shifted by one byte: one pass, no zero buffer needed. */
	return buf[0] == 0 && memcmp (buf, buf + 1, len - 1) == 0;
}

static void
vmi_content_hash_update_u64 (GChecksum *checksum, guint64 value)
{
	guint64 le = GUINT64_TO_LE (value);

	g_checksum_update (checksum, (const guchar *) &le, sizeof le);
}

/* Reads the window [start, end) into buf, leaving zeros where the source has holes or zeros. */
static gboolean
vmi_content_hash_fill (VmiSource *source, guint64 start, guint64 end, guint8 *buf, GError **error)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (source);
	guint64 pos = start;

	memset (buf, 0, (gsize) (end - start));
	while (pos < end) {
		VmiExtent extent = { 0 };

		if (!vmi_source_block_status (source, pos, end - pos, &extent, error))
			return FALSE;
		if (extent.kind == VMI_EXTENT_DATA &&
		    !plugin->read (vmi_source_get_image (source), pos, buf + (pos - start),
				   (gsize) extent.length, error))
			return FALSE;
		pos += extent.length;
	}
	return TRUE;
}

gboolean
vmi_content_hash (VmiSource *source, VmiProgressFunc progress, gpointer user_data,
		  GCancellable *cancellable, char **digest, guint64 *data_bytes, GError **error)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (source);
	guint64 total = vmi_source_get_virtual_size (source);
	guint64 offset = 0;
	guint64 nonzero = 0;
	g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
	g_autofree guint8 *buf = NULL;

	if ((plugin->flags & VMI_FORMAT_CAN_READ) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged can inspect %s images but not read their content",
			     plugin->name);
		return FALSE;
	}
	g_checksum_update (checksum, (const guchar *) vmi_content_hash_magic,
			   sizeof vmi_content_hash_magic);
	vmi_content_hash_update_u64 (checksum, total);
	if (progress != NULL)
		progress (0, total, user_data);
	while (offset < total) {
		VmiExtent extent = { 0 };
		guint64 end;

		if (g_cancellable_is_cancelled (cancellable)) {
			g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED,
					     "the import was cancelled");
			return FALSE;
		}
		/* offset is block-aligned here. Whole blocks inside a hole or zero run are zero and
		 * contribute nothing: skip them without reading. */
		if (!vmi_source_block_status (source, offset, total - offset, &extent, error))
			return FALSE;
		if (extent.kind != VMI_EXTENT_DATA) {
			guint64 skip = extent.length == total - offset
					       ? extent.length
					       : extent.length - extent.length % VMI_CONTENT_HASH_BLOCK;

			if (skip > 0) {
				offset += skip;
				if (progress != NULL)
					progress (offset, total, user_data);
				continue;
			}
		}
		end = offset + MIN (total - offset, VMI_CONTENT_HASH_WINDOW);
		if (buf == NULL)
			buf = g_malloc (VMI_CONTENT_HASH_WINDOW);
		if (!vmi_content_hash_fill (source, offset, end, buf, error))
			return FALSE;
		for (guint64 block = offset; block < end; block += VMI_CONTENT_HASH_BLOCK) {
			gsize len = (gsize) MIN (end - block, VMI_CONTENT_HASH_BLOCK);
			const guint8 *data = buf + (block - offset);

			if (vmi_content_hash_is_zero (data, len))
				continue;
			vmi_content_hash_update_u64 (checksum, block / VMI_CONTENT_HASH_BLOCK);
			g_checksum_update (checksum, data, len);
			nonzero += len;
		}
		offset = end;
		if (progress != NULL)
			progress (offset, total, user_data);
	}
	*digest = g_strdup (g_checksum_get_string (checksum));
	if (data_bytes != NULL)
		*data_bytes = nonzero;
	return TRUE;
}
