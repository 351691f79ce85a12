/*
 * VHDX (Hyper-V virtual hard disk v2) reader, after [MS-VHDX] 1.0. The writer is in
 * vhdx-writer.c, log replay in vhdx-log.c.
 */
#include "vhdx-crc32c.h"
#include "vhdx-private.h"

#define X64 "0x%" G_GINT64_MODIFIER "x"

const VhdxGuid vhdx_guid_bat =
	VHDX_GUID (0x2DC27766, 0xF623, 0x4200, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08);
const VhdxGuid vhdx_guid_metadata =
	VHDX_GUID (0x8B7CA206, 0x4790, 0x4B9A, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E);
const VhdxGuid vhdx_guid_file_parameters =
	VHDX_GUID (0xCAA16737, 0xFA36, 0x4D43, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B);
const VhdxGuid vhdx_guid_virtual_disk_size =
	VHDX_GUID (0x2FA54224, 0xCD1B, 0x4876, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8);
const VhdxGuid vhdx_guid_virtual_disk_id =
	VHDX_GUID (0xBECA12AB, 0xB2E6, 0x4523, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46);
const VhdxGuid vhdx_guid_logical_sector_size =
	VHDX_GUID (0x8141BF1D, 0xA96F, 0x4709, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F);
const VhdxGuid vhdx_guid_physical_sector_size =
	VHDX_GUID (0xCDA348C7, 0x445D, 0x4471, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56);
const VhdxGuid vhdx_guid_parent_locator =
	VHDX_GUID (0xA8D35F2D, 0xB30B, 0x454D, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C);
const VhdxGuid vhdx_guid_parent_locator_vhdx =
	VHDX_GUID (0xB04AEFB7, 0xD19E, 0x4A81, 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13);

char *
vhdx_guid_to_string (const guint8 *g)
{
	return g_strdup_printf ("%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", vhdx_le32 (g),
				vhdx_le16 (g + 4), vhdx_le16 (g + 6), g[8], g[9], g[10], g[11], g[12],
				g[13], g[14], g[15]);
}

static const char *const vhdx_extensions[] = { "vhdx", NULL };

static guint
vhdx_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	if (head_len >= 8 && memcmp (head, VHDX_FILE_ID_SIGNATURE, 8) == 0)
		return VMI_PROBE_CERTAIN;
	return VMI_PROBE_NO;
}

void
vhdx_image_free (VmiImage *self)
{
	if (self == NULL)
		return;
	vhdx_writer_free (self->writer);
	vhdx_log_free (self->log);
	g_free (self->creator);
	g_clear_pointer (&self->parent_keys, g_ptr_array_unref);
	g_clear_pointer (&self->parent_values, g_ptr_array_unref);
	g_free (self->bat);
	g_free (self);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiImage, vhdx_image_free)

static void
vhdx_close (VmiImage *self)
{
	vhdx_image_free (self);
}

static gboolean
vhdx_corrupt (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
vhdx_corrupt (GError **error, const char *format, ...)
{
	va_list args;
	g_autofree char *msg = NULL;

	va_start (args, format);
	msg = g_strdup_vprintf (format, args);
	va_end (args);
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE, msg);
	return FALSE;
}

/* UTF-16LE bytes (any alignment) up to the first NUL, as UTF-8; NULL if not valid. */
static char *
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

/* Whether the 4 KiB header at p has the signature and a matching CRC-32C. */
static gboolean
vhdx_header_is_valid (const guint8 *p)
{
	return vhdx_le32 (p) == VHDX_HEADER_SIGNATURE &&
	       vhdx_crc32c_matches (vhdx_crc32c_skip_field (p, VHDX_HEADER_SIZE, VHDX_HDR_CHECKSUM),
				    vhdx_le32 (p + VHDX_HDR_CHECKSUM));
}

/* Picks the current header: the valid one with the larger sequence number. */
static gboolean
vhdx_parse_headers (VmiImage *self, const guint8 *section, GError **error)
{
	const guint8 *h1 = section + VHDX_HEADER1_OFFSET;
	const guint8 *h2 = section + VHDX_HEADER2_OFFSET;
	gboolean ok1 = vhdx_header_is_valid (h1), ok2 = vhdx_header_is_valid (h2);
	const guint8 *h;
	guint16 version, log_version;

	if (!ok1 && !ok2)
		return vhdx_corrupt (error, "Neither VHDX header (at offsets 0x10000 and 0x20000) has "
					    "a valid signature and CRC-32C checksum");
	if (ok1 && ok2) {
		guint64 s1 = vhdx_le64 (h1 + VHDX_HDR_SEQUENCE), s2 = vhdx_le64 (h2 + VHDX_HDR_SEQUENCE);

		/* Disk2VHD writes two identical headers with the same sequence number. */
		if (s1 == s2 && memcmp (h1, h2, VHDX_HEADER_SIZE) != 0)
			return vhdx_corrupt (error, "Both VHDX headers have sequence number %" G_GUINT64_FORMAT
						    " but different contents",
					     s1);
		self->header_index = s2 > s1 ? 2 : 1;
	} else {
		self->header_index = ok1 ? 1 : 2;
	}
	h = self->header_index == 1 ? h1 : h2;
	self->header_sequence = vhdx_le64 (h + VHDX_HDR_SEQUENCE);
	version = vhdx_le16 (h + VHDX_HDR_VERSION);
	log_version = vhdx_le16 (h + VHDX_HDR_LOG_VERSION);
	if (version != 1) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "VHDX header %u has version %u; only version 1 is supported",
			     self->header_index, version);
		return FALSE;
	}
	if (log_version != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "VHDX header %u has log version %u; only version 0 is supported",
			     self->header_index, log_version);
		return FALSE;
	}
	memcpy (self->log_guid, h + VHDX_HDR_LOG_GUID, 16);
	self->log_length = vhdx_le32 (h + VHDX_HDR_LOG_LENGTH);
	self->log_offset = vhdx_le64 (h + VHDX_HDR_LOG_OFFSET);
	return TRUE;
}

static gboolean
vhdx_replay_log (VmiImage *self, const VmiOpenArgs *args, GError **error)
{
	guint64 end;

	if (vhdx_guid_is_zero (self->log_guid))
		return TRUE;
	if (self->log_length == 0 || self->log_length % VHDX_MiB != 0 ||
	    self->log_offset < VHDX_HEADER_SECTION_SIZE || self->log_offset % VHDX_MiB != 0)
		return vhdx_corrupt (error, "The VHDX log (offset " X64 ", %u bytes) is not a whole number "
					    "of MiB after the header section",
				     self->log_offset, self->log_length);
	if (!g_uint64_checked_add (&end, self->log_offset, self->log_length) || end > args->file_size)
		return vhdx_corrupt (error, "The VHDX log at offset " X64 " (%u bytes) lies beyond the end "
					    "of the %" G_GUINT64_FORMAT "-byte file",
				     self->log_offset, self->log_length, args->file_size);
	self->log = vhdx_log_load (args->fd, args->file_size, self->log_guid, self->log_offset,
				   self->log_length, VHDX_METADATA_MEMORY_CAP, error);
	if (self->log == NULL)
		return FALSE;
	self->file_size = vhdx_log_get_file_size (self->log);
	return TRUE;
}

typedef struct {
	guint64 offset;
	guint64 length;
} VhdxRegion;

static gboolean
vhdx_region_table_is_valid (const guint8 *t)
{
	return vhdx_le32 (t) == VHDX_REGION_SIGNATURE &&
	       vhdx_crc32c_matches (vhdx_crc32c_skip_field (t, VHDX_REGION_TABLE_SIZE, VHDX_RT_CHECKSUM),
				    vhdx_le32 (t + VHDX_RT_CHECKSUM)) &&
	       vhdx_le32 (t + VHDX_RT_ENTRY_COUNT) <= VHDX_RT_MAX_ENTRIES;
}

static gboolean
vhdx_overlaps (const VhdxRegion *a, const VhdxRegion *b)
{
	return a->length > 0 && b->length > 0 && a->offset < b->offset + b->length &&
	       b->offset < a->offset + a->length;
}

static gboolean
vhdx_parse_region_table (VmiImage *self, VhdxRegion *bat, VhdxRegion *metadata, GError **error)
{
	g_autofree guint8 *t = g_malloc (VHDX_REGION_TABLE_SIZE);
	guint64 table_offset = VHDX_REGION_TABLE1_OFFSET;
	VhdxRegion log = { self->log_offset, self->log_length };
	guint32 count;

	if (!vhdx_file_read (self->fd, self->log, table_offset, t, VHDX_REGION_TABLE_SIZE, error))
		return FALSE;
	if (!vhdx_region_table_is_valid (t)) {
		/* The second copy exists for exactly this case. */
		table_offset = VHDX_REGION_TABLE2_OFFSET;
		if (!vhdx_file_read (self->fd, self->log, table_offset, t, VHDX_REGION_TABLE_SIZE, error))
			return FALSE;
		if (!vhdx_region_table_is_valid (t))
			return vhdx_corrupt (error, "Neither VHDX region table (at offsets 0x30000 and "
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
			return vhdx_corrupt (error, "The VHDX region table at " X64 " lists the %s region twice",
					     table_offset, known == bat ? "BAT" : "metadata");
		if (r.offset < VHDX_HEADER_SECTION_SIZE || r.offset % VHDX_MiB != 0 || r.length == 0 ||
		    r.length % VHDX_MiB != 0)
			return vhdx_corrupt (error, "The VHDX %s region (offset " X64 ", %" G_GUINT64_FORMAT
						    " bytes) is not a whole number of MiB after the header section",
					     known == bat ? "BAT" : "metadata", r.offset, r.length);
		if (!g_uint64_checked_add (&end, r.offset, r.length) || end > self->file_size)
			return vhdx_corrupt (error, "The VHDX %s region at offset " X64 " (%" G_GUINT64_FORMAT
						    " bytes) lies beyond the end of the %" G_GUINT64_FORMAT
						    "-byte file",
					     known == bat ? "BAT" : "metadata", r.offset, r.length,
					     self->file_size);
		*known = r;
	}
	if (bat->length == 0 || metadata->length == 0)
		return vhdx_corrupt (error, "The VHDX region table at " X64 " has no %s region", table_offset,
				     bat->length == 0 ? "BAT" : "metadata");
	if (vhdx_overlaps (bat, metadata) ||
	    (!vhdx_guid_is_zero (self->log_guid) && (vhdx_overlaps (bat, &log) || vhdx_overlaps (metadata, &log))))
		return vhdx_corrupt (error, "The VHDX BAT (" X64 "), metadata (" X64 ") and log (" X64
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
		return vhdx_corrupt (error, "The VHDX parent locator is %u bytes, too short for its header", len);
	count = vhdx_le16 (p + 18);
	if ((guint64) count * 12 > len - 20)
		return vhdx_corrupt (error, "The VHDX parent locator claims %u entries but is only %u bytes",
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
			return vhdx_corrupt (error, "VHDX parent locator entry %u lies outside the %u-byte item "
						    "or has an odd length",
					     i, len);
		key = vhdx_utf16_to_utf8 (p + ko, kl);
		value = vhdx_utf16_to_utf8 (p + vo, vl);
		if (key == NULL || value == NULL) {
			g_free (key);
			g_free (value);
			return vhdx_corrupt (error, "VHDX parent locator entry %u is not valid UTF-16", i);
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

static gboolean
vhdx_parse_metadata (VmiImage *self, const VhdxRegion *region, GError **error)
{
	g_autofree guint8 *table = g_malloc (VHDX_METADATA_TABLE_SIZE);
	guint found = 0;
	guint16 count;

	if (!vhdx_file_read (self->fd, self->log, region->offset, table, VHDX_METADATA_TABLE_SIZE, error))
		return FALSE;
	if (memcmp (table, VHDX_METADATA_SIGNATURE, 8) != 0)
		return vhdx_corrupt (error, "The VHDX metadata region at " X64 " lacks its \"metadata\" signature",
				     region->offset);
	count = vhdx_le16 (table + VHDX_MD_ENTRY_COUNT);
	if (count > VHDX_MD_MAX_ENTRIES)
		return vhdx_corrupt (error, "The VHDX metadata table at " X64 " claims %u entries; at most %u "
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
			return vhdx_corrupt (error, "The VHDX metadata table lists the %s item twice",
					     vhdx_known_items[k].name);
		if (length < vhdx_known_items[k].min_length || length > VHDX_MD_MAX_ITEM_SIZE ||
		    offset < VHDX_METADATA_TABLE_SIZE || (guint64) offset + length > region->length)
			return vhdx_corrupt (error, "The VHDX %s metadata item (offset 0x%x, %u bytes) is too short "
						    "or lies outside the %" G_GUINT64_FORMAT "-byte metadata region",
					     vhdx_known_items[k].name, offset, length, region->length);
		item = g_malloc (length);
		if (!vhdx_file_read (self->fd, self->log, region->offset + offset, item, length, error))
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
			return vhdx_corrupt (error, "The VHDX metadata region at " X64 " lacks the required %s item",
					     region->offset, vhdx_known_items[k].name);
	}
	return TRUE;
}

static gboolean
vhdx_check_parameters (VmiImage *self, GError **error)
{
	guint64 bitmap_blocks;

	if (self->block_size < VHDX_BLOCK_SIZE_MIN || self->block_size > VHDX_BLOCK_SIZE_MAX ||
	    (self->block_size & (self->block_size - 1)) != 0)
		return vhdx_corrupt (error, "The VHDX block size %u is not a power of two between 1 MiB and 256 MiB",
				     self->block_size);
	if (self->logical_sector_size != 512 && self->logical_sector_size != 4096)
		return vhdx_corrupt (error, "The VHDX logical sector size is %u; it must be 512 or 4096",
				     self->logical_sector_size);
	if (self->physical_sector_size != 512 && self->physical_sector_size != 4096)
		return vhdx_corrupt (error, "The VHDX physical sector size is %u; it must be 512 or 4096",
				     self->physical_sector_size);
	if (self->virtual_size > VHDX_MAX_VIRTUAL_SIZE)
		return vhdx_corrupt (error, "The VHDX virtual disk size %" G_GUINT64_FORMAT
					    " bytes is larger than the 64 TiB the format allows",
				     self->virtual_size);
	if (self->virtual_size % self->logical_sector_size != 0)
		return vhdx_corrupt (error, "The VHDX virtual disk size %" G_GUINT64_FORMAT
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

static gboolean
vhdx_load_bat (VmiImage *self, const VhdxRegion *region, GError **error)
{
	guint64 bytes = self->bat_entries * sizeof (guint64);

	if (bytes > region->length)
		return vhdx_corrupt (error, "The VHDX BAT region at " X64 " is %" G_GUINT64_FORMAT
					    " bytes, too small for the %" G_GUINT64_FORMAT
					    " entries a %" G_GUINT64_FORMAT "-byte disk needs",
				     region->offset, region->length, self->bat_entries, self->virtual_size);
	if (bytes > VHDX_METADATA_MEMORY_CAP) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "The VHDX BAT is %" G_GUINT64_FORMAT " bytes; at most %" G_GUINT64_FORMAT
			     " bytes are supported",
			     bytes, (guint64) VHDX_METADATA_MEMORY_CAP);
		return FALSE;
	}
	self->bat = g_malloc (MAX (bytes, 1));
	if (!vhdx_file_read (self->fd, self->log, region->offset, self->bat, bytes, error))
		return FALSE;
	for (guint64 i = 0; i < self->bat_entries; i++)
		self->bat[i] = GUINT64_FROM_LE (self->bat[i]);

	for (guint64 block = 0; block < self->data_blocks; block++) {
		guint64 index = vhdx_payload_bat_index (self, block);
		guint64 entry = self->bat[index], offset, end;
		guint state = entry & VHDX_BAT_STATE_MASK;
		guint64 need = MIN ((guint64) self->block_size, self->virtual_size - block * self->block_size);

		switch (state) {
		case VHDX_PAYLOAD_NOT_PRESENT:
		case VHDX_PAYLOAD_UNDEFINED:
		case VHDX_PAYLOAD_ZERO:
		case VHDX_PAYLOAD_UNMAPPED:
			continue;
		case VHDX_PAYLOAD_PARTIALLY_PRESENT:
			if (!self->has_parent)
				return vhdx_corrupt (error, "VHDX BAT entry %" G_GUINT64_FORMAT " (block %" G_GUINT64_FORMAT
							    ") is partially present, which only a differencing "
							    "image may use",
						     index, block);
			break;
		case VHDX_PAYLOAD_FULLY_PRESENT:
			break;
		default:
			return vhdx_corrupt (error, "VHDX BAT entry %" G_GUINT64_FORMAT " (block %" G_GUINT64_FORMAT
						    ") has the reserved state %u",
					     index, block, state);
		}
		offset = (entry >> VHDX_BAT_OFFSET_SHIFT) * VHDX_MiB;
		if (offset < VHDX_HEADER_SECTION_SIZE)
			return vhdx_corrupt (error, "VHDX BAT entry %" G_GUINT64_FORMAT " (block %" G_GUINT64_FORMAT
						    ") points at offset " X64 ", inside the header section",
					     index, block, offset);
		if (!g_uint64_checked_add (&end, offset, need) || end > self->file_size)
			return vhdx_corrupt (error, "VHDX BAT entry %" G_GUINT64_FORMAT " (block %" G_GUINT64_FORMAT
						    ") points at offset " X64 ", beyond the end of the %"
						    G_GUINT64_FORMAT "-byte file",
					     index, block, offset, self->file_size);
		self->allocated_blocks++;
	}
	return TRUE;
}

static VmiImage *
vhdx_open (const VmiOpenArgs *args, GError **error)
{
	g_autoptr(VmiImage) self = g_new0 (VmiImage, 1);
	g_autofree guint8 *section = NULL;
	gsize section_len = VHDX_REGION_TABLE1_OFFSET;
	VhdxRegion bat, metadata;

	self->fd = args->fd;
	self->file_size = args->file_size;
	section = g_malloc0 (section_len);
	if (!vhdx_file_read (args->fd, NULL, 0, section, MIN (section_len, args->file_size), error))
		return NULL;
	if (args->file_size < 8 || memcmp (section, VHDX_FILE_ID_SIGNATURE, 8) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "Not a VHDX file: the %" G_GUINT64_FORMAT
			     "-byte file does not start with \"vhdxfile\"",
			     args->file_size);
		return NULL;
	}
	if (args->file_size < VHDX_HEADER_SECTION_SIZE) {
		vhdx_corrupt (error, "The VHDX file is truncated: it is %" G_GUINT64_FORMAT
				     " bytes, smaller than the 1 MiB header section",
			      args->file_size);
		return NULL;
	}
	self->creator = vhdx_utf16_to_utf8 (section + VHDX_FILE_ID_CREATOR_OFFSET, VHDX_FILE_ID_CREATOR_SIZE);
	if (self->creator != NULL)
		g_strchomp (self->creator);
	if (!vhdx_parse_headers (self, section, error))
		return NULL;
	/* The log must be replayed before anything but the headers and the log is read. */
	if (!vhdx_replay_log (self, args, error))
		return NULL;
	if (!vhdx_parse_region_table (self, &bat, &metadata, error))
		return NULL;
	if (!vhdx_parse_metadata (self, &metadata, error))
		return NULL;
	if (!vhdx_check_parameters (self, error))
		return NULL;
	if (!vhdx_load_bat (self, &bat, error))
		return NULL;
	return g_steal_pointer (&self);
}

static const char *
vhdx_subformat (const VmiImage *self)
{
	if (self->has_parent)
		return "differencing";
	return self->leave_blocks_allocated ? "fixed" : "dynamic";
}

static gboolean
vhdx_get_info (VmiImage *self, VmiImageInfo *info, GError **error)
{
	GVariantDict *fs = info->format_specific;
	g_autofree char *disk_id = vhdx_guid_to_string (self->disk_id);

	info->virtual_size = self->virtual_size;
	info->subformat = vhdx_subformat (self);
	info->cluster_size = self->block_size;
	g_variant_dict_insert (fs, "block-size", "t", (guint64) self->block_size);
	g_variant_dict_insert (fs, "log-size", "t", (guint64) self->log_length);
	g_variant_dict_insert (fs, "logical-sector-size", "t", (guint64) self->logical_sector_size);
	g_variant_dict_insert (fs, "physical-sector-size", "t", (guint64) self->physical_sector_size);
	g_variant_dict_insert (fs, "has-parent", "b", self->has_parent);
	g_variant_dict_insert (fs, "leave-blocks-allocated", "b", self->leave_blocks_allocated);
	g_variant_dict_insert (fs, "virtual-disk-id", "s", disk_id);
	g_variant_dict_insert (fs, "creator", "s", self->creator != NULL ? self->creator : "");
	g_variant_dict_insert (fs, "header-sequence", "t", self->header_sequence);
	g_variant_dict_insert (fs, "allocated-blocks", "t", self->allocated_blocks);
	g_variant_dict_insert (fs, "log-replayed", "b", self->log != NULL);
	if (self->log != NULL) {
		g_variant_dict_insert (fs, "log-entries-replayed", "t",
				       (guint64) vhdx_log_get_n_entries (self->log));
		/* We replayed it in memory only; other tools will see the file as it is on disk. */
		g_ptr_array_add (info->unsafe_reasons,
				 g_strdup_printf ("The VHDX file is dirty: its log holds %u entries of updates "
						  "that were never written to their place. They are applied "
						  "when reading here, but the file itself still needs a log "
						  "replay (by Hyper-V, or qemu-img check -r all on a copy)",
						  vhdx_log_get_n_entries (self->log)));
	}

	if (self->has_parent) {
		static const char *const path_keys[] = { "relative_path", "volume_path",
							 "absolute_win32_path" };
		GString *where = g_string_new (NULL);

		for (guint i = 0; self->parent_keys != NULL && i < self->parent_keys->len; i++) {
			const char *key = g_ptr_array_index (self->parent_keys, i);
			const char *value = g_ptr_array_index (self->parent_values, i);

			if (g_strcmp0 (key, "parent_linkage") == 0)
				g_variant_dict_insert (fs, "parent-linkage", "s", value);
			if (!g_strv_contains (path_keys, key))
				continue;
			g_ptr_array_add (info->references, g_strdup (value));
			g_string_append_printf (where, "%s%s", where->len > 0 ? ", " : "", value);
		}
		g_ptr_array_add (info->unsafe_reasons,
				 g_strdup_printf ("This is a differencing VHDX: its content depends on a "
						  "parent image (%s), which is never opened",
						  where->len > 0 ? where->str : "no path given"));
		g_string_free (where, TRUE);
	}
	return TRUE;
}

static gboolean
vhdx_refuse_differencing (const VmiImage *self, GError **error)
{
	if (!self->has_parent)
		return TRUE;
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "Reading a differencing VHDX is not supported: its content depends on a "
			     "parent image, which is never opened");
	return FALSE;
}

/* Payload file offset of block, or 0 when it reads as zeros. */
static guint64
vhdx_block_offset (const VmiImage *self, guint64 block)
{
	guint64 entry = self->bat[vhdx_payload_bat_index (self, block)];

	if ((entry & VHDX_BAT_STATE_MASK) != VHDX_PAYLOAD_FULLY_PRESENT)
		return 0;
	return (entry >> VHDX_BAT_OFFSET_SHIFT) * VHDX_MiB;
}

static gboolean
vhdx_read (VmiImage *self, guint64 offset, void *buf, gsize len, GError **error)
{
	guint8 *out = buf;

	if (!vhdx_refuse_differencing (self, error))
		return FALSE;
	if (offset > self->virtual_size || len > self->virtual_size - offset) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "Read of %" G_GSIZE_FORMAT " bytes at " X64 " is beyond the %" G_GUINT64_FORMAT
			     "-byte virtual disk",
			     len, offset, self->virtual_size);
		return FALSE;
	}
	while (len > 0) {
		guint64 block = offset / self->block_size;
		guint64 within = offset % self->block_size;
		gsize n = MIN (len, self->block_size - within);
		guint64 file_offset = vhdx_block_offset (self, block);

		if (file_offset == 0)
			memset (out, 0, n);
		else if (!vhdx_file_read (self->fd, self->log, file_offset + within, out, n, error))
			return FALSE;
		out += n;
		offset += n;
		len -= n;
	}
	return TRUE;
}

static VmiExtentKind
vhdx_block_kind (const VmiImage *self, guint64 block)
{
	switch (self->bat[vhdx_payload_bat_index (self, block)] & VHDX_BAT_STATE_MASK) {
	case VHDX_PAYLOAD_FULLY_PRESENT:
		return VMI_EXTENT_DATA;
	case VHDX_PAYLOAD_ZERO:
		return VMI_EXTENT_ZERO;
	default:
		return VMI_EXTENT_HOLE;
	}
}

static gboolean
vhdx_block_status (VmiImage *self, guint64 offset, guint64 max_length, VmiExtent *extent, GError **error)
{
	guint64 block, end, pos;

	if (!vhdx_refuse_differencing (self, error))
		return FALSE;
	if (offset >= self->virtual_size || max_length == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "Block status at " X64 " is beyond the %" G_GUINT64_FORMAT "-byte virtual disk",
			     offset, self->virtual_size);
		return FALSE;
	}
	end = offset + MIN (max_length, self->virtual_size - offset);
	block = offset / self->block_size;
	extent->kind = vhdx_block_kind (self, block);
	pos = (block + 1) * self->block_size;
	while (pos < end && vhdx_block_kind (self, pos / self->block_size) == extent->kind)
		pos += self->block_size;
	extent->length = MIN (pos, end) - offset;
	return TRUE;
}

const VmiFormatPlugin vmi_vhdx_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "vhdx",
	.description = "Hyper-V virtual hard disk v2 (VHDX)",
	.extensions = vhdx_extensions,
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ | VMI_FORMAT_CAN_WRITE,
	.probe = vhdx_probe,
	.open = vhdx_open,
	.get_info = vhdx_get_info,
	.read = vhdx_read,
	.block_status = vhdx_block_status,
	.close = vhdx_close,
	.create_options = vhdx_create_options,
	.create = vhdx_create,
	.write = vhdx_write,
	.finish = vhdx_finish,
};

VMI_PLUGIN_DEFINE (vmi_vhdx_plugin)
