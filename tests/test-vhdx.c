/*
 * Tests of the VHDX plugin: images made by qemu-img and by real hypervisors read as qemu-img
 * reads them, our writer's images pass qemu-img check and hold their source, a dirty log is
 * replayed in memory, and every kind of broken header is refused with a named error.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-options.h"
#include "vmi-test-util.h"
#include "../plugins/vhdx/vhdx-crc32c.h"

extern const VmiFormatPlugin vmi_vhdx_plugin;

#define KiB (1024ull)
#define MiB (1024ull * 1024ull)
#define GiB (1024ull * MiB)

/* --- helpers ------------------------------------------------------------------------------- */

static guint32
rd32 (const guint8 *p)
{
	return (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16) | ((guint32) p[3] << 24);
}

static guint64
rd64 (const guint8 *p)
{
	return (guint64) rd32 (p) | ((guint64) rd32 (p + 4) << 32);
}

static void
wr16 (guint8 *p, guint16 v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void
wr32 (guint8 *p, guint32 v)
{
	for (guint i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static void
wr64 (guint8 *p, guint64 v)
{
	for (guint i = 0; i < 8; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

/* The well-known GUIDs, as stored on disk. */
static const guint8 guid_bat[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
				     0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
static const guint8 guid_metadata[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
					  0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
static const guint8 guid_file_parameters[16] = { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
						 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
static const guint8 guid_virtual_disk_size[16] = { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
						   0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
static const guint8 guid_logical_sector[16] = { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
						0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
static const guint8 guid_physical_sector[16] = { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
						 0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
static const guint8 guid_parent_locator[16] = { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
						0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };
static const guint8 guid_vhdx_locator_type[16] = { 0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a,
						   0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

static GBytes *
load (const char *path)
{
	g_autoptr(GError) error = NULL;
	char *contents = NULL;
	gsize len = 0;

	g_file_get_contents (path, &contents, &len, &error);
	g_assert_no_error (error);
	return g_bytes_new_take (contents, len);
}

/* Without g_file_set_contents' fsync: these are throw-away files. */
static void
save (const char *path, const guint8 *data, gsize len)
{
	int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	gsize done = 0;

	g_assert_cmpint (fd, >=, 0);
	while (done < len) {
		ssize_t n = write (fd, data + done, len - done);

		g_assert_cmpint (n, >, 0);
		done += (gsize) n;
	}
	g_assert_cmpint (close (fd), ==, 0);
}

/* Recomputes both headers' and both region tables' CRC-32C after a test edited them. */
static void
fix_checksums (guint8 *img)
{
	static const gsize headers[] = { 64 * KiB, 128 * KiB };
	static const gsize tables[] = { 192 * KiB, 256 * KiB };

	for (guint i = 0; i < 2; i++) {
		wr32 (img + headers[i] + 4, 0);
		wr32 (img + headers[i] + 4, vhdx_crc32c (img + headers[i], 4 * KiB));
		wr32 (img + tables[i] + 4, 0);
		wr32 (img + tables[i] + 4, vhdx_crc32c (img + tables[i], 64 * KiB));
	}
}

/* The region table entry (in table 1) of the region with this GUID. */
static guint8 *
region_entry (guint8 *img, const guint8 *guid)
{
	guint8 *t = img + 192 * KiB;

	for (guint i = 0; i < rd32 (t + 8); i++) {
		if (memcmp (t + 16 + 32 * i, guid, 16) == 0)
			return t + 16 + 32 * i;
	}
	g_assert_not_reached ();
}

static guint64
region_offset (guint8 *img, const guint8 *guid)
{
	return rd64 (region_entry (img, guid) + 16);
}

/* The metadata table entry of a known item. */
static guint8 *
metadata_entry (guint8 *img, const guint8 *guid)
{
	guint8 *md = img + region_offset (img, guid_metadata);

	for (guint i = 0; i < (guint) (md[10] | (md[11] << 8)); i++) {
		if (memcmp (md + 32 + 32 * i, guid, 16) == 0)
			return md + 32 + 32 * i;
	}
	g_assert_not_reached ();
}

static guint8 *
metadata_item (guint8 *img, const guint8 *guid)
{
	return img + region_offset (img, guid_metadata) + rd32 (metadata_entry (img, guid) + 16);
}

/* The current header (the valid one with the larger sequence number; ours and qemu's are both valid). */
static guint8 *
current_header (guint8 *img)
{
	return rd64 (img + 128 * KiB + 8) > rd64 (img + 64 * KiB + 8) ? img + 128 * KiB : img + 64 * KiB;
}

static VmiSource *
open_path (const char *path, GError **error)
{
	return vmi_test_open (&vmi_vhdx_plugin, path, error);
}

/* Opens path expecting the error code; saves it as a fuzz seed. */
static void
expect_open_error (const char *path, VmiError code)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = open_path (path, &error);

	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, (gint) code);
	g_test_message ("%s: %s", path, error->message);
	vmi_test_save_seed ("vhdx", path);
}

static GVariantDict *
facts (VmiSource *source)
{
	return vmi_source_get_info (source)->format_specific;
}

static guint64
fact_u64 (VmiSource *source, const char *name)
{
	guint64 v = 0;

	g_assert_true (g_variant_dict_lookup (facts (source), name, "t", &v));
	return v;
}

static gboolean
fact_bool (VmiSource *source, const char *name)
{
	gboolean v = FALSE;

	g_assert_true (g_variant_dict_lookup (facts (source), name, "b", &v));
	return v;
}

static char *
fact_str (VmiSource *source, const char *name)
{
	char *v = NULL;

	g_assert_true (g_variant_dict_lookup (facts (source), name, "s", &v));
	return v;
}

/* Reads the whole virtual disk through the plugin into a sparse raw file. */
static void
dump_raw (VmiSource *source, const char *raw_path)
{
	VmiImage *image = vmi_source_get_image (source);
	guint64 size = vmi_source_get_virtual_size (source), offset = 0;
	g_autofree guint8 *buf = g_malloc (MiB);
	int fd = open (raw_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (ftruncate (fd, (off_t) size), ==, 0);
	while (offset < size) {
		g_autoptr(GError) error = NULL;
		VmiExtent extent = { 0 };
		guint64 end;

		g_assert_true (vmi_vhdx_plugin.block_status (image, offset, size - offset, &extent, &error));
		g_assert_no_error (error);
		g_assert_cmpuint (extent.length, >, 0);
		g_assert_cmpuint (extent.length, <=, size - offset);
		end = offset + extent.length;
		if (extent.kind != VMI_EXTENT_DATA) {
			/* Holes and zero blocks must read as zeros too. */
			gsize n = (gsize) MIN (extent.length, MiB);

			g_assert_true (vmi_vhdx_plugin.read (image, offset, buf, n, &error));
			for (gsize i = 0; i < n; i++)
				g_assert_cmpuint (buf[i], ==, 0);
			offset = end;
			continue;
		}
		while (offset < end) {
			gsize n = (gsize) MIN (end - offset, MiB);

			g_assert_true (vmi_vhdx_plugin.read (image, offset, buf, n, &error));
			g_assert_no_error (error);
			/* Zeros stay holes, so a big sparse disk stays small on disk. */
			if (buf[0] != 0 || memcmp (buf, buf + 1, n - 1) != 0)
				g_assert_cmpint (pwrite (fd, buf, n, (off_t) offset), ==, (ssize_t) n);
			offset += n;
		}
	}
	g_assert_cmpint (close (fd), ==, 0);
}

/* Start of the next data at or after offset (file size if none), as SEEK_DATA says. */
static guint64
next_data (int fd, guint64 offset, guint64 size)
{
	off_t r = lseek (fd, (off_t) offset, SEEK_DATA);

	return r < 0 ? size : (guint64) r;
}

static guint64
next_hole (int fd, guint64 offset, guint64 size)
{
	off_t r = lseek (fd, (off_t) offset, SEEK_HOLE);

	return r < 0 ? size : (guint64) r;
}

/*
 * Whether two files of the same size have the same bytes, reading only where either has data:
 * where both are holes both read as zeros. cmp would read every byte of a 4 GiB disk twice.
 */
static gboolean
sparse_files_equal (const char *a, const char *b)
{
	int fa = open (a, O_RDONLY | O_CLOEXEC), fb = open (b, O_RDONLY | O_CLOEXEC);
	g_autofree guint8 *ba = g_malloc (MiB);
	g_autofree guint8 *bb = g_malloc (MiB);
	struct stat sa, sb;
	guint64 offset = 0, size;
	gboolean equal = TRUE;

	g_assert_cmpint (fa, >=, 0);
	g_assert_cmpint (fb, >=, 0);
	g_assert_cmpint (fstat (fa, &sa), ==, 0);
	g_assert_cmpint (fstat (fb, &sb), ==, 0);
	if (sa.st_size != sb.st_size)
		equal = FALSE;
	size = (guint64) sa.st_size;
	while (equal && offset < size) {
		guint64 start = MIN (next_data (fa, offset, size), next_data (fb, offset, size));
		guint64 end;

		if (start >= size)
			break;
		end = MAX (next_hole (fa, start, size), next_hole (fb, start, size));
		for (offset = start; equal && offset < end;) {
			gsize n = (gsize) MIN (end - offset, MiB);

			g_assert_cmpint (pread (fa, ba, n, (off_t) offset), ==, (ssize_t) n);
			g_assert_cmpint (pread (fb, bb, n, (off_t) offset), ==, (ssize_t) n);
			equal = memcmp (ba, bb, n) == 0;
			offset += n;
		}
	}
	close (fa);
	close (fb);
	return equal;
}

/* --- a minimal raw source plugin, so the engine can convert a pattern image into VHDX ------- */

struct _VmiImage {
	int fd;
	guint64 size;
};

static VmiImage *
rawsrc_open (const VmiOpenArgs *args, GError **error)
{
	VmiImage *image = g_new0 (VmiImage, 1);

	image->fd = args->fd;
	image->size = args->file_size;
	return image;
}

static gboolean
rawsrc_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	info->virtual_size = image->size;
	return TRUE;
}

static gboolean
rawsrc_read (VmiImage *image, guint64 offset, void *buf, gsize len, GError **error)
{
	g_assert_cmpint (pread (image->fd, buf, len, (off_t) offset), ==, (ssize_t) len);
	return TRUE;
}

static gboolean
rawsrc_block_status (VmiImage *image, guint64 offset, guint64 max_length, VmiExtent *extent,
		     GError **error)
{
	off_t data = lseek (image->fd, (off_t) offset, SEEK_DATA);
	off_t hole;

	if (data < 0 || (guint64) data > offset) {
		extent->kind = VMI_EXTENT_HOLE;
		extent->length = MIN (max_length, (data < 0 ? image->size : (guint64) data) - offset);
		return TRUE;
	}
	hole = lseek (image->fd, (off_t) offset, SEEK_HOLE);
	extent->kind = VMI_EXTENT_DATA;
	extent->length = MIN (max_length, (guint64) hole - offset);
	return TRUE;
}

static void
rawsrc_close (VmiImage *image)
{
	g_free (image);
}

static guint
rawsrc_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return VMI_PROBE_FALLBACK;
}

static const char *const rawsrc_extensions[] = { "img", NULL };

static const VmiFormatPlugin rawsrc_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "testraw",
	.description = "raw source for the VHDX tests",
	.extensions = rawsrc_extensions,
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ,
	.probe = rawsrc_probe,
	.open = rawsrc_open,
	.get_info = rawsrc_get_info,
	.read = rawsrc_read,
	.block_status = rawsrc_block_status,
	.close = rawsrc_close,
};

/* Converts src (opened with src_plugin) into a new VHDX at dst with create options. */
static gboolean
convert_to_vhdx (const VmiFormatPlugin *src_plugin, const char *src, const char *dst,
		 GVariant *options, GError **error)
{
	g_autoptr(GVariant) normalized = NULL;
	g_autoptr(GVariant) floating = options != NULL ? g_variant_ref_sink (options) : NULL;

	normalized = vmi_options_normalize (floating, vmi_convert_options, vmi_vhdx_plugin.create_options,
					    error);
	if (normalized == NULL)
		return FALSE;
	return vmi_test_convert (src_plugin, src, &vmi_vhdx_plugin, dst, normalized, error);
}

/* --- probe --------------------------------------------------------------------------------- */

static void
test_probe (void)
{
	guint8 head[4096] = { 0 };

	memcpy (head, "vhdxfile", 8);
	g_assert_cmpuint (vmi_vhdx_plugin.probe (head, sizeof head, 4 * MiB), ==, VMI_PROBE_CERTAIN);
	g_assert_cmpuint (vmi_vhdx_plugin.probe (head, 8, 8), ==, VMI_PROBE_CERTAIN);
	g_assert_cmpuint (vmi_vhdx_plugin.probe (head, 7, 7), ==, VMI_PROBE_NO);
	g_assert_cmpuint (vmi_vhdx_plugin.probe (head, 0, 0), ==, VMI_PROBE_NO);
	head[0] = 'V';
	g_assert_cmpuint (vmi_vhdx_plugin.probe (head, sizeof head, 4 * MiB), ==, VMI_PROBE_NO);
	memcpy (head, "conectix", 8);
	g_assert_cmpuint (vmi_vhdx_plugin.probe (head, sizeof head, 4 * MiB), ==, VMI_PROBE_NO);
}

static void
test_crc32c (void)
{
	/* The check value of CRC-32C (RFC 3720 B.4) and the iSCSI all-zero vector. */
	guint8 zeros[32] = { 0 };

	g_assert_cmphex (vhdx_crc32c ("123456789", 9), ==, 0xe3069283);
	g_assert_cmphex (vhdx_crc32c (zeros, sizeof zeros), ==, 0x8a9136aa);
	g_assert_cmphex (vhdx_crc32c_update (vhdx_crc32c ("1234", 4), "56789", 5), ==, 0xe3069283);
}

/* The comparison the round trips rely on must see a difference, in data and in a hole. */
static void
test_sparse_files_equal (void)
{
	char *dir = vmi_test_tmpdir_new ();
	g_autofree char *a = g_build_filename (dir, "a", NULL);
	g_autofree char *b = g_build_filename (dir, "b", NULL);
	int fd;

	vmi_test_make_pattern_image (a, 64 * MiB, 1);
	vmi_test_make_pattern_image (b, 64 * MiB, 1);
	g_assert_true (sparse_files_equal (a, b));
	fd = open (b, O_WRONLY | O_CLOEXEC);
	g_assert_cmpint (pwrite (fd, "x", 1, 40 * MiB + 5 * 64 * KiB + 12345), ==, 1); /* in a hole of a */
	g_assert_false (sparse_files_equal (a, b));
	g_assert_cmpint (pwrite (fd, "\0", 1, 40 * MiB + 5 * 64 * KiB + 12345), ==, 1);
	g_assert_true (sparse_files_equal (a, b));
	g_assert_cmpint (pwrite (fd, "x", 1, 1000), ==, 1); /* in the first, random, block */
	g_assert_false (sparse_files_equal (a, b));
	g_assert_cmpint (ftruncate (fd, 65 * MiB), ==, 0);
	g_assert_false (sparse_files_equal (a, b));
	close (fd);
	vmi_test_tmpdir_free (dir);
}

/* --- images made by qemu-img --------------------------------------------------------------- */

static void
check_qemu_image (const char *dir, const char *subformat, guint64 size, guint64 block_size,
		  guint64 log_size, guint64 logical_sector)
{
	g_autofree char *pattern = g_build_filename (dir, "pattern.raw", NULL);
	g_autofree char *img = g_build_filename (dir, "qemu.vhdx", NULL);
	g_autofree char *raw = g_build_filename (dir, "ours.raw", NULL);
	g_autofree char *opts = NULL;
	g_autoptr(JsonObject) info = NULL;
	g_autoptr(VmiSource) source = NULL;
	const VmiImageInfo *vi;
	g_autofree char *creator = NULL;
	g_autofree char *disk_id = NULL;

	g_test_message ("qemu-img vhdx %s size=%" G_GUINT64_FORMAT " block_size=%" G_GUINT64_FORMAT
			" log_size=%" G_GUINT64_FORMAT,
			subformat, size, block_size, log_size);
	vmi_test_make_pattern_image (pattern, size, (guint32) (size + block_size));
	opts = g_strdup_printf ("subformat=%s,block_size=%" G_GUINT64_FORMAT ",log_size=%" G_GUINT64_FORMAT,
				subformat, block_size, log_size);
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img convert -q -f raw -O vhdx -o %s '%s' '%s'", opts,
				      pattern, img),
			 ==, 0);
	info = vmi_test_qemu_img_info (img, "vhdx");

	source = open_path (img, NULL);
	vi = vmi_source_get_info (source);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==,
			  (guint64) json_object_get_int_member (info, "virtual-size"));
	g_assert_cmpuint (vi->cluster_size, ==, (guint64) json_object_get_int_member (info, "cluster-size"));
	if (block_size != 0)
		g_assert_cmpuint (vi->cluster_size, ==, block_size);
	g_assert_cmpstr (vi->subformat, ==, subformat);
	g_assert_true (vmi_source_is_safe (source));
	g_assert_cmpuint (vi->references->len, ==, 0);
	g_assert_cmpuint (fact_u64 (source, "block-size"), ==, vi->cluster_size);
	g_assert_cmpuint (fact_u64 (source, "log-size"), ==, log_size);
	g_assert_cmpuint (fact_u64 (source, "logical-sector-size"), ==, logical_sector);
	g_assert_cmpuint (fact_u64 (source, "physical-sector-size"), ==, 512);
	g_assert_false (fact_bool (source, "has-parent"));
	g_assert_cmpint (fact_bool (source, "leave-blocks-allocated"), ==, g_str_equal (subformat, "fixed"));
	g_assert_false (fact_bool (source, "log-replayed"));
	creator = fact_str (source, "creator");
	g_assert_true (g_str_has_prefix (creator, "QEMU v"));
	disk_id = fact_str (source, "virtual-disk-id");
	g_assert_true (g_uuid_string_is_valid (disk_id));

	dump_raw (source, raw);
	g_assert_true (vmi_test_qemu_img_compare (img, "vhdx", raw, "raw"));
	/* qemu-img rounds the size up to a sector; the pattern is the shorter file. */
	g_assert_cmpint (truncate (pattern, (off_t) vmi_source_get_virtual_size (source)), ==, 0);
	g_assert_true (sparse_files_equal (pattern, raw));
	vmi_test_save_seed ("vhdx", img);
}

static void
test_qemu_images (void)
{
	char *dir;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	check_qemu_image (dir, "dynamic", 5 * MiB + 3 * 512, 0, MiB, 512);
	check_qemu_image (dir, "dynamic", 0, 0, MiB, 512);
	check_qemu_image (dir, "dynamic", 9 * MiB, MiB, MiB, 512);
	check_qemu_image (dir, "dynamic", 20 * MiB + 512, 2 * MiB, 2 * MiB, 512);
	check_qemu_image (dir, "dynamic", 64 * MiB, 32 * MiB, MiB, 512);
	check_qemu_image (dir, "dynamic", 3 * MiB, 256 * MiB, MiB, 512);
	check_qemu_image (dir, "fixed", 5 * MiB + 3 * 512, 0, MiB, 512);
	check_qemu_image (dir, "fixed", 6 * MiB, MiB, 3 * MiB, 512);
	vmi_test_tmpdir_free (dir);
}

/* Many blocks and a chunk ratio of 128 with 32 MiB blocks: the BAT interleaving matters past
 * the first chunk (block 128 and up), so write data there. */
static void
test_qemu_sparse_big (void)
{
	char *dir;
	g_autofree char *img = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *out = NULL;
	guint8 buf[512];
	guint64 offset = 0;
	static const VmiExtent expect[] = {
		/* qemu-img marks unwritten blocks ZERO (its block_state_zero default). Block 1000
		 * holds 4 KiB of data; qemu left the rest of it a hole of the file, which reads
		 * as zeros and joins the zero blocks after it. */
		{ VMI_EXTENT_ZERO, 1000 * MiB }, { VMI_EXTENT_DATA, 4096 },
		{ VMI_EXTENT_ZERO, 3099 * MiB + MiB - 4096 }, { VMI_EXTENT_DATA, MiB },
		{ VMI_EXTENT_ZERO, 1018 * MiB }, { VMI_EXTENT_DATA, MiB },
	};

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	img = g_build_filename (dir, "big.vhdx", NULL);
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img create -q -f vhdx -o block_size=1M '%s' 5G", img), ==, 0);
	/* Block 1000 (chunk ratio 4096 for 1 MiB blocks) and block 4100, past the first chunk. */
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-io -f vhdx -c 'write -P 0x5a 1000M 4k' -c 'write -P 0x3c 4100M 1M' "
				      "-c 'write -P 0x11 5119M 1M' '%s' >/dev/null",
				      img),
			 ==, 0);
	source = open_path (img, NULL);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 5 * GiB);
	g_assert_cmpuint (fact_u64 (source, "allocated-blocks"), ==, 3);
	g_assert_true (vmi_vhdx_plugin.read (vmi_source_get_image (source), 4100 * MiB + 4096, buf, sizeof buf, &error));
	g_assert_no_error (error);
	g_assert_cmpuint (buf[0], ==, 0x3c);
	g_assert_cmpuint (buf[511], ==, 0x3c);
	/* A full qemu-img compare of 5 GiB is slow; the layout is known, so check it exactly:
	 * three allocated blocks, everything else zero, and qemu reads what we read. */
	for (guint i = 0; i < G_N_ELEMENTS (expect); i++) {
		VmiExtent extent = { 0 };

		g_assert_true (vmi_vhdx_plugin.block_status (vmi_source_get_image (source), offset,
							     5 * GiB - offset, &extent, &error));
		g_assert_cmpint (extent.kind, ==, expect[i].kind);
		g_assert_cmpuint (extent.length, ==, expect[i].length);
		offset += extent.length;
	}
	g_assert_cmpuint (offset, ==, 5 * GiB);
	g_assert_true (vmi_vhdx_plugin.read (vmi_source_get_image (source), 1000 * MiB, buf, sizeof buf, &error));
	g_assert_cmpuint (buf[0], ==, 0x5a);
	g_assert_true (vmi_vhdx_plugin.read (vmi_source_get_image (source), 5119 * MiB + 1000, buf, sizeof buf, &error));
	g_assert_cmpuint (buf[0], ==, 0x11);
	g_assert_cmpint (vmi_test_sh (&out, "qemu-io -f vhdx -c 'read -P 0x5a 1000M 4k' -c 'read -P 0 1028096k 1020k' "
				      "-c 'read -P 0x3c 4100M 1M' -c 'read -P 0x11 5119M 1M' '%s' 2>&1",
				      img),
			 ==, 0);
	g_assert_null (strstr (out, "verification failed"));
	g_assert_nonnull (strstr (out, "read 1048576/1048576 bytes at offset 5367660544"));
	vmi_test_tmpdir_free (dir);
}

/*
 * qemu-io killed right after its writes: qemu logs its BAT updates, so the log region holds
 * entries, but the header's log GUID was cleared once they were flushed. Nothing to replay.
 */
static void
test_qemu_killed_writer (void)
{
	char *dir;
	g_autofree char *img = NULL;
	g_autofree char *raw = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GBytes) bytes = NULL;
	const guint8 *data;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	img = g_build_filename (dir, "killed.vhdx", NULL);
	raw = g_build_filename (dir, "killed.raw", NULL);
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img create -q -f vhdx -o block_size=1M '%s' 8M && "
				      "{ qemu-io -f vhdx -c 'write -P 0x33 0 1M' -c 'write -P 0x44 3M 512k' -c 'sigraise 9' '%s'; } "
				      ">/dev/null 2>&1; true",
				      img, img),
			 ==, 0);
	bytes = load (img);
	data = g_bytes_get_data (bytes, NULL);
	/* the premise: a log entry is there */
	g_assert_cmpmem (data + MiB, 4, "loge", 4);
	source = open_path (img, NULL);
	g_assert_false (fact_bool (source, "log-replayed"));
	g_assert_true (vmi_source_is_safe (source));
	dump_raw (source, raw);
	g_assert_true (vmi_test_qemu_img_compare (img, "vhdx", raw, "raw"));
	vmi_test_tmpdir_free (dir);
}

/* --- the real-world corpus ----------------------------------------------------------------- */

static void
check_corpus (const char *name, guint64 virtual_size, guint64 block_size, guint64 physical_sector,
	      const char *creator_prefix)
{
	char *dir;
	g_autofree char *img = NULL;
	g_autofree char *raw = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autofree char *creator = NULL;
	const VmiImageInfo *vi;

	if (vmi_test_corpus_dir () == NULL || !vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	img = vmi_test_corpus_fetch (name, dir);
	raw = g_build_filename (dir, "out.raw", NULL);
	source = open_path (img, NULL);
	vi = vmi_source_get_info (source);
	/* The MANIFEST.tsv row of this file. */
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, virtual_size);
	g_assert_cmpuint (vi->cluster_size, ==, block_size);
	g_assert_cmpstr (vi->subformat, ==, "dynamic");
	g_assert_cmpuint (fact_u64 (source, "logical-sector-size"), ==, 512);
	g_assert_cmpuint (fact_u64 (source, "physical-sector-size"), ==, physical_sector);
	g_assert_false (fact_bool (source, "has-parent"));
	g_assert_false (fact_bool (source, "leave-blocks-allocated"));
	g_assert_false (fact_bool (source, "log-replayed"));
	creator = fact_str (source, "creator");
	g_test_message ("%s: creator \"%s\"", name, creator);
	g_assert_true (g_str_has_prefix (creator, creator_prefix));
	g_assert_true (vmi_source_is_safe (source));

	dump_raw (source, raw);
	g_assert_true (vmi_test_qemu_img_compare (img, "vhdx", raw, "raw"));
	if (g_str_has_prefix (name, "iotest-dynamic")) {
		/* iotest 064: 0xa5 in the first 33 MiB, 0x96 in the next 33 MiB, zeros after. */
		static const struct {
			guint64 offset;
			guint8 value;
		} probes[] = { { 0, 0xa5 }, { 33 * MiB - 1, 0xa5 }, { 33 * MiB, 0x96 },
			       { 66 * MiB - 1, 0x96 }, { 66 * MiB, 0 }, { GiB - 1, 0 } };

		for (guint i = 0; i < G_N_ELEMENTS (probes); i++) {
			g_autoptr(GError) error = NULL;
			guint8 byte = 0xff;

			g_assert_true (vmi_vhdx_plugin.read (vmi_source_get_image (source), probes[i].offset, &byte, 1, &error));
			g_assert_no_error (error);
			g_assert_cmpuint (byte, ==, probes[i].value);
		}
	}
	g_clear_pointer (&source, vmi_source_free);
	g_remove (raw);
	vmi_test_tmpdir_free (dir);
}

static void
test_corpus_hyperv (void)
{
	check_corpus ("iotest-dynamic-1G.vhdx.bz2", 1073741824, 32 * MiB, 4096, "Microsoft Windows 6.2.9200");
}

static void
test_corpus_disk2vhd (void)
{
	check_corpus ("test-disk2vhd.vhdx.bz2", 268435456, 2 * MiB, 512, "d2v");
}

/* --- our writer ---------------------------------------------------------------------------- */

static void
check_writer (const char *dir, const char *subformat, guint64 size, guint64 block_size)
{
	g_autofree char *pattern = g_build_filename (dir, "pattern.raw", NULL);
	g_autofree char *img = g_build_filename (dir, "ours.vhdx", NULL);
	g_autofree char *raw = g_build_filename (dir, "back.raw", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(JsonObject) info = NULL;
	GVariantBuilder b;
	guint64 expected_block = block_size;
	g_autofree char *creator = NULL;
	struct stat st;

	g_test_message ("writer %s size=%" G_GUINT64_FORMAT " block-size=%" G_GUINT64_FORMAT, subformat,
			size, block_size);
	vmi_test_make_pattern_image (pattern, size, (guint32) size);
	g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
	if (subformat != NULL)
		g_variant_builder_add (&b, "{sv}", "subformat", g_variant_new_string (subformat));
	if (block_size != 0)
		g_variant_builder_add (&b, "{sv}", "block-size", g_variant_new_uint64 (block_size));
	g_assert_true (convert_to_vhdx (&rawsrc_plugin, pattern, img, g_variant_builder_end (&b), &error));
	g_assert_no_error (error);

	g_assert_true (vmi_test_qemu_img_check (img, "vhdx"));
	info = vmi_test_qemu_img_info (img, NULL);
	g_assert_cmpstr (json_object_get_string_member (info, "format"), ==, "vhdx");
	g_assert_cmpuint ((guint64) json_object_get_int_member (info, "virtual-size"), ==, (size + 511) / 512 * 512);
	if (expected_block == 0)
		/* qemu-img's rule for the default */
		expected_block = size > GiB ? 16 * MiB : 8 * MiB;
	g_assert_cmpuint ((guint64) json_object_get_int_member (info, "cluster-size"), ==, expected_block);
	/* qemu-img compare reports a size difference when the source is not a sector multiple; and
	 * qemu's VHDX driver has no block status, so it would read every byte of a big disk. */
	if (size % 512 == 0 && size < GiB)
		g_assert_true (vmi_test_qemu_img_compare (img, "vhdx", pattern, "raw"));
	if (size >= GiB) {
		g_autofree char *out = NULL;

		/* qemu sees the pattern's last 512 bytes (0xa5) past 4 GiB, and zeros in a hole */
		g_assert_cmpint (vmi_test_sh (&out, "qemu-io -f vhdx -c 'read -P 0xa5 %" G_GUINT64_FORMAT " 512' "
					      "-c 'read -P 0 %" G_GUINT64_FORMAT " 65536' '%s' 2>&1",
					      (guint64) ((size + 511) / 512 * 512 - 512), (guint64) (2 * GiB + 32 * KiB), img),
				 ==, 0);
		g_assert_null (strstr (out, "verification failed"));
		g_assert_nonnull (strstr (out, "read 512/512 bytes"));
	}

	/* The file stays sparse: a >4 GiB disk with 96 blocks of data must not take GiBs. */
	g_assert_cmpint (stat (img, &st), ==, 0);
	g_assert_cmpuint ((guint64) st.st_blocks * 512, <, 200 * MiB);

	source = open_path (img, NULL);
	g_assert_cmpstr (vmi_source_get_info (source)->subformat, ==, subformat != NULL ? subformat : "dynamic");
	g_assert_cmpuint (vmi_source_get_info (source)->cluster_size, ==, expected_block);
	creator = fact_str (source, "creator");
	g_assert_true (g_str_has_prefix (creator, "vmimaged "));
	g_assert_cmpuint (fact_u64 (source, "log-size"), ==, MiB);
	g_assert_false (fact_bool (source, "log-replayed"));
	g_assert_cmpuint (fact_u64 (source, "logical-sector-size"), ==, 512);
	g_assert_cmpint (fact_bool (source, "leave-blocks-allocated"), ==, g_strcmp0 (subformat, "fixed") == 0);
	/* Reading our image back gives the source. */
	dump_raw (source, raw);
	g_assert_cmpint (truncate (pattern, (off_t) vmi_source_get_virtual_size (source)), ==, 0);
	g_assert_true (sparse_files_equal (pattern, raw));
	vmi_test_save_seed ("vhdx", img);
	g_remove (img);
	g_remove (raw);
	g_remove (pattern);
}

static void
test_writer (void)
{
	char *dir;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	check_writer (dir, NULL, 5 * MiB, 0);
	check_writer (dir, NULL, 0, 0);
	check_writer (dir, "fixed", 512, 0);
	check_writer (dir, "dynamic", 5 * MiB + 3 * 512, MiB);
	check_writer (dir, "dynamic", 7 * MiB + 100, 0);
	check_writer (dir, "fixed", 5 * MiB + 3 * 512, 0);
	check_writer (dir, "fixed", 9 * MiB, 2 * MiB);
	check_writer (dir, "dynamic", 3 * MiB, 256 * MiB);
	vmi_test_tmpdir_free (dir);
}

static void
test_writer_big (void)
{
	char *dir;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	check_writer (dir, "dynamic", 4 * GiB + 5 * MiB + 512 * 3, 0);
	vmi_test_tmpdir_free (dir);
}

/* VHDX to VHDX through the engine: the reader and the writer agree with each other. */
static void
test_writer_from_vhdx (void)
{
	char *dir;
	g_autofree char *img = NULL;
	g_autofree char *copy = NULL;
	g_autoptr(GError) error = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	dir = vmi_test_tmpdir_new ();
	img = g_build_filename (dir, "src.vhdx", NULL);
	copy = g_build_filename (dir, "copy.vhdx", NULL);
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img create -q -f vhdx '%s' 40M && "
				      "qemu-io -f vhdx -c 'write -P 0x42 1M 3M' -c 'write -z 8M 8M' -c 'write -P 7 39M 1M' '%s' >/dev/null",
				      img, img),
			 ==, 0);
	g_assert_true (convert_to_vhdx (&vmi_vhdx_plugin, img, copy, NULL, &error));
	g_assert_no_error (error);
	g_assert_true (vmi_test_qemu_img_check (copy, "vhdx"));
	g_assert_true (vmi_test_qemu_img_compare (img, "vhdx", copy, "vhdx"));
	vmi_test_tmpdir_free (dir);
}

static void
test_writer_bad_options (void)
{
	static const char *const bad[] = {
		"{'subformat': <'differencing'>}",
		"{'block-size': <uint64 3145728>}",
		"{'block-size': <uint64 524288>}",
		"{'block-size': <uint64 536870912>}",
	};

	for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) options = g_variant_ref_sink (g_variant_new_parsed (bad[i]));
		VmiImage *image = vmi_vhdx_plugin.create (-1, 8 * MiB, options, &error);

		g_assert_null (image);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
		g_test_message ("%s: %s", bad[i], error->message);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) options = g_variant_ref_sink (g_variant_new_parsed ("@a{sv} {}"));

		g_assert_null (vmi_vhdx_plugin.create (-1, 65 * 1024 * 1024 * MiB, options, &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	}
}

/* --- log replay ---------------------------------------------------------------------------- */

/*
 * Appends to img a log entry with the given descriptors. Data descriptors take their 4 KiB
 * sectors from data (count of them); zero descriptors are (offset, length) pairs.
 */
typedef struct {
	guint64 file_offset;
	guint64 zero_length; /* 0: a data descriptor */
	const guint8 *data;  /* 4 KiB */
} TestDesc;

static void
build_log_entry (guint8 *log, guint64 log_length, guint64 pos, guint64 sequence, guint32 tail,
		 const guint8 *log_guid, guint64 flushed, guint64 last, const TestDesc *descs, guint n_descs)
{
	guint n_data = 0, desc_sectors = (64 + 32 * n_descs + 4095) / 4096, k = 0;
	g_autofree guint8 *e = NULL;
	guint32 length;

	for (guint i = 0; i < n_descs; i++)
		n_data += descs[i].zero_length == 0;
	length = (desc_sectors + n_data) * 4096;
	e = g_malloc0 (length);
	wr32 (e, 0x65676f6c);
	wr32 (e + 8, length);
	wr32 (e + 12, tail);
	wr64 (e + 16, sequence);
	wr32 (e + 24, n_descs);
	memcpy (e + 32, log_guid, 16);
	wr64 (e + 48, flushed);
	wr64 (e + 56, last);
	for (guint i = 0; i < n_descs; i++) {
		guint8 *d = e + 64 + 32 * i;

		if (descs[i].zero_length != 0) {
			wr32 (d, 0x6f72657a);
			wr64 (d + 8, descs[i].zero_length);
		} else {
			guint8 *s = e + (desc_sectors + k++) * 4096;

			wr32 (d, 0x63736564);
			memcpy (d + 4, descs[i].data + 4092, 4);
			memcpy (d + 8, descs[i].data, 8);
			wr32 (s, 0x61746164);
			wr32 (s + 4, (guint32) (sequence >> 32));
			memcpy (s + 8, descs[i].data + 8, 4084);
			wr32 (s + 4092, (guint32) sequence);
		}
		wr64 (d + 16, descs[i].file_offset);
		wr64 (d + 24, sequence);
	}
	wr32 (e + 4, vhdx_crc32c (e, length));
	/* the log is circular: an entry may run past its end and go on at its start */
	for (guint32 i = 0; i < length; i++)
		log[(pos + i) % log_length] = e[i];
}

typedef struct {
	char *dir;
	char *img;      /* the dirty image */
	GBytes *before; /* its bytes, to check we never write */
	guint64 block_size;
	guint64 new_block_offset;
} DirtyImage;

/*
 * A qemu-made 16 MiB dynamic image (2 MiB blocks) with data in block 0, given a log whose
 * active sequence (entries 7 and 8, after a stale entry 3) does what a crash between logging
 * and writing leaves undone:
 *  - entry 7 rewrites the first BAT sector, so block 5 is allocated at a new offset at the end
 *    of the file (whose data is already there) and block 0's entry is unchanged;
 *  - entry 8 overwrites the first 4 KiB of block 0's payload and zeroes the next 4 KiB.
 */
static void
make_dirty_image (DirtyImage *d, gboolean break_crc, gboolean truncate_file, gboolean wrap)
{
	g_autofree char *clean = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autofree guint8 *img = NULL;
	gsize len;
	guint8 *h, *log;
	guint64 bat, log_offset, log_length, block0, pos3, pos7, pos8;
	guint8 log_guid[16], sector[4096], bat_sector[4096], stale[4096];
	TestDesc e7[1], e8[2], e3[1];

	d->dir = vmi_test_tmpdir_new ();
	clean = g_build_filename (d->dir, "clean.vhdx", NULL);
	d->img = g_build_filename (d->dir, "dirty.vhdx", NULL);
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img create -q -f vhdx -o block_size=2M '%s' 16M && "
				      "qemu-io -f vhdx -c 'write -P 0x61 0 2M' '%s' >/dev/null",
				      clean, clean),
			 ==, 0);
	d->block_size = 2 * MiB;
	bytes = load (clean);
	len = g_bytes_get_size (bytes);
	/* Room at the end for block 5's new home, filled with its data. */
	d->new_block_offset = (len + MiB - 1) / MiB * MiB;
	img = g_malloc0 (d->new_block_offset + d->block_size);
	memcpy (img, g_bytes_get_data (bytes, NULL), len);
	memset (img + d->new_block_offset, 0x77, d->block_size);

	h = current_header (img);
	for (guint i = 0; i < 16; i++)
		log_guid[i] = (guint8) (0x10 + i);
	memcpy (h + 48, log_guid, 16);
	log_offset = rd64 (h + 72);
	log_length = rd32 (h + 68);
	log = img + log_offset;
	bat = region_offset (img, guid_bat);
	block0 = (rd64 (img + bat) >> 20) * MiB;
	g_assert_cmpuint (rd64 (img + bat) & 7, ==, 6);

	/* entry 7: the BAT sector with block 5 allocated */
	memcpy (bat_sector, img + bat, 4096);
	wr64 (bat_sector + 5 * 8, 6 | ((d->new_block_offset / MiB) << 20));
	e7[0] = (TestDesc) { bat, 0, bat_sector };
	/* entry 8: new payload for block 0's first sector, zeros for its second */
	for (guint i = 0; i < sizeof sector; i++)
		sector[i] = (guint8) (i * 7 + 1);
	e8[0] = (TestDesc) { block0, 0, sector };
	e8[1] = (TestDesc) { block0 + 4096, 4096, NULL };
	/* a stale entry from an older sequence, which must not be replayed */
	memset (stale, 0xee, sizeof stale);
	e3[0] = (TestDesc) { block0 + 8192, 0, stale };

	/* wrap: entry 7 starts in the log's last sector and ends in its first, 8 follows */
	pos3 = wrap ? 64 * KiB : 0;
	pos7 = wrap ? log_length - 4 * KiB : 64 * KiB;
	pos8 = (pos7 + 8192) % log_length;
	build_log_entry (log, log_length, pos3, 3, (guint32) pos3, log_guid, MiB, MiB, e3, 1);
	build_log_entry (log, log_length, pos7, 7, (guint32) pos7, log_guid, d->new_block_offset,
			 d->new_block_offset + d->block_size, e7, 1);
	build_log_entry (log, log_length, pos8, 8, (guint32) pos7, log_guid, d->new_block_offset,
			 d->new_block_offset + d->block_size, e8, 2);
	if (break_crc)
		log[pos8 + 100] ^= 1;
	fix_checksums (img);
	save (d->img, img, truncate_file ? d->new_block_offset - MiB : d->new_block_offset + d->block_size);
	d->before = load (d->img);
}

static void
dirty_image_clear (DirtyImage *d)
{
	g_bytes_unref (d->before);
	g_free (d->img);
	vmi_test_tmpdir_free (d->dir);
}

static void
check_log_replay (gboolean wrap)
{
	DirtyImage d = { 0 };
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) after = NULL;
	g_autofree guint8 *buf = g_malloc (2 * MiB);
	g_autofree char *raw = NULL;
	g_autofree char *repaired = NULL;
	VmiImage *image;

	if (!vmi_test_require_qemu_img ())
		return;
	make_dirty_image (&d, FALSE, FALSE, wrap);
	/* qemu-img refuses a read-only open of a dirty log, so it cannot be our oracle directly */
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img info -f vhdx '%s' >/dev/null 2>&1", d.img), !=, 0);

	source = open_path (d.img, NULL);
	image = vmi_source_get_image (source);
	g_assert_true (fact_bool (source, "log-replayed"));
	g_assert_cmpuint (fact_u64 (source, "log-entries-replayed"), ==, 2);
	/* dirty on disk: unsafe to hand to another tool as it is */
	g_assert_false (vmi_source_is_safe (source));
	g_assert_cmpuint (vmi_source_get_info (source)->unsafe_reasons->len, ==, 1);
	g_assert_cmpuint (fact_u64 (source, "allocated-blocks"), ==, 2);

	g_assert_true (vmi_vhdx_plugin.read (image, 0, buf, 3 * 4096, &error));
	g_assert_no_error (error);
	for (guint i = 0; i < 4096; i++)
		g_assert_cmpuint (buf[i], ==, (guint8) (i * 7 + 1));
	for (guint i = 4096; i < 8192; i++)
		g_assert_cmpuint (buf[i], ==, 0);
	/* the stale entry 3 was not replayed */
	for (guint i = 8192; i < 3 * 4096; i++)
		g_assert_cmpuint (buf[i], ==, 0x61);
	g_assert_true (vmi_vhdx_plugin.read (image, 5 * d.block_size, buf, d.block_size, &error));
	for (guint i = 0; i < d.block_size; i++)
		g_assert_cmpuint (buf[i], ==, 0x77);

	/* The source is untouched. */
	after = load (d.img);
	g_assert_true (g_bytes_equal (after, d.before));

	/*
	 * qemu-img check -r all replays the log into a copy; that copy must read like ours. Not
	 * when the log wraps: qemu takes entry 8 alone as a sequence (it never checks that the
	 * head's tail is inside the sequence, as [MS-VHDX] 2.3.3 requires) and drops entry 7.
	 */
	if (wrap) {
		dirty_image_clear (&d);
		return;
	}
	raw = g_build_filename (d.dir, "replayed.raw", NULL);
	repaired = g_build_filename (d.dir, "repaired.vhdx", NULL);
	dump_raw (source, raw);
	g_assert_cmpint (vmi_test_sh (NULL, "cp '%s' '%s' && qemu-img check -q -r all -f vhdx '%s' >/dev/null 2>&1; "
				      "qemu-img info -f vhdx '%s' >/dev/null",
				      d.img, repaired, repaired, repaired),
			 ==, 0);
	g_assert_true (vmi_test_qemu_img_compare (repaired, "vhdx", raw, "raw"));
	vmi_test_save_seed ("vhdx", d.img);
	dirty_image_clear (&d);
}

static void
test_log_replay (void)
{
	check_log_replay (FALSE);
}

static void
test_log_replay_wrapped (void)
{
	check_log_replay (TRUE);
}

/*
 * Block status inside a present block follows the file's holes, except where the replayed log
 * writes: block 0 of the dirty image, its first 64 KiB punched out of the file, is data where
 * entry 8 lands (the first 8 KiB) and zeros after it, up to the data qemu wrote.
 */
static void
test_log_hole_is_data (void)
{
	DirtyImage d = { 0 };
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autofree guint8 *buf = g_malloc (64 * KiB);
	VmiExtent extent = { 0 };
	VmiImage *image;
	guint8 *img;
	guint64 block0;
	int fd;

	if (!vmi_test_require_qemu_img ())
		return;
	make_dirty_image (&d, FALSE, FALSE, FALSE);
	bytes = load (d.img);
	img = (guint8 *) g_bytes_get_data (bytes, NULL);
	block0 = (rd64 (img + region_offset (img, guid_bat)) >> 20) * MiB;
	fd = open (d.img, O_RDWR);
	g_assert_cmpint (fd, >=, 0);
	if (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) block0, 64 * KiB) != 0) {
		close (fd);
		dirty_image_clear (&d);
		g_test_skip ("the file system cannot punch holes");
		return;
	}
	close (fd);

	source = open_path (d.img, NULL);
	image = vmi_source_get_image (source);
	/* The log writes the start of the block, so all of it from there on counts as data. */
	g_assert_true (vmi_vhdx_plugin.block_status (image, 0, 16 * MiB, &extent, &error));
	g_assert_no_error (error);
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, 2 * MiB);
	g_assert_true (vmi_vhdx_plugin.block_status (image, 8 * KiB, 16 * MiB, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_ZERO);
	g_assert_cmpuint (extent.length, ==, 56 * KiB);
	g_assert_true (vmi_vhdx_plugin.block_status (image, 64 * KiB, 16 * MiB, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, 2 * MiB - 64 * KiB);
	g_assert_true (vmi_vhdx_plugin.read (image, 0, buf, 64 * KiB, &error));
	g_assert_no_error (error);
	for (guint i = 0; i < 4096; i++)
		g_assert_cmpuint (buf[i], ==, (guint8) (i * 7 + 1));
	for (guint i = 4096; i < 64 * KiB; i++)
		g_assert_cmpuint (buf[i], ==, 0);
	dirty_image_clear (&d);
}

static void
test_log_bad_crc (void)
{
	DirtyImage d = { 0 };
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	/* With entry 8 broken, 7 alone is a valid sequence (its tail is itself): replay that. */
	make_dirty_image (&d, TRUE, FALSE, FALSE);
	source = open_path (d.img, NULL);
	g_assert_cmpuint (fact_u64 (source, "log-entries-replayed"), ==, 1);
	g_assert_cmpuint (fact_u64 (source, "allocated-blocks"), ==, 2);
	dirty_image_clear (&d);
}

static void
test_log_no_valid_sequence (void)
{
	DirtyImage d = { 0 };
	g_autoptr(GBytes) bytes = NULL;
	g_autofree guint8 *img = NULL;
	gsize len;
	guint64 log_offset;

	if (!vmi_test_require_qemu_img ())
		return;
	make_dirty_image (&d, FALSE, FALSE, FALSE);
	bytes = load (d.img);
	len = g_bytes_get_size (bytes);
	img = g_memdup2 (g_bytes_get_data (bytes, NULL), len);
	log_offset = rd64 (current_header (img) + 72);
	/* a bit flip in each entry: no valid entry is left */
	img[log_offset + 100] ^= 1;
	img[log_offset + 64 * KiB + 100] ^= 1;
	img[log_offset + 64 * KiB + 8192 + 100] ^= 1;
	save (d.img, img, len);
	expect_open_error (d.img, VMI_ERROR_CORRUPT_IMAGE);
	dirty_image_clear (&d);
}

static void
test_log_truncated_file (void)
{
	DirtyImage d = { 0 };

	if (!vmi_test_require_qemu_img ())
		return;
	/* The log says the file was at least FlushedFileOffset long; it is shorter now. */
	make_dirty_image (&d, FALSE, TRUE, FALSE);
	expect_open_error (d.img, VMI_ERROR_CORRUPT_IMAGE);
	dirty_image_clear (&d);
}

/* Random values in the log entries' fields, with each entry's CRC-32C recomputed. */
static void
test_log_mutations (void)
{
	DirtyImage d = { 0 };
	g_autoptr(GRand) rand = g_rand_new_with_seed (4242);
	g_autofree guint8 *img = NULL;
	g_autofree guint8 *orig_log = NULL;
	g_autofree guint8 *buf = g_malloc (2 * MiB);
	guint64 log_offset, log_length;
	static const guint64 entries[] = { 0, 64 * KiB, 64 * KiB + 8192 };
	guint opened = 0, replayed = 0;
	gsize len;
	int fd;

	if (!vmi_test_require_qemu_img ())
		return;
	make_dirty_image (&d, FALSE, FALSE, FALSE);
	len = g_bytes_get_size (d.before);
	img = g_memdup2 (g_bytes_get_data (d.before, NULL), len);
	log_offset = rd64 (current_header (img) + 72);
	log_length = rd32 (current_header (img) + 68);
	orig_log = g_memdup2 (img + log_offset, log_length);
	fd = open (d.img, O_WRONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	for (guint iter = 0; iter < 300; iter++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(VmiSource) source = NULL;
		guint8 *log = img + log_offset;

		memcpy (log, orig_log, log_length);
		for (guint k = 0, n = g_rand_int_range (rand, 1, 3); k < n; k++) {
			guint64 e = entries[g_rand_int_range (rand, 0, G_N_ELEMENTS (entries))];
			/* the entry header and first descriptors, or the first data sector's ends */
			guint64 at = e + (g_rand_boolean (rand) ? (guint64) g_rand_int_range (rand, 0, 160)
							      : 4096 + (g_rand_boolean (rand) ? 4 : 4092));

			if (g_rand_boolean (rand))
				log[at] ^= (guint8) (1u << g_rand_int_range (rand, 0, 8));
			else
				wr32 (log + (at & ~3ull), (guint32[]) { 0, 1, 4096, 8192, 0x100000, 0xfffff000u,
									  g_rand_int (rand) }[g_rand_int_range (rand, 0, 7)]);
		}
		for (guint i = 0; i < G_N_ELEMENTS (entries); i++) {
			guint8 *e = log + entries[i];
			guint32 elen = rd32 (e + 8);

			if (elen % 4096 == 0 && elen > 0 && entries[i] + elen <= log_length) {
				wr32 (e + 4, 0);
				wr32 (e + 4, vhdx_crc32c (e, elen));
			}
		}
		g_assert_cmpint (pwrite (fd, log, log_length, (off_t) log_offset), ==, (ssize_t) log_length);
		source = open_path (d.img, &error);
		if (source == NULL) {
			g_assert_true (error->domain == VMI_ERROR);
			g_assert_true (error->code == VMI_ERROR_CORRUPT_IMAGE || error->code == VMI_ERROR_NOT_SUPPORTED);
			continue;
		}
		opened++;
		replayed += fact_u64 (source, "log-entries-replayed") == 2;
		for (guint64 off = 0; off < vmi_source_get_virtual_size (source); off += 2 * MiB) {
			g_assert_true (vmi_vhdx_plugin.read (vmi_source_get_image (source), off, buf, 2 * MiB, &error));
			g_assert_no_error (error);
		}
	}
	close (fd);
	g_test_message ("%u of 300 log mutants opened, %u replayed both entries", opened, replayed);
	g_assert_cmpuint (opened, >, 0);
	dirty_image_clear (&d);
}

/* --- bad inputs ---------------------------------------------------------------------------- */

typedef struct {
	char *dir;
	guint8 *img;
	gsize len;
} Base;

/* A small valid image from our writer: 12 MiB, 4 MiB blocks, the first two allocated. */
static void
base_init (Base *b)
{
	g_autofree char *path = NULL;
	g_autoptr(GVariant) options = g_variant_ref_sink (g_variant_new_parsed ("{'block-size': <uint64 4194304>}"));
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	guint8 data[4096];
	VmiImage *image;
	int fd;

	b->dir = vmi_test_tmpdir_new ();
	path = g_build_filename (b->dir, "base.vhdx", NULL);
	fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	image = vmi_vhdx_plugin.create (fd, 12 * MiB, options, &error);
	g_assert_no_error (error);
	memset (data, 0x99, sizeof data);
	g_assert_true (vmi_vhdx_plugin.write (image, 0, data, sizeof data, &error));
	g_assert_true (vmi_vhdx_plugin.write (image, 4 * MiB, data, sizeof data, &error));
	g_assert_true (vmi_vhdx_plugin.finish (image, &error));
	g_assert_no_error (error);
	vmi_vhdx_plugin.close (image);
	close (fd);
	bytes = load (path);
	b->len = g_bytes_get_size (bytes);
	b->img = g_memdup2 (g_bytes_get_data (bytes, NULL), b->len);
}

static void
base_clear (Base *b)
{
	g_free (b->img);
	vmi_test_tmpdir_free (b->dir);
}

/* Writes a copy of the base, edited by the caller beforehand, and expects code on open. */
static void
expect_bad (Base *b, const char *name, gsize len, VmiError code)
{
	g_autofree char *path = g_build_filename (b->dir, name, NULL);

	save (path, b->img, len);
	expect_open_error (path, code);
}

static void
test_base_is_valid (void)
{
	Base b = { 0 };
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;

	base_init (&b);
	path = g_build_filename (b.dir, "ok.vhdx", NULL);
	save (path, b.img, b.len);
	source = open_path (path, NULL);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 12 * MiB);
	g_assert_cmpuint (fact_u64 (source, "allocated-blocks"), ==, 2);
	g_assert_cmpuint (fact_u64 (source, "header-sequence"), ==, 2);
	vmi_test_save_seed ("vhdx", path);
	base_clear (&b);
}

static void
test_bad_short (void)
{
	Base b = { 0 };

	base_init (&b);
	expect_bad (&b, "empty.vhdx", 0, VMI_ERROR_UNKNOWN_FORMAT);
	expect_bad (&b, "one-byte.vhdx", 1, VMI_ERROR_UNKNOWN_FORMAT);
	expect_bad (&b, "signature-only.vhdx", 8, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad (&b, "header-section-cut.vhdx", 300 * KiB, VMI_ERROR_CORRUPT_IMAGE);
	/* the metadata region (after the BAT) is cut off */
	expect_bad (&b, "cut.vhdx", 3 * MiB, VMI_ERROR_CORRUPT_IMAGE);
	b.img[0] = 'V';
	expect_bad (&b, "identifier.vhdx", b.len, VMI_ERROR_UNKNOWN_FORMAT);
	base_clear (&b);
}

static void
test_bad_headers (void)
{
	Base b = { 0 };
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;

	base_init (&b);
	/* One bad header: the other one is used. */
	b.img[128 * KiB + 200] ^= 1;
	path = g_build_filename (b.dir, "one-header.vhdx", NULL);
	save (path, b.img, b.len);
	source = open_path (path, NULL);
	g_assert_cmpuint (fact_u64 (source, "header-sequence"), ==, 1);
	/* Both bad. */
	b.img[64 * KiB + 200] ^= 1;
	expect_bad (&b, "headers-crc.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	b.img[64 * KiB + 200] ^= 1;
	b.img[128 * KiB + 200] ^= 1;
	/* A version we do not know, with a correct CRC. */
	wr16 (current_header (b.img) + 66, 2);
	fix_checksums (b.img);
	expect_bad (&b, "header-version.vhdx", b.len, VMI_ERROR_NOT_SUPPORTED);
	base_clear (&b);
}

static void
test_bad_region_table (void)
{
	Base b = { 0 };
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	guint8 *bat_entry;

	base_init (&b);
	/* One bad copy: the other is used. */
	b.img[192 * KiB + 100] ^= 1;
	path = g_build_filename (b.dir, "one-table.vhdx", NULL);
	save (path, b.img, b.len);
	source = open_path (path, NULL);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 12 * MiB);
	b.img[256 * KiB + 100] ^= 1;
	expect_bad (&b, "tables-crc.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	b.img[192 * KiB + 100] ^= 1;
	b.img[256 * KiB + 100] ^= 1;

	/* The BAT region beyond the end of the file (both copies, CRCs fixed). */
	bat_entry = region_entry (b.img, guid_bat);
	wr64 (bat_entry + 16, 1024 * GiB);
	memcpy (b.img + 256 * KiB, b.img + 192 * KiB, 64 * KiB);
	fix_checksums (b.img);
	expect_bad (&b, "bat-beyond-eof.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	wr64 (bat_entry + 16, G_MAXUINT64 - MiB + 1);
	memcpy (b.img + 256 * KiB, b.img + 192 * KiB, 64 * KiB);
	fix_checksums (b.img);
	expect_bad (&b, "bat-offset-overflow.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	/* An unknown region marked required. */
	wr64 (bat_entry + 16, 2 * MiB);
	bat_entry[0] ^= 0xff;
	wr32 (bat_entry + 28, 1);
	memcpy (b.img + 256 * KiB, b.img + 192 * KiB, 64 * KiB);
	fix_checksums (b.img);
	expect_bad (&b, "region-unknown-required.vhdx", b.len, VMI_ERROR_NOT_SUPPORTED);
	/* The same, not required: then the BAT is missing. */
	wr32 (bat_entry + 28, 0);
	memcpy (b.img + 256 * KiB, b.img + 192 * KiB, 64 * KiB);
	fix_checksums (b.img);
	expect_bad (&b, "region-no-bat.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	base_clear (&b);
}

/* Edits a copy of the base's metadata with fn, expecting code. */
static void
expect_bad_metadata (const char *name, void (*fn) (guint8 *img), VmiError code)
{
	Base b = { 0 };

	base_init (&b);
	fn (b.img);
	expect_bad (&b, name, b.len, code);
	base_clear (&b);
}

/* The size item becomes an unknown, optional one: the size is then missing. */
static void
md_drop_size (guint8 *img)
{
	guint8 *e = metadata_entry (img, guid_virtual_disk_size);

	e[0] ^= 0xff;
	wr32 (e + 24, 0);
}

static void
md_drop_size_required (guint8 *img)
{
	guint8 *e = metadata_entry (img, guid_virtual_disk_size);

	e[0] ^= 0xff;
	wr32 (e + 24, 4);
}

static void
md_block_3m (guint8 *img)
{
	wr32 (metadata_item (img, guid_file_parameters), 3 * MiB);
}

static void
md_block_512k (guint8 *img)
{
	wr32 (metadata_item (img, guid_file_parameters), 512 * KiB);
}

static void
md_block_512m (guint8 *img)
{
	wr32 (metadata_item (img, guid_file_parameters), 512 * MiB);
}

static void
md_logical_1024 (guint8 *img)
{
	wr32 (metadata_item (img, guid_logical_sector), 1024);
}

static void
md_physical_520 (guint8 *img)
{
	wr32 (metadata_item (img, guid_physical_sector), 520);
}

static void
md_size_absurd (guint8 *img)
{
	wr64 (metadata_item (img, guid_virtual_disk_size), G_MAXUINT64 - 511);
}

static void
md_size_65t (guint8 *img)
{
	wr64 (metadata_item (img, guid_virtual_disk_size), 65 * 1024 * GiB);
}

static void
md_size_unaligned (guint8 *img)
{
	wr64 (metadata_item (img, guid_virtual_disk_size), 12 * MiB - 100);
}

/* 64 TiB with 4 MiB blocks needs a 128 MiB BAT; the region is 1 MiB. */
static void
md_size_bat_too_small (guint8 *img)
{
	wr64 (metadata_item (img, guid_virtual_disk_size), 64 * 1024 * GiB);
}

static void
md_item_outside (guint8 *img)
{
	wr32 (metadata_entry (img, guid_logical_sector) + 16, 0xfffffff0u);
}

static void
md_item_too_long (guint8 *img)
{
	wr32 (metadata_entry (img, guid_logical_sector) + 20, 2 * MiB);
}

static void
md_count_huge (guint8 *img)
{
	guint8 *md = img + region_offset (img, guid_metadata);

	wr16 (md + 10, 0xffff);
}

static void
md_signature (guint8 *img)
{
	img[region_offset (img, guid_metadata)] = 'M';
}

static void
md_unknown_required (guint8 *img)
{
	guint8 *md = img + region_offset (img, guid_metadata);
	guint8 *e = md + 32 + 32 * 5;

	memset (e, 0x42, 16);
	wr32 (e + 16, 0);
	wr32 (e + 20, 0);
	wr32 (e + 24, 4);
	wr16 (md + 10, 6);
}

static void
md_has_parent_no_locator (guint8 *img)
{
	wr32 (metadata_item (img, guid_file_parameters) + 4, 2);
}

static void
test_bad_metadata (void)
{
	expect_bad_metadata ("md-missing-size.vhdx", md_drop_size, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("md-unknown-required.vhdx", md_drop_size_required, VMI_ERROR_NOT_SUPPORTED);
	expect_bad_metadata ("md-unknown-required2.vhdx", md_unknown_required, VMI_ERROR_NOT_SUPPORTED);
	expect_bad_metadata ("block-3m.vhdx", md_block_3m, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("block-512k.vhdx", md_block_512k, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("block-512m.vhdx", md_block_512m, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("logical-1024.vhdx", md_logical_1024, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("physical-520.vhdx", md_physical_520, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("size-absurd.vhdx", md_size_absurd, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("size-65t.vhdx", md_size_65t, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("size-unaligned.vhdx", md_size_unaligned, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("size-bat-small.vhdx", md_size_bat_too_small, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("md-item-outside.vhdx", md_item_outside, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("md-item-long.vhdx", md_item_too_long, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("md-count.vhdx", md_count_huge, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("md-signature.vhdx", md_signature, VMI_ERROR_CORRUPT_IMAGE);
	expect_bad_metadata ("parent-no-locator.vhdx", md_has_parent_no_locator, VMI_ERROR_CORRUPT_IMAGE);
}

static void
test_bad_bat (void)
{
	Base b = { 0 };
	guint8 *bat;

	base_init (&b);
	bat = b.img + region_offset (b.img, guid_bat);
	g_assert_cmpuint (rd64 (bat) & 7, ==, 6);
	/* block 1 points 1 TiB into a 16 MiB file */
	wr64 (bat + 8, 6 | ((1024 * 1024ull) << 20));
	expect_bad (&b, "bat-entry-beyond-eof.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	/* block 1's last byte one MiB past the end */
	wr64 (bat + 8, 6 | ((b.len / MiB - 3) << 20));
	expect_bad (&b, "bat-entry-past-end.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	/* onto the metadata region, and onto the BAT itself */
	wr64 (bat + 8, 6 | ((region_offset (b.img, guid_metadata) / MiB) << 20));
	expect_bad (&b, "bat-entry-on-metadata.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	wr64 (bat + 8, 6 | ((region_offset (b.img, guid_bat) / MiB) << 20));
	expect_bad (&b, "bat-entry-on-bat.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	/* into the header section */
	wr64 (bat + 8, 6);
	expect_bad (&b, "bat-entry-header.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	/* reserved state 4, partially present without a parent */
	wr64 (bat + 8, 4 | (4ull << 20));
	expect_bad (&b, "bat-entry-state4.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	wr64 (bat + 8, 7 | (4ull << 20));
	expect_bad (&b, "bat-entry-partial.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	base_clear (&b);
}

/*
 * A small fuzzer with the checksums kept right, so every mutation reaches the parser behind
 * them: random values in the header, region table, metadata and BAT fields. Each image must
 * open and read without a crash, or fail with a named error.
 */
static void
test_mutations (void)
{
	Base b = { 0 };
	g_autoptr(GRand) rand = g_rand_new_with_seed (20261125);
	g_autofree char *path = NULL;
	g_autofree guint8 *orig = NULL;
	g_autofree guint8 *buf = g_malloc (MiB);
	guint64 md, bat;
	guint opened = 0;
	int fd;

	base_init (&b);
	path = g_build_filename (b.dir, "mutant.vhdx", NULL);
	orig = g_memdup2 (b.img, b.len);
	md = region_offset (b.img, guid_metadata);
	bat = region_offset (b.img, guid_bat);
	save (path, b.img, b.len);
	fd = open (path, O_WRONLY | O_CLOEXEC);
	for (guint iter = 0; iter < 400; iter++) {
		/* where the fields are: header 2 (current), region table 1, metadata table and items, BAT */
		const guint64 areas[][2] = {
			{ 128 * KiB, 80 }, { 192 * KiB, 80 }, { md, 32 + 5 * 32 }, { md + 64 * KiB, 40 }, { bat, 24 },
		};
		g_autoptr(GError) error = NULL;
		g_autoptr(VmiSource) source = NULL;
		guint n = g_rand_int_range (rand, 1, 4);

		memcpy (b.img, orig, b.len);
		for (guint k = 0; k < n; k++) {
			guint a = g_rand_int_range (rand, 0, G_N_ELEMENTS (areas));
			guint64 at = areas[a][0] + (guint64) g_rand_int_range (rand, 0, (gint32) areas[a][1]);

			switch (g_rand_int_range (rand, 0, 4)) {
			case 0:
				b.img[at] ^= (guint8) (1u << g_rand_int_range (rand, 0, 8));
				break;
			case 1:
				wr32 (b.img + (at & ~3ull), g_rand_int (rand));
				break;
			case 2: /* a small or a boundary value */
				wr32 (b.img + (at & ~3ull), (guint32[]) { 0, 1, 512, 4096, MiB, 0xffffffffu }[g_rand_int_range (rand, 0, 6)]);
				break;
			default:
				wr64 (b.img + (at & ~7ull), (guint64) g_rand_int (rand) << g_rand_int_range (rand, 0, 40));
				break;
			}
		}
		/* keep the second region table equal to the first, as a writer would */
		memcpy (b.img + 256 * KiB, b.img + 192 * KiB, 64 * KiB);
		fix_checksums (b.img);
		/* only the edited parts: rewriting 12 MiB 400 times costs seconds of I/O */
		g_assert_cmpint (fd, >=, 0);
		g_assert_cmpint (pwrite (fd, b.img, 320 * KiB, 0), ==, 320 * KiB);
		g_assert_cmpint (pwrite (fd, b.img + md, 68 * KiB, (off_t) md), ==, 68 * KiB);
		g_assert_cmpint (pwrite (fd, b.img + bat, 4 * KiB, (off_t) bat), ==, 4 * KiB);
		source = open_path (path, &error);
		if (source == NULL) {
			g_assert_nonnull (error);
			g_assert_true (error->domain == VMI_ERROR);
			g_assert_true (error->code == VMI_ERROR_CORRUPT_IMAGE || error->code == VMI_ERROR_NOT_SUPPORTED ||
				       error->code == VMI_ERROR_UNKNOWN_FORMAT);
			g_assert_cmpstr (error->message, !=, "");
			continue;
		}
		opened++;
		{
			VmiImage *image = vmi_source_get_image (source);
			guint64 size = vmi_source_get_virtual_size (source), offset = 0;
			guint steps = 0;

			while (offset < size && steps++ < 64) {
				VmiExtent extent = { 0 };
				gsize len;

				if (!vmi_vhdx_plugin.block_status (image, offset, size - offset, &extent, &error)) {
					g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
					break;
				}
				g_assert_cmpuint (extent.length, >, 0);
				g_assert_cmpuint (extent.length, <=, size - offset);
				len = (gsize) MIN (extent.length, MiB);
				g_assert_true (vmi_vhdx_plugin.read (image, offset, buf, len, &error));
				g_assert_no_error (error);
				offset += MAX (extent.length, 1);
			}
		}
	}
	close (fd);
	g_test_message ("%u of 400 mutants opened", opened);
	g_assert_cmpuint (opened, >, 0);
	g_assert_cmpuint (opened, <, 400);
	base_clear (&b);
}

/* Block states that read as zeros: NOT_PRESENT, UNDEFINED and UNMAPPED are holes, ZERO is zero. */
static void
test_block_states (void)
{
	Base b = { 0 };
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	VmiImage *image;
	VmiExtent extent;
	guint8 *bat;
	guint8 buf[4096];

	base_init (&b);
	bat = b.img + region_offset (b.img, guid_bat);
	/* block 1 (allocated) becomes ZERO; its offset is then reserved and ignored */
	wr64 (bat + 8, rd64 (bat + 8) - 6 + 2);
	wr64 (bat + 16, 1 | (4ull << 20));
	path = g_build_filename (b.dir, "states.vhdx", NULL);
	save (path, b.img, b.len);
	source = open_path (path, NULL);
	image = vmi_source_get_image (source);
	g_assert_true (vmi_vhdx_plugin.block_status (image, 0, 12 * MiB, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, 4 * MiB);
	g_assert_true (vmi_vhdx_plugin.block_status (image, 4 * MiB + 512, 12 * MiB, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_ZERO);
	g_assert_cmpuint (extent.length, ==, 4 * MiB - 512);
	g_assert_true (vmi_vhdx_plugin.block_status (image, 8 * MiB, 4 * MiB, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
	g_assert_cmpuint (extent.length, ==, 4 * MiB);
	g_assert_true (vmi_vhdx_plugin.block_status (image, 8 * MiB, 100, &extent, &error));
	g_assert_cmpuint (extent.length, ==, 100);
	g_assert_true (vmi_vhdx_plugin.read (image, 4 * MiB, buf, sizeof buf, &error));
	g_assert_no_error (error);
	for (guint i = 0; i < sizeof buf; i++)
		g_assert_cmpuint (buf[i], ==, 0);
	g_assert_true (vmi_vhdx_plugin.read (image, 4095, buf, 2, &error));
	g_assert_cmpuint (buf[0], ==, 0x99);
	g_assert_cmpuint (buf[1], ==, 0);
	base_clear (&b);
}

/* --- differencing -------------------------------------------------------------------------- */

static void
put_utf16 (guint8 *p, const char *s)
{
	for (gsize i = 0; s[i] != 0; i++)
		wr16 (p + 2 * i, (guint8) s[i]);
}

static void
test_differencing (void)
{
	static const char *const kv[][2] = {
		{ "parent_linkage", "{83ba6cbf-e4c0-4d2f-9bd8-ba3ae7bb3a3f}" },
		{ "relative_path", ".\\parent.vhdx" },
		{ "absolute_win32_path", "\\\\?\\C:\\images\\parent.vhdx" },
	};
	Base b = { 0 };
	g_autofree char *path = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *linkage = NULL;
	const VmiImageInfo *vi;
	guint8 *md, *e, *loc;
	guint32 pos;
	guint8 buf[512];
	VmiExtent extent;

	base_init (&b);
	wr32 (metadata_item (b.img, guid_file_parameters) + 4, 2);
	md = b.img + region_offset (b.img, guid_metadata);
	e = md + 32 + 32 * 5;
	memcpy (e, guid_parent_locator, 16);
	wr32 (e + 16, 128 * KiB);
	wr32 (e + 20, 4096);
	wr32 (e + 24, 4);
	wr16 (md + 10, 6);
	loc = md + 128 * KiB;
	memcpy (loc, guid_vhdx_locator_type, 16);
	wr16 (loc + 18, G_N_ELEMENTS (kv));
	pos = 20 + 12 * G_N_ELEMENTS (kv);
	for (guint i = 0; i < G_N_ELEMENTS (kv); i++) {
		guint8 *ent = loc + 20 + 12 * i;

		wr32 (ent, pos);
		wr16 (ent + 8, (guint16) (2 * strlen (kv[i][0])));
		put_utf16 (loc + pos, kv[i][0]);
		pos += 2 * strlen (kv[i][0]);
		wr32 (ent + 4, pos);
		wr16 (ent + 10, (guint16) (2 * strlen (kv[i][1])));
		put_utf16 (loc + pos, kv[i][1]);
		pos += 2 * strlen (kv[i][1]);
	}
	path = g_build_filename (b.dir, "child.vhdx", NULL);
	save (path, b.img, b.len);
	vmi_test_save_seed ("vhdx", path);

	source = open_path (path, NULL);
	vi = vmi_source_get_info (source);
	g_assert_cmpstr (vi->subformat, ==, "differencing");
	g_assert_true (fact_bool (source, "has-parent"));
	g_assert_false (vmi_source_is_safe (source));
	g_assert_cmpuint (vi->unsafe_reasons->len, ==, 1);
	g_assert_cmpuint (vi->references->len, ==, 2);
	g_assert_cmpstr (g_ptr_array_index (vi->references, 0), ==, ".\\parent.vhdx");
	g_assert_cmpstr (g_ptr_array_index (vi->references, 1), ==, "\\\\?\\C:\\images\\parent.vhdx");
	linkage = fact_str (source, "parent-linkage");
	g_assert_cmpstr (linkage, ==, kv[0][1]);
	g_assert_false (vmi_vhdx_plugin.read (vmi_source_get_image (source), 0, buf, sizeof buf, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_clear_error (&error);
	g_assert_false (vmi_vhdx_plugin.block_status (vmi_source_get_image (source), 0, 512, &extent, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);

	/* An entry pointing outside the locator item. */
	wr32 (loc + 20, 5000);
	expect_bad (&b, "locator-outside.vhdx", b.len, VMI_ERROR_CORRUPT_IMAGE);
	base_clear (&b);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/vhdx/probe", test_probe);
	g_test_add_func ("/vhdx/crc32c", test_crc32c);
	g_test_add_func ("/vhdx/sparse-files-equal", test_sparse_files_equal);
	g_test_add_func ("/vhdx/qemu/images", test_qemu_images);
	g_test_add_func ("/vhdx/qemu/sparse-big", test_qemu_sparse_big);
	g_test_add_func ("/vhdx/qemu/killed-writer", test_qemu_killed_writer);
	g_test_add_func ("/vhdx/corpus/hyperv-dynamic-1G", test_corpus_hyperv);
	g_test_add_func ("/vhdx/corpus/disk2vhd", test_corpus_disk2vhd);
	g_test_add_func ("/vhdx/writer/small", test_writer);
	g_test_add_func ("/vhdx/writer/big-sparse", test_writer_big);
	g_test_add_func ("/vhdx/writer/from-vhdx", test_writer_from_vhdx);
	g_test_add_func ("/vhdx/writer/bad-options", test_writer_bad_options);
	g_test_add_func ("/vhdx/log/replay", test_log_replay);
	g_test_add_func ("/vhdx/log/replay-wrapped", test_log_replay_wrapped);
	g_test_add_func ("/vhdx/log/hole-is-data", test_log_hole_is_data);
	g_test_add_func ("/vhdx/log/bad-crc", test_log_bad_crc);
	g_test_add_func ("/vhdx/log/no-valid-sequence", test_log_no_valid_sequence);
	g_test_add_func ("/vhdx/log/truncated-file", test_log_truncated_file);
	g_test_add_func ("/vhdx/log/mutations", test_log_mutations);
	g_test_add_func ("/vhdx/bad/base-is-valid", test_base_is_valid);
	g_test_add_func ("/vhdx/bad/short", test_bad_short);
	g_test_add_func ("/vhdx/bad/headers", test_bad_headers);
	g_test_add_func ("/vhdx/bad/region-table", test_bad_region_table);
	g_test_add_func ("/vhdx/bad/metadata", test_bad_metadata);
	g_test_add_func ("/vhdx/bad/bat", test_bad_bat);
	g_test_add_func ("/vhdx/bad/mutations", test_mutations);
	g_test_add_func ("/vhdx/block-states", test_block_states);
	g_test_add_func ("/vhdx/differencing", test_differencing);
	return g_test_run ();
}
