/* How many bytes a conversion would write (qemu-img measure). */
#pragma once

#include "vmi-convert.h"

G_BEGIN_DECLS

/* Options of Measure besides the output format's create options: "source-format" (s). */
extern const VmiOptionSpec vmi_measure_options[];

/*
 * Asks plugin how large an image of its format would be that holds the data of source, with
 * options (a{sv}, may be NULL: plugin's create options and vmi_measure_options) as Convert
 * would pass them. The data are the source's DATA runs (holes and zero runs are not data).
 * The result is a new a{sv}: required, fully-allocated (t, bytes), format (s), virtual-size (t)
 * and data-bytes (t: the bytes of the runs measured). A plugin without a measure hook is
 * VMI_ERROR_NOT_SUPPORTED naming its format.
 */
GVariant *vmi_measure (VmiSource *source, const VmiFormatPlugin *plugin, GVariant *options,
		       GCancellable *cancellable, GError **error);

G_END_DECLS
