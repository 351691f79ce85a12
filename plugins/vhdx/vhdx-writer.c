/*
 * VHDX writer. Layout, in whole MiB as the format wants:
 *
 *   0       header section: file identifier, two headers, two region tables
 *   1 MiB   log (empty, log GUID zero: nothing to replay)
 *   2 MiB   BAT (rounded up to a MiB)
 *   ...     metadata region (1 MiB: table and the five required items)
 *   ...     payload blocks, in the order they are first written (fixed: all, in order)
 *
 * Data goes to the payload blocks as it comes; the structures that describe it are written by
 * finish, so a file left partial by an error has no VHDX signature.
 */
#include <errno.h>
#include <unistd.h>

#include "config.h"
#include "vhdx-crc32c.h"
#include "vhdx-private.h"

#define VHDX_WRITER_LOG_SIZE VHDX_MiB
#define VHDX_WRITER_METADATA_SIZE VHDX_MiB
#define VHDX_WRITER_LOGICAL_SECTOR 512u
#define VHDX_WRITER_PHYSICAL_SECTOR 512u /* as qemu-img writes */

struct _VhdxWriter {
	gboolean fixed;
	guint64 bat_offset;
	guint64 bat_length;
	guint64 metadata_offset;
	guint64 file_end; /* end of the last allocated block */
};

const VmiOptionSpec vhdx_create_options[] = {
	{ "subformat", "s", "\"dynamic\" (default: blocks allocated as written) or \"fixed\" (all blocks allocated)" },
	{ "block-size", "t", "payload block size in bytes, a power of two from 1 MiB to 256 MiB; "
			     "0 or absent picks qemu's default for the disk size" },
	{ NULL }
};

void
vhdx_writer_free (VhdxWriter *writer)
{
	g_free (writer);
}

static gboolean
vhdx_pwrite (int fd, guint64 offset, const void *buf, gsize len, GError **error)
{
	gsize done = 0;

	while (done < len) {
		ssize_t n = pwrite (fd, (const guint8 *) buf + done, len - done, (off_t) (offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;

			g_set_error (error, VMI_ERROR, saved == ENOSPC || saved == EDQUOT ? VMI_ERROR_NO_SPACE : VMI_ERROR_FAILED,
				     "Could not write the VHDX file at offset 0x%" G_GINT64_MODIFIER "x: %s",
				     offset + done, g_strerror (saved));
			return FALSE;
		}
		done += (gsize) n;
	}
	return TRUE;
}

static gboolean
vhdx_set_file_size (int fd, guint64 size, GError **error)
{
	if (ftruncate (fd, (off_t) size) != 0) {
		int saved = errno;

		g_set_error (error, VMI_ERROR, saved == ENOSPC || saved == EFBIG ? VMI_ERROR_NO_SPACE : VMI_ERROR_FAILED,
			     "Could not size the VHDX file to %" G_GUINT64_FORMAT " bytes: %s", size,
			     g_strerror (saved));
		return FALSE;
	}
	return TRUE;
}

/* qemu-img's choice, so our images look like the ones people already have. */
static guint32
vhdx_default_block_size (guint64 virtual_size)
{
	if (virtual_size > 32 * VHDX_TiB)
		return 64 * VHDX_MiB;
	if (virtual_size > 100ull * 1024 * VHDX_MiB)
		return 32 * VHDX_MiB;
	if (virtual_size > 1024 * VHDX_MiB)
		return 16 * VHDX_MiB;
	return 8 * VHDX_MiB;
}

static void
vhdx_random_guid (guint8 *g)
{
	for (guint i = 0; i < 16; i += 4)
		vhdx_put_le32 (g + i, g_random_int ());
	g[7] = (g[7] & 0x0f) | 0x40; /* version 4 (Data3 is stored little endian) */
	g[8] = (g[8] & 0x3f) | 0x80;
}

VmiImage *
vhdx_create (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	g_autoptr(GVariantDict) dict = g_variant_dict_new (options);
	g_autoptr(GVariant) subformat_v = g_variant_dict_lookup_value (dict, "subformat", G_VARIANT_TYPE_STRING);
	g_autoptr(GVariant) block_v = g_variant_dict_lookup_value (dict, "block-size", G_VARIANT_TYPE_UINT64);
	const char *subformat = subformat_v != NULL ? g_variant_get_string (subformat_v, NULL) : "dynamic";
	guint64 block_size = block_v != NULL ? g_variant_get_uint64 (block_v) : 0;
	guint64 bat_bytes;
	VmiImage *self;
	VhdxWriter *w;

	if (g_strcmp0 (subformat, "dynamic") != 0 && g_strcmp0 (subformat, "fixed") != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "VHDX subformat \"%s\" is unknown; use \"dynamic\" or \"fixed\"", subformat);
		return NULL;
	}
	/* The format counts in logical sectors; qemu-img rounds up the same way. */
	if (virtual_size > VHDX_MAX_VIRTUAL_SIZE) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "A VHDX disk can be at most 64 TiB, not %" G_GUINT64_FORMAT " bytes", virtual_size);
		return NULL;
	}
	virtual_size = (virtual_size + VHDX_WRITER_LOGICAL_SECTOR - 1) / VHDX_WRITER_LOGICAL_SECTOR *
		       VHDX_WRITER_LOGICAL_SECTOR;
	if (block_size == 0)
		block_size = vhdx_default_block_size (virtual_size);
	if (block_size < VHDX_BLOCK_SIZE_MIN || block_size > VHDX_BLOCK_SIZE_MAX ||
	    (block_size & (block_size - 1)) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "VHDX block-size %" G_GUINT64_FORMAT
			     " is not a power of two between 1 MiB and 256 MiB",
			     block_size);
		return NULL;
	}

	self = g_new0 (VmiImage, 1);
	self->fd = fd;
	self->virtual_size = virtual_size;
	self->block_size = (guint32) block_size;
	self->logical_sector_size = VHDX_WRITER_LOGICAL_SECTOR;
	self->physical_sector_size = VHDX_WRITER_PHYSICAL_SECTOR;
	self->leave_blocks_allocated = g_strcmp0 (subformat, "fixed") == 0;
	self->log_offset = VHDX_HEADER_SECTION_SIZE;
	self->log_length = VHDX_WRITER_LOG_SIZE;
	vhdx_random_guid (self->disk_id);
	self->chunk_ratio = VHDX_SECTORS_PER_CHUNK * self->logical_sector_size / self->block_size;
	self->data_blocks = (virtual_size + block_size - 1) / block_size;
	self->bat_entries = vhdx_bat_entries_no_parent (self->data_blocks, self->chunk_ratio);
	bat_bytes = self->bat_entries * sizeof (guint64);
	if (bat_bytes > VHDX_METADATA_MEMORY_CAP) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "A %" G_GUINT64_FORMAT "-byte VHDX with %" G_GUINT64_FORMAT
			     "-byte blocks needs a %" G_GUINT64_FORMAT "-byte BAT; choose a larger block-size",
			     virtual_size, block_size, bat_bytes);
		vhdx_image_free (self);
		return NULL;
	}
	self->bat = g_new0 (guint64, MAX (self->bat_entries, 1));

	w = self->writer = g_new0 (VhdxWriter, 1);
	w->fixed = self->leave_blocks_allocated;
	w->bat_offset = self->log_offset + self->log_length;
	/*
	 * qemu computes data_blocks - 1 in 32 bits, so for an empty disk it wants room for
	 * 2^32 / chunk_ratio entries and refuses a smaller BAT region. It costs nothing: the
	 * region is a hole.
	 */
	if (self->data_blocks == 0)
		w->bat_length = (guint64) G_MAXUINT32 / self->chunk_ratio * sizeof (guint64);
	else
		w->bat_length = bat_bytes;
	w->bat_length = MAX ((w->bat_length + VHDX_MiB - 1) / VHDX_MiB * VHDX_MiB, VHDX_MiB);
	w->metadata_offset = w->bat_offset + w->bat_length;
	w->file_end = w->metadata_offset + VHDX_WRITER_METADATA_SIZE;

	if (w->fixed) {
		for (guint64 block = 0; block < self->data_blocks; block++) {
			self->bat[vhdx_payload_bat_index (self, block)] =
				VHDX_PAYLOAD_FULLY_PRESENT | (w->file_end / VHDX_MiB) << VHDX_BAT_OFFSET_SHIFT;
			w->file_end += block_size;
		}
		self->allocated_blocks = self->data_blocks;
		/* Sparse where the file system allows: every block reads as zeros until written. */
		if (!vhdx_set_file_size (fd, w->file_end, error)) {
			vhdx_image_free (self);
			return NULL;
		}
	}
	return self;
}

static gboolean
vhdx_is_zero (const guint8 *p, gsize len)
{
	return len == 0 || (p[0] == 0 && memcmp (p, p + 1, len - 1) == 0);
}

gboolean
vhdx_write (VmiImage *self, guint64 offset, const void *buf, gsize len, GError **error)
{
	VhdxWriter *w = self->writer;
	const guint8 *p = buf;

	g_return_val_if_fail (w != NULL, FALSE);
	if (offset > self->virtual_size || len > self->virtual_size - offset) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "Write of %" G_GSIZE_FORMAT " bytes at 0x%" G_GINT64_MODIFIER
			     "x is beyond the %" G_GUINT64_FORMAT "-byte virtual disk",
			     len, offset, self->virtual_size);
		return FALSE;
	}
	while (len > 0) {
		guint64 block = offset / self->block_size;
		guint64 within = offset % self->block_size;
		gsize n = MIN (len, self->block_size - within);
		guint64 *entry = &self->bat[vhdx_payload_bat_index (self, block)];

		/* Zeros need no block: an unallocated one reads as zeros. */
		if (!vhdx_is_zero (p, n)) {
			if ((*entry & VHDX_BAT_STATE_MASK) != VHDX_PAYLOAD_FULLY_PRESENT) {
				*entry = VHDX_PAYLOAD_FULLY_PRESENT |
					 (w->file_end / VHDX_MiB) << VHDX_BAT_OFFSET_SHIFT;
				w->file_end += self->block_size;
				self->allocated_blocks++;
			}
			if (!vhdx_pwrite (self->fd, (*entry >> VHDX_BAT_OFFSET_SHIFT) * VHDX_MiB + within, p, n,
					  error))
				return FALSE;
		}
		p += n;
		offset += n;
		len -= n;
	}
	return TRUE;
}

static void
vhdx_build_metadata (const VmiImage *self, guint8 *md)
{
	struct {
		const VhdxGuid *guid;
		guint32 length;
		guint32 flags;
	} items[] = {
		{ &vhdx_guid_file_parameters, 8, VHDX_MD_FLAG_IS_REQUIRED },
		{ &vhdx_guid_virtual_disk_size, 8, VHDX_MD_FLAG_IS_VIRTUAL_DISK | VHDX_MD_FLAG_IS_REQUIRED },
		{ &vhdx_guid_virtual_disk_id, 16, VHDX_MD_FLAG_IS_VIRTUAL_DISK | VHDX_MD_FLAG_IS_REQUIRED },
		{ &vhdx_guid_logical_sector_size, 4, VHDX_MD_FLAG_IS_VIRTUAL_DISK | VHDX_MD_FLAG_IS_REQUIRED },
		{ &vhdx_guid_physical_sector_size, 4, VHDX_MD_FLAG_IS_VIRTUAL_DISK | VHDX_MD_FLAG_IS_REQUIRED },
	};
	guint32 offset = VHDX_METADATA_TABLE_SIZE;

	memcpy (md, VHDX_METADATA_SIGNATURE, 8);
	vhdx_put_le16 (md + VHDX_MD_ENTRY_COUNT, G_N_ELEMENTS (items));
	for (guint i = 0; i < G_N_ELEMENTS (items); i++) {
		guint8 *e = md + VHDX_MD_ENTRIES + i * VHDX_MD_ENTRY_SIZE;
		guint8 *item = md + offset;

		memcpy (e, items[i].guid->b, 16);
		vhdx_put_le32 (e + 16, offset);
		vhdx_put_le32 (e + 20, items[i].length);
		vhdx_put_le32 (e + 24, items[i].flags);
		switch (i) {
		case 0:
			vhdx_put_le32 (item, self->block_size);
			vhdx_put_le32 (item + 4, self->leave_blocks_allocated ? VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED : 0);
			break;
		case 1:
			vhdx_put_le64 (item, self->virtual_size);
			break;
		case 2:
			memcpy (item, self->disk_id, 16);
			break;
		case 3:
			vhdx_put_le32 (item, self->logical_sector_size);
			break;
		default:
			vhdx_put_le32 (item, self->physical_sector_size);
			break;
		}
		offset += items[i].length;
	}
}

static void
vhdx_build_header_section (const VmiImage *self, guint8 *s)
{
	const VhdxWriter *w = self->writer;
	g_autofree gunichar2 *creator = g_utf8_to_utf16 ("vmimaged " VMI_VERSION, -1, NULL, NULL, NULL);
	guint8 file_write_guid[16], data_write_guid[16];
	guint8 *rt = s + VHDX_REGION_TABLE1_OFFSET;

	memcpy (s, VHDX_FILE_ID_SIGNATURE, 8);
	for (guint i = 0; creator != NULL && creator[i] != 0 && i < VHDX_FILE_ID_CREATOR_SIZE / 2 - 1; i++)
		vhdx_put_le16 (s + VHDX_FILE_ID_CREATOR_OFFSET + 2 * i, creator[i]);

	vhdx_random_guid (file_write_guid);
	vhdx_random_guid (data_write_guid);
	for (guint n = 0; n < 2; n++) {
		guint8 *h = s + (n == 0 ? VHDX_HEADER1_OFFSET : VHDX_HEADER2_OFFSET);

		vhdx_put_le32 (h, VHDX_HEADER_SIGNATURE);
		/* Both valid; the second, with the larger sequence number, is current. */
		vhdx_put_le64 (h + VHDX_HDR_SEQUENCE, n + 1);
		memcpy (h + VHDX_HDR_FILE_WRITE_GUID, file_write_guid, 16);
		memcpy (h + VHDX_HDR_DATA_WRITE_GUID, data_write_guid, 16);
		vhdx_put_le16 (h + VHDX_HDR_LOG_VERSION, 0);
		vhdx_put_le16 (h + VHDX_HDR_VERSION, 1);
		vhdx_put_le32 (h + VHDX_HDR_LOG_LENGTH, self->log_length);
		vhdx_put_le64 (h + VHDX_HDR_LOG_OFFSET, self->log_offset);
		vhdx_put_le32 (h + VHDX_HDR_CHECKSUM, vhdx_crc32c (h, VHDX_HEADER_SIZE));
	}

	vhdx_put_le32 (rt, VHDX_REGION_SIGNATURE);
	vhdx_put_le32 (rt + VHDX_RT_ENTRY_COUNT, 2);
	memcpy (rt + VHDX_RT_ENTRIES, vhdx_guid_bat.b, 16);
	vhdx_put_le64 (rt + VHDX_RT_ENTRIES + 16, w->bat_offset);
	vhdx_put_le32 (rt + VHDX_RT_ENTRIES + 24, (guint32) w->bat_length);
	vhdx_put_le32 (rt + VHDX_RT_ENTRIES + 28, 1);
	memcpy (rt + VHDX_RT_ENTRIES + 32, vhdx_guid_metadata.b, 16);
	vhdx_put_le64 (rt + VHDX_RT_ENTRIES + 48, w->metadata_offset);
	vhdx_put_le32 (rt + VHDX_RT_ENTRIES + 56, VHDX_WRITER_METADATA_SIZE);
	vhdx_put_le32 (rt + VHDX_RT_ENTRIES + 60, 1);
	vhdx_put_le32 (rt + VHDX_RT_CHECKSUM, vhdx_crc32c (rt, VHDX_REGION_TABLE_SIZE));
	memcpy (s + VHDX_REGION_TABLE2_OFFSET, rt, VHDX_REGION_TABLE_SIZE);
}

gboolean
vhdx_finish (VmiImage *self, GError **error)
{
	VhdxWriter *w = self->writer;
	g_autofree guint8 *buf = NULL;

	g_return_val_if_fail (w != NULL, FALSE);
	/* Every allocated block lies wholly inside the file, the last one too. */
	if (!vhdx_set_file_size (self->fd, w->file_end, error))
		return FALSE;

	/* The rest of the BAT region stays a hole: zeros, NOT_PRESENT. */
	buf = g_malloc0 (MAX (self->bat_entries * 8, 1));
	for (guint64 i = 0; i < self->bat_entries; i++)
		vhdx_put_le64 (buf + i * 8, self->bat[i]);
	if (!vhdx_pwrite (self->fd, w->bat_offset, buf, self->bat_entries * 8, error))
		return FALSE;
	g_clear_pointer (&buf, g_free);

	buf = g_malloc0 (VHDX_WRITER_METADATA_SIZE);
	vhdx_build_metadata (self, buf);
	if (!vhdx_pwrite (self->fd, w->metadata_offset, buf, VHDX_WRITER_METADATA_SIZE, error))
		return FALSE;
	g_clear_pointer (&buf, g_free);

	/* The log region stays zeros (from the ftruncate): with a zero log GUID it is ignored. */
	buf = g_malloc0 (VHDX_HEADER_SECTION_SIZE);
	vhdx_build_header_section (self, buf);
	return vhdx_pwrite (self->fd, 0, buf, VHDX_HEADER_SECTION_SIZE, error);
}
