/*
 * A disk file of an OVF package stored with ovf:compression="gzip", read forward through zlib:
 * the ova plugin reads a tar member this way, the ovf plugin a file beside the descriptor. Going
 * back restarts the stream. The output is capped: a file that inflates beyond the limit (a
 * decompression bomb, or a disk larger than the OVF says) is VMI_ERROR_UNSAFE_IMAGE.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

typedef struct _VmiOvfGunzip VmiOvfGunzip;

/*
 * The gzip data is [offset, offset + size) of fd, which stays the caller's (open while the
 * reader is). name is the member's name, for messages; limit the most bytes it may inflate to.
 */
VmiOvfGunzip *vmi_ovf_gunzip_new (int fd, guint64 offset, guint64 size, guint64 limit,
				  const char *name);
void vmi_ovf_gunzip_free (VmiOvfGunzip *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiOvfGunzip, vmi_ovf_gunzip_free)

/*
 * Reads up to len bytes of the inflated data at offset; *got is 0 only at its end. Errors:
 * VMI_ERROR_CORRUPT_IMAGE for data that is not gzip or ends early, VMI_ERROR_UNSAFE_IMAGE beyond
 * the limit, VMI_ERROR_FAILED for an I/O error.
 */
gboolean vmi_ovf_gunzip_read (VmiOvfGunzip *self, guint64 offset, void *buf, gsize len, gsize *got,
			      GError **error);

/*
 * The inflate limit for a disk file of this capacity (bytes, 0 when unknown) and compressed
 * size: a disk image file is its capacity plus metadata, so a sixteenth and 16 MiB of slack are
 * generous; without a capacity, deflate's own ceiling (1032:1).
 */
guint64 vmi_ovf_gunzip_limit (guint64 capacity, guint64 compressed_size);

G_END_DECLS
