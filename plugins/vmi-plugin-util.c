#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-plugin-util.h"

/* Reads at base + offset; messages name offset, the position within the image. */
static gboolean
pread_upto_at (int fd, guint64 base, void *buf, gsize len, guint64 offset, gsize *got,
	       const char *what, GError **error)
{
	guint8 *p = buf;

	*got = 0;
	while (len > 0) {
		ssize_t n = pread (fd, p, MIN (len, (gsize) G_MAXSSIZE), (off_t) (base + offset));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int errsv = errno;
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "cannot read %" G_GSIZE_FORMAT " bytes at offset 0x%" G_GINT64_MODIFIER
				     "x of the %s: %s",
				     len, offset, what, g_strerror (errsv));
			return FALSE;
		}
		if (n == 0)
			break;
		p += n;
		len -= (gsize) n;
		offset += (guint64) n;
		*got += (gsize) n;
	}
	return TRUE;
}

gboolean
vmi_pread_upto (int fd, void *buf, gsize len, guint64 offset, gsize *got, const char *what,
		GError **error)
{
	return pread_upto_at (fd, 0, buf, len, offset, got, what, error);
}

static gboolean
check_got_all (gsize got, gsize len, guint64 offset, const char *what, GError **error)
{
	if (got < len) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the %s ends at offset 0x%" G_GINT64_MODIFIER
			     "x with %" G_GSIZE_FORMAT " bytes still to read: it is truncated",
			     what, offset + got, len - got);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_pread_all (int fd, void *buf, gsize len, guint64 offset, const char *what, GError **error)
{
	gsize got = 0;

	if (!vmi_pread_upto (fd, buf, len, offset, &got, what, error))
		return FALSE;
	return check_got_all (got, len, offset, what, error);
}

gboolean
vmi_file_range_init (VmiFileRange *range, const VmiOpenArgs *args, GError **error)
{
	struct stat st;
	guint64 end;

	range->fd = args->fd;
	range->base = args->offset;
	range->size = args->file_size;
	if (!g_uint64_checked_add (&end, args->offset, args->file_size) || end > G_MAXINT64) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "an image of %" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
			     " would end beyond the largest file offset",
			     args->file_size, args->offset);
		return FALSE;
	}
	/* A block device's st_size is 0; only a regular file's end is known here. */
	if (fstat (args->fd, &st) == 0 && S_ISREG (st.st_mode) && end > (guint64) st.st_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the image of %" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
			     " would end at offset %" G_GUINT64_FORMAT ", beyond the end of the %" G_GINT64_FORMAT
			     "-byte file: it is truncated",
			     args->file_size, args->offset, end, (gint64) st.st_size);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_range_pread_upto (const VmiFileRange *range, void *buf, gsize len, guint64 offset, gsize *got,
		      const char *what, GError **error)
{
	gsize n = offset >= range->size ? 0 : (gsize) MIN ((guint64) len, range->size - offset);

	return pread_upto_at (range->fd, range->base, buf, n, offset, got, what, error);
}

gboolean
vmi_range_pread_all (const VmiFileRange *range, void *buf, gsize len, guint64 offset,
		     const char *what, GError **error)
{
	gsize got = 0;

	if (!vmi_range_pread_upto (range, buf, len, offset, &got, what, error))
		return FALSE;
	return check_got_all (got, len, offset, what, error);
}

gboolean
vmi_pwrite_all (int fd, const void *buf, gsize len, guint64 offset, const char *what,
		GError **error)
{
	const guint8 *p = buf;

	while (len > 0) {
		ssize_t n = pwrite (fd, p, MIN (len, (gsize) G_MAXSSIZE), (off_t) offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* pwrite of a non-zero length returns 0 only on a full device */
			int errsv = n < 0 ? errno : ENOSPC;
			g_set_error (error, VMI_ERROR,
				     errsv == ENOSPC || errsv == EDQUOT ? VMI_ERROR_NO_SPACE
								       : VMI_ERROR_FAILED,
				     "cannot write %" G_GSIZE_FORMAT " bytes at offset 0x%" G_GINT64_MODIFIER
				     "x of the %s: %s",
				     len, offset, what, g_strerror (errsv));
			return FALSE;
		}
		p += n;
		len -= (gsize) n;
		offset += (guint64) n;
	}
	return TRUE;
}

gboolean
vmi_range_block_status (const VmiFileRange *range, guint64 offset, guint64 max_length,
			VmiExtent *extent, GError **error)
{
	guint64 remaining, at;
	off_t data, hole;

	if (offset >= range->size || max_length == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "block status at offset %" G_GUINT64_FORMAT " of a %" G_GUINT64_FORMAT
			     "-byte image is out of range",
			     offset, range->size);
		return FALSE;
	}
	remaining = MIN (max_length, range->size - offset);
	at = range->base + offset;
	/* Any surprise from lseek (no SEEK_DATA support, a block device) means DATA: reading
	 * zeros costs time, skipping data would lose it. The answers are file offsets, made
	 * relative to at and clipped to remaining, so what lies past the range never counts. */
	extent->kind = VMI_EXTENT_DATA;
	extent->length = remaining;
	data = lseek (range->fd, (off_t) at, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO)
			extent->kind = VMI_EXTENT_HOLE;
		return TRUE;
	}
	if ((guint64) data > at) {
		extent->kind = VMI_EXTENT_HOLE;
		extent->length = MIN (remaining, (guint64) data - at);
		return TRUE;
	}
	if ((guint64) data < at)
		return TRUE;
	hole = lseek (range->fd, (off_t) at, SEEK_HOLE);
	if (hole > 0 && (guint64) hole > at)
		extent->length = MIN (remaining, (guint64) hole - at);
	return TRUE;
}

void
vmi_check_add_problem (VmiCheckResult *result, const char *format, ...)
{
	va_list ap;

	if (result->problems == NULL || result->problems->len >= VMI_CHECK_MAX_PROBLEMS)
		return;
	va_start (ap, format);
	g_ptr_array_add (result->problems, g_strdup_vprintf (format, ap));
	va_end (ap);
}
