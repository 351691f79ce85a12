/* The qcow2 plugin's check and measure hooks (qcow2-check.c, qcow2-measure.c). */
#pragma once

#include "qcow2-private.h"

/*
 * qemu-img check of an open image: every reference from the header, the active and snapshot L1
 * and L2 tables, the snapshot table, the refcount table and blocks, the bitmaps and the LUKS
 * header is counted per host cluster and compared with the stored refcounts.
 */
gboolean qcow2_reader_check (Qcow2Reader *r, VmiCheckResult *result, GCancellable *cancellable,
			     GError **error);

/* qemu-img measure -O qcow2 for the options of our writer (cluster-size, compress). */
gboolean qcow2_measure (guint64 virtual_size, const VmiRange *data, gsize n_data,
			GVariant *options, VmiMeasurement *out, GError **error);
