/* Tests of the VMDK plugin, with qemu-img as the oracle for images it makes and reads. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_vmdk_plugin;
extern const VmiFormatPlugin vmi_raw_plugin;

#define KiB 1024u
#define MiB (1024u * KiB)
#define GiB (1024ull * MiB)

/* Sparse header field offsets (VMware Virtual Disk Format 1.1, SparseExtentHeader). */
#define H_VERSION 4
#define H_CAPACITY 12
#define H_GRAIN 20
#define H_DESC_OFFSET 28
#define H_DESC_SIZE 36
#define H_NUM_GTES 44
#define H_GD_OFFSET 56

typedef VmiTestDirFixture Fixture;

/* Opens path with its folder known, as the daemon does for a path it resolved itself. */
static VmiSource *
open_in_dir (const char *path, gboolean with_dir, GError **error)
{
	g_autofree char *dirname = g_path_get_dirname (path);
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	int dir_fd = with_dir ? open (dirname, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	VmiSource *source;

	g_assert_cmpint (fd, >=, 0);
	source = vmi_source_open_with (&vmi_vmdk_plugin, fd, dir_fd, NULL, error);
	close (fd);
	if (dir_fd >= 0)
		close (dir_fd);
	return source;
}

/* Our vmdk (with its folder) to raw through the engine. */
static void
vmdk_to_raw (const char *vmdk, const char *raw)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = open_in_dir (vmdk, TRUE, &error);

	g_assert_no_error (error);
	g_assert_true (vmi_test_convert_source (source, &vmi_raw_plugin, raw, NULL, &error));
	g_assert_no_error (error);
}

static void
raw_to_vmdk (const char *raw, const char *vmdk, const char *subformat)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = vmi_test_open (&vmi_raw_plugin, raw, NULL);
	g_autoptr(GVariant) options = g_variant_ref_sink (
		g_variant_new_parsed ("{'subformat': <%s>}", subformat));

	g_assert_true (vmi_test_convert_source (source, &vmi_vmdk_plugin, vmdk, options, &error));
	g_assert_no_error (error);
}

/* Same size and bytes; qemu-img compares sparse raw files without reading their holes. */
static gboolean
files_equal (const char *a, const char *b)
{
	struct stat sa, sb;

	g_assert_cmpint (stat (a, &sa), ==, 0);
	g_assert_cmpint (stat (b, &sb), ==, 0);
	return sa.st_size == sb.st_size && vmi_test_qemu_img_compare (a, "raw", b, "raw");
}

static char *
copy_file (const char *src, const char *dir, const char *name)
{
	char *dst = g_build_filename (dir, name, NULL);
	g_autofree char *qs = g_shell_quote (src);
	g_autofree char *qd = g_shell_quote (dst);

	g_assert_cmpint (vmi_test_sh (NULL, "cp --sparse=always %s %s", qs, qd), ==, 0);
	return dst;
}

static char *
write_text (const char *dir, const char *name, const char *text)
{
	char *path = g_build_filename (dir, name, NULL);

	vmi_test_write_file (path, text, -1);
	return path;
}

static void
expect_open_error (const char *path, gboolean with_dir, int code)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = open_in_dir (path, with_dir, &error);

	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, code);
	g_assert_cmpstr (error->message, !=, "");
	if (g_test_verbose ())
		g_printerr ("# %s: %s\n", path, error->message);
	vmi_test_save_seed ("vmdk", path);
}

/* Opens fine, but reading the first bytes fails with code; returns the source for more checks. */
static VmiSource *
expect_read_error (const char *path, gboolean with_dir, int code)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = open_in_dir (path, with_dir, &error);
	guint8 buf[512];
	VmiExtent extent;

	g_assert_no_error (error);
	g_assert_false (vmi_vmdk_plugin.read (vmi_source_get_image (source), 0, buf, sizeof buf,
					      &error));
	g_assert_error (error, VMI_ERROR, code);
	if (g_test_verbose ())
		g_printerr ("# %s: %s\n", path, error->message);
	g_clear_error (&error);
	/* An image that cannot be read as a whole cannot be mapped either. */
	if (!vmi_vmdk_plugin.block_status (vmi_source_get_image (source), 0, 512, &extent, &error))
		g_assert_error (error, VMI_ERROR, code);
	else
		g_assert_cmpint (code, ==, VMI_ERROR_CORRUPT_IMAGE);
	vmi_test_save_seed ("vmdk", path);
	return g_steal_pointer (&source);
}

static GVariant *
fs_lookup (VmiSource *source, const char *key, const GVariantType *type)
{
	return g_variant_dict_lookup_value (vmi_source_get_info (source)->format_specific, key, type);
}

static gboolean
has_reference (VmiSource *source, const char *path)
{
	GPtrArray *refs = vmi_source_get_info (source)->references;

	for (guint i = 0; i < refs->len; i++) {
		if (strcmp (g_ptr_array_index (refs, i), path) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean
unsafe_mentions (VmiSource *source, const char *word)
{
	GPtrArray *reasons = vmi_source_get_info (source)->unsafe_reasons;

	for (guint i = 0; i < reasons->len; i++) {
		if (strstr (g_ptr_array_index (reasons, i), word) != NULL)
			return TRUE;
	}
	return FALSE;
}

static void
test_probe (void)
{
	static const char desc[] = "# Disk DescriptorFile\nversion=1\nCID=1\n";
	static const char crlf[] = "# Disk DescriptorFile\r\n\r\nversion=1\r\n";
	static const char other[] = "# A shell script\nversion=10\n";
	guint8 head[64] = { 0 };

	memcpy (head, "KDMV", 4);
	g_assert_cmpuint (vmi_vmdk_plugin.probe (head, sizeof head, 1 * MiB), ==, VMI_PROBE_CERTAIN);
	memcpy (head, "COWD", 4);
	g_assert_cmpuint (vmi_vmdk_plugin.probe (head, sizeof head, 1 * MiB), ==, VMI_PROBE_CERTAIN);
	g_assert_cmpuint (vmi_vmdk_plugin.probe ((const guint8 *) desc, sizeof desc - 1, sizeof desc),
			  ==, VMI_PROBE_CERTAIN);
	g_assert_cmpuint (vmi_vmdk_plugin.probe ((const guint8 *) crlf, sizeof crlf - 1, sizeof crlf),
			  ==, VMI_PROBE_CERTAIN);
	g_assert_cmpuint (vmi_vmdk_plugin.probe ((const guint8 *) other, sizeof other - 1, 100), ==,
			  VMI_PROBE_NO);
	memset (head, 0, sizeof head);
	g_assert_cmpuint (vmi_vmdk_plugin.probe (head, sizeof head, 1 * MiB), ==, VMI_PROBE_NO);
	g_assert_cmpuint (vmi_vmdk_plugin.probe (head, 0, 0), ==, VMI_PROBE_NO);
}

/* Our facts against qemu-img info's for the same file. */
static void
compare_with_qemu_info (VmiSource *source, const char *path)
{
	g_autoptr(JsonObject) qi = vmi_test_qemu_img_info (path, "vmdk");
	JsonObject *data = json_object_get_object_member (
		json_object_get_object_member (qi, "format-specific"), "data");
	JsonArray *qextents = json_object_get_array_member (data, "extents");
	const VmiImageInfo *info = vmi_source_get_info (source);
	g_autoptr(GVariant) create_type = fs_lookup (source, "create-type", G_VARIANT_TYPE_STRING);
	g_autoptr(GVariant) cid = fs_lookup (source, "cid", G_VARIANT_TYPE_UINT32);
	g_autoptr(GVariant) parent_cid = fs_lookup (source, "parent-cid", G_VARIANT_TYPE_UINT32);
	g_autoptr(GVariant) extents = fs_lookup (source, "extents", G_VARIANT_TYPE ("aa{sv}"));

	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==,
			  vmi_test_json_u64 (qi, "virtual-size"));
	if (json_object_has_member (qi, "cluster-size"))
		g_assert_cmpuint (info->cluster_size, ==,
				  vmi_test_json_u64 (qi, "cluster-size"));
	g_assert_nonnull (create_type);
	g_assert_cmpstr (g_variant_get_string (create_type, NULL), ==,
			 json_object_get_string_member (data, "create-type"));
	g_assert_cmpstr (info->subformat, ==, json_object_get_string_member (data, "create-type"));
	g_assert_nonnull (cid);
	g_assert_cmpuint (g_variant_get_uint32 (cid), ==, vmi_test_json_u64 (data, "cid"));
	g_assert_nonnull (parent_cid);
	g_assert_cmpuint (g_variant_get_uint32 (parent_cid), ==,
			  vmi_test_json_u64 (data, "parent-cid"));
	g_assert_nonnull (extents);
	g_assert_cmpuint (g_variant_n_children (extents), ==, json_array_get_length (qextents));
	for (guint i = 0; i < json_array_get_length (qextents); i++) {
		JsonObject *qe = json_array_get_object_element (qextents, i);
		g_autoptr(GVariant) e = g_variant_get_child_value (extents, i);
		GVariantDict d;
		guint64 vsize = 0, csize = 0;
		gboolean compressed = FALSE;
		const char *format = NULL, *filename = NULL;
		g_autofree char *qbase = g_path_get_basename (json_object_get_string_member (qe, "filename"));

		g_variant_dict_init (&d, e);
		g_assert_true (g_variant_dict_lookup (&d, "virtual-size", "t", &vsize));
		g_assert_cmpuint (vsize, ==, vmi_test_json_u64 (qe, "virtual-size"));
		if (json_object_has_member (qe, "cluster-size")) {
			g_assert_true (g_variant_dict_lookup (&d, "cluster-size", "t", &csize));
			g_assert_cmpuint (csize, ==, vmi_test_json_u64 (qe, "cluster-size"));
		} else {
			g_assert_false (g_variant_dict_contains (&d, "cluster-size"));
		}
		g_variant_dict_lookup (&d, "compressed", "b", &compressed);
		g_assert_cmpint (compressed, ==,
				 json_object_has_member (qe, "compressed") &&
					 json_object_get_boolean_member (qe, "compressed"));
		g_assert_true (g_variant_dict_lookup (&d, "format", "&s", &format));
		/* qemu names no type for the extent of a monolithic file; we say SPARSE. */
		if (json_object_get_string_member (qe, "format")[0] != '\0')
			g_assert_cmpstr (format, ==, json_object_get_string_member (qe, "format"));
		else
			g_assert_cmpstr (format, ==, "SPARSE");
		if (g_variant_dict_lookup (&d, "filename", "&s", &filename) &&
		    g_strcmp0 (format, "SPARSE") != 0)
			g_assert_cmpstr (filename, ==, qbase);
		else if (json_object_get_string_member (qe, "format")[0] != '\0')
			g_assert_cmpstr (filename, ==, qbase);
		g_variant_dict_clear (&d);
	}
}

typedef struct {
	const char *subformat;
	guint64 size;
} QemuCase;

/* qemu-img makes the VMDK from a pattern; we inspect it like qemu-img and read it like it. */
static void
test_qemu_made (Fixture *f, gconstpointer data)
{
	const QemuCase *c = data;
	g_autofree char *src = g_build_filename (f->dir, "src.raw", NULL);
	g_autofree char *base = g_strdelimit (g_strdup_printf ("qemu-%s.vmdk", c->subformat), ",=", '-');
	g_autofree char *vmdk = g_build_filename (f->dir, base, NULL);
	g_autofree char *ours = g_build_filename (f->dir, "ours.raw", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (src, c->size, 7);
	vmi_test_qemu_img ("convert -f raw -O vmdk -o subformat=%s %s %s", c->subformat, src, vmdk);
	source = open_in_dir (vmdk, TRUE, &error);
	g_assert_no_error (error);
	g_assert_true (vmi_source_is_safe (source));
	compare_with_qemu_info (source, vmdk);
	vmdk_to_raw (vmdk, ours);
	g_assert_true (vmi_test_qemu_img_compare (ours, "raw", vmdk, "vmdk"));
	g_assert_true (files_equal (ours, src));
	vmi_test_save_seed ("vmdk", vmdk);

	/* Split images with their last extent gone: described from the descriptor, not read. */
	if (g_str_has_prefix (c->subformat, "twoGb")) {
		g_autofree char *last = g_strdup_printf ("qemu-%s-%c002.vmdk", c->subformat,
							 strstr (c->subformat, "Flat") != NULL ? 'f' : 's');
		g_autofree char *last_path = g_build_filename (f->dir, last, NULL);
		g_autoptr(VmiSource) partial = NULL;

		g_assert_cmpint (unlink (last_path), ==, 0);
		partial = expect_read_error (vmdk, TRUE, VMI_ERROR_CORRUPT_IMAGE);
		g_assert_cmpuint (vmi_source_get_virtual_size (partial), ==,
				  vmi_source_get_virtual_size (source));
		g_assert_true (has_reference (partial, last));
		g_assert_true (unsafe_mentions (partial, "missing"));
	}

	/* Without its folder a descriptor is still described, but its extents cannot be read. */
	if (!g_str_has_prefix (c->subformat, "monolithicSparse") &&
	    strcmp (c->subformat, "streamOptimized") != 0) {
		g_autoptr(VmiSource) blind = open_in_dir (vmdk, FALSE, &error);
		guint8 buf[512];

		g_assert_no_error (error);
		g_assert_cmpuint (vmi_source_get_virtual_size (blind), ==,
				  vmi_source_get_virtual_size (source));
		g_assert_false (vmi_vmdk_plugin.read (vmi_source_get_image (blind), 0, buf, sizeof buf,
						      &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
		g_assert_nonnull (strstr (error->message, "folder is unknown"));
	}
}

/* Our writer: qemu-img check passes and the content equals the source. */
typedef struct {
	const char *subformat;
	guint64 size;
} WriteCase;

/* The redundant grain directory and tables of a monolithicSparse file mirror the primary ones. */
static void
assert_redundant_tables (const char *path)
{
	guint64 capacity = vmi_test_read_le64 (path, H_CAPACITY);
	guint64 rgd = vmi_test_read_le64 (path, 48), gd = vmi_test_read_le64 (path, H_GD_OFFSET);
	guint64 tables = (capacity + 128 * 512 - 1) / (128 * 512);
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	guint8 a[2048], b[2048];

	g_assert_cmpuint (rgd, !=, 0);
	g_assert_cmpuint (rgd, !=, gd);
	for (guint64 i = 0; i < tables; i++) {
		guint32 t = vmi_test_read_le32 (path, gd * 512 + 4 * i);
		guint32 rt = vmi_test_read_le32 (path, rgd * 512 + 4 * i);

		g_assert_cmpuint (t, !=, rt);
		g_assert_cmpint (pread (fd, a, sizeof a, (off_t) t * 512), ==, sizeof a);
		g_assert_cmpint (pread (fd, b, sizeof b, (off_t) rt * 512), ==, sizeof b);
		g_assert_cmpmem (a, sizeof a, b, sizeof b);
	}
	close (fd);
}

static void
test_write (Fixture *f, gconstpointer data)
{
	const WriteCase *c = data;
	g_autofree char *src = g_build_filename (f->dir, "src.raw", NULL);
	g_autofree char *base = g_strdup_printf ("%s-%" G_GUINT64_FORMAT ".vmdk", c->subformat, c->size);
	g_autofree char *vmdk = g_build_filename (f->dir, base, NULL);
	g_autofree char *back = g_build_filename (f->dir, "back.raw", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(JsonObject) qi = NULL;
	JsonObject *qdata;
	guint64 rounded = (c->size + 511) / 512 * 512;
	struct stat st;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (src, c->size, 11);
	raw_to_vmdk (src, vmdk, c->subformat);
	g_assert_true (vmi_test_qemu_img_check (vmdk, "vmdk"));
	g_assert_true (vmi_test_qemu_img_compare (src, "raw", vmdk, "vmdk"));
	qi = vmi_test_qemu_img_info (vmdk, "vmdk");
	qdata = json_object_get_object_member (json_object_get_object_member (qi, "format-specific"),
					       "data");
	g_assert_cmpuint (vmi_test_json_u64 (qi, "virtual-size"), ==, rounded);
	g_assert_cmpuint (vmi_test_json_u64 (qi, "cluster-size"), ==, 65536);
	g_assert_cmpstr (json_object_get_string_member (qdata, "create-type"), ==, c->subformat);

	/* Unwritten grains stay unallocated: the file holds about the data, not the disk. */
	g_assert_cmpint (stat (vmdk, &st), ==, 0);
	g_assert_cmpuint ((guint64) st.st_blocks * 512, <, 16 * MiB);
	if (strcmp (c->subformat, "monolithicSparse") == 0)
		assert_redundant_tables (vmdk);

	source = open_in_dir (vmdk, TRUE, &error);
	g_assert_no_error (error);
	compare_with_qemu_info (source, vmdk);
	vmdk_to_raw (vmdk, back);
	if (rounded == c->size)
		g_assert_true (files_equal (back, src));
	else
		g_assert_true (vmi_test_qemu_img_compare (src, "raw", back, "raw"));
	vmi_test_save_seed ("vmdk", vmdk);
}

/* Holes stay holes; written grains are data. */
static void
test_block_status (Fixture *f, gconstpointer data)
{
	g_autofree char *src = g_build_filename (f->dir, "src.raw", NULL);
	g_autofree char *vmdk = g_build_filename (f->dir, "out.vmdk", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autofree guint8 *buf = g_malloc0 (64 * KiB);
	int fd;
	VmiExtent extent;
	VmiImage *image;

	fd = open (src, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g_assert_cmpint (ftruncate (fd, 64 * MiB), ==, 0);
	memset (buf, 0x5a, 64 * KiB);
	g_assert_cmpint (pwrite (fd, buf, 64 * KiB, 40 * MiB), ==, 64 * KiB);
	close (fd);
	for (guint i = 0; i < 2; i++) {
		raw_to_vmdk (src, vmdk, i == 0 ? "monolithicSparse" : "streamOptimized");
		source = open_in_dir (vmdk, TRUE, &error);
		g_assert_no_error (error);
		image = vmi_source_get_image (source);
		g_assert_true (vmi_vmdk_plugin.block_status (image, 0, 64 * MiB, &extent, &error));
		g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
		g_assert_cmpuint (extent.length, ==, 40 * MiB);
		g_assert_true (vmi_vmdk_plugin.block_status (image, 40 * MiB, 24 * MiB, &extent, &error));
		g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
		g_assert_cmpuint (extent.length, ==, 64 * KiB);
		g_assert_true (vmi_vmdk_plugin.block_status (image, 40 * MiB + 64 * KiB,
							     24 * MiB - 64 * KiB, &extent, &error));
		g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
		g_assert_cmpuint (extent.length, ==, 24 * MiB - 64 * KiB);
		/* A read inside the grain, not from its start. */
		g_assert_true (vmi_vmdk_plugin.read (image, 40 * MiB + 512, buf, 1024, &error));
		g_assert_cmpuint (buf[0], ==, 0x5a);
		g_assert_cmpuint (buf[1023], ==, 0x5a);
		g_clear_pointer (&source, vmi_source_free);
	}
}

static void
test_write_bad_options (Fixture *f, gconstpointer data)
{
	g_autofree char *src = g_build_filename (f->dir, "src.raw", NULL);
	g_autofree char *vmdk = g_build_filename (f->dir, "out.vmdk", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) options = g_variant_ref_sink (
		g_variant_new_parsed ("{'subformat': <'monolithicFlat'>}"));

	vmi_test_make_pattern_image (src, 1 * MiB, 1);
	source = vmi_test_open (&vmi_raw_plugin, src, NULL);
	g_assert_false (vmi_test_convert_source (source, &vmi_vmdk_plugin, vmdk, options, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_clear_pointer (&options, g_variant_unref);
	options = g_variant_ref_sink (g_variant_new_parsed ("{'adapter_type': <'scsi-ish'>}"));
	g_assert_false (vmi_test_convert_source (source, &vmi_vmdk_plugin, vmdk, options, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
}

static void
test_adapter_type (Fixture *f, gconstpointer data)
{
	g_autofree char *src = g_build_filename (f->dir, "src.raw", NULL);
	g_autofree char *vmdk = g_build_filename (f->dir, "out.vmdk", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) raw = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) options = g_variant_ref_sink (g_variant_new_parsed (
		"{'adapter_type': <'lsilogic'>, 'subformat': <'streamOptimized'>}"));
	g_autoptr(GVariant) adapter = NULL;
	g_autoptr(GVariant) heads = NULL;
	g_autoptr(GVariant) cylinders = NULL;

	vmi_test_make_pattern_image (src, 100 * MiB, 3);
	raw = vmi_test_open (&vmi_raw_plugin, src, NULL);
	g_assert_true (vmi_test_convert_source (raw, &vmi_vmdk_plugin, vmdk, options, &error));
	g_assert_no_error (error);
	source = open_in_dir (vmdk, TRUE, &error);
	g_assert_no_error (error);
	adapter = fs_lookup (source, "adapter-type", G_VARIANT_TYPE_STRING);
	heads = fs_lookup (source, "geometry-heads", G_VARIANT_TYPE_UINT64);
	cylinders = fs_lookup (source, "geometry-cylinders", G_VARIANT_TYPE_UINT64);
	g_assert_cmpstr (g_variant_get_string (adapter, NULL), ==, "lsilogic");
	g_assert_cmpuint (g_variant_get_uint64 (heads), ==, 255);
	g_assert_cmpuint (g_variant_get_uint64 (cylinders), ==, 100 * MiB / (255 * 63 * 512));
}

/* VMware's own streamOptimized file (version 3, footer at the end). */
static void
test_corpus_version3 (Fixture *f, gconstpointer data)
{
	g_autofree char *vmdk = NULL;
	g_autofree char *ours = g_build_filename (f->dir, "ours.raw", NULL);
	g_autofree char *theirs = g_build_filename (f->dir, "theirs.raw", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) adapter = NULL;
	g_autoptr(GVariant) cyl = NULL;
	g_autoptr(GVariant) heads = NULL;
	g_autoptr(GVariant) sectors = NULL;
	guint8 byte;

	if (vmi_test_corpus_dir () == NULL || !vmi_test_require_qemu_img ())
		return;
	vmdk = vmi_test_corpus_fetch ("iotest-version3.vmdk.bz2", f->dir);
	source = open_in_dir (vmdk, TRUE, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 17179869184ull);
	g_assert_cmpuint (vmi_source_get_info (source)->cluster_size, ==, 65536);
	g_assert_cmpstr (vmi_source_get_info (source)->subformat, ==, "streamOptimized");
	compare_with_qemu_info (source, vmdk);
	adapter = fs_lookup (source, "adapter-type", G_VARIANT_TYPE_STRING);
	cyl = fs_lookup (source, "geometry-cylinders", G_VARIANT_TYPE_UINT64);
	heads = fs_lookup (source, "geometry-heads", G_VARIANT_TYPE_UINT64);
	sectors = fs_lookup (source, "geometry-sectors", G_VARIANT_TYPE_UINT64);
	g_assert_cmpstr (g_variant_get_string (adapter, NULL), ==, "lsilogic");
	g_assert_cmpuint (g_variant_get_uint64 (cyl), ==, 2088);
	g_assert_cmpuint (g_variant_get_uint64 (heads), ==, 255);
	g_assert_cmpuint (g_variant_get_uint64 (sectors), ==, 63);
	/* iotest 059's pattern: byte '0' + i % 10 at i * 655360 + i * 512. */
	for (guint i = 0; i < 20; i++) {
		g_assert_true (vmi_vmdk_plugin.read (vmi_source_get_image (source),
						     (guint64) i * 655360 + i * 512, &byte, 1, &error));
		g_assert_no_error (error);
		g_assert_cmpuint (byte, ==, '0' + i % 10);
	}
	vmdk_to_raw (vmdk, ours);
	vmi_test_qemu_img ("convert -f vmdk -O raw %s %s", vmdk, theirs);
	g_assert_true (vmi_test_qemu_img_compare (ours, "raw", theirs, "raw"));
	vmi_test_save_seed ("vmdk", vmdk);
}

static void
test_corpus_afl9 (Fixture *f, gconstpointer data)
{
	g_autofree char *vmdk = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;

	if (vmi_test_corpus_dir () == NULL)
		return;
	vmdk = vmi_test_corpus_fetch ("afl9.vmdk.bz2", f->dir);
	source = open_in_dir (vmdk, TRUE, &error);
	g_assert_null (source);
	g_assert_true (g_error_matches (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE) ||
		       g_error_matches (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED));
	g_assert_nonnull (strstr (error->message, "capacity"));
	vmi_test_save_seed ("vmdk", vmdk);
}

static void
test_corpus_esx4_descriptor (Fixture *f, gconstpointer data)
{
	g_autofree char *vmdk = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(VmiSource) blind = NULL;
	g_autoptr(GVariant) create_type = NULL;
	g_autoptr(GVariant) extents = NULL;
	g_autoptr(GVariant) cid = NULL;
	guint8 buf[512];

	if (vmi_test_corpus_dir () == NULL)
		return;
	vmdk = vmi_test_corpus_fetch ("virtmanager-esx4-vmfs-descriptor.vmdk", f->dir);
	g_assert_cmpuint (vmi_vmdk_plugin.probe ((const guint8 *) "# Disk DescriptorFile\nversion=1\n",
						 32, 482),
			  ==, VMI_PROBE_CERTAIN);
	source = expect_read_error (vmdk, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 6 * GiB);
	create_type = fs_lookup (source, "create-type", G_VARIANT_TYPE_STRING);
	g_assert_cmpstr (g_variant_get_string (create_type, NULL), ==, "vmfs");
	g_assert_cmpstr (vmi_source_get_info (source)->subformat, ==, "vmfs");
	cid = fs_lookup (source, "cid", G_VARIANT_TYPE_UINT32);
	g_assert_cmpuint (g_variant_get_uint32 (cid), ==, 0x4164f1a0);
	extents = fs_lookup (source, "extents", G_VARIANT_TYPE ("aa{sv}"));
	g_assert_cmpuint (g_variant_n_children (extents), ==, 1);
	g_assert_true (has_reference (source, "ESX4.0-rhel4u8-32b-flat.vmdk"));
	g_assert_false (vmi_source_is_safe (source));
	g_assert_true (unsafe_mentions (source, "missing"));

	blind = open_in_dir (vmdk, FALSE, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (vmi_source_get_virtual_size (blind), ==, 6 * GiB);
	g_assert_false (vmi_vmdk_plugin.read (vmi_source_get_image (blind), 0, buf, sizeof buf,
					      &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_assert_nonnull (strstr (error->message, "folder is unknown"));
}

/* A descriptor whose extent is a file beside it: the control that shows reads would show it. */
static const char secret[] = "SECRET-CONTENT-THAT-MUST-NOT-LEAK";

static char *
descriptor_naming (const char *dir, const char *name, const char *extent_name)
{
	g_autofree char *text = g_strdup_printf ("# Disk DescriptorFile\nversion=1\nCID=12345678\n"
						 "parentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
						 "RW 1 FLAT \"%s\" 0\n",
						 extent_name);
	return write_text (dir, name, text);
}

static void
test_hostile_extents (Fixture *f, gconstpointer data)
{
	g_autofree char *outside = g_build_filename (f->dir, "outside", NULL);
	g_autofree char *inside = g_build_filename (f->dir, "inside", NULL);
	g_autofree char *secret_path = NULL;
	g_autofree char *link = NULL;
	g_autofree char *fifo = NULL;
	g_autofree char *d = NULL;
	g_autoptr(GError) error = NULL;
	guint8 buf[512];
	const char *names[] = { "/etc/passwd", "../x", "../outside/secret.bin", "..", "sub/x.vmdk",
				NULL };

	g_assert_cmpint (g_mkdir (outside, 0755), ==, 0);
	g_assert_cmpint (g_mkdir (inside, 0755), ==, 0);
	{
		g_autofree char *padded = g_malloc0 (512);
		memcpy (padded, secret, sizeof secret);
		secret_path = g_build_filename (outside, "secret.bin", NULL);
		vmi_test_write_file (secret_path, padded, 512);
	}

	/* Control: the same bytes in the folder are read, so a followed link would show them. */
	{
		g_autofree char *copy = copy_file (secret_path, inside, "plain.bin");
		g_autofree char *ok = descriptor_naming (inside, "ok.vmdk", "plain.bin");
		g_autoptr(VmiSource) source = open_in_dir (ok, TRUE, &error);

		g_assert_no_error (error);
		g_assert_true (vmi_source_is_safe (source));
		g_assert_true (vmi_vmdk_plugin.read (vmi_source_get_image (source), 0, buf, 512, &error));
		g_assert_cmpmem (buf, sizeof secret, secret, sizeof secret);
	}

	for (guint i = 0; names[i] != NULL; i++) {
		g_autofree char *vmdk = descriptor_naming (inside, "bad.vmdk", names[i]);
		g_autoptr(VmiSource) source = expect_read_error (vmdk, TRUE, VMI_ERROR_UNSAFE_IMAGE);

		g_autoptr(VmiSource) blind = NULL;

		g_assert_true (has_reference (source, names[i]));
		g_assert_false (vmi_source_is_safe (source));
		g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 512);
		/* Unsafe by its name alone, whether or not the folder is known. */
		blind = expect_read_error (vmdk, FALSE, VMI_ERROR_UNSAFE_IMAGE);
		g_assert_false (vmi_source_is_safe (blind));
	}

	link = g_build_filename (inside, "link.bin", NULL);
	g_assert_cmpint (symlink (secret_path, link), ==, 0);
	d = descriptor_naming (inside, "link.vmdk", "link.bin");
	{
		g_autoptr(VmiSource) source = expect_read_error (d, TRUE, VMI_ERROR_UNSAFE_IMAGE);
		g_autoptr(GVariant) info = vmi_source_to_variant (source);
		g_autofree char *printed = g_variant_print (info, TRUE);

		g_assert_true (has_reference (source, "link.bin"));
		g_assert_true (unsafe_mentions (source, "symbolic link"));
		g_assert_null (strstr (printed, secret));
		memset (buf, 0, sizeof buf);
		g_assert_false (vmi_vmdk_plugin.read (vmi_source_get_image (source), 0, buf, 512, NULL));
		g_assert_null (memmem (buf, sizeof buf, secret, sizeof secret - 1));
	}

	/* A FIFO is neither waited on nor read. */
	fifo = g_build_filename (inside, "fifo.bin", NULL);
	g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
	g_free (d);
	d = descriptor_naming (inside, "fifo.vmdk", "fifo.bin");
	{
		g_autoptr(VmiSource) source = expect_read_error (d, TRUE, VMI_ERROR_UNSAFE_IMAGE);
		g_assert_true (unsafe_mentions (source, "not a regular file"));
	}
}

/* qemu-img's child images name their parent: a reference, unsafe, and not read alone. */
static void
test_parent (Fixture *f, gconstpointer data)
{
	g_autofree char *base = g_build_filename (f->dir, "base.vmdk", NULL);
	g_autofree char *child = g_build_filename (f->dir, "child.vmdk", NULL);
	g_autoptr(VmiSource) source = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_qemu_img ("create -q -f vmdk %s 16M", base);
	vmi_test_qemu_img ("create -q -f vmdk -b base.vmdk -F vmdk %s", child);
	source = expect_read_error (child, TRUE, VMI_ERROR_NOT_SUPPORTED);
	g_assert_true (has_reference (source, "base.vmdk"));
	g_assert_false (vmi_source_is_safe (source));
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 16 * MiB);
}

/* A small valid monolithicSparse image from our writer, to break in many ways. */
static char *
make_sparse (const char *dir, const char *name, const char *subformat)
{
	g_autofree char *src = g_build_filename (dir, "small.raw", NULL);
	char *vmdk = g_build_filename (dir, name, NULL);

	vmi_test_make_pattern_image (src, 512 * KiB, 5);
	raw_to_vmdk (src, vmdk, subformat);
	vmi_test_save_seed ("vmdk", vmdk);
	return vmdk;
}

static void
truncate_to (const char *path, guint64 size)
{
	g_assert_cmpint (truncate (path, (off_t) size), ==, 0);
}

static void
test_bad_inputs (Fixture *f, gconstpointer data)
{
	g_autofree char *good = make_sparse (f->dir, "good.vmdk", "monolithicSparse");
	g_autofree char *stream = make_sparse (f->dir, "stream.vmdk", "streamOptimized");
	struct stat st;
	guint64 gd;

	g_assert_cmpint (stat (good, &st), ==, 0);
	gd = vmi_test_read_le64 (good, H_GD_OFFSET);

#define BAD(name, code, ...)                                                                       \
	do {                                                                                       \
		g_autofree char *p = copy_file (good, f->dir, name);                               \
		__VA_ARGS__;                                                                       \
		expect_open_error (p, TRUE, code);                                                 \
	} while (0)

	BAD ("empty.vmdk", VMI_ERROR_CORRUPT_IMAGE, truncate_to (p, 0));
	BAD ("one-byte.vmdk", VMI_ERROR_CORRUPT_IMAGE, truncate_to (p, 1));
	BAD ("short-header.vmdk", VMI_ERROR_CORRUPT_IMAGE, truncate_to (p, 100));
	BAD ("magic.vmdk", VMI_ERROR_CORRUPT_IMAGE, vmi_test_write_bytes (p, 0, "KDMX", 4));
	BAD ("cowd.vmdk", VMI_ERROR_NOT_SUPPORTED, vmi_test_write_bytes (p, 0, "COWD", 4));
	BAD ("version4.vmdk", VMI_ERROR_NOT_SUPPORTED, vmi_test_write_le32 (p, H_VERSION, 4));
	BAD ("grain0.vmdk", VMI_ERROR_CORRUPT_IMAGE, vmi_test_write_le64 (p, H_GRAIN, 0));
	BAD ("grain3.vmdk", VMI_ERROR_CORRUPT_IMAGE, vmi_test_write_le64 (p, H_GRAIN, 3));
	BAD ("grain-huge.vmdk", VMI_ERROR_NOT_SUPPORTED, vmi_test_write_le64 (p, H_GRAIN, 1ull << 40));
	BAD ("capacity.vmdk", VMI_ERROR_CORRUPT_IMAGE, vmi_test_write_le64 (p, H_CAPACITY, 1ull << 60));
	BAD ("gd-eof.vmdk", VMI_ERROR_CORRUPT_IMAGE,
	    vmi_test_write_le64 (p, H_GD_OFFSET, (guint64) st.st_size / 512 + 10));
	BAD ("gtes0.vmdk", VMI_ERROR_CORRUPT_IMAGE, vmi_test_write_le32 (p, H_NUM_GTES, 0));
	BAD ("gtes-huge.vmdk", VMI_ERROR_CORRUPT_IMAGE, vmi_test_write_le32 (p, H_NUM_GTES, 1u << 30));
	BAD ("gt-eof.vmdk", VMI_ERROR_CORRUPT_IMAGE,
	    vmi_test_write_le32 (p, gd * 512, (guint32) ((guint64) st.st_size / 512 + 1)));
	BAD ("nl-check.vmdk", VMI_ERROR_CORRUPT_IMAGE, vmi_test_write_bytes (p, 73, "\n \n\n", 4));
	BAD ("desc-huge.vmdk", VMI_ERROR_CORRUPT_IMAGE, vmi_test_write_le64 (p, H_DESC_SIZE, 4096));
	BAD ("compress-alg.vmdk", VMI_ERROR_NOT_SUPPORTED, vmi_test_write_bytes (p, 77, "\x07\x00", 2));
	/* Many sectors per grain and few grains per table: a directory past the metadata cap. */
	BAD ("gd-cap.vmdk", VMI_ERROR_NOT_SUPPORTED, vmi_test_write_le64 (p, H_GRAIN, 1);
	    vmi_test_write_le32 (p, H_NUM_GTES, 1); vmi_test_write_le64 (p, H_CAPACITY, 1ull << 35));
#undef BAD

	/* A grain whose table entry points past the end of the file: found when read. */
	{
		g_autofree char *p = copy_file (good, f->dir, "grain-eof.vmdk");
		guint32 gt = vmi_test_read_le32 (p, gd * 512);

		vmi_test_write_le32 (p, (guint64) gt * 512, (guint32) ((guint64) st.st_size / 512 + 100));
		g_clear_pointer (&p, g_free);
		p = g_build_filename (f->dir, "grain-eof.vmdk", NULL);
		g_autoptr(VmiSource) s = expect_read_error (p, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	}
	/* A stream cut before its footer. */
	{
		g_autofree char *p = copy_file (stream, f->dir, "no-footer.vmdk");
		g_assert_cmpint (stat (p, &st), ==, 0);
		truncate_to (p, (guint64) st.st_size - 1024);
		expect_open_error (p, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	}
	/* A compressed grain whose deflate data is garbage. */
	{
		g_autofree char *p = copy_file (stream, f->dir, "bad-deflate.vmdk");
		static const char garbage[] = "this is not deflate data, not at all";

		g_assert_cmpuint (vmi_test_read_le64 (p, 128 * 512), ==, 0); /* the marker of grain 0 */
		vmi_test_write_bytes (p, 128 * 512 + 12, garbage, sizeof garbage);
		g_autoptr(VmiSource) s = expect_read_error (p, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	}
	/* A grain marker claiming more bytes than a grain can compress to. */
	{
		g_autofree char *p = copy_file (stream, f->dir, "bad-marker.vmdk");

		vmi_test_write_le32 (p, 128 * 512 + 8, 0x7fffffff);
		g_autoptr(VmiSource) s = expect_read_error (p, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	}
}

static void
test_bad_descriptors (Fixture *f, gconstpointer data)
{
	g_autoptr(GString) huge = g_string_new ("# Disk DescriptorFile\nversion=1\n");
	g_autofree char *p = NULL;

	while (huge->len <= 1024 * 1024)
		g_string_append (huge, "# padding padding padding padding padding padding padding\n");
	g_string_append (huge, "RW 8 FLAT \"x.bin\" 0\n");
	p = write_text (f->dir, "huge.vmdk", huge->str);
	expect_open_error (p, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	g_free (p);

	p = write_text (f->dir, "none.vmdk",
			"# Disk DescriptorFile\nversion=1\nCID=1\ncreateType=\"monolithicFlat\"\n");
	expect_open_error (p, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	g_free (p);

	p = write_text (f->dir, "badline.vmdk",
			"# Disk DescriptorFile\nversion=1\nRW lots FLAT \"x.bin\" 0\n");
	expect_open_error (p, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	g_free (p);

	p = write_text (f->dir, "noquote.vmdk",
			"# Disk DescriptorFile\nversion=1\nRW 8 FLAT \"x.bin 0\n");
	expect_open_error (p, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	g_free (p);

	p = write_text (f->dir, "toobig.vmdk",
			"# Disk DescriptorFile\nversion=1\nRW 137438953472 ZERO\n"
			"RW 137438953472 ZERO\n");
	expect_open_error (p, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	g_free (p);

	p = write_text (f->dir, "text.vmdk", "hello, this is just text\n");
	expect_open_error (p, TRUE, VMI_ERROR_CORRUPT_IMAGE);
	g_free (p);

	/* A vmfsSparse delta whose extent is an ESX COWD file: described, not read. */
	{
		g_autofree char *cowd = g_build_filename (f->dir, "delta-delta.vmdk", NULL);
		g_autofree char *head = g_malloc0 (2048);

		memcpy (head, "COWD", 4);
		vmi_test_write_file (cowd, head, 2048);
	}
	p = write_text (f->dir, "delta.vmdk",
			"# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
			"createType=\"vmfsSparse\"\nRW 16 VMFSSPARSE \"delta-delta.vmdk\"\n");
	{
		g_autoptr(VmiSource) s = expect_read_error (p, TRUE, VMI_ERROR_NOT_SUPPORTED);
		g_autoptr(GVariant) create_type = fs_lookup (s, "create-type", G_VARIANT_TYPE_STRING);

		g_assert_cmpstr (g_variant_get_string (create_type, NULL), ==, "vmfsSparse");
		g_assert_cmpuint (vmi_source_get_virtual_size (s), ==, 8192);
	}
	g_free (p);

	/* An extent type we do not read: described, not read. */
	p = write_text (f->dir, "rdm.vmdk",
			"# Disk DescriptorFile\nversion=1\nRW 8 VMFSRDM \"rdm.bin\"\n");
	{
		g_autoptr(VmiSource) s = expect_read_error (p, TRUE, VMI_ERROR_NOT_SUPPORTED);
		g_assert_cmpuint (vmi_source_get_virtual_size (s), ==, 4096);
	}
}

/* ZERO and FLAT extents with an offset, in one descriptor. */
static void
test_descriptor_mixed (Fixture *f, gconstpointer data)
{
	g_autofree char *flat = g_build_filename (f->dir, "data.bin", NULL);
	g_autofree char *vmdk = write_text (f->dir, "mixed.vmdk",
					    "# Disk DescriptorFile\r\nversion=1\r\nCID=fffffffe\r\n"
					    "createType=\"custom\"\r\n"
					    "RW 2 FLAT \"data.bin\" 1\r\n"
					    "RDONLY 4 ZERO\r\n"
					    "RW 1 FLAT \"data.bin\"\r\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	guint8 bytes[1536], buf[3584];
	VmiExtent extent;

	for (guint i = 0; i < sizeof bytes; i++)
		bytes[i] = (guint8) (i / 512 + 1);
	vmi_test_write_file (flat, bytes, sizeof bytes);
	source = open_in_dir (vmdk, TRUE, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 7 * 512);
	g_assert_true (vmi_vmdk_plugin.read (vmi_source_get_image (source), 0, buf, sizeof buf, &error));
	g_assert_no_error (error);
	g_assert_cmpmem (buf, 1024, bytes + 512, 1024);
	for (guint i = 1024; i < 3072; i++)
		g_assert_cmpuint (buf[i], ==, 0);
	g_assert_cmpmem (buf + 3072, 512, bytes, 512);
	g_assert_true (vmi_vmdk_plugin.block_status (vmi_source_get_image (source), 1024, 2560,
						     &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_ZERO);
	g_assert_cmpuint (extent.length, ==, 2048);
	vmi_test_save_seed ("vmdk", vmdk);
}

/* Zeroed grains (version 2, GTE 1) written by qemu-io: zero extents where qemu-img map says so. */
static void
test_zeroed_grain (Fixture *f, gconstpointer data)
{
	g_autofree char *vmdk = g_build_filename (f->dir, "zeroed.vmdk", NULL);
	g_autofree char *ours = g_build_filename (f->dir, "ours.raw", NULL);
	g_autofree char *qvmdk = g_shell_quote (vmdk);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	static const struct {
		guint64 offset, length;
		VmiExtentKind kind;
	} expected[] = {
		{ 0, 512 * KiB, VMI_EXTENT_DATA },
		{ 512 * KiB, 1 * MiB, VMI_EXTENT_ZERO },
		{ 1536 * KiB, 512 * KiB, VMI_EXTENT_DATA },
		{ 2 * MiB, 2 * MiB, VMI_EXTENT_HOLE },
		{ 4 * MiB, 1 * MiB, VMI_EXTENT_ZERO },
		{ 5 * MiB, 3 * MiB, VMI_EXTENT_HOLE },
	};
	g_autofree char *io_out = NULL;
	guint8 byte;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_qemu_img ("create -q -f vmdk -o zeroed_grain=on %s 8M", qvmdk);
	g_assert_cmpint (vmi_test_sh (&io_out, "qemu-io -f vmdk -c 'write -P 0x11 0 2M' "
					    "-c 'write -z 512k 1M' -c 'write -z 4M 1M' %s",
				      qvmdk),
			 ==, 0);
	source = open_in_dir (vmdk, TRUE, &error);
	g_assert_no_error (error);
	for (guint i = 0; i < G_N_ELEMENTS (expected); i++) {
		VmiExtent extent;

		g_assert_true (vmi_vmdk_plugin.block_status (vmi_source_get_image (source),
							     expected[i].offset, 8 * MiB - expected[i].offset,
							     &extent, &error));
		g_assert_cmpint (extent.kind, ==, expected[i].kind);
		g_assert_cmpuint (extent.length, ==, expected[i].length);
	}
	g_assert_true (vmi_vmdk_plugin.read (vmi_source_get_image (source), 600 * KiB, &byte, 1, &error));
	g_assert_cmpuint (byte, ==, 0);
	g_assert_true (vmi_vmdk_plugin.read (vmi_source_get_image (source), 1600 * KiB, &byte, 1, &error));
	g_assert_cmpuint (byte, ==, 0x11);
	vmdk_to_raw (vmdk, ours);
	g_assert_true (vmi_test_qemu_img_compare (ours, "raw", vmdk, "vmdk"));
	vmi_test_save_seed ("vmdk", vmdk);
}

static guint
count_open_fds (void)
{
	g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
	guint n = 0;

	g_assert_nonnull (dir);
	while (g_dir_read_name (dir) != NULL)
		n++;
	return n;
}

/* More extents than files kept open: closed ones are opened again, and must be the same file. */
static void
test_many_extents (Fixture *f, gconstpointer data)
{
	g_autoptr(GString) desc = g_string_new ("# Disk DescriptorFile\nversion=1\nCID=1\n"
						"createType=\"twoGbMaxExtentFlat\"\n");
	g_autofree char *vmdk = NULL;
	g_autofree char *first = g_build_filename (f->dir, "e000.bin", NULL);
	g_autofree char *other = g_build_filename (f->dir, "other.bin", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	const guint n = 100;
	guint8 sector[512], buf[512];
	guint fds_before;

	for (guint i = 0; i < n; i++) {
		g_autofree char *name = g_strdup_printf ("e%03u.bin", i);
		g_autofree char *path = g_build_filename (f->dir, name, NULL);

		memset (sector, (int) i + 1, sizeof sector);
		vmi_test_write_file (path, sector, sizeof sector);
		g_string_append_printf (desc, "RW 1 FLAT \"%s\" 0\n", name);
	}
	vmdk = write_text (f->dir, "many.vmdk", desc->str);
	fds_before = count_open_fds ();
	source = open_in_dir (vmdk, TRUE, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (count_open_fds (), <=, fds_before + 40);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, n * 512);
	/* Forwards, backwards, then forwards again: every file is closed and opened again. */
	for (guint pass = 0; pass < 3; pass++) {
		for (guint j = 0; j < n; j++) {
			guint i = pass == 1 ? n - 1 - j : j;

			g_assert_true (vmi_vmdk_plugin.read (vmi_source_get_image (source),
							     (guint64) i * 512, buf, sizeof buf, &error));
			g_assert_no_error (error);
			g_assert_cmpuint (buf[0], ==, i + 1);
			g_assert_cmpuint (buf[511], ==, i + 1);
		}
	}
	/* The first file, closed by now, is swapped for another: that is not read. */
	memset (sector, 0xee, sizeof sector);
	vmi_test_write_file (other, sector, sizeof sector);
	g_assert_cmpint (rename (other, first), ==, 0);
	g_assert_false (vmi_vmdk_plugin.read (vmi_source_get_image (source), 0, buf, sizeof buf,
					      &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE);
	g_assert_cmpuint (count_open_fds (), <=, fds_before + 40);
	vmi_test_save_seed ("vmdk", vmdk);
}

/*
 * 4 MiB of 64 KiB clusters that a compressing writer might misjudge when it skips deflate for
 * clusters that look random: random, text, half random half text, random hex digits (uniform
 * over 16 values), random 2 KiB repeated (uniform bytes, yet deflate halves it), random with a
 * zero byte in every 64.
 */
static void
make_mixed_clusters (const char *path)
{
	g_autofree guint8 *buf = g_malloc (64 * KiB);
	g_autoptr(GRand) rand = g_rand_new_with_seed (99);
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint (fd, >=, 0);
	for (guint i = 0; i < 64; i++) {
		for (gsize j = 0; j < 64 * KiB; j++) {
			guint8 r = (guint8) g_rand_int (rand);
			guint8 t = (guint8) "The quick brown fox jumps over the lazy dog. "[j % 45];

			switch (i % 6) {
			case 0: buf[j] = r; break;
			case 1: buf[j] = t; break;
			case 2: buf[j] = j < 32 * KiB ? r : t; break;
			case 3: buf[j] = (guint8) "0123456789abcdef"[r % 16]; break;
			case 4: buf[j] = j < 2 * KiB ? r : buf[j - 2 * KiB]; break;
			default: buf[j] = j % 64 == 0 ? 0 : r; break;
			}
		}
		g_assert_cmpint (pwrite (fd, buf, 64 * KiB, (off_t) i * 64 * KiB), ==, (gssize) (64 * KiB));
	}
	g_assert_cmpint (close (fd), ==, 0);
}

static guint64
disk_usage (const char *path)
{
	struct stat st;

	g_assert_cmpint (stat (path, &st), ==, 0);
	return (guint64) st.st_blocks * 512;
}

/*
 * streamOptimized grains are deflated on several threads, and grains that look random are
 * stored (deflate level 0) without trying; the file is clean, equal in content and at most 2%
 * larger than qemu-img's.
 */
static void
test_stream_size (Fixture *f, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (f->dir, "mixed.raw", NULL);
	g_autofree char *ours = g_build_filename (f->dir, "ours.vmdk", NULL);
	g_autofree char *theirs = g_build_filename (f->dir, "theirs.vmdk", NULL);
	g_autofree char *back = g_build_filename (f->dir, "back.raw", NULL);

	if (!vmi_test_require_qemu_img ())
		return;
	make_mixed_clusters (raw);
	vmi_test_sh_ok ("qemu-img convert -f raw -O vmdk -o subformat=streamOptimized '%s' '%s'", raw, theirs);
	raw_to_vmdk (raw, ours, "streamOptimized");
	g_assert_true (vmi_test_qemu_img_check (ours, "vmdk"));
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", ours, "vmdk"));
	g_assert_cmpuint (disk_usage (ours) * 100, <=, disk_usage (theirs) * 102);
	vmdk_to_raw (ours, back);
	g_assert_true (files_equal (back, raw));
}

int
main (int argc, char **argv)
{
	static const QemuCase qemu_cases[] = {
		{ "monolithicSparse", 100 * MiB + 3 * 512 },
		{ "monolithicSparse,zeroed_grain=on", 30 * MiB },
		{ "streamOptimized", 100 * MiB + 3 * 512 },
		{ "monolithicFlat", 20 * MiB + 512 },
		{ "twoGbMaxExtentSparse", 2 * GiB + 5 * MiB + 512 },
		{ "twoGbMaxExtentFlat", 2 * GiB + 3 * MiB },
	};
	static const WriteCase write_cases[] = {
		{ "monolithicSparse", 10 * MiB + 4096 + 512 },
		{ "streamOptimized", 10 * MiB + 4096 + 512 },
		{ "monolithicSparse", 5 * GiB + 64 * KiB },
		{ "streamOptimized", 5 * GiB + 64 * KiB },
		{ "monolithicSparse", 1000 * 1000 + 7 }, /* not a multiple of 512: rounded up */
	};

	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/vmdk/probe", test_probe);
	for (guint i = 0; i < G_N_ELEMENTS (qemu_cases); i++) {
		g_autofree char *name = g_strdup_printf ("/vmdk/qemu-made/%s", qemu_cases[i].subformat);
		vmi_test_add_with_dir (name, &qemu_cases[i], test_qemu_made);
	}
	for (guint i = 0; i < G_N_ELEMENTS (write_cases); i++) {
		g_autofree char *name = g_strdup_printf ("/vmdk/write/%s/%" G_GUINT64_FORMAT,
							 write_cases[i].subformat, write_cases[i].size);
		vmi_test_add_with_dir (name, &write_cases[i], test_write);
	}
	vmi_test_add_with_dir ("/vmdk/qemu-made/zeroed-grain", NULL, test_zeroed_grain);
	vmi_test_add_with_dir ("/vmdk/write/block-status", NULL, test_block_status);
	vmi_test_add_with_dir ("/vmdk/write/stream-size", NULL, test_stream_size);
	vmi_test_add_with_dir ("/vmdk/write/bad-options", NULL, test_write_bad_options);
	vmi_test_add_with_dir ("/vmdk/write/adapter-type", NULL, test_adapter_type);
	vmi_test_add_with_dir ("/vmdk/corpus/version3", NULL, test_corpus_version3);
	vmi_test_add_with_dir ("/vmdk/corpus/afl9", NULL, test_corpus_afl9);
	vmi_test_add_with_dir ("/vmdk/corpus/esx4-descriptor", NULL, test_corpus_esx4_descriptor);
	vmi_test_add_with_dir ("/vmdk/hostile/extents", NULL, test_hostile_extents);
	vmi_test_add_with_dir ("/vmdk/parent", NULL, test_parent);
	vmi_test_add_with_dir ("/vmdk/bad/sparse", NULL, test_bad_inputs);
	vmi_test_add_with_dir ("/vmdk/bad/descriptors", NULL, test_bad_descriptors);
	vmi_test_add_with_dir ("/vmdk/descriptor/many-extents", NULL, test_many_extents);
	vmi_test_add_with_dir ("/vmdk/descriptor/mixed", NULL, test_descriptor_mixed);
	return g_test_run ();
}
