#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "vmi-test-util.h"

char *
vmi_test_tmpdir_new (void)
{
	g_autoptr(GError) error = NULL;
	char *dir = g_dir_make_tmp ("vmimaged-test-XXXXXX", &error);

	g_assert_no_error (error);
	return dir;
}

void
vmi_test_tmpdir_free (char *dir)
{
	g_autofree char *quoted = NULL;

	if (dir == NULL)
		return;
	quoted = g_shell_quote (dir);
	g_assert_cmpint (vmi_test_sh (NULL, "rm -rf %s", quoted), ==, 0);
	g_free (dir);
}

void
vmi_test_dir_fixture_set_up (VmiTestDirFixture *fixture, gconstpointer data)
{
	fixture->dir = vmi_test_tmpdir_new ();
}

void
vmi_test_dir_fixture_tear_down (VmiTestDirFixture *fixture, gconstpointer data)
{
	vmi_test_tmpdir_free (g_steal_pointer (&fixture->dir));
}

guint64
vmi_test_file_size (const char *path)
{
	GStatBuf st;

	g_assert_cmpint (g_stat (path, &st), ==, 0);
	return (guint64) st.st_size;
}

guint64
vmi_test_file_allocated (const char *path)
{
	GStatBuf st;

	g_assert_cmpint (g_stat (path, &st), ==, 0);
	return (guint64) st.st_blocks * 512;
}

char *
vmi_test_run (const char *const *argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *cmdline = g_strjoinv (" ", (char **) argv);
	char *out = NULL;
	g_autofree char *err = NULL;
	int status = 0;

	g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
		      &status, &error);
	g_assert_no_error (error);
	if (!g_spawn_check_wait_status (status, NULL))
		g_error ("command failed: %s\n%s", cmdline, err);
	return out;
}

int
vmi_test_sh (char **out, const char *format, ...)
{
	va_list args;
	g_autofree char *cmd = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *err = NULL;
	int status = 0;
	const char *argv[] = { "/bin/sh", "-c", NULL, NULL };

	va_start (args, format);
	cmd = g_strdup_vprintf (format, args);
	va_end (args);
	argv[2] = cmd;
	g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, &err, &status,
		      &error);
	g_assert_no_error (error);
	if (!WIFEXITED (status))
		return -1;
	if (WEXITSTATUS (status) != 0 && g_test_verbose ())
		g_printerr ("# %s: exit %d: %s\n", cmd, WEXITSTATUS (status), err);
	return WEXITSTATUS (status);
}

void
vmi_test_sh_ok (const char *format, ...)
{
	va_list args;
	g_autofree char *cmd = NULL;

	va_start (args, format);
	cmd = g_strdup_vprintf (format, args);
	va_end (args);
	if (vmi_test_sh (NULL, "%s", cmd) != 0)
		g_error ("command failed: %s", cmd);
}

void
vmi_test_write_file (const char *path, const void *bytes, gssize len)
{
	g_autoptr(GError) error = NULL;

	g_file_set_contents (path, bytes, len, &error);
	g_assert_no_error (error);
}

void
vmi_test_write_bytes (const char *path, guint64 offset, const void *bytes, gsize len)
{
	int fd = open (path, O_WRONLY | O_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (pwrite (fd, bytes, len, (off_t) offset), ==, (gssize) len);
	g_assert_cmpint (close (fd), ==, 0);
}

void
vmi_test_read_bytes (const char *path, guint64 offset, void *bytes, gsize len)
{
	int fd = open (path, O_RDONLY | O_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (pread (fd, bytes, len, (off_t) offset), ==, (gssize) len);
	g_assert_cmpint (close (fd), ==, 0);
}

void
vmi_test_write_le32 (const char *path, guint64 offset, guint32 value)
{
	guint32 le = GUINT32_TO_LE (value);

	vmi_test_write_bytes (path, offset, &le, sizeof le);
}

void
vmi_test_write_le64 (const char *path, guint64 offset, guint64 value)
{
	guint64 le = GUINT64_TO_LE (value);

	vmi_test_write_bytes (path, offset, &le, sizeof le);
}

guint32
vmi_test_read_le32 (const char *path, guint64 offset)
{
	guint32 le = 0;

	vmi_test_read_bytes (path, offset, &le, sizeof le);
	return GUINT32_FROM_LE (le);
}

guint64
vmi_test_read_le64 (const char *path, guint64 offset)
{
	guint64 le = 0;

	vmi_test_read_bytes (path, offset, &le, sizeof le);
	return GUINT64_FROM_LE (le);
}

gboolean
vmi_test_require_program (const char *program, const char *package, const char *why)
{
	g_autofree char *path = g_find_program_in_path (program);
	g_autofree char *message = NULL;

	if (path != NULL)
		return TRUE;
	message = g_strdup_printf ("%s is not installed (Debian package %s): %s", program, package,
				   why);
	g_test_skip (message);
	return FALSE;
}

gboolean
vmi_test_require_qemu_img (void)
{
	return vmi_test_require_program ("qemu-img", "qemu-utils", "no oracle");
}

void
vmi_test_qemu_img (const char *format, ...)
{
	va_list args;
	g_autofree char *cmd = NULL;

	va_start (args, format);
	cmd = g_strdup_vprintf (format, args);
	va_end (args);
	g_assert_cmpint (vmi_test_sh (NULL, "qemu-img %s", cmd), ==, 0);
}

char *
vmi_test_qemu_img_create (const char *dir, const char *name, const char *fmt, const char *opts,
			  const char *size)
{
	char *path = g_build_filename (dir, name, NULL);
	g_autofree char *qpath = g_shell_quote (path);

	vmi_test_sh_ok ("qemu-img create -q -f %s%s%s %s %s", fmt, opts != NULL ? " -o " : "",
			opts != NULL ? opts : "", qpath, size);
	return path;
}

JsonObject *
vmi_test_qemu_img_info (const char *path, const char *fmt)
{
	g_autofree char *out = NULL;
	g_autoptr(JsonParser) parser = json_parser_new ();
	g_autoptr(GError) error = NULL;

	if (fmt != NULL) {
		const char *argv[] = { "qemu-img", "info", "--output=json", "-f", fmt, path, NULL };
		out = vmi_test_run (argv);
	} else {
		const char *argv[] = { "qemu-img", "info", "--output=json", path, NULL };
		out = vmi_test_run (argv);
	}
	json_parser_load_from_data (parser, out, -1, &error);
	g_assert_no_error (error);
	g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
	return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

guint64
vmi_test_json_u64 (JsonObject *object, const char *member)
{
	g_assert_true (json_object_has_member (object, member));
	return (guint64) json_object_get_int_member (object, member);
}

guint64
vmi_test_qemu_img_virtual_size (const char *path, const char *fmt)
{
	g_autoptr(JsonObject) info = vmi_test_qemu_img_info (path, fmt);

	return vmi_test_json_u64 (info, "virtual-size");
}

gboolean
vmi_test_qemu_img_compare (const char *a, const char *fmt_a, const char *b, const char *fmt_b)
{
	g_autofree char *qa = g_shell_quote (a);
	g_autofree char *qb = g_shell_quote (b);
	g_autofree char *fa = fmt_a != NULL ? g_strdup_printf ("-f %s", fmt_a) : g_strdup ("");
	g_autofree char *fb = fmt_b != NULL ? g_strdup_printf ("-F %s", fmt_b) : g_strdup ("");

	return vmi_test_sh (NULL, "qemu-img compare -q %s %s %s %s", fa, fb, qa, qb) == 0;
}

gboolean
vmi_test_qemu_img_check (const char *path, const char *fmt)
{
	g_autofree char *q = g_shell_quote (path);

	return vmi_test_sh (NULL, "qemu-img check -q -f %s %s", fmt, q) == 0;
}

static void
vmi_test_pwrite_all (int fd, const guint8 *buf, gsize len, guint64 offset)
{
	while (len > 0) {
		ssize_t n = pwrite (fd, buf, len, (off_t) offset);

		if (n < 0 && errno == EINTR)
			continue;
		g_assert_cmpint (n, >, 0);
		buf += n;
		len -= (gsize) n;
		offset += (guint64) n;
	}
}

void
vmi_test_make_pattern_image (const char *path, guint64 size, guint32 seed)
{
	const gsize block = 64 * 1024;
	g_autofree guint8 *buf = g_malloc (block);
	g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	guint64 nblocks = (size + block - 1) / block;

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (ftruncate (fd, (off_t) size), ==, 0);
	/* Up to 96 blocks of data spread over the disk whatever its size, so a >4 GiB image stays
	 * cheap; the rest are holes. */
	for (guint i = 0; i < MIN (nblocks, 96); i++) {
		guint64 offset = (nblocks <= 96 ? i : i * (nblocks / 96)) * block;
		gsize len = (gsize) MIN (block, size - offset);

		switch (i % 4) {
		case 0: /* random */
			for (gsize j = 0; j < len; j++)
				buf[j] = (guint8) g_rand_int (rand);
			break;
		case 1: /* written zeros: must read back as zeros, need not be stored */
			memset (buf, 0, len);
			break;
		case 2: /* text-like, compressible */
			for (gsize j = 0; j < len; j++)
				buf[j] = (guint8) "vmimaged test pattern "[(j + i) % 22];
			break;
		default: /* a hole: leave it */
			continue;
		}
		vmi_test_pwrite_all (fd, buf, len, offset);
	}
	/* Data in the last, possibly partial, block. */
	if (size > 0) {
		gsize tail = (gsize) MIN (size, 512);
		memset (buf, 0xa5, tail);
		vmi_test_pwrite_all (fd, buf, tail, size - tail);
	}
	g_assert_cmpint (close (fd), ==, 0);
}

const char *
vmi_test_corpus_dir (void)
{
	static char *dir = NULL;
	const char *env = g_getenv ("VMI_CORPUS_DIR");
	const char *root = g_getenv ("VMI_TEST_SOURCE_ROOT");

	if (dir == NULL) {
		if (env != NULL)
			dir = g_strdup (env);
		else if (root != NULL)
			dir = g_build_filename (root, "..", "shared", "corpus", NULL);
	}
	if (dir == NULL || !g_file_test (dir, G_FILE_TEST_IS_DIR)) {
		g_test_skip ("the real-world corpus (../shared/corpus beside the source tree, or "
			     "$VMI_CORPUS_DIR) is absent");
		return NULL;
	}
	return dir;
}

char *
vmi_test_corpus_fetch (const char *name, const char *dir)
{
	g_autofree char *src = g_build_filename (vmi_test_corpus_dir (), name, NULL);
	g_autofree char *qsrc = g_shell_quote (src);
	char *dst;
	g_autofree char *qdst = NULL;

	if (g_str_has_suffix (name, ".bz2")) {
		g_autofree char *base = g_strndup (name, strlen (name) - 4);
		dst = g_build_filename (dir, base, NULL);
		qdst = g_shell_quote (dst);
		/* --sparse keeps the mostly-zero images from taking their full size on disk. */
		g_assert_cmpint (vmi_test_sh (NULL, "bzcat %s | cp --sparse=always /dev/stdin %s",
					      qsrc, qdst), ==, 0);
	} else {
		dst = g_build_filename (dir, name, NULL);
		qdst = g_shell_quote (dst);
		g_assert_cmpint (vmi_test_sh (NULL, "cp %s %s && chmod u+w %s", qsrc, qdst, qdst),
				 ==, 0);
	}
	return dst;
}

VmiSource *
vmi_test_open (const VmiFormatPlugin *plugin, const char *path, GError **error)
{
	g_autoptr(GError) local_error = NULL;
	VmiSource *source;
	int fd = open (path, O_RDONLY | O_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	source = vmi_source_open_with (plugin, fd, -1, NULL, error != NULL ? error : &local_error);
	close (fd);
	g_assert_no_error (local_error);
	return source;
}

gboolean
vmi_test_convert_source (VmiSource *source, const VmiFormatPlugin *dst, const char *dst_path,
			 GVariant *options, GError **error)
{
	g_autoptr(GError) local_error = NULL;
	gboolean ok;
	int fd = open (dst_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint (fd, >=, 0);
	ok = vmi_convert (source, dst, fd, options, NULL, NULL, NULL,
			  error != NULL ? error : &local_error);
	g_assert_cmpint (close (fd), ==, 0);
	g_assert_no_error (local_error);
	return ok;
}

gboolean
vmi_test_convert (const VmiFormatPlugin *src, const char *src_path, const VmiFormatPlugin *dst,
		  const char *dst_path, GVariant *options, GError **error)
{
	g_autoptr(GError) local_error = NULL;
	GError **err = error != NULL ? error : &local_error;
	g_autoptr(VmiSource) source = vmi_test_open (src, src_path, err);

	if (source == NULL)
		return FALSE;
	return vmi_test_convert_source (source, dst, dst_path, options, error);
}

char *
vmi_test_open_error (const VmiFormatPlugin *plugin, const char *path, VmiError code)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiSource) source = vmi_test_open (plugin, path, &error);

	g_assert_null (source);
	g_assert_error (error, VMI_ERROR, (gint) code);
	g_assert_cmpstr (error->message, !=, "");
	if (g_test_verbose ())
		g_printerr ("# %s: %s\n", path, error->message);
	return g_strdup (error->message);
}

guint64
vmi_test_fact_u64 (VmiSource *source, const char *key)
{
	guint64 value = 0;

	g_assert_true (g_variant_dict_lookup (vmi_source_get_info (source)->format_specific, key,
					      "t", &value));
	return value;
}

guint32
vmi_test_fact_u32 (VmiSource *source, const char *key)
{
	guint32 value = 0;

	g_assert_true (g_variant_dict_lookup (vmi_source_get_info (source)->format_specific, key,
					      "u", &value));
	return value;
}

const char *
vmi_test_fact_string (VmiSource *source, const char *key)
{
	const char *value = NULL;

	/* The dictionary keeps the value, so the borrowed string lives as long as the source. */
	g_assert_true (g_variant_dict_lookup (vmi_source_get_info (source)->format_specific, key,
					      "&s", &value));
	return value;
}

void
vmi_test_save_seed (const char *plugin_name, const char *path)
{
	const char *seed_dir = g_getenv ("VMI_FUZZ_SEED_DIR");
	g_autofree char *dir = NULL;
	g_autofree char *base = NULL;
	g_autofree char *dst = NULL;
	g_autofree char *contents = NULL;
	gsize len = 0;

	GStatBuf st;

	if (seed_dir == NULL || g_stat (path, &st) != 0 || st.st_size > 1024 * 1024)
		return;
	if (!g_file_get_contents (path, &contents, &len, NULL))
		return;
	dir = g_build_filename (seed_dir, plugin_name, NULL);
	g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
	base = g_path_get_basename (path);
	dst = g_build_filename (dir, base, NULL);
	g_assert_true (g_file_set_contents (dst, contents, (gssize) len, NULL));
}

static char *self_copy_dir;

static void
vmi_test_remove_self_copy (void)
{
	vmi_test_tmpdir_free (g_steal_pointer (&self_copy_dir));
}

const char *
vmi_test_self_for_other_users (void)
{
	static char *copy;
	g_autoptr(GError) error = NULL;
	g_autofree char *self = NULL;
	g_autofree char *contents = NULL;
	gsize len = 0;

	if (copy != NULL)
		return copy;
	self = g_file_read_link ("/proc/self/exe", &error);
	g_assert_no_error (error);
	self_copy_dir = g_strdup ("/tmp/vmimaged-test-self-XXXXXX");
	g_assert_nonnull (g_mkdtemp_full (self_copy_dir, 0755));
	g_assert_cmpint (g_chmod (self_copy_dir, 0755), ==, 0);
	atexit (vmi_test_remove_self_copy);
	copy = g_build_filename (self_copy_dir, "test-client", NULL);
	g_file_get_contents (self, &contents, &len, &error);
	g_assert_no_error (error);
	g_file_set_contents_full (copy, contents, (gssize) len, G_FILE_SET_CONTENTS_NONE, 0755,
				  &error);
	g_assert_no_error (error);
	return copy;
}

static void
vmi_test_put_be32 (guint8 *p, guint32 v)
{
	v = GUINT32_TO_BE (v);
	memcpy (p, &v, 4);
}

static void
vmi_test_put_be64 (guint8 *p, guint64 v)
{
	v = GUINT64_TO_BE (v);
	memcpy (p, &v, 8);
}

static void
vmi_test_put_be16 (guint8 *p, guint16 v)
{
	v = GUINT16_TO_BE (v);
	memcpy (p, &v, 2);
}

/* Raw deflate, as qcow2 stores a compressed cluster; returns the length written to out. */
static gsize
vmi_test_deflate_cluster (const guint8 *in, gsize len, guint8 *out)
{
	z_stream z = { 0 };
	gsize out_len;

	g_assert_cmpint (deflateInit2 (&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
				       Z_DEFAULT_STRATEGY), ==, Z_OK);
	z.next_in = (guint8 *) in;
	z.avail_in = (uInt) len;
	z.next_out = out;
	z.avail_out = (uInt) len;
	g_assert_cmpint (deflate (&z, Z_FINISH), ==, Z_STREAM_END);
	out_len = len - z.avail_out;
	deflateEnd (&z);
	return out_len;
}

void
vmi_test_make_compressed_qcow2 (const char *path, guint64 virtual_size, guint8 fill)
{
	g_autofree char *qemu_img = NULL;
	const guint cluster_bits = 16;
	const guint64 cs = 1u << cluster_bits;
	const guint64 n_clusters = virtual_size / cs;
	const guint64 l2_entries = cs / 8;
	const guint64 l1_size = (n_clusters + l2_entries - 1) / l2_entries;
	g_autofree guint8 *plain = g_malloc (cs);
	g_autofree guint8 *blob_zero = g_malloc (cs);
	g_autofree guint8 *blob_fill = g_malloc (cs);
	g_autofree guint8 *header = g_malloc0 (cs);
	g_autofree guint8 *l1 = g_malloc0 (cs);
	g_autofree guint8 *reftable = g_malloc0 (cs);
	g_autofree guint8 *refblock = g_malloc0 (cs);
	g_autofree guint8 *l2 = g_malloc0 (cs * l1_size);
	g_autoptr(GByteArray) data = g_byte_array_new ();
	gsize zero_len, fill_len;
	guint64 data_start;
	guint64 n_data_clusters;
	int fd;

	g_assert_cmpuint (virtual_size % cs, ==, 0);
	g_assert_cmpuint (l1_size * 8, <=, cs);
	memset (plain, 0, cs);
	zero_len = vmi_test_deflate_cluster (plain, cs, blob_zero);
	memset (plain, fill, cs);
	fill_len = vmi_test_deflate_cluster (plain, cs, blob_fill);

	/* Clusters: 0 header, 1 L1, 2 refcount table, 3 refcount block, 4.. L2 tables, data. */
	data_start = (4 + l1_size) * cs;
	for (guint64 i = 0; i < n_clusters; i++) {
		const guint8 *blob = i % 64 == 0 ? blob_fill : blob_zero;
		gsize blob_len = i % 64 == 0 ? fill_len : zero_len;
		guint64 host, extra;

		if (i % 4 == 3)
			continue; /* a hole */
		/* A compressed cluster never straddles a host cluster here. */
		if (data->len % cs + blob_len > cs)
			g_byte_array_set_size (data, (guint) ((data->len / cs + 1) * cs));
		host = data_start + data->len;
		extra = ((host + blob_len - 1) >> 9) - (host >> 9);
		vmi_test_put_be64 (l2 + i * 8, (1ull << 62) | (extra << (62 - (cluster_bits - 8))) | host);
		g_byte_array_append (data, blob, (guint) blob_len);
	}
	n_data_clusters = (data->len + cs - 1) / cs;
	g_byte_array_set_size (data, (guint) (n_data_clusters * cs));

	memcpy (header, "QFI\xfb", 4);
	vmi_test_put_be32 (header + 4, 2);
	vmi_test_put_be32 (header + 20, cluster_bits);
	vmi_test_put_be64 (header + 24, virtual_size);
	vmi_test_put_be32 (header + 36, (guint32) l1_size);
	vmi_test_put_be64 (header + 40, cs);
	vmi_test_put_be64 (header + 48, 2 * cs);
	vmi_test_put_be32 (header + 56, 1);
	for (guint64 i = 0; i < l1_size; i++)
		vmi_test_put_be64 (l1 + i * 8, (1ull << 63) | ((4 + i) * cs));
	vmi_test_put_be64 (reftable, 3 * cs);
	/* Refcounts: one per metadata cluster, one per compressed cluster stored in a data one. */
	for (guint64 c = 0; c < 4 + l1_size; c++)
		vmi_test_put_be16 (refblock + c * 2, 1);
	for (guint64 i = 0; i < n_clusters; i++) {
		guint64 host, c;
		guint16 old;

		if (i % 4 == 3)
			continue;
		host = GUINT64_FROM_BE (*(guint64 *) (l2 + i * 8)) & ((1ull << 54) - 1);
		c = host / cs;
		g_assert_cmpuint (c * 2, <, cs);
		old = GUINT16_FROM_BE (*(guint16 *) (refblock + c * 2));
		vmi_test_put_be16 (refblock + c * 2, (guint16) (old + 1));
	}

	fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (pwrite (fd, header, cs, 0), ==, (gssize) cs);
	g_assert_cmpint (pwrite (fd, l1, cs, cs), ==, (gssize) cs);
	g_assert_cmpint (pwrite (fd, reftable, cs, 2 * cs), ==, (gssize) cs);
	g_assert_cmpint (pwrite (fd, refblock, cs, 3 * cs), ==, (gssize) cs);
	g_assert_cmpint (pwrite (fd, l2, cs * l1_size, 4 * cs), ==, (gssize) (cs * l1_size));
	g_assert_cmpint (pwrite (fd, data->data, data->len, data_start), ==, (gssize) data->len);
	close (fd);
	/* The generator itself is checked by the oracle. */
	qemu_img = g_find_program_in_path ("qemu-img");
	if (qemu_img != NULL)
		g_assert_true (vmi_test_qemu_img_check (path, "qcow2"));
}
