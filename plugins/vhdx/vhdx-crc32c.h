/* CRC-32C (Castagnoli), the checksum of every VHDX header, region table and log entry. */
#pragma once

#include <glib.h>

/* Continues a CRC over more bytes; start with crc = 0. */
guint32 vhdx_crc32c_update (guint32 crc, const void *data, gsize len);

static inline guint32
vhdx_crc32c (const void *data, gsize len)
{
	return vhdx_crc32c_update (0, data, len);
}

/*
 * The checksum of a structure whose own checksum field (4 bytes at field_offset) counts as
 * zero, without modifying the buffer.
 */
guint32 vhdx_crc32c_skip_field (const guint8 *data, gsize len, gsize field_offset);

/*
 * Whether a stored checksum matches. Fuzzing builds (the OSS-Fuzz convention) accept any, so
 * that mutated inputs reach the parsers behind the checksums.
 */
static inline gboolean
vhdx_crc32c_matches (guint32 computed, guint32 stored)
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	(void) computed;
	(void) stored;
	return TRUE;
#else
	return computed == stored;
#endif
}
