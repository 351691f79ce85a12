/* The engine on its own: options, the registry and conversion, with in-memory fake plugins. */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmi-convert.h"
#include "vmi-options.h"

/* ---- a fake format whose images live in memory, described by a list of extents ---- */

#define FAKE_SIZE (1024u * 1024u + 1000u) /* not a multiple of any granule */

typedef struct {
	guint64 start, end;
	VmiExtentKind kind;
} FakeRun;

static const FakeRun fake_runs[] = {
	{ 0, 256 * 1024, VMI_EXTENT_DATA }, /* random, then a 64 KiB zero granule, then random */
	{ 256 * 1024, 512 * 1024, VMI_EXTENT_HOLE },
	{ 512 * 1024, 768 * 1024, VMI_EXTENT_ZERO },
	{ 768 * 1024, FAKE_SIZE, VMI_EXTENT_DATA },
};

struct _VmiImage {
	guint8 *data;
	guint64 size;
	guint64 next_write; /* writes must come in increasing order */
	gboolean finished;
	gboolean lie; /* block_status answers a zero-length run */
};

static guint8 *fake_source_data;
static guint8 *fake_written_data;
static GArray *fake_writes; /* of guint64 pairs: offset, length */

static guint
fake_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return head_len >= 4 && memcmp (head, "FAKE", 4) == 0 ? VMI_PROBE_CERTAIN : VMI_PROBE_NO;
}

static VmiImage *
fake_open (const VmiOpenArgs *args, GError **error)
{
	VmiImage *image = g_new0 (VmiImage, 1);

	image->data = fake_source_data;
	image->size = FAKE_SIZE;
	return image;
}

static gboolean
fake_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	info->virtual_size = image->size;
	info->subformat = "in-memory";
	g_variant_dict_insert (info->format_specific, "runs", "u", (guint32) G_N_ELEMENTS (fake_runs));
	return TRUE;
}

static gboolean
fake_read (VmiImage *image, guint64 offset, void *buf, gsize len, GError **error)
{
	g_assert_cmpuint (offset + len, <=, image->size);
	memcpy (buf, image->data + offset, len);
	return TRUE;
}

static gboolean
fake_block_status (VmiImage *image, guint64 offset, guint64 max_length, VmiExtent *extent,
		   GError **error)
{
	for (guint i = 0; i < G_N_ELEMENTS (fake_runs); i++) {
		if (offset >= fake_runs[i].start && offset < fake_runs[i].end) {
			extent->kind = fake_runs[i].kind;
			extent->length = image->lie ? 0 : MIN (fake_runs[i].end - offset, max_length);
			return TRUE;
		}
	}
	g_assert_not_reached ();
}

static void
fake_close (VmiImage *image)
{
	g_free (image);
}

static const VmiOptionSpec fake_create_options[] = {
	{ "lie", "b", "make block_status answer nonsense" },
	{ NULL },
};

static VmiImage *
fake_create (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	VmiImage *image = g_new0 (VmiImage, 1);

	/* The engine passes only the plugin's own options on. */
	g_assert_false (g_variant_lookup (options, "overwrite", "b", NULL));
	image->size = virtual_size;
	image->data = fake_written_data;
	memset (image->data, 0, virtual_size);
	return image;
}

static gboolean
fake_write (VmiImage *image, guint64 offset, const void *buf, gsize len, GError **error)
{
	guint64 pair[2] = { offset, len };

	g_assert_cmpuint (offset, >=, image->next_write);
	g_assert_cmpuint (offset % 512, ==, 0);
	g_assert_true (len % 512 == 0 || offset + len == image->size);
	g_assert_cmpuint (offset + len, <=, image->size);
	memcpy (image->data + offset, buf, len);
	image->next_write = offset + len;
	g_array_append_vals (fake_writes, pair, 2);
	return TRUE;
}

static gboolean
fake_finish (VmiImage *image, GError **error)
{
	image->finished = TRUE;
	return TRUE;
}

static const VmiFormatPlugin fake_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "fake",
	.description = "In-memory test format",
	.extensions = (const char *const[]){ "fake", NULL },
	.aliases = (const char *const[]){ "Pretend", NULL },
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ | VMI_FORMAT_CAN_WRITE,
	.probe = fake_probe,
	.open = fake_open,
	.get_info = fake_get_info,
	.read = fake_read,
	.block_status = fake_block_status,
	.close = fake_close,
	.create_options = fake_create_options,
	.create = fake_create,
	.write = fake_write,
	.finish = fake_finish,
};

static guint
fallback_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return VMI_PROBE_FALLBACK;
}

static const VmiFormatPlugin fallback_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "fallback",
	.flags = VMI_FORMAT_CAN_INSPECT,
	.probe = fallback_probe,
	.open = fake_open,
	.get_info = fake_get_info,
	.close = fake_close,
};

static guint
rival_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	return head_len >= 4 && memcmp (head, "FAKE", 4) == 0 ? VMI_PROBE_LIKELY : VMI_PROBE_NO;
}

/* Sure of the same files as fake, a little less: a second parser that accepts them. */
static const VmiFormatPlugin rival_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "rival",
	.flags = VMI_FORMAT_CAN_INSPECT,
	.probe = rival_probe,
	.open = fake_open,
	.get_info = fake_get_info,
	.close = fake_close,
};

static VmiImage *
refusing_open (const VmiOpenArgs *args, GError **error)
{
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT, "not mine after all");
	return NULL;
}

/* Classify-only, sure from the head, but its open finds the content is not its own. */
static const VmiFormatPlugin picky_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "picky",
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CLASSIFY_ONLY,
	.probe = fake_probe,
	.open = refusing_open,
	.get_info = fake_get_info,
	.close = fake_close,
};

/* Sure of everything, but only when asked to classify. */
static const VmiFormatPlugin classifier_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "classifier",
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CLASSIFY_ONLY,
	.probe = fake_probe,
	.open = fake_open,
	.get_info = fake_get_info,
	.close = fake_close,
};

static int
memfd_with (const char *contents)
{
	int fd = memfd_create ("test", MFD_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (write (fd, contents, strlen (contents)), ==, (ssize_t) strlen (contents));
	return fd;
}

/* ---- options ---- */

static const VmiOptionSpec test_specs[] = {
	{ "count", "t", "a number" },
	{ "flag", "b", "a switch" },
	{ "name", "s", "a word" },
	{ NULL },
};

static void
test_options_integer_types (void)
{
	GVariant *values[] = {
		g_variant_new_byte (7),	  g_variant_new_int16 (7),  g_variant_new_uint16 (7),
		g_variant_new_int32 (7),  g_variant_new_uint32 (7), g_variant_new_int64 (7),
		g_variant_new_uint64 (7),
	};

	for (guint i = 0; i < G_N_ELEMENTS (values); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariantDict) dict = g_variant_dict_new (NULL);
		g_autoptr(GVariant) options = NULL;
		g_autoptr(GVariant) normalized = NULL;

		g_variant_dict_insert_value (dict, "count", values[i]);
		options = g_variant_ref_sink (g_variant_dict_end (dict));
		normalized = vmi_options_normalize (options, test_specs, NULL, &error);
		g_assert_no_error (error);
		g_assert_cmpuint (vmi_options_get_uint64 (normalized, "count", 0), ==, 7);
	}
}

static void
test_options_refused (void)
{
	struct {
		const char *text;
		const char *needle;
	} cases[] = {
		{ "{'count': <int32 -1>}", "\"count\"" },
		{ "{'count': <'seven'>}", "\"count\"" },
		{ "{'flag': <int32 1>}", "\"flag\"" },
		{ "{'name': <true>}", "\"name\"" },
		{ "{'colour': <'blue'>}", "\"colour\"" },
	};

	for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) options = g_variant_parse (G_VARIANT_TYPE_VARDICT, cases[i].text,
							       NULL, NULL, NULL);
		g_autoptr(GVariant) normalized = vmi_options_normalize (options, test_specs, NULL,
									&error);

		g_assert_null (normalized);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull (strstr (error->message, cases[i].needle));
	}
}

static void
test_options_lookup_and_filter (void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) options = g_variant_parse (
		G_VARIANT_TYPE_VARDICT, "{'flag': <true>, 'name': <'x'>, 'overwrite': <true>}", NULL,
		NULL, NULL);
	g_autoptr(GVariant) normalized = vmi_options_normalize (options, test_specs,
								vmi_convert_options, &error);
	g_autoptr(GVariant) filtered = NULL;

	g_assert_no_error (error);
	g_assert_true (vmi_options_get_boolean (normalized, "flag", FALSE));
	g_assert_cmpstr (vmi_options_get_string (normalized, "name", NULL), ==, "x");
	g_assert_cmpstr (vmi_options_get_string (normalized, "missing", "dflt"), ==, "dflt");
	g_assert_cmpuint (vmi_options_get_uint64 (normalized, "count", 42), ==, 42);
	filtered = vmi_options_filter (normalized, vmi_convert_options);
	g_assert_cmpuint (g_variant_n_children (filtered), ==, 2);
	g_assert_false (g_variant_lookup (filtered, "overwrite", "b", NULL));
}

/* ---- registry ---- */

static void
test_registry_lookup_and_duplicates (void)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;

	g_assert_true (vmi_registry_add (registry, &fake_plugin, &error));
	g_assert_no_error (error);
	g_assert_false (vmi_registry_add (registry, &fake_plugin, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_EXISTS);
	g_clear_error (&error);
	g_assert_true (vmi_registry_lookup (registry, "FAKE", &error) == &fake_plugin);
	g_assert_true (vmi_registry_lookup (registry, "pretend", &error) == &fake_plugin);
	g_assert_null (vmi_registry_lookup (registry, "qcow3", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	g_assert_nonnull (strstr (error->message, "fake"));
	g_assert_cmpuint (vmi_registry_get_plugins (registry)->len, ==, 1);
}

static void
test_registry_probe_ranking (void)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;
	int fake_fd = memfd_with ("FAKE and then some");
	int other_fd = memfd_with ("something else");
	int empty_fd = memfd_with ("");

	/* The fallback is loaded first: a higher score must still win over load order. */
	g_assert_true (vmi_registry_add (registry, &fallback_plugin, NULL));
	g_assert_true (vmi_registry_add (registry, &fake_plugin, NULL));
	g_assert_true (vmi_registry_probe_fd (registry, fake_fd, &error) == &fake_plugin);
	g_assert_true (vmi_registry_probe_fd (registry, other_fd, &error) == &fallback_plugin);
	g_assert_no_error (error);
	close (fake_fd);
	close (other_fd);

	g_clear_object (&registry);
	registry = vmi_registry_new ();
	g_assert_true (vmi_registry_add (registry, &fake_plugin, NULL));
	g_assert_null (vmi_registry_probe_fd (registry, empty_fd, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	close (empty_fd);
}

static void
test_registry_describe (void)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GVariant) formats = NULL;
	g_autoptr(GVariant) fake = NULL;
	g_autoptr(GVariant) create_options = NULL;
	gboolean can_write = FALSE;

	g_assert_true (vmi_registry_add (registry, &fake_plugin, NULL));
	g_assert_true (vmi_registry_add (registry, &fallback_plugin, NULL));
	formats = vmi_registry_describe (registry);
	g_assert_cmpuint (g_variant_n_children (formats), ==, 2);
	fake = g_variant_lookup_value (formats, "fake", G_VARIANT_TYPE_VARDICT);
	g_assert_nonnull (fake);
	g_assert_true (g_variant_lookup (fake, "can-write", "b", &can_write));
	g_assert_true (can_write);
	create_options = g_variant_lookup_value (fake, "create-options", G_VARIANT_TYPE ("a{ss}"));
	g_assert_true (g_variant_lookup (create_options, "lie", "&s", NULL));
}

static void
test_registry_refuses_incomplete_plugin (void)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;
	VmiFormatPlugin broken = fake_plugin;
	VmiFormatPlugin old = fake_plugin;

	broken.read = NULL; /* says it can read, cannot */
	g_assert_false (vmi_registry_add (registry, &broken, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
	g_clear_error (&error);
	old.abi_version = VMI_PLUGIN_ABI_VERSION + 1;
	g_assert_false (vmi_registry_add (registry, &old, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
}

/* ---- conversion ---- */

static void
fake_data_reset (void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed (42);

	g_free (fake_source_data);
	g_free (fake_written_data);
	g_clear_pointer (&fake_writes, g_array_unref);
	fake_source_data = g_malloc0 (FAKE_SIZE);
	fake_written_data = g_malloc0 (FAKE_SIZE);
	fake_writes = g_array_new (FALSE, FALSE, sizeof (guint64));
	for (guint64 i = 0; i < 64 * 1024; i++)
		fake_source_data[i] = (guint8) g_rand_int (rand);
	/* [64 KiB, 128 KiB) stays zero inside a data run */
	for (guint64 i = 128 * 1024; i < 256 * 1024; i++)
		fake_source_data[i] = (guint8) g_rand_int (rand);
	for (guint64 i = 768 * 1024; i < FAKE_SIZE; i++)
		fake_source_data[i] = (guint8) (i * 7);
}

typedef struct {
	guint64 last_done;
	guint calls;
} ProgressLog;

static void
progress_cb (guint64 done, guint64 total, gpointer user_data)
{
	ProgressLog *log = user_data;

	g_assert_cmpuint (total, ==, FAKE_SIZE);
	g_assert_cmpuint (done, >=, log->last_done);
	g_assert_cmpuint (done, <=, total);
	log->last_done = done;
	log->calls++;
}

static VmiSource *
open_fake_source (void)
{
	g_autoptr(GError) error = NULL;
	int fd = memfd_with ("FAKE");
	VmiSource *source = vmi_source_open_with (&fake_plugin, fd, -1, NULL, &error);

	close (fd);
	g_assert_no_error (error);
	return source;
}

static void
test_convert_skips_zeros_and_holes (void)
{
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) options = g_variant_parse (G_VARIANT_TYPE_VARDICT,
						       "{'overwrite': <true>}", NULL, NULL, NULL);
	ProgressLog log = { 0 };

	fake_data_reset ();
	source = open_fake_source ();
	g_assert_true (vmi_convert (source, &fake_plugin, -1, options, progress_cb, &log, NULL,
				    &error));
	g_assert_no_error (error);
	g_assert_cmpmem (fake_written_data, FAKE_SIZE, fake_source_data, FAKE_SIZE);
	g_assert_cmpuint (log.last_done, ==, FAKE_SIZE);
	g_assert_cmpuint (log.calls, >=, 3);
	/* Nothing was written in the zero granule, the hole or the zero run. */
	for (guint i = 0; i < fake_writes->len; i += 2) {
		guint64 start = g_array_index (fake_writes, guint64, i);
		guint64 end = start + g_array_index (fake_writes, guint64, i + 1);

		g_assert_true (end <= 64 * 1024 || start >= 128 * 1024);
		g_assert_true (end <= 256 * 1024 || start >= 768 * 1024);
	}
	g_assert_cmpuint (fake_writes->len / 2, ==, 3);
}

static void
test_convert_cancelled (void)
{
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new ();

	fake_data_reset ();
	source = open_fake_source ();
	g_cancellable_cancel (cancellable);
	g_assert_false (vmi_convert (source, &fake_plugin, -1, NULL, NULL, NULL, cancellable,
				     &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CANCELLED);
	g_assert_cmpuint (fake_writes->len, ==, 0);
}

static void
test_convert_bad_options (void)
{
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) options = g_variant_parse (
		G_VARIANT_TYPE_VARDICT, "{'cluster-size': <65536>}", NULL, NULL, NULL);

	fake_data_reset ();
	source = open_fake_source ();
	g_assert_false (vmi_convert (source, &fake_plugin, -1, options, NULL, NULL, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull (strstr (error->message, "cluster-size"));
}

static void
test_convert_lying_plugin (void)
{
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;

	fake_data_reset ();
	source = open_fake_source ();
	vmi_source_get_image (source)->lie = TRUE;
	g_assert_false (vmi_convert (source, &fake_plugin, -1, NULL, NULL, NULL, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_FAILED);
	g_assert_nonnull (strstr (error->message, "fake"));
}

static void
test_convert_not_writable (void)
{
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GError) error = NULL;

	fake_data_reset ();
	source = open_fake_source ();
	g_assert_false (vmi_convert (source, &fallback_plugin, -1, NULL, NULL, NULL, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED);
}

/* ---- sources ---- */

static void
test_source_info_variant (void)
{
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GVariant) specific = NULL;
	const char *format = NULL;
	guint64 vsize = 0;
	gboolean safe = FALSE;
	guint32 runs = 0;

	fake_data_reset ();
	source = open_fake_source ();
	info = vmi_source_to_variant (source);
	g_assert_true (g_variant_lookup (info, "format", "&s", &format));
	g_assert_cmpstr (format, ==, "fake");
	g_assert_true (g_variant_lookup (info, "virtual-size", "t", &vsize));
	g_assert_cmpuint (vsize, ==, FAKE_SIZE);
	g_assert_true (g_variant_lookup (info, "safe", "b", &safe));
	g_assert_true (safe);
	specific = g_variant_lookup_value (info, "format-specific", G_VARIANT_TYPE_VARDICT);
	g_assert_true (g_variant_lookup (specific, "runs", "u", &runs));
	g_assert_cmpuint (runs, ==, G_N_ELEMENTS (fake_runs));
	/* The facts stay readable through the info structure too. */
	g_assert_true (g_variant_dict_contains (vmi_source_get_info (source)->format_specific, "runs"));
}

static void
test_source_polyglot_is_unsafe (void)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	const VmiImageInfo *info;
	int fd = memfd_with ("FAKE");

	g_assert_true (vmi_registry_add (registry, &rival_plugin, NULL));
	g_assert_true (vmi_registry_add (registry, &fake_plugin, NULL));
	source = vmi_source_open (registry, fd, -1, NULL, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_source_get_plugin (source)->name, ==, "fake");
	g_assert_false (vmi_source_is_safe (source));
	info = vmi_source_get_info (source);
	g_assert_cmpuint (info->unsafe_reasons->len, ==, 1);
	g_assert_nonnull (strstr (g_ptr_array_index (info->unsafe_reasons, 0), "rival"));
	close (fd);
}

static void
test_source_classify_only (void)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) plain = NULL;
	g_autoptr(VmiSource) classified = NULL;
	int fd = memfd_with ("FAKE");

	g_assert_true (vmi_registry_add (registry, &classifier_plugin, NULL));
	g_assert_true (vmi_registry_add (registry, &fallback_plugin, NULL));
	plain = vmi_source_open (registry, fd, -1, NULL, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_source_get_plugin (plain)->name, ==, "fallback");
	classified = vmi_source_open_full (registry, fd, -1, NULL, TRUE, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_source_get_plugin (classified)->name, ==, "classifier");
	close (fd);
}

static void
test_source_classify_falls_back (void)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	int fd = memfd_with ("FAKE");

	g_assert_true (vmi_registry_add (registry, &picky_plugin, NULL));
	g_assert_true (vmi_registry_add (registry, &fallback_plugin, NULL));
	source = vmi_source_open_full (registry, fd, -1, NULL, TRUE, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_source_get_plugin (source)->name, ==, "fallback");
	/* Forced, the refusal stands. */
	g_assert_null (vmi_source_open_full (registry, fd, -1, "picky", TRUE, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT);
	close (fd);
}

static void
test_source_refuses_non_files (void)
{
	g_autoptr(VmiRegistry) registry = vmi_registry_new ();
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = NULL;
	int pipe_fds[2];
	int dir_fd = open ("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	g_assert_true (vmi_registry_add (registry, &fake_plugin, NULL));
	source = vmi_source_open (registry, dir_fd, -1, NULL, NULL, &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull (strstr (error->message, "directory"));
	g_clear_error (&error);
	close (dir_fd);

	g_assert_cmpint (pipe (pipe_fds), ==, 0);
	source = vmi_source_open (registry, pipe_fds[0], -1, NULL, NULL, &error);
	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull (strstr (error->message, "FIFO"));
	close (pipe_fds[0]);
	close (pipe_fds[1]);
}

int
main (int argc, char **argv)
{
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/options/integer-types", test_options_integer_types);
	g_test_add_func ("/options/refused", test_options_refused);
	g_test_add_func ("/options/lookup-and-filter", test_options_lookup_and_filter);
	g_test_add_func ("/registry/lookup-and-duplicates", test_registry_lookup_and_duplicates);
	g_test_add_func ("/registry/probe-ranking", test_registry_probe_ranking);
	g_test_add_func ("/registry/describe", test_registry_describe);
	g_test_add_func ("/registry/refuses-incomplete-plugin",
			 test_registry_refuses_incomplete_plugin);
	g_test_add_func ("/source/info-variant", test_source_info_variant);
	g_test_add_func ("/source/refuses-non-files", test_source_refuses_non_files);
	g_test_add_func ("/source/polyglot-is-unsafe", test_source_polyglot_is_unsafe);
	g_test_add_func ("/source/classify-only", test_source_classify_only);
	g_test_add_func ("/source/classify-falls-back", test_source_classify_falls_back);
	g_test_add_func ("/convert/skips-zeros-and-holes", test_convert_skips_zeros_and_holes);
	g_test_add_func ("/convert/cancelled", test_convert_cancelled);
	g_test_add_func ("/convert/bad-options", test_convert_bad_options);
	g_test_add_func ("/convert/lying-plugin", test_convert_lying_plugin);
	g_test_add_func ("/convert/not-writable", test_convert_not_writable);
	return g_test_run ();
}
