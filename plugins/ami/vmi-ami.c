/*
 * Machine images (the "ami" of Amazon's kernel/ramdisk/machine image triple): a raw disk. Any
 * raw disk is one, so the plugin is classify-only: asked only when the caller classifies. What
 * it adds to raw is the partition table (MBR or GPT, the GPT's CRCs checked) and the file
 * system of the first partition, or of the whole disk when there is no partition table.
 *
 * A partition that ends beyond the end of the file is reported ("beyond-end", and "truncated"
 * for the image), not refused: the disk still reads, and a person can see the image was cut.
 */
#include <string.h>
#include <zlib.h>

#include "vmi-plugin-util.h"

#define AMI_SECTOR 512u
#define AMI_MBR_ENTRIES 446u
#define AMI_GPT_HEADER_MIN 92u
/* The UEFI minimum is 128 entries of 128 bytes; tools that make more stay far below this. */
#define AMI_GPT_MAX_ARRAY (1024u * 1024u)
#define AMI_GPT_MAX_ENTRY_SIZE 4096u
/* Partitions listed in Inspect; a GPT of 128 slots may in theory use them all. */
#define AMI_MAX_REPORTED 128u
/* Enough of a partition for every signature looked for, except btrfs's. */
#define AMI_FS_HEAD 8192u
#define AMI_BTRFS_SUPER 65536u

typedef struct {
	guint64 start; /* bytes */
	guint64 size;
} AmiRange;

typedef struct {
	const char *type; /* as blkid names it, or NULL */
	char *label;
	char *uuid;
} AmiFs;

static void
ami_fs_clear (AmiFs *fs)
{
	g_clear_pointer (&fs->label, g_free);
	g_clear_pointer (&fs->uuid, g_free);
	fs->type = NULL;
}

struct _VmiImage {
	VmiFileRange file; /* the image's bytes in the daemon's fd */
	guint64 file_size;
	const char *table; /* "gpt", "mbr" or "none" */
	guint32 sector_size;
	GVariant *partitions; /* aa{sv} */
	gboolean truncated;
	gboolean have_first;
	AmiRange first; /* the first partition, or the whole disk */
	char *disk_guid;
	guint32 disk_signature;
	guint64 gpt_entries_lba;
	guint32 gpt_entry_count;
	AmiFs first_fs;
};

static guint16
ami_le16 (const guint8 *p)
{
	return (guint16) (p[0] | p[1] << 8);
}

static guint32
ami_le32 (const guint8 *p)
{
	return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

static guint64
ami_le64 (const guint8 *p)
{
	return (guint64) ami_le32 (p) | (guint64) ami_le32 (p + 4) << 32;
}

/* A FAT or NTFS boot sector also ends in 55 AA; it is a file system, not a partition table. */
static gboolean
ami_is_vbr (const guint8 *s)
{
	return memcmp (s + 82, "FAT32   ", 8) == 0 || memcmp (s + 54, "FAT12   ", 8) == 0 ||
	       memcmp (s + 54, "FAT16   ", 8) == 0 || memcmp (s + 3, "NTFS    ", 8) == 0;
}

static gboolean
ami_is_mbr (const guint8 *s, gsize len)
{
	gboolean any = FALSE;

	if (s[510] != 0x55 || s[511] != 0xaa || ami_is_vbr (s))
		return FALSE;
	/* An x86 kernel's boot sector ends in 55 AA as well. */
	if (len >= 0x206 && memcmp (s + 0x202, "HdrS", 4) == 0)
		return FALSE;
	for (guint i = 0; i < 4; i++) {
		const guint8 *e = s + AMI_MBR_ENTRIES + 16 * i;

		if (e[0] != 0x00 && e[0] != 0x80)
			return FALSE;
		any |= e[4] != 0;
	}
	return any;
}

/*
 * Only asked when classifying, and then only to beat raw: WEAK, never LIKELY, because a fixed
 * VHD or a hybrid ISO holds an MBR too, and a second sure answer would make them polyglots.
 */
static guint
ami_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	if (head_len >= 2 * AMI_SECTOR && memcmp (head + AMI_SECTOR, "EFI PART", 8) == 0)
		return VMI_PROBE_WEAK;
	if (head_len >= 4096 + 8 && memcmp (head + 4096, "EFI PART", 8) == 0)
		return VMI_PROBE_WEAK;
	if (head_len >= AMI_SECTOR && ami_is_mbr (head, head_len))
		return VMI_PROBE_WEAK;
	/* A file system on the whole disk: still a machine image, with less to say. */
	if (head_len >= AMI_SECTOR && ami_is_vbr (head))
		return VMI_PROBE_WEAK;
	if (head_len >= 1082 && head[1080] == 0x53 && head[1081] == 0xef)
		return VMI_PROBE_WEAK;
	if (head_len >= 4 && memcmp (head, "XFSB", 4) == 0)
		return VMI_PROBE_WEAK;
	return VMI_PROBE_NO;
}

static char *
ami_guid (const guint8 *p)
{
	/* The first three fields are little endian, the rest are bytes. */
	return g_strdup_printf ("%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", ami_le32 (p),
				ami_le16 (p + 4), ami_le16 (p + 6), p[8], p[9], p[10], p[11], p[12],
				p[13], p[14], p[15]);
}

static char *
ami_uuid (const guint8 *p)
{
	return g_strdup_printf ("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
				p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10],
				p[11], p[12], p[13], p[14], p[15]);
}

static const char *
ami_gpt_type_name (const char *guid)
{
	static const struct {
		const char *guid;
		const char *name;
	} types[] = {
		{ "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "efi-system" },
		{ "21686148-6449-6E6F-744E-656564454649", "bios-boot" },
		{ "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "linux-filesystem" },
		{ "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "linux-root-x86-64" },
		{ "B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "linux-root-arm64" },
		{ "BC13C2FF-59E6-4262-A352-B275FD6F7172", "linux-extended-boot" },
		{ "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "linux-swap" },
		{ "E6D6D379-F507-44C2-A23C-238F2A3DF928", "linux-lvm" },
		{ "A19D880F-05FC-4D3B-A006-743F0F84911E", "linux-raid" },
		{ "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "microsoft-basic-data" },
		{ "E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "microsoft-reserved" },
		{ "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "windows-recovery" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS (types); i++) {
		if (strcmp (guid, types[i].guid) == 0)
			return types[i].name;
	}
	return "unknown";
}

static const char *
ami_mbr_type_name (guint8 type)
{
	switch (type) {
	case 0x01:
	case 0x04:
	case 0x06:
	case 0x0e:
		return "fat16";
	case 0x0b:
	case 0x0c:
		return "fat32";
	case 0x05:
	case 0x0f:
	case 0x85:
		return "extended";
	case 0x07:
		return "ntfs-exfat";
	case 0x82:
		return "linux-swap";
	case 0x83:
		return "linux";
	case 0x8e:
		return "linux-lvm";
	case 0xfd:
		return "linux-raid";
	case 0xee:
		return "gpt-protective";
	case 0xef:
		return "efi-system";
	default:
		return "unknown";
	}
}

/* A partition's extent in bytes, flagging one that the file does not hold. */
static gboolean
ami_range (VmiImage *self, guint64 first_lba, guint64 sectors, AmiRange *range,
	   gboolean *beyond_end)
{
	if (!g_uint64_checked_mul (&range->start, first_lba, self->sector_size) ||
	    !g_uint64_checked_mul (&range->size, sectors, self->sector_size) ||
	    range->start + range->size < range->start) {
		*beyond_end = TRUE;
		self->truncated = TRUE;
		return FALSE;
	}
	*beyond_end = range->start + range->size > self->file_size;
	self->truncated |= *beyond_end;
	return TRUE;
}

static gboolean
ami_detect_fs (VmiImage *self, const AmiRange *range, AmiFs *fs, GError **error)
{
	guint8 buf[AMI_FS_HEAD] = { 0 };
	guint64 avail = MIN (range->size, self->file_size - range->start);
	gsize len = (gsize) MIN ((guint64) sizeof buf, avail);

	if (!vmi_range_pread_all (&self->file, buf, len, range->start, "disk", error))
		return FALSE;
	if (len >= 1024 + 264 && ami_le16 (buf + 1024 + 56) == 0xef53) {
		const guint8 *sb = buf + 1024;
		guint32 compat = ami_le32 (sb + 92), incompat = ami_le32 (sb + 96);
		guint32 ro_compat = ami_le32 (sb + 100);

		/* As blkid names them: a feature beyond ext3's (sparse_super, large_file,
		 * btree_dir; filetype, recover, meta_bg) makes it ext4, else the journal
		 * makes it ext3. */
		if ((ro_compat & ~0x7u) != 0 || (incompat & ~0x16u) != 0)
			fs->type = "ext4";
		else
			fs->type = (compat & 0x4) ? "ext3" : "ext2";
		fs->label = g_strndup ((const char *) sb + 120, 16);
		fs->uuid = ami_uuid (sb + 104);
	} else if (len >= 120 && memcmp (buf, "XFSB", 4) == 0) {
		fs->type = "xfs";
		fs->label = g_strndup ((const char *) buf + 108, 12);
		fs->uuid = ami_uuid (buf + 32);
	} else if (len >= 512 && memcmp (buf + 82, "FAT32   ", 8) == 0) {
		fs->type = "vfat";
		fs->label = g_strndup ((const char *) buf + 71, 11);
		fs->uuid = g_strdup_printf ("%04X-%04X", ami_le16 (buf + 69), ami_le16 (buf + 67));
	} else if (len >= 512 && (memcmp (buf + 54, "FAT12   ", 8) == 0 ||
				  memcmp (buf + 54, "FAT16   ", 8) == 0)) {
		fs->type = "vfat";
		fs->label = g_strndup ((const char *) buf + 43, 11);
		fs->uuid = g_strdup_printf ("%04X-%04X", ami_le16 (buf + 41), ami_le16 (buf + 39));
	} else if (len >= 512 && memcmp (buf + 3, "NTFS    ", 8) == 0) {
		fs->type = "ntfs";
		fs->uuid = g_strdup_printf ("%016" G_GINT64_MODIFIER "X", ami_le64 (buf + 0x48));
	} else if (len >= 4096 && (memcmp (buf + 4086, "SWAPSPACE2", 10) == 0 ||
				   memcmp (buf + 4086, "SWAP-SPACE", 10) == 0)) {
		fs->type = "swap";
		fs->label = g_strndup ((const char *) buf + 1024 + 28, 16);
		fs->uuid = ami_uuid (buf + 1024 + 12);
	} else if (len >= 6 && memcmp (buf, "LUKS\xba\xbe", 6) == 0) {
		fs->type = "crypto_LUKS";
	} else if (len >= 1024 && memcmp (buf + 512, "LABELONE", 8) == 0 &&
		   memcmp (buf + 512 + 24, "LVM2 001", 8) == 0) {
		fs->type = "LVM2_member";
	} else if (avail >= AMI_BTRFS_SUPER + 4096) {
		guint8 sb[4096];

		if (!vmi_range_pread_all (&self->file, sb, sizeof sb, range->start + AMI_BTRFS_SUPER, "disk",
				    error))
			return FALSE;
		if (memcmp (sb + 64, "_BHRfS_M", 8) == 0) {
			fs->type = "btrfs";
			fs->label = g_strndup ((const char *) sb + 299, 256);
			fs->uuid = ami_uuid (sb + 32);
		}
	}
	/* Labels are NUL padded (FAT: space padded) and may hold anything. */
	if (fs->label != NULL) {
		for (char *c = fs->label; *c != '\0'; c++) {
			if (!g_ascii_isprint (*c))
				*c = '?';
		}
		g_strchomp (fs->label);
		if (fs->label[0] == '\0' || strcmp (fs->label, "NO NAME") == 0)
			g_clear_pointer (&fs->label, g_free);
	}
	return TRUE;
}

static void
ami_fs_insert (GVariantDict *dict, const AmiFs *fs)
{
	if (fs->type == NULL)
		return;
	g_variant_dict_insert (dict, "filesystem", "s", fs->type);
	if (fs->label != NULL)
		g_variant_dict_insert (dict, "filesystem-label", "s", fs->label);
	if (fs->uuid != NULL)
		g_variant_dict_insert (dict, "filesystem-uuid", "s", fs->uuid);
}

/* The file system of one partition the file holds the start of, into its entry. */
static gboolean
ami_partition_fs (VmiImage *self, GVariantDict *dict, const AmiRange *range, GError **error)
{
	AmiFs fs = { 0 };

	if (range->size == 0 || range->start >= self->file_size)
		return TRUE;
	if (!ami_detect_fs (self, range, &fs, error))
		return FALSE;
	ami_fs_insert (dict, &fs);
	ami_fs_clear (&fs);
	return TRUE;
}

static void
ami_note_first (VmiImage *self, const AmiRange *range, gboolean beyond_end)
{
	if (self->have_first || range->start >= self->file_size)
		return;
	self->first = *range;
	self->have_first = TRUE;
}

static gboolean
ami_is_extended (guint8 type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

/* One MBR or EBR entry; base_lba is where its start counts from (0, or its EBR). */
static gboolean
ami_add_mbr_entry (VmiImage *self, GVariantBuilder *parts, const guint8 *e, guint index,
		   guint64 base_lba, GError **error)
{
	g_autofree char *type = g_strdup_printf ("0x%02x", e[4]);
	GVariantDict dict;
	AmiRange range = { 0 };
	gboolean beyond_end = FALSE, ok;

	ok = ami_range (self, base_lba + ami_le32 (e + 8), ami_le32 (e + 12), &range, &beyond_end);
	g_variant_dict_init (&dict, NULL);
	g_variant_dict_insert (&dict, "index", "u", index);
	g_variant_dict_insert (&dict, "type", "s", type);
	g_variant_dict_insert (&dict, "type-name", "s", ami_mbr_type_name (e[4]));
	g_variant_dict_insert (&dict, "bootable", "b", e[0] == 0x80);
	g_variant_dict_insert (&dict, "start", "t", range.start);
	g_variant_dict_insert (&dict, "size", "t", range.size);
	g_variant_dict_insert (&dict, "beyond-end", "b", beyond_end);
	if (ok && !ami_is_extended (e[4]) && !ami_partition_fs (self, &dict, &range, error)) {
		g_variant_dict_clear (&dict);
		return FALSE;
	}
	g_variant_builder_add_value (parts, g_variant_dict_end (&dict));
	if (ok && !ami_is_extended (e[4]) && range.size > 0)
		ami_note_first (self, &range, beyond_end);
	return TRUE;
}

/*
 * Logical partitions: a chain of EBRs inside the extended partition, each holding one
 * partition (relative to itself) and a link to the next (relative to the extended partition).
 * Numbered from 5 as Linux does. The chain must move forward and stays within
 * AMI_MAX_REPORTED; an EBR the file does not hold ends it.
 */
static gboolean
ami_parse_ebr_chain (VmiImage *self, GVariantBuilder *parts, guint64 extended_lba,
		     GError **error)
{
	guint64 ebr_lba = extended_lba;

	for (guint index = 5; index < 5 + AMI_MAX_REPORTED; index++) {
		guint8 ebr[AMI_SECTOR];
		const guint8 *next;
		guint64 next_lba;

		if (ebr_lba > (self->file_size - AMI_SECTOR) / AMI_SECTOR ||
		    self->file_size < AMI_SECTOR)
			return TRUE;
		if (!vmi_range_pread_all (&self->file, ebr, sizeof ebr, ebr_lba * AMI_SECTOR, "disk", error))
			return FALSE;
		if (ebr[510] != 0x55 || ebr[511] != 0xaa)
			return TRUE;
		if (ebr[AMI_MBR_ENTRIES + 4] != 0 &&
		    !ami_add_mbr_entry (self, parts, ebr + AMI_MBR_ENTRIES, index, ebr_lba, error))
			return FALSE;
		next = ebr + AMI_MBR_ENTRIES + 16;
		if (!ami_is_extended (next[4]))
			return TRUE;
		next_lba = extended_lba + ami_le32 (next + 8);
		if (next_lba <= ebr_lba)
			return TRUE;
		ebr_lba = next_lba;
	}
	return TRUE;
}

static gboolean
ami_parse_mbr (VmiImage *self, const guint8 *s, GError **error)
{
	GVariantBuilder parts;
	guint64 extended_lba = 0;

	self->table = "mbr";
	self->disk_signature = ami_le32 (s + 440);
	g_variant_builder_init (&parts, G_VARIANT_TYPE ("aa{sv}"));
	for (guint i = 0; i < 4; i++) {
		const guint8 *e = s + AMI_MBR_ENTRIES + 16 * i;

		if (e[4] == 0)
			continue;
		if (!ami_add_mbr_entry (self, &parts, e, i + 1, 0, error)) {
			g_variant_builder_clear (&parts);
			return FALSE;
		}
		if (ami_is_extended (e[4]) && extended_lba == 0)
			extended_lba = ami_le32 (e + 8);
	}
	if (extended_lba != 0 && !ami_parse_ebr_chain (self, &parts, extended_lba, error)) {
		g_variant_builder_clear (&parts);
		return FALSE;
	}
	self->partitions = g_variant_ref_sink (g_variant_builder_end (&parts));
	return TRUE;
}

static gboolean
ami_gpt_error (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
ami_gpt_error (GError **error, const char *format, ...)
{
	va_list args;
	g_autofree char *message = NULL;

	va_start (args, format);
	message = g_strdup_vprintf (format, args);
	va_end (args);
	g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE, "the GPT header: %s", message);
	return FALSE;
}

static gboolean
ami_parse_gpt_entries (VmiImage *self, const guint8 *array, guint32 count, guint32 entry_size,
		       GError **error)
{
	GVariantBuilder parts;
	guint reported = 0;

	g_variant_builder_init (&parts, G_VARIANT_TYPE ("aa{sv}"));
	for (guint32 i = 0; i < count && reported < AMI_MAX_REPORTED; i++) {
		const guint8 *e = array + (gsize) i * entry_size;
		static const guint8 unused[16] = { 0 };
		guint64 first_lba = ami_le64 (e + 32), last_lba = ami_le64 (e + 40);
		g_autofree char *type = NULL, *guid = NULL, *name = NULL;
		gunichar2 name16[36];
		GVariantDict dict;
		AmiRange range = { 0 };
		gboolean beyond_end = FALSE, ok = FALSE;
		gsize name_len = 0;

		if (memcmp (e, unused, 16) == 0)
			continue;
		type = ami_guid (e);
		guid = ami_guid (e + 16);
		while (name_len < G_N_ELEMENTS (name16) && ami_le16 (e + 56 + 2 * name_len) != 0) {
			name16[name_len] = ami_le16 (e + 56 + 2 * name_len);
			name_len++;
		}
		name = g_utf16_to_utf8 (name16, (glong) name_len, NULL, NULL, NULL);
		if (last_lba >= first_lba)
			ok = ami_range (self, first_lba, last_lba - first_lba + 1, &range, &beyond_end);
		g_variant_dict_init (&dict, NULL);
		g_variant_dict_insert (&dict, "index", "u", i + 1);
		g_variant_dict_insert (&dict, "type-guid", "s", type);
		g_variant_dict_insert (&dict, "type-name", "s", ami_gpt_type_name (type));
		g_variant_dict_insert (&dict, "guid", "s", guid);
		g_variant_dict_insert (&dict, "name", "s", name != NULL ? name : "");
		g_variant_dict_insert (&dict, "start", "t", range.start);
		g_variant_dict_insert (&dict, "size", "t", range.size);
		g_variant_dict_insert (&dict, "attributes", "t", ami_le64 (e + 48));
		g_variant_dict_insert (&dict, "beyond-end", "b", beyond_end);
		if (ok && !ami_partition_fs (self, &dict, &range, error)) {
			g_variant_dict_clear (&dict);
			g_variant_builder_clear (&parts);
			return FALSE;
		}
		/* last < first: an empty or inverted entry, shown with size 0. */
		g_variant_builder_add_value (&parts, g_variant_dict_end (&dict));
		reported++;
		if (ok)
			ami_note_first (self, &range, beyond_end);
	}
	self->partitions = g_variant_ref_sink (g_variant_builder_end (&parts));
	return TRUE;
}

static gboolean
ami_parse_gpt (VmiImage *self, guint64 header_offset, GError **error)
{
	g_autofree guint8 *header = g_malloc (self->sector_size);
	g_autofree guint8 *array = NULL;
	guint32 header_size, crc, entry_size, count, entries_crc;
	guint64 array_offset;
	gsize array_size;

	if (!vmi_range_pread_all (&self->file, header, self->sector_size, header_offset, "disk", error))
		return FALSE;
	header_size = ami_le32 (header + 12);
	if (header_size < AMI_GPT_HEADER_MIN || header_size > self->sector_size)
		return ami_gpt_error (error, "its size is %u bytes; it must be %u to %u", header_size,
				      AMI_GPT_HEADER_MIN, self->sector_size);
	crc = ami_le32 (header + 16);
	memset (header + 16, 0, 4);
	if ((guint32) crc32 (0, header, header_size) != crc)
		return ami_gpt_error (error,
				      "its CRC32 0x%08x (at offset %" G_GUINT64_FORMAT
				      ") does not match its content (0x%08lx): the header is damaged",
				      crc, header_offset + 16, crc32 (0, header, header_size));
	self->table = "gpt";
	self->disk_guid = ami_guid (header + 56);
	self->gpt_entries_lba = ami_le64 (header + 72);
	count = ami_le32 (header + 80);
	entry_size = ami_le32 (header + 84);
	entries_crc = ami_le32 (header + 88);
	self->gpt_entry_count = count;
	/* UEFI: 128 times a power of two. */
	if (entry_size < 128 || entry_size > AMI_GPT_MAX_ENTRY_SIZE || (entry_size & (entry_size - 1)))
		return ami_gpt_error (error, "it gives partition entries of %u bytes; they are 128 "
				      "times a power of two, up to %u",
				      entry_size, AMI_GPT_MAX_ENTRY_SIZE);
	if (count == 0 || (guint64) count * entry_size > AMI_GPT_MAX_ARRAY)
		return ami_gpt_error (error, "it declares %u partition entries of %u bytes; a table "
				      "of 1 to %u bytes is accepted",
				      count, entry_size, AMI_GPT_MAX_ARRAY);
	array_size = (gsize) count * entry_size;
	if (!g_uint64_checked_mul (&array_offset, self->gpt_entries_lba, self->sector_size) ||
	    array_offset > self->file_size || array_size > self->file_size - array_offset)
		return ami_gpt_error (error,
				      "its partition entries at LBA %" G_GUINT64_FORMAT
				      " (%" G_GSIZE_FORMAT " bytes) lie beyond the end of the %" G_GUINT64_FORMAT
				      "-byte file",
				      self->gpt_entries_lba, array_size, self->file_size);
	array = g_malloc (array_size);
	if (!vmi_range_pread_all (&self->file, array, array_size, array_offset, "disk", error))
		return FALSE;
	if ((guint32) crc32 (0, array, (uInt) array_size) != entries_crc)
		return ami_gpt_error (error, "the CRC32 of its %u partition entries (0x%08x) does not "
				      "match their content: the partition array is damaged",
				      count, entries_crc);
	return ami_parse_gpt_entries (self, array, count, entry_size, error);
}

/* The file system at range->start, by the signatures blkid looks for first. */
static void
ami_free (VmiImage *self)
{
	g_clear_pointer (&self->partitions, g_variant_unref);
	g_free (self->disk_guid);
	ami_fs_clear (&self->first_fs);
	g_free (self);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiImage, ami_free)

static VmiImage *
ami_open (const VmiOpenArgs *args, GError **error)
{
	g_autoptr(VmiImage) self = g_new0 (VmiImage, 1);
	guint8 head[4096 + 8] = { 0 };
	gsize len;

	if (!vmi_file_range_init (&self->file, args, error))
		return NULL;
	self->file_size = args->file_size;
	self->sector_size = AMI_SECTOR;
	self->table = "none";
	/* As raw refuses it: a 0-byte "disk" is a failed download or copy. */
	if (self->file_size == 0) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the file is empty: a machine image holds at least a disk's "
				     "first sector");
		return NULL;
	}
	len = (gsize) MIN (self->file_size, (guint64) sizeof head);
	if (!vmi_range_pread_all (&self->file, head, len, 0, "disk", error))
		return NULL;
	if (len >= 2 * AMI_SECTOR && memcmp (head + AMI_SECTOR, "EFI PART", 8) == 0) {
		if (!ami_parse_gpt (self, AMI_SECTOR, error))
			return NULL;
	} else if (len >= 4096 + 8 && memcmp (head + 4096, "EFI PART", 8) == 0) {
		self->sector_size = 4096;
		if (!ami_parse_gpt (self, 4096, error))
			return NULL;
	} else if (len >= AMI_SECTOR && ami_is_mbr (head, len)) {
		if (!ami_parse_mbr (self, head, error))
			return NULL;
	}
	if (strcmp (self->table, "none") == 0 && self->file_size > 0) {
		self->first.start = 0;
		self->first.size = self->file_size;
		self->have_first = TRUE;
	}
	if (self->have_first && !ami_detect_fs (self, &self->first, &self->first_fs, error))
		return NULL;
	return g_steal_pointer (&self);
}

static gboolean
ami_get_info (VmiImage *self, VmiImageInfo *info, GError **error)
{
	GVariantDict *facts = info->format_specific;

	info->virtual_size = self->file_size;
	/* Glance names the container of a kernel, ramdisk or machine image like the image */
	info->container_format = "ami";
	info->subformat = self->table;
	g_variant_dict_insert (facts, "partition-table", "s", self->table);
	if (strcmp (self->table, "mbr") == 0)
		g_variant_dict_insert (facts, "disk-signature", "u", self->disk_signature);
	if (self->disk_guid != NULL) {
		g_variant_dict_insert (facts, "disk-guid", "s", self->disk_guid);
		g_variant_dict_insert (facts, "sector-size", "u", self->sector_size);
		g_variant_dict_insert (facts, "gpt-entry-slots", "u", self->gpt_entry_count);
	}
	if (self->partitions != NULL)
		g_variant_dict_insert_value (facts, "partitions", self->partitions);
	g_variant_dict_insert (facts, "truncated", "b", self->truncated);
	if (self->first_fs.type != NULL) {
		ami_fs_insert (facts, &self->first_fs);
		g_variant_dict_insert (facts, "filesystem-offset", "t", self->first.start);
	}
	return TRUE;
}

static gboolean
ami_read (VmiImage *self, guint64 offset, void *buf, gsize len, GError **error)
{
	return vmi_range_pread_all (&self->file, buf, len, offset, "disk", error);
}

static gboolean
ami_block_status (VmiImage *self, guint64 offset, guint64 max_length, VmiExtent *extent,
		  GError **error)
{
	return vmi_range_block_status (&self->file, offset, max_length, extent, error);
}

static void
ami_close (VmiImage *self)
{
	ami_free (self);
}

const VmiFormatPlugin vmi_ami_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "ami",
	.description = "Machine image: a raw disk with its partition table and file systems "
		       "(Amazon machine image)",
	.extensions = (const char *const[]){ "ami", NULL },
	.aliases = (const char *const[]){ "machine-image", NULL },
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ | VMI_FORMAT_CLASSIFY_ONLY,
	.probe = ami_probe,
	.open = ami_open,
	.get_info = ami_get_info,
	.read = ami_read,
	.block_status = ami_block_status,
	.close = ami_close,
};

VMI_PLUGIN_DEFINE (vmi_ami_plugin)
