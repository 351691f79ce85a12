/* Helpers shared by the test programs: temporary folders, qemu-img as an oracle, the corpus. */
#pragma once

#include <json-glib/json-glib.h>

#include "vmi-convert.h"

G_BEGIN_DECLS

/* A new empty folder under $TMPDIR, removed with everything in it by vmi_test_tmpdir_free. */
char *vmi_test_tmpdir_new (void);
void vmi_test_tmpdir_free (char *dir);

/* A fixture for g_test_add: a new temporary folder per test, removed after it. */
typedef struct {
	char *dir;
} VmiTestDirFixture;
void vmi_test_dir_fixture_set_up (VmiTestDirFixture *fixture, gconstpointer data);
void vmi_test_dir_fixture_tear_down (VmiTestDirFixture *fixture, gconstpointer data);
/* g_test_add of func (VmiTestDirFixture *, gconstpointer) with that fixture. */
#define vmi_test_add_with_dir(path, data, func)                                                    \
	g_test_add ((path), VmiTestDirFixture, (data), vmi_test_dir_fixture_set_up, (func),        \
		    vmi_test_dir_fixture_tear_down)

/* Size and allocated bytes (st_blocks * 512) of the file at path. */
guint64 vmi_test_file_size (const char *path);
guint64 vmi_test_file_allocated (const char *path);

/* Runs argv (argv[0] looked up in PATH); asserts exit 0 and returns stdout. */
char *vmi_test_run (const char *const *argv);
/* Runs a shell command line; returns its exit status, stdout in *out if out != NULL. */
int vmi_test_sh (char **out, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Runs a shell command line (printf-style); fails the test, naming the command, unless it
 * exits 0. */
void vmi_test_sh_ok (const char *format, ...) G_GNUC_PRINTF (1, 2);

/* Makes (or replaces) the file path with len bytes (-1: a NUL-terminated string); asserts. */
void vmi_test_write_file (const char *path, const void *bytes, gssize len);
/* Writes len bytes at offset into the existing file path, or reads them from it; asserts that
 * every byte was transferred. */
void vmi_test_write_bytes (const char *path, guint64 offset, const void *bytes, gsize len);
void vmi_test_read_bytes (const char *path, guint64 offset, void *bytes, gsize len);
/* Little-endian fields of a file, for tests that edit headers in place. */
void vmi_test_write_le32 (const char *path, guint64 offset, guint32 value);
void vmi_test_write_le64 (const char *path, guint64 offset, guint64 value);
guint32 vmi_test_read_le32 (const char *path, guint64 offset);
guint64 vmi_test_read_le64 (const char *path, guint64 offset);

/* TRUE if program is on PATH; if not, calls g_test_skip saying which Debian package brings it
 * and what the test cannot do without it, and returns FALSE. */
gboolean vmi_test_require_program (const char *program, const char *package, const char *why);
/* TRUE if qemu-img is on PATH; if not, calls g_test_skip with a message and returns FALSE. */
gboolean vmi_test_require_qemu_img (void);
/* Runs "qemu-img <arguments>" (printf-style, through the shell); asserts exit 0. */
void vmi_test_qemu_img (const char *format, ...) G_GNUC_PRINTF (1, 2);
/* qemu-img create -q -f fmt [-o opts] dir/name size; returns the new path. */
char *vmi_test_qemu_img_create (const char *dir, const char *name, const char *fmt,
				const char *opts, const char *size);
/* qemu-img info --output=json of path (format detected by qemu-img unless fmt != NULL). */
JsonObject *vmi_test_qemu_img_info (const char *path, const char *fmt);
/* The virtual size qemu-img info reports for path (format detected unless fmt != NULL). */
guint64 vmi_test_qemu_img_virtual_size (const char *path, const char *fmt);
/* An integer member of a JSON object from qemu-img (a size, an offset); asserts it is there. */
guint64 vmi_test_json_u64 (JsonObject *object, const char *member);
/* qemu-img compare of a and b (formats detected unless given); TRUE if equal content. */
gboolean vmi_test_qemu_img_compare (const char *a, const char *fmt_a, const char *b, const char *fmt_b);
/* qemu-img check of path in fmt; TRUE when it reports no errors and no leaks. */
gboolean vmi_test_qemu_img_check (const char *path, const char *fmt);

/*
 * A raw test image of size bytes at path with a mix the converters must keep: random data,
 * written zeros, holes, text-like data and data in the last partial 64 KiB block. Same seed,
 * same bytes.
 */
void vmi_test_make_pattern_image (const char *path, guint64 size, guint32 seed);

/* The real-world corpus folder (../shared/corpus beside the source tree, or $VMI_CORPUS_DIR),
 * or NULL after g_test_skip saying why. */
const char *vmi_test_corpus_dir (void);
/* Decompresses (bzcat) or copies corpus file name into dir; returns the new path. */
char *vmi_test_corpus_fetch (const char *name, const char *dir);

/* Engine shortcuts with a linked-in plugin: open path and return the source, or convert path
 * into dst_path (created) as dst. Assert on failure unless error is non-NULL. */
VmiSource *vmi_test_open (const VmiFormatPlugin *plugin, const char *path, GError **error);
gboolean vmi_test_convert (const VmiFormatPlugin *src, const char *src_path,
			   const VmiFormatPlugin *dst, const char *dst_path, GVariant *options,
			   GError **error);
/* The same from a source already open (opened with a folder or options of its own). */
gboolean vmi_test_convert_source (VmiSource *source, const VmiFormatPlugin *dst,
				  const char *dst_path, GVariant *options, GError **error);

/* Asserts that plugin refuses to open path with VMI_ERROR code and a non-empty message, and
 * returns that message (printed under --verbose) for further checks. */
char *vmi_test_open_error (const VmiFormatPlugin *plugin, const char *path, VmiError code);

/* A format-specific fact of an open source; asserts that it is there with that type. */
guint64 vmi_test_fact_u64 (VmiSource *source, const char *key);
guint32 vmi_test_fact_u32 (VmiSource *source, const char *key);
const char *vmi_test_fact_string (VmiSource *source, const char *key);

/* Copies path (if at most 1 MiB) into $VMI_FUZZ_SEED_DIR/<plugin_name>/ when that is set, so
 * the fuzz targets start from the images the tests made. */
void vmi_test_save_seed (const char *plugin_name, const char *path);

/*
 * A copy of this test program that any user may run (in a 0755 folder under /tmp, removed at
 * exit), for tests that re-run themselves as another uid: the build folder may sit in a 0700
 * home that the other user cannot enter.
 */
const char *vmi_test_self_for_other_users (void);

/*
 * A sparse-with-data qcow2 image made here rather than with qemu-io, which compresses at about
 * 30 MB/s: every fourth cluster is a hole, the others are compressed clusters of zeros (so the
 * daemon must read and inflate them, but writes nothing) and every 64th holds 64 KiB of fill.
 * A 4 GiB disk is under 5 MiB on disk, takes seconds to convert and writes little: what tests
 * of cancellation and queues need.
 */
void vmi_test_make_compressed_qcow2 (const char *path, guint64 virtual_size, guint8 fill);

G_END_DECLS
