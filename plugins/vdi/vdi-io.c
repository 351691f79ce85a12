/* Whole reads and writes at an offset, retried on EINTR and short transfers. */
#include <errno.h>
#include <unistd.h>

#include "vdi-private.h"

gboolean
vdi_pread_all (int fd, void *buf, gsize len, guint64 offset, GError **error)
{
	guint8 *p = buf;
	gsize done = 0;

	while (done < len) {
		ssize_t n = pread (fd, p + done, len - done, (off_t) (offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int errsv = errno;
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "cannot read the VDI image at offset 0x%" G_GINT64_MODIFIER "x: %s",
				     offset + done, g_strerror (errsv));
			return FALSE;
		}
		if (n == 0) {
			/* Every range was checked against the size at open; the file shrank since. */
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the VDI image ends at offset 0x%" G_GINT64_MODIFIER "x, inside data "
				     "it needs (was the file truncated while open?)",
				     offset + done);
			return FALSE;
		}
		done += (gsize) n;
	}
	return TRUE;
}

static void
set_write_error (int errsv, guint64 offset, GError **error)
{
	g_set_error (error, VMI_ERROR, errsv == ENOSPC || errsv == EDQUOT ? VMI_ERROR_NO_SPACE : VMI_ERROR_FAILED,
		     "cannot write the VDI image at offset 0x%" G_GINT64_MODIFIER "x: %s", offset,
		     g_strerror (errsv));
}

gboolean
vdi_pwrite_all (int fd, const void *buf, gsize len, guint64 offset, GError **error)
{
	const guint8 *p = buf;
	gsize done = 0;

	while (done < len) {
		ssize_t n = pwrite (fd, p + done, len - done, (off_t) (offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			set_write_error (n < 0 ? errno : ENOSPC, offset + done, error);
			return FALSE;
		}
		done += (gsize) n;
	}
	return TRUE;
}

gboolean
vdi_set_file_size (int fd, guint64 size, GError **error)
{
	if (size > G_MAXINT64) {
		set_write_error (EFBIG, size, error);
		return FALSE;
	}
	while (ftruncate (fd, (off_t) size) != 0) {
		if (errno == EINTR)
			continue;
		set_write_error (errno, size, error);
		return FALSE;
	}
	return TRUE;
}
