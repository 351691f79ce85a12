#include <string.h>

#include "vmi-compare.h"
#include "vmi-members.h"
#include "vmi-options.h"

/* Bytes of each disk compared per step: sequential enough, small enough to cancel promptly. */
#define VMI_COMPARE_CHUNK (1024u * 1024u)

const VmiOptionSpec vmi_compare_options[] = {
	{ "strict", "b", "disks of different sizes differ (default true); when false, the longer "
			 "one's tail must read as zeros" },
	{ "format-a", "s", "format of the first image; detected when absent" },
	{ "format-b", "s", "format of the second image; detected when absent" },
	{ "disk-a", "t", "the first image is a container: compare its disk of this index" },
	{ "member-a", "s", "the first image is a container: compare its member of this name or role" },
	{ "disk-b", "t", "the second image is a container: compare its disk of this index" },
	{ "member-b", "s", "the second image is a container: compare its member of this name or role" },
	{ "cancel-on-disconnect", "b", "cancel the job when its caller leaves the bus" },
	{ NULL },
};

typedef struct {
	VmiSource *source;
	const char *which; /* "first" or "second", for messages */
	guint8 *buf;
} VmiCompareSide;

typedef struct {
	VmiCompareSide a;
	VmiCompareSide b;
	guint64 total; /* the longer size: the progress scale */
	VmiProgressFunc progress;
	gpointer user_data;
	GCancellable *cancellable;
} VmiCompare;

static void
vmi_compare_report (VmiCompare *self, guint64 done)
{
	if (self->progress != NULL)
		self->progress (done, self->total, self->user_data);
}

static gboolean
vmi_compare_cancelled (VmiCompare *self, GError **error)
{
	if (!g_cancellable_is_cancelled (self->cancellable))
		return FALSE;
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED, "the comparison was cancelled");
	return TRUE;
}

static gboolean
vmi_compare_extent (VmiCompareSide *side, guint64 offset, guint64 max_length, VmiExtent *extent,
		    GError **error)
{
	if (!vmi_source_block_status (side->source, offset, max_length, extent, error)) {
		g_prefix_error (error, "the %s image (%s): ", side->which,
				vmi_source_get_plugin (side->source)->name);
		return FALSE;
	}
	return TRUE;
}

/* The bytes [offset, offset + len) of one disk in side->buf: read if data, else zeros. */
static gboolean
vmi_compare_fill (VmiCompareSide *side, guint64 offset, gsize len, gboolean is_data,
		  GError **error)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (side->source);

	if (side->buf == NULL)
		side->buf = g_malloc (VMI_COMPARE_CHUNK);
	if (!is_data) {
		memset (side->buf, 0, len);
		return TRUE;
	}
	if (!plugin->read (vmi_source_get_image (side->source), offset, side->buf, len, error)) {
		g_prefix_error (error, "the %s image (%s): ", side->which, plugin->name);
		return FALSE;
	}
	return TRUE;
}

static gsize
vmi_compare_first_nonzero (const guint8 *buf, gsize len)
{
	gsize i = 0;

	/* Words first; the byte loop finds the exact place. */
	for (; i + sizeof (guint64) <= len; i += sizeof (guint64)) {
		guint64 word;

		memcpy (&word, buf + i, sizeof word);
		if (word != 0)
			break;
	}
	for (; i < len; i++) {
		if (buf[i] != 0)
			return i;
	}
	return len;
}

static gsize
vmi_compare_first_mismatch (const guint8 *a, const guint8 *b, gsize len)
{
	if (memcmp (a, b, len) == 0)
		return len;
	for (gsize i = 0; i < len; i++) {
		if (a[i] != b[i])
			return i;
	}
	return len;
}

/* The disks over [0, common): *found and *where the first difference if there is one. */
static gboolean
vmi_compare_common (VmiCompare *self, guint64 common, gboolean *found, guint64 *where,
		    GError **error)
{
	guint64 pos = 0;

	while (pos < common) {
		VmiExtent ea = { 0 };
		VmiExtent eb = { 0 };
		gboolean data_a, data_b;
		gsize run, at;

		if (vmi_compare_cancelled (self, error))
			return FALSE;
		if (!vmi_compare_extent (&self->a, pos, common - pos, &ea, error) ||
		    !vmi_compare_extent (&self->b, pos, common - pos, &eb, error))
			return FALSE;
		data_a = ea.kind == VMI_EXTENT_DATA;
		data_b = eb.kind == VMI_EXTENT_DATA;
		if (!data_a && !data_b) {
			pos += MIN (ea.length, eb.length);
			vmi_compare_report (self, pos);
			continue;
		}
		run = (gsize) MIN (MIN (ea.length, eb.length), VMI_COMPARE_CHUNK);
		if (!vmi_compare_fill (&self->a, pos, run, data_a, error) ||
		    !vmi_compare_fill (&self->b, pos, run, data_b, error))
			return FALSE;
		if (!data_a)
			at = vmi_compare_first_nonzero (self->b.buf, run);
		else if (!data_b)
			at = vmi_compare_first_nonzero (self->a.buf, run);
		else
			at = vmi_compare_first_mismatch (self->a.buf, self->b.buf, run);
		if (at < run) {
			*found = TRUE;
			*where = pos + at;
			return TRUE;
		}
		pos += run;
		vmi_compare_report (self, pos);
	}
	return TRUE;
}

/* The longer disk over [start, its end), which must read as zeros. */
static gboolean
vmi_compare_tail (VmiCompare *self, VmiCompareSide *side, guint64 start, gboolean *found,
		  guint64 *where, GError **error)
{
	guint64 end = vmi_source_get_virtual_size (side->source);
	guint64 pos = start;

	while (pos < end) {
		VmiExtent extent = { 0 };
		gsize run, at;

		if (vmi_compare_cancelled (self, error))
			return FALSE;
		if (!vmi_compare_extent (side, pos, end - pos, &extent, error))
			return FALSE;
		if (extent.kind != VMI_EXTENT_DATA) {
			pos += extent.length;
			vmi_compare_report (self, pos);
			continue;
		}
		run = (gsize) MIN (extent.length, VMI_COMPARE_CHUNK);
		if (!vmi_compare_fill (side, pos, run, TRUE, error))
			return FALSE;
		at = vmi_compare_first_nonzero (side->buf, run);
		if (at < run) {
			*found = TRUE;
			*where = pos + at;
			return TRUE;
		}
		pos += run;
		vmi_compare_report (self, pos);
	}
	return TRUE;
}

static gboolean
vmi_compare_check_readable (VmiSource *source, const char *which, GError **error)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (source);

	if ((plugin->flags & VMI_FORMAT_CAN_READ) != 0)
		return TRUE;
	g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
		     "vmimaged can inspect %s images but not read their content, so it cannot "
		     "compare the %s image",
		     plugin->name, which);
	return FALSE;
}

GVariant *
vmi_compare_choice (GVariant *normalized, const char *side)
{
	g_autofree char *disk_key = g_strconcat ("disk-", side, NULL);
	g_autofree char *member_key = g_strconcat ("member-", side, NULL);
	GVariantDict dict;
	guint64 disk;
	const char *member;

	g_variant_dict_init (&dict, NULL);
	if (g_variant_lookup (normalized, disk_key, "t", &disk))
		g_variant_dict_insert (&dict, "disk", "t", disk);
	if (g_variant_lookup (normalized, member_key, "&s", &member))
		g_variant_dict_insert (&dict, "member", "s", member);
	return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/* The member of a container that one side reads, as Convert chooses it, or NULL for the image. */
static gboolean
vmi_compare_open_side (VmiSource *image, GVariant *normalized, const char *side,
		       const char *which, VmiSource **member, GCancellable *cancellable,
		       GError **error)
{
	g_autoptr(GVariant) choice = vmi_compare_choice (normalized, side);

	if (vmi_members_open_chosen (image, choice, member, cancellable, error))
		return TRUE;
	g_prefix_error (error, "the %s image: ", which);
	return FALSE;
}

GVariant *
vmi_compare (VmiSource *a, VmiSource *b, GVariant *options, VmiProgressFunc progress,
	     gpointer user_data, GCancellable *cancellable, GError **error)
{
	g_autoptr(GVariant) normalized = NULL;
	g_autoptr(VmiSource) member_a = NULL;
	g_autoptr(VmiSource) member_b = NULL;
	guint64 size_a, size_b, common;
	VmiCompare self = {
		.a = { .which = "first" },
		.b = { .which = "second" },
		.progress = progress,
		.user_data = user_data,
		.cancellable = cancellable,
	};
	gboolean found = FALSE;
	guint64 where = 0;
	gboolean ok;
	GVariantBuilder builder;

	normalized = vmi_options_normalize (options, vmi_compare_options, NULL, error);
	if (normalized == NULL)
		return NULL;
	/* Containers (OVAs) are compared through the disks they hold. */
	if (!vmi_compare_open_side (a, normalized, "a", "first", &member_a, cancellable, error) ||
	    !vmi_compare_open_side (b, normalized, "b", "second", &member_b, cancellable, error))
		return NULL;
	if (member_a != NULL)
		a = member_a;
	if (member_b != NULL)
		b = member_b;
	self.a.source = a;
	self.b.source = b;
	size_a = vmi_source_get_virtual_size (a);
	size_b = vmi_source_get_virtual_size (b);
	common = MIN (size_a, size_b);
	self.total = MAX (size_a, size_b);
	if (!vmi_compare_check_readable (a, "first", error) ||
	    !vmi_compare_check_readable (b, "second", error))
		return NULL;
	vmi_compare_report (&self, 0);
	ok = vmi_compare_common (&self, common, &found, &where, error);
	if (ok && !found && size_a != size_b) {
		if (vmi_options_get_boolean (normalized, "strict", TRUE)) {
			found = TRUE;
			where = common;
		} else {
			ok = vmi_compare_tail (&self, size_a > size_b ? &self.a : &self.b, common,
					       &found, &where, error);
		}
	}
	g_free (self.a.buf);
	g_free (self.b.buf);
	if (!ok)
		return NULL;
	vmi_compare_report (&self, self.total);
	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add (&builder, "{sv}", "identical", g_variant_new_boolean (!found));
	if (found)
		g_variant_builder_add (&builder, "{sv}", "first-difference",
				       g_variant_new_uint64 (where));
	g_variant_builder_add (&builder, "{sv}", "size-a", g_variant_new_uint64 (size_a));
	g_variant_builder_add (&builder, "{sv}", "size-b", g_variant_new_uint64 (size_b));
	return g_variant_ref_sink (g_variant_builder_end (&builder));
}
