/*
 * vmi_range_pread_upto of a qcow2 structure, refused first when its offset cannot be a file
 * offset. A short read is not an error here: callers say what it means.
 */
#include "qcow2-format.h"

gboolean
qcow2_pread (const VmiFileRange *file, void *buf, gsize len, guint64 offset, gsize *got, const char *what,
	     GError **error)
{
	if (offset > G_MAXINT64 || len > G_MAXINT64 - offset) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "The %s at offset 0x%" G_GINT64_MODIFIER "x is out of range", what, offset);
		return FALSE;
	}
	return vmi_range_pread_upto (file, buf, len, offset, got, what, error);
}

