/* Writing monolithicSparse and streamOptimized images, 64 KiB grains, in one pass. */
#pragma once

#include "vmdk-format.h"

G_BEGIN_DECLS

typedef struct _VmdkWriter VmdkWriter;

/*
 * subformat is "monolithicSparse" or "streamOptimized"; adapter_type is one of qemu's (ide,
 * lsilogic, buslogic, legacyESX); name is the file name the embedded descriptor gives itself.
 * Errors are VMI_ERROR_INVALID_ARGUMENT for bad options or sizes.
 */
VmdkWriter *vmdk_writer_new (int fd, guint64 virtual_size, const char *subformat,
			     const char *adapter_type, const char *name, GError **error);
/*
 * The same, with the VMDK's first byte at file offset base (a multiple of 512), for a VMDK
 * stored inside another file (an OVA's tar member): every write and the final size are
 * relative to it, and nothing before base is touched. A streamOptimized VMDK is written in
 * file order after its first sectors.
 */
VmdkWriter *vmdk_writer_new_at (int fd, guint64 base, guint64 virtual_size, const char *subformat,
				const char *adapter_type, const char *name, GError **error);
/* Increasing, non-overlapping ranges, as the plugin ABI promises. */
gboolean vmdk_writer_write (VmdkWriter *w, guint64 offset, const guint8 *buf, gsize len,
			    GError **error);
gboolean vmdk_writer_finish (VmdkWriter *w, GError **error);
void vmdk_writer_free (VmdkWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmdkWriter, vmdk_writer_free)

G_END_DECLS
