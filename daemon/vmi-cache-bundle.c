#include <string.h>

#include "vmi-cache-bundle.h"
#include "vmi-members.h"

/* OVF memory is in bytes; Glance's min_ram in MiB. */
#define VMI_BUNDLE_MIB (G_GUINT64_CONSTANT (1) << 20)
/* A member of unknown size weighs this much in the progress. */
#define VMI_BUNDLE_UNKNOWN_WEIGHT VMI_BUNDLE_MIB

static gboolean
vmi_bundle_role_is (const VmiMember *member, const char *role)
{
	return member->role != NULL && strcmp (member->role, role) == 0;
}

/* A boot loader shipped beside the kernel (UEC's *-loader) is not the kernel to boot. */
static gboolean
vmi_bundle_is_loader (const VmiMember *member)
{
	gboolean loader = FALSE;

	return g_variant_dict_lookup (member->facts, "loader", "b", &loader) && loader;
}

gboolean
vmi_cache_bundle_is_container (VmiSource *source)
{
	const VmiImageInfo *info = vmi_source_get_info (source);

	if (info == NULL || info->members == NULL)
		return FALSE;
	for (guint i = 0; i < info->members->len; i++) {
		const VmiMember *member = g_ptr_array_index (info->members, i);

		if (vmi_bundle_role_is (member, "disk") || vmi_bundle_role_is (member, "kernel") ||
		    vmi_bundle_role_is (member, "ramdisk"))
			return TRUE;
	}
	return FALSE;
}

/* What one member becomes. */
typedef struct {
	guint index;			/* in info->members */
	const VmiMember *member;
	const VmiFormatPlugin *store_format;
	GHashTable *properties;		/* string → string */
	guint64 weight;			/* for the progress */
	VmiCacheEntry *entry;		/* once imported */
} VmiBundlePart;

static void
vmi_bundle_part_free (gpointer data)
{
	VmiBundlePart *part = data;

	g_hash_table_unref (part->properties);
	g_clear_pointer (&part->entry, vmi_cache_entry_unref);
	g_free (part);
}

static VmiBundlePart *
vmi_bundle_part_new (guint index, const VmiMember *member, const VmiFormatPlugin *store_format)
{
	VmiBundlePart *part = g_new0 (VmiBundlePart, 1);

	part->index = index;
	part->member = member;
	part->store_format = store_format;
	part->properties = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
	part->weight = member->size > 0 ? member->size : VMI_BUNDLE_UNKNOWN_WEIGHT;
	return part;
}

static void
vmi_bundle_set (GHashTable *properties, const char *key, const char *value)
{
	g_autofree char *valid = NULL;

	if (value == NULL || *value == '\0')
		return;
	/* Facts come from the container's text: keep only what the cache accepts. */
	valid = g_utf8_make_valid (value, -1);
	if (!vmi_cache_entry_check_property (key, valid, NULL))
		return;
	g_hash_table_insert (properties, g_strdup (key), g_steal_pointer (&valid));
}

static void
vmi_bundle_set_u64 (GHashTable *properties, const char *key, guint64 value)
{
	g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT, value);

	vmi_bundle_set (properties, key, text);
}

/* Glance's os_type ("linux", "windows") from what the OVF says, when it says it clearly. */
static const char *
vmi_bundle_os_family (const char *os_type, const char *description)
{
	static const char *const linuxes[] = { "linux", "ubuntu", "debian", "centos", "rhel",
					       "redhat", "fedora", "suse", "sles", "oracle",
					       "rocky", "alma", "mandrake", "asianux", NULL };
	g_autofree char *both = g_strconcat (os_type != NULL ? os_type : "", " ",
					     description != NULL ? description : "", NULL);
	g_autofree char *text = g_ascii_strdown (both, -1);

	if (strstr (text, "win") != NULL)
		return "windows";
	for (guint i = 0; linuxes[i] != NULL; i++) {
		if (strstr (text, linuxes[i]) != NULL)
			return "linux";
	}
	return NULL;
}

/*
 * The facts of the OVF's first virtual system, as properties: ovf_vm_name, ovf_os_type,
 * ovf_os_id, ovf_os_description, ovf_cpus, ovf_memory_mib, and Glance's os_type, min_ram and
 * hw_firmware_type where the OVF says enough.
 */
static void
vmi_bundle_ovf_properties (VmiSource *container, GHashTable *properties)
{
	const VmiImageInfo *info = vmi_source_get_info (container);
	g_autoptr(GVariant) systems = NULL;
	g_autoptr(GVariant) system = NULL;
	const char *text = NULL;
	const char *os_type = NULL;
	const char *description = NULL;
	guint32 os_id = 0;
	guint64 number = 0;

	if (info->format_specific == NULL)
		return;
	systems = g_variant_dict_lookup_value (info->format_specific, "virtual-systems",
					       G_VARIANT_TYPE ("aa{sv}"));
	if (systems == NULL || g_variant_n_children (systems) == 0)
		return;
	system = g_variant_get_child_value (systems, 0);
	if (g_variant_lookup (system, "name", "&s", &text))
		vmi_bundle_set (properties, "ovf_vm_name", text);
	g_variant_lookup (system, "os-type", "&s", &os_type);
	g_variant_lookup (system, "os-description", "&s", &description);
	vmi_bundle_set (properties, "ovf_os_type", os_type);
	vmi_bundle_set (properties, "ovf_os_description", description);
	if (g_variant_lookup (system, "os-id", "u", &os_id))
		vmi_bundle_set_u64 (properties, "ovf_os_id", os_id);
	vmi_bundle_set (properties, "os_type", vmi_bundle_os_family (os_type, description));
	if (g_variant_lookup (system, "cpus", "t", &number))
		vmi_bundle_set_u64 (properties, "ovf_cpus", number);
	if (g_variant_lookup (system, "memory", "t", &number)) {
		vmi_bundle_set_u64 (properties, "ovf_memory_mib", number / VMI_BUNDLE_MIB);
		vmi_bundle_set_u64 (properties, "min_ram", number / VMI_BUNDLE_MIB);
	}
	if (g_variant_lookup (system, "firmware", "&s", &text))
		vmi_bundle_set (properties, "hw_firmware_type",
				strcmp (text, "efi") == 0 ? "uefi" : text);
}

/* Which members become entries, in the order they are imported: kernel and ramdisk first, so
 * that the machine image can name them. */
static GPtrArray *
vmi_bundle_plan (VmiSource *container, const VmiFormatPlugin *disk_format,
		 const VmiFormatPlugin *raw_format, VmiBundlePart **kernel, VmiBundlePart **ramdisk)
{
	const VmiImageInfo *info = vmi_source_get_info (container);
	g_autoptr(GPtrArray) parts = g_ptr_array_new_with_free_func (vmi_bundle_part_free);
	g_autoptr(GHashTable) system = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
							       g_free);
	guint disks = 0;

	*kernel = *ramdisk = NULL;
	vmi_bundle_ovf_properties (container, system);
	for (guint i = 0; i < info->members->len; i++) {
		const VmiMember *member = g_ptr_array_index (info->members, i);

		if (vmi_bundle_role_is (member, "kernel") && *kernel == NULL &&
		    !vmi_bundle_is_loader (member)) {
			*kernel = vmi_bundle_part_new (i, member, raw_format);
			g_ptr_array_add (parts, *kernel);
		} else if (vmi_bundle_role_is (member, "ramdisk") && *ramdisk == NULL) {
			*ramdisk = vmi_bundle_part_new (i, member, raw_format);
			g_ptr_array_add (parts, *ramdisk);
		}
	}
	for (guint i = 0; i < info->members->len; i++) {
		const VmiMember *member = g_ptr_array_index (info->members, i);
		VmiBundlePart *part;
		GHashTableIter iter;
		gpointer key, value;

		if (!vmi_bundle_role_is (member, "disk"))
			continue;
		part = vmi_bundle_part_new (i, member, disk_format);
		g_hash_table_iter_init (&iter, system);
		while (g_hash_table_iter_next (&iter, &key, &value))
			g_hash_table_insert (part->properties, g_strdup (key), g_strdup (value));
		vmi_bundle_set_u64 (part->properties, "bundle_disk", ++disks);
		g_ptr_array_add (parts, part);
	}
	return g_steal_pointer (&parts);
}

/* "NAME/MEMBER", within the limit of a name. */
static char *
vmi_bundle_entry_name (const char *name, const VmiMember *member, guint index)
{
	g_autofree char *member_name = g_utf8_make_valid (member->name, -1);
	char *full = g_strconcat (name != NULL ? name : "", name != NULL ? "/" : "", member_name,
				  NULL);

	if (vmi_cache_entry_check_name (full, NULL))
		return full;
	g_free (full);
	return g_strdup_printf ("%s%smember %u", name != NULL ? name : "", name != NULL ? "/" : "",
				index);
}

typedef struct {
	VmiProgressFunc func;
	gpointer data;
	guint64 done;	/* weight of the members imported so far */
	guint64 weight; /* of the member being imported */
	guint64 total;
} VmiBundleProgress;

static void
vmi_bundle_progress (guint64 done, guint64 total, gpointer user_data)
{
	VmiBundleProgress *progress = user_data;
	guint64 part = 0;

	if (progress->func == NULL)
		return;
	if (total > 0)
		part = (guint64) ((double) progress->weight * ((double) MIN (done, total) / (double) total));
	progress->func (progress->done + part, progress->total, progress->data);
}

/* Imports one member; the entry goes to part->entry. */
static gboolean
vmi_bundle_import_part (VmiCache *cache, VmiSource *container, VmiBundlePart *part,
			const char *name, const char *origin, GHashTable *properties,
			VmiBundleProgress *progress, GCancellable *cancellable, GError **error)
{
	g_autoptr(VmiSource) source = NULL;
	g_autofree char *entry_name = vmi_bundle_entry_name (name, part->member, part->index);
	GHashTableIter iter;
	gpointer key, value;

	source = vmi_members_open (container, part->index, FALSE, NULL, cancellable, error);
	if (source == NULL) {
		g_prefix_error (error, "cannot read %s in the container: ", part->member->name);
		return FALSE;
	}
	if ((vmi_source_get_plugin (source)->flags & VMI_FORMAT_CAN_READ) == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED,
			     "%s in the container is a %s image, which vmimaged cannot read",
			     part->member->name, vmi_source_get_plugin (source)->name);
		return FALSE;
	}
	vmi_bundle_set (part->properties, "bundle_member", part->member->name);
	/* The caller's properties win over the container's. */
	if (properties != NULL) {
		g_hash_table_iter_init (&iter, properties);
		while (g_hash_table_iter_next (&iter, &key, &value))
			g_hash_table_insert (part->properties, g_strdup (key), g_strdup (value));
	}
	part->entry = vmi_cache_import (cache, source, part->store_format, entry_name, origin,
					part->properties, vmi_bundle_progress, progress,
					cancellable, error);
	if (part->entry == NULL) {
		g_prefix_error (error, "%s: ", part->member->name);
		return FALSE;
	}
	return TRUE;
}

/* Removes what this import added (not what was there before it). */
static void
vmi_bundle_roll_back (VmiCache *cache, GPtrArray *parts, GHashTable *before)
{
	for (guint i = 0; i < parts->len; i++) {
		VmiBundlePart *part = g_ptr_array_index (parts, i);
		g_autoptr(GError) error = NULL;
		const char *id;

		if (part->entry == NULL)
			continue;
		id = vmi_cache_entry_get_id (part->entry);
		if (g_hash_table_contains (before, id))
			continue;
		if (!vmi_cache_remove (cache, id, &error))
			g_message ("cannot remove %s, imported from a container whose import failed: "
				   "%s", id, error->message);
	}
}

static GHashTable *
vmi_bundle_ids (VmiCache *cache)
{
	g_autoptr(GPtrArray) entries = vmi_cache_list (cache);
	GHashTable *ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

	for (guint i = 0; i < entries->len; i++)
		g_hash_table_add (ids, g_strdup (vmi_cache_entry_get_id (entries->pdata[i])));
	return ids;
}

GPtrArray *
vmi_cache_import_bundle (VmiCache *cache, VmiSource *container,
			 const VmiFormatPlugin *disk_format, const VmiFormatPlugin *raw_format,
			 const char *name, const char *origin, GHashTable *properties,
			 VmiProgressFunc progress_func, gpointer user_data,
			 GCancellable *cancellable, GError **error)
{
	VmiBundlePart *kernel = NULL, *ramdisk = NULL;
	g_autoptr(GPtrArray) parts = vmi_bundle_plan (container, disk_format, raw_format, &kernel,
						      &ramdisk);
	g_autoptr(GHashTable) before = vmi_bundle_ids (cache);
	g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_free);
	g_autoptr(GPtrArray) entries = NULL;
	VmiBundleProgress progress = { progress_func, user_data, 0, 0, 0 };
	gboolean ok = TRUE;

	if (parts->len == 0) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_INVALID_ARGUMENT,
			     "the %s container holds no disk, kernel or ramdisk to import",
			     vmi_source_get_plugin (container)->name);
		return NULL;
	}
	for (guint i = 0; i < parts->len; i++) {
		VmiBundlePart *part = g_ptr_array_index (parts, i);

		progress.total += part->weight;
	}
	for (guint i = 0; ok && i < parts->len; i++) {
		VmiBundlePart *part = g_ptr_array_index (parts, i);

		/* The machine image names the kernel and ramdisk imported before it. */
		if (vmi_bundle_role_is (part->member, "disk")) {
			if (kernel != NULL && kernel->entry != NULL)
				g_hash_table_insert (part->properties, g_strdup ("kernel_id"),
						     g_strdup (vmi_cache_entry_get_id (kernel->entry)));
			if (ramdisk != NULL && ramdisk->entry != NULL)
				g_hash_table_insert (part->properties, g_strdup ("ramdisk_id"),
						     g_strdup (vmi_cache_entry_get_id (ramdisk->entry)));
		}
		progress.weight = part->weight;
		ok = vmi_bundle_import_part (cache, container, part, name, origin, properties,
					     &progress, cancellable, error);
		progress.done += part->weight;
		/* Held until the end: importing the next members must not evict this one. */
		if (ok) {
			g_autoptr(VmiCacheEntry) hold = vmi_cache_hold (
				cache, vmi_cache_entry_get_id (part->entry), error);

			ok = hold != NULL;
			if (ok)
				g_ptr_array_add (held, g_strdup (vmi_cache_entry_get_id (part->entry)));
		}
	}
	for (guint i = 0; i < held->len; i++)
		vmi_cache_release (cache, g_ptr_array_index (held, i));
	if (!ok) {
		vmi_bundle_roll_back (cache, parts, before);
		return NULL;
	}
	/* The main entry first: the first disk; then kernel and ramdisk, then the other disks. */
	entries = g_ptr_array_new_with_free_func ((GDestroyNotify) vmi_cache_entry_unref);
	for (guint i = 0; i < parts->len; i++) {
		VmiBundlePart *part = g_ptr_array_index (parts, i);

		if (vmi_bundle_role_is (part->member, "disk")) {
			g_ptr_array_add (entries, vmi_cache_entry_ref (part->entry));
			break;
		}
	}
	for (guint i = 0; i < parts->len; i++) {
		VmiBundlePart *part = g_ptr_array_index (parts, i);

		if (entries->len == 0 || part->entry != entries->pdata[0])
			g_ptr_array_add (entries, vmi_cache_entry_ref (part->entry));
	}
	return g_steal_pointer (&entries);
}
