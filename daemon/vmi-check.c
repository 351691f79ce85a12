#include <errno.h>
#include <unistd.h>

#include "vmi-check.h"
#include "vmi-content-hash.h"
#include "vmi-members.h"
#include "vmi-options.h"

/* Bytes read per call, in both passes: large sequential reads, prompt cancellation. */
#define VMI_CHECK_CHUNK (4u * 1024u * 1024u)
/* After this many failed reads the disk is hopeless: stop instead of failing through 1 TiB. */
#define VMI_CHECK_MAX_READ_ERRORS 1000u

const VmiOptionSpec vmi_check_options[] = {
	{ "source-format", "s", "format of the image; detected when absent" },
	{ "sha256", "b", "also compute the SHA-256 of the file's bytes" },
	{ "md5", "b", "also compute the MD5 of the file's bytes" },
	{ "content-sha256", "b", "also compute the content digest of the virtual disk" },
	{ "disk", "t", "in a container: check its disk of this index (default 0)" },
	{ "member", "s", "in a container: check the member of this name, or of this role" },
	{ "cancel-on-disconnect", "b", "cancel the job when its caller leaves the bus" },
	{ NULL },
};

typedef struct {
	VmiSource *source;
	VmiProgressFunc progress;
	gpointer user_data;
	GCancellable *cancellable;
	guint64 work_done;  /* of the passes already finished */
	guint64 work_total; /* of every pass */
	VmiCheckResult result;
	guint64 check_errors;
	guint64 data_bytes;
} VmiCheck;

static void
vmi_check_take_problem (VmiCheck *self, char *sentence)
{
	if (self->result.problems->len >= VMI_CHECK_MAX_PROBLEMS) {
		g_free (sentence);
		return;
	}
	g_ptr_array_add (self->result.problems, sentence);
}

static void
vmi_check_report (VmiCheck *self, guint64 pass_done)
{
	if (self->progress != NULL)
		self->progress (self->work_done + pass_done, self->work_total, self->user_data);
}

static gboolean
vmi_check_cancelled (VmiCheck *self, GError **error)
{
	if (!g_cancellable_is_cancelled (self->cancellable))
		return FALSE;
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED, "the check was cancelled");
	return TRUE;
}

static void
vmi_check_read_error (VmiCheck *self, char *sentence)
{
	self->check_errors++;
	vmi_check_take_problem (self, sentence);
}

/*
 * Reads every allocated byte of the virtual disk: a broken table, a truncated file or a bad
 * compressed cluster shows up as a failed read, which the format's check may not see.
 */
static gboolean
vmi_check_read_all (VmiCheck *self, GError **error)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (self->source);
	VmiImage *image = vmi_source_get_image (self->source);
	guint64 total = vmi_source_get_virtual_size (self->source);
	guint64 offset = 0;
	g_autofree guint8 *buf = NULL;

	while (offset < total) {
		g_autoptr(GError) local_error = NULL;
		VmiExtent extent = { 0 };
		guint64 end;

		if (vmi_check_cancelled (self, error))
			return FALSE;
		if (self->check_errors >= VMI_CHECK_MAX_READ_ERRORS) {
			vmi_check_take_problem (
				self, g_strdup_printf ("stopped reading at offset %" G_GUINT64_FORMAT
						       " after %u failed reads",
						       offset, VMI_CHECK_MAX_READ_ERRORS));
			break;
		}
		if (!vmi_source_block_status (self->source, offset, total - offset, &extent,
					      &local_error)) {
			guint64 skip = MIN (total - offset, VMI_CHECK_CHUNK - offset % VMI_CHECK_CHUNK);

			/* Unmapped: count it and go on with the next chunk, which may be fine. */
			vmi_check_read_error (
				self, g_strdup_printf ("cannot map offset %" G_GUINT64_FORMAT
						       " of the virtual disk: %s",
						       offset,
						       local_error->message));
			offset += skip;
			vmi_check_report (self, offset);
			continue;
		}
		end = offset + extent.length;
		if (extent.kind != VMI_EXTENT_DATA) {
			offset = end;
			vmi_check_report (self, offset);
			continue;
		}
		if (buf == NULL)
			buf = g_malloc (VMI_CHECK_CHUNK);
		while (offset < end) {
			gsize len = (gsize) MIN (end - offset,
						 VMI_CHECK_CHUNK - offset % VMI_CHECK_CHUNK);

			if (vmi_check_cancelled (self, error))
				return FALSE;
			if (!plugin->read (image, offset, buf, len, &local_error)) {
				vmi_check_read_error (
					self, g_strdup_printf ("cannot read %" G_GSIZE_FORMAT
							       " bytes at offset %" G_GUINT64_FORMAT
							       " of the virtual disk: %s",
							       len, offset, local_error->message));
				g_clear_error (&local_error);
			} else {
				self->data_bytes += len;
			}
			offset += len;
			vmi_check_report (self, offset);
		}
	}
	return TRUE;
}

/* SHA-256 and/or MD5 of the bytes of the image file as stored (what an image service records);
 * of the member's bytes for a disk inside an archive. */
static gboolean
vmi_check_file_digests (VmiCheck *self, GChecksum *sha256, GChecksum *md5, GError **error)
{
	int fd = vmi_source_get_fd (self->source);
	guint64 base = vmi_source_get_offset (self->source);
	guint64 size = vmi_source_get_file_size (self->source);
	guint64 offset = 0;
	g_autofree guint8 *buf = g_malloc (VMI_CHECK_CHUNK);

	while (offset < size) {
		gsize want = (gsize) MIN (size - offset, VMI_CHECK_CHUNK);
		ssize_t got;

		if (vmi_check_cancelled (self, error))
			return FALSE;
		got = pread (fd, buf, want, (off_t) (base + offset));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int errsv = errno;

			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "cannot read the image file at offset %" G_GUINT64_FORMAT
				     ": %s",
				     offset, g_strerror (errsv));
			return FALSE;
		}
		if (got == 0) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "the image file ended at %" G_GUINT64_FORMAT
				     " bytes while it was read; was it truncated during the check?",
				     offset);
			return FALSE;
		}
		if (sha256 != NULL)
			g_checksum_update (sha256, buf, (gsize) got);
		if (md5 != NULL)
			g_checksum_update (md5, buf, (gsize) got);
		offset += (guint64) got;
		vmi_check_report (self, offset);
	}
	return TRUE;
}

static void
vmi_check_content_progress_cb (guint64 bytes_done, guint64 bytes_total, gpointer user_data)
{
	vmi_check_report (user_data, bytes_done);
}

static void
vmi_check_add_u64 (GVariantBuilder *builder, const char *key, guint64 value)
{
	g_variant_builder_add (builder, "{sv}", key, g_variant_new_uint64 (value));
}

static GVariant *
vmi_check_to_variant (VmiCheck *self, const char *member, gboolean checked, const char *sha256,
		      const char *md5, const char *content_sha256)
{
	const VmiCheckResult *result = &self->result;
	GVariantBuilder builder;

	g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
	if (member != NULL)
		g_variant_builder_add (&builder, "{sv}", "member", g_variant_new_string (member));
	g_variant_builder_add (&builder, "{sv}", "format",
			       g_variant_new_string (vmi_source_get_plugin (self->source)->name));
	vmi_check_add_u64 (&builder, "virtual-size", vmi_source_get_virtual_size (self->source));
	g_variant_builder_add (&builder, "{sv}", "consistency-checked",
			       g_variant_new_boolean (checked));
	vmi_check_add_u64 (&builder, "corruptions", result->corruptions);
	vmi_check_add_u64 (&builder, "leaks", result->leaks);
	vmi_check_add_u64 (&builder, "check-errors", self->check_errors);
	g_variant_builder_add (&builder, "{sv}", "problems",
			       g_variant_new_strv ((const char *const *) result->problems->pdata,
						   (gssize) result->problems->len));
	/* A format without a check of its own uses the whole file. */
	vmi_check_add_u64 (&builder, "image-end-offset",
			   checked && result->image_end_offset != 0
				   ? result->image_end_offset
				   : vmi_source_get_file_size (self->source));
	vmi_check_add_u64 (&builder, "data-bytes", self->data_bytes);
	if (result->total_clusters != 0) {
		vmi_check_add_u64 (&builder, "total-clusters", result->total_clusters);
		vmi_check_add_u64 (&builder, "allocated-clusters", result->allocated_clusters);
		vmi_check_add_u64 (&builder, "fragmented-clusters", result->fragmented_clusters);
		vmi_check_add_u64 (&builder, "compressed-clusters", result->compressed_clusters);
	}
	if (sha256 != NULL)
		g_variant_builder_add (&builder, "{sv}", "sha256", g_variant_new_string (sha256));
	if (md5 != NULL)
		g_variant_builder_add (&builder, "{sv}", "md5", g_variant_new_string (md5));
	if (content_sha256 != NULL)
		g_variant_builder_add (&builder, "{sv}", "content-sha256",
				       g_variant_new_string (content_sha256));
	return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static void
vmi_check_clear (VmiCheck *self)
{
	g_clear_pointer (&self->result.problems, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (VmiCheck, vmi_check_clear)

GVariant *
vmi_check (VmiSource *container, GVariant *options, VmiProgressFunc progress,
	   gpointer user_data, GCancellable *cancellable, GError **error)
{
	g_auto(VmiCheck) self = { 0 };
	g_autoptr(GVariant) normalized = NULL;
	g_autoptr(GChecksum) sha256 = NULL;
	g_autoptr(GChecksum) md5 = NULL;
	g_autoptr(VmiSource) member = NULL;
	g_autofree char *content_sha256 = NULL;
	const char *member_name = NULL;
	const VmiFormatPlugin *plugin;
	VmiSource *source = container;
	guint64 virtual_size, file_size;
	gboolean want_content;
	gint index = -1;

	normalized = vmi_options_normalize (options, vmi_check_options, NULL, error);
	if (normalized == NULL)
		return NULL;
	/* A container (an OVA) is checked through the disk it holds, as Convert reads it. */
	if (!vmi_members_select (container, normalized, &index, error) ||
	    !vmi_members_open_chosen (container, normalized, &member, cancellable, error))
		return NULL;
	if (member != NULL) {
		const VmiMember *chosen =
			g_ptr_array_index (vmi_source_get_info (container)->members, (guint) index);

		source = member;
		member_name = chosen->name;
	}
	plugin = vmi_source_get_plugin (source);
	virtual_size = vmi_source_get_virtual_size (source);
	file_size = vmi_source_get_file_size (source);
	if ((plugin->flags & VMI_FORMAT_CAN_READ) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "vmimaged can inspect %s images but not read their content, so it "
			     "cannot check them",
			     plugin->name);
		return NULL;
	}
	if (vmi_options_get_boolean (normalized, "sha256", FALSE))
		sha256 = g_checksum_new (G_CHECKSUM_SHA256);
	if (vmi_options_get_boolean (normalized, "md5", FALSE))
		md5 = g_checksum_new (G_CHECKSUM_MD5);
	want_content = vmi_options_get_boolean (normalized, "content-sha256", FALSE);

	self.source = source;
	self.progress = progress;
	self.user_data = user_data;
	self.cancellable = cancellable;
	self.result.problems = g_ptr_array_new_with_free_func (g_free);
	self.work_total = virtual_size;
	if (sha256 != NULL || md5 != NULL)
		self.work_total += file_size;
	if (want_content)
		self.work_total += virtual_size;
	vmi_check_report (&self, 0);

	if (plugin->check != NULL) {
		if (vmi_check_cancelled (&self, error))
			return NULL;
		if (!plugin->check (vmi_source_get_image (source), &self.result, cancellable, error))
			return NULL;
	}
	if (!vmi_check_read_all (&self, error))
		return NULL;
	self.work_done += virtual_size;
	if (sha256 != NULL || md5 != NULL) {
		if (!vmi_check_file_digests (&self, sha256, md5, error))
			return NULL;
		self.work_done += file_size;
	}
	if (want_content) {
		g_autoptr(GError) local_error = NULL;

		/* A disk that cannot be read whole has no digest: a finding, not a failure. */
		if (!vmi_content_hash (source, vmi_check_content_progress_cb, &self, cancellable,
				       &content_sha256, NULL, &local_error)) {
			if (vmi_check_cancelled (&self, error))
				return NULL;
			vmi_check_take_problem (
				&self, g_strdup_printf ("no content-sha256: %s",
							local_error->message));
		}
		self.work_done += virtual_size;
	}
	vmi_check_report (&self, 0);
	return vmi_check_to_variant (&self, member_name, plugin->check != NULL,
				     sha256 != NULL ? g_checksum_get_string (sha256) : NULL,
				     md5 != NULL ? g_checksum_get_string (md5) : NULL,
				     content_sha256);
}
