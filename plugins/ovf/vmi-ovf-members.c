/* The files of a package as the members of a container, shared by the ovf and ova plugins. */
#include <string.h>

#include "vmi-ovf-parse.h"

static gboolean
ovf_entries_have (GPtrArray *entries, const VmiOvfFile *file)
{
	for (guint i = 0; i < entries->len; i++) {
		const VmiOvfEntry *entry = g_ptr_array_index (entries, i);

		if (entry->file == file)
			return TRUE;
	}
	return FALSE;
}

static void
ovf_entries_add (GPtrArray *entries, const VmiOvfFile *file, const VmiOvfDisk *disk)
{
	VmiOvfEntry *entry;

	if (entries->len >= VMI_OVF_MAX_MEMBERS || ovf_entries_have (entries, file))
		return;
	entry = g_new0 (VmiOvfEntry, 1);
	entry->file = file;
	entry->disk = disk;
	g_ptr_array_add (entries, entry);
}

GPtrArray *
vmi_ovf_entries (const VmiOvf *self)
{
	GPtrArray *entries = g_ptr_array_new_with_free_func (g_free);

	for (guint i = 0; i < self->disks->len; i++) {
		const VmiOvfDisk *disk = g_ptr_array_index (self->disks, i);

		/* a disk without a file is created empty by the importer: nothing to read */
		if (disk->file != NULL)
			ovf_entries_add (entries, disk->file, disk);
	}
	for (guint i = 0; i < self->files->len; i++)
		ovf_entries_add (entries, g_ptr_array_index (self->files, i), NULL);
	return entries;
}

gboolean
vmi_ovf_entry_is_gzip (const VmiOvfEntry *entry)
{
	return g_strcmp0 (entry->file->compression, "gzip") == 0;
}

VmiMember *
vmi_ovf_member_new (const VmiOvfEntry *entry, VmiMemberLocation location)
{
	const VmiOvfFile *file = entry->file;
	const VmiOvfDisk *disk = entry->disk;
	VmiMember *member = vmi_member_new (file->href, disk != NULL ? "disk" : "other", location);
	GVariantDict *facts = member->facts;

	g_variant_dict_insert (facts, "href", "s", file->href);
	g_variant_dict_insert (facts, "file-id", "s", file->id);
	if (file->size >= 0)
		g_variant_dict_insert (facts, "file-size", "t", (guint64) file->size);
	if (file->compression != NULL)
		g_variant_dict_insert (facts, "compression", "s", file->compression);
	if (file->chunk_size >= 0)
		g_variant_dict_insert (facts, "chunk-size", "t", (guint64) file->chunk_size);
	if (disk == NULL)
		return member;
	g_variant_dict_insert (facts, "disk-id", "s", disk->id);
	if (disk->format != NULL)
		g_variant_dict_insert (facts, "format", "s", disk->format);
	g_variant_dict_insert (facts, "format-name", "s", disk->format_name);
	if (disk->capacity != NULL)
		g_variant_dict_insert (facts, "capacity", "s", disk->capacity);
	if (disk->capacity_units != NULL)
		g_variant_dict_insert (facts, "capacity-units", "s", disk->capacity_units);
	if (disk->capacity_known)
		g_variant_dict_insert (facts, "capacity-bytes", "t", disk->capacity_bytes);
	if (disk->populated_size >= 0)
		g_variant_dict_insert (facts, "populated-size", "t", (guint64) disk->populated_size);
	return member;
}

const char *
vmi_ovf_disk_format (const VmiOvf *self)
{
	static const char *const names[] = { "qcow2", "vhdx", "vhd", "vdi", "raw" };
	const VmiOvfDisk *disk;

	if (self->disks->len == 0)
		return NULL;
	disk = g_ptr_array_index (self->disks, 0);
	if (g_str_has_prefix (disk->format_name, "vmdk"))
		return "vmdk";
	for (gsize i = 0; i < G_N_ELEMENTS (names); i++) {
		if (strcmp (disk->format_name, names[i]) == 0)
			return names[i];
	}
	return NULL;
}
