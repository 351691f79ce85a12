/*
 * pread up to the end of the file with the errors the plugin reports (writes are
 * vmi_pwrite_all). A short read is not an error here: callers say what it means.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "qcow2-format.h"

gboolean
qcow2_pread (int fd, void *buf, gsize len, guint64 offset, gsize *got, const char *what,
	     GError **error)
{
	gsize done = 0;

	if (offset > G_MAXINT64 || len > G_MAXINT64 - offset) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The %s at offset 0x%" G_GINT64_MODIFIER "x is out of range", what, offset);
		return FALSE;
	}
	while (done < len) {
		ssize_t n = pread (fd, (guint8 *) buf + done, len - done, (off_t) (offset + done));

		if (n < 0) {
			int saved = errno;

			if (saved == EINTR)
				continue;
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "Could not read the %s at offset 0x%" G_GINT64_MODIFIER "x: %s", what,
				     offset, g_strerror (saved));
			return FALSE;
		}
		if (n == 0)
			break;
		done += (gsize) n;
	}
	*got = done;
	return TRUE;
}

