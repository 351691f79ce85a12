/*
 * Helpers that several plugins need, linked statically into each module that uses them (so
 * they are not part of the ABI between daemon and plugins).
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

/* Reads len bytes at offset, or fewer if the file ends first (*got says how many); only an I/O
 * error ("... of the <what>") is VMI_ERROR_FAILED. */
gboolean vmi_pread_upto (int fd, void *buf, gsize len, guint64 offset, gsize *got,
			 const char *what, GError **error);

/* Reads exactly len bytes at offset; EOF first is VMI_ERROR_CORRUPT_IMAGE ("... of the <what>"). */
gboolean vmi_pread_all (int fd, void *buf, gsize len, guint64 offset, const char *what,
			GError **error);

/* Writes all of buf at offset; ENOSPC, EDQUOT and a write of 0 bytes are VMI_ERROR_NO_SPACE. */
gboolean vmi_pwrite_all (int fd, const void *buf, gsize len, guint64 offset, const char *what,
			 GError **error);

/*
 * Block status of a plain file read as a disk (raw, ISO): holes by SEEK_DATA/SEEK_HOLE, DATA
 * otherwise, for the run at offset within size and max_length.
 */
gboolean vmi_file_block_status (int fd, guint64 size, guint64 offset, guint64 max_length,
				VmiExtent *extent, GError **error);

G_END_DECLS
