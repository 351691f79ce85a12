/*
 * The plugins whose code needs libarchive or libxml2 load in two parts (vmi-plugin-lazy.h): the
 * daemon's start-up and every probe must not map those libraries, the first open must, and a
 * front module without its implementation must fail with an error that names the missing file.
 */
#include <fcntl.h>
#include <string.h>

#include "vmi-registry.h"
#include "vmi-source.h"
#include "vmi-test-util.h"

static const char *const lazy_formats[] = { "aki", "ari", "ova", "ovf", "uec" };

static const char ovf_text[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
	"xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\">\n"
	"<References><File ovf:id=\"f1\" ovf:href=\"disk.vmdk\" ovf:size=\"1000\"/></References>\n"
	"<DiskSection><Info>disks</Info><Disk ovf:diskId=\"d1\" ovf:fileRef=\"f1\" "
	"ovf:capacity=\"1048576\" "
	"ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>"
	"</DiskSection>\n"
	"</Envelope>\n";

/* Whether a library whose file name contains name is mapped into this process. */
static gboolean
maps_have (const char *name)
{
	g_autofree char *maps = NULL;

	g_assert_true (g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL));
	return strstr (maps, name) != NULL;
}

static VmiRegistry *
load_dir (const char *dir)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;

	g_assert_true (vmi_registry_load_dir (registry, dir, &error));
	g_assert_no_error (error);
	return g_steal_pointer (&registry);
}

static VmiSource *
open_file (VmiRegistry *registry, const char *path, const char *format, GError **error)
{
	int fd = open (path, O_RDONLY | O_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	return vmi_source_open (registry, fd, -1, format, NULL, error);
}

/* Must run first: nothing in this process may have opened an image before. */
static void
test_loaded_on_first_open (void)
{
	g_autoptr(VmiRegistry) registry = load_dir (g_getenv ("VMI_TEST_PLUGIN_DIR"));
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *path = g_build_filename (dir, "vm.ovf", NULL);
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	guint8 zeros[4096] = { 0 };
	int fd;

	g_assert_false (maps_have ("libarchive"));
	g_assert_false (maps_have ("libxml2"));
	for (gsize i = 0; i < G_N_ELEMENTS (lazy_formats); i++) {
		const VmiFormatPlugin *plugin = vmi_registry_lookup (registry, lazy_formats[i], &error);

		g_assert_no_error (error);
		g_assert_cmpstr (plugin->name, ==, lazy_formats[i]);
		g_assert_cmpuint (plugin->probe (zeros, sizeof zeros, sizeof zeros), ==, VMI_PROBE_NO);
		g_assert_cmpuint (plugin->probe ((const guint8 *) ovf_text, strlen (ovf_text),
						 strlen (ovf_text)),
				  ==, g_str_equal (plugin->name, "ovf") ? VMI_PROBE_LIKELY : VMI_PROBE_NO);
	}

	/* Every plugin's probe, as Inspect runs them. */
	vmi_test_write_file (path, ovf_text, -1);
	fd = open (path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpstr (vmi_registry_classify_fd (registry, fd, TRUE, NULL, &error)->name, ==, "ovf");
	g_assert_no_error (error);
	close (fd);
	g_assert_false (maps_have ("libarchive"));
	g_assert_false (maps_have ("libxml2"));

	source = open_file (registry, path, NULL, &error);
	g_assert_no_error (error);
	g_assert_nonnull (source);
	g_assert_cmpstr (vmi_source_get_plugin (source)->name, ==, "ovf");
	g_assert_cmpuint (vmi_source_get_info (source)->members->len, ==, 1);
	g_assert_true (maps_have ("libxml2"));
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_missing_impl (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *front = g_build_filename (g_getenv ("VMI_TEST_PLUGIN_DIR"),
						   "vmi-ovf." G_MODULE_SUFFIX, NULL);
	g_autofree char *copy = g_build_filename (dir, "vmi-ovf." G_MODULE_SUFFIX, NULL);
	g_autofree char *expected = g_build_filename (dir, "impl", "vmi-ovf-impl." G_MODULE_SUFFIX,
						      NULL);
	g_autofree char *path = g_build_filename (dir, "vm.ovf", NULL);
	g_autofree char *bytes = NULL;
	g_autoptr(VmiRegistry) registry = NULL;
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	gsize len;

	g_assert_true (g_file_get_contents (front, &bytes, &len, NULL));
	vmi_test_write_file (copy, bytes, (gssize) len);
	vmi_test_write_file (path, ovf_text, -1);
	registry = load_dir (dir);
	g_assert_nonnull (vmi_registry_lookup (registry, "ovf", NULL));

	source = open_file (registry, path, "ovf", &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_FAILED);
	g_assert_nonnull (strstr (error->message, expected));
	g_assert_nonnull (strstr (error->message, "cannot be loaded"));
	g_clear_error (&error);

	/* Still refused the second time, not half loaded. */
	source = open_file (registry, path, "ovf", &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_FAILED);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/lazy-plugins/loaded-on-first-open", test_loaded_on_first_open);
	g_test_add_func ("/lazy-plugins/missing-impl", test_missing_impl);
	return g_test_run ();
}
