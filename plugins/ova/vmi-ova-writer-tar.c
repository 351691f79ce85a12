#include <string.h>

#include "vmi-ova-writer-tar.h"

/* Writes value in len - 1 octal digits and a NUL, as ustar does; FALSE if it does not fit. */
static gboolean
ova_tar_octal (guint8 *field, gsize len, guint64 value)
{
	for (gsize i = len - 1; i-- > 0;) {
		field[i] = (guint8) ('0' + (value & 7));
		value >>= 3;
	}
	field[len - 1] = '\0';
	return value == 0;
}

/* GNU's base-256: the first byte 0x80, then the value big-endian in the remaining bytes. */
static void
ova_tar_base256 (guint8 *field, gsize len, guint64 value)
{
	memset (field, 0, len);
	field[0] = 0x80;
	for (gsize i = len; i-- > 1 && value > 0;) {
		field[i] = (guint8) (value & 0xff);
		value >>= 8;
	}
}

gboolean
vmi_ova_tar_header (guint8 block[VMI_OVA_TAR_BLOCK], const char *name, guint64 size, gint64 mtime,
		    GError **error)
{
	gsize name_len = strlen (name);
	guint32 sum = 0;

	if (name_len == 0 || name_len > VMI_OVA_TAR_NAME_MAX || strchr (name, '/') != NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "\"%s\" cannot be the name of an OVA member: it must have 1 to %u bytes "
			     "and no '/'",
			     name, VMI_OVA_TAR_NAME_MAX);
		return FALSE;
	}
	memset (block, 0, VMI_OVA_TAR_BLOCK);
	memcpy (block, name, name_len); /* NUL-terminated only when shorter than the field */
	ova_tar_octal (block + 100, 8, 0644);
	ova_tar_octal (block + 108, 8, 0);
	ova_tar_octal (block + 116, 8, 0);
	if (!ova_tar_octal (block + 124, 12, size))
		ova_tar_base256 (block + 124, 12, size);
	ova_tar_octal (block + 136, 12, (guint64) CLAMP (mtime, 0, (gint64) 077777777777));
	block[156] = '0';
	memcpy (block + 257, "ustar", 6); /* with its NUL: POSIX, not GNU's "ustar  " */
	memcpy (block + 263, "00", 2);
	/* The checksum is summed with its own field as eight blanks. */
	memset (block + 148, ' ', 8);
	for (guint i = 0; i < VMI_OVA_TAR_BLOCK; i++)
		sum += block[i];
	ova_tar_octal (block + 148, 7, sum);
	block[155] = ' ';
	return TRUE;
}
