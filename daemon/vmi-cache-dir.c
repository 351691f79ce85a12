#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-cache-dir.h"
#include "vmi-plugin.h"

/* File names inside the cache directory; see docs/cache.md. */
#define VMI_CACHE_LOCK_NAME ".lock"
#define VMI_CACHE_TEMP_PREFIX ".tmp-"
#define VMI_CACHE_IMAGE_SUFFIX ".img"
#define VMI_CACHE_ENTRY_SUFFIX ".entry"
/* A metadata file is a few hundred bytes, and at most about 2.2 MiB with every property at its
 * longest and escaped; anything bigger is not one of ours. */
#define VMI_CACHE_ENTRY_FILE_MAX (4u * 1024u * 1024u)
#define VMI_CACHE_READ_CHUNK (1024u * 1024u)

/* A full file system or quota is NoSpace, a refused access AccessDenied, anything else Failed. */
void
vmi_cache_set_errno (GError **error, int errsv, const char *format, ...)
{
	va_list args;
	g_autofree char *what = NULL;
	VmiError code = VMI_ERROR_FAILED;

	va_start (args, format);
	what = g_strdup_vprintf (format, args);
	va_end (args);
	if (errsv == ENOSPC || errsv == EDQUOT)
		code = VMI_ERROR_NO_SPACE;
	else if (errsv == EACCES || errsv == EPERM)
		code = VMI_ERROR_ACCESS_DENIED;
	g_set_error (error, VMI_ERROR, code, "%s: %s", what, g_strerror (errsv));
}

static gboolean
vmi_cache_is_id (const char *s, gsize len)
{
	if (len != VMI_CACHE_ID_LENGTH)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isxdigit (s[i]) || g_ascii_isupper (s[i]))
			return FALSE;
	}
	return TRUE;
}

static char *
vmi_cache_image_name (const char *id)
{
	return g_strconcat (id, VMI_CACHE_IMAGE_SUFFIX, NULL);
}

static char *
vmi_cache_entry_name (const char *id)
{
	return g_strconcat (id, VMI_CACHE_ENTRY_SUFFIX, NULL);
}

gboolean
vmi_cache_dir_sync (VmiCacheDir *dir, GError **error)
{
	if (fsync (dir->fd) != 0) {
		vmi_cache_set_errno (error, errno, "cannot flush the cache directory %s", dir->path);
		return FALSE;
	}
	return TRUE;
}

/* A new empty file named .tmp-<kind>-<random> in the cache; its name goes to *name. */
int
vmi_cache_dir_create_temp (VmiCacheDir *dir, const char *kind, char **name, GError **error)
{
	for (guint attempt = 0; attempt < 100; attempt++) {
		g_autofree char *candidate = g_strdup_printf (VMI_CACHE_TEMP_PREFIX "%s-%08x%08x", kind,
							      g_random_int (), g_random_int ());
		int fd = openat (dir->fd, candidate,
				 O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

		if (fd >= 0) {
			*name = g_steal_pointer (&candidate);
			return fd;
		}
		if (errno != EEXIST) {
			vmi_cache_set_errno (error, errno, "cannot create a temporary file in %s",
					     dir->path);
			return -1;
		}
	}
	g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
		     "cannot find a free temporary file name in %s", dir->path);
	return -1;
}

static gboolean
vmi_cache_write_all (int fd, const char *data, gsize len)
{
	while (len > 0) {
		ssize_t n = write (fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return FALSE;
		}
		data += n;
		len -= (gsize) n;
	}
	return TRUE;
}

/*
 * Replaces the metadata file of entry atomically and durably: a temporary file, written and
 * flushed, renamed over the old one, then the directory flushed so the rename is on disk too.
 */
gboolean
vmi_cache_dir_write_entry (VmiCacheDir *dir, VmiCacheEntry *entry, GError **error)
{
	g_autofree char *temp = NULL;
	g_autofree char *target = vmi_cache_entry_name (entry->id);
	gsize len = 0;
	g_autofree char *data = vmi_cache_entry_to_data (entry, &len);
	int fd;
	int errsv;

	fd = vmi_cache_dir_create_temp (dir, "entry", &temp, error);
	if (fd < 0)
		return FALSE;
	if (!vmi_cache_write_all (fd, data, len) || fsync (fd) != 0) {
		errsv = errno;
		close (fd);
		unlinkat (dir->fd, temp, 0);
		vmi_cache_set_errno (error, errsv, "cannot write the metadata of cache entry %s",
				     entry->id);
		return FALSE;
	}
	if (close (fd) != 0 || renameat (dir->fd, temp, dir->fd, target) != 0) {
		errsv = errno;
		unlinkat (dir->fd, temp, 0);
		vmi_cache_set_errno (error, errsv, "cannot write the metadata of cache entry %s",
				     entry->id);
		return FALSE;
	}
	return vmi_cache_dir_sync (dir, error);
}

/* Loads one metadata file, or returns NULL (with a message saying why) to have it dropped. */
static VmiCacheEntry *
vmi_cache_dir_load_entry (VmiCacheDir *dir, const char *id)
{
	g_autofree char *entry_name = vmi_cache_entry_name (id);
	g_autofree char *image_name = vmi_cache_image_name (id);
	g_autofree char *data = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(VmiCacheEntry) entry = NULL;
	struct stat st;
	gsize len = 0;
	int fd;

	fd = openat (dir->fd, entry_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) ||
	    st.st_size > VMI_CACHE_ENTRY_FILE_MAX) {
		g_message ("dropping cache entry %s: %s is not a readable metadata file", id,
			   entry_name);
		if (fd >= 0)
			close (fd);
		return NULL;
	}
	data = g_malloc ((gsize) st.st_size + 1);
	while (len < (gsize) st.st_size) {
		ssize_t n = read (fd, data + len, (gsize) st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (gsize) n;
	}
	close (fd);
	entry = vmi_cache_entry_from_data (id, data, len, &error);
	if (entry == NULL) {
		g_message ("dropping cache entry %s: %s", id, error->message);
		return NULL;
	}
	if (fstatat (dir->fd, image_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISREG (st.st_mode) || (guint64) st.st_size != entry->file_size) {
		g_message ("dropping cache entry %s: its stored file %s is missing, not a regular "
			   "file, or not the "
			   "%" G_GUINT64_FORMAT " bytes its metadata says",
			   id, image_name, entry->file_size);
		return NULL;
	}
	entry->size = (guint64) st.st_blocks * 512u;
	entry->path = g_build_filename (dir->path, image_name, NULL);
	return g_steal_pointer (&entry);
}

GPtrArray *
vmi_cache_dir_recover (VmiCacheDir *dir, GError **error)
{
	g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) vmi_cache_entry_unref);
	g_autoptr(GPtrArray) entry_ids = g_ptr_array_new_with_free_func (g_free);
	g_autoptr(GPtrArray) image_ids = g_ptr_array_new_with_free_func (g_free);
	g_autoptr(GHashTable) loaded = g_hash_table_new (g_str_hash, g_str_equal);
	gboolean removed = FALSE;
	struct dirent *dent;
	DIR *stream;
	int fd = dup (dir->fd);

	if (fd < 0 || (stream = fdopendir (fd)) == NULL) {
		vmi_cache_set_errno (error, errno, "cannot read the cache directory %s", dir->path);
		if (fd >= 0)
			close (fd);
		return NULL;
	}
	rewinddir (stream);
	while ((dent = readdir (stream)) != NULL) {
		const char *name = dent->d_name;
		gsize len = strlen (name);

		if (g_str_has_prefix (name, VMI_CACHE_TEMP_PREFIX)) {
			/* Left by an import or a metadata update that did not finish. */
			if (unlinkat (dir->fd, name, 0) == 0)
				removed = TRUE;
		} else if (g_str_has_suffix (name, VMI_CACHE_ENTRY_SUFFIX) &&
			   vmi_cache_is_id (name, len - strlen (VMI_CACHE_ENTRY_SUFFIX))) {
			g_ptr_array_add (entry_ids, g_strndup (name, VMI_CACHE_ID_LENGTH));
		} else if (g_str_has_suffix (name, VMI_CACHE_IMAGE_SUFFIX) &&
			   vmi_cache_is_id (name, len - strlen (VMI_CACHE_IMAGE_SUFFIX))) {
			g_ptr_array_add (image_ids, g_strndup (name, VMI_CACHE_ID_LENGTH));
		}
	}
	closedir (stream);

	for (guint i = 0; i < entry_ids->len; i++) {
		const char *id = g_ptr_array_index (entry_ids, i);
		VmiCacheEntry *entry = vmi_cache_dir_load_entry (dir, id);
		g_autofree char *entry_name = NULL;

		if (entry == NULL) {
			entry_name = vmi_cache_entry_name (id);
			unlinkat (dir->fd, entry_name, 0);
			removed = TRUE;
			continue;
		}
		g_ptr_array_add (entries, entry);
		g_hash_table_add (loaded, entry->id);
	}
	for (guint i = 0; i < image_ids->len; i++) {
		const char *id = g_ptr_array_index (image_ids, i);
		g_autofree char *image_name = NULL;

		if (g_hash_table_contains (loaded, id))
			continue;
		/* Renamed into place, but the import died before its metadata was written (or a
		 * remove died between its two deletes). */
		image_name = vmi_cache_image_name (id);
		unlinkat (dir->fd, image_name, 0);
		removed = TRUE;
	}
	if (removed && !vmi_cache_dir_sync (dir, error))
		return NULL;
	return g_steal_pointer (&entries);
}

static gboolean
vmi_cache_check_dir (const char *dir, int dir_fd, GError **error)
{
	struct stat st;

	if (fstat (dir_fd, &st) != 0) {
		vmi_cache_set_errno (error, errno, "cannot examine the cache directory %s", dir);
		return FALSE;
	}
	if (st.st_uid != geteuid ()) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_ACCESS_DENIED,
			     "the cache directory %s belongs to uid %u, not to uid %u that runs "
			     "vmimaged; make it vmimaged's own (chown) or choose another",
			     dir, (guint) st.st_uid, (guint) geteuid ());
		return FALSE;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_ACCESS_DENIED,
			     "the cache directory %s has mode %04o: others could replace images in "
			     "it; remove group and other write access (chmod go-w)",
			     dir, (guint) (st.st_mode & 07777));
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_cache_sha256_fd (int fd, GCancellable *cancellable, char **digest, GError **error)
{
	g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
	g_autofree guint8 *buf = g_malloc (VMI_CACHE_READ_CHUNK);
	guint64 offset = 0;

	for (;;) {
		ssize_t n = pread (fd, buf, VMI_CACHE_READ_CHUNK, (off_t) offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vmi_cache_set_errno (error, errno, "cannot read a stored image at offset %" G_GUINT64_FORMAT,
					     offset);
			return FALSE;
		}
		if (n == 0)
			break;
		g_checksum_update (checksum, buf, (gsize) n);
		offset += (guint64) n;
		if (g_cancellable_is_cancelled (cancellable)) {
			g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CANCELLED,
					     "the job was cancelled");
			return FALSE;
		}
	}
	*digest = g_strdup (g_checksum_get_string (checksum));
	return TRUE;
}

gboolean
vmi_cache_dir_open (VmiCacheDir *dir, const char *path, GError **error)
{
	g_autofree char *parent = NULL;

	dir->fd = -1;
	dir->lock_fd = -1;
	if (!g_path_is_absolute (path)) {
		dir->path = NULL;
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the cache directory “%s” is not an absolute path", path);
		return FALSE;
	}
	dir->path = g_canonicalize_filename (path, NULL);
	parent = g_path_get_dirname (dir->path);
	if (g_mkdir_with_parents (parent, 0755) != 0) {
		vmi_cache_set_errno (error, errno, "cannot create %s", parent);
		return FALSE;
	}
	if (mkdir (dir->path, 0700) != 0 && errno != EEXIST) {
		vmi_cache_set_errno (error, errno, "cannot create the cache directory %s", dir->path);
		return FALSE;
	}
	dir->fd = open (dir->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir->fd < 0) {
		vmi_cache_set_errno (error, errno, "cannot open the cache directory %s", dir->path);
		return FALSE;
	}
	if (!vmi_cache_check_dir (dir->path, dir->fd, error))
		return FALSE;
	dir->lock_fd = openat (dir->fd, VMI_CACHE_LOCK_NAME,
			       O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (dir->lock_fd < 0) {
		vmi_cache_set_errno (error, errno, "cannot open %s/" VMI_CACHE_LOCK_NAME, dir->path);
		return FALSE;
	}
	/* Recovery deletes temporary files: only safe when nobody else writes them. */
	if (flock (dir->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			g_set_error (error, VMI_ERROR, VMI_ERROR_EXISTS,
				     "another process uses the cache directory %s", dir->path);
		else
			vmi_cache_set_errno (error, errno, "cannot lock %s/" VMI_CACHE_LOCK_NAME,
					     dir->path);
		return FALSE;
	}
	return TRUE;
}

void
vmi_cache_dir_close (VmiCacheDir *dir)
{
	if (dir->lock_fd >= 0)
		close (dir->lock_fd);
	if (dir->fd >= 0)
		close (dir->fd);
	dir->lock_fd = dir->fd = -1;
	g_clear_pointer (&dir->path, g_free);
}

void
vmi_cache_dir_discard (VmiCacheDir *dir, const char *temp)
{
	unlinkat (dir->fd, temp, 0);
}

char *
vmi_cache_dir_image_path (VmiCacheDir *dir, const char *id)
{
	return g_strconcat (dir->path, "/", id, VMI_CACHE_IMAGE_SUFFIX, NULL);
}

int
vmi_cache_dir_open_image (VmiCacheDir *dir, const char *id, GError **error)
{
	g_autofree char *image_name = vmi_cache_image_name (id);
	int fd = openat (dir->fd, image_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		vmi_cache_set_errno (error, errno, "cannot open the stored file of image %s", id);
	return fd;
}

gboolean
vmi_cache_dir_publish (VmiCacheDir *dir, const char *temp, VmiCacheEntry *entry, GError **error)
{
	g_autofree char *image_name = vmi_cache_image_name (entry->id);

	if (renameat (dir->fd, temp, dir->fd, image_name) != 0) {
		vmi_cache_set_errno (error, errno, "cannot move the imported image into %s",
				     dir->path);
		return FALSE;
	}
	/* The stored file is in place; it becomes an entry only when its metadata is. */
	if (!vmi_cache_dir_sync (dir, error) || !vmi_cache_dir_write_entry (dir, entry, error)) {
		unlinkat (dir->fd, image_name, 0);
		fsync (dir->fd);
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_cache_dir_delete (VmiCacheDir *dir, const char *id, GError **error)
{
	g_autofree char *entry_name = vmi_cache_entry_name (id);
	g_autofree char *image_name = vmi_cache_image_name (id);

	/* Metadata first: a crash in between leaves an orphan stored file, removed at the next
	 * open, never metadata without its file. */
	if (unlinkat (dir->fd, entry_name, 0) != 0 && errno != ENOENT) {
		vmi_cache_set_errno (error, errno, "cannot remove cache entry %s", id);
		return FALSE;
	}
	if (unlinkat (dir->fd, image_name, 0) != 0 && errno != ENOENT)
		g_message ("cannot remove %s/%s: %s; it will be removed at the next start",
			   dir->path, image_name, g_strerror (errno));
	/* The entry is gone either way; if this flush fails a crash may bring it back, whole. */
	if (fsync (dir->fd) != 0)
		g_message ("cannot flush the cache directory %s: %s", dir->path, g_strerror (errno));
	return TRUE;
}
