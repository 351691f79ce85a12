/*
 * The cache directory on disk: its file names, durable updates (temporary file, fsync, rename,
 * fsync of the directory) and recovery after a crash. Private to vmi-cache.c, which serializes
 * every call that changes the directory. See docs/cache.md.
 */
#pragma once

#include <gio/gio.h>

#include "vmi-cache-entry-private.h"

G_BEGIN_DECLS

/* An entry's id: this many lower-case hex digits of its content checksum. */
#define VMI_CACHE_ID_LENGTH 32

typedef struct {
	char *path;  /* canonical and absolute */
	int fd;	     /* the directory itself */
	int lock_fd; /* flock'd: one process per cache directory */
} VmiCacheDir;

/* errno as a VMI_ERROR: ENOSPC and EDQUOT are NO_SPACE, EACCES and EPERM ACCESS_DENIED. */
void vmi_cache_set_errno (GError **error, int errsv, const char *format, ...) G_GNUC_PRINTF (3, 4);

/*
 * Creates path (mode 0700) if missing, refuses it when another uid owns it or group or others
 * may write to it (ACCESS_DENIED), and locks it (EXISTS if another process has). On failure,
 * vmi_cache_dir_close still frees what was opened.
 */
gboolean vmi_cache_dir_open (VmiCacheDir *dir, const char *path, GError **error);
void vmi_cache_dir_close (VmiCacheDir *dir);

/*
 * Removes temporary files, stored files without metadata and metadata that is unreadable or
 * whose stored file is missing or of the wrong size; returns the entries that remain.
 */
GPtrArray *vmi_cache_dir_recover (VmiCacheDir *dir, GError **error);

gboolean vmi_cache_dir_sync (VmiCacheDir *dir, GError **error);
/* A new empty file .tmp-<kind>-<random>, opened read-write; its name goes to *name. */
int vmi_cache_dir_create_temp (VmiCacheDir *dir, const char *kind, char **name, GError **error);
void vmi_cache_dir_discard (VmiCacheDir *dir, const char *temp);
/* Replaces the entry's metadata file atomically and durably. */
gboolean vmi_cache_dir_write_entry (VmiCacheDir *dir, VmiCacheEntry *entry, GError **error);
/*
 * Renames temp (complete and flushed) to the entry's stored file, then writes its metadata; on
 * failure the stored file is removed again.
 */
gboolean vmi_cache_dir_publish (VmiCacheDir *dir, const char *temp, VmiCacheEntry *entry,
				GError **error);
/* Deletes an entry's files; FALSE only when its metadata could not be removed. */
gboolean vmi_cache_dir_delete (VmiCacheDir *dir, const char *id, GError **error);

char *vmi_cache_dir_image_path (VmiCacheDir *dir, const char *id);
/* The stored file, read-only, never through a symbolic link. */
int vmi_cache_dir_open_image (VmiCacheDir *dir, const char *id, GError **error);

/* SHA-256 of everything fd holds, read with pread from offset 0. */
gboolean vmi_cache_sha256_fd (int fd, GCancellable *cancellable, char **digest, GError **error);

G_END_DECLS
