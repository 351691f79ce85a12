/*
 * Writing an OVA: a POSIX ustar archive of <name>.ovf, <name>-disk1.vmdk (streamOptimized) and
 * <name>.mf (SHA256 of both), in that order, as ovftool packs it. The descriptor comes first
 * but holds the VMDK's size, so its room is reserved at create (sized for the longest numbers)
 * and it is written at finish, padded with blanks to that room.
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

typedef struct _VmiOvaWriter VmiOvaWriter;

/* The create options of the ova plugin, terminated by {NULL}. */
extern const VmiOptionSpec vmi_ova_writer_options[];

/* Limits of the options, also in their descriptions. */
#define VMI_OVA_WRITER_MAX_CPUS 768u
#define VMI_OVA_WRITER_MIN_MEMORY_MIB 4u
#define VMI_OVA_WRITER_MAX_MEMORY_MIB (24u * 1024u * 1024u) /* 24 TiB, vSphere's limit */
#define VMI_OVA_WRITER_MAX_NAME 80u			       /* bytes; member names stay < 100 */

/*
 * Starts an OVA in the empty file fd, for a disk of virtual_size bytes (rounded up to 512 as
 * the VMDK holds it). options is an a{sv} of vmi_ova_writer_options (or NULL);
 * VMI_ERROR_INVALID_ARGUMENT with a sentence for a bad one.
 */
VmiOvaWriter *vmi_ova_writer_new (int fd, guint64 virtual_size, GVariant *options, GError **error);
/* The plugin ABI's write: increasing, non-overlapping ranges of the virtual disk. */
gboolean vmi_ova_writer_write (VmiOvaWriter *self, guint64 offset, const void *buf, gsize len,
			       GError **error);
/* Completes the VMDK, then the descriptor, the manifest and the end of the archive. */
gboolean vmi_ova_writer_finish (VmiOvaWriter *self, GError **error);
void vmi_ova_writer_free (VmiOvaWriter *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiOvaWriter, vmi_ova_writer_free)

G_END_DECLS
