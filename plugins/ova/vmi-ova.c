/*
 * An OVA: an uncompressed tar whose first member is an OVF descriptor, followed by the files it
 * names (disks, a manifest of their digests, a certificate). libarchive walks the tar over
 * pread; member names are only compared, never used as paths, and member data is read in place
 * (at the offset kept for each member) to parse the descriptor and check the manifest.
 */
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "vmi-ova-manifest.h"
#include "vmi-ova-probe.h"
#include "vmi-ova-writer.h"
#include "vmi-ovf-gunzip.h"
#include "vmi-ovf-parse.h"
#include "vmi-plugin-util.h"

/* Real OVAs have a handful of members; a tar of many tiny ones only costs time. */
#define OVA_MAX_MEMBERS 10000u
/* Sentences about members beyond this many are summed up in one. */
#define OVA_MAX_MEMBER_REASONS 64u

typedef enum {
	OVA_MEMBER_FILE,
	OVA_MEMBER_DIRECTORY,
	OVA_MEMBER_SYMLINK,
	OVA_MEMBER_HARDLINK,
	OVA_MEMBER_OTHER,
} OvaMemberType;

typedef struct {
	char *name;
	guint64 header_offset;
	guint64 offset; /* of the member's data in the file */
	guint64 size;
	OvaMemberType type;
} OvaMember;

struct _VmiImage {
	int fd;
	guint64 base; /* the archive is [base, base + file_size) of fd */
	guint64 file_size;
	GPtrArray *members; /* of OvaMember *, in archive order */
	GHashTable *by_name; /* name → first OvaMember * of that name */
	const OvaMember *descriptor;
	VmiOvf *ovf;
	GPtrArray *unsafe_reasons;
	GPtrArray *missing;	   /* hrefs of the OVF without a member */
	GPtrArray *size_mismatch;  /* hrefs whose member size differs from ovf:size */
	const OvaMember *certificate;
	VmiOvaManifest *manifest;
	GPtrArray *entries; /* of VmiOvfEntry *: the members the container reports */
	GPtrArray *chunks;  /* per entry: GArray of its pieces (const OvaMember *), or NULL */
	VmiOvfGunzip *gunzip; /* of entry gunzip_index, for read_member */
	guint gunzip_index;
	VmiOvaWriter *writer; /* an OVA being created (vmi-ova-writer.c); nothing above is set */
};

static void
ova_member_free (OvaMember *member)
{
	g_free (member->name);
	g_free (member);
}

static const char *
ova_member_type_name (OvaMemberType type)
{
	switch (type) {
	case OVA_MEMBER_FILE:
		return "file";
	case OVA_MEMBER_DIRECTORY:
		return "directory";
	case OVA_MEMBER_SYMLINK:
		return "symlink";
	case OVA_MEMBER_HARDLINK:
		return "hardlink";
	default:
		return "other";
	}
}

/* libarchive reads the file through these, at a position of its own, never through a path. */
typedef struct {
	int fd;
	guint64 base;
	guint64 pos;
	guint64 size;
	GError *error;
	guint8 buf[64 * 1024];
} OvaReader;

static la_ssize_t
ova_read_cb (struct archive *archive, void *data, const void **buffer)
{
	OvaReader *r = data;
	gsize len = (gsize) MIN ((guint64) sizeof r->buf, r->size - r->pos);

	*buffer = r->buf;
	if (len == 0)
		return 0;
	if (!vmi_pread_all (r->fd, r->buf, len, r->base + r->pos, "OVA archive", &r->error)) {
		archive_set_error (archive, EIO, "%s", r->error->message);
		return -1;
	}
	r->pos += len;
	return (la_ssize_t) len;
}

static la_int64_t
ova_skip_cb (struct archive *archive, void *data, la_int64_t request)
{
	OvaReader *r = data;
	guint64 n = MIN ((guint64) MAX (request, 0), r->size - r->pos);

	r->pos += n;
	return (la_int64_t) n;
}

static void
ova_add_reason (VmiImage *self, guint *count, char *reason)
{
	if (++*count <= OVA_MAX_MEMBER_REASONS)
		g_ptr_array_add (self->unsafe_reasons, reason);
	else
		g_free (reason);
}

/* Names an importer could take for paths: folders, "..", absolute, empty, control characters. */
static char *
ova_name_unsafe_reason (const char *name)
{
	if (name[0] == '\0')
		return g_strdup ("a member of the OVA has an empty name");
	if (name[0] == '/')
		return g_strdup_printf ("the OVA member \"%s\" has an absolute path", name);
	if (strstr (name, "..") != NULL)
		return g_strdup_printf ("the OVA member \"%s\" has \"..\" in its name: extracted, "
					"it could land outside the target folder",
					name);
	if (strchr (name, '/') != NULL || strchr (name, '\\') != NULL)
		return g_strdup_printf ("the OVA member \"%s\" is in a folder; the files of an OVA sit "
					"at its top level",
					name);
	for (const char *c = name; *c != '\0'; c++) {
		if ((guchar) *c < 0x20 || *c == 0x7f)
			return g_strdup ("an OVA member's name has control characters");
	}
	return NULL;
}

static gboolean
ova_add_member (VmiImage *self, struct archive *archive, struct archive_entry *entry,
		guint64 data_offset, guint *reasons, GError **error)
{
	OvaMember *member;
	const char *name = archive_entry_pathname (entry);
	char *reason;
	guint64 end;

	if (name == NULL)
		name = archive_entry_pathname_utf8 (entry);
	if (name == NULL)
		name = "";
	member = g_new0 (OvaMember, 1);
	/* Names go into messages and GVariant strings, which must be UTF-8; a name that is not
	 * can never match an href (the XML parser yields UTF-8), so replacing bytes loses nothing. */
	member->name = g_utf8_make_valid (name, -1);
	member->header_offset = (guint64) MAX (archive_read_header_position (archive), 0);
	member->offset = data_offset;
	member->size = archive_entry_size_is_set (entry) ? (guint64) MAX (archive_entry_size (entry), 0)
							  : 0;
	switch (archive_entry_filetype (entry)) {
	case AE_IFREG:
		member->type = archive_entry_hardlink (entry) != NULL ? OVA_MEMBER_HARDLINK
								      : OVA_MEMBER_FILE;
		break;
	case AE_IFDIR:
		member->type = OVA_MEMBER_DIRECTORY;
		break;
	case AE_IFLNK:
		member->type = OVA_MEMBER_SYMLINK;
		break;
	default:
		member->type = archive_entry_hardlink (entry) != NULL ? OVA_MEMBER_HARDLINK
								      : OVA_MEMBER_OTHER;
		break;
	}
	g_ptr_array_add (self->members, member);
	if (!g_utf8_validate (name, -1, NULL)) {
		ova_add_reason (self, reasons,
				g_strdup_printf ("the name of OVA member %u (\"%s\") is not valid UTF-8: "
						 "tools may decode it differently",
						 self->members->len, member->name));
	}
	if (archive_entry_sparse_count (entry) > 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the OVA member \"%s\" is stored as a sparse file (GNU tar --sparse); "
			     "OVA members are stored whole",
			     member->name);
		return FALSE;
	}
	if (!g_uint64_checked_add (&end, member->offset, member->size) || end > self->file_size) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the OVA member \"%s\" claims %" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
			     ", beyond the end of the %" G_GUINT64_FORMAT "-byte file: the archive "
			     "is truncated or its header lies",
			     member->name, member->size, member->offset, self->file_size);
		return FALSE;
	}
	reason = ova_name_unsafe_reason (member->name);
	if (reason != NULL)
		ova_add_reason (self, reasons, reason);
	if (member->type != OVA_MEMBER_FILE) {
		const char *link = archive_entry_symlink (entry);
		g_autofree char *target = NULL;

		if (link == NULL)
			link = archive_entry_hardlink (entry);
		target = link != NULL ? g_utf8_make_valid (link, -1) : NULL;
		ova_add_reason (self, reasons,
				g_strdup_printf ("the OVA member \"%s\" is a %s%s%s%s, not a file",
						 member->name, ova_member_type_name (member->type),
						 target != NULL ? " to \"" : "",
						 target != NULL ? target : "",
						 target != NULL ? "\"" : ""));
	}
	if (g_hash_table_contains (self->by_name, member->name)) {
		ova_add_reason (self, reasons,
				g_strdup_printf ("the OVA holds two members named \"%s\": tools "
						 "disagree about which one counts",
						 member->name));
	} else {
		g_hash_table_insert (self->by_name, member->name, member);
	}
	return TRUE;
}

static gboolean
ova_walk (VmiImage *self, GCancellable *cancellable, GError **error)
{
	struct archive *archive = archive_read_new ();
	g_autofree OvaReader *reader = g_new0 (OvaReader, 1);
	guint reasons = 0, retries = 0;
	gboolean ok = TRUE;

	reader->fd = self->fd;
	reader->base = self->base;
	reader->size = self->file_size;
	/* tar only, no decompression filter: an OVA is stored, and data offsets must be real */
	archive_read_support_format_tar (archive);
	if (archive_read_open2 (archive, reader, NULL, ova_read_cb, ova_skip_cb, NULL) != ARCHIVE_OK) {
		/* a read that failed says why better than libarchive's "unrecognized format" */
		if (reader->error != NULL)
			g_propagate_prefixed_error (error, g_steal_pointer (&reader->error),
						    "the OVA is not a tar archive libarchive can read: ");
		else
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the OVA is not a tar archive libarchive can read: %s",
				     archive_error_string (archive));
		archive_read_free (archive);
		return FALSE;
	}
	while (ok) {
		struct archive_entry *entry;
		int r = archive_read_next_header (archive, &entry);

		if (r == ARCHIVE_EOF)
			break;
		if (r == ARCHIVE_RETRY && ++retries < 16)
			continue;
		if (r < ARCHIVE_WARN || r == ARCHIVE_RETRY) {
			if (reader->error != NULL)
				g_propagate_error (error, g_steal_pointer (&reader->error));
			else
				g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
					     "the tar archive is damaged after %u members: %s",
					     self->members->len, archive_error_string (archive));
			ok = FALSE;
			break;
		}
		if (self->members->len >= OVA_MAX_MEMBERS) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
				     "the OVA has more than %u members; an OVA holds a descriptor, "
				     "a manifest and its disks, so it is refused",
				     OVA_MAX_MEMBERS);
			ok = FALSE;
			break;
		}
		if (self->members->len % 256 == 0 && g_cancellable_set_error_if_cancelled (cancellable, error)) {
			ok = FALSE;
			break;
		}
		/* The tar reader has consumed the member's headers and none of its data. */
		ok = ova_add_member (self, archive, entry, (guint64) archive_filter_bytes (archive, 0),
				     &reasons, error);
	}
	archive_read_free (archive);
	g_clear_error (&reader->error);
	if (ok && reasons > OVA_MAX_MEMBER_REASONS)
		g_ptr_array_add (self->unsafe_reasons,
				 g_strdup_printf ("%u more members of the OVA have unsafe names or types",
						  reasons - OVA_MAX_MEMBER_REASONS));
	return ok;
}

static gboolean
ova_name_has_suffix (const char *name, const char *suffix)
{
	gsize len = strlen (name), suffix_len = strlen (suffix);

	return len > suffix_len && g_ascii_strcasecmp (name + len - suffix_len, suffix) == 0;
}

static gboolean
ova_find_descriptor (VmiImage *self, GError **error)
{
	for (guint i = 0; i < self->members->len; i++) {
		const OvaMember *member = g_ptr_array_index (self->members, i);

		if (member->type != OVA_MEMBER_FILE || !ova_name_has_suffix (member->name, ".ovf"))
			continue;
		if (self->descriptor != NULL) {
			g_ptr_array_add (self->unsafe_reasons,
					 g_strdup_printf ("the OVA holds a second descriptor \"%s\" "
							  "after \"%s\"; importers may read either",
							  member->name, self->descriptor->name));
			continue;
		}
		self->descriptor = member;
		if (i != 0)
			g_ptr_array_add (self->unsafe_reasons,
					 g_strdup_printf ("the OVF descriptor \"%s\" is member %u of the "
							  "archive, but OVF requires it to be the first",
							  member->name, i + 1));
	}
	if (self->descriptor == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNKNOWN_FORMAT,
			     "the tar archive (%u members) holds no .ovf descriptor: it is not an OVA",
			     self->members->len);
		return FALSE;
	}
	return TRUE;
}

static const OvaMember *
ova_lookup (VmiImage *self, const char *name)
{
	const OvaMember *member = g_hash_table_lookup (self->by_name, name);

	return member != NULL && member->type == OVA_MEMBER_FILE ? member : NULL;
}

/* The OVF's files against the archive's members: missing ones, sizes that disagree. */
static void
ova_match_references (VmiImage *self)
{
	for (guint i = 0; i < self->ovf->files->len; i++) {
		const VmiOvfFile *file = g_ptr_array_index (self->ovf->files, i);
		g_autofree char *first_chunk = g_strdup_printf ("%s.000000000", file->href);
		const OvaMember *member = ova_lookup (self, file->href);

		/* a chunked file is stored as href.000000000, href.000000001, ... */
		if (member == NULL && file->chunk_size >= 0 && ova_lookup (self, first_chunk) != NULL)
			continue;
		if (member == NULL) {
			g_ptr_array_add (self->missing, g_strdup (file->href));
			continue;
		}
		if (file->size >= 0 && (guint64) file->size != member->size)
			g_ptr_array_add (self->size_mismatch, g_strdup (file->href));
	}
}

static gboolean
ova_member_lookup (const char *href, guint64 *offset, guint64 *size, gpointer user_data)
{
	const OvaMember *member = ova_lookup (user_data, href);

	if (member == NULL)
		return FALSE;
	*offset = member->offset;
	*size = member->size;
	return TRUE;
}

/* The same with the offset in fd rather than in the archive, for the manifest's hashing. */
static gboolean
ova_member_lookup_in_fd (const char *href, guint64 *offset, guint64 *size, gpointer user_data)
{
	VmiImage *self = user_data;

	if (!ova_member_lookup (href, offset, size, self))
		return FALSE;
	*offset += self->base;
	return TRUE;
}

static gboolean
ova_check_manifest (VmiImage *self, GCancellable *cancellable, GError **error)
{
	const OvaMember *mf = NULL;
	g_autofree char *text = NULL;
	g_autoptr(GPtrArray) covered = g_ptr_array_new ();

	for (guint i = 0; i < self->members->len; i++) {
		const OvaMember *member = g_ptr_array_index (self->members, i);

		if (member->type != OVA_MEMBER_FILE)
			continue;
		if (ova_name_has_suffix (member->name, ".mf") && mf == NULL)
			mf = member;
		else if (ova_name_has_suffix (member->name, ".cert") && self->certificate == NULL)
			self->certificate = member;
		else
			g_ptr_array_add (covered, member->name);
	}
	if (mf == NULL)
		return TRUE;
	if (mf->size > VMI_OVA_MAX_MANIFEST_SIZE) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the OVA manifest \"%s\" is %" G_GUINT64_FORMAT " bytes; this reader "
			     "stops at %u",
			     mf->name, mf->size, VMI_OVA_MAX_MANIFEST_SIZE);
		return FALSE;
	}
	text = g_malloc ((gsize) mf->size + 1);
	if (!vmi_pread_all (self->fd, text, (gsize) mf->size, self->base + mf->offset, "OVA manifest",
			    error))
		return FALSE;
	text[mf->size] = '\0';
	self->manifest = vmi_ova_manifest_check (mf->name, text, (gsize) mf->size, self->fd,
						 ova_member_lookup_in_fd, self,
						 (const char *const *) covered->pdata, covered->len,
						 cancellable, error);
	if (self->manifest == NULL)
		return FALSE;
	for (guint i = 0; i < self->manifest->mismatches->len; i++)
		g_ptr_array_add (self->unsafe_reasons,
				 g_strdup_printf ("the OVA member \"%s\" does not match its digest in "
						  "the manifest: damaged or altered",
						  (const char *) g_ptr_array_index (self->manifest->mismatches, i)));
	return TRUE;
}

/*
 * The pieces of a chunked file (href.000000000, href.000000001, ...) up to the first one the
 * archive lacks, or NULL when the file is not chunked or stored whole. At most one per member.
 */
static GArray *
ova_find_chunks (VmiImage *self, const VmiOvfFile *file)
{
	g_autoptr(GArray) chunks = NULL;

	if (file->chunk_size < 0 || ova_lookup (self, file->href) != NULL)
		return NULL;
	chunks = g_array_new (FALSE, FALSE, sizeof (const OvaMember *));
	for (guint k = 0; k < self->members->len; k++) {
		g_autofree char *name = g_strdup_printf ("%s.%09u", file->href, k);
		const OvaMember *piece = ova_lookup (self, name);

		if (piece == NULL)
			break;
		g_array_append_val (chunks, piece);
	}
	return chunks->len > 0 ? g_steal_pointer (&chunks) : NULL;
}

static void
ova_chunks_free (gpointer chunks)
{
	if (chunks != NULL)
		g_array_unref (chunks);
}

static void
ova_find_all_chunks (VmiImage *self)
{
	self->chunks = g_ptr_array_new_with_free_func (ova_chunks_free);
	for (guint i = 0; i < self->entries->len; i++) {
		const VmiOvfEntry *entry = g_ptr_array_index (self->entries, i);

		g_ptr_array_add (self->chunks, ova_find_chunks (self, entry->file));
	}
}

static void ova_close (VmiImage *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VmiImage, ova_close)

static VmiImage *
ova_open (const VmiOpenArgs *args, GError **error)
{
	g_autoptr(VmiImage) self = g_new0 (VmiImage, 1);
	g_autofree char *xml = NULL;
	VmiFileRange range;

	/* the archive must lie in the file: what follows its range is not the archive's */
	if (!vmi_file_range_init (&range, args, error))
		return NULL;
	self->fd = args->fd;
	self->base = args->offset;
	self->file_size = args->file_size;
	self->members = g_ptr_array_new_with_free_func ((GDestroyNotify) ova_member_free);
	self->by_name = g_hash_table_new (g_str_hash, g_str_equal);
	self->unsafe_reasons = g_ptr_array_new_with_free_func (g_free);
	self->missing = g_ptr_array_new_with_free_func (g_free);
	self->size_mismatch = g_ptr_array_new_with_free_func (g_free);
	if (!ova_walk (self, args->cancellable, error) || !ova_find_descriptor (self, error))
		return NULL;
	xml = vmi_ovf_read (self->fd, self->base + self->descriptor->offset, self->descriptor->size,
			    "OVF descriptor of the OVA", error);
	if (xml == NULL)
		return NULL;
	self->ovf = vmi_ovf_parse (xml, (gsize) self->descriptor->size, error);
	if (self->ovf == NULL)
		return NULL;
	ova_match_references (self);
	self->entries = vmi_ovf_entries (self->ovf);
	ova_find_all_chunks (self);
	if (!ova_check_manifest (self, args->cancellable, error))
		return NULL;
	return g_steal_pointer (&self);
}

static GVariant *
ova_strv (GPtrArray *array)
{
	return g_variant_new_strv ((const char *const *) array->pdata, array->len);
}

/* A chunked file is read piece by piece: len bytes of the whole file at offset. */
static gboolean
ova_read_chunks (VmiImage *self, GArray *chunks, guint64 offset, void *buf, gsize len, gsize *got,
		 GError **error)
{
	guint64 start = 0;

	for (guint k = 0; k < chunks->len && *got < len; k++) {
		const OvaMember *piece = g_array_index (chunks, const OvaMember *, k);
		guint64 at = offset + *got;

		if (at < start + piece->size) {
			gsize n = (gsize) MIN ((guint64) (len - *got), start + piece->size - at);

			if (!vmi_pread_all (self->fd, (guint8 *) buf + *got, n,
					    self->base + piece->offset + (at - start),
					    "piece of a chunked OVA file", error))
				return FALSE;
			*got += n;
		}
		start += piece->size;
	}
	return TRUE;
}

/*
 * Each file of the OVF as a member: in the tar as it is (STORED, read in place), gzip-compressed
 * or in chunks (STREAM, through read_member), or not in the archive (ABSENT). The name is the
 * href, which is never opened as a path.
 */
static void
ova_add_members (VmiImage *self, GPtrArray *members)
{
	for (guint i = 0; i < self->entries->len; i++) {
		const VmiOvfEntry *entry = g_ptr_array_index (self->entries, i);
		const OvaMember *stored = ova_lookup (self, entry->file->href);
		GArray *chunks = g_ptr_array_index (self->chunks, i);
		VmiMember *member;

		if (chunks != NULL) {
			member = vmi_ovf_member_new (entry, VMI_MEMBER_STREAM);
			for (guint k = 0; k < chunks->len; k++)
				member->size += g_array_index (chunks, const OvaMember *, k)->size;
			g_variant_dict_insert (member->facts, "chunks", "u", chunks->len);
			/* compressed, the pieces hold gzip data whose length is not the file's */
			if (vmi_ovf_entry_is_gzip (entry))
				member->size = 0;
		} else if (stored == NULL) {
			member = vmi_ovf_member_new (entry, VMI_MEMBER_ABSENT);
		} else if (vmi_ovf_entry_is_gzip (entry)) {
			member = vmi_ovf_member_new (entry, VMI_MEMBER_STREAM);
			g_variant_dict_insert (member->facts, "stored-size", "t", stored->size);
		} else {
			member = vmi_ovf_member_new (entry, VMI_MEMBER_STORED);
			member->offset = stored->offset;
			member->size = stored->size;
		}
		if (stored != NULL)
			g_variant_dict_insert (member->facts, "member-offset", "t", stored->offset);
		g_ptr_array_add (members, member);
	}
}

static gboolean
ova_get_info (VmiImage *self, VmiImageInfo *info, GError **error)
{
	GVariantDict *facts = info->format_specific;
	GVariantBuilder members;

	info->virtual_size = self->ovf->virtual_size;
	vmi_ovf_describe (self->ovf, facts, ova_member_lookup, self);
	g_variant_dict_insert (facts, "descriptor", "s", self->descriptor->name);
	g_variant_builder_init (&members, G_VARIANT_TYPE ("aa{sv}"));
	for (guint i = 0; i < self->members->len; i++) {
		const OvaMember *member = g_ptr_array_index (self->members, i);
		GVariantDict d;

		g_variant_dict_init (&d, NULL);
		g_variant_dict_insert (&d, "name", "s", member->name);
		g_variant_dict_insert (&d, "type", "s", ova_member_type_name (member->type));
		g_variant_dict_insert (&d, "size", "t", member->size);
		g_variant_dict_insert (&d, "offset", "t", member->offset);
		g_variant_dict_insert (&d, "header-offset", "t", member->header_offset);
		g_variant_builder_add_value (&members, g_variant_dict_end (&d));
	}
	g_variant_dict_insert_value (facts, "members", g_variant_builder_end (&members));
	g_variant_dict_insert_value (facts, "missing-members", ova_strv (self->missing));
	g_variant_dict_insert_value (facts, "member-size-mismatches", ova_strv (self->size_mismatch));
	if (self->certificate != NULL)
		g_variant_dict_insert (facts, "certificate", "s", self->certificate->name);
	if (self->manifest != NULL)
		vmi_ova_manifest_describe (self->manifest, facts);
	else
		g_variant_dict_insert (facts, "manifest-verified", "b", FALSE);

	for (guint i = 0; i < self->unsafe_reasons->len; i++)
		g_ptr_array_add (info->unsafe_reasons, g_strdup (g_ptr_array_index (self->unsafe_reasons, i)));
	for (guint i = 0; i < self->ovf->unsafe_reasons->len; i++)
		g_ptr_array_add (info->unsafe_reasons,
				 g_strdup (g_ptr_array_index (self->ovf->unsafe_reasons, i)));
	/* Files the OVF names that the archive lacks: an importer would look for them outside. */
	for (guint i = 0; i < self->missing->len; i++)
		g_ptr_array_add (info->references, g_strdup (g_ptr_array_index (self->missing, i)));
	ova_add_members (self, info->members);
	info->disk_format = vmi_ovf_disk_format (self->ovf);
	info->container_format = "ova";
	return TRUE;
}

static gboolean
ova_read_member (VmiImage *self, guint index, guint64 offset, void *buf, gsize len, gsize *got,
		 GError **error)
{
	const VmiOvfEntry *entry;
	const OvaMember *stored;

	*got = 0;
	entry = index < self->entries->len ? g_ptr_array_index (self->entries, index) : NULL;
	if (entry != NULL && g_ptr_array_index (self->chunks, index) != NULL) {
		if (vmi_ovf_entry_is_gzip (entry)) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
				     "\"%s\" is both gzip-compressed and chunked; this reader "
				     "inflates whole files only",
				     entry->file->href);
			return FALSE;
		}
		return ova_read_chunks (self, g_ptr_array_index (self->chunks, index), offset, buf,
					len, got, error);
	}
	stored = entry != NULL ? ova_lookup (self, entry->file->href) : NULL;
	if (stored == NULL || !vmi_ovf_entry_is_gzip (entry)) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "member %u of the OVA is not a compressed file in the archive", index);
		return FALSE;
	}
	if (self->gunzip == NULL || self->gunzip_index != index) {
		guint64 capacity = entry->disk != NULL && entry->disk->capacity_known
					   ? entry->disk->capacity_bytes
					   : 0;

		g_clear_pointer (&self->gunzip, vmi_ovf_gunzip_free);
		self->gunzip = vmi_ovf_gunzip_new (self->fd, self->base + stored->offset, stored->size,
						   vmi_ovf_gunzip_limit (capacity, stored->size),
						   stored->name);
		self->gunzip_index = index;
	}
	return vmi_ovf_gunzip_read (self->gunzip, offset, buf, len, got, error);
}

static void
ova_close (VmiImage *self)
{
	g_clear_pointer (&self->gunzip, vmi_ovf_gunzip_free);
	g_clear_pointer (&self->chunks, g_ptr_array_unref);
	g_clear_pointer (&self->entries, g_ptr_array_unref);
	g_clear_pointer (&self->manifest, vmi_ova_manifest_free);
	g_clear_pointer (&self->ovf, vmi_ovf_free);
	g_clear_pointer (&self->by_name, g_hash_table_unref);
	g_clear_pointer (&self->members, g_ptr_array_unref);
	g_clear_pointer (&self->unsafe_reasons, g_ptr_array_unref);
	g_clear_pointer (&self->missing, g_ptr_array_unref);
	g_clear_pointer (&self->size_mismatch, g_ptr_array_unref);
	g_clear_pointer (&self->writer, vmi_ova_writer_free);
	g_free (self);
}

static VmiImage *
ova_create (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	VmiOvaWriter *writer = vmi_ova_writer_new (fd, virtual_size, options, error);
	VmiImage *self;

	if (writer == NULL)
		return NULL;
	self = g_new0 (VmiImage, 1);
	self->writer = writer;
	return self;
}

static gboolean
ova_write (VmiImage *self, guint64 offset, const void *buf, gsize len, GError **error)
{
	return vmi_ova_writer_write (self->writer, offset, buf, len, error);
}

static gboolean
ova_finish (VmiImage *self, GError **error)
{
	return vmi_ova_writer_finish (self->writer, error);
}

const VmiFormatPlugin vmi_ova_plugin = {
	VMI_OVA_IDENTITY,
	.init = vmi_ovf_init,
	.probe = vmi_ova_probe,
	.open = ova_open,
	.get_info = ova_get_info,
	.read_member = ova_read_member,
	.close = ova_close,
	.create = ova_create,
	.write = ova_write,
	.finish = ova_finish,
};

VMI_PLUGIN_DEFINE (vmi_ova_plugin)
