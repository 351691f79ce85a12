/*
 * What the aki, ari and ami tests share: opening a file with a linked-in plugin and reading its
 * facts, qemu-img's view of the same file, and a stand-in for raw so that detection can be
 * tested through a registry (the raw plugin itself cannot be linked beside another plugin).
 */
#pragma once

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-registry.h"
#include "vmi-source.h"
#include "vmi-test-util.h"

/* TRUE if tool is on PATH. */
static inline gboolean
boot_test_have (const char *tool)
{
	g_autofree char *path = g_find_program_in_path (tool);

	return path != NULL;
}

/* The format-specific facts of path opened with plugin, or NULL with error set. */
static inline GVariant *
boot_test_facts (const VmiFormatPlugin *plugin, const char *path, GError **error)
{
	g_autoptr(VmiSource) source = vmi_test_open (plugin, path, error);
	g_autoptr(GVariant) info = NULL;
	GVariant *facts;
	guint64 vsize = 0;
	struct stat st;

	if (source == NULL)
		return NULL;
	info = vmi_source_to_variant (source);
	g_assert_true (g_variant_lookup (info, "virtual-size", "t", &vsize));
	g_assert_cmpint (stat (path, &st), ==, 0);
	/* Read as a raw disk: the virtual size is the file's. */
	g_assert_cmpuint (vsize, ==, (guint64) st.st_size);
	facts = g_variant_lookup_value (info, "format-specific", G_VARIANT_TYPE_VARDICT);
	g_assert_nonnull (facts);
	if (g_test_verbose ()) {
		g_autofree char *text = g_variant_print (info, TRUE);
		g_printerr ("# %s: %s\n", path, text);
	}
	return facts;
}

static inline char *
boot_test_fact_string (GVariant *facts, const char *key)
{
	const char *value = NULL;

	if (!g_variant_lookup (facts, key, "&s", &value))
		return NULL;
	return g_strdup (value);
}

/*
 * qemu-img sees a raw disk of the file's size, rounded up to 512 bytes as qemu reads a raw
 * file; vmimaged keeps the exact size, as its raw plugin does.
 */
static inline void
boot_test_check_qemu_img (const char *path)
{
	g_autoptr(JsonObject) info = NULL;
	struct stat st;

	if (!boot_test_have ("qemu-img"))
		return;
	info = vmi_test_qemu_img_info (path, NULL);
	g_assert_cmpstr (json_object_get_string_member (info, "format"), ==, "raw");
	g_assert_cmpint (stat (path, &st), ==, 0);
	g_assert_cmpint (json_object_get_int_member (info, "virtual-size"), ==,
			 (st.st_size + 511) / 512 * 512);
}

static inline void
boot_test_write (const char *path, const void *data, gsize len)
{
	g_autoptr(GError) error = NULL;

	g_file_set_contents (path, data, (gssize) len, &error);
	g_assert_no_error (error);
}

/* A stand-in for the raw plugin: claims every file with the fallback score. */
static guint
boot_test_raw_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return VMI_PROBE_FALLBACK;
}

static VmiImage *
boot_test_raw_open (const VmiOpenArgs *args, GError **error)
{
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_FAILED, "not used");
	return NULL;
}

static gboolean
boot_test_raw_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	return TRUE;
}

static void
boot_test_raw_close (VmiImage *image)
{
}

static const VmiFormatPlugin boot_test_raw_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "raw",
	.description = "stand-in for raw",
	.flags = VMI_FORMAT_CAN_INSPECT,
	.probe = boot_test_raw_probe,
	.open = boot_test_raw_open,
	.get_info = boot_test_raw_get_info,
	.close = boot_test_raw_close,
};

/* The name of the format a registry of raw and plugin picks for path. */
static inline const char *
boot_test_detect (const VmiFormatPlugin *plugin, const char *path, gboolean classify)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) others = g_ptr_array_new ();
	const VmiFormatPlugin *found;
	int fd;

	g_assert_true (vmi_registry_add (registry, &boot_test_raw_plugin, &error));
	g_assert_true (vmi_registry_add (registry, plugin, &error));
	fd = open (path, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	found = vmi_registry_classify_fd (registry, fd, classify, others, &error);
	close (fd);
	g_assert_no_error (error);
	/* Never a second sure answer: that would make the file a polyglot (unsafe). */
	g_assert_cmpuint (others->len, ==, 0);
	return found->name;
}
