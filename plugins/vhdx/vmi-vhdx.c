/*
 * VHDX (Hyper-V virtual hard disk v2) reader, after [MS-VHDX] 1.0: headers, BAT, reads. The
 * region table and metadata are parsed in vhdx-metadata.c, the log is replayed by vhdx-log.c
 * and the writer is vhdx-writer.c.
 */
#include "vhdx-crc32c.h"
#include "vhdx-private.h"
#include "vhdx-measure.h"
#include "vhdx-check.h"
#include "vmi-plugin-util.h"

#define X64 "0x%" G_GINT64_MODIFIER "x"

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

gboolean
vhdx_set_corrupt (GError **error, const char *format, ...)
{
	va_list args;
	g_autofree char *msg = NULL;

	va_start (args, format);
	msg = g_strdup_vprintf (format, args);
	va_end (args);
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE, msg);
	return FALSE;
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
		return vhdx_set_corrupt (error, "Neither VHDX header (at offsets 0x10000 and 0x20000) has "
					        "a valid signature and CRC-32C checksum");
	if (ok1 && ok2) {
		guint64 s1 = vhdx_le64 (h1 + VHDX_HDR_SEQUENCE), s2 = vhdx_le64 (h2 + VHDX_HDR_SEQUENCE);

		/* Disk2VHD writes two identical headers with the same sequence number. */
		if (s1 == s2 && memcmp (h1, h2, VHDX_HEADER_SIZE) != 0)
			return vhdx_set_corrupt (error, "Both VHDX headers have sequence number %" G_GUINT64_FORMAT
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
		return vhdx_set_corrupt (error, "The VHDX log (offset " X64 ", %u bytes) is not a whole number "
					        "of MiB after the header section",
				         self->log_offset, self->log_length);
	if (!g_uint64_checked_add (&end, self->log_offset, self->log_length) || end > args->file_size)
		return vhdx_set_corrupt (error, "The VHDX log at offset " X64 " (%u bytes) lies beyond the end "
					        "of the %" G_GUINT64_FORMAT "-byte file",
				         self->log_offset, self->log_length, args->file_size);
	self->log = vhdx_log_load (&self->file, self->log_guid, self->log_offset,
				   self->log_length, VHDX_METADATA_MEMORY_CAP, error);
	if (self->log == NULL)
		return FALSE;
	self->file_size = vhdx_log_get_file_size (self->log);
	return TRUE;
}


static gboolean
vhdx_load_bat (VmiImage *self, const VhdxRegion *region, const VhdxRegion *metadata, GError **error)
{
	guint64 bytes = self->bat_entries * sizeof (guint64);
	/* A block on top of the file's own structures would show them as disk content. */
	VhdxRegion reserved[] = {
		*region,
		*metadata,
		{ self->log_offset, self->log_length },
	};
	guint64 log_end;

	/* An unused log (zero log GUID) may name any place; only a real one is reserved. */
	if (!g_uint64_checked_add (&log_end, self->log_offset, self->log_length) || log_end > self->file_size)
		reserved[2].length = 0;
	const char *const reserved_names[] = { "BAT", "metadata", "log" };

	if (bytes > region->length)
		return vhdx_set_corrupt (error, "The VHDX BAT region at " X64 " is %" G_GUINT64_FORMAT
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
	if (!vhdx_file_read (&self->file, self->log, region->offset, self->bat, bytes, error))
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
				return vhdx_set_corrupt (error, "VHDX BAT entry %" G_GUINT64_FORMAT " (block %" G_GUINT64_FORMAT
							        ") is partially present, which only a differencing "
							        "image may use",
						         index, block);
			break;
		case VHDX_PAYLOAD_FULLY_PRESENT:
			break;
		default:
			return vhdx_set_corrupt (error, "VHDX BAT entry %" G_GUINT64_FORMAT " (block %" G_GUINT64_FORMAT
						        ") has the reserved state %u",
					         index, block, state);
		}
		offset = (entry >> VHDX_BAT_OFFSET_SHIFT) * VHDX_MiB;
		if (offset < VHDX_HEADER_SECTION_SIZE)
			return vhdx_set_corrupt (error, "VHDX BAT entry %" G_GUINT64_FORMAT " (block %" G_GUINT64_FORMAT
						        ") points at offset " X64 ", inside the header section",
					         index, block, offset);
		if (!g_uint64_checked_add (&end, offset, need) || end > self->file_size)
			return vhdx_set_corrupt (error, "VHDX BAT entry %" G_GUINT64_FORMAT " (block %" G_GUINT64_FORMAT
						        ") points at offset " X64 ", beyond the end of the %"
						        G_GUINT64_FORMAT "-byte file",
					         index, block, offset, self->file_size);
		for (guint r = 0; r < G_N_ELEMENTS (reserved); r++) {
			VhdxRegion payload = { offset, need };

			if (vhdx_region_overlaps (&payload, &reserved[r]))
				return vhdx_set_corrupt (error, "VHDX BAT entry %" G_GUINT64_FORMAT " (block %" G_GUINT64_FORMAT
							        ") points at offset " X64 ", inside the %s region",
						         index, block, offset, reserved_names[r]);
		}
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

	if (!vmi_file_range_init (&self->file, args, error))
		return NULL;
	self->fd = -1;
	self->file_size = args->file_size;
	self->disk_file_size = args->file_size;
	section = g_malloc0 (section_len);
	if (!vhdx_file_read (&self->file, NULL, 0, section, MIN (section_len, args->file_size), error))
		return NULL;
	if (args->file_size < 8 || memcmp (section, VHDX_FILE_ID_SIGNATURE, 8) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "Not a VHDX file: the %" G_GUINT64_FORMAT
			     "-byte file does not start with \"vhdxfile\"",
			     args->file_size);
		return NULL;
	}
	if (args->file_size < VHDX_HEADER_SECTION_SIZE) {
		vhdx_set_corrupt (error, "The VHDX file is truncated: it is %" G_GUINT64_FORMAT
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
	if (!vhdx_load_bat (self, &bat, &metadata, error))
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
		else if (!vhdx_file_read (&self->file, self->log, file_offset + within, out, n, error))
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

/*
 * The run at offset inside a fully present block, which may be shorter than the block: writers
 * (qemu among them) extend the file by whole blocks and write only the data, so most of a
 * block can be a hole of the file, which reads as zeros. Reading those zeros and finding them
 * zero costs more than the data itself; the file's holes say so for the price of two lseeks.
 * Bytes that the replayed log changes are always data.
 */
static gboolean
vhdx_present_run (VmiImage *self, guint64 block, guint64 offset, guint64 end, VmiExtent *extent,
		  GError **error)
{
	guint64 within = offset % self->block_size;
	guint64 run = MIN (end, (block + 1) * self->block_size) - offset;
	guint64 file_offset = vhdx_block_offset (self, block) + within;
	VmiExtent file_extent = { 0 };

	extent->kind = VMI_EXTENT_DATA;
	extent->length = run;
	if (vhdx_log_touches (self->log, file_offset, run))
		return TRUE;
	/* The log may have grown the file: bytes past its end on disk read as zeros. */
	if (file_offset >= self->disk_file_size) {
		extent->kind = VMI_EXTENT_ZERO;
		return TRUE;
	}
	if (!vmi_range_block_status (&self->file, file_offset, run, &file_extent, error))
		return FALSE;
	if (file_extent.kind == VMI_EXTENT_DATA) {
		extent->length = file_extent.length;
		return TRUE;
	}
	extent->kind = VMI_EXTENT_ZERO;
	/* A hole up to the end of the file goes on past it. */
	if (file_offset + file_extent.length < self->disk_file_size)
		extent->length = file_extent.length;
	return TRUE;
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
	if (extent->kind == VMI_EXTENT_DATA) {
		if (!vhdx_present_run (self, block, offset, end, extent, error))
			return FALSE;
		/* Zeros to the end of the block go on into blocks that are zero. */
		pos = (block + 1) * self->block_size;
		if (extent->kind == VMI_EXTENT_DATA || offset + extent->length < MIN (pos, end))
			return TRUE;
	} else {
		pos = (block + 1) * self->block_size;
	}
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
	.measure = vhdx_measure,
	.check = vhdx_check,
};

VMI_PLUGIN_DEFINE (vmi_vhdx_plugin)
