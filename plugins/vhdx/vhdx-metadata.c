/* The region table and the metadata region: where the BAT is, and what the disk looks like. */
#include "vhdx-crc32c.h"
#include "vhdx-private.h"

#define X64 "0x%" G_GINT64_MODIFIER "x"

/* UTF-16LE bytes (any alignment) up to the first NUL, as UTF-8; NULL if not valid. */
char *
vhdx_utf16_to_utf8 (const guint8 *p, gsize len)
{
	g_autofree gunichar2 *units = g_new0 (gunichar2, len / 2 + 1);
	glong n = 0;

	for (gsize i = 0; i + 1 < len; i += 2) {
		guint16 u = vhdx_le16 (p + i);

		if (u == 0)
			break;
		units[n++] = u;
	}
	return g_utf16_to_utf8 (units, n, NULL, NULL, NULL);
}

static gboolean
vhdx_region_table_is_valid (const guint8 *t)
{
	return vhdx_le32 (t) == VHDX_REGION_SIGNATURE &&
	       vhdx_crc32c_matches (vhdx_crc32c_skip_field (t, VHDX_REGION_TABLE_SIZE, VHDX_RT_CHECKSUM),
				    vhdx_le32 (t + VHDX_RT_CHECKSUM)) &&
	       vhdx_le32 (t + VHDX_RT_ENTRY_COUNT) <= VHDX_RT_MAX_ENTRIES;
}

gboolean
vhdx_parse_region_table (VmiImage *self, VhdxRegion *bat, VhdxRegion *metadata, GError **error)
{
	g_autofree guint8 *t = g_malloc (VHDX_REGION_TABLE_SIZE);
	guint64 table_offset = VHDX_REGION_TABLE1_OFFSET;
	VhdxRegion log = { self->log_offset, self->log_length };
	guint32 count;

	if (!vhdx_file_read (&self->file, self->log, table_offset, t, VHDX_REGION_TABLE_SIZE, error))
		return FALSE;
	if (!vhdx_region_table_is_valid (t)) {
		/* The second copy exists for exactly this case. */
		table_offset = VHDX_REGION_TABLE2_OFFSET;
		if (!vhdx_file_read (&self->file, self->log, table_offset, t, VHDX_REGION_TABLE_SIZE, error))
			return FALSE;
		if (!vhdx_region_table_is_valid (t))
			return vhdx_set_corrupt (error, "Neither VHDX region table (at offsets 0x30000 and "
						        "0x40000) has a valid signature, entry count and "
						        "CRC-32C checksum");
	}
	*bat = (VhdxRegion) { 0 };
	*metadata = (VhdxRegion) { 0 };
	count = vhdx_le32 (t + VHDX_RT_ENTRY_COUNT);
	for (guint32 i = 0; i < count; i++) {
		const guint8 *e = t + VHDX_RT_ENTRIES + (gsize) i * VHDX_RT_ENTRY_SIZE;
		VhdxRegion r = { vhdx_le64 (e + 16), vhdx_le32 (e + 24) };
		gboolean required = (vhdx_le32 (e + 28) & 1) != 0;
		VhdxRegion *known = NULL;
		guint64 end;

		if (vhdx_guid_equal (e, &vhdx_guid_bat))
			known = bat;
		else if (vhdx_guid_equal (e, &vhdx_guid_metadata))
			known = metadata;
		if (known == NULL) {
			g_autofree char *guid = NULL;

			if (!required)
				continue;
			guid = vhdx_guid_to_string (e);
			g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				     "The VHDX file has a required region of unknown type {%s} at offset " X64,
				     guid, r.offset);
			return FALSE;
		}
		if (known->length != 0)
			return vhdx_set_corrupt (error, "The VHDX region table at " X64 " lists the %s region twice",
					         table_offset, known == bat ? "BAT" : "metadata");
		if (r.offset < VHDX_HEADER_SECTION_SIZE || r.offset % VHDX_MiB != 0 || r.length == 0 ||
		    r.length % VHDX_MiB != 0)
			return vhdx_set_corrupt (error, "The VHDX %s region (offset " X64 ", %" G_GUINT64_FORMAT
						        " bytes) is not a whole number of MiB after the header section",
					         known == bat ? "BAT" : "metadata", r.offset, r.length);
		if (!g_uint64_checked_add (&end, r.offset, r.length) || end > self->file_size)
			return vhdx_set_corrupt (error, "The VHDX %s region at offset " X64 " (%" G_GUINT64_FORMAT
						        " bytes) lies beyond the end of the %" G_GUINT64_FORMAT
						        "-byte file",
					         known == bat ? "BAT" : "metadata", r.offset, r.length,
					         self->file_size);
		*known = r;
	}
	if (bat->length == 0 || metadata->length == 0)
		return vhdx_set_corrupt (error, "The VHDX region table at " X64 " has no %s region", table_offset,
				         bat->length == 0 ? "BAT" : "metadata");
	if (vhdx_region_overlaps (bat, metadata) ||
	    (!vhdx_guid_is_zero (self->log_guid) && (vhdx_region_overlaps (bat, &log) || vhdx_region_overlaps (metadata, &log))))
		return vhdx_set_corrupt (error, "The VHDX BAT (" X64 "), metadata (" X64 ") and log (" X64
					        ") regions overlap",
				         bat->offset, metadata->offset, self->log_offset);
	return TRUE;
}

/* Reads the key/value pairs of the parent locator item [p, p + len). */
static gboolean
vhdx_parse_parent_locator (VmiImage *self, const guint8 *p, guint32 len, GError **error)
{
	guint16 count;

	if (len < 20)
		return vhdx_set_corrupt (error, "The VHDX parent locator is %u bytes, too short for its header", len);
	count = vhdx_le16 (p + 18);
	if ((guint64) count * 12 > len - 20)
		return vhdx_set_corrupt (error, "The VHDX parent locator claims %u entries but is only %u bytes",
				         count, len);
	self->parent_keys = g_ptr_array_new_with_free_func (g_free);
	self->parent_values = g_ptr_array_new_with_free_func (g_free);
	for (guint i = 0; i < count; i++) {
		const guint8 *e = p + 20 + (gsize) i * 12;
		guint32 ko = vhdx_le32 (e), vo = vhdx_le32 (e + 4);
		guint16 kl = vhdx_le16 (e + 8), vl = vhdx_le16 (e + 10);
		char *key, *value;

		if ((guint64) ko + kl > len || (guint64) vo + vl > len || kl == 0 || kl % 2 != 0 ||
		    vl % 2 != 0)
			return vhdx_set_corrupt (error, "VHDX parent locator entry %u lies outside the %u-byte item "
						        "or has an odd length",
					         i, len);
		key = vhdx_utf16_to_utf8 (p + ko, kl);
		value = vhdx_utf16_to_utf8 (p + vo, vl);
		if (key == NULL || value == NULL) {
			g_free (key);
			g_free (value);
			return vhdx_set_corrupt (error, "VHDX parent locator entry %u is not valid UTF-16", i);
		}
		g_ptr_array_add (self->parent_keys, key);
		g_ptr_array_add (self->parent_values, value);
	}
	return TRUE;
}

enum {
	MD_FILE_PARAMETERS = 1 << 0,
	MD_VIRTUAL_DISK_SIZE = 1 << 1,
	MD_VIRTUAL_DISK_ID = 1 << 2,
	MD_LOGICAL_SECTOR_SIZE = 1 << 3,
	MD_PHYSICAL_SECTOR_SIZE = 1 << 4,
	MD_PARENT_LOCATOR = 1 << 5,
};

static const struct {
	const VhdxGuid *guid;
	guint bit;
	guint32 min_length;
	const char *name;
} vhdx_known_items[] = {
	{ &vhdx_guid_file_parameters, MD_FILE_PARAMETERS, 8, "file parameters" },
	{ &vhdx_guid_virtual_disk_size, MD_VIRTUAL_DISK_SIZE, 8, "virtual disk size" },
	{ &vhdx_guid_virtual_disk_id, MD_VIRTUAL_DISK_ID, 16, "virtual disk ID" },
	{ &vhdx_guid_logical_sector_size, MD_LOGICAL_SECTOR_SIZE, 4, "logical sector size" },
	{ &vhdx_guid_physical_sector_size, MD_PHYSICAL_SECTOR_SIZE, 4, "physical sector size" },
	{ &vhdx_guid_parent_locator, MD_PARENT_LOCATOR, 20, "parent locator" },
};

gboolean
vhdx_parse_metadata (VmiImage *self, const VhdxRegion *region, GError **error)
{
	g_autofree guint8 *table = g_malloc (VHDX_METADATA_TABLE_SIZE);
	guint found = 0;
	guint16 count;

	if (!vhdx_file_read (&self->file, self->log, region->offset, table, VHDX_METADATA_TABLE_SIZE, error))
		return FALSE;
	if (memcmp (table, VHDX_METADATA_SIGNATURE, 8) != 0)
		return vhdx_set_corrupt (error, "The VHDX metadata region at " X64 " lacks its \"metadata\" signature",
				         region->offset);
	count = vhdx_le16 (table + VHDX_MD_ENTRY_COUNT);
	if (count > VHDX_MD_MAX_ENTRIES)
		return vhdx_set_corrupt (error, "The VHDX metadata table at " X64 " claims %u entries; at most %u "
					        "are allowed",
				         region->offset, count, VHDX_MD_MAX_ENTRIES);
	for (guint i = 0; i < count; i++) {
		const guint8 *e = table + VHDX_MD_ENTRIES + (gsize) i * VHDX_MD_ENTRY_SIZE;
		guint32 offset = vhdx_le32 (e + 16), length = vhdx_le32 (e + 20), flags = vhdx_le32 (e + 24);
		g_autofree guint8 *item = NULL;
		guint k;

		if (flags & VHDX_MD_FLAG_IS_USER)
			continue;
		for (k = 0; k < G_N_ELEMENTS (vhdx_known_items); k++) {
			if (vhdx_guid_equal (e, vhdx_known_items[k].guid))
				break;
		}
		if (k == G_N_ELEMENTS (vhdx_known_items)) {
			g_autofree char *guid = NULL;

			if ((flags & VHDX_MD_FLAG_IS_REQUIRED) == 0)
				continue;
			guid = vhdx_guid_to_string (e);
			g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				     "The VHDX file has a required metadata item of unknown type {%s}", guid);
			return FALSE;
		}
		if (found & vhdx_known_items[k].bit)
			return vhdx_set_corrupt (error, "The VHDX metadata table lists the %s item twice",
					         vhdx_known_items[k].name);
		if (length < vhdx_known_items[k].min_length || length > VHDX_MD_MAX_ITEM_SIZE ||
		    offset < VHDX_METADATA_TABLE_SIZE || (guint64) offset + length > region->length)
			return vhdx_set_corrupt (error, "The VHDX %s metadata item (offset 0x%x, %u bytes) is too short "
						        "or lies outside the %" G_GUINT64_FORMAT "-byte metadata region",
					         vhdx_known_items[k].name, offset, length, region->length);
		item = g_malloc (length);
		if (!vhdx_file_read (&self->file, self->log, region->offset + offset, item, length, error))
			return FALSE;
		found |= vhdx_known_items[k].bit;
		switch (vhdx_known_items[k].bit) {
		case MD_FILE_PARAMETERS:
			self->block_size = vhdx_le32 (item);
			self->leave_blocks_allocated = (vhdx_le32 (item + 4) & VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED) != 0;
			self->has_parent = (vhdx_le32 (item + 4) & VHDX_PARAM_HAS_PARENT) != 0;
			break;
		case MD_VIRTUAL_DISK_SIZE:
			self->virtual_size = vhdx_le64 (item);
			break;
		case MD_VIRTUAL_DISK_ID:
			memcpy (self->disk_id, item, 16);
			break;
		case MD_LOGICAL_SECTOR_SIZE:
			self->logical_sector_size = vhdx_le32 (item);
			break;
		case MD_PHYSICAL_SECTOR_SIZE:
			self->physical_sector_size = vhdx_le32 (item);
			break;
		case MD_PARENT_LOCATOR:
			if (!vhdx_parse_parent_locator (self, item, length, error))
				return FALSE;
			break;
		default:
			g_assert_not_reached ();
		}
	}
	for (guint k = 0; k < G_N_ELEMENTS (vhdx_known_items); k++) {
		guint bit = vhdx_known_items[k].bit;

		if (bit == MD_PARENT_LOCATOR && !self->has_parent)
			continue;
		if ((found & bit) == 0)
			return vhdx_set_corrupt (error, "The VHDX metadata region at " X64 " lacks the required %s item",
					         region->offset, vhdx_known_items[k].name);
	}
	return TRUE;
}

gboolean
vhdx_check_parameters (VmiImage *self, GError **error)
{
	guint64 bitmap_blocks;

	if (self->block_size < VHDX_BLOCK_SIZE_MIN || self->block_size > VHDX_BLOCK_SIZE_MAX ||
	    (self->block_size & (self->block_size - 1)) != 0)
		return vhdx_set_corrupt (error, "The VHDX block size %u is not a power of two between 1 MiB and 256 MiB",
				         self->block_size);
	if (self->logical_sector_size != 512 && self->logical_sector_size != 4096)
		return vhdx_set_corrupt (error, "The VHDX logical sector size is %u; it must be 512 or 4096",
				         self->logical_sector_size);
	if (self->physical_sector_size != 512 && self->physical_sector_size != 4096)
		return vhdx_set_corrupt (error, "The VHDX physical sector size is %u; it must be 512 or 4096",
				         self->physical_sector_size);
	if (self->virtual_size > VHDX_MAX_VIRTUAL_SIZE)
		return vhdx_set_corrupt (error, "The VHDX virtual disk size %" G_GUINT64_FORMAT
					        " bytes is larger than the 64 TiB the format allows",
				         self->virtual_size);
	if (self->virtual_size % self->logical_sector_size != 0)
		return vhdx_set_corrupt (error, "The VHDX virtual disk size %" G_GUINT64_FORMAT
					        " is not a multiple of the %u-byte logical sector size",
				         self->virtual_size, self->logical_sector_size);
	/* Both factors are bounded above, so none of this can overflow. */
	self->chunk_ratio = VHDX_SECTORS_PER_CHUNK * self->logical_sector_size / self->block_size;
	self->data_blocks = (self->virtual_size + self->block_size - 1) / self->block_size;
	bitmap_blocks = (self->data_blocks + self->chunk_ratio - 1) / self->chunk_ratio;
	if (self->has_parent)
		self->bat_entries = bitmap_blocks * (self->chunk_ratio + 1);
	else
		self->bat_entries = vhdx_bat_entries_no_parent (self->data_blocks, self->chunk_ratio);
	return TRUE;
}
