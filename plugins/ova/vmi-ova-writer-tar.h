/* The POSIX ustar headers of the members an OVA writer stores. */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

#define VMI_OVA_TAR_BLOCK 512u
/* GNU tar and bsdtar pad an archive to records of 20 blocks; readers expect no less. */
#define VMI_OVA_TAR_RECORD (20u * VMI_OVA_TAR_BLOCK)
/* The ustar name field; longer names would need a pax or GNU header. */
#define VMI_OVA_TAR_NAME_MAX 100u

/*
 * Fills block with the header of a regular file (mode 0644, owner 0:0) called name holding size
 * bytes, modified at mtime (seconds since 1970). Sizes of 8 GiB and more do not fit the 11 octal
 * digits of ustar and are stored in base 256 (GNU tar's encoding, read by GNU tar, bsdtar,
 * libarchive and Python's tarfile). VMI_ERROR_INVALID_ARGUMENT for a name that is empty, longer
 * than VMI_OVA_TAR_NAME_MAX bytes or has a '/'.
 */
gboolean vmi_ova_tar_header (guint8 block[VMI_OVA_TAR_BLOCK], const char *name, guint64 size,
			     gint64 mtime, GError **error);

/* Bytes of a member of size bytes with its padding to whole blocks (not its header). */
static inline guint64
vmi_ova_tar_padded (guint64 size)
{
	return (size + VMI_OVA_TAR_BLOCK - 1) / VMI_OVA_TAR_BLOCK * VMI_OVA_TAR_BLOCK;
}

G_END_DECLS
