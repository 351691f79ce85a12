#include "vhdx-crc32c.h"

/* Reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82F63B78u

static guint32 crc32c_table[256];

static gpointer
crc32c_init_table (gpointer data)
{
	for (guint32 i = 0; i < 256; i++) {
		guint32 c = i;

		for (guint k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc32c_table[i] = c;
	}
	return NULL;
}

guint32
vhdx_crc32c_update (guint32 crc, const void *data, gsize len)
{
	static GOnce once = G_ONCE_INIT;
	const guint8 *p = data;

	g_once (&once, crc32c_init_table, NULL);
	crc = ~crc;
	for (gsize i = 0; i < len; i++)
		crc = crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

guint32
vhdx_crc32c_skip_field (const guint8 *data, gsize len, gsize field_offset)
{
	static const guint8 zero[4] = { 0 };
	guint32 crc;

	g_return_val_if_fail (field_offset + 4 <= len, 0);
	crc = vhdx_crc32c_update (0, data, field_offset);
	crc = vhdx_crc32c_update (crc, zero, sizeof zero);
	return vhdx_crc32c_update (crc, data + field_offset + 4, len - field_offset - 4);
}
