#include <zlib.h>

#include "vmi-ovf-gunzip.h"
#include "vmi-plugin-util.h"

#define GUNZIP_IN_SIZE (64u * 1024u)
#define GUNZIP_SKIP_SIZE (256u * 1024u)
#define GUNZIP_SLACK (G_GUINT64_CONSTANT (16) << 20)

struct _VmiOvfGunzip {
	int fd;
	guint64 base;
	guint64 size;
	guint64 limit;
	char *name;
	z_stream z;
	gboolean z_ready;
	guint64 in_pos;	 /* compressed bytes read from the file */
	guint64 out_pos; /* inflated bytes handed out or skipped */
	gboolean eof;
	gboolean failed; /* the stream is in an unknown state: restart it */
	guint8 in[GUNZIP_IN_SIZE];
};

guint64
vmi_ovf_gunzip_limit (guint64 capacity, guint64 compressed_size)
{
	guint64 limit;

	if (capacity == 0) {
		if (!g_uint64_checked_mul (&limit, compressed_size, 1032) ||
		    !g_uint64_checked_add (&limit, limit, GUNZIP_SLACK))
			return G_MAXUINT64;
		return limit;
	}
	if (!g_uint64_checked_add (&limit, capacity, capacity / 16) ||
	    !g_uint64_checked_add (&limit, limit, GUNZIP_SLACK))
		return G_MAXUINT64;
	return limit;
}

VmiOvfGunzip *
vmi_ovf_gunzip_new (int fd, guint64 offset, guint64 size, guint64 limit, const char *name)
{
	VmiOvfGunzip *self = g_new0 (VmiOvfGunzip, 1);

	self->fd = fd;
	self->base = offset;
	self->size = size;
	self->limit = limit;
	self->name = g_strdup (name);
	return self;
}

void
vmi_ovf_gunzip_free (VmiOvfGunzip *self)
{
	if (self == NULL)
		return;
	if (self->z_ready)
		inflateEnd (&self->z);
	g_free (self->name);
	g_free (self);
}

static gboolean
gunzip_restart (VmiOvfGunzip *self, GError **error)
{
	int ret;

	if (self->z_ready) {
		ret = inflateReset (&self->z);
	} else {
		/* 16 + 15: a gzip wrapper and the largest window */
		ret = inflateInit2 (&self->z, 16 + MAX_WBITS);
		self->z_ready = ret == Z_OK;
	}
	if (ret != Z_OK) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "cannot start inflating \"%s\": zlib error %d", self->name, ret);
		return FALSE;
	}
	self->z.next_in = self->in;
	self->z.avail_in = 0;
	self->in_pos = 0;
	self->out_pos = 0;
	self->eof = FALSE;
	self->failed = FALSE;
	return TRUE;
}

static gboolean
gunzip_fill (VmiOvfGunzip *self, GError **error)
{
	gsize n = (gsize) MIN ((guint64) GUNZIP_IN_SIZE, self->size - self->in_pos);

	if (!vmi_pread_all (self->fd, self->in, n, self->base + self->in_pos, "gzip data", error))
		return FALSE;
	self->in_pos += n;
	self->z.next_in = self->in;
	self->z.avail_in = (uInt) n;
	return TRUE;
}

/*
 * At the end of a gzip member: another one may follow (gzip files concatenate); anything else
 * after it is ignored, as gzip does.
 */
static gboolean
gunzip_member_end (VmiOvfGunzip *self, GError **error)
{
	if (self->z.avail_in == 0 && self->in_pos < self->size && !gunzip_fill (self, error))
		return FALSE;
	if (self->z.avail_in > 0 && self->z.next_in[0] == 0x1f &&
	    (self->z.avail_in < 2 || self->z.next_in[1] == 0x8b)) {
		if (inflateReset (&self->z) != Z_OK) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "cannot restart inflating \"%s\"", self->name);
			return FALSE;
		}
		return TRUE;
	}
	self->eof = TRUE;
	return TRUE;
}

/* Inflates into out: at least one byte unless the data ends (*produced 0, self->eof set). */
static gboolean
gunzip_step (VmiOvfGunzip *self, guint8 *out, gsize out_len, gsize *produced, GError **error)
{
	*produced = 0;
	out_len = (gsize) MIN ((guint64) out_len, (guint64) G_MAXUINT32);
	while (*produced == 0 && !self->eof) {
		int ret;

		if (self->z.avail_in == 0) {
			if (self->in_pos >= self->size) {
				g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
					     "the gzip data of \"%s\" ends early, after %" G_GUINT64_FORMAT
					     " bytes inflated to %" G_GUINT64_FORMAT
					     ": the file is truncated",
					     self->name, self->size, self->out_pos);
				return FALSE;
			}
			if (!gunzip_fill (self, error))
				return FALSE;
		}
		self->z.next_out = out;
		self->z.avail_out = (uInt) out_len;
		ret = inflate (&self->z, Z_NO_FLUSH);
		*produced = out_len - self->z.avail_out;
		if (ret == Z_STREAM_END) {
			if (!gunzip_member_end (self, error))
				return FALSE;
		} else if (ret != Z_OK && !(ret == Z_BUF_ERROR && self->z.avail_in == 0)) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the gzip data of \"%s\" is damaged near byte %" G_GUINT64_FORMAT
				     " of %" G_GUINT64_FORMAT ": %s",
				     self->name, self->in_pos - self->z.avail_in, self->size,
				     self->z.msg != NULL ? self->z.msg : "not deflate data");
			return FALSE;
		}
	}
	if (*produced > self->limit - MIN (self->out_pos, self->limit)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
			     "the gzip file \"%s\" inflates to more than %" G_GUINT64_FORMAT
			     " bytes (from %" G_GUINT64_FORMAT "), beyond what its disk's capacity "
			     "allows: a decompression bomb, or the OVF understates the disk",
			     self->name, self->limit, self->size);
		return FALSE;
	}
	self->out_pos += *produced;
	return TRUE;
}

static gboolean
gunzip_read (VmiOvfGunzip *self, guint64 offset, void *buf, gsize len, gsize *got,
	     GError **error)
{
	g_autofree guint8 *scratch = NULL;
	gsize done = 0;

	*got = 0;
	if (!self->z_ready || self->failed || offset < self->out_pos) {
		if (!gunzip_restart (self, error))
			return FALSE;
	}
	while (self->out_pos < offset && !self->eof) {
		gsize n;

		if (scratch == NULL)
			scratch = g_malloc (GUNZIP_SKIP_SIZE);
		if (!gunzip_step (self, scratch, (gsize) MIN ((guint64) GUNZIP_SKIP_SIZE,
							     offset - self->out_pos),
				  &n, error))
			return FALSE;
	}
	while (done < len && !self->eof) {
		gsize n;

		if (!gunzip_step (self, (guint8 *) buf + done, len - done, &n, error))
			return FALSE;
		done += n;
	}
	*got = done;
	return TRUE;
}

gboolean
vmi_ovf_gunzip_read (VmiOvfGunzip *self, guint64 offset, void *buf, gsize len, gsize *got,
		     GError **error)
{
	if (!gunzip_read (self, offset, buf, len, got, error)) {
		self->failed = TRUE;
		*got = 0;
		return FALSE;
	}
	return TRUE;
}
