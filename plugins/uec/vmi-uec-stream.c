#include <errno.h>
#include <string.h>

#include "vmi-plugin-util.h"
#include "vmi-uec-stream.h"

/* What one read callback hands libarchive: the gzip filter asks again when it needs more. */
#define UEC_READ_CHUNK (64u * 1024u)
/* libarchive asks to retry a header at most this often before the archive counts as damaged. */
#define UEC_MAX_RETRIES 16u

struct _VmiUecStream {
	struct archive *archive;
	int fd;
	guint64 offset; /* of the tarball in fd */
	guint64 size;	/* of the tarball */
	guint64 pos;	/* next byte of the tarball the read callback hands over */
	guint64 limit;	/* of tar stream bytes inflated */
	GCancellable *cancellable;
	GError *read_error; /* from the read callback, which can only return -1 */
	guint count;

	/* The current entry. */
	struct archive_entry *entry;
	char *entry_name;	  /* valid UTF-8, for messages */
	guint64 entry_size;	  /* what its header declares */
	guint64 entry_pos;	  /* bytes of its data handed out or skipped */
	const guint8 *block;	  /* the part of libarchive's last block not handed out yet */
	gsize block_len;
	guint64 block_at;	  /* where block starts in the entry (after a hole: beyond entry_pos) */
	gboolean entry_done;	  /* libarchive has no more blocks of this entry */

	guint8 chunk[UEC_READ_CHUNK];
};

static la_ssize_t
uec_stream_read_cb (struct archive *archive, void *data, const void **buffer)
{
	VmiUecStream *self = data;
	gsize len = (gsize) MIN ((guint64) UEC_READ_CHUNK, self->size - self->pos);

	*buffer = self->chunk;
	if (len == 0)
		return 0;
	if (!vmi_pread_all (self->fd, self->chunk, len, self->offset + self->pos, "UEC tarball",
			    &self->read_error)) {
		archive_set_error (archive, EIO, "%s", self->read_error->message);
		return -1;
	}
	self->pos += len;
	return (la_ssize_t) len;
}

static const char *
uec_stream_archive_message (VmiUecStream *self)
{
	const char *message = archive_error_string (self->archive);

	return message != NULL ? message : "no reason given";
}

/* A failure of libarchive: the read callback's own error, or a damaged archive. */
static void
uec_stream_set_error (VmiUecStream *self, GError **error, const char *format, ...)
	G_GNUC_PRINTF (3, 4);

static void
uec_stream_set_error (VmiUecStream *self, GError **error, const char *format, ...)
{
	g_autofree char *what = NULL;
	va_list args;

	if (self->read_error != NULL) {
		g_propagate_error (error, g_steal_pointer (&self->read_error));
		return;
	}
	va_start (args, format);
	what = g_strdup_vprintf (format, args);
	va_end (args);
	g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
		     "%s, after %" G_GUINT64_FORMAT " of the %" G_GUINT64_FORMAT
		     " compressed bytes (%" G_GUINT64_FORMAT " inflated): %s; the tarball is "
		     "truncated or damaged",
		     what, (guint64) MAX (archive_filter_bytes (self->archive, -1), 0), self->size,
		     vmi_uec_stream_get_inflated (self), uec_stream_archive_message (self));
}

guint64
vmi_uec_stream_get_inflated (VmiUecStream *self)
{
	return (guint64) MAX (archive_filter_bytes (self->archive, 0), 0);
}

static gboolean
uec_stream_check_limit (VmiUecStream *self, guint64 more, GError **error)
{
	guint64 total;

	if (g_uint64_checked_add (&total, vmi_uec_stream_get_inflated (self), more) &&
	    total <= self->limit)
		return TRUE;
	if (more > 0)
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
			     "the member \"%s\" declares %" G_GUINT64_FORMAT " bytes: with the %" G_GUINT64_FORMAT
			     " before it, more than the %" G_GUINT64_FORMAT " bytes this reader "
			     "inflates from a %" G_GUINT64_FORMAT "-byte tarball (a gzip bomb?)",
			     self->entry_name, more, vmi_uec_stream_get_inflated (self), self->limit,
			     self->size);
	else
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
			     "the tarball inflates to more than %" G_GUINT64_FORMAT " bytes, the most "
			     "this reader inflates from a %" G_GUINT64_FORMAT "-byte file (a gzip bomb?)",
			     self->limit, self->size);
	return FALSE;
}

VmiUecStream *
vmi_uec_stream_new (int fd, guint64 offset, guint64 size, guint64 limit,
		    GCancellable *cancellable, GError **error)
{
	g_autoptr(VmiUecStream) self = g_new0 (VmiUecStream, 1);

	self->fd = fd;
	self->offset = offset;
	self->size = size;
	self->limit = limit;
	self->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
	self->entry_name = g_strdup ("");
	self->archive = archive_read_new ();
	if (self->archive == NULL)
		g_error ("out of memory creating an archive reader");
	/* gzip and tar only: the less of libarchive sees hostile bytes, the better. */
	if (archive_read_support_filter_gzip (self->archive) != ARCHIVE_OK ||
	    archive_read_support_format_tar (self->archive) != ARCHIVE_OK) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "libarchive cannot read gzipped tar archives in-process: %s",
			     uec_stream_archive_message (self));
		return NULL;
	}
	if (archive_read_open (self->archive, self, NULL, uec_stream_read_cb, NULL) != ARCHIVE_OK) {
		if (self->read_error != NULL) {
			g_propagate_error (error, g_steal_pointer (&self->read_error));
			return NULL;
		}
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "the file is not a gzipped tar archive: %s",
			     uec_stream_archive_message (self));
		return NULL;
	}
	return g_steal_pointer (&self);
}

void
vmi_uec_stream_free (VmiUecStream *self)
{
	if (self == NULL)
		return;
	if (self->archive != NULL)
		archive_read_free (self->archive);
	g_clear_error (&self->read_error);
	g_clear_object (&self->cancellable);
	g_free (self->entry_name);
	g_free (self);
}

guint
vmi_uec_stream_get_count (VmiUecStream *self)
{
	return self->count;
}

guint64
vmi_uec_stream_get_position (VmiUecStream *self)
{
	return self->entry_pos;
}

/* Takes libarchive's next block of the current entry; sets entry_done at its end. */
static gboolean
uec_stream_fetch (VmiUecStream *self, GError **error)
{
	const void *buf = NULL;
	size_t len = 0;
	la_int64_t at = 0;
	int r;

	if (g_cancellable_is_cancelled (self->cancellable)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED,
				     "reading the UEC tarball was cancelled");
		return FALSE;
	}
	r = archive_read_data_block (self->archive, &buf, &len, &at);
	if (r == ARCHIVE_EOF) {
		self->entry_done = TRUE;
		return TRUE;
	}
	if (r < ARCHIVE_WARN) {
		uec_stream_set_error (self, error,
				      "the data of member \"%s\" cannot be read at byte %" G_GUINT64_FORMAT
				      " of its %" G_GUINT64_FORMAT,
				      self->entry_name, self->entry_pos, self->entry_size);
		return FALSE;
	}
	if (at < 0 || (guint64) at < self->block_at + self->block_len || (guint64) at > self->entry_size ||
	    len > self->entry_size - (guint64) at) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the sparse map of member \"%s\" puts %" G_GSIZE_FORMAT " bytes at offset %"
			     G_GINT64_FORMAT ", out of order or beyond its %" G_GUINT64_FORMAT " bytes",
			     self->entry_name, (gsize) len, (gint64) at, self->entry_size);
		return FALSE;
	}
	self->block = buf;
	self->block_len = len;
	self->block_at = (guint64) at;
	return uec_stream_check_limit (self, 0, error);
}

/*
 * Hands out (buf non-NULL) or drops up to len bytes of the current entry; *got is 0 only at its
 * end. A hole before a block, or after the last one, reads as zeros.
 */
static gboolean
uec_stream_advance (VmiUecStream *self, guint8 *buf, guint64 len, guint64 *got, GError **error)
{
	*got = 0;
	while (len > 0 && self->entry_pos < self->entry_size) {
		guint64 n;

		if (self->block_len == 0 && !self->entry_done) {
			if (!uec_stream_fetch (self, error))
				return FALSE;
			continue;
		}
		if (self->block_len > 0 && self->block_at > self->entry_pos)
			n = MIN (len, self->block_at - self->entry_pos); /* a hole */
		else if (self->block_len > 0)
			n = MIN (len, (guint64) self->block_len);
		else
			n = MIN (len, self->entry_size - self->entry_pos); /* the hole at the end */
		if (self->block_len > 0 && self->block_at <= self->entry_pos) {
			if (buf != NULL)
				memcpy (buf + *got, self->block, (gsize) n);
			self->block += n;
			self->block_len -= (gsize) n;
			self->block_at += n;
		} else if (buf != NULL) {
			memset (buf + *got, 0, (gsize) n);
		}
		self->entry_pos += n;
		*got += n;
		len -= n;
		if (buf != NULL)
			break; /* a short read is fine; the caller loops */
	}
	return TRUE;
}

gboolean
vmi_uec_stream_read (VmiUecStream *self, void *buf, gsize len, gsize *got, GError **error)
{
	guint64 done = 0, n = 0;

	while (done < len) {
		if (!uec_stream_advance (self, (guint8 *) buf + done, len - done, &n, error))
			return FALSE;
		if (n == 0)
			break;
		done += n;
	}
	*got = (gsize) done;
	return TRUE;
}

gboolean
vmi_uec_stream_skip (VmiUecStream *self, guint64 n, guint64 *skipped, GError **error)
{
	guint64 got = 0;

	if (!uec_stream_advance (self, NULL, n, &got, error))
		return FALSE;
	if (skipped != NULL)
		*skipped = got;
	return TRUE;
}

static void
uec_stream_start_entry (VmiUecStream *self, struct archive_entry *entry)
{
	const char *name = archive_entry_pathname (entry);

	self->entry = entry;
	g_free (self->entry_name);
	self->entry_name = g_utf8_make_valid (name != NULL ? name : "", -1);
	self->entry_size = archive_entry_size_is_set (entry) ? (guint64) MAX (archive_entry_size (entry), 0)
							      : 0;
	self->entry_pos = 0;
	self->block = NULL;
	self->block_len = 0;
	self->block_at = 0;
	self->entry_done = FALSE;
	self->count++;
}

gboolean
vmi_uec_stream_next (VmiUecStream *self, struct archive_entry **entry, GError **error)
{
	guint retries = 0;
	int r;

	*entry = NULL;
	if (self->entry != NULL) {
		/* Drop the rest of the current entry ourselves: within the limit, cancellable. */
		guint64 dropped;

		do {
			if (!vmi_uec_stream_skip (self, G_MAXUINT64, &dropped, error))
				return FALSE;
		} while (dropped > 0);
		while (!self->entry_done) {
			self->block_len = 0;
			if (!uec_stream_fetch (self, error))
				return FALSE;
		}
		self->entry = NULL;
	}
	do {
		struct archive_entry *next = NULL;

		r = archive_read_next_header (self->archive, &next);
		if (r == ARCHIVE_EOF)
			return uec_stream_check_limit (self, 0, error);
		if (r >= ARCHIVE_WARN) {
			if (self->count == 0 &&
			    (archive_filter_count (self->archive) != 2 ||
			     archive_filter_code (self->archive, 0) != ARCHIVE_FILTER_GZIP)) {
				g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
					     "the file is a %s tar archive, not a tar in one layer of "
					     "gzip as a UEC tarball is",
					     archive_filter_count (self->archive) > 2 ? "multiply compressed"
										       : "plain");
				return FALSE;
			}
			uec_stream_start_entry (self, next);
			if (!uec_stream_check_limit (self, archive_entry_sparse_count (next) > 0 ? 0 : self->entry_size,
						     error))
				return FALSE;
			*entry = next;
			return TRUE;
		}
	} while (r == ARCHIVE_RETRY && ++retries < UEC_MAX_RETRIES);
	if (self->read_error != NULL) {
		g_propagate_error (error, g_steal_pointer (&self->read_error));
		return FALSE;
	}
	if (self->count == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "the file is not a gzipped tar archive: %s", uec_stream_archive_message (self));
		return FALSE;
	}
	uec_stream_set_error (self, error, "the header after member %u (\"%s\") cannot be read",
			      self->count, self->entry_name);
	return FALSE;
}
