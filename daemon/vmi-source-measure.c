#include "vmi-source-measure.h"
#include "vmi-options.h"

/*
 * At most this many runs are kept (16 MiB): a disk whose data alternates with holes cluster by
 * cluster would otherwise make the list as large as its map. Past it, runs closer than a growing
 * gap are merged, so the answer may only grow (never under-estimate), and the result says so.
 */
#define VMI_MEASURE_MAX_RANGES (1u << 20)
#define VMI_MEASURE_FIRST_GAP (64u * 1024u)

const VmiOptionSpec vmi_measure_options[] = {
	{ "source-format", "s", "format of the source; detected when absent" },
	{ NULL },
};

typedef struct {
	GArray *ranges;	  /* of VmiRange */
	guint64 max_gap;  /* runs at most this far apart are merged; 0: only touching ones */
	guint64 data_bytes;
} VmiMeasureRuns;

/* Merges the kept runs that are at most max_gap apart, in place. */
static void
vmi_measure_runs_compact (VmiMeasureRuns *self)
{
	guint kept = 0;

	for (guint i = 0; i < self->ranges->len; i++) {
		VmiRange *range = &g_array_index (self->ranges, VmiRange, i);

		if (kept > 0) {
			VmiRange *last = &g_array_index (self->ranges, VmiRange, kept - 1);

			if (range->offset - (last->offset + last->length) <= self->max_gap) {
				last->length = range->offset + range->length - last->offset;
				continue;
			}
		}
		g_array_index (self->ranges, VmiRange, kept) = *range;
		kept++;
	}
	g_array_set_size (self->ranges, kept);
}

static void
vmi_measure_runs_add (VmiMeasureRuns *self, guint64 offset, guint64 length)
{
	VmiRange range = { offset, length };

	self->data_bytes += length;
	while (self->ranges->len > 0) {
		VmiRange *last = &g_array_index (self->ranges, VmiRange, self->ranges->len - 1);

		if (offset - (last->offset + last->length) <= self->max_gap) {
			last->length = offset + length - last->offset;
			return;
		}
		if (self->ranges->len < VMI_MEASURE_MAX_RANGES)
			break;
		self->max_gap = self->max_gap == 0 ? VMI_MEASURE_FIRST_GAP : self->max_gap * 2;
		vmi_measure_runs_compact (self);
	}
	g_array_append_val (self->ranges, range);
}

static gboolean
vmi_measure_collect (VmiSource *source, VmiMeasureRuns *runs, GCancellable *cancellable,
		     GError **error)
{
	guint64 total = vmi_source_get_virtual_size (source);
	guint64 offset = 0;

	while (offset < total) {
		VmiExtent extent = { 0 };

		if (g_cancellable_is_cancelled (cancellable)) {
			g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED,
					     "the measurement was cancelled");
			return FALSE;
		}
		if (!vmi_source_block_status (source, offset, total - offset, &extent, error))
			return FALSE;
		if (extent.kind == VMI_EXTENT_DATA)
			vmi_measure_runs_add (runs, offset, extent.length);
		offset += extent.length;
	}
	return TRUE;
}

GVariant *
vmi_measure (VmiSource *source, const VmiFormatPlugin *plugin, GVariant *options,
	     GCancellable *cancellable, GError **error)
{
	const VmiFormatPlugin *src_plugin = vmi_source_get_plugin (source);
	g_autoptr(GVariant) normalized = NULL;
	g_autoptr(GVariant) create_options = NULL;
	g_autoptr(GArray) ranges = g_array_new (FALSE, FALSE, sizeof (VmiRange));
	VmiMeasureRuns runs = { .ranges = ranges };
	VmiMeasurement measurement = { 0 };
	GVariantBuilder builder;

	if ((plugin->flags & VMI_FORMAT_CAN_WRITE) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged cannot write %s images, so it cannot measure them",
			     plugin->name);
		return NULL;
	}
	if (plugin->measure == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the %s plugin cannot measure the size of its images", plugin->name);
		return NULL;
	}
	if ((src_plugin->flags & VMI_FORMAT_CAN_READ) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged can inspect %s images but not read their content",
			     src_plugin->name);
		return NULL;
	}
	normalized = vmi_options_normalize (options, vmi_measure_options, plugin->create_options,
					    error);
	if (normalized == NULL)
		return NULL;
	create_options = vmi_options_filter (normalized, vmi_measure_options);
	if (!vmi_measure_collect (source, &runs, cancellable, error))
		return NULL;
	if (!plugin->measure (vmi_source_get_virtual_size (source),
			      (const VmiRange *) (gpointer) ranges->data, ranges->len,
			      create_options, &measurement, error))
		return NULL;
	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add (&builder, "{sv}", "required",
			       g_variant_new_uint64 (measurement.required));
	g_variant_builder_add (&builder, "{sv}", "fully-allocated",
			       g_variant_new_uint64 (measurement.fully_allocated));
	g_variant_builder_add (&builder, "{sv}", "format", g_variant_new_string (plugin->name));
	g_variant_builder_add (&builder, "{sv}", "virtual-size",
			       g_variant_new_uint64 (vmi_source_get_virtual_size (source)));
	g_variant_builder_add (&builder, "{sv}", "data-bytes", g_variant_new_uint64 (runs.data_bytes));
	if (runs.max_gap != 0)
		g_variant_builder_add (&builder, "{sv}", "merged-gap",
				       g_variant_new_uint64 (runs.max_gap));
	return g_variant_ref_sink (g_variant_builder_end (&builder));
}
