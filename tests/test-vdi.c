/* Tests of the VDI plugin, with qemu-img as the oracle for images it makes and reads. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_vdi_plugin;
extern const VmiFormatPlugin vmi_raw_plugin;

#define MiB (1024u * 1024u)
#define GiB (1024ull * MiB)

/* Header field offsets, as VirtualBox's VDICore.h lays them out (see plugins/vdi). */
#define OFF_SIGNATURE	 0x40
#define OFF_VERSION	 0x44
#define OFF_HEADER_SIZE	 0x48
#define OFF_IMAGE_TYPE	 0x4c
#define OFF_COMMENT	 0x54
#define OFF_BMAP	 0x154
#define OFF_DATA	 0x158
#define OFF_SECTOR_SIZE	 0x168
#define OFF_DISK_SIZE	 0x170
#define OFF_BLOCK_SIZE	 0x178
#define OFF_BLOCK_EXTRA	 0x17c
#define OFF_BLOCKS	 0x180
#define OFF_ALLOCATED	 0x184
#define OFF_UUID_IMAGE	 0x188
#define OFF_UUID_SNAP	 0x198
#define OFF_UUID_LINK	 0x1a8
#define OFF_LCHS	 0x1c8

typedef VmiTestDirFixture Fixture;

static void
expect_open_error (const char *path, VmiError code, const char *fragment)
{
	g_autofree char *message = vmi_test_open_error (&vmi_vdi_plugin, path, code);

	g_assert_nonnull (strstr (message, fragment));
	vmi_test_save_seed ("vdi", path);
}

/* Reads the whole virtual disk through the plugin, checking block_status on the way. */
static guint8 *
read_all (VmiSource *source, guint64 *size_out)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (source);
	VmiImage *image = vmi_source_get_image (source);
	guint64 size = vmi_source_get_virtual_size (source);
	g_autofree guint8 *buf = g_malloc0 (size + 1);
	guint64 offset = 0;

	while (offset < size) {
		g_autoptr(GError) error = NULL;
		VmiExtent extent = { 0 };

		g_assert_true (plugin->block_status (image, offset, size - offset, &extent, &error));
		g_assert_no_error (error);
		g_assert_cmpuint (extent.length, >, 0);
		g_assert_cmpuint (extent.length, <=, size - offset);
		g_assert_true (plugin->read (image, offset, buf + offset, (gsize) extent.length,
					     &error));
		g_assert_no_error (error);
		if (extent.kind != VMI_EXTENT_DATA) {
			for (guint64 i = 0; i < extent.length; i++)
				g_assert_cmpuint (buf[offset + i], ==, 0);
		}
		offset += extent.length;
	}
	*size_out = size;
	return g_steal_pointer (&buf);
}

/*
 * Every range qemu-img map says is unallocated must be a hole or zeros to us, and every range it
 * says holds non-zero data must be data to us.
 */
static void
check_map_against_qemu (VmiSource *source, const char *path)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (source);
	g_autofree char *q = g_shell_quote (path);
	g_autofree char *out = NULL;
	g_autoptr(JsonParser) parser = json_parser_new ();
	g_autoptr(GError) error = NULL;
	JsonArray *map;

	g_assert_cmpint (vmi_test_sh (&out, "qemu-img map --output=json -f vdi %s", q), ==, 0);
	g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
	map = json_node_get_array (json_parser_get_root (parser));
	for (guint i = 0; i < json_array_get_length (map); i++) {
		JsonObject *e = json_array_get_object_element (map, i);
		guint64 start = vmi_test_json_u64 (e, "start");
		guint64 end = start + vmi_test_json_u64 (e, "length");
		gboolean data = json_object_get_boolean_member (e, "data");
		gboolean zero = json_object_get_boolean_member (e, "zero");

		for (guint64 pos = start; pos < end;) {
			VmiExtent extent = { 0 };

			g_assert_true (plugin->block_status (vmi_source_get_image (source), pos,
							     end - pos, &extent, &error));
			if (!data)
				g_assert_cmpint (extent.kind, !=, VMI_EXTENT_DATA);
			else if (!zero)
				g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
			pos += extent.length;
		}
	}
}

/* Bytes block_status calls data: file holes under allocated blocks must not count. */
static guint64
count_data (VmiSource *source)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (source);
	guint64 size = vmi_source_get_virtual_size (source), offset = 0, data = 0;

	while (offset < size) {
		g_autoptr(GError) error = NULL;
		VmiExtent extent = { 0 };

		g_assert_true (plugin->block_status (vmi_source_get_image (source), offset,
						     size - offset, &extent, &error));
		g_assert_no_error (error);
		if (extent.kind == VMI_EXTENT_DATA)
			data += extent.length;
		offset += extent.length;
	}
	return data;
}

static GVariant *
subformat_options (const char *subformat)
{
	GVariantDict dict;

	g_variant_dict_init (&dict, NULL);
	g_variant_dict_insert (&dict, "subformat", "s", subformat);
	return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/* --- images made by qemu-img ------------------------------------------------------------- */

static void
test_qemu_made (Fixture *f, gconstpointer data)
{
	gboolean is_static = GPOINTER_TO_INT (data);
	const guint64 size = 5 * MiB + 12345; /* qemu-img rounds it up to a sector */
	g_autofree char *src = g_build_filename (f->dir, "src.raw", NULL);
	g_autofree char *vdi = g_build_filename (f->dir, "qemu.vdi", NULL);
	g_autofree char *ours = g_build_filename (f->dir, "ours.raw", NULL);
	g_autofree char *theirs = g_build_filename (f->dir, "theirs.raw", NULL);
	g_autofree char *cmd = NULL;
	const char *uuid = NULL;
	g_autoptr(JsonObject) info = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	const VmiImageInfo *vinfo;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (src, size, 7);
	cmd = g_strdup_printf ("qemu-img convert -f raw -O vdi -o static=%s '%s' '%s'",
			       is_static ? "on" : "off", src, vdi);
	vmi_test_sh_ok ("%s", cmd);
	info = vmi_test_qemu_img_info (vdi, "vdi");

	source = vmi_test_open (&vmi_vdi_plugin, vdi, NULL);
	vinfo = vmi_source_get_info (source);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==,
			  vmi_test_json_u64 (info, "virtual-size"));
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, (size + 511) / 512 * 512);
	g_assert_cmpuint (vinfo->cluster_size, ==, vmi_test_json_u64 (info, "cluster-size"));
	g_assert_cmpstr (vinfo->subformat, ==, is_static ? "static" : "dynamic");
	g_assert_true (vmi_source_is_safe (source));
	g_assert_cmpuint (vinfo->references->len, ==, 0);

	/* Facts, against what qemu's vdi_create writes. */
	const char *version = vmi_test_fact_string (source, "version");
	const char *type = vmi_test_fact_string (source, "image-type");
	g_assert_cmpstr (version, ==, "1.1");
	g_assert_cmpstr (type, ==, is_static ? "fixed" : "normal");
	g_assert_cmpuint (vmi_test_fact_u64 (source, "header-size"), ==, 0x180);
	g_assert_cmpuint (vmi_test_fact_u64 (source, "block-map-offset"), ==, 0x200);
	g_assert_cmpuint (vmi_test_fact_u64 (source, "data-offset"), ==, 0x400);
	g_assert_cmpuint (vmi_test_fact_u64 (source, "block-size"), ==, MiB);
	g_assert_cmpuint (vmi_test_fact_u64 (source, "disk-size"), ==,
			  vmi_test_json_u64 (info, "virtual-size"));
	g_assert_cmpuint (vmi_test_fact_u64 (source, "blocks-in-image"), ==, 6);
	g_assert_cmpuint (vmi_test_fact_u64 (source, "blocks-allocated"), ==,
			  is_static ? 6 : vmi_test_read_le32 (vdi, OFF_ALLOCATED));
	g_assert_cmpuint (vmi_test_fact_u64 (source, "sector-size"), ==, 512);
	uuid = vmi_test_fact_string (source, "uuid-image");
	g_assert_true (g_uuid_string_is_valid (uuid));
	g_assert_cmpstr (uuid, !=, "00000000-0000-0000-0000-000000000000");
	const char *link = vmi_test_fact_string (source, "uuid-link");
	g_assert_cmpstr (link, ==, "00000000-0000-0000-0000-000000000000");

	check_map_against_qemu (source, vdi);
	g_assert_cmpuint (count_data (source), <=, vmi_test_file_allocated (vdi));
	g_assert_cmpuint (count_data (source), >, 0);

	g_assert_true (vmi_test_convert (&vmi_vdi_plugin, vdi, &vmi_raw_plugin, ours, NULL, &error));
	g_assert_no_error (error);
	g_free (cmd);
	cmd = g_strdup_printf ("qemu-img convert -f vdi -O raw '%s' '%s'", vdi, theirs);
	vmi_test_sh_ok ("%s", cmd);
	g_assert_cmpuint (vmi_test_file_size (ours), ==, vmi_test_file_size (theirs));
	g_assert_true (vmi_test_qemu_img_compare (ours, "raw", theirs, "raw"));
	g_assert_true (vmi_test_qemu_img_compare (ours, "raw", src, "raw"));
}

/* Blocks stored out of order and a discarded (zero) block: we read what qemu-img reads. */
static void
test_qemu_reordered (Fixture *f, gconstpointer data)
{
	g_autofree char *src = g_build_filename (f->dir, "src.raw", NULL);
	g_autofree char *vdi = g_build_filename (f->dir, "reordered.vdi", NULL);
	g_autofree char *ours = g_build_filename (f->dir, "ours.raw", NULL);
	g_autofree char *theirs = g_build_filename (f->dir, "theirs.raw", NULL);
	g_autofree char *cmd = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	VmiExtent extent = { 0 };
	guint32 e0, e4;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (src, 5 * MiB + 12345, 3);
	cmd = g_strdup_printf ("qemu-img convert -f raw -O vdi '%s' '%s'", src, vdi);
	vmi_test_sh_ok ("%s", cmd);
	e0 = vmi_test_read_le32 (vdi, 0x200);
	e4 = vmi_test_read_le32 (vdi, 0x200 + 4 * 4);
	g_assert_cmpuint (e0, <, 0xfffffffeu);
	g_assert_cmpuint (e4, <, 0xfffffffeu);
	vmi_test_write_le32 (vdi, 0x200, e4);
	vmi_test_write_le32 (vdi, 0x200 + 4 * 4, e0);
	vmi_test_write_le32 (vdi, 0x200 + 2 * 4, 0xfffffffeu);

	source = vmi_test_open (&vmi_vdi_plugin, vdi, NULL);
	g_assert_true (vmi_vdi_plugin.block_status (vmi_source_get_image (source), 2 * MiB, MiB,
						    &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_ZERO);
	g_assert_cmpuint (extent.length, ==, MiB);
	g_assert_true (vmi_test_convert (&vmi_vdi_plugin, vdi, &vmi_raw_plugin, ours, NULL, &error));
	g_assert_no_error (error);
	g_free (cmd);
	cmd = g_strdup_printf ("qemu-img convert -f vdi -O raw '%s' '%s'", vdi, theirs);
	vmi_test_sh_ok ("%s", cmd);
	g_assert_true (vmi_test_qemu_img_compare (ours, "raw", theirs, "raw"));
	/* And it did change the content, so the comparison above means something. */
	g_assert_false (vmi_test_qemu_img_compare (ours, "raw", src, "raw"));
}

/* A VirtualBox-style header: VDIHEADER1PLUS (0x190) with LCHS geometry, and a comment. */
static void
test_virtualbox_header (Fixture *f, gconstpointer data)
{
	g_autofree char *vdi = g_build_filename (f->dir, "vbox.vdi", NULL);
	g_autofree char *cmd = NULL;
	g_autoptr(VmiSource) source = NULL;
	const char *comment = NULL;
	const char text[] = "made by VirtualBox \xff";
	int fd;

	if (!vmi_test_require_qemu_img ())
		return;
	cmd = g_strdup_printf ("qemu-img create -q -f vdi '%s' 3M", vdi);
	vmi_test_sh_ok ("%s", cmd);
	vmi_test_write_le32 (vdi, OFF_HEADER_SIZE, 0x190);
	vmi_test_write_le32 (vdi, OFF_LCHS, 6);
	vmi_test_write_le32 (vdi, OFF_LCHS + 4, 16);
	vmi_test_write_le32 (vdi, OFF_LCHS + 8, 63);
	vmi_test_write_le32 (vdi, OFF_LCHS + 12, 512);
	fd = open (vdi, O_WRONLY | O_CLOEXEC);
	g_assert_cmpint (pwrite (fd, text, sizeof text - 1, OFF_COMMENT), ==, sizeof text - 1);
	close (fd);

	source = vmi_test_open (&vmi_vdi_plugin, vdi, NULL);
	g_assert_cmpuint (vmi_test_fact_u64 (source, "header-size"), ==, 0x190);
	g_assert_cmpuint (vmi_test_fact_u64 (source, "lchs-cylinders"), ==, 6);
	g_assert_cmpuint (vmi_test_fact_u64 (source, "lchs-heads"), ==, 16);
	g_assert_cmpuint (vmi_test_fact_u64 (source, "lchs-sectors"), ==, 63);
	comment = vmi_test_fact_string (source, "comment");
	/* Invalid UTF-8 is replaced, not passed on. */
	g_assert_true (g_utf8_validate (comment, -1, NULL));
	g_assert_true (g_str_has_prefix (comment, "made by VirtualBox "));
	vmi_test_save_seed ("vdi", vdi);
}

/* qemu accepts an odd disk size ('VBoxManage convertfromraw' makes them) rounded to a sector. */
static void
test_odd_disk_size (Fixture *f, gconstpointer data)
{
	g_autofree char *vdi = g_build_filename (f->dir, "odd.vdi", NULL);
	g_autofree char *cmd = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(JsonObject) info = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	cmd = g_strdup_printf ("qemu-img create -q -f vdi '%s' 3M", vdi);
	vmi_test_sh_ok ("%s", cmd);
	vmi_test_write_le64 (vdi, OFF_DISK_SIZE, 3 * MiB - 1000);
	info = vmi_test_qemu_img_info (vdi, "vdi");
	source = vmi_test_open (&vmi_vdi_plugin, vdi, NULL);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==,
			  vmi_test_json_u64 (info, "virtual-size"));
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, 3 * MiB - 512);
	g_assert_cmpuint (vmi_test_fact_u64 (source, "disk-size"), ==, 3 * MiB - 1000);
	vmi_test_save_seed ("vdi", vdi);
}

/* --- our writer ---------------------------------------------------------------------------- */

typedef struct {
	const char *subformat;
	guint64 size;
} WriteCase;

static void
test_write (Fixture *f, gconstpointer data)
{
	const WriteCase *c = data;
	gboolean is_static = g_strcmp0 (c->subformat, "static") == 0;
	g_autofree char *src = g_build_filename (f->dir, "src.raw", NULL);
	g_autofree char *vdi = g_build_filename (f->dir, "ours.vdi", NULL);
	g_autofree char *ref = g_build_filename (f->dir, "qemu.vdi", NULL);
	g_autofree char *back = g_build_filename (f->dir, "back.raw", NULL);
	g_autofree char *cmd = NULL;
	const char *uuid = NULL;
	const char *snap = NULL;
	g_autoptr(GVariant) options = subformat_options (c->subformat);
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) ours = NULL;
	g_autoptr(VmiSource) qemus = NULL;
	g_autoptr(JsonObject) info = NULL;
	guint64 rounded = (c->size + 511) / 512 * 512;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (src, c->size, 11);
	g_assert_true (vmi_test_convert (&vmi_raw_plugin, src, &vmi_vdi_plugin, vdi, options, &error));
	g_assert_no_error (error);

	/* qemu-img agrees the image is sound, sized as its own conversion, and holds the data. */
	g_assert_true (vmi_test_qemu_img_check (vdi, "vdi"));
	info = vmi_test_qemu_img_info (vdi, "vdi");
	cmd = g_strdup_printf ("qemu-img convert -f raw -O vdi -o static=%s '%s' '%s'",
			       is_static ? "on" : "off", src, ref);
	vmi_test_sh_ok ("%s", cmd);
	qemus = vmi_test_open (&vmi_vdi_plugin, ref, NULL);
	g_assert_cmpuint (vmi_test_json_u64 (info, "virtual-size"), ==, rounded);
	g_assert_cmpuint (vmi_test_json_u64 (info, "virtual-size"), ==,
			  vmi_source_get_virtual_size (qemus));
	g_assert_true (vmi_test_qemu_img_compare (vdi, "vdi", src, "raw"));
	g_assert_true (vmi_test_qemu_img_compare (vdi, "vdi", ref, "vdi"));

	/* The same layout as qemu's vdi_create, read back by our reader. */
	ours = vmi_test_open (&vmi_vdi_plugin, vdi, NULL);
	g_assert_cmpstr (vmi_source_get_info (ours)->subformat, ==, c->subformat);
	g_assert_cmpuint (vmi_source_get_virtual_size (ours), ==, rounded);
	g_assert_cmpuint (vmi_test_fact_u64 (ours, "data-offset"), ==,
			  vmi_test_fact_u64 (qemus, "data-offset"));
	g_assert_cmpuint (vmi_test_fact_u64 (ours, "block-map-offset"), ==,
			  vmi_test_fact_u64 (qemus, "block-map-offset"));
	g_assert_cmpuint (vmi_test_fact_u64 (ours, "blocks-in-image"), ==,
			  vmi_test_fact_u64 (qemus, "blocks-in-image"));
	g_assert_cmpuint (vmi_test_fact_u64 (ours, "header-size"), ==,
			  vmi_test_fact_u64 (qemus, "header-size"));
	/* Dynamic: no more blocks than qemu-img allocates for the same data. */
	g_assert_cmpuint (vmi_test_fact_u64 (ours, "blocks-allocated"), <=,
			  vmi_test_fact_u64 (qemus, "blocks-allocated"));
	if (is_static)
		g_assert_cmpuint (vmi_test_fact_u64 (ours, "blocks-allocated"), ==,
				  vmi_test_fact_u64 (ours, "blocks-in-image"));
	/* Stored so that the UUID prints as the version 4 UUID it is (RTUUID byte order). */
	uuid = vmi_test_fact_string (ours, "uuid-image");
	snap = vmi_test_fact_string (ours, "uuid-last-snap");
	g_assert_true (g_uuid_string_is_valid (uuid));
	g_assert_cmpint (uuid[14], ==, '4');
	g_assert_nonnull (strchr ("89ab", uuid[19]));
	g_assert_cmpstr (uuid, !=, snap);

	/* Sparse: the pattern holds at most 96 64-KiB pieces of data. */
	g_assert_cmpuint (vmi_test_file_allocated (vdi), <, 64 * MiB);
	g_assert_cmpuint (vmi_test_file_size (vdi), ==,
			  vmi_test_fact_u64 (ours, "data-offset") +
				  vmi_test_fact_u64 (ours, "blocks-allocated") * MiB);
	g_assert_cmpuint (count_data (ours), <=, vmi_test_file_allocated (vdi));
	g_assert_cmpuint (count_data (ours), >, 0);

	g_assert_true (vmi_test_convert (&vmi_vdi_plugin, vdi, &vmi_raw_plugin, back, NULL, &error));
	g_assert_no_error (error);
	g_assert_true (vmi_test_qemu_img_compare (back, "raw", src, "raw"));
	vmi_test_save_seed ("vdi", vdi);
}

static void
test_write_bad_option (Fixture *f, gconstpointer data)
{
	g_autofree char *vdi = g_build_filename (f->dir, "x.vdi", NULL);
	g_autoptr(GVariant) options = subformat_options ("fixed");
	g_autoptr(GError) error = NULL;
	int fd = open (vdi, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	VmiImage *image;

	g_assert_cmpint (fd, >=, 0);
	image = vmi_vdi_plugin.create (fd, MiB, options, &error);
	g_assert_null (image);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull (strstr (error->message, "fixed"));
	g_clear_error (&error);

	/* Too big for our block map cap: refused before anything is written. */
	image = vmi_vdi_plugin.create (fd, 1024 * 1024 * GiB, NULL, &error);
	g_assert_null (image);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_cmpuint (vmi_test_file_size (vdi), ==, 0);
	close (fd);
}

/* Nothing written: header and block map only, as qemu-img create makes them. */
static void
test_write_empty (Fixture *f, gconstpointer data)
{
	guint64 size = GPOINTER_TO_SIZE (data);
	g_autofree char *name = g_strdup_printf ("written-empty-%" G_GUINT64_FORMAT ".vdi", size);
	g_autofree char *vdi = g_build_filename (f->dir, name, NULL);
	g_autofree char *ref = g_build_filename (f->dir, "qemu.vdi", NULL);
	g_autofree char *cmd = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) info = NULL;
	g_autoptr(VmiSource) source = NULL;
	int fd;
	VmiImage *image;

	if (!vmi_test_require_qemu_img ())
		return;
	fd = open (vdi, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	image = vmi_vdi_plugin.create (fd, size, NULL, &error);
	g_assert_no_error (error);
	g_assert_true (vmi_vdi_plugin.finish (image, &error));
	g_assert_no_error (error);
	vmi_vdi_plugin.close (image);
	close (fd);
	cmd = g_strdup_printf ("qemu-img create -q -f vdi '%s' %" G_GUINT64_FORMAT, ref, size);
	vmi_test_sh_ok ("%s", cmd);
	g_assert_cmpuint (vmi_test_file_size (vdi), ==, vmi_test_file_size (ref));
	g_assert_true (vmi_test_qemu_img_check (vdi, "vdi"));
	info = vmi_test_qemu_img_info (vdi, "vdi");
	g_assert_cmpuint (vmi_test_json_u64 (info, "virtual-size"), ==, size);
	g_assert_true (vmi_test_qemu_img_compare (vdi, "vdi", ref, "vdi"));
	source = vmi_test_open (&vmi_vdi_plugin, vdi, NULL);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, size);
	g_assert_cmpuint (count_data (source), ==, 0);
	vmi_test_save_seed ("vdi", vdi);
}

/* --- a hand-made image with small blocks: every kind of block map entry ------------------- */

#define TINY_BLOCK 4096u
#define TINY_BLOCKS 16u
#define TINY_DISK (15u * TINY_BLOCK + 512u)
#define TINY_DATA 0x400u

/* Virtual block -> entry: 0 -> image block 1, 2 -> zero, 3 -> image block 0, 15 -> image
 * block 2 (the partial last block), everything else never written. */
static void
make_tiny (const char *path, guint8 *expect)
{
	guint8 head[TINY_DATA] = { 0 };
	guint32 bmap[TINY_BLOCKS];
	g_autofree guint8 *blocks = g_malloc (3 * TINY_BLOCK);
	int fd;

	memcpy (head, "<<< Oracle VM VirtualBox Disk Image >>>\n", 40);
	for (guint i = 0; i < TINY_BLOCKS; i++)
		bmap[i] = GUINT32_TO_LE (0xffffffffu);
	bmap[0] = GUINT32_TO_LE (1);
	bmap[2] = GUINT32_TO_LE (0xfffffffeu);
	bmap[3] = GUINT32_TO_LE (0);
	bmap[15] = GUINT32_TO_LE (2);
	memcpy (head + 0x200, bmap, sizeof bmap);
	for (guint i = 0; i < 3 * TINY_BLOCK; i++)
		blocks[i] = (guint8) (i * 7 + i / TINY_BLOCK + 1);

	fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (write (fd, head, sizeof head), ==, sizeof head);
	g_assert_cmpint (write (fd, blocks, 3 * TINY_BLOCK), ==, 3 * TINY_BLOCK);
	close (fd);
	vmi_test_write_le32 (path, OFF_SIGNATURE, 0xbeda107fu);
	vmi_test_write_le32 (path, OFF_VERSION, 0x00010001u);
	vmi_test_write_le32 (path, OFF_HEADER_SIZE, 0x180);
	vmi_test_write_le32 (path, OFF_IMAGE_TYPE, 1); /* normal */
	vmi_test_write_le32 (path, OFF_BMAP, 0x200);
	vmi_test_write_le32 (path, OFF_DATA, TINY_DATA);
	vmi_test_write_le32 (path, OFF_SECTOR_SIZE, 512);
	vmi_test_write_le64 (path, OFF_DISK_SIZE, TINY_DISK);
	vmi_test_write_le32 (path, OFF_BLOCK_SIZE, TINY_BLOCK);
	vmi_test_write_le32 (path, OFF_BLOCKS, TINY_BLOCKS);
	vmi_test_write_le32 (path, OFF_ALLOCATED, 3);
	vmi_test_write_le32 (path, OFF_UUID_IMAGE, 0x12345678);
	vmi_test_write_le32 (path, OFF_UUID_SNAP, 0x9abcdef0);

	if (expect != NULL) {
		memset (expect, 0, TINY_DISK);
		memcpy (expect, blocks + TINY_BLOCK, TINY_BLOCK);
		memcpy (expect + 3 * TINY_BLOCK, blocks, TINY_BLOCK);
		memcpy (expect + 15 * TINY_BLOCK, blocks + 2 * TINY_BLOCK, TINY_DISK - 15 * TINY_BLOCK);
	}
}

static void
test_tiny (Fixture *f, gconstpointer data)
{
	g_autofree char *path = g_build_filename (f->dir, "tiny.vdi", NULL);
	g_autofree guint8 *expect = g_malloc (TINY_DISK);
	g_autofree guint8 *got = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	const char *uuid = NULL;
	VmiExtent extent = { 0 };
	guint64 size = 0;
	guint8 head[VMI_PROBE_HEAD_SIZE] = { 0 };
	int fd;

	make_tiny (path, expect);
	vmi_test_save_seed ("vdi", path);

	fd = open (path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (read (fd, head, sizeof head), >, 0x48);
	close (fd);
	g_assert_cmpuint (vmi_vdi_plugin.probe (head, sizeof head, vmi_test_file_size (path)), ==,
			  VMI_PROBE_CERTAIN);
	g_assert_cmpuint (vmi_vdi_plugin.probe (head, 0x47, vmi_test_file_size (path)), ==, VMI_PROBE_NO);
	head[0x40] ^= 1;
	g_assert_cmpuint (vmi_vdi_plugin.probe (head, sizeof head, vmi_test_file_size (path)), ==,
			  VMI_PROBE_NO);

	source = vmi_test_open (&vmi_vdi_plugin, path, NULL);
	g_assert_cmpuint (vmi_source_get_virtual_size (source), ==, TINY_DISK);
	g_assert_cmpuint (vmi_source_get_info (source)->cluster_size, ==, TINY_BLOCK);
	uuid = vmi_test_fact_string (source, "uuid-image");
	/* The first field is stored little endian. */
	g_assert_cmpstr (uuid, ==, "12345678-0000-0000-0000-000000000000");

	got = read_all (source, &size);
	g_assert_cmpuint (size, ==, TINY_DISK);
	g_assert_cmpmem (got, TINY_DISK, expect, TINY_DISK);

	/* Extents: data, hole, zero, data, then holes up to the last block. */
	g_assert_true (vmi_vdi_plugin.block_status (vmi_source_get_image (source), 0, TINY_DISK,
						    &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, TINY_BLOCK);
	g_assert_true (vmi_vdi_plugin.block_status (vmi_source_get_image (source), TINY_BLOCK + 512,
						    TINY_DISK, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
	g_assert_cmpuint (extent.length, ==, TINY_BLOCK - 512);
	g_assert_true (vmi_vdi_plugin.block_status (vmi_source_get_image (source), 2 * TINY_BLOCK,
						    TINY_DISK, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_ZERO);
	g_assert_cmpuint (extent.length, ==, TINY_BLOCK);
	g_assert_true (vmi_vdi_plugin.block_status (vmi_source_get_image (source), 4 * TINY_BLOCK,
						    TINY_DISK, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_HOLE);
	g_assert_cmpuint (extent.length, ==, 11 * TINY_BLOCK);
	g_assert_true (vmi_vdi_plugin.block_status (vmi_source_get_image (source), 15 * TINY_BLOCK,
						    TINY_DISK, &extent, &error));
	g_assert_cmpint (extent.kind, ==, VMI_EXTENT_DATA);
	g_assert_cmpuint (extent.length, ==, TINY_DISK - 15 * TINY_BLOCK);
	/* max_length is respected. */
	g_assert_true (vmi_vdi_plugin.block_status (vmi_source_get_image (source), 4 * TINY_BLOCK,
						    100, &extent, &error));
	g_assert_cmpuint (extent.length, ==, 100);
	g_assert_no_error (error);
}

/* A block map entry past the allocated blocks: inspect works, reading that block fails. */
static void
test_bad_entry (Fixture *f, gconstpointer data)
{
	g_autofree char *path = g_build_filename (f->dir, "entry.vdi", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	guint8 buf[512];
	VmiExtent extent = { 0 };

	make_tiny (path, NULL);
	vmi_test_write_le32 (path, 0x200 + 3 * 4, 3); /* block 3 -> image block 3, but 3 are allocated */
	vmi_test_save_seed ("vdi", path);
	source = vmi_test_open (&vmi_vdi_plugin, path, NULL);
	g_assert_true (vmi_vdi_plugin.read (vmi_source_get_image (source), 0, buf, sizeof buf,
					    &error));
	g_assert_no_error (error);
	g_assert_false (vmi_vdi_plugin.read (vmi_source_get_image (source), 3 * TINY_BLOCK, buf,
					     sizeof buf, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	g_assert_nonnull (strstr (error->message, "block 3 "));
	g_clear_error (&error);
	g_assert_false (vmi_vdi_plugin.block_status (vmi_source_get_image (source), 3 * TINY_BLOCK,
						     TINY_BLOCK, &extent, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	g_clear_error (&error);
	/* A run that reaches the bad block stops before it. */
	g_assert_true (vmi_vdi_plugin.block_status (vmi_source_get_image (source), 2 * TINY_BLOCK,
						    TINY_DISK - 2 * TINY_BLOCK, &extent, &error));
	g_assert_cmpuint (extent.length, ==, TINY_BLOCK);
}

/* An allocated block cut off by the end of the file. */
static void
test_entry_beyond_eof (Fixture *f, gconstpointer data)
{
	g_autofree char *path = g_build_filename (f->dir, "cut.vdi", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	guint8 buf[512];

	make_tiny (path, NULL);
	g_assert_cmpint (truncate (path, TINY_DATA + 2 * TINY_BLOCK + 100), ==, 0);
	vmi_test_save_seed ("vdi", path);
	source = vmi_test_open (&vmi_vdi_plugin, path, NULL);
	g_assert_false (vmi_vdi_plugin.read (vmi_source_get_image (source), 15 * TINY_BLOCK, buf,
					     sizeof buf, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	g_assert_nonnull (strstr (error->message, "block 15 "));
	g_assert_nonnull (strstr (error->message, "beyond the end"));
}

/* Differencing images: inspect only, the parent named by its UUID, reading refused. */
static void
test_diff (Fixture *f, gconstpointer data)
{
	g_autofree char *path = g_build_filename (f->dir, "diff.vdi", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	const VmiImageInfo *info;
	guint8 buf[512];
	VmiExtent extent = { 0 };

	make_tiny (path, NULL);
	vmi_test_write_le32 (path, OFF_IMAGE_TYPE, 4);
	vmi_test_write_le32 (path, OFF_UUID_LINK, 0xaabbccdd);
	vmi_test_save_seed ("vdi", path);
	source = vmi_test_open (&vmi_vdi_plugin, path, NULL);
	info = vmi_source_get_info (source);
	g_assert_false (vmi_source_is_safe (source));
	g_assert_cmpuint (info->references->len, ==, 1);
	g_assert_cmpstr (g_ptr_array_index (info->references, 0), ==,
			 "urn:uuid:aabbccdd-0000-0000-0000-000000000000");
	g_assert_cmpuint (info->unsafe_reasons->len, ==, 1);
	g_assert_nonnull (strstr (g_ptr_array_index (info->unsafe_reasons, 0), "aabbccdd"));
	g_assert_false (vmi_vdi_plugin.read (vmi_source_get_image (source), 0, buf, sizeof buf,
					     &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_clear_error (&error);
	g_assert_false (vmi_vdi_plugin.block_status (vmi_source_get_image (source), 0, 512, &extent,
						     &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
}

/* --- bad headers --------------------------------------------------------------------------- */

typedef struct {
	const char *name;
	guint offset; /* 0: no patch */
	guint width;  /* 4 or 8 */
	guint64 value;
	VmiError code;
	const char *fragment;
} BadCase;

static const BadCase bad_cases[] = {
	{ "signature", OFF_SIGNATURE, 4, 0xbeda1070, VMI_ERROR_UNKNOWN_FORMAT, "signature" },
	{ "version-1.0", OFF_VERSION, 4, 0x00010000, VMI_ERROR_NOT_SUPPORTED, "version 1.0" },
	{ "version-2.0", OFF_VERSION, 4, 0x00020000, VMI_ERROR_NOT_SUPPORTED, "version 2.0" },
	{ "header-size-small", OFF_HEADER_SIZE, 4, 0x100, VMI_ERROR_CORRUPT_IMAGE, "header size" },
	{ "header-size-big", OFF_HEADER_SIZE, 4, 0x10000, VMI_ERROR_CORRUPT_IMAGE, "header" },
	{ "header-size-huge", OFF_HEADER_SIZE, 4, 0xffffffff, VMI_ERROR_CORRUPT_IMAGE,
	  "beyond the end" },
	{ "image-type", OFF_IMAGE_TYPE, 4, 7, VMI_ERROR_CORRUPT_IMAGE, "image type is 7" },
	{ "sector-size", OFF_SECTOR_SIZE, 4, 4096, VMI_ERROR_NOT_SUPPORTED, "sector size" },
	{ "block-size-0", OFF_BLOCK_SIZE, 4, 0, VMI_ERROR_CORRUPT_IMAGE, "block size is 0" },
	{ "block-size-odd", OFF_BLOCK_SIZE, 4, 1000, VMI_ERROR_CORRUPT_IMAGE,
	  "block size is 1000" },
	{ "block-size-3-sectors", OFF_BLOCK_SIZE, 4, 1536, VMI_ERROR_CORRUPT_IMAGE,
	  "power of two" },
	{ "block-size-huge", OFF_BLOCK_SIZE, 4, 0x80000000u, VMI_ERROR_NOT_SUPPORTED,
	  "block size is 2147483648" },
	{ "block-extra", OFF_BLOCK_EXTRA, 4, 512, VMI_ERROR_NOT_SUPPORTED, "extra data" },
	{ "blocks-absurd", OFF_BLOCKS, 4, 0x3fffffff, VMI_ERROR_CORRUPT_IMAGE, "1073741823 blocks" },
	{ "blocks-too-few", OFF_BLOCKS, 4, 2, VMI_ERROR_CORRUPT_IMAGE, "has 2 blocks" },
	{ "disk-size-huge", OFF_DISK_SIZE, 8, G_MAXUINT64, VMI_ERROR_CORRUPT_IMAGE, "absurd" },
	{ "disk-size-big", OFF_DISK_SIZE, 8, 1ull << 40, VMI_ERROR_CORRUPT_IMAGE, "1099511627776" },
	{ "allocated", OFF_ALLOCATED, 4, 4, VMI_ERROR_CORRUPT_IMAGE, "4 blocks are allocated" },
	{ "bmap-beyond-eof", OFF_BMAP, 4, 0x10000000, VMI_ERROR_CORRUPT_IMAGE,
	  "beyond the end of the 1024-byte file" },
	{ "bmap-in-header", OFF_BMAP, 4, 0x100, VMI_ERROR_CORRUPT_IMAGE, "overlaps the header" },
	{ "bmap-unaligned", OFF_BMAP, 4, 0x204, VMI_ERROR_NOT_SUPPORTED, "block map offset 0x204" },
	{ "data-unaligned", OFF_DATA, 4, 0x401, VMI_ERROR_NOT_SUPPORTED, "data offset 0x401" },
	{ "data-in-bmap", OFF_DATA, 4, 0x200, VMI_ERROR_CORRUPT_IMAGE, "overlaps the block map" },
	{ "data-beyond-eof", OFF_DATA, 4, 0x100000, VMI_ERROR_CORRUPT_IMAGE, "data offset 0x100000" },
};

/* qemu-img's empty 3 MiB image (1024 bytes: header, block map), then one field changed. */
static void
test_bad_header (Fixture *f, gconstpointer data)
{
	const BadCase *c = data;
	g_autofree char *base = g_strdup_printf ("bad-%s.vdi", c->name);
	g_autofree char *path = g_build_filename (f->dir, base, NULL);
	g_autofree char *cmd = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	cmd = g_strdup_printf ("qemu-img create -q -f vdi '%s' 3M", path);
	vmi_test_sh_ok ("%s", cmd);
	g_assert_cmpuint (vmi_test_file_size (path), ==, 1024);
	if (c->width == 8)
		vmi_test_write_le64 (path, c->offset, c->value);
	else
		vmi_test_write_le32 (path, c->offset, (guint32) c->value);
	expect_open_error (path, c->code, c->fragment);
}

static void
test_short_files (Fixture *f, gconstpointer data)
{
	g_autofree char *empty = g_build_filename (f->dir, "empty.vdi", NULL);
	g_autofree char *one = g_build_filename (f->dir, "one-byte.vdi", NULL);
	g_autofree char *cut = g_build_filename (f->dir, "truncated-header.vdi", NULL);

	vmi_test_write_file (empty, "", 0);
	expect_open_error (empty, VMI_ERROR_UNKNOWN_FORMAT, "0-byte file");
	vmi_test_write_file (one, "<", 1);
	expect_open_error (one, VMI_ERROR_UNKNOWN_FORMAT, "1-byte file");
	make_tiny (cut, NULL);
	g_assert_cmpint (truncate (cut, 300), ==, 0);
	expect_open_error (cut, VMI_ERROR_CORRUPT_IMAGE, "truncated");
	/* Only the pre-header: the signature is there, the header is not. */
	g_assert_cmpint (truncate (cut, 0x48), ==, 0);
	expect_open_error (cut, VMI_ERROR_CORRUPT_IMAGE, "truncated");
}

/* The block map of a big disk is bounded by the file and by our cap, before any allocation. */
static void
test_big_bmap (Fixture *f, gconstpointer data)
{
	g_autofree char *path = g_build_filename (f->dir, "big.vdi", NULL);

	make_tiny (path, NULL);
	/* 64 TiB in 1 MiB blocks: a 256 MiB block map, over the 128 MiB cap. */
	vmi_test_write_le32 (path, OFF_BLOCK_SIZE, MiB);
	vmi_test_write_le64 (path, OFF_DISK_SIZE, 64ull * 1024 * GiB);
	vmi_test_write_le32 (path, OFF_BLOCKS, 64u * 1024 * 1024);
	vmi_test_write_le32 (path, OFF_DATA, 0x200 + 256 * MiB);
	expect_open_error (path, VMI_ERROR_NOT_SUPPORTED, "block map");
	/* 1 TiB: a 4 MiB block map, which the 13 KiB file does not hold. */
	vmi_test_write_le64 (path, OFF_DISK_SIZE, 1024ull * GiB);
	vmi_test_write_le32 (path, OFF_BLOCKS, 1024u * 1024);
	vmi_test_write_le32 (path, OFF_DATA, 0x200 + 4 * MiB);
	expect_open_error (path, VMI_ERROR_CORRUPT_IMAGE, "beyond the end");
}

int
main (int argc, char **argv)
{
	static const WriteCase write_cases[] = {
		{ "dynamic", 5 * MiB + 12345 },
		{ "static", 5 * MiB + 12345 },
		{ "dynamic", 3 * MiB },
		{ "static", 3 * MiB },
		{ "dynamic", 5 * GiB + MiB + 512 },
		{ "static", 5 * GiB + MiB + 512 },
	};

	g_test_init (&argc, &argv, NULL);
	vmi_test_add_with_dir ("/vdi/qemu-made/dynamic", GINT_TO_POINTER (FALSE), test_qemu_made);
	vmi_test_add_with_dir ("/vdi/qemu-made/static", GINT_TO_POINTER (TRUE), test_qemu_made);
	vmi_test_add_with_dir ("/vdi/qemu-made/reordered", NULL, test_qemu_reordered);
	vmi_test_add_with_dir ("/vdi/virtualbox-header", NULL, test_virtualbox_header);
	vmi_test_add_with_dir ("/vdi/odd-disk-size", NULL, test_odd_disk_size);
	for (guint i = 0; i < G_N_ELEMENTS (write_cases); i++) {
		g_autofree char *name = g_strdup_printf ("/vdi/write/%s/%" G_GUINT64_FORMAT,
							 write_cases[i].subformat,
							 write_cases[i].size);
		vmi_test_add_with_dir (name, &write_cases[i], test_write);
	}
	vmi_test_add_with_dir ("/vdi/write/bad-option", NULL, test_write_bad_option);
	vmi_test_add_with_dir ("/vdi/write/empty/0", GSIZE_TO_POINTER (0), test_write_empty);
	vmi_test_add_with_dir ("/vdi/write/empty/3M", GSIZE_TO_POINTER (3 * MiB), test_write_empty);
	vmi_test_add_with_dir ("/vdi/tiny", NULL, test_tiny);
	vmi_test_add_with_dir ("/vdi/bad/entry-beyond-allocated", NULL, test_bad_entry);
	vmi_test_add_with_dir ("/vdi/bad/entry-beyond-eof", NULL, test_entry_beyond_eof);
	vmi_test_add_with_dir ("/vdi/diff", NULL, test_diff);
	vmi_test_add_with_dir ("/vdi/bad/short-files", NULL, test_short_files);
	vmi_test_add_with_dir ("/vdi/bad/big-block-map", NULL, test_big_bmap);
	for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++) {
		g_autofree char *name = g_strdup_printf ("/vdi/bad/%s", bad_cases[i].name);
		vmi_test_add_with_dir (name, &bad_cases[i], test_bad_header);
	}
	return g_test_run ();
}
