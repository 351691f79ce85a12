/* The engine's check (daemon/vmi-check.c) against qemu-img check, sha256sum and md5sum. */
#include <fcntl.h>
#include <unistd.h>

#include "vmi-check.h"
#include "vmi-options.h"
#include "vmi-test-util.h"

static VmiRegistry *registry;

static VmiSource *
open_path (const char *path, const char *format, GError **error)
{
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	VmiSource *source;

	g_assert_cmpint (fd, >=, 0);
	source = vmi_source_open (registry, fd, -1, format, NULL, error);
	close (fd);
	return source;
}

static GVariant *
check_path (const char *path, const char *format, GVariant *options, GError **error)
{
	g_autoptr(VmiSource) source = open_path (path, format, NULL);
	g_autoptr(GVariant) owned = options != NULL ? g_variant_ref_sink (options) : NULL;

	g_assert_nonnull (source);
	return vmi_check (source, owned, NULL, NULL, NULL, error);
}

static guint64
result_u64 (GVariant *result, const char *key)
{
	guint64 value = 0;

	if (!g_variant_lookup (result, key, "t", &value))
		g_error ("the check result has no %s: %s", key, g_variant_print (result, TRUE));
	return value;
}

static gboolean
qcow2_has_check (void)
{
	const VmiFormatPlugin *qcow2 = vmi_registry_lookup (registry, "qcow2", NULL);

	return qcow2 != NULL && qcow2->check != NULL;
}

/* qemu-img check --output=json: its exit status, and the object in *out. */
static int
qemu_img_check_json (const char *path, JsonObject **out)
{
	g_autofree char *quoted = g_shell_quote (path);
	g_autofree char *text = NULL;
	g_autoptr(JsonParser) parser = json_parser_new ();
	g_autoptr(GError) error = NULL;
	int status;

	status = vmi_test_sh (&text, "qemu-img check -f qcow2 --output=json %s", quoted);
	g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
	*out = json_object_ref (json_node_get_object (json_parser_get_root (parser)));
	return status;
}

/* qemu-img leaves out counts that are zero. */
static guint64
json_u64_or_zero (JsonObject *object, const char *member)
{
	return json_object_has_member (object, member)
		       ? (guint64) json_object_get_int_member (object, member)
		       : 0;
}

/* A qcow2 of a pattern, written by qemu-img; *raw is the raw image it came from. */
static char *
make_qcow2 (const char *dir, char **raw)
{
	g_autofree char *raw_path = g_build_filename (dir, "pattern.raw", NULL);
	char *qcow2_path = g_build_filename (dir, "pattern.qcow2", NULL);
	g_autofree char *qr = g_shell_quote (raw_path);
	g_autofree char *qq = g_shell_quote (qcow2_path);

	vmi_test_make_pattern_image (raw_path, 8 * 1024 * 1024 + 4096, 7);
	vmi_test_qemu_img ("convert -f raw -O qcow2 %s %s", qr, qq);
	if (raw != NULL)
		*raw = g_steal_pointer (&raw_path);
	return qcow2_path;
}

static void
write_be64 (const char *path, guint64 offset, guint64 value)
{
	guint64 be = GUINT64_TO_BE (value);

	vmi_test_write_bytes (path, offset, &be, sizeof be);
}

static guint64
read_be64 (const char *path, guint64 offset)
{
	guint64 be = 0;

	vmi_test_read_bytes (path, offset, &be, sizeof be);
	return GUINT64_FROM_BE (be);
}

/* The file offset of the first L2 table of a qcow2 qemu-img wrote. */
static guint64
qcow2_first_l2 (const char *path)
{
	guint64 l1 = read_be64 (path, 40);

	return read_be64 (path, l1) & G_GUINT64_CONSTANT (0x00fffffffffffe00);
}

/* Where the 16-bit refcount of host cluster 'cluster' is (qemu-img's default refcount_order 4). */
static guint64
qcow2_refcount_entry (const char *path, guint64 cluster)
{
	guint64 table = read_be64 (path, 48);
	guint32 cluster_bits = GUINT32_FROM_BE (0);
	guint64 block;

	vmi_test_read_bytes (path, 20, &cluster_bits, sizeof cluster_bits);
	cluster_bits = GUINT32_FROM_BE (cluster_bits);
	g_assert_cmpuint (cluster_bits, ==, 16);
	/* One refcount block covers 32768 clusters of 64 KiB: the whole test image. */
	g_assert_cmpuint (cluster, <, 32768);
	block = read_be64 (path, table);
	return block + cluster * 2;
}

static void
write_be16 (const char *path, guint64 offset, guint16 value)
{
	guint16 be = GUINT16_TO_BE (value);

	vmi_test_write_bytes (path, offset, &be, sizeof be);
}

static void
test_check_good_qcow2 (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(JsonObject) qemu = NULL;
	g_autoptr(GError) error = NULL;
	gboolean checked = FALSE;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (fixture->dir, NULL);
	result = check_path (path, NULL, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (result_u64 (result, "corruptions"), ==, 0);
	g_assert_cmpuint (result_u64 (result, "leaks"), ==, 0);
	g_assert_cmpuint (result_u64 (result, "check-errors"), ==, 0);
	/* 24 blocks of 64 KiB random and 24 of text, plus the 512-byte tail's cluster. */
	g_assert_cmpuint (result_u64 (result, "data-bytes"), >=, 48 * 65536);
	g_assert_true (g_variant_lookup (result, "consistency-checked", "b", &checked));
	g_assert_cmpint (qemu_img_check_json (path, &qemu), ==, 0);
	/* The qcow2 plugin has a check of its own (plugins/qcow2/qcow2-check.c). */
	g_assert_true (checked);
	g_test_message ("image end %" G_GUINT64_FORMAT " (qemu-img %" G_GUINT64_FORMAT
			"), clusters %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " (qemu-img %"
			G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT ")",
			result_u64 (result, "image-end-offset"),
			vmi_test_json_u64 (qemu, "image-end-offset"),
			result_u64 (result, "allocated-clusters"), result_u64 (result, "total-clusters"),
			vmi_test_json_u64 (qemu, "allocated-clusters"),
			vmi_test_json_u64 (qemu, "total-clusters"));
	g_assert_cmpuint (result_u64 (result, "image-end-offset"), ==,
			  vmi_test_json_u64 (qemu, "image-end-offset"));
	g_assert_cmpuint (result_u64 (result, "total-clusters"), ==,
			  vmi_test_json_u64 (qemu, "total-clusters"));
	g_assert_cmpuint (result_u64 (result, "allocated-clusters"), ==,
			  vmi_test_json_u64 (qemu, "allocated-clusters"));
	g_assert_cmpuint (result_u64 (result, "fragmented-clusters"), ==,
			  json_u64_or_zero (qemu, "fragmented-clusters"));
}

/* A refcount lowered below the number of references is a corruption; one on a cluster that
 * nothing uses, a leak. */
static void
test_check_qcow2_refcount (VmiTestDirFixture *fixture, gconstpointer data)
{
	gboolean lower = GPOINTER_TO_INT (data);
	g_autofree char *path = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(JsonObject) qemu = NULL;
	g_autoptr(GError) error = NULL;
	guint64 l2, data_cluster;
	int status;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (fixture->dir, NULL);
	/* The first data cluster (guest offset 0 holds random data). */
	l2 = qcow2_first_l2 (path);
	data_cluster = (read_be64 (path, l2) & G_GUINT64_CONSTANT (0x00fffffffffffe00)) >> 16;
	g_assert_cmpuint (data_cluster, >, 0);
	if (lower) {
		write_be16 (path, qcow2_refcount_entry (path, data_cluster), 0);
	} else {
		/* A cluster appended to the file that nothing uses: a pure leak. (Raising a used
		 * cluster's count is also a corruption: its L2 entry says "copied".) */
		guint64 size = vmi_test_file_size (path);
		guint64 unused = (size + 65535) / 65536;

		vmi_test_sh_ok ("truncate -s %" G_GUINT64_FORMAT " '%s'", (unused + 1) * 65536, path);
		write_be16 (path, qcow2_refcount_entry (path, unused), 1);
	}
	status = qemu_img_check_json (path, &qemu);
	g_assert_cmpint (status, ==, lower ? 2 : 3);
	g_assert_true (qcow2_has_check ());
	result = check_path (path, NULL, NULL, &error);
	g_assert_no_error (error);
	g_test_message ("corruptions %" G_GUINT64_FORMAT " (qemu-img %" G_GUINT64_FORMAT
			"), leaks %" G_GUINT64_FORMAT " (qemu-img %" G_GUINT64_FORMAT ")",
			result_u64 (result, "corruptions"), json_u64_or_zero (qemu, "corruptions"),
			result_u64 (result, "leaks"), json_u64_or_zero (qemu, "leaks"));
	g_assert_cmpuint (result_u64 (result, "corruptions"), ==,
			  json_u64_or_zero (qemu, "corruptions"));
	g_assert_cmpuint (result_u64 (result, "leaks"), ==, json_u64_or_zero (qemu, "leaks"));
	g_assert_cmpuint (result_u64 (result, lower ? "corruptions" : "leaks"), >, 0);
}

/* An L2 entry that points past the end of the file: the read pass finds it whatever the plugin's
 * check says, and qemu-img check calls it an error. */
static void
test_check_qcow2_bad_l2 (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(JsonObject) qemu = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char **problems = NULL;
	gboolean found = FALSE;
	guint64 l2;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (fixture->dir, NULL);
	l2 = qcow2_first_l2 (path);
	/* Cluster 0 (guest offset 0, random data) now lies 1 GiB into a file of about 4 MiB. */
	write_be64 (path, l2, G_GUINT64_CONSTANT (0x8000000000000000) | (1u << 30));
	g_assert_cmpint (qemu_img_check_json (path, &qemu), !=, 0);
	result = check_path (path, NULL, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (result_u64 (result, "check-errors"), ==, 1);
	g_assert_true (g_variant_lookup (result, "problems", "^a&s", &problems));
	/* The plugin's own findings come first, then the failed read. */
	for (guint i = 0; problems[i] != NULL; i++) {
		g_test_message ("problem: %s", problems[i]);
		if (strstr (problems[i], "offset 0 of the virtual disk") != NULL)
			found = TRUE;
	}
	g_assert_true (found);
	g_test_message ("corruptions %" G_GUINT64_FORMAT " (qemu-img %" G_GUINT64_FORMAT ")",
			result_u64 (result, "corruptions"), json_u64_or_zero (qemu, "corruptions"));
	g_assert_true (qcow2_has_check ());
	g_assert_cmpuint (result_u64 (result, "corruptions"), ==,
			  json_u64_or_zero (qemu, "corruptions"));
}

/* A file cut short inside its data: the reads of the lost clusters fail, and the format's check
 * (when there is one) agrees with qemu-img check that the image is damaged. */
static void
test_check_qcow2_truncated (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(JsonObject) qemu = NULL;
	g_autoptr(GError) error = NULL;
	guint64 size;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (fixture->dir, NULL);
	size = vmi_test_file_size (path);
	/* qemu-img puts the data after the tables: the last 256 KiB are data clusters. */
	vmi_test_sh_ok ("truncate -s %" G_GUINT64_FORMAT " '%s'", size - 4 * 65536, path);
	g_assert_cmpint (qemu_img_check_json (path, &qemu), ==, 2);
	result = check_path (path, NULL, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (result_u64 (result, "check-errors"), >, 0);
	g_test_message ("corruptions %" G_GUINT64_FORMAT " (qemu-img %" G_GUINT64_FORMAT
			"), failed reads %" G_GUINT64_FORMAT,
			result_u64 (result, "corruptions"), json_u64_or_zero (qemu, "corruptions"),
			result_u64 (result, "check-errors"));
	g_assert_true (qcow2_has_check ());
	g_assert_cmpuint (result_u64 (result, "corruptions"), ==,
			  json_u64_or_zero (qemu, "corruptions"));
}

/* Every format qemu-img writes: a clean check, and the content digest of the raw disk. */
static void
test_check_formats (VmiTestDirFixture *fixture, gconstpointer data)
{
	const struct {
		const char *qemu_format;
		const char *options;
	} formats[] = {
		{ "vmdk", "" },
		{ "vmdk", "-o subformat=streamOptimized" },
		/* force_size: the exact size, not one rounded to a CHS geometry. */
		{ "vpc", "-o force_size=on" },
		{ "vhdx", "" },
		{ "vdi", "" },
		{ "qcow2", "-c" },
	};
	g_autofree char *raw = g_build_filename (fixture->dir, "disk.raw", NULL);
	g_autoptr(GVariant) expected = NULL;
	const char *want = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (raw, 4 * 1024 * 1024, 9);
	expected = check_path (raw, "raw", g_variant_new_parsed ("{'content-sha256': <true>}"),
			       NULL);
	g_assert_true (g_variant_lookup (expected, "content-sha256", "&s", &want));
	for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
		g_autofree char *path = g_strdup_printf ("%s/disk-%u.img", fixture->dir, i);
		g_autoptr(GVariant) result = NULL;
		g_autoptr(GError) error = NULL;
		const char *got = NULL;
		const char *format = NULL;

		vmi_test_qemu_img ("convert -f raw -O %s %s '%s' '%s'", formats[i].qemu_format,
				   formats[i].options, raw, path);
		result = check_path (path, NULL,
				     g_variant_new_parsed ("{'content-sha256': <true>}"), &error);
		g_assert_no_error (error);
		g_assert_true (g_variant_lookup (result, "format", "&s", &format));
		g_test_message ("%s %s: %s", formats[i].qemu_format, formats[i].options, format);
		g_assert_cmpuint (result_u64 (result, "corruptions"), ==, 0);
		g_assert_cmpuint (result_u64 (result, "leaks"), ==, 0);
		g_assert_cmpuint (result_u64 (result, "check-errors"), ==, 0);
		g_assert_true (g_variant_lookup (result, "content-sha256", "&s", &got));
		g_assert_cmpstr (got, ==, want);
	}
}

/* An OVA is checked through its disk, as Convert reads it; a choice it lacks is refused. */
static void
test_check_ova (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = g_build_filename (fixture->dir, "disk.raw", NULL);
	g_autofree char *ova = g_build_filename (fixture->dir, "vm.ova", NULL);
	const VmiFormatPlugin *ova_plugin = vmi_registry_lookup (registry, "ova", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) expected = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GVariant) refused = NULL;
	g_autoptr(GError) error = NULL;
	const char *want = NULL, *got = NULL, *member = NULL, *format = NULL;
	int fd;

	if (ova_plugin == NULL || (ova_plugin->flags & VMI_FORMAT_CAN_WRITE) == 0) {
		g_test_skip ("the ova plugin cannot write OVAs in this build");
		return;
	}
	vmi_test_make_pattern_image (raw, 2 * 1024 * 1024, 21);
	expected = check_path (raw, "raw", g_variant_new_parsed ("{'content-sha256': <true>}"),
			       NULL);
	g_assert_true (g_variant_lookup (expected, "content-sha256", "&s", &want));
	source = open_path (raw, "raw", &error);
	g_assert_no_error (error);
	fd = open (ova, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	g_assert_cmpint (fd, >=, 0);
	g_assert_true (vmi_convert (source, ova_plugin, fd, NULL, NULL, NULL, NULL, &error));
	g_assert_no_error (error);
	close (fd);

	result = check_path (ova, NULL, g_variant_new_parsed ("{'content-sha256': <true>}"),
			     &error);
	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (result, "member", "&s", &member));
	g_assert_true (g_variant_lookup (result, "format", "&s", &format));
	g_test_message ("checked member %s (%s)", member, format);
	g_assert_cmpuint (result_u64 (result, "corruptions"), ==, 0);
	g_assert_cmpuint (result_u64 (result, "check-errors"), ==, 0);
	g_assert_true (g_variant_lookup (result, "content-sha256", "&s", &got));
	g_assert_cmpstr (got, ==, want);

	refused = check_path (ova, NULL, g_variant_new_parsed ("{'disk': <uint64 1>}"), &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_null (refused);
	g_clear_error (&error);
	refused = check_path (raw, "raw", g_variant_new_parsed ("{'member': <'x'>}"), &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_null (refused);
}

static char *
tool_digest (const char *tool, const char *path)
{
	g_autofree char *quoted = g_shell_quote (path);
	g_autofree char *out = NULL;

	g_assert_cmpint (vmi_test_sh (&out, "%s %s", tool, quoted), ==, 0);
	g_assert_cmpuint (strlen (out), >, 32);
	return g_strndup (out, strcspn (out, " "));
}

static void
test_check_digests (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = NULL;
	g_autofree char *path = NULL;
	g_autofree char *sha = NULL;
	g_autofree char *md5 = NULL;
	g_autofree char *content_qcow2 = NULL;
	g_autofree char *content_raw = NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GVariant) result_raw = NULL;
	g_autoptr(GError) error = NULL;
	const char *value = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	path = make_qcow2 (fixture->dir, &raw);
	result = check_path (path, NULL,
			     g_variant_new_parsed ("{'sha256': <true>, 'md5': <true>, "
						   "'content-sha256': <true>}"),
			     &error);
	g_assert_no_error (error);
	sha = tool_digest ("sha256sum", path);
	md5 = tool_digest ("md5sum", path);
	g_assert_true (g_variant_lookup (result, "sha256", "&s", &value));
	g_assert_cmpstr (value, ==, sha);
	g_assert_true (g_variant_lookup (result, "md5", "&s", &value));
	g_assert_cmpstr (value, ==, md5);
	g_assert_true (g_variant_lookup (result, "content-sha256", "s", &content_qcow2));
	g_assert_cmpuint (strlen (content_qcow2), ==, 64);

	/* The raw disk it came from has other file digests and the same content digest. */
	result_raw = check_path (raw, "raw",
				 g_variant_new_parsed ("{'sha256': <true>, 'content-sha256': <true>}"),
				 &error);
	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (result_raw, "content-sha256", "s", &content_raw));
	g_assert_cmpstr (content_raw, ==, content_qcow2);
	g_assert_true (g_variant_lookup (result_raw, "sha256", "&s", &value));
	g_assert_cmpstr (value, !=, sha);
	g_assert_false (g_variant_lookup (result_raw, "md5", "&s", &value));
}

/* A format without a check of its own still gets the read pass; no digest unless asked. */
static void
test_check_raw (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = g_build_filename (fixture->dir, "disk.raw", NULL);
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;
	const VmiFormatPlugin *raw = vmi_registry_lookup (registry, "raw", NULL);
	gboolean checked = TRUE;
	const char *value;

	vmi_test_make_pattern_image (path, 1024 * 1024, 3);
	result = check_path (path, "raw", NULL, &error);
	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (result, "consistency-checked", "b", &checked));
	g_assert_cmpint (checked, ==, raw->check != NULL);
	g_assert_cmpuint (result_u64 (result, "corruptions"), ==, 0);
	g_assert_cmpuint (result_u64 (result, "check-errors"), ==, 0);
	g_assert_cmpuint (result_u64 (result, "virtual-size"), ==, 1024 * 1024);
	g_assert_cmpuint (result_u64 (result, "image-end-offset"), ==, 1024 * 1024);
	g_assert_false (g_variant_lookup (result, "sha256", "&s", &value));
	g_assert_false (g_variant_lookup (result, "content-sha256", "&s", &value));
}

typedef struct {
	guint64 last;
	guint64 total;
	guint calls;
	GCancellable *cancel_after_first;
} Progress;

static void
progress_cb (guint64 done, guint64 total, gpointer user_data)
{
	Progress *progress = user_data;

	g_assert_cmpuint (done, >=, progress->last);
	g_assert_cmpuint (done, <=, total);
	progress->last = done;
	progress->total = total;
	progress->calls++;
	if (progress->cancel_after_first != NULL)
		g_cancellable_cancel (progress->cancel_after_first);
}

/* Progress covers every pass and ends at its total: the read, the file digest, the content. */
static void
test_check_progress (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = g_build_filename (fixture->dir, "disk.raw", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) options = g_variant_ref_sink (
		g_variant_new_parsed ("{'md5': <true>, 'content-sha256': <true>}"));
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;
	Progress progress = { 0 };

	vmi_test_make_pattern_image (path, 2 * 1024 * 1024, 5);
	source = open_path (path, "raw", &error);
	g_assert_no_error (error);
	result = vmi_check (source, options, progress_cb, &progress, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (progress.total, ==, 3 * 2 * 1024 * 1024);
	g_assert_cmpuint (progress.last, ==, progress.total);
	g_assert_cmpuint (progress.calls, >, 2);
}

static void
test_check_cancel (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = g_build_filename (fixture->dir, "disk.raw", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new ();
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;
	Progress progress = { .cancel_after_first = cancellable };

	vmi_test_make_pattern_image (path, 16 * 1024 * 1024, 5);
	source = open_path (path, "raw", &error);
	g_assert_no_error (error);
	result = vmi_check (source, NULL, progress_cb, &progress, cancellable, &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CANCELLED);
	g_assert_null (result);
}

static void
test_check_bad_option (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *path = g_build_filename (fixture->dir, "disk.raw", NULL);
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;

	vmi_test_make_pattern_image (path, 65536, 5);
	result = check_path (path, "raw", g_variant_new_parsed ("{'sha512': <true>}"), &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull (strstr (error->message, "sha512"));
	g_clear_error (&error);
	result = check_path (path, "raw", g_variant_new_parsed ("{'md5': <'yes'>}"), &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
}

int
main (int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	const char *plugin_dir = g_getenv ("VMI_TEST_PLUGIN_DIR");
	int ret;

	g_test_init (&argc, &argv, NULL);
	g_assert_nonnull (plugin_dir);
	registry = vmi_registry_new ();
	g_assert_true (vmi_registry_load_dir (registry, plugin_dir, &error));
	vmi_test_add_with_dir ("/check/qcow2/good", NULL, test_check_good_qcow2);
	vmi_test_add_with_dir ("/check/qcow2/refcount-too-low", GINT_TO_POINTER (TRUE),
			       test_check_qcow2_refcount);
	vmi_test_add_with_dir ("/check/qcow2/refcount-too-high", GINT_TO_POINTER (FALSE),
			       test_check_qcow2_refcount);
	vmi_test_add_with_dir ("/check/qcow2/l2-beyond-end", NULL, test_check_qcow2_bad_l2);
	vmi_test_add_with_dir ("/check/qcow2/truncated", NULL, test_check_qcow2_truncated);
	vmi_test_add_with_dir ("/check/formats", NULL, test_check_formats);
	vmi_test_add_with_dir ("/check/ova", NULL, test_check_ova);
	vmi_test_add_with_dir ("/check/digests", NULL, test_check_digests);
	vmi_test_add_with_dir ("/check/raw", NULL, test_check_raw);
	vmi_test_add_with_dir ("/check/progress", NULL, test_check_progress);
	vmi_test_add_with_dir ("/check/cancel", NULL, test_check_cancel);
	vmi_test_add_with_dir ("/check/bad-option", NULL, test_check_bad_option);
	ret = g_test_run ();
	g_object_unref (registry);
	return ret;
}
