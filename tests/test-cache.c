/*
 * Tests of the image cache store (daemon/vmi-cache.c): imports from raw and qcow2, content
 * addressing, the index across re-opens, export back with qemu-img compare as the oracle,
 * eviction and pinning, unsafe directories, crash consistency under SIGKILL, a full file
 * system, and concurrent imports of the same content.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmi-cache.h"
#include "vmi-content-hash.h"
#include "vmi-test-util.h"

extern const VmiFormatPlugin vmi_raw_plugin;
extern const VmiFormatPlugin vmi_qcow2_plugin;

#define KiB 1024u
#define MiB (1024u * 1024u)

/* The program itself, for the crash test's child (see main). */
static const char *test_argv0;

static void
write_all_at (int fd, const guint8 *buf, gsize len, guint64 offset)
{
	while (len > 0) {
		ssize_t n = pwrite (fd, buf, len, (off_t) offset);

		g_assert_cmpint (n, >, 0);
		buf += n;
		len -= (gsize) n;
		offset += (guint64) n;
	}
}

/*
 * A sparse raw image of size bytes with data_len bytes of random data (never a zero block) at
 * offset 0, and 512 bytes at the very end. Same seed, same bytes.
 */
static void
make_random_image (const char *path, guint64 size, gsize data_len, guint32 seed)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
	g_autofree guint8 *buf = g_malloc (data_len);
	guint8 tail[512];
	int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (ftruncate (fd, (off_t) size), ==, 0);
	for (gsize i = 0; i < data_len; i++)
		buf[i] = (guint8) (g_rand_int (rand) | 1u);
	write_all_at (fd, buf, data_len, 0);
	memset (tail, (int) (seed & 0x7f) + 1, sizeof tail);
	write_all_at (fd, tail, sizeof tail, size - sizeof tail);
	g_assert_cmpint (close (fd), ==, 0);
}

static VmiCacheEntry *
import_file (VmiCache *cache, const VmiFormatPlugin *src_format, const char *path,
	     const VmiFormatPlugin *store_format, const char *name, GHashTable *properties,
	     GError **error)
{
	g_autoptr(VmiSource) source = vmi_test_open (src_format, path, NULL);

	return vmi_cache_import (cache, source, store_format, name, path, properties, NULL, NULL,
				 NULL, error);
}

static VmiCache *
open_cache (const char *dir, guint64 limit)
{
	g_autoptr(GError) error = NULL;
	VmiCache *cache = vmi_cache_open (dir, limit, &error);

	g_assert_no_error (error);
	g_assert_nonnull (cache);
	return cache;
}

static VmiRegistry *
make_registry (void)
{
	VmiRegistry *registry = vmi_registry_new ();

	g_assert_true (vmi_registry_add (registry, &vmi_raw_plugin, NULL));
	g_assert_true (vmi_registry_add (registry, &vmi_qcow2_plugin, NULL));
	return registry;
}

static void
assert_verifies (VmiCache *cache, VmiRegistry *registry, const char *id)
{
	g_autoptr(GError) error = NULL;

	g_assert_true (vmi_cache_verify (cache, id, registry, NULL, NULL, NULL, &error));
	g_assert_no_error (error);
}

/* Every file in the cache directory is .lock, <id>.img or <id>.entry, and they pair up. */
static void
assert_clean_dir (VmiCache *cache)
{
	g_autoptr(GDir) dir = g_dir_open (vmi_cache_get_dir (cache), 0, NULL);
	g_autoptr(GPtrArray) entries = vmi_cache_list (cache);
	g_autoptr(GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
	const char *name;
	guint files = 0;

	for (guint i = 0; i < entries->len; i++)
		g_hash_table_add (ids, (gpointer) vmi_cache_entry_get_id (entries->pdata[i]));
	g_assert_nonnull (dir);
	while ((name = g_dir_read_name (dir)) != NULL) {
		g_autofree char *id = NULL;

		if (strcmp (name, ".lock") == 0)
			continue;
		g_assert_false (g_str_has_prefix (name, ".tmp-"));
		g_assert_true (g_str_has_suffix (name, ".img") || g_str_has_suffix (name, ".entry"));
		id = g_strndup (name, strcspn (name, "."));
		g_assert_true (g_hash_table_contains (ids, id));
		files++;
	}
	g_assert_cmpuint (files, ==, 2 * entries->len);
}

static char *
sha256_file (const char *path)
{
	g_autofree char *data = NULL;
	gsize len = 0;

	g_assert_true (g_file_get_contents (path, &data, &len, NULL));
	return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
}

/*
 * The content digest as docs/cache.md defines it, computed the slow way: every byte of the raw
 * file read, every block tested. The engine's digest must equal it.
 */
static char *
reference_digest (const char *raw_path)
{
	static const char magic[] = "vmimaged content digest v1";
	g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
	g_autofree guint8 *block = g_malloc (VMI_CONTENT_HASH_BLOCK);
	struct stat st;
	guint64 size, le;
	int fd = open (raw_path, O_RDONLY | O_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (fstat (fd, &st), ==, 0);
	size = (guint64) st.st_size;
	g_checksum_update (checksum, (const guchar *) magic, sizeof magic);
	le = GUINT64_TO_LE (size);
	g_checksum_update (checksum, (const guchar *) &le, sizeof le);
	for (guint64 index = 0; index * VMI_CONTENT_HASH_BLOCK < size; index++) {
		guint64 offset = index * VMI_CONTENT_HASH_BLOCK;
		gsize len = (gsize) MIN (VMI_CONTENT_HASH_BLOCK, size - offset);
		gboolean zero = TRUE;

		g_assert_cmpint (pread (fd, block, len, (off_t) offset), ==, (gssize) len);
		for (gsize i = 0; i < len && zero; i++)
			zero = block[i] == 0;
		if (zero)
			continue;
		le = GUINT64_TO_LE (index);
		g_checksum_update (checksum, (const guchar *) &le, sizeof le);
		g_checksum_update (checksum, block, len);
	}
	close (fd);
	return g_strdup (g_checksum_get_string (checksum));
}

static char *
engine_digest (const VmiFormatPlugin *format, const char *path)
{
	g_autoptr(VmiSource) source = vmi_test_open (format, path, NULL);
	g_autoptr(GError) error = NULL;
	char *digest = NULL;

	g_assert_true (vmi_content_hash (source, NULL, NULL, NULL, &digest, NULL, &error));
	g_assert_no_error (error);
	return digest;
}

static void
test_content_digest (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *raw = g_build_filename (dir, "a.raw", NULL);
	g_autofree char *qcow2 = g_build_filename (dir, "a.qcow2", NULL);
	g_autofree char *big = g_build_filename (dir, "big.raw", NULL);
	g_autofree char *big_qcow2 = g_build_filename (dir, "big.qcow2", NULL);
	g_autofree char *digest_raw = NULL;
	g_autofree char *digest_qcow2 = NULL;
	g_autofree char *digest_ref = NULL;
	g_autofree char *digest_changed = NULL;
	g_autofree char *digest_longer = NULL;
	g_autofree char *digest_big = NULL;
	gint64 start;
	int fd;

	/* Data, written zeros, holes and a partial last block (size not a multiple of 64 KiB). */
	vmi_test_make_pattern_image (raw, 3 * MiB + 1536, 7);
	vmi_test_convert (&vmi_raw_plugin, raw, &vmi_qcow2_plugin, qcow2, NULL, NULL);
	digest_raw = engine_digest (&vmi_raw_plugin, raw);
	digest_qcow2 = engine_digest (&vmi_qcow2_plugin, qcow2);
	digest_ref = reference_digest (raw);
	g_assert_cmpstr (digest_raw, ==, digest_ref);
	g_assert_cmpstr (digest_qcow2, ==, digest_ref);

	/* One byte changed: another digest. */
	fd = open (raw, O_RDWR | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	write_all_at (fd, (const guint8 *) "X", 1, 100 * KiB + 3);
	digest_changed = engine_digest (&vmi_raw_plugin, raw);
	g_assert_cmpstr (digest_changed, !=, digest_raw);
	g_clear_pointer (&digest_ref, g_free);
	digest_ref = reference_digest (raw);
	g_assert_cmpstr (digest_changed, ==, digest_ref);
	/* The same bytes followed by zeros: a bigger disk is other content. */
	g_assert_cmpint (ftruncate (fd, 4 * MiB), ==, 0);
	g_assert_cmpint (close (fd), ==, 0);
	digest_longer = engine_digest (&vmi_raw_plugin, raw);
	g_assert_cmpstr (digest_longer, !=, digest_changed);

	/* A 1 TiB sparse disk costs what its data costs, in either format. */
	make_random_image (big, G_GUINT64_CONSTANT (1) << 40, 256 * KiB, 3);
	start = g_get_monotonic_time ();
	digest_big = engine_digest (&vmi_raw_plugin, big);
	g_test_message ("digest of a 1 TiB sparse raw disk: %" G_GINT64_FORMAT " ms",
			(g_get_monotonic_time () - start) / 1000);
	g_assert_cmpint (g_get_monotonic_time () - start, <, 60 * G_USEC_PER_SEC);
	vmi_test_convert (&vmi_raw_plugin, big, &vmi_qcow2_plugin, big_qcow2, NULL, NULL);
	g_clear_pointer (&digest_qcow2, g_free);
	digest_qcow2 = engine_digest (&vmi_qcow2_plugin, big_qcow2);
	g_assert_cmpstr (digest_qcow2, ==, digest_big);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
export_entry (VmiCacheEntry *entry, const char *dst)
{
	const VmiFormatPlugin *format = strcmp (vmi_cache_entry_get_format (entry), "qcow2") == 0
						? &vmi_qcow2_plugin
						: &vmi_raw_plugin;

	vmi_test_convert (format, vmi_cache_entry_get_path (entry), &vmi_raw_plugin, dst, NULL, NULL);
}

static void
test_import_list_reopen (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autofree char *raw = g_build_filename (dir, "a.raw", NULL);
	g_autofree char *qcow2 = g_build_filename (dir, "a.qcow2", NULL);
	g_autofree char *raw_b = g_build_filename (dir, "b.raw", NULL);
	g_autofree char *out = g_build_filename (dir, "out.raw", NULL);
	g_autoptr(VmiRegistry) registry = make_registry ();
	g_autoptr(GHashTable) props = g_hash_table_new (g_str_hash, g_str_equal);
	g_autoptr(VmiCache) cache = NULL;
	g_autoptr(VmiCacheEntry) a = NULL;
	g_autoptr(VmiCacheEntry) a2 = NULL;
	g_autoptr(VmiCacheEntry) b = NULL;
	g_autoptr(GPtrArray) list = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *sha = NULL;
	g_autofree char *digest = NULL;
	struct stat st;

	if (!vmi_test_require_qemu_img ())
		return;
	vmi_test_make_pattern_image (raw, 5 * MiB, 11);
	vmi_test_convert (&vmi_raw_plugin, raw, &vmi_qcow2_plugin, qcow2, NULL, NULL);
	vmi_test_make_pattern_image (raw_b, 2 * MiB + 512, 12);

	cache = open_cache (cache_dir, 0);
	g_assert_cmpint (g_stat (cache_dir, &st), ==, 0);
	g_assert_cmpint (st.st_mode & 0777, ==, 0700);
	g_assert_cmpuint (vmi_cache_get_size (cache), ==, 0);

	/* raw → stored as qcow2 */
	g_hash_table_insert (props, "os_type", "linux");
	g_hash_table_insert (props, "architecture", "x86_64");
	a = import_file (cache, &vmi_raw_plugin, raw, &vmi_qcow2_plugin, "alpha", props, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_cache_entry_get_format (a), ==, "qcow2");
	g_assert_cmpstr (vmi_cache_entry_get_name (a), ==, "alpha");
	g_assert_cmpstr (vmi_cache_entry_get_source (a), ==, raw);
	g_assert_cmpuint (vmi_cache_entry_get_virtual_size (a), ==, 5 * MiB);
	g_assert_cmpuint (strlen (vmi_cache_entry_get_id (a)), ==, 32);
	digest = reference_digest (raw);
	g_assert_cmpstr (vmi_cache_entry_get_content_checksum (a), ==, digest);
	g_assert_true (g_str_has_prefix (digest, vmi_cache_entry_get_id (a)));
	sha = sha256_file (vmi_cache_entry_get_path (a));
	g_assert_cmpstr (vmi_cache_entry_get_checksum (a), ==, sha);
	g_assert_cmpint (g_stat (vmi_cache_entry_get_path (a), &st), ==, 0);
	g_assert_cmpuint (vmi_cache_entry_get_size (a), ==, (guint64) st.st_blocks * 512u);
	g_assert_cmpuint (vmi_cache_entry_get_file_size (a), ==, (guint64) st.st_size);
	g_assert_cmpuint (vmi_cache_get_size (cache), ==, vmi_cache_entry_get_size (a));
	g_assert_true (vmi_test_qemu_img_check (vmi_cache_entry_get_path (a), "qcow2"));
	g_assert_cmpint (vmi_cache_entry_get_created (a), ==, vmi_cache_entry_get_last_used (a));
	g_assert_cmpstr (g_hash_table_lookup (vmi_cache_entry_get_properties (a), "os_type"), ==,
			 "linux");

	/* The qcow2 of the same content, asked to be stored as raw: the same entry, renamed, with
	 * the new property merged in. */
	g_hash_table_remove_all (props);
	g_hash_table_insert (props, "os_distro", "debian");
	a2 = import_file (cache, &vmi_qcow2_plugin, qcow2, &vmi_raw_plugin, "alpha-again", props,
			  &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_cache_entry_get_id (a2), ==, vmi_cache_entry_get_id (a));
	g_assert_cmpstr (vmi_cache_entry_get_format (a2), ==, "qcow2");
	g_assert_cmpstr (vmi_cache_entry_get_name (a2), ==, "alpha-again");
	g_assert_cmpstr (vmi_cache_entry_get_checksum (a2), ==, sha);
	g_assert_cmpstr (g_hash_table_lookup (vmi_cache_entry_get_properties (a2), "os_type"), ==,
			 "linux");
	g_assert_cmpstr (g_hash_table_lookup (vmi_cache_entry_get_properties (a2), "os_distro"), ==,
			 "debian");
	list = vmi_cache_list (cache);
	g_assert_cmpuint (list->len, ==, 1);
	g_clear_pointer (&list, g_ptr_array_unref);

	/* Other content, stored as raw. */
	b = import_file (cache, &vmi_raw_plugin, raw_b, &vmi_raw_plugin, NULL, NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_cache_entry_get_format (b), ==, "raw");
	g_assert_cmpstr (vmi_cache_entry_get_name (b), ==, "");
	g_assert_cmpstr (vmi_cache_entry_get_id (b), !=, vmi_cache_entry_get_id (a));
	list = vmi_cache_list (cache);
	g_assert_cmpuint (list->len, ==, 2);
	g_clear_pointer (&list, g_ptr_array_unref);
	assert_clean_dir (cache);

	/* Re-open: the index survives, with every field. */
	g_clear_pointer (&cache, vmi_cache_free);
	cache = open_cache (cache_dir, 0);
	list = vmi_cache_list (cache);
	g_assert_cmpuint (list->len, ==, 2);
	for (guint i = 0; i < list->len; i++) {
		VmiCacheEntry *e = list->pdata[i];
		VmiCacheEntry *before =
			strcmp (vmi_cache_entry_get_id (e), vmi_cache_entry_get_id (a)) == 0 ? a2 : b;

		g_assert_cmpstr (vmi_cache_entry_get_id (e), ==, vmi_cache_entry_get_id (before));
		g_assert_cmpstr (vmi_cache_entry_get_name (e), ==, vmi_cache_entry_get_name (before));
		g_assert_cmpstr (vmi_cache_entry_get_format (e), ==,
				 vmi_cache_entry_get_format (before));
		g_assert_cmpstr (vmi_cache_entry_get_checksum (e), ==,
				 vmi_cache_entry_get_checksum (before));
		g_assert_cmpstr (vmi_cache_entry_get_content_checksum (e), ==,
				 vmi_cache_entry_get_content_checksum (before));
		g_assert_cmpstr (vmi_cache_entry_get_source (e), ==, vmi_cache_entry_get_source (before));
		g_assert_cmpstr (vmi_cache_entry_get_path (e), ==, vmi_cache_entry_get_path (before));
		g_assert_cmpuint (vmi_cache_entry_get_virtual_size (e), ==,
				  vmi_cache_entry_get_virtual_size (before));
		g_assert_cmpuint (vmi_cache_entry_get_size (e), ==, vmi_cache_entry_get_size (before));
		g_assert_cmpint (vmi_cache_entry_get_created (e), ==,
				 vmi_cache_entry_get_created (before));
		g_assert_cmpint (vmi_cache_entry_get_last_used (e), ==,
				 vmi_cache_entry_get_last_used (before));
		g_assert_cmpuint (g_hash_table_size (vmi_cache_entry_get_properties (e)), ==,
				  g_hash_table_size (vmi_cache_entry_get_properties (before)));
		assert_verifies (cache, registry, vmi_cache_entry_get_id (e));
	}
	g_clear_pointer (&list, g_ptr_array_unref);

	/* Export back (the daemon's job: vmi_convert from the stored file) equals the original. */
	export_entry (a2, out);
	g_assert_true (vmi_test_qemu_img_compare (raw, "raw", out, "raw"));
	export_entry (b, out);
	g_assert_true (vmi_test_qemu_img_compare (raw_b, "raw", out, "raw"));

	/* Remove, durably. */
	g_assert_true (vmi_cache_remove (cache, vmi_cache_entry_get_id (b), &error));
	g_assert_no_error (error);
	g_assert_false (g_file_test (vmi_cache_entry_get_path (b), G_FILE_TEST_EXISTS));
	g_assert_false (vmi_cache_remove (cache, vmi_cache_entry_get_id (b), &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_clear_pointer (&cache, vmi_cache_free);
	cache = open_cache (cache_dir, 0);
	list = vmi_cache_list (cache);
	g_assert_cmpuint (list->len, ==, 1);
	g_assert_cmpstr (vmi_cache_entry_get_id (list->pdata[0]), ==, vmi_cache_entry_get_id (a));
	assert_clean_dir (cache);
	g_clear_pointer (&cache, vmi_cache_free);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* A 1 TiB sparse disk with a little data: import and verify cost what the data costs. */
static void
test_sparse_import (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autofree char *raw = g_build_filename (dir, "big.raw", NULL);
	g_autoptr(VmiRegistry) registry = make_registry ();
	g_autoptr(VmiCache) cache = open_cache (cache_dir, 0);
	g_autoptr(VmiCacheEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	gint64 start = g_get_monotonic_time ();

	make_random_image (raw, G_GUINT64_CONSTANT (1) << 40, MiB, 61);
	entry = import_file (cache, &vmi_raw_plugin, raw, &vmi_qcow2_plugin, "big", NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (vmi_cache_entry_get_virtual_size (entry), ==, G_GUINT64_CONSTANT (1) << 40);
	g_assert_cmpuint (vmi_cache_entry_get_size (entry), <, 8 * MiB);
	assert_verifies (cache, registry, vmi_cache_entry_get_id (entry));
	g_test_message ("import and verify of a 1 TiB sparse disk with 1 MiB of data: %" G_GINT64_FORMAT
			" ms, %" G_GUINT64_FORMAT " bytes stored",
			(g_get_monotonic_time () - start) / 1000, vmi_cache_entry_get_size (entry));
	g_assert_cmpint (g_get_monotonic_time () - start, <, 30 * G_USEC_PER_SEC);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/*
 * A disk whose size is not a multiple of 512 bytes: qcow2 rounds it up (as qemu-img does), so the
 * stored disk is the source followed by zeros, and the entry describes the stored disk. Stored
 * as raw it keeps its exact size.
 */
static void
test_odd_size (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autofree char *raw = g_build_filename (dir, "odd.raw", NULL);
	g_autofree char *padded = g_build_filename (dir, "padded.raw", NULL);
	g_autofree char *padded_digest = NULL;
	g_autofree char *exact_digest = NULL;
	g_autoptr(VmiRegistry) registry = make_registry ();
	g_autoptr(VmiCache) cache = open_cache (cache_dir, 0);
	g_autoptr(VmiCacheEntry) as_qcow2 = NULL;
	g_autoptr(VmiCacheEntry) again = NULL;
	g_autoptr(VmiCacheEntry) as_raw = NULL;
	g_autoptr(GPtrArray) list = NULL;
	g_autoptr(GError) error = NULL;

	make_random_image (raw, MiB + 100, 64 * KiB, 71);
	exact_digest = reference_digest (raw);
	g_assert_true (g_file_set_contents (padded, "", 0, NULL));
	g_assert_cmpint (vmi_test_sh (NULL, "cp %s %s && truncate -s %u %s", raw, padded, MiB + 512,
				      padded), ==, 0);
	padded_digest = reference_digest (padded);

	as_qcow2 = import_file (cache, &vmi_raw_plugin, raw, &vmi_qcow2_plugin, "odd", NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (vmi_cache_entry_get_virtual_size (as_qcow2), ==, MiB + 512);
	g_assert_cmpstr (vmi_cache_entry_get_content_checksum (as_qcow2), ==, padded_digest);
	assert_verifies (cache, registry, vmi_cache_entry_get_id (as_qcow2));
	/* The same source again: the same entry. */
	again = import_file (cache, &vmi_raw_plugin, raw, &vmi_qcow2_plugin, "odd", NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_cache_entry_get_id (again), ==, vmi_cache_entry_get_id (as_qcow2));
	/* Exact as raw: other content (its size differs). */
	as_raw = import_file (cache, &vmi_raw_plugin, raw, &vmi_raw_plugin, "odd", NULL, &error);
	g_assert_no_error (error);
	g_assert_cmpuint (vmi_cache_entry_get_virtual_size (as_raw), ==, MiB + 100);
	g_assert_cmpstr (vmi_cache_entry_get_content_checksum (as_raw), ==, exact_digest);
	assert_verifies (cache, registry, vmi_cache_entry_get_id (as_raw));
	list = vmi_cache_list (cache);
	g_assert_cmpuint (list->len, ==, 2);
	assert_clean_dir (cache);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_properties (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autofree char *raw = g_build_filename (dir, "a.raw", NULL);
	g_autoptr(GHashTable) set = g_hash_table_new (g_str_hash, g_str_equal);
	g_autoptr(VmiCache) cache = open_cache (cache_dir, 0);
	g_autoptr(VmiCacheEntry) entry = NULL;
	g_autoptr(VmiCacheEntry) updated = NULL;
	g_autoptr(VmiCacheEntry) touched = NULL;
	g_autoptr(VmiCacheEntry) reloaded = NULL;
	g_autoptr(GError) error = NULL;
	const char *unset[] = { "min_ram", NULL };
	const char *bad_unset[] = { "a b", NULL };
	GHashTable *props;
	const char *id;

	make_random_image (raw, MiB, 64 * KiB, 1);
	g_hash_table_insert (set, "min_ram", "512");
	g_hash_table_insert (set, "hw_firmware_type", "uefi");
	entry = import_file (cache, &vmi_raw_plugin, raw, &vmi_qcow2_plugin, "p", set, &error);
	g_assert_no_error (error);
	id = vmi_cache_entry_get_id (entry);

	g_hash_table_remove_all (set);
	g_hash_table_insert (set, "hw_disk_bus", "virtio");
	g_hash_table_insert (set, "description", "line one\nline two = [x] é");
	updated = vmi_cache_set_properties (cache, id, set, unset, &error);
	g_assert_no_error (error);
	props = vmi_cache_entry_get_properties (updated);
	g_assert_cmpuint (g_hash_table_size (props), ==, 3);
	g_assert_null (g_hash_table_lookup (props, "min_ram"));
	/* The old snapshot did not change under its holder. */
	g_assert_cmpstr (g_hash_table_lookup (vmi_cache_entry_get_properties (entry), "min_ram"),
			 ==, "512");

	/* Bad names and values are refused and change nothing. */
	g_hash_table_remove_all (set);
	g_hash_table_insert (set, "os=type", "x");
	g_assert_null (vmi_cache_set_properties (cache, id, set, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_hash_table_remove_all (set);
	g_hash_table_insert (set, "os_type", "\xff\xfe");
	g_assert_null (vmi_cache_set_properties (cache, id, set, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_null (vmi_cache_set_properties (cache, id, NULL, bad_unset, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_assert_null (vmi_cache_set_properties (cache, "0123", NULL, unset, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);

	/* Limits that keep the metadata file small: the count is of the merged result. */
	{
		g_autoptr(GHashTable) many = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
								    NULL);
		g_autofree char *long_name = g_strnfill (VMI_CACHE_ENTRY_NAME_MAX + 1, 'n');
		g_autofree gpointer *keys = NULL;

		for (guint i = 0; i < VMI_CACHE_ENTRY_MAX_PROPERTIES - 3; i++)
			g_hash_table_add (many, g_strdup_printf ("k%u", i));
		g_clear_pointer (&updated, vmi_cache_entry_unref);
		updated = vmi_cache_set_properties (cache, id, many, NULL, &error);
		g_assert_no_error (error);
		g_assert_cmpuint (g_hash_table_size (vmi_cache_entry_get_properties (updated)), ==,
				  VMI_CACHE_ENTRY_MAX_PROPERTIES);
		g_hash_table_add (many, g_strdup ("one_too_many"));
		g_assert_null (vmi_cache_set_properties (cache, id, many, NULL, &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
		g_test_message ("%s", error->message);
		g_clear_error (&error);
		g_hash_table_remove (many, "one_too_many");
		keys = g_hash_table_get_keys_as_array (many, NULL);
		g_clear_pointer (&updated, vmi_cache_entry_unref);
		updated = vmi_cache_set_properties (cache, id, NULL, (const char *const *) keys,
						    &error);
		g_assert_no_error (error);
		g_assert_cmpuint (g_hash_table_size (vmi_cache_entry_get_properties (updated)), ==, 3);
		g_assert_null (vmi_cache_set_name (cache, id, long_name, &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
		g_clear_error (&error);
	}

	g_usleep (2000);
	touched = vmi_cache_touch (cache, id, &error);
	g_assert_no_error (error);
	g_assert_cmpint (vmi_cache_entry_get_last_used (touched), >,
			 vmi_cache_entry_get_last_used (entry));
	g_assert_null (vmi_cache_set_name (cache, id, "\xc3", &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);
	g_clear_pointer (&touched, vmi_cache_entry_unref);
	touched = vmi_cache_set_name (cache, id, "renamed", &error);
	g_assert_no_error (error);

	g_clear_pointer (&cache, vmi_cache_free);
	cache = open_cache (cache_dir, 0);
	reloaded = vmi_cache_lookup (cache, id, &error);
	g_assert_no_error (error);
	g_assert_cmpstr (vmi_cache_entry_get_name (reloaded), ==, "renamed");
	g_assert_cmpint (vmi_cache_entry_get_last_used (reloaded), ==,
			 vmi_cache_entry_get_last_used (touched));
	props = vmi_cache_entry_get_properties (reloaded);
	g_assert_cmpuint (g_hash_table_size (props), ==, 3);
	g_assert_cmpstr (g_hash_table_lookup (props, "description"), ==, "line one\nline two = [x] é");
	g_assert_cmpstr (g_hash_table_lookup (props, "hw_firmware_type"), ==, "uefi");

	/* A source path that is not UTF-8 must not make the metadata unreadable. */
	{
		g_autofree char *other = g_build_filename (dir, "b.raw", NULL);
		g_autoptr(VmiSource) source = NULL;
		g_autoptr(VmiCacheEntry) b = NULL;
		g_autoptr(VmiCacheEntry) b2 = NULL;

		make_random_image (other, MiB, 64 * KiB, 2);
		source = vmi_test_open (&vmi_raw_plugin, other, NULL);
		b = vmi_cache_import (cache, source, &vmi_raw_plugin, NULL, "/srv/caf\xe9.raw", NULL,
				      NULL, NULL, NULL, &error);
		g_assert_no_error (error);
		g_assert_cmpstr (vmi_cache_entry_get_source (b), ==, "/srv/caf\xef\xbf\xbd.raw");
		g_clear_pointer (&cache, vmi_cache_free);
		cache = open_cache (cache_dir, 0);
		b2 = vmi_cache_lookup (cache, vmi_cache_entry_get_id (b), &error);
		g_assert_no_error (error);
		g_assert_cmpstr (vmi_cache_entry_get_source (b2), ==, vmi_cache_entry_get_source (b));
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_verify_corrupt (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autofree char *raw = g_build_filename (dir, "a.raw", NULL);
	g_autoptr(VmiRegistry) registry = make_registry ();
	g_autoptr(VmiCache) cache = open_cache (cache_dir, 0);
	g_autoptr(VmiCacheEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	guint8 byte = 0;
	int fd;

	make_random_image (raw, 2 * MiB, 128 * KiB, 5);
	entry = import_file (cache, &vmi_raw_plugin, raw, &vmi_raw_plugin, "v", NULL, &error);
	g_assert_no_error (error);
	assert_verifies (cache, registry, vmi_cache_entry_get_id (entry));

	/* One flipped byte in the stored file. */
	fd = open (vmi_cache_entry_get_path (entry), O_RDWR | O_CLOEXEC);
	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (pread (fd, &byte, 1, 4096), ==, 1);
	byte ^= 0x40;
	write_all_at (fd, &byte, 1, 4096);
	g_assert_cmpint (close (fd), ==, 0);
	g_assert_false (vmi_cache_verify (cache, vmi_cache_entry_get_id (entry), registry, NULL,
					  NULL, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE);
	g_test_message ("%s", error->message);
	g_clear_error (&error);
	g_assert_false (vmi_cache_verify (cache, "00000000000000000000000000000000", registry, NULL,
					  NULL, NULL, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

typedef struct {
	guint64 last_done;
	guint64 total;
	guint calls;
	GCancellable *cancel_at_half;
} ProgressLog;

static void
record_progress (guint64 done, guint64 total, gpointer user_data)
{
	ProgressLog *log = user_data;

	g_assert_cmpuint (done, >=, log->last_done);
	g_assert_cmpuint (done, <=, total);
	g_assert_true (log->calls == 0 || total == log->total);
	log->last_done = done;
	log->total = total;
	log->calls++;
	if (log->cancel_at_half != NULL && done >= total / 2)
		g_cancellable_cancel (log->cancel_at_half);
}

static void
test_progress_cancel (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autofree char *raw = g_build_filename (dir, "a.raw", NULL);
	g_autoptr(VmiCache) cache = open_cache (cache_dir, 0);
	g_autoptr(GCancellable) cancellable = g_cancellable_new ();
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) list = NULL;

	make_random_image (raw, 64 * MiB, 12 * MiB, 51);
	/* Cancelled half way, i.e. as the conversion starts: nothing is left. */
	for (guint i = 0; i < 2; i++) {
		g_autoptr(VmiSource) source = vmi_test_open (&vmi_raw_plugin, raw, NULL);
		g_autoptr(VmiCacheEntry) entry = NULL;
		ProgressLog log = { 0 };

		log.cancel_at_half = i == 0 ? cancellable : NULL;
		entry = vmi_cache_import (cache, source, &vmi_qcow2_plugin, "p", raw, NULL,
					  record_progress, &log, cancellable, &error);
		if (i == 0) {
			g_assert_null (entry);
			g_assert_error (error, VMI_ERROR, VMI_ERROR_CANCELLED);
			g_clear_error (&error);
			list = vmi_cache_list (cache);
			g_assert_cmpuint (list->len, ==, 0);
			g_clear_pointer (&list, g_ptr_array_unref);
			assert_clean_dir (cache);
			g_cancellable_reset (cancellable);
		} else {
			g_assert_no_error (error);
			g_assert_nonnull (entry);
			g_assert_cmpuint (log.total, ==, 64 * MiB);
			g_assert_cmpuint (log.last_done, ==, log.total);
			g_assert_cmpuint (log.calls, >, 4);
		}
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

typedef struct {
	GPtrArray *events;
} ChangeLog;

static void
record_change (VmiCache *cache, const char *id, VmiCacheEntry *entry, gpointer user_data)
{
	static GMutex lock; /* imports on two threads report at once */
	ChangeLog *log = user_data;

	g_mutex_lock (&lock);
	g_ptr_array_add (log->events, g_strdup_printf ("%c%s", entry != NULL ? '+' : '-', id));
	g_mutex_unlock (&lock);
}

static VmiCacheEntry *
import_random (VmiCache *cache, const char *dir, guint32 seed, gsize data_len, GError **error)
{
	g_autofree char *name = g_strdup_printf ("r%u.raw", seed);
	g_autofree char *path = g_build_filename (dir, name, NULL);

	make_random_image (path, 4 * MiB, data_len, seed);
	return import_file (cache, &vmi_raw_plugin, path, &vmi_raw_plugin, name, NULL, error);
}

static gboolean
has_entry (VmiCache *cache, VmiCacheEntry *entry)
{
	g_autoptr(VmiCacheEntry) found = vmi_cache_lookup (cache, vmi_cache_entry_get_id (entry), NULL);

	return found != NULL;
}

static void
test_eviction (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autoptr(VmiCache) cache = open_cache (cache_dir, 0);
	g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func (g_free);
	ChangeLog log = { events };
	g_autoptr(VmiCacheEntry) a = NULL, b = NULL, c = NULL, d = NULL, e = NULL, f = NULL;
	g_autoptr(VmiCacheEntry) touched = NULL, pinned = NULL, held = NULL, g = NULL;
	g_autoptr(GHashTable) pin = g_hash_table_new (g_str_hash, g_str_equal);
	g_autoptr(GError) error = NULL;
	g_autofree char *expected = NULL;
	guint64 unit, freed = 0;

	vmi_cache_set_changed_func (cache, record_change, &log);
	a = import_random (cache, dir, 1, MiB, &error);
	g_assert_no_error (error);
	b = import_random (cache, dir, 2, MiB, &error);
	g_assert_no_error (error);
	c = import_random (cache, dir, 3, MiB, &error);
	g_assert_no_error (error);
	/* Equal data, equal sizes on disk: the limits below are counted in entries. */
	unit = vmi_cache_entry_get_size (a);
	g_assert_cmpuint (vmi_cache_entry_get_size (b), ==, unit);
	g_assert_cmpuint (vmi_cache_entry_get_size (c), ==, unit);
	g_assert_cmpuint (vmi_cache_get_size (cache), ==, 3 * unit);
	g_assert_cmpuint (events->len, ==, 3);

	/* a used after b and c: b is the least recently used. Room for 3.5 entries. */
	touched = vmi_cache_touch (cache, vmi_cache_entry_get_id (a), &error);
	g_assert_no_error (error);
	vmi_cache_set_limit (cache, 3 * unit + unit / 2);
	d = import_random (cache, dir, 4, MiB, &error);
	g_assert_no_error (error);
	g_assert_false (has_entry (cache, b));
	g_assert_true (has_entry (cache, a));
	g_assert_true (has_entry (cache, c));
	g_assert_true (has_entry (cache, d));
	g_assert_false (g_file_test (vmi_cache_entry_get_path (b), G_FILE_TEST_EXISTS));
	g_assert_cmpuint (vmi_cache_get_size (cache), ==, 3 * unit);
	/* Listeners saw b go and d come. */
	expected = g_strdup_printf ("-%s", vmi_cache_entry_get_id (b));
	g_assert_cmpstr (events->pdata[events->len - 2], ==, expected);
	g_clear_pointer (&expected, g_free);
	expected = g_strdup_printf ("+%s", vmi_cache_entry_get_id (d));
	g_assert_cmpstr (events->pdata[events->len - 1], ==, expected);

	/* c pinned, a held (an export running): d, then e go next though older ones remain. */
	g_hash_table_insert (pin, VMI_CACHE_PROPERTY_PINNED, "true");
	pinned = vmi_cache_set_properties (cache, vmi_cache_entry_get_id (c), pin, NULL, &error);
	g_assert_no_error (error);
	g_assert_true (vmi_cache_entry_is_pinned (pinned));
	held = vmi_cache_hold (cache, vmi_cache_entry_get_id (a), &error);
	g_assert_no_error (error);
	e = import_random (cache, dir, 5, MiB, &error);
	g_assert_no_error (error);
	g_assert_false (has_entry (cache, d));
	g_assert_true (has_entry (cache, a));
	g_assert_true (has_entry (cache, c));
	f = import_random (cache, dir, 6, MiB, &error);
	g_assert_no_error (error);
	g_assert_false (has_entry (cache, e));
	g_assert_true (has_entry (cache, a));
	g_assert_true (has_entry (cache, c));
	g_assert_true (has_entry (cache, f));

	/* A held entry cannot be removed either. */
	g_assert_false (vmi_cache_remove (cache, vmi_cache_entry_get_id (a), &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_FAILED);
	g_clear_error (&error);

	/* Room for 2.5 entries with a and c unevictable: a new one cannot fit, and nothing is
	 * evicted trying. */
	vmi_cache_set_limit (cache, 2 * unit + unit / 2);
	g = import_random (cache, dir, 7, MiB, &error);
	g_assert_null (g);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE);
	g_test_message ("%s", error->message);
	g_clear_pointer (&expected, g_free);
	expected = g_strdup_printf ("%" G_GUINT64_FORMAT, 2 * unit + unit / 2);
	g_assert_nonnull (strstr (error->message, expected));
	g_clear_error (&error);
	g_assert_true (has_entry (cache, f));
	assert_clean_dir (cache);

	/* An image bigger than the whole limit. */
	g = import_random (cache, dir, 8, 3 * MiB, &error);
	g_assert_null (g);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE);
	g_clear_error (&error);

	/* Prune to 1.5 entries once a is released: a and f go, pinned c stays. */
	vmi_cache_release (cache, vmi_cache_entry_get_id (a));
	vmi_cache_set_limit (cache, unit + unit / 2);
	g_assert_true (vmi_cache_prune (cache, &freed, &error));
	g_assert_no_error (error);
	g_assert_cmpuint (freed, ==, 2 * unit);
	g_assert_false (has_entry (cache, a));
	g_assert_false (has_entry (cache, f));
	g_assert_true (has_entry (cache, c));
	/* Pinned entries stay even over the limit. */
	vmi_cache_set_limit (cache, unit / 2);
	g_assert_true (vmi_cache_prune (cache, &freed, &error));
	g_assert_cmpuint (freed, ==, 0);
	g_assert_true (has_entry (cache, c));
	assert_clean_dir (cache);
	vmi_cache_set_changed_func (cache, NULL, NULL);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_unsafe_dir (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autofree char *nested = g_build_filename (dir, "a", "b", "cache", NULL);
	g_autoptr(VmiCache) cache = NULL;
	g_autoptr(VmiCache) second = NULL;
	g_autoptr(GError) error = NULL;
	struct stat st;

	g_assert_cmpint (g_mkdir (cache_dir, 0700), ==, 0);
	g_assert_cmpint (chmod (cache_dir, 0777), ==, 0);
	g_assert_null (vmi_cache_open (cache_dir, 0, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_ACCESS_DENIED);
	g_test_message ("%s", error->message);
	g_clear_error (&error);
	g_assert_cmpint (chmod (cache_dir, 0770), ==, 0);
	g_assert_null (vmi_cache_open (cache_dir, 0, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_ACCESS_DENIED);
	g_clear_error (&error);

	/* Readable by others is allowed; the administrator chose it. */
	g_assert_cmpint (chmod (cache_dir, 0755), ==, 0);
	cache = open_cache (cache_dir, 0);
	/* One process per cache. */
	second = vmi_cache_open (cache_dir, 0, &error);
	g_assert_null (second);
	g_assert_error (error, VMI_ERROR, VMI_ERROR_EXISTS);
	g_clear_error (&error);
	g_clear_pointer (&cache, vmi_cache_free);

	g_assert_null (vmi_cache_open ("relative/cache", 0, &error));
	g_assert_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT);
	g_clear_error (&error);

	/* Missing parents are made; the cache itself is private. */
	cache = open_cache (nested, 0);
	g_assert_cmpint (g_stat (nested, &st), ==, 0);
	g_assert_cmpint (st.st_mode & 0777, ==, 0700);
	g_clear_pointer (&cache, vmi_cache_free);

	if (geteuid () != 0) {
		g_test_message ("not root: the test of a cache owned by another user is skipped");
	} else {
		g_assert_cmpint (chown (nested, 65534, 65534), ==, 0);
		g_assert_null (vmi_cache_open (nested, 0, &error));
		g_assert_error (error, VMI_ERROR, VMI_ERROR_ACCESS_DENIED);
		g_test_message ("%s", error->message);
		g_clear_error (&error);
	}
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
write_file (const char *dir, const char *name, const char *content)
{
	g_autofree char *path = g_build_filename (dir, name, NULL);

	g_assert_true (g_file_set_contents (path, content, -1, NULL));
}

static void
test_cleanup_at_open (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autoptr(VmiCache) cache = open_cache (cache_dir, 0);
	g_autoptr(VmiCacheEntry) keep = NULL, lost = NULL, truncated = NULL, garbled = NULL;
	g_autoptr(VmiCacheEntry) linked = NULL;
	g_autofree char *secret = g_build_filename (dir, "secret", NULL);
	g_autoptr(GPtrArray) list = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *garbled_meta = NULL;
	g_autofree char *other = g_build_filename (cache_dir, "README", NULL);

	keep = import_random (cache, dir, 21, 64 * KiB, &error);
	g_assert_no_error (error);
	lost = import_random (cache, dir, 22, 64 * KiB, &error);
	g_assert_no_error (error);
	truncated = import_random (cache, dir, 23, 64 * KiB, &error);
	g_assert_no_error (error);
	garbled = import_random (cache, dir, 24, 64 * KiB, &error);
	g_assert_no_error (error);
	linked = import_random (cache, dir, 25, 64 * KiB, &error);
	g_assert_no_error (error);
	g_clear_pointer (&cache, vmi_cache_free);

	/* What crashes and accidents leave. */
	write_file (cache_dir, ".tmp-import-0123456789abcdef", "half an image");
	write_file (cache_dir, ".tmp-entry-0123456789abcdef", "[Entry]\n");
	write_file (cache_dir, "0123456789abcdef0123456789abcdef.img", "an orphan");
	write_file (cache_dir, "README", "not ours: left alone");
	g_assert_cmpint (g_unlink (vmi_cache_entry_get_path (lost)), ==, 0);
	g_assert_cmpint (truncate (vmi_cache_entry_get_path (truncated), 4096), ==, 0);
	garbled_meta = g_strdup_printf ("%s.entry", vmi_cache_entry_get_id (garbled));
	write_file (cache_dir, garbled_meta, "[Entry]\nVersion=1\nId=nonsense\n");
	/* A stored file swapped for a symbolic link to a file of the same size elsewhere: the
	 * daemon must not serve it, nor delete what it points to. */
	g_assert_cmpint (g_rename (vmi_cache_entry_get_path (linked), secret), ==, 0);
	g_assert_cmpint (symlink (secret, vmi_cache_entry_get_path (linked)), ==, 0);

	cache = open_cache (cache_dir, 0);
	list = vmi_cache_list (cache);
	g_assert_cmpuint (list->len, ==, 1);
	g_assert_cmpstr (vmi_cache_entry_get_id (list->pdata[0]), ==, vmi_cache_entry_get_id (keep));
	g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));
	g_assert_true (g_file_test (secret, G_FILE_TEST_IS_REGULAR));
	g_assert_false (g_file_test (vmi_cache_entry_get_path (linked), G_FILE_TEST_IS_SYMLINK));
	g_assert_cmpint (g_unlink (other), ==, 0);
	assert_clean_dir (cache);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

typedef struct {
	VmiCache *cache;
	const char *path;
	const char *name;
	VmiCacheEntry *result;
	GError *error;
} ImportThread;

static gpointer
import_thread (gpointer data)
{
	ImportThread *job = data;

	job->result = import_file (job->cache, &vmi_raw_plugin, job->path, &vmi_qcow2_plugin,
				   job->name, NULL, &job->error);
	return NULL;
}

static void
test_concurrent_same_content (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autofree char *raw = g_build_filename (dir, "same.raw", NULL);
	g_autoptr(VmiCache) cache = open_cache (cache_dir, 0);
	g_autoptr(GPtrArray) list = NULL;
	g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func (g_free);
	ChangeLog log = { events };
	/* Each round from scratch adds the entry once; the import that loses the race must not
	 * publish a second copy (nor a second "added"). */
	const guint expected_added[] = { 1, 0, 1 };

	vmi_cache_set_changed_func (cache, record_change, &log);
	/* Enough data that both conversions overlap. */
	make_random_image (raw, 16 * MiB, 8 * MiB, 31);
	for (guint round = 0; round < 3; round++) {
		ImportThread jobs[2] = { { cache, raw, "same", NULL, NULL },
					 { cache, raw, "same", NULL, NULL } };
		GThread *threads[2];
		guint added = 0;

		g_ptr_array_set_size (events, 0);
		for (guint i = 0; i < 2; i++)
			threads[i] = g_thread_new ("import", import_thread, &jobs[i]);
		for (guint i = 0; i < 2; i++)
			g_thread_join (threads[i]);
		for (guint i = 0; i < 2; i++) {
			g_assert_no_error (jobs[i].error);
			g_assert_nonnull (jobs[i].result);
		}
		g_assert_cmpstr (vmi_cache_entry_get_id (jobs[0].result), ==,
				 vmi_cache_entry_get_id (jobs[1].result));
		g_assert_cmpstr (vmi_cache_entry_get_checksum (jobs[0].result), ==,
				 vmi_cache_entry_get_checksum (jobs[1].result));
		for (guint i = 0; i < events->len; i++)
			added += ((const char *) events->pdata[i])[0] == '+';
		g_assert_cmpuint (added, ==, expected_added[round]);
		list = vmi_cache_list (cache);
		g_assert_cmpuint (list->len, ==, 1);
		g_clear_pointer (&list, g_ptr_array_unref);
		assert_clean_dir (cache);
		for (guint i = 0; i < 2; i++)
			vmi_cache_entry_unref (jobs[i].result);
		if (round == 0) {
			/* Once more with the entry present, then once more from scratch. */
			continue;
		}
		list = vmi_cache_list (cache);
		g_assert_true (vmi_cache_remove (cache, vmi_cache_entry_get_id (list->pdata[0]), NULL));
		g_clear_pointer (&list, g_ptr_array_unref);
	}
	vmi_cache_set_changed_func (cache, NULL, NULL);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

/* The crash test's child: imports seeds first.. one after the other, printing each id. */
static const gsize crash_image_data = 128 * KiB;

static char *
crash_image (const char *src_dir, guint seed)
{
	g_autofree char *name = g_strdup_printf ("crash-%u.raw", seed);
	char *path = g_build_filename (src_dir, name, NULL);

	make_random_image (path, 512 * KiB, crash_image_data, 1000 + seed);
	return path;
}

static int
crash_child (const char *cache_dir, const char *src_dir, guint first, guint64 limit)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiCache) cache = vmi_cache_open (cache_dir, limit, &error);

	if (cache == NULL) {
		g_printerr ("crash child: %s\n", error->message);
		return 1;
	}
	for (guint seed = first;; seed++) {
		g_autofree char *path = crash_image (src_dir, seed);
		g_autoptr(VmiCacheEntry) entry = NULL;

		entry = import_file (cache, &vmi_raw_plugin, path,
				     seed % 2 ? &vmi_qcow2_plugin : &vmi_raw_plugin, path, NULL,
				     &error);
		if (entry == NULL) {
			g_printerr ("crash child: %s\n", error->message);
			return 1;
		}
		g_print ("%u %s\n", seed, vmi_cache_entry_get_id (entry));
		fflush (stdout);
	}
}

static char *
crash_expected_id (const char *src_dir, guint seed)
{
	g_autofree char *path = crash_image (src_dir, seed);
	g_autofree char *digest = engine_digest (&vmi_raw_plugin, path);

	return g_strndup (digest, 32);
}

/*
 * Children that import in a loop are SIGKILLed at random moments until target imports have
 * completed. After each kill the cache must list only imports that were reported complete or
 * the one that was running, every entry must verify, and no temporary or orphan file may remain.
 * Without a limit it must also list every completed import; with one, the children evict as
 * they go (so kills also land in the middle of evictions) and the cache must fit the limit.
 */
static void
crash_run (guint64 limit, guint target)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
	g_autofree char *src_dir = g_build_filename (dir, "src", NULL);
	g_autoptr(VmiRegistry) registry = make_registry ();
	g_autoptr(GHashTable) completed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) maybe = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) verified = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
	gint64 start = g_get_monotonic_time ();
	guint next = 0, rounds = 0, imports = 0, torn = 0;
	g_autofree char *limit_arg = g_strdup_printf ("%" G_GUINT64_FORMAT, limit);

	g_assert_cmpint (g_mkdir (src_dir, 0700), ==, 0);
	while (imports < target) {
		g_autofree char *first = g_strdup_printf ("%u", next);
		const char *argv[] = { test_argv0, "--crash-child", cache_dir, src_dir, first,
				       limit_arg, NULL };
		g_autoptr(GError) error = NULL;
		g_autoptr(VmiCache) cache = NULL;
		g_autoptr(GPtrArray) list = NULL;
		g_autoptr(GString) out = g_string_new (NULL);
		g_auto(GStrv) lines = NULL;
		char buf[4096];
		GPid pid;
		int out_fd = -1, status = 0;
		gssize n;
		guint done_in_round = 0;

		/* Bounded: about 5 s on an idle 2-core machine, 120 s at the very worst. */
		g_assert_cmpint (g_get_monotonic_time () - start, <, 120 * G_USEC_PER_SEC);
		g_assert_true (g_spawn_async_with_pipes (NULL, (char **) argv, NULL,
							 G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
							 &pid, NULL, &out_fd, NULL, &error));
		g_assert_no_error (error);
		g_usleep ((gulong) g_test_rand_int_range (5, 250) * 1000);
		g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
		g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
		g_spawn_close_pid (pid);
		/* Killed, not ended by an error of its own. */
		g_assert_true (WIFSIGNALED (status));
		while ((n = read (out_fd, buf, sizeof buf)) > 0)
			g_string_append_len (out, buf, (gsize) n);
		close (out_fd);
		lines = g_strsplit (out->str, "\n", -1);
		for (guint i = 0; lines[i] != NULL; i++) {
			guint seed = 0;
			char id[33] = "";

			/* The last line may be torn by the kill; only whole lines count. */
			if (lines[i + 1] == NULL)
				break;
			g_assert_cmpint (sscanf (lines[i], "%u %32s", &seed, id), ==, 2);
			g_hash_table_add (completed, g_strdup (id));
			next = seed + 1;
			done_in_round++;
		}
		imports += done_in_round;
		rounds++;
		/* The import that was running may or may not have completed. */
		g_hash_table_add (maybe, crash_expected_id (src_dir, next));

		cache = open_cache (cache_dir, 0);
		list = vmi_cache_list (cache);
		for (guint i = 0; i < list->len; i++) {
			const char *id = vmi_cache_entry_get_id (list->pdata[i]);

			g_assert_true (g_hash_table_contains (completed, id) ||
				       g_hash_table_contains (maybe, id));
			/* Entries are never rewritten in place: one verification each suffices, and
			 * keeps the test's time linear. All are verified again at the end. */
			if (!g_hash_table_contains (verified, id)) {
				assert_verifies (cache, registry, id);
				g_hash_table_add (verified, g_strdup (id));
			}
		}
		if (limit > 0) {
			g_assert_cmpuint (vmi_cache_get_size (cache), <=, limit);
		} else {
			GHashTableIter iter;
			gpointer id;

			g_hash_table_iter_init (&iter, completed);
			while (g_hash_table_iter_next (&iter, &id, NULL)) {
				g_autoptr(VmiCacheEntry) entry = vmi_cache_lookup (cache, id, NULL);

				g_assert_nonnull (entry);
			}
		}
		if (list->len > g_hash_table_size (completed))
			torn++;
		assert_clean_dir (cache);
	}
	{
		g_autoptr(VmiCache) cache = open_cache (cache_dir, 0);
		g_autoptr(GPtrArray) list = vmi_cache_list (cache);

		g_assert_cmpuint (list->len, >=, limit > 0 ? 1 : target);
		/* With a limit, the children did evict. */
		if (limit > 0)
			g_assert_cmpuint (list->len, <, imports);
		for (guint i = 0; i < list->len; i++)
			assert_verifies (cache, registry, vmi_cache_entry_get_id (list->pdata[i]));
	}
	g_test_message ("%u imports completed over %u SIGKILLed children in %" G_GINT64_FORMAT
			" ms; %u kills came after an import was committed but before it was reported",
			imports, rounds, (g_get_monotonic_time () - start) / 1000, torn);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

static void
test_crash_consistency (void)
{
	crash_run (0, 50);
}

/* About 5 of the 128-280 KiB entries fit: most imports evict one or two. */
static void
test_crash_consistency_evicting (void)
{
	crash_run (1536 * KiB, 30);
}

static void
test_no_space (void)
{
	g_autofree char *dir = vmi_test_tmpdir_new ();
	g_autofree char *mnt = g_build_filename (dir, "small", NULL);
	g_autofree char *cache_dir = g_build_filename (mnt, "cache", NULL);
	g_autofree char *small = g_build_filename (dir, "small.raw", NULL);
	g_autofree char *big = g_build_filename (dir, "big.raw", NULL);
	g_autoptr(VmiRegistry) registry = make_registry ();
	g_autoptr(VmiCache) cache = NULL;
	g_autoptr(VmiCacheEntry) kept = NULL;
	g_autoptr(VmiCacheEntry) failed = NULL;
	g_autoptr(GPtrArray) list = NULL;
	g_autoptr(GError) error = NULL;

	if (geteuid () != 0) {
		g_test_skip ("mounting a small tmpfs needs root");
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	g_assert_cmpint (g_mkdir (mnt, 0700), ==, 0);
	if (mount ("tmpfs", mnt, "tmpfs", 0, "size=8m,mode=0700") != 0) {
		g_autofree char *message = g_strdup_printf ("cannot mount a tmpfs: %s",
							    g_strerror (errno));
		g_test_skip (message);
		vmi_test_tmpdir_free (g_steal_pointer (&dir));
		return;
	}
	make_random_image (small, 2 * MiB, MiB, 41);
	make_random_image (big, 32 * MiB, 12 * MiB, 42);
	cache = open_cache (cache_dir, 0);
	kept = import_file (cache, &vmi_raw_plugin, small, &vmi_qcow2_plugin, "kept", NULL, &error);
	g_assert_no_error (error);
	for (guint i = 0; i < 2; i++) {
		failed = import_file (cache, &vmi_raw_plugin, big,
				      i == 0 ? &vmi_qcow2_plugin : &vmi_raw_plugin, "too big", NULL,
				      &error);
		g_assert_null (failed);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE);
		g_test_message ("%s", error->message);
		g_clear_error (&error);
		assert_clean_dir (cache);
		list = vmi_cache_list (cache);
		g_assert_cmpuint (list->len, ==, 1);
		g_clear_pointer (&list, g_ptr_array_unref);
		assert_verifies (cache, registry, vmi_cache_entry_get_id (kept));
	}
	g_clear_pointer (&cache, vmi_cache_free);
	cache = open_cache (cache_dir, 0);
	list = vmi_cache_list (cache);
	g_assert_cmpuint (list->len, ==, 1);
	g_clear_pointer (&list, g_ptr_array_unref);
	assert_verifies (cache, registry, vmi_cache_entry_get_id (kept));

	/* Room for the stored file but not for its metadata: the import that got as far as
	 * renaming its file into place must take it out again. */
	{
		g_autofree char *filler = g_build_filename (mnt, "filler", NULL);
		g_autofree char *medium = g_build_filename (dir, "medium.raw", NULL);
		g_autoptr(VmiCacheEntry) probe = NULL;
		struct statvfs fs;
		guint64 need, avail;
		int fd;

		make_random_image (medium, MiB, 256 * KiB, 43);
		probe = import_file (cache, &vmi_raw_plugin, medium, &vmi_raw_plugin, "m", NULL,
				     &error);
		g_assert_no_error (error);
		need = vmi_cache_entry_get_size (probe);
		g_assert_true (vmi_cache_remove (cache, vmi_cache_entry_get_id (probe), &error));
		g_assert_cmpint (statvfs (mnt, &fs), ==, 0);
		avail = (guint64) fs.f_bavail * fs.f_frsize;
		g_assert_cmpuint (avail, >, need);
		fd = open (filler, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		g_assert_cmpint (fd, >=, 0);
		g_assert_cmpint (posix_fallocate (fd, 0, (off_t) (avail - need)), ==, 0);
		g_assert_cmpint (close (fd), ==, 0);
		g_assert_cmpint (statvfs (mnt, &fs), ==, 0);
		g_assert_cmpuint ((guint64) fs.f_bavail * fs.f_frsize, ==, need);

		g_clear_pointer (&probe, vmi_cache_entry_unref);
		probe = import_file (cache, &vmi_raw_plugin, medium, &vmi_raw_plugin, "m", NULL,
				     &error);
		g_assert_null (probe);
		g_assert_error (error, VMI_ERROR, VMI_ERROR_NO_SPACE);
		g_test_message ("%s", error->message);
		g_assert_nonnull (strstr (error->message, "metadata"));
		g_clear_error (&error);
		assert_clean_dir (cache);
		list = vmi_cache_list (cache);
		g_assert_cmpuint (list->len, ==, 1);
		g_clear_pointer (&list, g_ptr_array_unref);

		/* With the space back, the same import works. */
		g_assert_cmpint (g_unlink (filler), ==, 0);
		probe = import_file (cache, &vmi_raw_plugin, medium, &vmi_raw_plugin, "m", NULL,
				     &error);
		g_assert_no_error (error);
		assert_verifies (cache, registry, vmi_cache_entry_get_id (probe));
	}
	g_clear_pointer (&cache, vmi_cache_free);
	g_assert_cmpint (umount (mnt), ==, 0);
	vmi_test_tmpdir_free (g_steal_pointer (&dir));
}

int
main (int argc, char **argv)
{
	test_argv0 = argv[0];
	if (argc == 6 && strcmp (argv[1], "--crash-child") == 0)
		return crash_child (argv[2], argv[3], (guint) g_ascii_strtoull (argv[4], NULL, 10),
				    g_ascii_strtoull (argv[5], NULL, 10));

	/* Mounts private to this process: the tmpfs of /cache/no-space goes away with it, even
	 * when a failed assertion skips its umount. Only possible before any thread exists. */
	if (geteuid () == 0 && unshare (CLONE_NEWNS) == 0)
		(void) mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	g_test_init (&argc, &argv, NULL);
	g_test_add_func ("/cache/content-digest", test_content_digest);
	g_test_add_func ("/cache/import-list-reopen", test_import_list_reopen);
	g_test_add_func ("/cache/sparse-import", test_sparse_import);
	g_test_add_func ("/cache/odd-size", test_odd_size);
	g_test_add_func ("/cache/properties", test_properties);
	g_test_add_func ("/cache/verify-corrupt", test_verify_corrupt);
	g_test_add_func ("/cache/progress-cancel", test_progress_cancel);
	g_test_add_func ("/cache/eviction", test_eviction);
	g_test_add_func ("/cache/unsafe-dir", test_unsafe_dir);
	g_test_add_func ("/cache/cleanup-at-open", test_cleanup_at_open);
	g_test_add_func ("/cache/concurrent-same-content", test_concurrent_same_content);
	g_test_add_func ("/cache/crash-consistency", test_crash_consistency);
	g_test_add_func ("/cache/crash-consistency-evicting", test_crash_consistency_evicting);
	g_test_add_func ("/cache/no-space", test_no_space);
	return g_test_run ();
}
