/* Pieces of the conversion engine shared by its pipeline and its raw → raw fast path. */
#pragma once

#include "vmi-convert.h"

G_BEGIN_DECLS

typedef struct {
	const VmiFormatPlugin *plugin;
	VmiImage *image;
	int fd;			 /* the output file, for writeback hints */
	guint64 unflushed;	 /* bytes handed to the plugin since the last writeback kick */
} VmiConvertDest;

/* Whether len bytes of buf are all zeros. */
gboolean vmi_convert_is_zero (const guint8 *buf, gsize len);

/* TRUE, with VMI_ERROR_CANCELLED in error, once cancellable is cancelled. */
gboolean vmi_convert_check_cancelled (GCancellable *cancellable, GError **error);

/*
 * The file whose bytes are the source disk itself (a raw image that is the whole of a regular
 * file), or -1. The engine reads nothing through it: it gives read-ahead hints and the clone.
 */
int vmi_convert_raw_source_fd (VmiSource *source);

/*
 * raw → raw: when both are raw and whole files, clones the source into dst_fd (made by the raw
 * plugin's create) and sets *cloned. *cloned stays FALSE (and TRUE is returned) where the file
 * system cannot clone: the caller copies instead. FALSE with an error when cloning failed for
 * another reason (no space).
 */
gboolean vmi_convert_raw_clone (VmiSource *source, const VmiFormatPlugin *dst_plugin, int dst_fd,
				gboolean *cloned, GError **error);

G_END_DECLS
