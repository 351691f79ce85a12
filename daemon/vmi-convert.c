#include <string.h>

#include "vmi-convert.h"
#include "vmi-options.h"

/* Bytes read from the source per call: large enough for sequential I/O, small enough to cancel
 * promptly and to keep the daemon's memory flat. */
#define VMI_CONVERT_CHUNK (4u * 1024u * 1024u)
/* All-zero runs of data are looked for at this granularity and not written. */
#define VMI_CONVERT_ZERO_GRANULE (64u * 1024u)

const VmiOptionSpec vmi_convert_options[] = {
	{ "source-format", "s", "format of the source; detected when absent" },
	{ "overwrite", "b", "replace an existing destination" },
	{ "cancel-on-disconnect", "b", "cancel the job when its caller leaves the bus" },
	{ NULL },
};

static gboolean
vmi_convert_is_zero (const guint8 *buf, gsize len)
{
	/* Compare the buffer with itself shifted: one pass at memcmp speed, no zero page needed. */
	if (len < 16) {
		for (gsize i = 0; i < len; i++) {
			if (buf[i] != 0)
				return FALSE;
		}
		return TRUE;
	}
	for (gsize i = 0; i < 16; i++) {
		if (buf[i] != 0)
			return FALSE;
	}
	return memcmp (buf, buf + 16, len - 16) == 0;
}

static gboolean
vmi_convert_cancelled (GCancellable *cancellable, GError **error)
{
	if (!g_cancellable_is_cancelled (cancellable))
		return FALSE;
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED, "the conversion was cancelled");
	return TRUE;
}

typedef struct {
	const VmiFormatPlugin *plugin;
	VmiImage *image;
} VmiConvertDest;

/* Writes the non-zero parts of buf, which holds the virtual disk from offset on. */
static gboolean
vmi_convert_write_data (VmiConvertDest *dest, guint64 offset, const guint8 *buf, gsize len,
			GError **error)
{
	gsize pos = 0;

	while (pos < len) {
		gsize run_start, run_end;

		/* Granules are aligned on the virtual disk, not on the buffer. */
		run_start = pos;
		while (run_start < len) {
			guint64 abs = offset + run_start;
			gsize granule = MIN (len - run_start,
					     VMI_CONVERT_ZERO_GRANULE - abs % VMI_CONVERT_ZERO_GRANULE);

			if (!vmi_convert_is_zero (buf + run_start, granule))
				break;
			run_start += granule;
		}
		run_end = run_start;
		while (run_end < len) {
			guint64 abs = offset + run_end;
			gsize granule = MIN (len - run_end,
					     VMI_CONVERT_ZERO_GRANULE - abs % VMI_CONVERT_ZERO_GRANULE);

			if (vmi_convert_is_zero (buf + run_end, granule))
				break;
			run_end += granule;
		}
		if (run_end > run_start &&
		    !dest->plugin->write (dest->image, offset + run_start, buf + run_start,
					  run_end - run_start, error))
			return FALSE;
		pos = run_end;
	}
	return TRUE;
}

static gboolean
vmi_convert_copy (VmiSource *source, VmiConvertDest *dest, VmiProgressFunc progress,
		  gpointer user_data, GCancellable *cancellable, GError **error)
{
	const VmiFormatPlugin *src_plugin = vmi_source_get_plugin (source);
	VmiImage *src_image = vmi_source_get_image (source);
	guint64 total = vmi_source_get_virtual_size (source);
	guint64 offset = 0;
	g_autofree guint8 *buf = NULL;

	if (progress != NULL)
		progress (0, total, user_data);
	while (offset < total) {
		VmiExtent extent = { 0 };
		guint64 extent_end;

		if (vmi_convert_cancelled (cancellable, error))
			return FALSE;
		if (!src_plugin->block_status (src_image, offset, total - offset, &extent, error))
			return FALSE;
		if (extent.length == 0 || extent.length > total - offset) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "the %s plugin described a run of %" G_GUINT64_FORMAT
				     " bytes at offset %" G_GUINT64_FORMAT
				     " of a %" G_GUINT64_FORMAT "-byte disk",
				     src_plugin->name, extent.length, offset, total);
			return FALSE;
		}
		extent_end = offset + extent.length;
		if (extent.kind != VMI_EXTENT_DATA) {
			/* A new image reads as zeros: holes and zero runs need nothing written. */
			offset = extent_end;
			if (progress != NULL)
				progress (offset, total, user_data);
			continue;
		}
		if (buf == NULL)
			buf = g_malloc (VMI_CONVERT_CHUNK);
		while (offset < extent_end) {
			gsize len = (gsize) MIN (extent_end - offset, VMI_CONVERT_CHUNK);

			if (vmi_convert_cancelled (cancellable, error))
				return FALSE;
			if (!src_plugin->read (src_image, offset, buf, len, error))
				return FALSE;
			if (!vmi_convert_write_data (dest, offset, buf, len, error))
				return FALSE;
			offset += len;
			if (progress != NULL)
				progress (offset, total, user_data);
		}
	}
	return TRUE;
}

gboolean
vmi_convert (VmiSource *source, const VmiFormatPlugin *dst_plugin, int dst_fd, GVariant *options,
	     VmiProgressFunc progress, gpointer user_data, GCancellable *cancellable,
	     GError **error)
{
	g_autoptr(GVariant) normalized = NULL;
	g_autoptr(GVariant) create_options = NULL;
	VmiConvertDest dest = { .plugin = dst_plugin };
	gboolean ok;

	if ((vmi_source_get_plugin (source)->flags & VMI_FORMAT_CAN_READ) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged can inspect %s images but not read their content",
			     vmi_source_get_plugin (source)->name);
		return FALSE;
	}
	if ((dst_plugin->flags & VMI_FORMAT_CAN_WRITE) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged cannot write %s images", dst_plugin->name);
		return FALSE;
	}
	normalized = vmi_options_normalize (options, vmi_convert_options,
					    dst_plugin->create_options, error);
	if (normalized == NULL)
		return FALSE;
	create_options = vmi_options_filter (normalized, vmi_convert_options);
	dest.image = dst_plugin->create (dst_fd, vmi_source_get_virtual_size (source),
					 create_options, error);
	if (dest.image == NULL)
		return FALSE;
	ok = vmi_convert_copy (source, &dest, progress, user_data, cancellable, error) &&
	     dst_plugin->finish (dest.image, error);
	dst_plugin->close (dest.image);
	return ok;
}
