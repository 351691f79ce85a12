#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmi-members.h"
#include "vmi-source-private.h"

/* Bytes asked of read_member at once, and the blocks written only when not all zero. */
#define VMI_MEMBERS_READ_SIZE (1u << 20)
#define VMI_MEMBERS_BLOCK (64u * 1024u)

static const char *
vmi_members_location_name (VmiMemberLocation location)
{
	switch (location) {
	case VMI_MEMBER_STORED:
		return "stored";
	case VMI_MEMBER_STREAM:
		return "stream";
	case VMI_MEMBER_SIBLING:
		return "sibling";
	case VMI_MEMBER_ABSENT:
	default:
		return "absent";
	}
}

/* The suffix of the D-Bus error name (org.vmimaged.VMImage1.Error.<Name>) an error maps to. */
static const char *
vmi_members_error_name (const GError *error)
{
	static const char *const names[] = {
		[VMI_ERROR_FAILED] = "Failed",
		[VMI_ERROR_NOT_AUTHORIZED] = "NotAuthorized",
		[VMI_ERROR_ACCESS_DENIED] = "AccessDenied",
		[VMI_ERROR_UNKNOWN_FORMAT] = "UnknownFormat",
		[VMI_ERROR_CORRUPT_IMAGE] = "CorruptImage",
		[VMI_ERROR_UNSAFE_IMAGE] = "UnsafeImage",
		[VMI_ERROR_NOT_SUPPORTED] = "NotSupported",
		[VMI_ERROR_INVALID_ARGUMENT] = "InvalidArgument",
		[VMI_ERROR_EXISTS] = "Exists",
		[VMI_ERROR_CANCELLED] = "Cancelled",
		[VMI_ERROR_NO_SPACE] = "NoSpace",
	};

	if (error->domain == VMI_ERROR && error->code >= 0 && error->code < VMI_ERROR_LAST)
		return names[error->code];
	if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
		return "AccessDenied";
	if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return "Cancelled";
	return "Failed";
}

static gboolean
vmi_members_is_zero (const guint8 *buf, gsize len)
{
	for (gsize i = 0; i < len; i++) {
		if (buf[i] != 0)
			return FALSE;
	}
	return TRUE;
}

/*
 * An unnamed file for a member's bytes: in memory for Inspect's bounded head, on disk for a
 * whole member (O_TMPFILE, so nothing is ever visible by name): in $TMPDIR, else in /var/tmp,
 * which is for large files and, unlike a tmpfs /tmp, not in memory.
 */
static int
vmi_members_temp_file (gboolean in_memory, GError **error)
{
	const char *const dirs[] = { g_getenv ("TMPDIR"), "/var/tmp", "/tmp" };
	int fd = -1;
	int errsv;

	for (gsize i = 0; !in_memory && fd < 0 && i < G_N_ELEMENTS (dirs); i++) {
		if (dirs[i] != NULL && dirs[i][0] != '\0')
			fd = open (dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		fd = memfd_create ("vmimaged-member", MFD_CLOEXEC);
	if (fd >= 0)
		return fd;
	errsv = errno;
	g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
		     "cannot make a temporary file for a compressed member: %s", g_strerror (errsv));
	return -1;
}

static gboolean
vmi_members_pwrite (int fd, const guint8 *buf, gsize len, guint64 offset, GError **error)
{
	while (len > 0) {
		ssize_t n = pwrite (fd, buf, len, (off_t) offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int errsv = n < 0 ? errno : ENOSPC;

			g_set_error (error, VMI_ERROR,
				     errsv == ENOSPC || errsv == EDQUOT ? VMI_ERROR_NO_SPACE
									: VMI_ERROR_FAILED,
				     "cannot write the temporary copy of a compressed member: %s",
				     g_strerror (errsv));
			return FALSE;
		}
		buf += n;
		len -= (gsize) n;
		offset += (guint64) n;
	}
	return TRUE;
}

/* Writes the blocks of buf (the member from pos on) that are not all zero: holes stay holes. */
static gboolean
vmi_members_write_data (int fd, const guint8 *buf, gsize len, guint64 pos, GError **error)
{
	for (gsize done = 0; done < len;) {
		gsize n = MIN (len - done, VMI_MEMBERS_BLOCK - (gsize) ((pos + done) % VMI_MEMBERS_BLOCK));

		if (!vmi_members_is_zero (buf + done, n) &&
		    !vmi_members_pwrite (fd, buf + done, n, pos + done, error))
			return FALSE;
		done += n;
	}
	return TRUE;
}

/* Fills buf from read_member at pos; *got < len only at the member's end. */
static gboolean
vmi_members_read (VmiSource *container, guint index, guint64 pos, guint8 *buf, gsize len,
		  gsize *got, GError **error)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (container);
	VmiImage *image = vmi_source_get_image (container);

	*got = 0;
	while (*got < len) {
		gsize n = 0;

		if (!plugin->read_member (image, index, pos + *got, buf + *got, len - *got, &n, error))
			return FALSE;
		if (n == 0)
			break;
		if (n > len - *got) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
				     "the %s plugin returned more bytes of a member than asked",
				     plugin->name);
			return FALSE;
		}
		*got += n;
	}
	return TRUE;
}

/*
 * Copies a STREAM member into a new temporary file through read_member, up to limit bytes, and
 * returns its descriptor. The file has the member's size when the container knows it.
 */
static int
vmi_members_copy_stream (VmiSource *container, guint index, const VmiMember *member,
			 gboolean head_only, VmiMemberCopy *copy, GCancellable *cancellable,
			 GError **error)
{
	guint64 limit = head_only ? VMI_MEMBERS_INSPECT_HEAD : VMI_MEMBERS_MAX_STREAM;
	g_autofree guint8 *buf = NULL;
	guint64 pos = 0, end;
	gboolean complete = FALSE;
	int fd;

	if (vmi_source_get_plugin (container)->read_member == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the %s plugin reports a compressed member but cannot read it",
			     vmi_source_get_plugin (container)->name);
		return -1;
	}
	fd = vmi_members_temp_file (head_only, error);
	if (fd < 0)
		return -1;
	buf = g_malloc (VMI_MEMBERS_READ_SIZE);
	while (pos < limit) {
		gsize want = (gsize) MIN ((guint64) VMI_MEMBERS_READ_SIZE, limit - pos);
		gsize got = 0;

		if (g_cancellable_is_cancelled (cancellable)) {
			close (fd);
			g_set_error (error, VMI_ERROR, VMI_ERROR_CANCELLED,
				     "cancelled while inflating the member \"%s\"", member->name);
			return -1;
		}
		if (!vmi_members_read (container, index, pos, buf, want, &got, error) ||
		    !vmi_members_write_data (fd, buf, got, pos, error)) {
			close (fd);
			return -1;
		}
		pos += got;
		if (got < want) {
			complete = TRUE;
			break;
		}
	}
	if (!complete && !head_only) {
		close (fd);
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
			     "the member \"%s\" inflates to more than %" G_GUINT64_FORMAT " bytes",
			     member->name, limit);
		return -1;
	}
	if (complete && member->size != 0 && member->size != pos) {
		close (fd);
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the member \"%s\" holds %" G_GUINT64_FORMAT " bytes, but its container "
			     "says %" G_GUINT64_FORMAT,
			     member->name, pos, member->size);
		return -1;
	}
	/* a head whose member's size is known reads as the member, with zeros past the head (a
	 * size the container may have made up is held to what a whole copy could be) */
	end = complete ? pos : MAX (pos, MIN (member->size, VMI_MEMBERS_MAX_STREAM));
	if (ftruncate (fd, (off_t) end) != 0) {
		int errsv = errno;

		close (fd);
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "cannot size the temporary copy of \"%s\": %s", member->name,
			     g_strerror (errsv));
		return -1;
	}
	if (copy != NULL) {
		copy->copied = pos;
		copy->complete = complete;
	}
	return fd;
}

/*
 * Whether classify-only formats (aki, ari, ami) may claim the member: a bundle's kernel or
 * ramdisk, or a member the container names with such a format ("disk-format": "ami" in a UEC
 * tarball). A disk of an OVA stays raw, as any disk does unless asked.
 */
static gboolean
vmi_members_classify (VmiRegistry *registry, const VmiMember *member)
{
	const VmiFormatPlugin *plugin;
	const char *named = NULL;

	if (g_strcmp0 (member->role, "disk") != 0)
		return TRUE;
	if (!g_variant_dict_lookup (member->facts, "disk-format", "&s", &named))
		return FALSE;
	plugin = vmi_registry_lookup (registry, named, NULL);
	return plugin != NULL && (plugin->flags & VMI_FORMAT_CLASSIFY_ONLY) != 0;
}

VmiSource *
vmi_members_open (VmiSource *container, guint index, gboolean head_only, VmiMemberCopy *copy,
		  GCancellable *cancellable, GError **error)
{
	const VmiImageInfo *info = vmi_source_get_info (container);
	VmiRegistry *registry = vmi_source_get_registry (container);
	guint depth = vmi_source_get_depth (container) + 1;
	const VmiMember *member;
	gboolean classify;
	guint64 end;
	VmiSource *source;
	int fd;

	if (index >= info->members->len) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the %s image has %u members; there is no member %u",
			     vmi_source_get_plugin (container)->name, info->members->len, index);
		return NULL;
	}
	member = g_ptr_array_index (info->members, index);
	if (registry == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "the container was opened with a known plugin, without the formats "
			     "to detect its member \"%s\"",
			     member->name);
		return NULL;
	}
	if (depth > VMI_MEMBERS_MAX_DEPTH) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_UNSAFE_IMAGE,
			     "the member \"%s\" is nested more than %u levels deep; it is not opened",
			     member->name, VMI_MEMBERS_MAX_DEPTH);
		return NULL;
	}
	classify = vmi_members_classify (registry, member);
	switch (member->location) {
	case VMI_MEMBER_STORED:
		if (!g_uint64_checked_add (&end, member->offset, member->size) ||
		    end > vmi_source_get_file_size (container)) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
				     "the member \"%s\" (%" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
				     ") lies beyond the end of its %" G_GUINT64_FORMAT "-byte container",
				     member->name, member->size, member->offset,
				     vmi_source_get_file_size (container));
			return NULL;
		}
		if (copy != NULL) {
			copy->copied = 0;
			copy->complete = TRUE;
		}
		return vmi_source_open_member_range (registry, vmi_source_get_fd (container), -1,
						     vmi_source_get_offset (container) + member->offset,
						     member->size, depth, classify, cancellable, error);
	case VMI_MEMBER_SIBLING:
		fd = vmi_source_open_sibling_fd (container, member->name, error);
		if (fd < 0)
			return NULL;
		source = vmi_source_open_member_beside (registry, container, fd, depth, classify,
							cancellable, error);
		close (fd);
		return source;
	case VMI_MEMBER_STREAM:
		fd = vmi_members_copy_stream (container, index, member, head_only, copy, cancellable,
					      error);
		if (fd < 0)
			return NULL;
		source = vmi_source_open_member_range (registry, fd, -1, 0, G_MAXUINT64, depth,
						       classify, cancellable, error);
		close (fd);
		return source;
	case VMI_MEMBER_ABSENT:
	default:
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the %s names the member \"%s\" but does not hold it",
			     vmi_source_get_plugin (container)->name, member->name);
		return NULL;
	}
}

static gint
vmi_members_find_disk (GPtrArray *members, guint64 disk, guint *n_disks)
{
	gint found = -1;

	*n_disks = 0;
	for (guint i = 0; i < members->len; i++) {
		const VmiMember *member = g_ptr_array_index (members, i);

		if (g_strcmp0 (member->role, "disk") != 0)
			continue;
		if (*n_disks == disk)
			found = (gint) i;
		++*n_disks;
	}
	return found;
}

/* By name first; a name that is no member's may be a role ("kernel": the first kernel). */
static gint
vmi_members_find_name (GPtrArray *members, const char *name)
{
	for (guint i = 0; i < members->len; i++) {
		const VmiMember *member = g_ptr_array_index (members, i);

		if (g_strcmp0 (member->name, name) == 0)
			return (gint) i;
	}
	for (guint i = 0; i < members->len; i++) {
		const VmiMember *member = g_ptr_array_index (members, i);

		if (g_strcmp0 (member->role, name) == 0)
			return (gint) i;
	}
	return -1;
}

static char *
vmi_members_names (GPtrArray *members)
{
	g_autoptr(GString) names = g_string_new (NULL);

	for (guint i = 0; i < members->len && i < 16; i++) {
		const VmiMember *member = g_ptr_array_index (members, i);

		g_string_append_printf (names, "%s\"%s\" (%s)", i > 0 ? ", " : "", member->name,
					member->role);
	}
	if (members->len > 16)
		g_string_append (names, ", ...");
	return g_string_free (g_steal_pointer (&names), FALSE);
}

gboolean
vmi_members_select (VmiSource *source, GVariant *options, gint *index, GError **error)
{
	const VmiFormatPlugin *plugin = vmi_source_get_plugin (source);
	GPtrArray *members = vmi_source_get_info (source)->members;
	const char *name = NULL;
	guint64 disk = 0;
	gboolean has_disk, has_member;
	const VmiMember *chosen;
	guint n_disks = 0;

	*index = -1;
	has_disk = g_variant_lookup (options, "disk", "t", &disk);
	has_member = g_variant_lookup (options, "member", "&s", &name);
	if (has_disk && has_member) {
		g_set_error_literal (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "options \"disk\" and \"member\" both choose what to read; give "
				     "one of them");
		return FALSE;
	}
	if (!has_disk && !has_member) {
		/* a container that is no disk itself gives its first disk */
		if (members->len == 0 || (plugin->flags & VMI_FORMAT_CAN_READ) != 0)
			return TRUE;
		if (vmi_members_find_disk (members, 0, &n_disks) < 0) {
			g_autofree char *names = vmi_members_names (members);

			g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "the %s holds no disk; choose a member with option \"member\": %s",
				     plugin->name, names);
			return FALSE;
		}
	}
	if (members->len == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "option \"%s\" chooses a member of a container, but this %s image has none",
			     has_disk ? "disk" : "member", plugin->name);
		return FALSE;
	}
	if (has_member) {
		*index = vmi_members_find_name (members, name);
		if (*index < 0) {
			g_autofree char *names = vmi_members_names (members);

			g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "the %s has no member named \"%s\" and none of that role; its "
				     "members: %s",
				     plugin->name, name, names);
			return FALSE;
		}
	} else {
		*index = vmi_members_find_disk (members, disk, &n_disks);
		if (*index < 0) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
				     "the %s holds %u disk%s (numbered from 0); there is no disk %" G_GUINT64_FORMAT,
				     plugin->name, n_disks, n_disks == 1 ? "" : "s", disk);
			return FALSE;
		}
	}
	chosen = g_ptr_array_index (members, (guint) *index);
	if (chosen->location == VMI_MEMBER_ABSENT) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_CORRUPT_IMAGE,
			     "the %s names the member \"%s\" but does not hold it", plugin->name,
			     chosen->name);
		*index = -1;
		return FALSE;
	}
	return TRUE;
}

gboolean
vmi_members_open_chosen (VmiSource *source, GVariant *options, VmiSource **member,
			 GCancellable *cancellable, GError **error)
{
	const VmiMember *chosen;
	gint index = -1;

	*member = NULL;
	if (!vmi_members_select (source, options, &index, error))
		return FALSE;
	if (index < 0)
		return TRUE;
	chosen = g_ptr_array_index (vmi_source_get_info (source)->members, (guint) index);
	*member = vmi_members_open (source, (guint) index, FALSE, NULL, cancellable, error);
	if (*member == NULL) {
		g_prefix_error (error, "the %s's member \"%s\": ", vmi_source_get_plugin (source)->name,
				chosen->name);
		return FALSE;
	}
	return TRUE;
}

static void
vmi_members_add_error (GVariantDict *dict, const GError *error)
{
	g_variant_dict_insert (dict, "error", "s", error->message);
	g_variant_dict_insert (dict, "error-name", "s", vmi_members_error_name (error));
}

static GVariant *
vmi_members_describe (VmiSource *source, guint index, gboolean inspect, GCancellable *cancellable)
{
	VmiMember *member = g_ptr_array_index (vmi_source_get_info (source)->members, index);
	g_autoptr(GVariant) facts = g_variant_ref_sink (g_variant_dict_end (member->facts));
	g_autoptr(VmiSource) opened = NULL;
	g_autoptr(GError) error = NULL;
	VmiMemberCopy copy = { 0 };
	GVariantDict dict;

	/* ending the dict emptied it: a new one for whoever reads the info after us */
	g_variant_dict_unref (member->facts);
	member->facts = g_variant_dict_new (facts);
	g_variant_dict_init (&dict, NULL);
	g_variant_dict_insert (&dict, "name", "s", member->name);
	g_variant_dict_insert (&dict, "role", "s", member->role != NULL ? member->role : "other");
	g_variant_dict_insert (&dict, "location", "s", vmi_members_location_name (member->location));
	g_variant_dict_insert (&dict, "size", "t", member->size);
	if (member->location == VMI_MEMBER_STORED)
		g_variant_dict_insert (&dict, "offset", "t", member->offset);
	g_variant_dict_insert_value (&dict, "facts", facts);
	if (!inspect) {
		g_variant_dict_insert (&dict, "error", "s",
				       "not inspected: a container's first members only are");
		g_variant_dict_insert (&dict, "error-name", "s", "NotSupported");
		return g_variant_dict_end (&dict);
	}
	opened = vmi_members_open (source, index, TRUE, &copy, cancellable, &error);
	if (member->location == VMI_MEMBER_STREAM && (opened != NULL || copy.copied > 0)) {
		g_variant_dict_insert (&dict, "copied-bytes", "t", copy.copied);
		g_variant_dict_insert (&dict, "copy-complete", "b", copy.complete);
	}
	if (opened == NULL) {
		vmi_members_add_error (&dict, error);
	} else {
		g_autoptr(GVariant) inspection = vmi_source_to_variant (opened);

		g_variant_dict_insert_value (&dict, "inspection", inspection);
	}
	return g_variant_dict_end (&dict);
}

GVariant *
vmi_members_to_variant (VmiSource *source, GCancellable *cancellable)
{
	GPtrArray *members = vmi_source_get_info (source)->members;
	GVariantBuilder builder;

	g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{sv}"));
	for (guint i = 0; i < members->len && i < VMI_MEMBERS_MAX_LISTED; i++)
		g_variant_builder_add_value (&builder,
					     vmi_members_describe (source, i,
								   i < VMI_MEMBERS_MAX_INSPECTED,
								   cancellable));
	return g_variant_builder_end (&builder);
}

const char *
vmi_members_first_disk_format (GVariant *members)
{
	for (gsize i = 0; i < g_variant_n_children (members); i++) {
		g_autoptr(GVariant) member = g_variant_get_child_value (members, i);
		g_autoptr(GVariant) inspection = NULL;
		const char *role = NULL;
		const char *format = NULL;

		if (!g_variant_lookup (member, "role", "&s", &role) || g_strcmp0 (role, "disk") != 0)
			continue;
		inspection = g_variant_lookup_value (member, "inspection", G_VARIANT_TYPE_VARDICT);
		/* strings of a serialised child point into the parent's data, which outlives us */
		if (inspection != NULL && g_variant_lookup (inspection, "disk-format", "&s", &format))
			return format;
	}
	return NULL;
}
