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
 * Where an image's bytes are: [base, base + size) of fd, from VmiOpenArgs offset and file_size.
 * A reader keeps one and reads only through it, so every read is relative to the image and none
 * goes outside it.
 */
typedef struct {
	int fd;
	guint64 base;
	guint64 size;
} VmiFileRange;

/*
 * Fills range from args. The range must fit in a regular file: one that ends first is
 * VMI_ERROR_CORRUPT_IMAGE (truncated), an offset + size beyond 2^63 VMI_ERROR_INVALID_ARGUMENT.
 */
gboolean vmi_file_range_init (VmiFileRange *range, const VmiOpenArgs *args, GError **error);

/* vmi_pread_upto and vmi_pread_all at offset of the range; bytes past its end are never read
 * (they count as the file's end), and messages name offsets within the range. */
gboolean vmi_range_pread_upto (const VmiFileRange *range, void *buf, gsize len, guint64 offset,
			       gsize *got, const char *what, GError **error);
gboolean vmi_range_pread_all (const VmiFileRange *range, void *buf, gsize len, guint64 offset,
			      const char *what, GError **error);

/*
 * Block status of a plain file read as a disk (raw, ISO): holes by SEEK_DATA/SEEK_HOLE, DATA
 * otherwise, for the run at offset (within the range) up to max_length and the range's end.
 */
gboolean vmi_range_block_status (const VmiFileRange *range, guint64 offset, guint64 max_length,
				 VmiExtent *extent, GError **error);

/*
 * Appends a sentence to a check's problems, unless VMI_CHECK_MAX_PROBLEMS are there already
 * (the counts go on; the list only shows the first ones).
 */
void vmi_check_add_problem (VmiCheckResult *result, const char *format, ...) G_GNUC_PRINTF (2, 3);

G_END_DECLS
