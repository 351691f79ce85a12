/* The engine's measure (daemon/vmi-measure.c) against qemu-img measure. */
#include <fcntl.h>
#include <unistd.h>

#include "vmi-source-measure.h"
#include "vmi-test-util.h"

static VmiRegistry *registry;

static VmiSource *
open_path (const char *path, const char *format)
{
	g_autoptr(GError) error = NULL;
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	VmiSource *source;

	g_assert_cmpint (fd, >=, 0);
	source = vmi_source_open (registry, fd, -1, format, NULL, &error);
	g_assert_no_error (error);
	close (fd);
	return source;
}

static guint64
result_u64 (GVariant *result, const char *key)
{
	guint64 value = 0;

	g_assert_true (g_variant_lookup (result, key, "t", &value));
	return value;
}

/* The writers of qcow2 and raw measure (their hooks, plugins/qcow2/qcow2-measure.c, raw). */
static gboolean
require_measure (const char *format)
{
	const VmiFormatPlugin *plugin = vmi_registry_lookup (registry, format, NULL);

	g_assert_nonnull (plugin);
	g_assert_nonnull (plugin->measure);
	return TRUE;
}

/*
 * Measures src (in src_fmt) as out_fmt with options, and the same with qemu-img measure
 * (qemu_opts its -o), and asserts both numbers agree.
 */
static void
assert_agree (const char *src, const char *src_fmt, const char *out_fmt, GVariant *options,
	      const char *qemu_opts)
{
	g_autoptr(VmiSource) source = open_path (src, src_fmt);
	g_autoptr(GVariant) owned = options != NULL ? g_variant_ref_sink (options) : NULL;
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonParser) parser = json_parser_new ();
	g_autofree char *quoted = g_shell_quote (src);
	g_autofree char *out = NULL;
	JsonObject *qemu;
	const VmiFormatPlugin *plugin = vmi_registry_lookup (registry, out_fmt, NULL);

	result = vmi_measure (source, plugin, owned, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpint (vmi_test_sh (&out, "qemu-img measure --output=json -f %s -O %s %s %s",
				      src_fmt, out_fmt, qemu_opts, quoted),
			 ==, 0);
	g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
	qemu = json_node_get_object (json_parser_get_root (parser));
	g_test_message ("%s as %s %s: required %" G_GUINT64_FORMAT " (qemu-img %" G_GUINT64_FORMAT
			"), fully allocated %" G_GUINT64_FORMAT " (qemu-img %" G_GUINT64_FORMAT ")",
			src_fmt, out_fmt, qemu_opts, result_u64 (result, "required"),
			vmi_test_json_u64 (qemu, "required"), result_u64 (result, "fully-allocated"),
			vmi_test_json_u64 (qemu, "fully-allocated"));
	g_assert_cmpuint (result_u64 (result, "required"), ==, vmi_test_json_u64 (qemu, "required"));
	g_assert_cmpuint (result_u64 (result, "fully-allocated"), ==,
			  vmi_test_json_u64 (qemu, "fully-allocated"));
	g_assert_cmpuint (result_u64 (result, "virtual-size"), ==,
			  vmi_source_get_virtual_size (source));
}

static char *
make_pattern (const char *dir, guint64 size)
{
	char *path = g_build_filename (dir, "p.raw", NULL);

	vmi_test_make_pattern_image (path, size, 13);
	return path;
}

static void
test_measure_qcow2 (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = NULL;
	g_autofree char *qcow2 = g_build_filename (fixture->dir, "p.qcow2", NULL);
	g_autofree char *qr = NULL;
	g_autofree char *qq = g_shell_quote (qcow2);

	if (!vmi_test_require_qemu_img () || !require_measure ("qcow2"))
		return;
	raw = make_pattern (fixture->dir, 8 * 1024 * 1024);
	qr = g_shell_quote (raw);
	assert_agree (raw, "raw", "qcow2", NULL, "");
	assert_agree (raw, "raw", "qcow2", g_variant_new_parsed ("{'cluster-size': <%t>}",
								 (guint64) 4096),
		      "-o cluster_size=4096");
	assert_agree (raw, "raw", "qcow2", g_variant_new_parsed ("{'cluster-size': <%t>}",
								 (guint64) 2097152),
		      "-o cluster_size=2M");
	/* From a qcow2: its zero-read clusters (written zeros stay data in qemu-img's copy). */
	vmi_test_qemu_img ("convert -f raw -O qcow2 %s %s", qr, qq);
	assert_agree (qcow2, "qcow2", "qcow2", NULL, "");
}

/* A size that is no multiple of the cluster: the last cluster is still a whole one. */
static void
test_measure_qcow2_unaligned (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = NULL;

	if (!vmi_test_require_qemu_img () || !require_measure ("qcow2"))
		return;
	raw = make_pattern (fixture->dir, 8 * 1024 * 1024 + 4096);
	assert_agree (raw, "raw", "qcow2", NULL, "");
	assert_agree (raw, "raw", "qcow2", g_variant_new_parsed ("{'cluster-size': <%t>}",
								 (guint64) 1048576),
		      "-o cluster_size=1M");
}

/* A sparse 64 GiB disk: the tables of the fully allocated image are large, the data small. */
static void
test_measure_qcow2_sparse (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = NULL;

	if (!vmi_test_require_qemu_img () || !require_measure ("qcow2"))
		return;
	raw = make_pattern (fixture->dir, G_GUINT64_CONSTANT (64) << 30);
	assert_agree (raw, "raw", "qcow2", NULL, "");
}

static void
test_measure_raw (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = NULL;
	g_autofree char *vmdk = g_build_filename (fixture->dir, "p.vmdk", NULL);
	g_autofree char *qr = NULL;
	g_autofree char *qv = g_shell_quote (vmdk);

	if (!vmi_test_require_qemu_img () || !require_measure ("raw"))
		return;
	raw = make_pattern (fixture->dir, 4 * 1024 * 1024);
	qr = g_shell_quote (raw);
	assert_agree (raw, "raw", "raw", NULL, "");
	vmi_test_qemu_img ("convert -f raw -O vmdk %s %s", qr, qv);
	assert_agree (vmdk, "vmdk", "raw", NULL, "");
}

/* A plugin without the hook, or one that cannot write, is NotSupported naming its format. */
static void
test_measure_not_supported (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = make_pattern (fixture->dir, 65536);
	g_autoptr(VmiSource) source = open_path (raw, "raw");
	GPtrArray *plugins = vmi_registry_get_plugins (registry);
	guint tried = 0;

	for (guint i = 0; i < plugins->len; i++) {
		const VmiFormatPlugin *plugin = g_ptr_array_index (plugins, i);
		g_autoptr(GVariant) result = NULL;
		g_autoptr(GError) error = NULL;

		if (plugin->measure != NULL && (plugin->flags & VMI_FORMAT_CAN_WRITE) != 0)
			continue;
		result = vmi_measure (source, plugin, NULL, NULL, &error);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
		g_assert_nonnull (strstr (error->message, plugin->name));
		g_assert_null (result);
		tried++;
	}
	g_assert_cmpuint (tried, >, 0);
}

static void
test_measure_bad_option (VmiTestDirFixture *fixture, gconstpointer data)
{
	g_autofree char *raw = make_pattern (fixture->dir, 65536);
	g_autoptr(VmiSource) source = open_path (raw, "raw");
	const VmiFormatPlugin *qcow2 = vmi_registry_lookup (registry, "qcow2", NULL);
	g_autoptr(GVariant) options = g_variant_ref_sink (
		g_variant_new_parsed ("{'cluster_size': <%t>}", (guint64) 4096));
	g_autoptr(GVariant) result = NULL;
	g_autoptr(GError) error = NULL;

	if (!require_measure ("qcow2"))
		return;
	result = vmi_measure (source, qcow2, options, NULL, &error);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull (strstr (error->message, "cluster_size"));
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
	vmi_test_add_with_dir ("/measure/qcow2", NULL, test_measure_qcow2);
	vmi_test_add_with_dir ("/measure/qcow2-unaligned", NULL, test_measure_qcow2_unaligned);
	vmi_test_add_with_dir ("/measure/qcow2-sparse", NULL, test_measure_qcow2_sparse);
	vmi_test_add_with_dir ("/measure/raw", NULL, test_measure_raw);
	vmi_test_add_with_dir ("/measure/not-supported", NULL, test_measure_not_supported);
	vmi_test_add_with_dir ("/measure/bad-option", NULL, test_measure_bad_option);
	ret = g_test_run ();
	g_object_unref (registry);
	return ret;
}
