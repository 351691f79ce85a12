/* The engine's compare (daemon/vmi-compare.c) against qemu-img compare. */
#include <fcntl.h>
#include <unistd.h>

#include "vmi-compare.h"
#include "vmi-test-util.h"

static VmiRegistry *registry;

#define PATTERN_SIZE (8u * 1024u * 1024u + 4096u)

static VmiSource *
open_path (const char *path, GError **error)
{
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	VmiSource *source;

	g_assert_cmpint (fd, >=, 0);
	source = vmi_source_open (registry, fd, -1, NULL, NULL, error);
	close (fd);
	return source;
}

static GVariant *
compare_paths (const char *a, const char *b, GVariant *options, GError **error)
{
	g_autoptr(VmiSource) sa = open_path (a, NULL);
	g_autoptr(VmiSource) sb = open_path (b, NULL);
	g_autoptr(GVariant) owned = options != NULL ? g_variant_ref_sink (options) : NULL;

	g_assert_nonnull (sa);
	g_assert_nonnull (sb);
	return vmi_compare (sa, sb, owned, NULL, NULL, NULL, error);
}

/* TRUE if identical; else *offset is the first difference. */
static gboolean
compare_ok (const char *a, const char *b, gboolean strict, guint64 *offset)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) result = NULL;
	gboolean identical = FALSE;
	gboolean has_offset;

	result = compare_paths (a, b, g_variant_new_parsed ("{'strict': <%b>}", strict), &error);
	g_assert_no_error (error);
	g_assert_true (g_variant_lookup (result, "identical", "b", &identical));
	has_offset = g_variant_lookup (result, "first-difference", "t", offset);
	g_assert_cmpint (has_offset, ==, !identical);
	return identical;
}

static guint64
virtual_size (const char *path)
{
	g_autoptr(VmiSource) source = open_path (path, NULL);

	g_assert_nonnull (source);
	return vmi_source_get_virtual_size (source);
}

/*
 * qemu-img compare: TRUE if identical; else *offset is the offset it names, or G_MAXUINT64 when
 * it names none (a strict size mismatch). Its -s also fails on a difference of allocation (a
 * written zero against a hole), which is no difference of content: it is used only where the
 * engine's strict matters, for disks of different sizes.
 */
static gboolean
qemu_compare (const char *a, const char *b, gboolean strict, guint64 *offset)
{
	g_autofree char *qa = g_shell_quote (a);
	g_autofree char *qb = g_shell_quote (b);
	g_autofree char *out = NULL;
	const char *at;
	int status;

	strict = strict && virtual_size (a) != virtual_size (b);
	status = vmi_test_sh (&out, "qemu-img compare %s %s %s", strict ? "-s" : "", qa, qb);
	if (status == 0) {
		g_assert_nonnull (strstr (out, "Images are identical."));
		return TRUE;
	}
	g_assert_cmpint (status, ==, 1);
	at = strstr (out, "Content mismatch at offset ");
	*offset = at != NULL ? g_ascii_strtoull (at + strlen ("Content mismatch at offset "), NULL,
						 10)
			     : G_MAXUINT64;
	return FALSE;
}

/* qemu-img names the 512-byte sector of a difference; the engine names the byte. */
static void
assert_agree (const char *a, const char *b, gboolean strict, gboolean expect_identical,
	      guint64 expect_offset)
{
	guint64 ours = 0, theirs = 0;

	g_assert_cmpint (compare_ok (a, b, strict, &ours), ==, expect_identical);
	g_assert_cmpint (qemu_compare (a, b, strict, &theirs), ==, expect_identical);
	if (expect_identical)
		return;
	g_assert_cmpuint (ours, ==, expect_offset);
	if (theirs != G_MAXUINT64)
		g_assert_cmpuint (theirs, ==, ours - ours % 512);
}

static char *
make_pattern (const char *dir, const char *name)
{
	char *path = g_build_filename (dir, name, NULL);

	vmi_test_make_pattern_image (path, PATTERN_SIZE, 11);
	return path;
}

static char *
qemu_convert (const char *src, const char *fmt, const char *opts, const char *dest)
{
	g_autofree char *qs = g_shell_quote (src);
	g_autofree char *qd = g_shell_quote (dest);

	vmi_test_qemu_img ("convert -f raw -O %s %s %s %s", fmt, opts, qs, qd);
	return g_strdup (dest);
}

static void
test_compare_equal (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = NULL;
	g_autofree char *qcow2 = NULL;
	g_autofree char *qcow2_path = g_build_filename (fixture->dir, "p.qcow2", NULL);

	if (!vmi_test_require_qemu_img ())
		return;
	raw = make_pattern (fixture->dir, "p.raw");
	qcow2 = qemu_convert (raw, "qcow2", "", qcow2_path);
	assert_agree (raw, qcow2, TRUE, TRUE, 0);
	assert_agree (qcow2, raw, FALSE, TRUE, 0);
	assert_agree (qcow2, qcow2, TRUE, TRUE, 0);
}

/* qcow2 and VMDK (sparse and streamOptimized) of the same disk: equal. */
static void
test_compare_cross_format (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = NULL;
	g_autofree char *qcow2_path = g_build_filename (fixture->dir, "p.qcow2", NULL);
	g_autofree char *vmdk_path = g_build_filename (fixture->dir, "p.vmdk", NULL);
	g_autofree char *stream_path = g_build_filename (fixture->dir, "s.vmdk", NULL);
	g_autofree char *qcow2 = NULL;
	g_autofree char *vmdk = NULL;
	g_autofree char *stream = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	raw = make_pattern (fixture->dir, "p.raw");
	qcow2 = qemu_convert (raw, "qcow2", "-c", qcow2_path);
	vmdk = qemu_convert (raw, "vmdk", "", vmdk_path);
	stream = qemu_convert (raw, "vmdk", "-o subformat=streamOptimized", stream_path);
	assert_agree (qcow2, vmdk, TRUE, TRUE, 0);
	assert_agree (vmdk, stream, TRUE, TRUE, 0);
	/* And the other formats qemu-img writes (vpc with its exact size, not a CHS rounding). */
	{
		const char *others[][2] = { { "vhdx", "" }, { "vdi", "" }, { "vpc", "-o force_size=on" } };

		for (guint i = 0; i < G_N_ELEMENTS (others); i++) {
			g_autofree char *name = g_strdup_printf ("p-%s.img", others[i][0]);
			g_autofree char *path = g_build_filename (fixture->dir, name, NULL);
			g_autofree char *made = qemu_convert (raw, others[i][0], others[i][1], path);

			assert_agree (qcow2, made, TRUE, TRUE, 0);
		}
	}
	/* A difference in a VMDK against the qcow2 is found at its byte. */
	vmi_test_write_bytes (raw, 3 * 65536 + 777, "!", 1);
	g_free (vmdk);
	g_assert_cmpint (unlink (vmdk_path), ==, 0);
	vmdk = qemu_convert (raw, "vmdk", "", vmdk_path);
	assert_agree (qcow2, vmdk, TRUE, FALSE, 3 * 65536 + 777);
}

/* One byte changed: in data, in written zeros, in a hole, in the last sector. */
static void
test_compare_one_byte (VmiTestDirFixture *fixture, gconstpointer data)
{
	const guint64 offsets[] = { 0, 65536 + 4096, 3 * 65536 + 4095, 100 * 65536 + 512,
				    PATTERN_SIZE - 1, 2 * 65536 + 1 };
	g_autofree char *raw = NULL;
	g_autofree char *qcow2_path = g_build_filename (fixture->dir, "p.qcow2", NULL);
	g_autofree char *qcow2 = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	raw = make_pattern (fixture->dir, "p.raw");
	qcow2 = qemu_convert (raw, "qcow2", "", qcow2_path);
	for (guint i = 0; i < G_N_ELEMENTS (offsets); i++) {
		g_autofree char *copy = g_build_filename (fixture->dir, "changed.raw", NULL);
		guint8 byte = 0;

		vmi_test_sh_ok ("cp --sparse=always '%s' '%s'", raw, copy);
		vmi_test_read_bytes (copy, offsets[i], &byte, 1);
		byte ^= 0x5a;
		vmi_test_write_bytes (copy, offsets[i], &byte, 1);
		g_test_message ("one byte changed at offset %" G_GUINT64_FORMAT, offsets[i]);
		assert_agree (qcow2, copy, TRUE, FALSE, offsets[i]);
		assert_agree (copy, qcow2, TRUE, FALSE, offsets[i]);
	}
}

/* Sizes differ: strict says so at the shorter size; otherwise the tail must be zeros. */
static void
test_compare_sizes (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = NULL;
	g_autofree char *longer = g_build_filename (fixture->dir, "longer.raw", NULL);
	g_autofree char *longer_qcow2 = g_build_filename (fixture->dir, "longer.qcow2", NULL);
	g_autofree char *tail = NULL;

	if (!vmi_test_require_qemu_img ())
		return;
	raw = make_pattern (fixture->dir, "p.raw");
	vmi_test_sh_ok ("cp --sparse=always '%s' '%s' && truncate -s %u '%s'", raw, longer,
			PATTERN_SIZE + 3u * 1024u * 1024u, longer);
	tail = qemu_convert (longer, "qcow2", "", longer_qcow2);
	assert_agree (raw, tail, FALSE, TRUE, 0);
	assert_agree (tail, raw, FALSE, TRUE, 0);
	assert_agree (raw, tail, TRUE, FALSE, PATTERN_SIZE);
	/* Data past the end of the shorter disk. */
	vmi_test_write_bytes (longer, PATTERN_SIZE + 2u * 1024u * 1024u + 1000, "x", 1);
	assert_agree (raw, longer, FALSE, FALSE, PATTERN_SIZE + 2u * 1024u * 1024u + 1000);
	assert_agree (longer, raw, FALSE, FALSE, PATTERN_SIZE + 2u * 1024u * 1024u + 1000);
}

/* An OVA is compared through its disk; a member it lacks is refused. */
static void
test_compare_ova (VmiTestDirFixture *fixture, gconstpointer data)
{
	const VmiFormatPlugin *ova_plugin = vmi_registry_lookup (registry, "ova", NULL);
	g_autofree char *raw = NULL;
	g_autofree char *ova = g_build_filename (fixture->dir, "vm.ova", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) refused = NULL;
	g_autoptr(GError) error = NULL;
	guint64 where = 0;
	int fd;

	if (ova_plugin == NULL || (ova_plugin->flags & VMI_FORMAT_CAN_WRITE) == 0) {
		g_test_skip ("the ova plugin cannot write OVAs in this build");
		return;
	}
	raw = make_pattern (fixture->dir, "p.raw");
	source = open_path (raw, &error);
	g_assert_no_error (error);
	fd = open (ova, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	g_assert_cmpint (fd, >=, 0);
	g_assert_true (vmi_convert (source, ova_plugin, fd, NULL, NULL, NULL, NULL, &error));
	g_assert_no_error (error);
	close (fd);

	g_assert_true (compare_ok (ova, raw, TRUE, &where));
	g_assert_true (compare_ok (raw, ova, TRUE, &where));
	vmi_test_write_bytes (raw, 5 * 65536 + 3, "*", 1);
	g_assert_false (compare_ok (ova, raw, TRUE, &where));
	g_assert_cmpuint (where, ==, 5 * 65536 + 3);

	refused = compare_paths (ova, raw, g_variant_new_parsed ("{'disk-a': <uint64 2>}"), &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull (strstr (error->message, "first image"));
	g_assert_null (refused);
}

static void
cancel_cb (guint64 done, guint64 total, gpointer user_data)
{
	g_cancellable_cancel (user_data);
}

static void
test_compare_cancel (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = make_pattern (fixture->dir, "p.raw");
	g_autoptr(VmiSource) a = open_path (raw, NULL);
	g_autoptr(VmiSource) b = open_path (raw, NULL);
	g_autoptr(GCancellable) cancellable = g_cancellable_new ();
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;

	result = vmi_compare (a, b, NULL, cancel_cb, cancellable, cancellable, &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CANCELLED);
	g_assert_null (result);
}

static void
test_compare_bad_option (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = make_pattern (fixture->dir, "p.raw");
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;

	result = compare_paths (raw, raw, g_variant_new_parsed ("{'strict': <1>}"), &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_null (result);
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
	vmi_test_add_with_dir ("/compare/equal", NULL, test_compare_equal);
	vmi_test_add_with_dir ("/compare/cross-format", NULL, test_compare_cross_format);
	vmi_test_add_with_dir ("/compare/one-byte", NULL, test_compare_one_byte);
	vmi_test_add_with_dir ("/compare/sizes", NULL, test_compare_sizes);
	vmi_test_add_with_dir ("/compare/ova", NULL, test_compare_ova);
	vmi_test_add_with_dir ("/compare/cancel", NULL, test_compare_cancel);
	vmi_test_add_with_dir ("/compare/bad-option", NULL, test_compare_bad_option);
	ret = g_test_run ();
	g_object_unref (registry);
	return ret;
}
