/*
 * A UEC tarball (Ubuntu Enterprise Cloud, e.g. *-server-cloudimg-amd64.tar.gz): a gzipped tar of
 * a machine image (*.img), a kernel (*-vmlinuz-*), often a ramdisk (*-initrd-*) and a README.
 * Open walks the archive once (vmi-uec-stream.c) and records each entry; every regular file is
 * a member the daemon can inspect through read_member, and the machine image is also this
 * plugin's virtual disk, so converting the tarball converts its machine image. Names are only
 * compared and shown, never used as paths; links and device nodes are reported, not followed.
 */
#include <string.h>

#include "vmi-plugin-util.h"
#include "vmi-uec-probe.h"
#include "vmi-uec-stream.h"

/* A UEC tarball holds four or five files; a tar of many tiny ones only costs time. */
#define UEC_MAX_MEMBERS 1024u
/* PATH_MAX: a longer name is no file any system could have packed. */
#define UEC_MAX_NAME 4096u
/* Sentences about members beyond this many are summed up in one. */
#define UEC_MAX_REASONS 64u
/* What open looks at of each file to tell a kernel, a ramdisk and a disk apart. */
#define UEC_SNIFF_SIZE 4096u
/*
 * The most tar stream open inflates: 512 bytes per compressed byte, at least 256 MiB. Real
 * tarballs inflate 3 to 20 times (kernel and ramdisk are compressed already); only a disk that
 * is more than 99.8% zeros, with little else beside it, goes over 512. deflate's own limit is
 * about 1032, so a bomb is stopped at half its yield, before it is inflated when a member's
 * header declares the size (as tar headers do).
 */
#define UEC_MAX_RATIO 512u
#define UEC_MIN_INFLATE (256u * 1024u * 1024u)

static const char UEC_ROLE_DISK[] = "disk";
static const char UEC_ROLE_KERNEL[] = "kernel";
static const char UEC_ROLE_RAMDISK[] = "ramdisk";
static const char UEC_ROLE_OTHER[] = "other";

typedef enum {
	UEC_ENTRY_FILE,
	UEC_ENTRY_DIRECTORY,
	UEC_ENTRY_SYMLINK,
	UEC_ENTRY_HARDLINK,
	UEC_ENTRY_DEVICE,
	UEC_ENTRY_FIFO,
	UEC_ENTRY_OTHER,
} UecEntryType;

typedef struct {
	char *name;	  /* valid UTF-8 */
	char *target;	  /* of a link, valid UTF-8, or NULL */
	guint ordinal;	  /* 1 for the first entry of the archive */
	guint64 size;
	UecEntryType type;
	const char *role;
	gboolean loader;  /* an EC2 "loader" kernel (boots the kernel inside the image) */
	gboolean sparse;
} UecEntry;

struct _VmiImage {
	int fd;
	guint64 offset;
	guint64 size;
	guint64 limit;
	guint64 tar_size;      /* bytes of tar stream inflated by the walk */
	GPtrArray *entries;    /* of UecEntry *, in archive order */
	GPtrArray *files;      /* the regular files of entries: info->members, same order */
	GPtrArray *unsafe_reasons;
	guint n_reasons;
	guint disk;	       /* index in files of the first machine image */
	const UecEntry *kernel;
	const UecEntry *ramdisk;

	/* Where read_member left off: the stream stands inside entry cursor_ordinal. */
	VmiUecStream *cursor;
	guint cursor_ordinal;
};

static void
uec_entry_free (UecEntry *entry)
{
	g_free (entry->name);
	g_free (entry->target);
	g_free (entry);
}

static const char *
uec_entry_type_name (UecEntryType type)
{
	switch (type) {
	case UEC_ENTRY_FILE:
		return "file";
	case UEC_ENTRY_DIRECTORY:
		return "directory";
	case UEC_ENTRY_SYMLINK:
		return "symlink";
	case UEC_ENTRY_HARDLINK:
		return "hardlink";
	case UEC_ENTRY_DEVICE:
		return "device";
	case UEC_ENTRY_FIFO:
		return "fifo";
	case UEC_ENTRY_OTHER:
	default:
		return "special file";
	}
}

/* --- roles --- */

static guint16
uec_le16 (const guint8 *p)
{
	return (guint16) (p[0] | p[1] << 8);
}

static gboolean
uec_looks_like_kernel (const guint8 *p, gsize len)
{
	/* x86 boot sector signature and setup header; arm64 and RISC-V Image headers */
	if (len >= 0x206 && uec_le16 (p + 0x1fe) == 0xaa55 && memcmp (p + 0x202, "HdrS", 4) == 0)
		return TRUE;
	if (len >= 0x40 && (memcmp (p + 0x38, "ARM\x64", 4) == 0 || memcmp (p + 0x38, "RSC\x05", 4) == 0))
		return TRUE;
	return FALSE;
}

static gboolean
uec_looks_like_cpio (const guint8 *p, gsize len)
{
	return len >= 6 && (memcmp (p, "070701", 6) == 0 || memcmp (p, "070702", 6) == 0 ||
			    memcmp (p, "070707", 6) == 0);
}

/* A partition table or a file system at the start: what a machine image begins with. */
static gboolean
uec_looks_like_disk (const guint8 *p, gsize len)
{
	if (len >= 520 && memcmp (p + 512, "EFI PART", 8) == 0)
		return TRUE;
	if (len >= 1082 && uec_le16 (p + 1080) == 0xef53) /* ext2/3/4 */
		return TRUE;
	if (len >= 4 && memcmp (p, "XFSB", 4) == 0)
		return TRUE;
	if (len >= 512 && uec_le16 (p + 510) == 0xaa55) {
		for (guint i = 0; i < 4; i++) {
			if (p[446 + i * 16 + 4] != 0)
				return TRUE;
		}
	}
	return FALSE;
}

static const char *
uec_basename (const char *name)
{
	const char *slash = strrchr (name, '/');

	return slash != NULL ? slash + 1 : name;
}

/*
 * The content decides when it is unmistakable (a boot header, a cpio); then the names UEC
 * tarballs use (*-vmlinuz-*, *-initrd-*, *-loader, *.img); then a partition table or file
 * system.
 */
static const char *
uec_role (UecEntry *entry, const guint8 *head, gsize head_len)
{
	g_autofree char *base = g_ascii_strdown (uec_basename (entry->name), -1);

	if (entry->type != UEC_ENTRY_FILE)
		return UEC_ROLE_OTHER;
	entry->loader = strstr (base, "loader") != NULL;
	if (uec_looks_like_kernel (head, head_len))
		return UEC_ROLE_KERNEL;
	if (uec_looks_like_cpio (head, head_len))
		return UEC_ROLE_RAMDISK;
	if (strstr (base, "initrd") != NULL || strstr (base, "initramfs") != NULL ||
	    strstr (base, "ramdisk") != NULL)
		return UEC_ROLE_RAMDISK;
	if (strstr (base, "vmlinuz") != NULL || strstr (base, "vmlinux") != NULL ||
	    strstr (base, "bzimage") != NULL || g_str_has_prefix (base, "kernel") || entry->loader)
		return UEC_ROLE_KERNEL;
	if (g_str_has_suffix (base, ".img") || g_str_has_suffix (base, ".raw"))
		return UEC_ROLE_DISK;
	if (uec_looks_like_disk (head, head_len))
		return UEC_ROLE_DISK;
	return UEC_ROLE_OTHER;
}

/* --- the walk --- */

static void
uec_add_reason (VmiImage *self, char *reason)
{
	if (++self->n_reasons <= UEC_MAX_REASONS)
		g_ptr_array_add (self->unsafe_reasons, reason);
	else
		g_free (reason);
}

/* Names an extractor would take for paths outside its folder, or that print misleadingly. */
static char *
uec_name_unsafe_reason (const char *name, gboolean valid_utf8)
{
	if (name[0] == '\0')
		return g_strdup ("a member of the tarball has an empty name");
	if (name[0] == '/' || name[0] == '\\')
		return g_strdup_printf ("the member \"%s\" has an absolute path: extracted, it "
					"would land outside the target folder",
					name);
	for (const char *part = name; part != NULL;) {
		gsize len = strcspn (part, "/\\");

		if (len == 2 && part[0] == '.' && part[1] == '.')
			return g_strdup_printf ("the member \"%s\" has \"..\" in its path: extracted, "
						"it could land outside the target folder",
						name);
		part = part[len] != '\0' ? part + len + 1 : NULL;
	}
	for (const char *c = name; *c != '\0'; c++) {
		if ((guchar) *c < 0x20 || *c == 0x7f)
			return g_strdup ("a member's name has control characters");
	}
	if (!valid_utf8)
		return g_strdup_printf ("the name of member \"%s\" is not valid UTF-8: tools may "
					"decode it differently",
					name);
	return NULL;
}

static UecEntryType
uec_entry_type (struct archive_entry *entry)
{
	if (archive_entry_hardlink (entry) != NULL)
		return UEC_ENTRY_HARDLINK;
	switch (archive_entry_filetype (entry)) {
	case AE_IFREG:
		return UEC_ENTRY_FILE;
	case AE_IFDIR:
		return UEC_ENTRY_DIRECTORY;
	case AE_IFLNK:
		return UEC_ENTRY_SYMLINK;
	case AE_IFCHR:
	case AE_IFBLK:
		return UEC_ENTRY_DEVICE;
	case AE_IFIFO:
		return UEC_ENTRY_FIFO;
	default:
		return UEC_ENTRY_OTHER;
	}
}

static gboolean
uec_add_entry (VmiImage *self, VmiUecStream *stream, struct archive_entry *ae, GHashTable *names,
	       GError **error)
{
	const char *raw = archive_entry_pathname (ae);
	UecEntry *entry;
	guint8 head[UEC_SNIFF_SIZE];
	gsize head_len = 0;
	char *reason;

	if (raw == NULL)
		raw = "";
	if (strlen (raw) > UEC_MAX_NAME) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
			     "member %u of the tarball has a %" G_GSIZE_FORMAT "-byte name; names "
			     "longer than %u bytes are refused",
			     self->entries->len + 1, strlen (raw), UEC_MAX_NAME);
		return FALSE;
	}
	entry = g_new0 (UecEntry, 1);
	entry->name = g_utf8_make_valid (raw, -1);
	entry->ordinal = vmi_uec_stream_get_count (stream);
	entry->type = uec_entry_type (ae);
	entry->size = archive_entry_size_is_set (ae) ? (guint64) MAX (archive_entry_size (ae), 0) : 0;
	entry->sparse = archive_entry_sparse_count (ae) > 0;
	g_ptr_array_add (self->entries, entry);

	reason = uec_name_unsafe_reason (entry->name, g_utf8_validate (raw, -1, NULL));
	if (reason != NULL)
		uec_add_reason (self, reason);
	if (entry->type != UEC_ENTRY_FILE && entry->type != UEC_ENTRY_DIRECTORY) {
		const char *link = archive_entry_hardlink (ae);

		if (link == NULL)
			link = archive_entry_symlink (ae);
		/* shown, never followed: a target longer than any name is cut */
		entry->target = link != NULL ? g_utf8_make_valid (link, (gssize) strnlen (link, UEC_MAX_NAME))
					     : NULL;
		uec_add_reason (self, g_strdup_printf ("the member \"%s\" is a %s%s%s%s, not a file; "
						       "it is not followed",
						       entry->name, uec_entry_type_name (entry->type),
						       entry->target != NULL ? " to \"" : "",
						       entry->target != NULL ? entry->target : "",
						       entry->target != NULL ? "\"" : ""));
	}
	if (entry->type != UEC_ENTRY_DIRECTORY) {
		if (g_hash_table_contains (names, entry->name))
			uec_add_reason (self, g_strdup_printf ("the tarball holds two members named "
							       "\"%s\": tools disagree about which "
							       "one counts",
							       entry->name));
		else
			g_hash_table_add (names, entry->name);
	}
	if (entry->type == UEC_ENTRY_FILE &&
	    !vmi_uec_stream_read (stream, head, sizeof head, &head_len, error))
		return FALSE;
	entry->role = uec_role (entry, head, head_len);
	if (entry->type == UEC_ENTRY_FILE)
		g_ptr_array_add (self->files, entry);
	return TRUE;
}

static gboolean
uec_walk (VmiImage *self, GCancellable *cancellable, GError **error)
{
	g_autoptr(VmiUecStream) stream = NULL;
	g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);

	stream = vmi_uec_stream_new (self->fd, self->offset, self->size, self->limit, cancellable,
				     error);
	if (stream == NULL)
		return FALSE;
	for (;;) {
		struct archive_entry *ae = NULL;

		if (!vmi_uec_stream_next (stream, &ae, error))
			return FALSE;
		if (ae == NULL)
			break;
		if (self->entries->len >= UEC_MAX_MEMBERS) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
				     "the tarball has more than %u members; a UEC tarball holds a "
				     "machine image, a kernel, a ramdisk and a README, so it is refused",
				     UEC_MAX_MEMBERS);
			return FALSE;
		}
		if (!uec_add_entry (self, stream, ae, names, error))
			return FALSE;
	}
	self->tar_size = vmi_uec_stream_get_inflated (stream);
	if (self->n_reasons > UEC_MAX_REASONS)
		g_ptr_array_add (self->unsafe_reasons,
				 g_strdup_printf ("%u more members of the tarball have unsafe names "
						  "or types",
						  self->n_reasons - UEC_MAX_REASONS));
	return TRUE;
}

/* The first machine image is the disk; a vmlinuz is preferred to a loader as the kernel. */
static gboolean
uec_pick (VmiImage *self, GError **error)
{
	gboolean have_disk = FALSE;

	for (guint i = 0; i < self->files->len; i++) {
		const UecEntry *entry = g_ptr_array_index (self->files, i);

		if (entry->role == UEC_ROLE_DISK && !have_disk) {
			self->disk = i;
			have_disk = TRUE;
		} else if (entry->role == UEC_ROLE_KERNEL &&
			   (self->kernel == NULL || (self->kernel->loader && !entry->loader))) {
			self->kernel = entry;
		} else if (entry->role == UEC_ROLE_RAMDISK && self->ramdisk == NULL) {
			self->ramdisk = entry;
		}
	}
	if (!have_disk) {
		g_autoptr(GString) list = g_string_new (NULL);

		for (guint i = 0; i < self->entries->len && i < 8; i++) {
			const UecEntry *entry = g_ptr_array_index (self->entries, i);

			g_string_append_printf (list, "%s\"%s\"", i > 0 ? ", " : "", entry->name);
		}
		if (self->entries->len > 8)
			g_string_append (list, ", ...");
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "the gzipped tar archive holds no machine image (a *.img file, or a "
			     "file that starts with a partition table or file system) among its %u "
			     "members (%s): it is not a UEC tarball",
			     self->entries->len, self->entries->len > 0 ? list->str : "none");
		return FALSE;
	}
	return TRUE;
}

static void uec_close (VmiImage *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiImage, uec_close)

static VmiImage *
uec_open (const VmiOpenArgs *args, GError **error)
{
	g_autoptr(VmiImage) self = g_new0 (VmiImage, 1);

	self->fd = args->fd;
	self->offset = args->offset;
	self->size = args->file_size;
	if (!g_uint64_checked_mul (&self->limit, self->size, UEC_MAX_RATIO))
		self->limit = G_MAXUINT64;
	self->limit = MAX (self->limit, (guint64) UEC_MIN_INFLATE);
	self->entries = g_ptr_array_new_with_free_func ((GDestroyNotify) uec_entry_free);
	self->files = g_ptr_array_new ();
	self->unsafe_reasons = g_ptr_array_new_with_free_func (g_free);
	if (!uec_walk (self, args->cancellable, error) || !uec_pick (self, error))
		return NULL;
	return g_steal_pointer (&self);
}

/* --- info --- */

static void
uec_glance_names (const char *role, const char **disk_format, const char **container_format)
{
	*disk_format = NULL;
	*container_format = NULL;
	if (role == UEC_ROLE_DISK)
		*disk_format = *container_format = "ami";
	else if (role == UEC_ROLE_KERNEL)
		*disk_format = *container_format = "aki";
	else if (role == UEC_ROLE_RAMDISK)
		*disk_format = *container_format = "ari";
}

static gboolean
uec_get_info (VmiImage *self, VmiImageInfo *info, GError **error)
{
	GVariantDict *facts = info->format_specific;
	const UecEntry *disk = g_ptr_array_index (self->files, self->disk);
	GVariantBuilder list;
	guint n_disks = 0;

	info->virtual_size = disk->size;
	/*
	 * Glance has no UEC container: the tarball is unpacked and its parts uploaded as an ami,
	 * an aki and an ari (uec-publish-tarball). The tarball itself is, in Glance's terms, a
	 * compressed container (a blob Nova refuses to boot) around an ami; each member carries
	 * the names for its own upload.
	 */
	info->disk_format = "ami";
	info->container_format = "compressed";

	g_variant_builder_init (&list, G_VARIANT_TYPE ("aa{sv}"));
	for (guint i = 0; i < self->entries->len; i++) {
		const UecEntry *entry = g_ptr_array_index (self->entries, i);
		GVariantDict d;

		g_variant_dict_init (&d, NULL);
		g_variant_dict_insert (&d, "name", "s", entry->name);
		g_variant_dict_insert (&d, "type", "s", uec_entry_type_name (entry->type));
		g_variant_dict_insert (&d, "role", "s", entry->role);
		g_variant_dict_insert (&d, "size", "t", entry->size);
		if (entry->target != NULL)
			g_variant_dict_insert (&d, "target", "s", entry->target);
		if (entry->sparse)
			g_variant_dict_insert (&d, "sparse", "b", TRUE);
		g_variant_builder_add_value (&list, g_variant_dict_end (&d));
	}
	g_variant_dict_insert_value (facts, "members", g_variant_builder_end (&list));
	g_variant_dict_insert (facts, "compression", "s", "gzip");
	g_variant_dict_insert (facts, "tar-size", "t", self->tar_size);
	g_variant_dict_insert (facts, "machine-image", "s", disk->name);
	if (self->kernel != NULL)
		g_variant_dict_insert (facts, "kernel", "s", self->kernel->name);
	if (self->ramdisk != NULL)
		g_variant_dict_insert (facts, "ramdisk", "s", self->ramdisk->name);

	for (guint i = 0; i < self->files->len; i++) {
		const UecEntry *entry = g_ptr_array_index (self->files, i);
		VmiMember *member = vmi_member_new (entry->name, entry->role, VMI_MEMBER_STREAM);
		const char *disk_format, *container_format;

		member->size = entry->size;
		uec_glance_names (entry->role, &disk_format, &container_format);
		if (disk_format != NULL) {
			g_variant_dict_insert (member->facts, "disk-format", "s", disk_format);
			g_variant_dict_insert (member->facts, "container-format", "s", container_format);
		}
		if (entry->loader && entry->role == UEC_ROLE_KERNEL)
			g_variant_dict_insert (member->facts, "loader", "b", TRUE);
		if (entry->role == UEC_ROLE_DISK)
			n_disks++;
		g_ptr_array_add (info->members, member);
	}
	g_variant_dict_insert (facts, "machine-images", "u", n_disks);
	for (guint i = 0; i < self->unsafe_reasons->len; i++)
		g_ptr_array_add (info->unsafe_reasons, g_strdup (g_ptr_array_index (self->unsafe_reasons, i)));
	return TRUE;
}

/* --- reading --- */

/* Puts the cursor at the start of the data of entry (restarting when it is behind us). */
static gboolean
uec_cursor_enter (VmiImage *self, const UecEntry *target, guint64 offset, GError **error)
{
	if (self->cursor != NULL &&
	    (self->cursor_ordinal > target->ordinal ||
	     (self->cursor_ordinal == target->ordinal &&
	      vmi_uec_stream_get_position (self->cursor) > offset)))
		g_clear_pointer (&self->cursor, vmi_uec_stream_free);
	if (self->cursor == NULL) {
		self->cursor = vmi_uec_stream_new (self->fd, self->offset, self->size, self->limit,
						   NULL, error);
		self->cursor_ordinal = 0;
		if (self->cursor == NULL)
			return FALSE;
	}
	while (self->cursor_ordinal < target->ordinal) {
		struct archive_entry *ae = NULL;
		const UecEntry *expect;
		const char *name;
		g_autofree char *valid = NULL;

		if (!vmi_uec_stream_next (self->cursor, &ae, error))
			return FALSE;
		self->cursor_ordinal = vmi_uec_stream_get_count (self->cursor);
		expect = g_ptr_array_index (self->entries, self->cursor_ordinal - 1);
		name = ae != NULL ? archive_entry_pathname (ae) : NULL;
		valid = g_utf8_make_valid (name != NULL ? name : "", -1);
		if (ae == NULL || strcmp (valid, expect->name) != 0 ||
		    (guint64) MAX (archive_entry_size (ae), 0) != expect->size) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "member %u of the tarball is no longer \"%s\": the file changed "
				     "while it was open",
				     self->cursor_ordinal, expect->name);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
uec_read_member_at (VmiImage *self, const UecEntry *entry, guint64 offset, void *buf, gsize len,
		    gsize *got, GError **error)
{
	guint64 position, skipped = 0;

	if (!uec_cursor_enter (self, entry, offset, error))
		return FALSE;
	position = vmi_uec_stream_get_position (self->cursor);
	if (!vmi_uec_stream_skip (self->cursor, offset - position, &skipped, error) ||
	    !vmi_uec_stream_read (self->cursor, buf, len, got, error))
		return FALSE;
	if (skipped != offset - position || *got != len) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the member \"%s\" ends at byte %" G_GUINT64_FORMAT ", before the %" G_GUINT64_FORMAT
			     " bytes its header declares",
			     entry->name, vmi_uec_stream_get_position (self->cursor), entry->size);
		return FALSE;
	}
	return TRUE;
}

static gboolean
uec_read_member (VmiImage *self, guint index, guint64 offset, void *buf, gsize len, gsize *got,
		 GError **error)
{
	const UecEntry *entry;

	*got = 0;
	if (index >= self->files->len) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the tarball has %u members with content; there is no member %u",
			     self->files->len, index);
		return FALSE;
	}
	entry = g_ptr_array_index (self->files, index);
	if (offset >= entry->size || len == 0)
		return TRUE;
	len = (gsize) MIN ((guint64) len, entry->size - offset);
	if (!uec_read_member_at (self, entry, offset, buf, len, got, error)) {
		/* Where a failed stream stands is unknown: the next read starts over. */
		g_clear_pointer (&self->cursor, vmi_uec_stream_free);
		*got = 0;
		return FALSE;
	}
	return TRUE;
}

static gboolean
uec_read (VmiImage *self, guint64 offset, void *buf, gsize len, GError **error)
{
	gsize got = 0;

	if (!uec_read_member (self, self->disk, offset, buf, len, &got, error))
		return FALSE;
	if (got != len) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "a read of %" G_GSIZE_FORMAT " bytes at %" G_GUINT64_FORMAT
			     " goes past the end of the machine image",
			     len, offset);
		return FALSE;
	}
	return TRUE;
}

static gboolean
uec_block_status (VmiImage *self, guint64 offset, guint64 max_length, VmiExtent *extent,
		  GError **error)
{
	const UecEntry *disk = g_ptr_array_index (self->files, self->disk);

	if (offset >= disk->size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "offset %" G_GUINT64_FORMAT " is beyond the %" G_GUINT64_FORMAT
			     "-byte machine image",
			     offset, disk->size);
		return FALSE;
	}
	/* Zeros are only known by inflating them; the engine skips zero blocks it reads. */
	extent->kind = VMI_EXTENT_DATA;
	extent->length = MIN (max_length, disk->size - offset);
	return TRUE;
}

static void
uec_close (VmiImage *self)
{
	g_clear_pointer (&self->cursor, vmi_uec_stream_free);
	g_clear_pointer (&self->files, g_ptr_array_unref);
	g_clear_pointer (&self->entries, g_ptr_array_unref);
	g_clear_pointer (&self->unsafe_reasons, g_ptr_array_unref);
	g_free (self);
}

/* libarchive would run gzip as a program when built without zlib; a daemon must not. */
static gboolean
uec_init (GError **error)
{
	if (archive_zlib_version () == NULL) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				     "this libarchive has no built-in zlib, so it cannot read "
				     "gzipped tarballs in-process");
		return FALSE;
	}
	return TRUE;
}

const VmiFormatPlugin vmi_uec_plugin = {
	VMI_UEC_IDENTITY,
	.init = uec_init,
	.probe = vmi_uec_probe,
	.open = uec_open,
	.get_info = uec_get_info,
	.read = uec_read,
	.block_status = uec_block_status,
	.close = uec_close,
	.read_member = uec_read_member,
};

VMI_PLUGIN_DEFINE (vmi_uec_plugin)
