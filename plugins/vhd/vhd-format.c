/* VHD field encoding, checksums and the CHS geometry rules shared by the reader and writer. */
#include <string.h>

#include "vhd-private.h"

guint32
vhd_get_be16 (const guint8 *p)
{
	return ((guint32) p[0] << 8) | p[1];
}

guint32
vhd_get_be32 (const guint8 *p)
{
	return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

guint64
vhd_get_be64 (const guint8 *p)
{
	return ((guint64) vhd_get_be32 (p) << 32) | vhd_get_be32 (p + 4);
}

void
vhd_put_be16 (guint8 *p, guint16 v)
{
	p[0] = (guint8) (v >> 8);
	p[1] = (guint8) v;
}

void
vhd_put_be32 (guint8 *p, guint32 v)
{
	p[0] = (guint8) (v >> 24);
	p[1] = (guint8) (v >> 16);
	p[2] = (guint8) (v >> 8);
	p[3] = (guint8) v;
}

void
vhd_put_be64 (guint8 *p, guint64 v)
{
	vhd_put_be32 (p, (guint32) (v >> 32));
	vhd_put_be32 (p + 4, (guint32) v);
}

/* One's complement of the byte sum, with the 4-byte checksum field itself counted as zero. */
guint32
vhd_checksum (const guint8 *buf, gsize len, gsize checksum_at)
{
	guint32 sum = 0;

	for (gsize i = 0; i < len; i++) {
		if (i >= checksum_at && i < checksum_at + 4)
			continue;
		sum += buf[i];
	}
	return ~sum;
}

gboolean
vhd_footer_has_cookie (const guint8 *raw)
{
	return memcmp (raw + VHD_F_COOKIE, "conectix", 8) == 0;
}

gboolean
vhd_footer_checksum_ok (const guint8 *raw)
{
	return vhd_checksum (raw, VHD_FOOTER_SIZE, VHD_F_CHECKSUM) ==
	       vhd_get_be32 (raw + VHD_F_CHECKSUM);
}

void
vhd_footer_parse (const guint8 *raw, VhdFooter *footer)
{
	footer->features = vhd_get_be32 (raw + VHD_F_FEATURES);
	footer->format_version = vhd_get_be32 (raw + VHD_F_VERSION);
	footer->data_offset = vhd_get_be64 (raw + VHD_F_DATA_OFFSET);
	footer->timestamp = vhd_get_be32 (raw + VHD_F_TIMESTAMP);
	memcpy (footer->creator_app, raw + VHD_F_CREATOR_APP, 4);
	footer->creator_version = vhd_get_be32 (raw + VHD_F_CREATOR_VERSION);
	memcpy (footer->creator_os, raw + VHD_F_CREATOR_OS, 4);
	footer->original_size = vhd_get_be64 (raw + VHD_F_ORIGINAL_SIZE);
	footer->current_size = vhd_get_be64 (raw + VHD_F_CURRENT_SIZE);
	footer->cylinders = (guint16) vhd_get_be16 (raw + VHD_F_CYLINDERS);
	footer->heads = raw[VHD_F_HEADS];
	footer->sectors = raw[VHD_F_SECTORS];
	footer->disk_type = vhd_get_be32 (raw + VHD_F_DISK_TYPE);
	memcpy (footer->uuid, raw + VHD_F_UUID, 16);
	footer->saved_state = raw[VHD_F_SAVED_STATE] != 0;
}

void
vhd_footer_serialize (const VhdFooter *footer, guint8 *raw)
{
	memset (raw, 0, VHD_FOOTER_SIZE);
	memcpy (raw + VHD_F_COOKIE, "conectix", 8);
	vhd_put_be32 (raw + VHD_F_FEATURES, footer->features);
	vhd_put_be32 (raw + VHD_F_VERSION, footer->format_version);
	vhd_put_be64 (raw + VHD_F_DATA_OFFSET, footer->data_offset);
	vhd_put_be32 (raw + VHD_F_TIMESTAMP, footer->timestamp);
	memcpy (raw + VHD_F_CREATOR_APP, footer->creator_app, 4);
	vhd_put_be32 (raw + VHD_F_CREATOR_VERSION, footer->creator_version);
	memcpy (raw + VHD_F_CREATOR_OS, footer->creator_os, 4);
	vhd_put_be64 (raw + VHD_F_ORIGINAL_SIZE, footer->original_size);
	vhd_put_be64 (raw + VHD_F_CURRENT_SIZE, footer->current_size);
	vhd_put_be16 (raw + VHD_F_CYLINDERS, footer->cylinders);
	raw[VHD_F_HEADS] = footer->heads;
	raw[VHD_F_SECTORS] = footer->sectors;
	vhd_put_be32 (raw + VHD_F_DISK_TYPE, footer->disk_type);
	memcpy (raw + VHD_F_UUID, footer->uuid, 16);
	raw[VHD_F_SAVED_STATE] = footer->saved_state ? 1 : 0;
	vhd_put_be32 (raw + VHD_F_CHECKSUM, vhd_checksum (raw, VHD_FOOTER_SIZE, VHD_F_CHECKSUM));
}

/*
 * The disk size as qemu's block/vpc.c reports it. Virtual PC sizes a disk by its CHS geometry
 * (the footer's current_size is usually larger), while Hyper-V, Disk2VHD, XenServer and
 * XenConverter trust current_size; qemu tells them apart by the creator application, and uses
 * current_size whatever the creator when the geometry is the maximum one, since such a disk is
 * larger than any geometry can say. Unknown creators get the CHS rule, as in qemu.
 */
guint64
vhd_footer_size_in_sectors (const VhdFooter *footer, gboolean *from_chs)
{
	static const char current_size_creators[][4] = {
		{ 'w', 'i', 'n', ' ' }, /* Hyper-V */
		{ 'q', 'e', 'm', '2' }, /* qemu-img with force_size */
		{ 'd', '2', 'v', ' ' }, /* Disk2VHD */
		{ 'C', 'T', 'X', 'S' }, /* Citrix XenConverter */
		{ 't', 'a', 'p', '\0' }, /* XenServer blktap */
	};
	guint64 chs = (guint64) footer->cylinders * footer->heads * footer->sectors;
	gboolean use_chs = TRUE;

	for (gsize i = 0; i < G_N_ELEMENTS (current_size_creators); i++) {
		if (memcmp (footer->creator_app, current_size_creators[i], 4) == 0)
			use_chs = FALSE;
	}
	if (!use_chs || chs == VHD_CHS_MAX_SECTORS) {
		*from_chs = FALSE;
		return footer->current_size / VHD_SECTOR_SIZE;
	}
	*from_chs = TRUE;
	return chs;
}

/* The geometry the VHD specification (appendix) derives from a sector count; it rounds down. */
static void
vhd_geometry_for_sectors (guint64 total_sectors, guint16 *cylinders, guint8 *heads,
			  guint8 *sectors)
{
	guint32 cyls_times_heads, h, s;

	total_sectors = MIN (total_sectors, VHD_CHS_MAX_SECTORS);
	if (total_sectors >= (guint64) 65535 * 16 * 63) {
		s = 255;
		h = 16;
		cyls_times_heads = (guint32) (total_sectors / s);
	} else {
		s = 17;
		cyls_times_heads = (guint32) (total_sectors / s);
		h = MAX ((cyls_times_heads + 1023) / 1024, 4u);
		if (cyls_times_heads >= h * 1024 || h > 16) {
			s = 31;
			h = 16;
			cyls_times_heads = (guint32) (total_sectors / s);
		}
		if (cyls_times_heads >= h * 1024) {
			s = 63;
			h = 16;
			cyls_times_heads = (guint32) (total_sectors / s);
		}
	}
	*cylinders = (guint16) (cyls_times_heads / h);
	*heads = (guint8) h;
	*sectors = (guint8) s;
}

/*
 * What qemu-img create/convert -O vpc does with a requested size when force_size is off: round
 * it up to whole sectors, then up to the first geometry that holds it (so nothing is cut off).
 * Past the largest geometry the geometry stays at 65535/16/255 and the sector count is used
 * as is. total_sectors may then exceed VHD_MAX_SECTORS; the caller refuses that.
 */
void
vhd_geometry_round_up (guint64 size, guint16 *cylinders, guint8 *heads, guint8 *sectors,
		       guint64 *total_sectors)
{
	guint64 wanted = size / VHD_SECTOR_SIZE + (size % VHD_SECTOR_SIZE != 0);
	guint64 target = MIN (wanted, VHD_CHS_MAX_SECTORS);
	guint16 c = 0;
	guint8 h = 0, s = 0;

	/* Each step adds a sector; the geometry grows in steps of at most 16 * 255 sectors. */
	for (guint64 i = 0; target > (guint64) c * h * s; i++)
		vhd_geometry_for_sectors (target + i, &c, &h, &s);
	*cylinders = c;
	*heads = h;
	*sectors = s;
	if ((guint64) c * h * s == VHD_CHS_MAX_SECTORS)
		*total_sectors = wanted;
	else
		*total_sectors = (guint64) c * h * s;
}

/* A creator or host-OS code as text: "vpc ", "d2v\0" become "vpc", "d2v"; odd bytes escaped. */
char *
vhd_fourcc_to_string (const char *fourcc)
{
	GString *s = g_string_new (NULL);
	gsize len = 4;

	while (len > 0 && (fourcc[len - 1] == ' ' || fourcc[len - 1] == '\0'))
		len--;
	for (gsize i = 0; i < len; i++) {
		guint8 c = (guint8) fourcc[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			g_string_append_c (s, (char) c);
		else
			g_string_append_printf (s, "\\x%02x", c);
	}
	return g_string_free (s, FALSE);
}

char *
vhd_uuid_to_string (const guint8 *uuid)
{
	return g_strdup_printf ("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
				"%02x%02x%02x%02x%02x%02x",
				uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6],
				uuid[7], uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13],
				uuid[14], uuid[15]);
}

