/* Copying a source image into a new image of any writable format. */
#pragma once

#include "vmi-source.h"

G_BEGIN_DECLS

typedef void (*VmiProgressFunc) (guint64 bytes_done, guint64 bytes_total, gpointer user_data);

/* Options the engine itself takes in Convert; everything else goes to the destination plugin. */
extern const VmiOptionSpec vmi_convert_options[];

/*
 * Writes the whole virtual disk of source into dst_fd (an empty file opened read-write) as
 * dst_plugin's format. options is a normalized a{sv} (vmi_options_normalize); entries named in
 * vmi_convert_options are the engine's, the rest are passed to dst_plugin->create. Holes and
 * zero extents are skipped and all-zero data blocks are not written. progress is called from the
 * calling thread, with bytes of the virtual disk done (holes count as done). On error or
 * cancellation the file is left partial: removing it is the caller's job.
 */
gboolean vmi_convert (VmiSource *source, const VmiFormatPlugin *dst_plugin, int dst_fd,
		      GVariant *options, VmiProgressFunc progress, gpointer user_data,
		      GCancellable *cancellable, GError **error);

G_END_DECLS
