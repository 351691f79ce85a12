#include <archive.h>
#include <string.h>

#include "vmi-boot-compress.h"
#include "vmi-plugin-util.h"

/* What one libarchive read callback hands over: small, so a short stream costs little. */
#define BOOT_READ_CHUNK (64u * 1024u)
/*
 * liblzma allocates the dictionary an xz or lzma header asks for, up to 4 GiB, and libarchive
 * sets no memory limit; xz -9 uses 64 MiB, so a larger one is refused before decoding.
 */
#define BOOT_MAX_DICTIONARY (256u * 1024u * 1024u)

/*
 * libarchive falls back to running gzip, xz, lz4, ... as programs when it was built without the
 * library; a daemon must not spawn a decompressor on hostile input, so a filter is used only
 * when its library is linked in.
 */
gboolean
vmi_boot_compression_can_decode (VmiBootCompression compression)
{
	switch (compression) {
	case VMI_BOOT_COMPRESSION_GZIP:
		return archive_zlib_version () != NULL;
	case VMI_BOOT_COMPRESSION_XZ:
	case VMI_BOOT_COMPRESSION_LZMA:
		return archive_liblzma_version () != NULL;
	case VMI_BOOT_COMPRESSION_ZSTD:
		return archive_libzstd_version () != NULL;
	case VMI_BOOT_COMPRESSION_LZ4_LEGACY:
	case VMI_BOOT_COMPRESSION_LZ4_FRAME:
		return archive_liblz4_version () != NULL;
	case VMI_BOOT_COMPRESSION_BZIP2:
		return archive_bzlib_version () != NULL;
	case VMI_BOOT_COMPRESSION_LZO:
	case VMI_BOOT_COMPRESSION_NONE:
	default:
		return FALSE;
	}
}

struct _VmiBootDecoder {
	struct archive *archive;
	const VmiFileRange *file;
	guint64 offset; /* of the stream in the file */
	guint64 pos;	/* next byte the read callback hands over */
	guint64 end;
	guint64 limit;
	guint64 produced;
	gboolean hit_limit;
	gboolean done;
	VmiBootCompression compression;
	GCancellable *cancellable;
	GError *read_error; /* from the read callback, which can only return -1 */
	guint8 chunk[BOOT_READ_CHUNK];
};

static la_ssize_t
boot_decoder_read_cb (struct archive *archive, void *data, const void **buffer)
{
	VmiBootDecoder *self = data;
	gsize len = (gsize) MIN (self->end - self->pos, (guint64) BOOT_READ_CHUNK);

	*buffer = self->chunk;
	if (len == 0)
		return 0;
	if (!vmi_range_pread_all (self->file, self->chunk, len, self->pos, "image", &self->read_error)) {
		archive_set_error (archive, -1, "%s", self->read_error->message);
		return -1;
	}
	self->pos += len;
	return (la_ssize_t) len;
}

static int
boot_decoder_add_filter (struct archive *archive, VmiBootCompression compression)
{
	switch (compression) {
	case VMI_BOOT_COMPRESSION_GZIP:
		return archive_read_support_filter_gzip (archive);
	case VMI_BOOT_COMPRESSION_XZ:
		return archive_read_support_filter_xz (archive);
	case VMI_BOOT_COMPRESSION_LZMA:
		return archive_read_support_filter_lzma (archive);
	case VMI_BOOT_COMPRESSION_ZSTD:
		return archive_read_support_filter_zstd (archive);
	case VMI_BOOT_COMPRESSION_LZ4_LEGACY:
	case VMI_BOOT_COMPRESSION_LZ4_FRAME:
		return archive_read_support_filter_lz4 (archive);
	case VMI_BOOT_COMPRESSION_BZIP2:
		return archive_read_support_filter_bzip2 (archive);
	case VMI_BOOT_COMPRESSION_LZO:
	case VMI_BOOT_COMPRESSION_NONE:
	default:
		return ARCHIVE_FATAL;
	}
}

static void
boot_decoder_set_error (VmiBootDecoder *self, GError **error)
{
	if (self->read_error != NULL) {
		g_propagate_error (error, g_steal_pointer (&self->read_error));
		return;
	}
	g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
		     "the %s stream at offset %" G_GUINT64_FORMAT
		     " cannot be decompressed after %" G_GUINT64_FORMAT " bytes of output: %s",
		     vmi_boot_compression_name (self->compression), self->offset, self->produced,
		     archive_error_string (self->archive) != NULL
			     ? archive_error_string (self->archive)
			     : "the data is not a valid stream");
}

/* A multibyte integer of the xz format: 7 bits a byte, at most 9 bytes. */
static gboolean
boot_xz_varint (const guint8 *p, gsize len, gsize *pos, guint64 *value)
{
	*value = 0;
	for (guint i = 0; i < 9 && *pos < len; i++) {
		guint8 b = p[(*pos)++];

		*value |= (guint64) (b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0)
			return TRUE;
	}
	return FALSE;
}

/*
 * The LZMA2 dictionary of the first block of an xz stream (xz-file-format.txt, 3.1 Block
 * Header), or 0 when the stream has no block or the header cannot be read here (the decoder
 * then reports what is wrong). Later blocks and streams are not looked at.
 */
static guint64
boot_xz_dictionary (const guint8 *p, gsize len)
{
	gsize pos = 14, end;
	guint filters;

	if (len < 14 || p[12] == 0)
		return 0;
	end = 12 + ((gsize) p[12] + 1) * 4;
	if (end > len)
		return 0;
	filters = (p[13] & 0x03) + 1u;
	for (guint i = 0; i < 2; i++) {
		guint64 size;

		if ((p[13] & (0x40u << i)) && !boot_xz_varint (p, end, &pos, &size))
			return 0;
	}
	for (guint i = 0; i < filters; i++) {
		guint64 id, props;

		if (!boot_xz_varint (p, end, &pos, &id) || !boot_xz_varint (p, end, &pos, &props) ||
		    props > end - pos)
			return 0;
		if (id == 0x21 && props == 1) {
			guint8 bits = p[pos];

			if (bits > 40)
				return 0;
			return bits == 40 ? G_MAXUINT32 : (guint64) (2 | (bits & 1)) << (bits / 2 + 11);
		}
		pos += (gsize) props;
	}
	return 0;
}

static gboolean
boot_check_dictionary (const VmiFileRange *file, guint64 offset, guint64 end, VmiBootCompression compression,
		       GError **error)
{
	guint8 head[12 + 1024] = { 0 };
	gsize len = (gsize) MIN ((guint64) sizeof head, end - offset);
	guint64 dictionary = 0;

	if (compression != VMI_BOOT_COMPRESSION_XZ && compression != VMI_BOOT_COMPRESSION_LZMA)
		return TRUE;
	if (!vmi_range_pread_all (file, head, len, offset, "image", error))
		return FALSE;
	if (compression == VMI_BOOT_COMPRESSION_XZ)
		dictionary = boot_xz_dictionary (head, len);
	else if (len >= 5)
		dictionary = (guint64) head[1] | (guint64) head[2] << 8 | (guint64) head[3] << 16 |
			     (guint64) head[4] << 24;
	if (dictionary > BOOT_MAX_DICTIONARY) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
			     "the %s stream at offset %" G_GUINT64_FORMAT " asks for a %" G_GUINT64_FORMAT
			     "-MiB dictionary; more than %u MiB is refused (xz -9 uses 64 MiB)",
			     vmi_boot_compression_name (compression), offset, dictionary >> 20,
			     BOOT_MAX_DICTIONARY >> 20);
		return FALSE;
	}
	return TRUE;
}

VmiBootDecoder *
vmi_boot_decoder_new (const VmiFileRange *file, guint64 offset, guint64 end, VmiBootCompression compression,
		      guint64 limit, GCancellable *cancellable, GError **error)
{
	g_autoptr(VmiBootDecoder) self = NULL;
	struct archive_entry *entry = NULL;

	g_return_val_if_fail (offset <= end, NULL);

	if (!vmi_boot_compression_can_decode (compression)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the %s-compressed stream at offset %" G_GUINT64_FORMAT
			     " cannot be decompressed: this build has no %s decoder",
			     vmi_boot_compression_name (compression), offset,
			     vmi_boot_compression_name (compression));
		return NULL;
	}
	if (!boot_check_dictionary (file, offset, end, compression, error))
		return NULL;
	self = g_new0 (VmiBootDecoder, 1);
	self->file = file;
	self->offset = offset;
	self->pos = offset;
	self->end = end;
	self->limit = limit;
	self->compression = compression;
	self->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
	self->archive = archive_read_new ();
	if (self->archive == NULL)
		g_error ("out of memory creating an archive reader");
	/* Only the one filter the magic named: less of libarchive sees hostile bytes. */
	if (boot_decoder_add_filter (self->archive, compression) != ARCHIVE_OK ||
	    archive_read_support_format_raw (self->archive) != ARCHIVE_OK) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "libarchive cannot decode %s in-process: %s",
			     vmi_boot_compression_name (compression),
			     archive_error_string (self->archive));
		return NULL;
	}
	if (archive_read_open (self->archive, self, NULL, boot_decoder_read_cb, NULL) != ARCHIVE_OK ||
	    archive_read_next_header (self->archive, &entry) != ARCHIVE_OK ||
	    archive_filter_code (self->archive, 0) == ARCHIVE_FILTER_NONE) {
		boot_decoder_set_error (self, error);
		return NULL;
	}
	return g_steal_pointer (&self);
}

gssize
vmi_boot_decoder_read (VmiBootDecoder *self, void *buf, gsize len, GError **error)
{
	la_ssize_t n;

	if (g_cancellable_is_cancelled (self->cancellable)) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED,
				     "decompressing was cancelled");
		return -1;
	}
	if (self->done || self->produced >= self->limit) {
		self->hit_limit = !self->done;
		return 0;
	}
	len = (gsize) MIN ((guint64) len, self->limit - self->produced);
	n = archive_read_data (self->archive, buf, len);
	if (n < 0) {
		boot_decoder_set_error (self, error);
		return -1;
	}
	if (n == 0)
		self->done = TRUE;
	self->produced += (guint64) n;
	return n;
}

gboolean
vmi_boot_decoder_read_full (VmiBootDecoder *self, void *buf, gsize len, gsize *got,
			    GError **error)
{
	guint8 *p = buf;
	gsize done = 0;

	while (done < len) {
		gssize n = vmi_boot_decoder_read (self, p + done, len - done, error);

		if (n < 0)
			return FALSE;
		if (n == 0)
			break;
		done += (gsize) n;
	}
	*got = done;
	return TRUE;
}

gboolean
vmi_boot_decoder_hit_limit (VmiBootDecoder *self)
{
	return self->hit_limit;
}

guint64
vmi_boot_decoder_get_produced (VmiBootDecoder *self)
{
	return self->produced;
}

void
vmi_boot_decoder_free (VmiBootDecoder *self)
{
	if (self == NULL)
		return;
	if (self->archive != NULL)
		archive_read_free (self->archive);
	g_clear_error (&self->read_error);
	g_clear_object (&self->cancellable);
	g_free (self);
}
