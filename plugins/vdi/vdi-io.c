/* The size of a VDI file being written, with the errors the writer reports. */
#include <errno.h>
#include <unistd.h>

#include "vdi-private.h"

static void
set_write_error (int errsv, guint64 offset, GError **error)
{
	g_set_error (error, VMI_ERROR, errsv == ENOSPC || errsv == EDQUOT ? VMI_ERROR_NO_SPACE : VMI_ERROR_FAILED,
		     "cannot write the VDI image at offset 0x%" G_GINT64_MODIFIER "x: %s", offset,
		     g_strerror (errsv));
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
