/*
 * raw: the file is the disk, byte for byte.
 *
 * Anything can be a raw disk, so raw only wins detection when no other plugin claims the file.
 * That makes raw the place where a file of a format nobody here reads would be misreported as a
 * disk, so probe says no to every disk image and archive magic it knows (the list follows
 * qemu's block drivers and OpenStack's format_inspector). Apple DMG has no head magic, only a
 * "koly" trailer, and a probe_tail cannot help: the registry keeps the higher of the head and
 * tail scores, so raw's tail could never lower its head's FALLBACK. open checks that trailer
 * instead, so a DMG is refused even when raw is forced. A user who forces raw on a file with a
 * foreign head magic still gets raw: that is how a raw disk whose guest wrote a qcow2 header into
 * sector 0 is read safely.
 *
 * Decisions that differ from qemu-img:
 * - An empty file is refused (CorruptImage). qemu-img calls it a raw disk of 0 bytes, but a
 *   0-byte "image" is nearly always a failed download or copy, and a 0-byte disk is of no use.
 *   For the same reason create refuses a virtual size of 0.
 * - The virtual size is the exact file size. qemu rounds a raw file up to a multiple of 512
 *   bytes and reads the tail as zeros; we keep the odd size, and writers of sector-based
 *   formats round it up themselves.
 * - Only regular files and block devices are opened. qemu-img blocks forever on a FIFO.
 */
#define G_LOG_DOMAIN "vmimaged-raw"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmi-plugin.h"
#include "vmi-plugin-util.h"
#include "raw-measure.h"

struct _VmiImage {
	int fd; /* owned by the daemon */
	guint64 size;
	VmiFileRange file; /* what open reads: the image's bytes in fd */
};

typedef struct {
	gsize offset;
	const char *magic;
	gsize len;
	const char *name;
} RawMagic;

#define RAW_MAGIC(offset, str, name) { (offset), (str), sizeof (str) - 1, (name) }

/* The head of a file that is not a raw disk. First match names the format in messages. */
static const RawMagic raw_foreign_magics[] = {
	RAW_MAGIC (0, "QFI\xfb", "qcow/qcow2"),
	RAW_MAGIC (0, "QED\0", "QED"),
	RAW_MAGIC (0, "KDMV", "VMDK sparse extent"),
	RAW_MAGIC (0, "COWD", "VMDK ESX COW extent"),
	RAW_MAGIC (0, "conectix", "VHD"),
	RAW_MAGIC (0, "vhdxfile", "VHDX"),
	/* VDI: qemu and OpenStack look only at the signature 0xbeda107f (little endian). */
	RAW_MAGIC (64, "\x7f\x10\xda\xbe", "VDI"),
	RAW_MAGIC (0, "LUKS\xba\xbe", "LUKS"),
	RAW_MAGIC (0, "Bochs Virtual HD Image\0", "Bochs"),
	RAW_MAGIC (0, "WithoutFreeSpace", "Parallels"),
	RAW_MAGIC (0, "WithouFreSpacExt", "Parallels"),
	RAW_MAGIC (0, "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0", "cloop"),
	/*
	 * An OVA is a tar of a descriptor and disks, never a disk itself. Compressed files are not
	 * here: a compressed ramdisk stays raw unless the caller classifies (see plugins/ari).
	 */
	RAW_MAGIC (257, "ustar", "tar (an OVA?)"),
};

/*
 * A VMDK text descriptor, as qemu recognises one: comment and blank lines, then a line
 * "version=1", "version=2" or "version=3".
 */
static gboolean
raw_head_is_vmdk_descriptor (const guint8 *head, gsize head_len)
{
	const char *p = (const char *) head;
	const char *end = p + head_len;

	while (p < end) {
		const char *eol = memchr (p, '\n', end - p);
		const char *line_end = eol != NULL ? eol : end;
		gsize line_len, spaces = 0;

		if (line_end > p && line_end[-1] == '\r')
			line_end--;
		line_len = line_end - p;
		/* the head is not NUL-terminated: no str* functions on it */
		while (spaces < line_len && p[spaces] == ' ')
			spaces++;
		if (*p == '#' || spaces == line_len) {
			if (eol == NULL)
				return FALSE;
			p = eol + 1;
			continue;
		}
		return line_len == strlen ("version=1") && memcmp (p, "version=", 8) == 0 &&
		       p[8] >= '1' && p[8] <= '3';
	}
	return FALSE;
}

/* The name of the non-raw format whose magic starts head, or NULL. */
static const char *
raw_foreign_format (const guint8 *head, gsize head_len)
{
	for (gsize i = 0; i < G_N_ELEMENTS (raw_foreign_magics); i++) {
		const RawMagic *m = &raw_foreign_magics[i];

		if (head_len >= m->offset + m->len && memcmp (head + m->offset, m->magic, m->len) == 0)
			return m->name;
	}
	if (raw_head_is_vmdk_descriptor (head, head_len))
		return "VMDK descriptor";
	return NULL;
}

static guint
raw_probe (const guint8 *head, gsize head_len, guint64 file_size)
{
	/* An empty file still gets FALLBACK, so open can say why it is refused. */
	return raw_foreign_format (head, head_len) != NULL ? VMI_PROBE_NO : VMI_PROBE_FALLBACK;
}

/*
 * Reads exactly len bytes at offset; a file that ends early is an error. Not vmi_pread_all: every
 * read was checked against the size at open, so an early end means the file shrank under us, a
 * failure of the host (VMI_ERROR_FAILED), not a corrupt image.
 */
static gboolean
raw_pread_all (VmiImage *image, void *buf, gsize len, guint64 offset, GError **error)
{
	gsize got = 0;

	if (!vmi_range_pread_upto (&image->file, buf, len, offset, &got, "raw image", error))
		return FALSE;
	if (got < len) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "The raw image ends at offset 0x%" G_GINT64_MODIFIER
			     "x, before the %" G_GSIZE_FORMAT
			     " bytes still to read: the file shrank while it was open",
			     offset + got, len - got);
		return FALSE;
	}
	return TRUE;
}

/* The UDIF ("koly") trailer that ends every Apple DMG; no magic at the start. */
static gboolean
raw_check_dmg_trailer (VmiImage *image, GError **error)
{
	guint8 trailer[16];
	guint64 at;

	if (image->size < 512)
		return TRUE;
	at = image->size - 512;
	if (!raw_pread_all (image, trailer, sizeof trailer, at, error))
		return FALSE;
	/* magic "koly", then big-endian version and header size; the size is always 512 */
	if (memcmp (trailer, "koly", 4) != 0 ||
	    (trailer[8] << 24 | trailer[9] << 16 | trailer[10] << 8 | trailer[11]) != 512)
		return TRUE;
	g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
		     "The file is an Apple disk image (DMG): its last 512 bytes, at offset 0x%" G_GINT64_MODIFIER
		     "x, are a \"koly\" trailer. vmimaged does not read DMG; convert it to raw first "
		     "(hdiutil convert -format UDTO, or qemu-img convert -f dmg)",
		     at);
	return FALSE;
}

static const char *
raw_file_type_name (mode_t mode)
{
	if (S_ISDIR (mode))
		return "a directory";
	if (S_ISFIFO (mode))
		return "a FIFO (named pipe)";
	if (S_ISSOCK (mode))
		return "a socket";
	if (S_ISCHR (mode))
		return "a character device";
	return "not a regular file";
}

/* The size of a regular file or block device; anything else cannot be read at random offsets. */
static gboolean
raw_fd_size (int fd, guint64 *size, GError **error)
{
	struct stat st;
	off_t end;

	if (fstat (fd, &st) < 0) {
		int saved_errno = errno;

		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "Could not stat the image: %s",
			     g_strerror (saved_errno));
		return FALSE;
	}
	if (S_ISREG (st.st_mode)) {
		*size = st.st_size;
		return TRUE;
	}
	if (!S_ISBLK (st.st_mode)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "The image is %s; only a regular file or a block device can be a disk image",
			     raw_file_type_name (st.st_mode));
		return FALSE;
	}
	/* st_size of a block device is 0 */
	end = lseek (fd, 0, SEEK_END);
	if (end < 0) {
		int saved_errno = errno;

		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "Could not find the size of the block device: %s", g_strerror (saved_errno));
		return FALSE;
	}
	*size = end;
	return TRUE;
}

static VmiImage *
raw_open (const VmiOpenArgs *args, GError **error)
{
	g_autofree VmiImage *image = g_new0 (VmiImage, 1);

	image->fd = args->fd;
	/*
	 * A whole file is as long as it is now (a block device's file_size may be 0); a range of a
	 * file (an archive's member) is as long as the archive says.
	 */
	if (args->offset != 0) {
		if (!vmi_file_range_init (&image->file, args, error))
			return NULL;
		image->size = args->file_size;
	} else {
		if (!raw_fd_size (args->fd, &image->size, error))
			return NULL;
		image->file = (VmiFileRange) { .fd = args->fd, .base = 0, .size = image->size };
	}
	if (image->size == 0) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "The file is empty (0 bytes), so it holds no disk image; "
				     "was the download or copy that made it complete?");
		return NULL;
	}
	if (!raw_check_dmg_trailer (image, error))
		return NULL;
	return g_steal_pointer (&image);
}

static gboolean
raw_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	info->virtual_size = image->size;
	return TRUE;
}

static gboolean
raw_check_range (VmiImage *image, guint64 offset, guint64 len, GError **error)
{
	guint64 end;

	if (g_uint64_checked_add (&end, offset, len) && end <= image->size)
		return TRUE;
	g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
		     "%" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
		     " lie beyond the end of the %" G_GUINT64_FORMAT "-byte raw image",
		     len, offset, image->size);
	return FALSE;
}

static gboolean
raw_read (VmiImage *image, guint64 offset, void *buf, gsize len, GError **error)
{
	if (!raw_check_range (image, offset, len, error))
		return FALSE;
	return raw_pread_all (image, buf, len, offset, error);
}

static gboolean
raw_block_status (VmiImage *image, guint64 offset, guint64 max_length, VmiExtent *extent,
		  GError **error)
{
	return vmi_range_block_status (&image->file, offset, max_length, extent, error);
}

static void
raw_close (VmiImage *image)
{
	g_free (image);
}

/* ENOSPC and EDQUOT are both "the destination is full" to the person who reads the error. */
static void
raw_set_write_error (GError **error, int errnum, const char *what, guint64 offset)
{
	g_set_error (error, VMI_ERROR,
		     errnum == ENOSPC || errnum == EDQUOT ? VMI_ERROR_NO_SPACE : VMI_ERROR_FAILED,
		     "Could not %s the raw image at offset 0x%" G_GINT64_MODIFIER "x: %s", what, offset,
		     g_strerror (errnum));
}

static VmiImage *
raw_create (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	g_autofree VmiImage *image = g_new0 (VmiImage, 1);
	struct stat st;

	if (virtual_size == 0 || virtual_size > G_MAXINT64) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "A raw image of %" G_GUINT64_FORMAT
			     " bytes cannot be made: the size must be between 1 byte and 8 EiB",
			     virtual_size);
		return NULL;
	}
	if (fstat (fd, &st) < 0) {
		int saved_errno = errno;

		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "Could not stat the destination: %s",
			     g_strerror (saved_errno));
		return NULL;
	}
	/* Unwritten ranges must read as zeros, which only a fresh, empty file promises. */
	if (!S_ISREG (st.st_mode) || st.st_size != 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "The destination must be an empty regular file, but it is %s",
			     S_ISREG (st.st_mode) ? "not empty" : raw_file_type_name (st.st_mode));
		return NULL;
	}
	while (ftruncate (fd, (off_t) virtual_size) < 0) {
		int saved_errno = errno;

		if (saved_errno == EINTR)
			continue;
		if (saved_errno == EFBIG || saved_errno == EINVAL) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "The destination file system cannot hold a file of %" G_GUINT64_FORMAT
				     " bytes: %s",
				     virtual_size, g_strerror (saved_errno));
			return NULL;
		}
		raw_set_write_error (error, saved_errno, "set the size of", virtual_size);
		return NULL;
	}
	image->fd = fd;
	image->size = virtual_size;
	return g_steal_pointer (&image);
}

static gboolean
raw_write (VmiImage *image, guint64 offset, const void *buf, gsize len, GError **error)
{
	if (!raw_check_range (image, offset, len, error))
		return FALSE;
	return vmi_pwrite_all (image->fd, buf, len, offset, "raw image", error);
}

static gboolean
raw_finish (VmiImage *image, GError **error)
{
	/* NFS and delayed allocation report a full disk only here. */
	while (fdatasync (image->fd) < 0) {
		int saved_errno = errno;

		if (saved_errno == EINTR)
			continue;
		g_set_error (error, VMI_ERROR,
			     saved_errno == ENOSPC || saved_errno == EDQUOT ? VMI_ERROR_NO_SPACE
									    : VMI_ERROR_FAILED,
			     "Could not flush the raw image to disk: %s", g_strerror (saved_errno));
		return FALSE;
	}
	return TRUE;
}

static const char *const raw_extensions[] = { "img", "raw", NULL };

const VmiFormatPlugin vmi_raw_plugin = {
	.abi_version = VMI_PLUGIN_ABI_VERSION,
	.name = "raw",
	.description = "Raw disk image: the file is the disk, byte for byte",
	.extensions = raw_extensions,
	.aliases = NULL,
	.flags = VMI_FORMAT_CAN_INSPECT | VMI_FORMAT_CAN_READ | VMI_FORMAT_CAN_WRITE,
	.probe = raw_probe,
	.open = raw_open,
	.get_info = raw_get_info,
	.read = raw_read,
	.block_status = raw_block_status,
	.close = raw_close,
	.create_options = NULL,
	.create = raw_create,
	.write = raw_write,
	.finish = raw_finish,
	.measure = raw_measure,
};

VMI_PLUGIN_DEFINE (vmi_raw_plugin)
