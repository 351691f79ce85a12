#include <errno.h>
#include <unistd.h>

#include "vmi-plugin-util.h"

gboolean
vmi_pread_upto (int fd, void *buf, gsize len, guint64 offset, gsize *got, const char *what,
		GError **error)
{
	guint8 *p = buf;

	*got = 0;
	while (len > 0) {
		ssize_t n = pread (fd, p, MIN (len, (gsize) G_MAXSSIZE), (off_t) offset);

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
vmi_pread_all (int fd, void *buf, gsize len, guint64 offset, const char *what, GError **error)
{
	gsize got = 0;

	if (!vmi_pread_upto (fd, buf, len, offset, &got, what, error))
		return FALSE;
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
vmi_file_block_status (int fd, guint64 size, guint64 offset, guint64 max_length,
		       VmiExtent *extent, GError **error)
{
	guint64 remaining;
	off_t data, hole;

	if (offset >= size || max_length == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "block status at offset %" G_GUINT64_FORMAT " of a %" G_GUINT64_FORMAT
			     "-byte image is out of range",
			     offset, size);
		return FALSE;
	}
	remaining = MIN (max_length, size - offset);
	/* Any surprise from lseek (no SEEK_DATA support, a block device) means DATA: reading
	 * zeros costs time, skipping data would lose it. */
	extent->kind = VMI_EXTENT_DATA;
	extent->length = remaining;
	data = lseek (fd, (off_t) offset, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO)
			extent->kind = VMI_EXTENT_HOLE;
		return TRUE;
	}
	if ((guint64) data > offset) {
		extent->kind = VMI_EXTENT_HOLE;
		extent->length = MIN (remaining, (guint64) data - offset);
		return TRUE;
	}
	if ((guint64) data < offset)
		return TRUE;
	hole = lseek (fd, (off_t) offset, SEEK_HOLE);
	if (hole > 0 && (guint64) hole > offset)
		extent->length = MIN (remaining, (guint64) hole - offset);
	return TRUE;
}
