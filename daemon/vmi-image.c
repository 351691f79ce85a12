/* org.vmimaged.VMImage1.Image: the properties of one cache entry. */
#include "config.h"

#include "vmi-image.h"

struct _VmiImageImpl {
	VmiCacheImageSkeleton parent_instance;
};

G_DEFINE_TYPE (VmiImageImpl, vmi_image_impl, VMI_TYPE_CACHE_IMAGE_SKELETON)

static void
vmi_image_impl_class_init (VmiImageImplClass *klass)
{
}

static void
vmi_image_impl_init (VmiImageImpl *self)
{
}

/* The store keeps microseconds; the API promises seconds. */
static guint64
vmi_image_seconds (gint64 usec)
{
	return usec > 0 ? (guint64) (usec / G_USEC_PER_SEC) : 0;
}

static GVariant *
vmi_image_properties_variant (GHashTable *properties)
{
	g_autoptr(GList) keys = g_hash_table_get_keys (properties);
	GVariantBuilder builder;

	/* Sorted: the same properties always give the same value (no spurious changes). */
	keys = g_list_sort (keys, (GCompareFunc) g_strcmp0);
	g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{ss}"));
	for (GList *l = keys; l != NULL; l = l->next)
		g_variant_builder_add (&builder, "{ss}", (const char *) l->data,
				       (const char *) g_hash_table_lookup (properties, l->data));
	return g_variant_builder_end (&builder);
}

void
vmi_image_impl_update (VmiImageImpl *self, VmiCacheEntry *entry)
{
	VmiCacheImage *iface = VMI_CACHE_IMAGE (self);
	const char *name = vmi_cache_entry_get_name (entry);
	const char *source = vmi_cache_entry_get_source (entry);

	vmi_cache_image_set_id (iface, vmi_cache_entry_get_id (entry));
	vmi_cache_image_set_name (iface, name != NULL ? name : "");
	vmi_cache_image_set_format (iface, vmi_cache_entry_get_format (entry));
	vmi_cache_image_set_virtual_size (iface, vmi_cache_entry_get_virtual_size (entry));
	vmi_cache_image_set_size (iface, vmi_cache_entry_get_size (entry));
	vmi_cache_image_set_checksum (iface, vmi_cache_entry_get_checksum (entry));
	vmi_cache_image_set_content_checksum (iface, vmi_cache_entry_get_content_checksum (entry));
	vmi_cache_image_set_created (iface, vmi_image_seconds (vmi_cache_entry_get_created (entry)));
	vmi_cache_image_set_last_used (iface, vmi_image_seconds (vmi_cache_entry_get_last_used (entry)));
	vmi_cache_image_set_properties (iface,
				  vmi_image_properties_variant (vmi_cache_entry_get_properties (entry)));
	vmi_cache_image_set_source (iface, source != NULL ? source : "");
	g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (self));
}

const char *
vmi_image_impl_get_id (VmiImageImpl *self)
{
	return vmi_cache_image_get_id (VMI_CACHE_IMAGE (self));
}

VmiImageImpl *
vmi_image_impl_new (VmiCacheEntry *entry)
{
	VmiImageImpl *self = g_object_new (VMI_TYPE_IMAGE_IMPL, NULL);

	vmi_image_impl_update (self, entry);
	return self;
}
