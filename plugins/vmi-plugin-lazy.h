/*
 * The front module of a plugin whose code needs heavy libraries (libarchive, libxml2): the
 * daemon loads it at start-up like any plugin, but it holds only the format's identity and
 * probe. The first open, create or measure loads the full plugin from impl/vmi-<name>-impl.so
 * beside the front module, and every hook then goes to it; an idle daemon never maps those
 * libraries.
 *
 * A front module defines vmi_plugin_lazy_front with its identity, its probe and the
 * VMI_PLUGIN_LAZY_* hooks that the full plugin has (each must be set exactly when the full
 * plugin sets it, which loading checks), and ends with VMI_PLUGIN_DEFINE (vmi_plugin_lazy_front).
 */
#pragma once

#include "vmi-plugin.h"

G_BEGIN_DECLS

/* Hidden, so each front module binds its own. */
extern const VmiFormatPlugin vmi_plugin_lazy_front __attribute__ ((visibility ("hidden")));

/* Loads the full plugin once (later calls return it); NULL with VMI_ERROR_FAILED. */
const VmiFormatPlugin *vmi_plugin_lazy_get (GError **error) __attribute__ ((visibility ("hidden")));

#define VMI_PLUGIN_LAZY_HIDDEN __attribute__ ((visibility ("hidden")))
VmiImage *vmi_plugin_lazy_open (const VmiOpenArgs *args, GError **error) VMI_PLUGIN_LAZY_HIDDEN;
gboolean vmi_plugin_lazy_get_info (VmiImage *image, VmiImageInfo *info,
				   GError **error) VMI_PLUGIN_LAZY_HIDDEN;
gboolean vmi_plugin_lazy_read (VmiImage *image, guint64 offset, void *buf, gsize len,
			       GError **error) VMI_PLUGIN_LAZY_HIDDEN;
gboolean vmi_plugin_lazy_block_status (VmiImage *image, guint64 offset, guint64 max_length,
				       VmiExtent *extent, GError **error) VMI_PLUGIN_LAZY_HIDDEN;
void vmi_plugin_lazy_close (VmiImage *image) VMI_PLUGIN_LAZY_HIDDEN;
gboolean vmi_plugin_lazy_read_member (VmiImage *image, guint index, guint64 offset, void *buf,
				      gsize len, gsize *got, GError **error) VMI_PLUGIN_LAZY_HIDDEN;
gboolean vmi_plugin_lazy_check (VmiImage *image, VmiCheckResult *result,
				GCancellable *cancellable, GError **error) VMI_PLUGIN_LAZY_HIDDEN;
VmiImage *vmi_plugin_lazy_create (int fd, guint64 virtual_size, GVariant *options,
				  GError **error) VMI_PLUGIN_LAZY_HIDDEN;
gboolean vmi_plugin_lazy_write (VmiImage *image, guint64 offset, const void *buf, gsize len,
				GError **error) VMI_PLUGIN_LAZY_HIDDEN;
gboolean vmi_plugin_lazy_finish (VmiImage *image, GError **error) VMI_PLUGIN_LAZY_HIDDEN;
gboolean vmi_plugin_lazy_measure (guint64 virtual_size, const VmiRange *data, gsize n_data,
				  GVariant *options, VmiMeasurement *out,
				  GError **error) VMI_PLUGIN_LAZY_HIDDEN;

#define VMI_PLUGIN_LAZY_INSPECT                                                                    \
	.open = vmi_plugin_lazy_open, .get_info = vmi_plugin_lazy_get_info,                        \
	.close = vmi_plugin_lazy_close
#define VMI_PLUGIN_LAZY_READ .read = vmi_plugin_lazy_read, .block_status = vmi_plugin_lazy_block_status
#define VMI_PLUGIN_LAZY_READ_MEMBER .read_member = vmi_plugin_lazy_read_member
#define VMI_PLUGIN_LAZY_CHECK .check = vmi_plugin_lazy_check
#define VMI_PLUGIN_LAZY_WRITE                                                                      \
	.create = vmi_plugin_lazy_create, .write = vmi_plugin_lazy_write,                          \
	.finish = vmi_plugin_lazy_finish
#define VMI_PLUGIN_LAZY_MEASURE .measure = vmi_plugin_lazy_measure

G_END_DECLS
