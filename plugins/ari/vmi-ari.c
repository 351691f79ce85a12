/*
 * Ramdisks (the "ari" of Amazon's kernel/ramdisk/machine image triple): an initramfs as Linux
 * unpacks it (Documentation/driver-api/early-userspace/buffer-format.rst): newc cpio archives,
 * each plain or compressed, one after the other with zero padding between. Debian's and Fedora's
 * start with a plain cpio of early microcode (kernel/x86/microcode/GenuineIntel.bin, AuthenticAMD.bin) followed by the
 * compressed main archive.
 *
 * The plugin is classify-only: a gzip or zstd file is a ramdisk only if its content is a cpio
 * archive, which probe cannot see, and a plain cpio is a raw file to qemu. Open confirms the
 * cpio and refuses anything else with VMI_ERROR_UNKNOWN_FORMAT. It reads as a raw disk.
 *
 * The scan is bounded: at most ARI_SCAN_LIMIT decompressed bytes and ARI_MAX_ENTRIES entries,
 * after which Inspect says "truncated-scan". A compressed segment is read to the end of the
 * file (its compressed length is not known without decoding it), so a segment after a
 * compressed one is not looked at.
 */
#include <string.h>

#include "boot-common/vmi-boot-compress.h"
#include "vmi-ari-probe.h"
#include "vmi-plugin-util.h"

#define ARI_SCAN_LIMIT (64u * 1024u * 1024u)
#define ARI_MAX_ENTRIES 100000u
/* Linux's PATH_MAX; the kernel's unpacker refuses longer names too. */
#define ARI_MAX_NAME 4096u
#define ARI_MAX_SEGMENTS 16u
/* Zero padding between plain segments (dracut and initramfs-tools pad to 512 bytes). */
#define ARI_MAX_PADDING (1024u * 1024u)
#define ARI_COPY_CHUNK (64u * 1024u)

typedef struct {
	guint64 offset;
	guint64 length; /* in the file; for a compressed segment, to the end of the file */
	VmiBootCompression compression;
	guint entries;
	guint64 data_size;	  /* file data of its entries */
	guint64 decompressed_size; /* bytes of cpio examined */
} AriSegment;

struct _VmiImage {
	VmiFileRange file; /* the image's bytes in the daemon's fd */
	guint64 file_size;
	GCancellable *cancellable;
	AriSegment segments[ARI_MAX_SEGMENTS];
	guint n_segments;
	guint entries;
	guint64 examined;
	guint64 trailing_bytes;
	gboolean truncated_scan;
	gboolean has_init;
	gboolean intel_microcode;
	gboolean amd_microcode;
	gboolean dracut_early_cpio;
};

/* A plain segment read with pread, or a compressed one through the decoder. */
typedef struct {
	const VmiFileRange *file;
	guint64 pos;
	guint64 end;
	VmiBootDecoder *decoder;
	guint64 consumed; /* bytes of cpio stream read, for the 4-byte alignment */
	guint8 scratch[ARI_COPY_CHUNK];
} AriStream;

static gboolean
ari_stream_read (AriStream *s, void *buf, gsize len, gsize *got, GError **error)
{
	if (s->decoder != NULL) {
		if (!vmi_boot_decoder_read_full (s->decoder, buf, len, got, error))
			return FALSE;
	} else {
		*got = (gsize) MIN ((guint64) len, s->end - s->pos);
		if (!vmi_range_pread_all (s->file, buf, *got, s->pos, "ramdisk", error))
			return FALSE;
		s->pos += *got;
	}
	s->consumed += *got;
	return TRUE;
}

/* Skips len bytes; *got < len means the stream ended first. */
static gboolean
ari_stream_skip (AriStream *s, guint64 len, guint64 *got, GError **error)
{
	if (s->decoder == NULL) {
		*got = MIN (len, s->end - s->pos);
		s->pos += *got;
		s->consumed += *got;
		return TRUE;
	}
	*got = 0;
	while (*got < len) {
		gsize n;

		if (!ari_stream_read (s, s->scratch, (gsize) MIN (len - *got, (guint64) ARI_COPY_CHUNK),
				      &n, error))
			return FALSE;
		if (n == 0)
			break;
		*got += n;
	}
	return TRUE;
}

static gboolean
ari_hex_field (const guint8 *p, guint32 *value)
{
	guint32 v = 0;

	for (guint i = 0; i < 8; i++) {
		int digit = g_ascii_xdigit_value ((char) p[i]);

		if (digit < 0)
			return FALSE;
		v = v << 4 | (guint32) digit;
	}
	*value = v;
	return TRUE;
}

static void
ari_note_name (VmiImage *self, const char *name)
{
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	while (name[0] == '/')
		name++;
	if (strcmp (name, "init") == 0)
		self->has_init = TRUE;
	else if (strcmp (name, "kernel/x86/microcode/GenuineIntel.bin") == 0)
		self->intel_microcode = TRUE;
	else if (strcmp (name, "kernel/x86/microcode/AuthenticAMD.bin") == 0)
		self->amd_microcode = TRUE;
	else if (strcmp (name, "early_cpio") == 0)
		self->dracut_early_cpio = TRUE;
}

/* Where the stream stands, for messages: the file offset, or the decompressed one. */
static char *
ari_where (AriSegment *segment, AriStream *s)
{
	if (s->decoder != NULL)
		return g_strdup_printf ("offset %" G_GUINT64_FORMAT " of the %s stream at offset %" G_GUINT64_FORMAT,
					s->consumed, vmi_boot_compression_name (segment->compression),
					segment->offset);
	return g_strdup_printf ("offset %" G_GUINT64_FORMAT, s->pos);
}

static gboolean
ari_stream_limited (AriStream *s)
{
	return s->decoder != NULL && vmi_boot_decoder_hit_limit (s->decoder);
}

/*
 * One entry. *end is TRUE after a plain segment's trailer and at the end of the stream; a
 * compressed stream may hold several archives, so its trailers do not end it.
 */
static gboolean
ari_scan_entry (VmiImage *self, AriSegment *segment, AriStream *s, gboolean must_be_cpio,
		gboolean *end, GError **error)
{
	guint8 header[ARI_HEADER_SIZE];
	guint32 filesize, namesize;
	char name[ARI_MAX_NAME + 4];
	gsize got;
	guint64 skip, skipped, name_pad;

	*end = FALSE;
	/* Zero words between archives, as the kernel skips them. */
	for (;;) {
		g_autofree char *where = NULL;

		if (!ari_stream_read (s, header, 4, &got, error))
			return FALSE;
		if (got == 0 || ari_stream_limited (s)) {
			self->truncated_scan |= ari_stream_limited (s);
			*end = TRUE;
			return TRUE;
		}
		/* No real ramdisk starts with padding; a compressed disk full of zeros would. */
		if (got == 4 && memcmp (header, "\0\0\0\0", 4) == 0 && must_be_cpio)
			continue;
		if (got == 4 && s->consumed % 4 == 0)
			break;
		where = ari_where (segment, s);
		g_set_error (error, VMI_ERROR,
			     must_be_cpio ? VMI_ERROR_CORRUPT_IMAGE : VMI_ERROR_UNKNOWN_FORMAT,
			     "the data ends in %" G_GSIZE_FORMAT " stray bytes at %s, too few for a "
			     "cpio header",
			     got, where);
		return FALSE;
	}
	if (memcmp (header, "0707", 4) != 0)
		got = 0; /* not a header: reported below without reading on */
	else if (!ari_stream_read (s, header + 4, sizeof header - 4, &got, error))
		return FALSE;
	if (got == 0 || !vmi_ari_is_newc (header)) {
		g_autofree char *where = ari_where (segment, s);

		g_set_error (error, VMI_ERROR,
			     must_be_cpio ? VMI_ERROR_CORRUPT_IMAGE : VMI_ERROR_UNKNOWN_FORMAT,
			     "%s: no newc cpio header (\"070701\" or \"070702\") before %s",
			     must_be_cpio ? "the ramdisk is damaged"
					  : "the decompressed data is not a cpio archive, so this "
					    "is not a ramdisk (a compressed kernel is inspected as aki)",
			     where);
		return FALSE;
	}
	if (got < sizeof header - 4) {
		g_autofree char *where = ari_where (segment, s);

		if (ari_stream_limited (s)) {
			self->truncated_scan = TRUE;
			*end = TRUE;
			return TRUE;
		}
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "a cpio header is cut short by the end of the data at %s", where);
		return FALSE;
	}
	if (!ari_hex_field (header + 54, &filesize) || !ari_hex_field (header + 94, &namesize)) {
		g_autofree char *where = ari_where (segment, s);

		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the cpio header ending at %s has a size field that is not 8 hex digits",
			     where);
		return FALSE;
	}
	if (namesize == 0 || namesize > ARI_MAX_NAME) {
		g_autofree char *where = ari_where (segment, s);

		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the cpio header ending at %s gives a name of %u bytes; names are 1 to "
			     "%u bytes",
			     where, namesize, ARI_MAX_NAME);
		return FALSE;
	}
	/* Header and name together are padded to 4 bytes. */
	name_pad = (4 - (ARI_HEADER_SIZE + namesize) % 4) % 4;
	if (!ari_stream_read (s, name, namesize + (gsize) name_pad, &got, error))
		return FALSE;
	if (got < namesize + name_pad) {
		g_autofree char *where = ari_where (segment, s);

		if (ari_stream_limited (s)) {
			self->truncated_scan = TRUE;
			*end = TRUE;
			return TRUE;
		}
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "a cpio entry's name is cut short by the end of the data at %s", where);
		return FALSE;
	}
	name[namesize - 1] = '\0';
	if (strcmp (name, "TRAILER!!!") == 0) {
		*end = s->decoder == NULL;
		return TRUE;
	}
	segment->entries++;
	self->entries++;
	segment->data_size += filesize;
	ari_note_name (self, name);
	skip = (guint64) filesize + (4 - filesize % 4) % 4;
	if (!ari_stream_skip (s, skip, &skipped, error))
		return FALSE;
	if (skipped < skip) {
		g_autofree char *where = ari_where (segment, s);

		if (ari_stream_limited (s)) {
			self->truncated_scan = TRUE;
			*end = TRUE;
			return TRUE;
		}
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the cpio entry \"%s\" holds %u bytes but the data ends at %s", name,
			     filesize, where);
		return FALSE;
	}
	return TRUE;
}

static gboolean
ari_scan_segment (VmiImage *self, AriSegment *segment, AriStream *s, GError **error)
{
	gboolean end = FALSE;

	while (!end) {
		if (self->entries >= ARI_MAX_ENTRIES) {
			self->truncated_scan = TRUE;
			break;
		}
		if (g_cancellable_is_cancelled (self->cancellable)) {
			g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED,
					     "reading the ramdisk was cancelled");
			return FALSE;
		}
		/* The first entry of a compressed segment decides whether this is a ramdisk. */
		if (!ari_scan_entry (self, segment, s, !(self->n_segments == 1 && s->consumed == 0),
				     &end, error))
			return FALSE;
	}
	segment->decompressed_size = s->consumed;
	if (s->decoder == NULL) {
		segment->length = s->pos - segment->offset;
	} else {
		segment->length = self->file_size - segment->offset;
		self->examined += s->consumed;
	}
	return TRUE;
}

/* Zero padding after a plain segment; *offset moves to the next non-zero 4-byte word. */
static gboolean
ari_skip_padding (VmiImage *self, guint64 *offset, GError **error)
{
	guint8 buf[4096];
	guint64 limit = MIN (self->file_size, *offset + ARI_MAX_PADDING);

	while (*offset + 4 <= limit) {
		gsize len = (gsize) MIN ((guint64) sizeof buf, limit - *offset);
		gsize i = 0;

		if (!vmi_range_pread_all (&self->file, buf, len, *offset, "ramdisk", error))
			return FALSE;
		while (i + 4 <= len && memcmp (buf + i, "\0\0\0\0", 4) == 0)
			i += 4;
		*offset += i;
		if (i + 4 <= len || i == 0)
			break;
	}
	return TRUE;
}

static gboolean
ari_scan (VmiImage *self, GError **error)
{
	guint64 offset = 0;

	while (offset < self->file_size && self->n_segments < ARI_MAX_SEGMENTS &&
	       !self->truncated_scan) {
		AriSegment *segment = &self->segments[self->n_segments];
		g_autofree AriStream *s = g_new0 (AriStream, 1);
		g_autoptr(VmiBootDecoder) decoder = NULL;
		guint8 magic[16] = { 0 };
		gsize len = (gsize) MIN ((guint64) sizeof magic, self->file_size - offset);

		if (!vmi_range_pread_all (&self->file, magic, len, offset, "ramdisk", error))
			return FALSE;
		segment->offset = offset;
		segment->compression = vmi_boot_compression_detect (magic, len);
		if (segment->compression == VMI_BOOT_COMPRESSION_NONE && !vmi_ari_is_newc (magic)) {
			if (self->n_segments == 0) {
				g_set_error_literal (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
						     "not a ramdisk: the file starts with neither a "
						     "newc cpio header nor a known compression");
				return FALSE;
			}
			/* Not something the kernel unpacks: left as a fact, not an error. */
			self->trailing_bytes = self->file_size - offset;
			break;
		}
		self->n_segments++;
		s->file = &self->file;
		s->pos = offset;
		s->end = self->file_size;
		if (segment->compression != VMI_BOOT_COMPRESSION_NONE) {
			decoder = vmi_boot_decoder_new (&self->file, offset, self->file_size,
							segment->compression,
							ARI_SCAN_LIMIT - self->examined,
							self->cancellable, error);
			if (decoder == NULL)
				return FALSE;
			s->decoder = decoder;
		}
		if (!ari_scan_segment (self, segment, s, error))
			return FALSE;
		if (decoder != NULL)
			break;
		offset = s->pos;
		if (!ari_skip_padding (self, &offset, error))
			return FALSE;
	}
	return TRUE;
}

static VmiImage *
ari_open (const VmiOpenArgs *args, GError **error)
{
	g_autofree VmiImage *self = g_new0 (VmiImage, 1);
	gboolean ok;

	if (!vmi_file_range_init (&self->file, args, error))
		return NULL;
	self->file_size = args->file_size;
	self->cancellable = args->cancellable;
	if (self->file_size == 0) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
				     "an empty file is not a ramdisk");
		return NULL;
	}
	ok = ari_scan (self, error);
	self->cancellable = NULL;
	if (!ok)
		return NULL;
	return g_steal_pointer (&self);
}

static gboolean
ari_get_info (VmiImage *self, VmiImageInfo *info, GError **error)
{
	GVariantDict *facts = info->format_specific;
	const AriSegment *main_segment = &self->segments[self->n_segments - 1];
	GVariantBuilder segments, microcode;
	guint64 total = 0;

	info->virtual_size = self->file_size;
	/* Glance names the container of a kernel, ramdisk or machine image like the image */
	info->container_format = "ari";
	info->subformat = main_segment->compression == VMI_BOOT_COMPRESSION_NONE
				  ? "cpio"
				  : vmi_boot_compression_name (main_segment->compression);
	g_variant_builder_init (&segments, G_VARIANT_TYPE ("aa{sv}"));
	for (guint i = 0; i < self->n_segments; i++) {
		const AriSegment *segment = &self->segments[i];
		GVariantDict dict;

		g_variant_dict_init (&dict, NULL);
		g_variant_dict_insert (&dict, "offset", "t", segment->offset);
		g_variant_dict_insert (&dict, "length", "t", segment->length);
		g_variant_dict_insert (&dict, "compression", "s",
				       vmi_boot_compression_name (segment->compression));
		g_variant_dict_insert (&dict, "entries", "u", segment->entries);
		g_variant_dict_insert (&dict, "data-size", "t", segment->data_size);
		g_variant_dict_insert (&dict, "cpio-size", "t", segment->decompressed_size);
		g_variant_builder_add_value (&segments, g_variant_dict_end (&dict));
		total += segment->data_size;
	}
	g_variant_builder_init (&microcode, G_VARIANT_TYPE_STRING_ARRAY);
	if (self->intel_microcode)
		g_variant_builder_add (&microcode, "s", "GenuineIntel");
	if (self->amd_microcode)
		g_variant_builder_add (&microcode, "s", "AuthenticAMD");
	g_variant_dict_insert (facts, "compression", "s",
			       vmi_boot_compression_name (main_segment->compression));
	g_variant_dict_insert (facts, "segments", "aa{sv}", &segments);
	g_variant_dict_insert (facts, "entries", "u", self->entries);
	g_variant_dict_insert (facts, "total-size", "t", total);
	g_variant_dict_insert (facts, "decompressed-size", "t", self->examined);
	g_variant_dict_insert (facts, "truncated-scan", "b", self->truncated_scan);
	g_variant_dict_insert (facts, "has-init", "b", self->has_init);
	g_variant_dict_insert (facts, "early-microcode", "as", &microcode);
	if (self->dracut_early_cpio)
		g_variant_dict_insert (facts, "dracut-early-cpio", "b", TRUE);
	if (self->trailing_bytes > 0)
		g_variant_dict_insert (facts, "trailing-bytes", "t", self->trailing_bytes);
	return TRUE;
}

static gboolean
ari_read (VmiImage *self, guint64 offset, void *buf, gsize len, GError **error)
{
	return vmi_range_pread_all (&self->file, buf, len, offset, "ramdisk", error);
}

static gboolean
ari_block_status (VmiImage *self, guint64 offset, guint64 max_length, VmiExtent *extent,
		  GError **error)
{
	return vmi_range_block_status (&self->file, offset, max_length, extent, error);
}

static void
ari_close (VmiImage *self)
{
	g_free (self);
}

const VmiFormatPlugin vmi_ari_plugin = {
	VMI_ARI_IDENTITY,
	.probe = vmi_ari_probe,
	.open = ari_open,
	.get_info = ari_get_info,
	.read = ari_read,
	.block_status = ari_block_status,
	.close = ari_close,
};

VMI_PLUGIN_DEFINE (vmi_ari_plugin)
