/*
 * ISO 9660 installation media. An ISO reads as a raw disk (as qemu-img treats it), so this
 * plugin's value is in what Inspect says: the primary volume descriptor, Joliet and Rock
 * Ridge, the El Torito boot entries, and whether the system area holds a partition table
 * (a hybrid image that boots from a USB stick too).
 */
#include <string.h>

#include "vmi-plugin-util.h"

#define ISO_SECTOR 2048u
#define ISO_FIRST_DESCRIPTOR 16u
/* Real discs have a handful (boot record, PVD, one or two SVDs, terminator). */
#define ISO_MAX_DESCRIPTORS 32u
/* A boot catalog longer than this many sectors is not something any firmware reads. */
#define ISO_MAX_CATALOG_SECTORS 4u
#define ISO_ENTRY 32u

enum {
	ISO_VD_BOOT_RECORD = 0,
	ISO_VD_PRIMARY = 1,
	ISO_VD_SUPPLEMENTARY = 2,
	ISO_VD_TERMINATOR = 255,
};

struct _VmiImage {
	VmiFileRange file; /* the image's bytes in the daemon's fd */
	guint64 file_size;
	guint8 pvd[ISO_SECTOR];
	gboolean joliet;
	gboolean rock_ridge;
	guint32 catalog_lba; /* 0: no El Torito boot record */
	GVariant *boot_entries; /* aa{sv}, or NULL */
	gboolean catalog_truncated;
	const char *partition_table; /* "mbr", "gpt" or NULL */
};

static guint16
iso_le16 (const guint8 *p)
{
	return (guint16) (p[0] | p[1] << 8);
}

static guint32
iso_le32 (const guint8 *p)
{
	return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

static gboolean
iso_is_descriptor (const guint8 *sector)
{
	return memcmp (sector + 1, "CD001", 5) == 0 && sector[6] == 1;
}

static guint
iso_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	const gsize at = ISO_FIRST_DESCRIPTOR * ISO_SECTOR;

	if (head_len < at + 7 || !iso_is_descriptor (head + at))
		return VMI_PROBE_NO;
	return VMI_PROBE_CERTAIN;
}

/* A d-characters/a-characters field, space padded: trimmed, non-printables shown as '?'. */
static char *
iso_string (const guint8 *p, gsize len)
{
	g_autofree char *s = g_strndup ((const char *) p, len);

	for (char *c = s; *c != '\0'; c++) {
		if (!g_ascii_isprint (*c))
			*c = '?';
	}
	return g_strdup (g_strchomp (s));
}

/* "YYYYMMDDHHMMSScc" + a signed offset in 15-minute steps; NULL when unset (all '0'). */
static char *
iso_date (const guint8 *p)
{
	int offset_minutes = (gint8) p[16] * 15;

	for (guint i = 0; i < 16; i++) {
		if (!g_ascii_isdigit (p[i]))
			return NULL;
	}
	if (memcmp (p, "0000", 4) == 0)
		return NULL;
	return g_strdup_printf ("%.4s-%.2s-%.2sT%.2s:%.2s:%.2s%c%02d:%02d", p, p + 4, p + 6, p + 8,
				p + 10, p + 12, offset_minutes < 0 ? '-' : '+',
				ABS (offset_minutes) / 60, ABS (offset_minutes) % 60);
}

/* A supplementary descriptor is Joliet when its escape sequences name UCS-2 level 1, 2 or 3. */
static gboolean
iso_is_joliet (const guint8 *svd)
{
	return svd[88] == '%' && svd[89] == '/' &&
	       (svd[90] == '@' || svd[90] == 'C' || svd[90] == 'E');
}

static void
iso_scan_susp (VmiImage *self, const guint8 *su, gsize su_len)
{
	gboolean susp = FALSE;
	gsize pos = 0;

	/* Each entry: two signature letters, its length, its version. */
	while (pos + 4 <= su_len) {
		const guint8 *e = su + pos;
		guint8 len = e[2];

		if (len < 4 || pos + len > su_len)
			break;
		if (memcmp (e, "SP", 2) == 0 && len >= 7 && e[4] == 0xbe && e[5] == 0xef)
			susp = TRUE;
		if (susp && (memcmp (e, "PX", 2) == 0 || memcmp (e, "RR", 2) == 0))
			self->rock_ridge = TRUE;
		if (susp && memcmp (e, "ER", 2) == 0 && len >= 8 && 8u + e[4] <= len) {
			g_autofree char *id = g_strndup ((const char *) e + 8, e[4]);

			if (g_str_has_prefix (id, "RRIP_") || g_str_has_prefix (id, "IEEE_P1282") ||
			    g_str_has_prefix (id, "IEEE_1282"))
				self->rock_ridge = TRUE;
		}
		pos += len;
	}
}

/* Rock Ridge shows in the system use area of the root directory's "." record. */
static gboolean
iso_detect_rock_ridge (VmiImage *self, GError **error)
{
	const guint8 *root = self->pvd + 156;
	guint64 lba = iso_le32 (root + 2);
	guint8 dir[ISO_SECTOR];
	guint8 record_len, name_len;
	gsize su_start;

	if ((lba + 1) * ISO_SECTOR > self->file_size)
		return TRUE; /* a truncated image: nothing to learn, not an error */
	if (!vmi_range_pread_all (&self->file, dir, sizeof dir, lba * ISO_SECTOR, "ISO image", error))
		return FALSE;
	record_len = dir[0];
	name_len = dir[32];
	su_start = 33u + name_len + (name_len % 2 == 0 ? 1u : 0u);
	if (record_len < 34 || su_start > record_len)
		return TRUE;
	iso_scan_susp (self, dir + su_start, record_len - su_start);
	return TRUE;
}

static const char *
iso_platform_name (guint8 platform)
{
	switch (platform) {
	case 0x00:
		return "bios";
	case 0x01:
		return "powerpc";
	case 0x02:
		return "mac";
	case 0xef:
		return "uefi";
	default:
		return "unknown";
	}
}

static const char *
iso_media_name (guint8 media)
{
	static const char *const names[] = { "no-emulation", "floppy-1.2M", "floppy-1.44M",
					     "floppy-2.88M", "hard-disk" };

	return (media & 0x0f) < G_N_ELEMENTS (names) ? names[media & 0x0f] : "unknown";
}

static GVariant *
iso_boot_entry (const guint8 *e, guint8 platform)
{
	GVariantDict dict;

	g_variant_dict_init (&dict, NULL);
	g_variant_dict_insert (&dict, "platform", "s", iso_platform_name (platform));
	g_variant_dict_insert (&dict, "bootable", "b", e[0] == 0x88);
	g_variant_dict_insert (&dict, "media", "s", iso_media_name (e[1]));
	g_variant_dict_insert (&dict, "load-segment", "q", iso_le16 (e + 2));
	g_variant_dict_insert (&dict, "sector-count", "q", iso_le16 (e + 6));
	g_variant_dict_insert (&dict, "load-rba", "u", iso_le32 (e + 8));
	return g_variant_dict_end (&dict);
}

static gboolean
iso_validation_entry_ok (const guint8 *e)
{
	guint16 sum = 0;

	if (e[0] != 0x01 || e[30] != 0x55 || e[31] != 0xaa)
		return FALSE;
	for (guint i = 0; i < ISO_ENTRY; i += 2)
		sum = (guint16) (sum + iso_le16 (e + i));
	return sum == 0;
}

/* The El Torito catalog: a validation entry, the default entry, then sections per platform. */
static gboolean
iso_read_boot_catalog (VmiImage *self, GError **error)
{
	guint64 start;
	gsize len;
	g_autofree guint8 *catalog = NULL;
	GVariantBuilder entries;
	guint8 platform;

	if (!g_uint64_checked_mul (&start, self->catalog_lba, ISO_SECTOR) ||
	    start >= self->file_size) {
		self->catalog_truncated = TRUE;
		return TRUE;
	}
	len = (gsize) MIN (self->file_size - start, ISO_MAX_CATALOG_SECTORS * ISO_SECTOR);
	len -= len % ISO_ENTRY;
	if (len < 2 * ISO_ENTRY) {
		self->catalog_truncated = TRUE;
		return TRUE;
	}
	catalog = g_malloc (len);
	if (!vmi_range_pread_all (&self->file, catalog, len, start, "ISO image", error))
		return FALSE;
	if (!iso_validation_entry_ok (catalog)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the El Torito boot catalog at sector %u has no valid validation entry "
			     "(header 0x01, key 55 AA, zero checksum)",
			     self->catalog_lba);
		return FALSE;
	}
	platform = catalog[1];
	g_variant_builder_init (&entries, G_VARIANT_TYPE ("aa{sv}"));
	g_variant_builder_add_value (&entries, iso_boot_entry (catalog + ISO_ENTRY, platform));
	/* Section headers (0x90 more follow, 0x91 last), each followed by its entries; 0x44
	 * extension entries belong to the entry before them. */
	for (gsize pos = 2 * ISO_ENTRY; pos + ISO_ENTRY <= len;) {
		const guint8 *header = catalog + pos;
		guint count;

		if (header[0] != 0x90 && header[0] != 0x91)
			break;
		platform = header[1];
		count = iso_le16 (header + 2);
		pos += ISO_ENTRY;
		for (guint i = 0; i < count && pos + ISO_ENTRY <= len; pos += ISO_ENTRY) {
			const guint8 *e = catalog + pos;

			if (e[0] == 0x44)
				continue;
			g_variant_builder_add_value (&entries, iso_boot_entry (e, platform));
			i++;
		}
		if (header[0] == 0x91)
			break;
	}
	self->boot_entries = g_variant_ref_sink (g_variant_builder_end (&entries));
	return TRUE;
}

/* A partition table in the 32 KiB system area makes the image bootable from a USB stick. */
static gboolean
iso_detect_partition_table (VmiImage *self, GError **error)
{
	guint8 sectors[1024];
	gboolean mbr = FALSE;

	if (!vmi_range_pread_all (&self->file, sectors, sizeof sectors, 0, "ISO image", error))
		return FALSE;
	if (memcmp (sectors + 512, "EFI PART", 8) == 0) {
		self->partition_table = "gpt";
		return TRUE;
	}
	if (sectors[510] != 0x55 || sectors[511] != 0xaa)
		return TRUE;
	for (guint i = 0; i < 4; i++)
		mbr |= sectors[446 + 16 * i + 4] != 0;
	if (mbr)
		self->partition_table = "mbr";
	return TRUE;
}

static gboolean
iso_read_descriptors (VmiImage *self, GError **error)
{
	gboolean have_pvd = FALSE;

	for (guint i = 0; i < ISO_MAX_DESCRIPTORS; i++) {
		guint8 vd[ISO_SECTOR];
		guint64 offset = (guint64) (ISO_FIRST_DESCRIPTOR + i) * ISO_SECTOR;

		if (offset + ISO_SECTOR > self->file_size)
			break;
		if (!vmi_range_pread_all (&self->file, vd, sizeof vd, offset, "ISO image", error))
			return FALSE;
		if (!iso_is_descriptor (vd)) {
			if (i == 0) {
				g_set_error_literal (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
						     "no ISO 9660 volume descriptor (\"CD001\") at "
						     "sector 16: this is not an ISO image");
				return FALSE;
			}
			break;
		}
		if (vd[0] == ISO_VD_TERMINATOR)
			break;
		if (vd[0] == ISO_VD_PRIMARY && !have_pvd) {
			memcpy (self->pvd, vd, sizeof vd);
			have_pvd = TRUE;
		} else if (vd[0] == ISO_VD_SUPPLEMENTARY && iso_is_joliet (vd)) {
			self->joliet = TRUE;
		} else if (vd[0] == ISO_VD_BOOT_RECORD &&
			   memcmp (vd + 7, "EL TORITO SPECIFICATION", 23) == 0) {
			self->catalog_lba = iso_le32 (vd + 0x47);
		}
	}
	if (!have_pvd) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the ISO image has no primary volume descriptor in its first "
				     "volume descriptors");
		return FALSE;
	}
	return TRUE;
}

static VmiImage *
iso_open (const VmiOpenArgs *args, GError **error)
{
	g_autofree VmiImage *self = g_new0 (VmiImage, 1);
	guint16 block_size;

	if (!vmi_file_range_init (&self->file, args, error))
		return NULL;
	self->file_size = args->file_size;
	if (self->file_size < (ISO_FIRST_DESCRIPTOR + 1) * ISO_SECTOR) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "a %" G_GUINT64_FORMAT "-byte file is too short for an ISO 9660 image, "
			     "whose first volume descriptor ends at byte 34816",
			     self->file_size);
		return NULL;
	}
	if (!iso_read_descriptors (self, error))
		return NULL;
	block_size = iso_le16 (self->pvd + 128);
	if (block_size != 512 && block_size != 1024 && block_size != 2048) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the primary volume descriptor gives a logical block size of %u bytes; "
			     "ISO 9660 allows 512, 1024 or 2048",
			     block_size);
		return NULL;
	}
	if (!iso_detect_rock_ridge (self, error) || !iso_detect_partition_table (self, error))
		return NULL;
	if (self->catalog_lba != 0 && !iso_read_boot_catalog (self, error)) {
		g_clear_pointer (&self->boot_entries, g_variant_unref);
		return NULL;
	}
	return g_steal_pointer (&self);
}

static void
iso_insert_string (GVariantDict *dict, const char *key, const guint8 *p, gsize len)
{
	g_autofree char *s = iso_string (p, len);

	if (s[0] != '\0')
		g_variant_dict_insert (dict, key, "s", s);
}

static gboolean
iso_get_info (VmiImage *self, VmiImageInfo *info, GError **error)
{
	GVariantDict *facts = info->format_specific;
	guint64 volume_size = (guint64) iso_le32 (self->pvd + 80) * iso_le16 (self->pvd + 128);
	g_autofree char *created = iso_date (self->pvd + 813);
	gboolean bios = FALSE, uefi = FALSE;

	info->virtual_size = self->file_size;
	iso_insert_string (facts, "volume-id", self->pvd + 40, 32);
	iso_insert_string (facts, "system-id", self->pvd + 8, 32);
	iso_insert_string (facts, "publisher", self->pvd + 318, 128);
	iso_insert_string (facts, "application", self->pvd + 574, 128);
	if (created != NULL)
		g_variant_dict_insert (facts, "creation-date", "s", created);
	g_variant_dict_insert (facts, "volume-size", "t", volume_size);
	g_variant_dict_insert (facts, "block-size", "u", (guint32) iso_le16 (self->pvd + 128));
	/* A volume larger than the file: a download cut short, or a copy of part of a disc. */
	g_variant_dict_insert (facts, "truncated", "b", volume_size > self->file_size);
	g_variant_dict_insert (facts, "joliet", "b", self->joliet);
	g_variant_dict_insert (facts, "rock-ridge", "b", self->rock_ridge);
	g_variant_dict_insert (facts, "el-torito", "b", self->catalog_lba != 0);
	if (self->boot_entries != NULL) {
		GVariantIter iter;
		GVariant *entry;

		g_variant_iter_init (&iter, self->boot_entries);
		while ((entry = g_variant_iter_next_value (&iter)) != NULL) {
			const char *platform = NULL;
			gboolean bootable = FALSE;

			g_variant_lookup (entry, "platform", "&s", &platform);
			g_variant_lookup (entry, "bootable", "b", &bootable);
			bios |= bootable && g_strcmp0 (platform, "bios") == 0;
			uefi |= bootable && g_strcmp0 (platform, "uefi") == 0;
			g_variant_unref (entry);
		}
		g_variant_dict_insert_value (facts, "boot-entries", self->boot_entries);
	}
	if (self->catalog_truncated)
		g_variant_dict_insert (facts, "boot-catalog-missing", "b", TRUE);
	g_variant_dict_insert (facts, "bios-bootable", "b", bios);
	g_variant_dict_insert (facts, "uefi-bootable", "b", uefi);
	g_variant_dict_insert (facts, "hybrid", "b", self->partition_table != NULL);
	if (self->partition_table != NULL)
		g_variant_dict_insert (facts, "partition-table", "s", self->partition_table);
	return TRUE;
}

static gboolean
iso_read (VmiImage *self, guint64 offset, void *buf, gsize len, GError **error)
{
	return vmi_range_pread_all (&self->file, buf, len, offset, "ISO image", error);
}

static gboolean
iso_block_status (VmiImage *self, guint64 offset, guint64 max_length, VmiExtent *extent,
		  GError **error)
{
	return vmi_range_block_status (&self->file, offset, max_length, extent, error);
}

static void
iso_close (VmiImage *self)
{
	g_clear_pointer (&self->boot_entries, g_variant_unref);
	g_free (self);
}

const VmiFormatPlugin vmi_iso_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "iso",
	.description = "ISO 9660 optical disc image (El Torito, Joliet, Rock Ridge, hybrid)",
	.extensions = (const char *const[]){ "iso", NULL },
	.aliases = (const char *const[]){ "iso9660", NULL },
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ,
	.probe = iso_probe,
	.open = iso_open,
	.get_info = iso_get_info,
	.read = iso_read,
	.block_status = iso_block_status,
	.close = iso_close,
};

VMI_PLUGIN_DEFINE (vmi_iso_plugin)
