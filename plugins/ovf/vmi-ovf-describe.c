/* The facts of a parsed descriptor as Inspect reports them (see docs/ovf-ova.md). */
#include "vmi-ovf-parse.h"

static GVariant *
ovf_strv (GPtrArray *array)
{
	return g_variant_new_strv ((const char *const *) array->pdata, array->len);
}

void
vmi_ovf_describe (const VmiOvf *self, GVariantDict *dict, VmiOvfMemberLookup lookup,
		  gpointer user_data)
{
	GVariantBuilder systems, disks, files;

	g_variant_dict_insert (dict, "ovf-version", "s", self->version);
	g_variant_dict_insert (dict, "virtual-system-collection", "b", self->collection);
	if (self->vmware_build_id != NULL)
		g_variant_dict_insert (dict, "vmware-build-id", "s", self->vmware_build_id);
	g_variant_dict_insert_value (dict, "networks", ovf_strv (self->networks));

	g_variant_builder_init (&systems, G_VARIANT_TYPE ("aa{sv}"));
	for (guint i = 0; i < self->systems->len; i++) {
		const VmiOvfSystem *s = g_ptr_array_index (self->systems, i);
		GVariantDict d;

		g_variant_dict_init (&d, NULL);
		if (s->id != NULL)
			g_variant_dict_insert (&d, "id", "s", s->id);
		if (s->name != NULL)
			g_variant_dict_insert (&d, "name", "s", s->name);
		if (s->os_id >= 0)
			g_variant_dict_insert (&d, "os-id", "u", (guint32) s->os_id);
		if (s->os_type != NULL)
			g_variant_dict_insert (&d, "os-type", "s", s->os_type);
		if (s->os_description != NULL)
			g_variant_dict_insert (&d, "os-description", "s", s->os_description);
		if (s->system_type != NULL)
			g_variant_dict_insert (&d, "virtual-system-type", "s", s->system_type);
		if (s->cpus >= 0)
			g_variant_dict_insert (&d, "cpus", "t", (guint64) s->cpus);
		if (s->memory >= 0)
			g_variant_dict_insert (&d, "memory", "t", (guint64) s->memory);
		if (s->firmware != NULL)
			g_variant_dict_insert (&d, "firmware", "s", s->firmware);
		g_variant_dict_insert_value (&d, "networks", ovf_strv (s->networks));
		g_variant_builder_add_value (&systems, g_variant_dict_end (&d));
	}
	g_variant_dict_insert_value (dict, "virtual-systems", g_variant_builder_end (&systems));

	g_variant_builder_init (&disks, G_VARIANT_TYPE ("aa{sv}"));
	for (guint i = 0; i < self->disks->len; i++) {
		const VmiOvfDisk *disk = g_ptr_array_index (self->disks, i);
		GVariantDict d;
		guint64 offset, size;

		g_variant_dict_init (&d, NULL);
		g_variant_dict_insert (&d, "id", "s", disk->id);
		if (disk->file != NULL)
			g_variant_dict_insert (&d, "href", "s", disk->file->href);
		if (disk->file != NULL && disk->file->compression != NULL)
			g_variant_dict_insert (&d, "compression", "s", disk->file->compression);
		if (disk->format != NULL)
			g_variant_dict_insert (&d, "format", "s", disk->format);
		g_variant_dict_insert (&d, "format-name", "s", disk->format_name);
		g_variant_dict_insert (&d, "capacity", "s", disk->capacity);
		if (disk->capacity_units != NULL)
			g_variant_dict_insert (&d, "capacity-units", "s", disk->capacity_units);
		if (disk->capacity_known)
			g_variant_dict_insert (&d, "capacity-bytes", "t", disk->capacity_bytes);
		if (disk->populated_size >= 0)
			g_variant_dict_insert (&d, "populated-size", "t", (guint64) disk->populated_size);
		if (lookup != NULL && disk->file != NULL &&
		    lookup (disk->file->href, &offset, &size, user_data)) {
			g_variant_dict_insert (&d, "member-offset", "t", offset);
			g_variant_dict_insert (&d, "member-size", "t", size);
		}
		g_variant_builder_add_value (&disks, g_variant_dict_end (&d));
	}
	g_variant_dict_insert_value (dict, "disks", g_variant_builder_end (&disks));

	g_variant_builder_init (&files, G_VARIANT_TYPE ("aa{sv}"));
	for (guint i = 0; i < self->files->len; i++) {
		const VmiOvfFile *file = g_ptr_array_index (self->files, i);
		GVariantDict d;

		g_variant_dict_init (&d, NULL);
		g_variant_dict_insert (&d, "id", "s", file->id);
		g_variant_dict_insert (&d, "href", "s", file->href);
		if (file->size >= 0)
			g_variant_dict_insert (&d, "size", "t", (guint64) file->size);
		if (file->compression != NULL)
			g_variant_dict_insert (&d, "compression", "s", file->compression);
		if (file->chunk_size >= 0)
			g_variant_dict_insert (&d, "chunk-size", "t", (guint64) file->chunk_size);
		g_variant_builder_add_value (&files, g_variant_dict_end (&d));
	}
	g_variant_dict_insert_value (dict, "references", g_variant_builder_end (&files));
}
