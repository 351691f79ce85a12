/*
 * Real-world images from ../shared/corpus, through the plugins as the daemon loads them: each
 * must be detected as MANIFEST.tsv says, with its virtual size, and convert to raw exactly as
 * qemu-img converts it. Formats vmimaged does not support must not be taken for anything.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmi-test-util.h"

typedef struct {
	char *file;
	char *format;	    /* as MANIFEST names it (qemu's names: vpc, ...) */
	char *variant;
	char *virtual_size; /* "-" when qemu-img refuses the file */
} CorpusRow;

static VmiRegistry *registry;

static void
corpus_row_free (CorpusRow *row)
{
	g_free (row->file);
	g_free (row->format);
	g_free (row->variant);
	g_free (row->virtual_size);
	g_free (row);
}

/* Our names for qemu's; NULL for formats no plugin of ours may claim. */
static const char *
corpus_our_format (const char *manifest_format)
{
	if (g_strcmp0 (manifest_format, "vpc") == 0)
		return "vhd";
	if (g_strcmp0 (manifest_format, "dmg") == 0 || g_strcmp0 (manifest_format, "bochs") == 0 ||
	    g_strcmp0 (manifest_format, "parallels") == 0)
		return NULL;
	return manifest_format;
}

static VmiSource *
corpus_open (const char *path, GError **error)
{
	g_autofree char *dir = g_path_get_dirname (path);
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	VmiSource *source;

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (dir_fd, >=, 0);
	source = vmi_source_open (registry, fd, dir_fd, NULL, NULL, error);
	close (fd);
	close (dir_fd);
	return source;
}

static void
corpus_check_raw_conversion (VmiSource *source, const char *path, const char *tmp)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *ours = g_build_filename (tmp, "ours.raw", NULL);
	g_autofree char *theirs = g_build_filename (tmp, "qemu.raw", NULL);
	g_autofree char *qpath = g_shell_quote (path);
	g_autofree char *qtheirs = g_shell_quote (theirs);
	g_autofree char *qours = g_shell_quote (ours);
	const VmiFormatPlugin *raw = vmi_registry_lookup (registry, "raw", &error);
	int fd;

	g_assert_no_error (error);
	fd = open (ours, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	g_assert_true (vmi_convert (source, raw, fd, NULL, NULL, NULL, NULL, &error));
	g_assert_no_error (error);
	close (fd);
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img convert -O raw %s %s", qpath, qtheirs), ==, 0);
	/* qemu-img compare skips holes (cmp would read 127 GiB of zeros for one of these); the
	 * sizes are compared apart, since compare accepts a shorter file padded with zeros. */
	g_assert_true (vmi_test_qemu_img_compare (ours, "raw", theirs, "raw"));
	g_assert_cmpint (vmi_test_sh (NULL, "test $(stat -c %%s %s) = $(stat -c %%s %s)", qours,
				      qtheirs), ==, 0);
}

static void
test_corpus_row (gconstpointer data)
{
	const CorpusRow *row = data;
	const char *expected = corpus_our_format (row->format);
	g_autofree char *tmp = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;

	if (vmi_test_corpus_dir () == NULL || !vmi_test_require_qemu_img ())
		return;
	if (expected != NULL && vmi_registry_lookup (registry, expected, NULL) == NULL) {
		g_autofree char *msg = g_strdup_printf ("%s: no %s plugin is built yet", row->file,
							 expected);
		g_test_skip (msg);
		return;
	}
	tmp = vmi_test_tmpdir_new ();
	path = vmi_test_corpus_fetch (row->file, tmp);
	source = corpus_open (path, &error);

	if (expected == NULL) {
		g_test_message ("%s (%s) must not be detected as any format", row->file, row->format);
		g_assert_null (source);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	} else if (g_strcmp0 (row->virtual_size, "-") == 0) {
		/* qemu-img refuses it: so must we, by name, without crashing or allocating wildly. */
		g_test_message ("%s: qemu-img refuses it; we said: %s", row->file,
				error != NULL ? error->message : "(accepted)");
		g_assert_null (source);
		g_assert_true (g_error_matches (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE) ||
			       g_error_matches (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED));
	} else {
		g_assert_no_error (error);
		g_assert_cmpstr (vmi_source_get_plugin (source)->name, ==, expected);
		g_assert_cmpuint (vmi_source_get_virtual_size (source), ==,
				  g_ascii_strtoull (row->virtual_size, NULL, 10));
		/* Converting needs every extent; a descriptor whose extent is missing is only
		 * inspected (qemu-img cannot open it either). */
		if (vmi_source_is_safe (source) &&
		    (vmi_source_get_plugin (source)->flags & VMI_FORMAT_CAN_READ))
			corpus_check_raw_conversion (source, path, tmp);
		else
			g_test_message ("%s is not converted: unsafe or not readable", row->file);
	}
	g_clear_pointer (&source, vmi_source_free);
	vmi_test_tmpdir_free (g_steal_pointer (&tmp));
}

static GPtrArray *
corpus_read_manifest (const char *dir)
{
	g_autofree char *path = g_build_filename (dir, "MANIFEST.tsv", NULL);
	g_autofree char *contents = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GError) error = NULL;
	GPtrArray *rows = g_ptr_array_new_with_free_func ((GDestroyNotify) corpus_row_free);

	g_file_get_contents (path, &contents, NULL, &error);
	g_assert_no_error (error);
	lines = g_strsplit (contents, "\n", -1);
	/* Columns: file source license made_by format subformat_variant virtual_size_bytes facts */
	for (guint i = 1; lines[i] != NULL; i++) {
		g_auto(GStrv) cols = g_strsplit (lines[i], "\t", -1);
		CorpusRow *row;

		if (lines[i][0] == '\0')
			continue;
		g_assert_cmpuint (g_strv_length (cols), >=, 7);
		row = g_new0 (CorpusRow, 1);
		row->file = g_strdup (cols[0]);
		row->format = g_strdup (cols[4]);
		row->variant = g_strdup (cols[5]);
		row->virtual_size = g_strdup (cols[6]);
		g_ptr_array_add (rows, row);
	}
	return rows;
}

int
main (int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autofree char *corpus = NULL;
	const char *plugin_dir = g_getenv ("VMI_TEST_PLUGIN_DIR");
	const char *root = g_getenv ("VMI_TEST_SOURCE_ROOT");
	int status;

	g_test_init (&argc, &argv, NULL);
	g_assert_nonnull (plugin_dir);
	registry = vmi_registry_new ();
	g_assert_true (vmi_registry_load_dir (registry, plugin_dir, &error));
	g_assert_no_error (error);

	if (g_getenv ("VMI_CORPUS_DIR") != NULL)
		corpus = g_strdup (g_getenv ("VMI_CORPUS_DIR"));
	else if (root != NULL)
		corpus = g_build_filename (root, "..", "shared", "corpus", NULL);
	if (corpus == NULL || !g_file_test (corpus, G_FILE_TEST_IS_DIR)) {
		/* One test that skips, saying where the corpus was looked for. */
		g_test_add_func ("/corpus/absent", (GTestFunc) vmi_test_corpus_dir);
	} else {
		rows = corpus_read_manifest (corpus);
		for (guint i = 0; i < rows->len; i++) {
			CorpusRow *row = g_ptr_array_index (rows, i);
			g_autofree char *name = g_strdup_printf ("/corpus/%s", row->file);

			g_test_add_data_func (name, row, test_corpus_row);
		}
	}
	status = g_test_run ();
	g_object_unref (registry);
	return status;
}
