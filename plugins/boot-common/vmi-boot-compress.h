/*
 * Compression of kernels and ramdisks: the magic numbers the Linux boot loaders and the
 * initramfs unpacker recognise, and a decompressor that reads one stream out of the image
 * file at an offset (pread, never a seek of the daemon's fd) and stops at a caller's bound.
 */
#pragma once

#include "vmi-plugin.h"
#include "vmi-plugin-util.h"

G_BEGIN_DECLS

typedef enum {
	VMI_BOOT_COMPRESSION_NONE,
	VMI_BOOT_COMPRESSION_GZIP,
	VMI_BOOT_COMPRESSION_XZ,
	VMI_BOOT_COMPRESSION_LZMA,
	VMI_BOOT_COMPRESSION_ZSTD,
	VMI_BOOT_COMPRESSION_LZ4_LEGACY,
	VMI_BOOT_COMPRESSION_LZ4_FRAME,
	VMI_BOOT_COMPRESSION_BZIP2,
	VMI_BOOT_COMPRESSION_LZO,
} VmiBootCompression;

/* The compression whose magic starts p (NONE if none; len may be short). */
VmiBootCompression vmi_boot_compression_detect (const guint8 *p, gsize len);
/* "gzip", "xz", "lzma", "zstd", "lz4-legacy", "lz4", "bzip2", "lzo", "none". */
const char *vmi_boot_compression_name (VmiBootCompression compression);
/* TRUE when this build's libarchive decodes it in-process (never by running a program). */
gboolean vmi_boot_compression_can_decode (VmiBootCompression compression);

typedef struct _VmiBootDecoder VmiBootDecoder;

/*
 * A decoder of the compressed stream stored in the image between offset and end (offsets within
 * file, which must outlive the decoder). At most limit
 * decompressed bytes are handed out; vmi_boot_decoder_read then returns 0 and
 * vmi_boot_decoder_hit_limit says so. Fails with VMI_ERROR_NOT_SUPPORTED for a compression
 * this build cannot decode.
 */
VmiBootDecoder *vmi_boot_decoder_new (const VmiFileRange *file, guint64 offset, guint64 end,
				      VmiBootCompression compression, guint64 limit,
				      GCancellable *cancellable, GError **error);
/*
 * Up to len decompressed bytes into buf: the count, 0 at the end of the stream or the limit,
 * -1 with VMI_ERROR_CORRUPT_IMAGE when the stream is not valid (or VMI_ERROR_CANCELLED).
 */
gssize vmi_boot_decoder_read (VmiBootDecoder *self, void *buf, gsize len, GError **error);
/* Reads until len bytes or the end; *got says how many. */
gboolean vmi_boot_decoder_read_full (VmiBootDecoder *self, void *buf, gsize len, gsize *got,
				     GError **error);
gboolean vmi_boot_decoder_hit_limit (VmiBootDecoder *self);
guint64 vmi_boot_decoder_get_produced (VmiBootDecoder *self);
void vmi_boot_decoder_free (VmiBootDecoder *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiBootDecoder, vmi_boot_decoder_free)

G_END_DECLS
