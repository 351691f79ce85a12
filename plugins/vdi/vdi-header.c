/* VDI header layout: decoding, encoding and the VirtualBox UUID byte order. */
#include <string.h>

#include "vdi-private.h"

static guint32
get_le32 (const guint8 *p)
{
	guint32 v;

	memcpy (&v, p, sizeof v);
	return GUINT32_FROM_LE (v);
}

static guint64
get_le64 (const guint8 *p)
{
	guint64 v;

	memcpy (&v, p, sizeof v);
	return GUINT64_FROM_LE (v);
}

static void
put_le32 (guint8 *p, guint32 v)
{
	v = GUINT32_TO_LE (v);
	memcpy (p, &v, sizeof v);
}

static void
put_le64 (guint8 *p, guint64 v)
{
	v = GUINT64_TO_LE (v);
	memcpy (p, &v, sizeof v);
}

/* buf holds VDI_HEADER_READ_SIZE bytes from the start of the file, zero-filled past its end. */
void
vdi_header_decode (const guint8 *buf, VdiHeader *h)
{
	memset (h, 0, sizeof *h);
	memcpy (h->text, buf, VDI_TEXT_SIZE);
	h->signature = get_le32 (buf + 0x40);
	h->version = get_le32 (buf + 0x44);
	h->header_size = get_le32 (buf + 0x48);
	h->image_type = get_le32 (buf + 0x4c);
	h->image_flags = get_le32 (buf + 0x50);
	memcpy (h->comment, buf + 0x54, VDI_COMMENT_SIZE);
	h->offset_bmap = get_le32 (buf + 0x154);
	h->offset_data = get_le32 (buf + 0x158);
	h->cylinders = get_le32 (buf + 0x15c);
	h->heads = get_le32 (buf + 0x160);
	h->sectors = get_le32 (buf + 0x164);
	h->sector_size = get_le32 (buf + 0x168);
	h->disk_size = get_le64 (buf + 0x170);
	h->block_size = get_le32 (buf + 0x178);
	h->block_extra = get_le32 (buf + 0x17c);
	h->blocks_in_image = get_le32 (buf + 0x180);
	h->blocks_allocated = get_le32 (buf + 0x184);
	memcpy (h->uuid_image, buf + 0x188, 16);
	memcpy (h->uuid_last_snap, buf + 0x198, 16);
	memcpy (h->uuid_link, buf + 0x1a8, 16);
	memcpy (h->uuid_parent, buf + 0x1b8, 16);
	h->has_lchs = h->header_size >= VDI_HEADER1PLUS_SIZE;
	if (h->has_lchs) {
		h->lchs_cylinders = get_le32 (buf + 0x1c8);
		h->lchs_heads = get_le32 (buf + 0x1cc);
		h->lchs_sectors = get_le32 (buf + 0x1d0);
		h->lchs_sector_size = get_le32 (buf + 0x1d4);
	}
}

/* Fills VDI_HEADER_AREA bytes of buf with a VDIHEADER1 (0x180) header, as qemu writes it. */
void
vdi_header_encode (const VdiHeader *h, guint8 *buf)
{
	memset (buf, 0, VDI_HEADER_AREA);
	memcpy (buf, h->text, strnlen (h->text, VDI_TEXT_SIZE));
	put_le32 (buf + 0x40, h->signature);
	put_le32 (buf + 0x44, h->version);
	put_le32 (buf + 0x48, h->header_size);
	put_le32 (buf + 0x4c, h->image_type);
	put_le32 (buf + 0x50, h->image_flags);
	memcpy (buf + 0x54, h->comment, strnlen (h->comment, VDI_COMMENT_SIZE));
	put_le32 (buf + 0x154, h->offset_bmap);
	put_le32 (buf + 0x158, h->offset_data);
	put_le32 (buf + 0x15c, h->cylinders);
	put_le32 (buf + 0x160, h->heads);
	put_le32 (buf + 0x164, h->sectors);
	put_le32 (buf + 0x168, h->sector_size);
	put_le64 (buf + 0x170, h->disk_size);
	put_le32 (buf + 0x178, h->block_size);
	put_le32 (buf + 0x17c, h->block_extra);
	put_le32 (buf + 0x180, h->blocks_in_image);
	put_le32 (buf + 0x184, h->blocks_allocated);
	memcpy (buf + 0x188, h->uuid_image, 16);
	memcpy (buf + 0x198, h->uuid_last_snap, 16);
	memcpy (buf + 0x1a8, h->uuid_link, 16);
	memcpy (buf + 0x1b8, h->uuid_parent, 16);
}

/*
 * VirtualBox stores a UUID as IPRT's RTUUID: the first three fields (32, 16 and 16 bits) little
 * endian, the rest as bytes. Swapping those fields gives RFC 4122 (network) order and back.
 */
static void
uuid_swap (const guint8 *in, guint8 *out)
{
	out[0] = in[3];
	out[1] = in[2];
	out[2] = in[1];
	out[3] = in[0];
	out[4] = in[5];
	out[5] = in[4];
	out[6] = in[7];
	out[7] = in[6];
	memcpy (out + 8, in + 8, 8);
}

char *
vdi_uuid_to_string (const guint8 *raw)
{
	guint8 u[16];

	uuid_swap (raw, u);
	return g_strdup_printf ("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
				"%02x%02x%02x%02x%02x%02x",
				u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
				u[11], u[12], u[13], u[14], u[15]);
}

gboolean
vdi_uuid_is_null (const guint8 *raw)
{
	for (guint i = 0; i < 16; i++) {
		if (raw[i] != 0)
			return FALSE;
	}
	return TRUE;
}

/* A random (version 4) UUID, stored so that VirtualBox and qemu print what we generated. */
void
vdi_uuid_generate (guint8 *raw)
{
	g_autofree char *str = g_uuid_string_random ();
	guint8 u[16];
	guint n = 0;

	for (const char *p = str; *p != '\0' && n < 32; p++) {
		int v = g_ascii_xdigit_value (*p);

		if (v < 0)
			continue;
		if (n % 2 == 0)
			u[n / 2] = (guint8) (v << 4);
		else
			u[n / 2] |= (guint8) v;
		n++;
	}
	g_assert (n == 32);
	uuid_swap (u, raw);
}

const char *
vdi_image_type_name (guint32 image_type)
{
	switch (image_type) {
	case VDI_TYPE_NORMAL:
		return "normal";
	case VDI_TYPE_FIXED:
		return "fixed";
	case VDI_TYPE_UNDO:
		return "undo";
	case VDI_TYPE_DIFF:
		return "diff";
	default:
		return NULL;
	}
}
