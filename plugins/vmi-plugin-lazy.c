/*
 * Loading the full plugin behind a front module on first use (vmi-plugin-lazy.h). Compiled into
 * each front module, so each has its own state.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <gmodule.h>

#include "vmi-plugin-lazy.h"

static GMutex lazy_lock;
static const VmiFormatPlugin *lazy_impl; /* set once, under lazy_lock; never unloaded */

/* The full plugin must offer the same hooks as the front, or a call would reach a NULL. */
static gboolean
lazy_same_hooks (const VmiFormatPlugin *front, const VmiFormatPlugin *impl)
{
#define SAME(hook) ((front->hook == NULL) == (impl->hook == NULL))
	return SAME (open) && SAME (get_info) && SAME (read) && SAME (block_status) &&
	       SAME (close) && SAME (read_member) && SAME (check) && SAME (create) &&
	       SAME (write) && SAME (finish) && SAME (measure);
#undef SAME
}

static char *
lazy_impl_path (GError **error)
{
	Dl_info where = { 0 };
	g_autofree char *real = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *file = NULL;

	if (dladdr (&vmi_plugin_lazy_front, &where) == 0 || where.dli_fname == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED,
			     "the implementation of format %s cannot be found: the front module "
			     "does not know its own path",
			     vmi_plugin_lazy_front.name);
		return NULL;
	}
	/* Beside the file itself: a plugin directory may hold a link to the front module. */
	real = realpath (where.dli_fname, NULL);
	dir = g_path_get_dirname (real != NULL ? real : where.dli_fname);
	file = g_strdup_printf ("vmi-%s-impl.%s", vmi_plugin_lazy_front.name, G_MODULE_SUFFIX);
	return g_build_filename (dir, "impl", file, NULL);
}

static const VmiFormatPlugin *
lazy_load (const char *path, GError **error)
{
	const VmiFormatPlugin *front = &vmi_plugin_lazy_front;
	const VmiFormatPlugin *impl;
	GModule *module;
	gpointer abi_symbol = NULL;
	gpointer query_symbol = NULL;
	const char *reason = NULL;

	module = g_module_open (path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
	if (module == NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "%s cannot be loaded: %s", path,
			     g_module_error ());
		return NULL;
	}
	/* The version is data, read before any code of the module runs. */
	if (!g_module_symbol (module, VMI_PLUGIN_ABI_VERSION_SYMBOL, &abi_symbol) ||
	    abi_symbol == NULL)
		reason = "it has no " VMI_PLUGIN_ABI_VERSION_SYMBOL " symbol";
	else if (*(const guint32 *) abi_symbol != VMI_PLUGIN_ABI_VERSION)
		reason = "it was built for another plugin ABI version";
	else if (!g_module_symbol (module, VMI_PLUGIN_QUERY_SYMBOL, &query_symbol) ||
		 query_symbol == NULL)
		reason = "it has no " VMI_PLUGIN_QUERY_SYMBOL " entry point";
	if (reason != NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "%s cannot be loaded: %s", path,
			     reason);
		g_module_close (module);
		return NULL;
	}
	impl = ((VmiPluginQueryFunc) query_symbol) ();
	if (impl == NULL || impl->abi_version != VMI_PLUGIN_ABI_VERSION)
		reason = "it returned no plugin of this ABI version";
	else if (g_strcmp0 (impl->name, front->name) != 0)
		reason = "it implements another format";
	else if (impl->flags != front->flags || !lazy_same_hooks (front, impl))
		reason = "its flags or hooks differ from those of the front module";
	if (reason != NULL) {
		g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "%s cannot be loaded: %s", path,
			     reason);
		g_module_close (module);
		return NULL;
	}
	/* Its code may have run (init), and its images may outlive any caller: keep it. */
	g_module_make_resident (module);
	if (impl->init != NULL) {
		g_autoptr(GError) local_error = NULL;

		if (!impl->init (&local_error)) {
			g_set_error (error, VMI_ERROR, VMI_ERROR_FAILED, "%s cannot be loaded: %s",
				     path, local_error->message);
			return NULL;
		}
	}
	return impl;
}

const VmiFormatPlugin *
vmi_plugin_lazy_get (GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&lazy_lock);
	g_autofree char *path = NULL;
	const VmiFormatPlugin *impl;

	if (lazy_impl != NULL)
		return lazy_impl;
	path = lazy_impl_path (error);
	if (path == NULL)
		return NULL;
	impl = lazy_load (path, error);
	if (impl == NULL)
		return NULL;
	g_debug ("loaded the implementation of format %s from %s", impl->name, path);
	g_atomic_pointer_set (&lazy_impl, impl);
	return impl;
}

/* Hooks on an image: it came from the full plugin's open or create, so that is loaded. */
static const VmiFormatPlugin *
lazy_loaded (void)
{
	const VmiFormatPlugin *impl = g_atomic_pointer_get (&lazy_impl);

	g_assert (impl != NULL);
	return impl;
}

VmiImage *
vmi_plugin_lazy_open (const VmiOpenArgs *args, GError **error)
{
	const VmiFormatPlugin *impl = vmi_plugin_lazy_get (error);

	return impl != NULL ? impl->open (args, error) : NULL;
}

gboolean
vmi_plugin_lazy_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	return lazy_loaded ()->get_info (image, info, error);
}

gboolean
vmi_plugin_lazy_read (VmiImage *image, guint64 offset, void *buf, gsize len, GError **error)
{
	return lazy_loaded ()->read (image, offset, buf, len, error);
}

gboolean
vmi_plugin_lazy_block_status (VmiImage *image, guint64 offset, guint64 max_length,
			      VmiExtent *extent, GError **error)
{
	return lazy_loaded ()->block_status (image, offset, max_length, extent, error);
}

void
vmi_plugin_lazy_close (VmiImage *image)
{
	lazy_loaded ()->close (image);
}

gboolean
vmi_plugin_lazy_read_member (VmiImage *image, guint index, guint64 offset, void *buf, gsize len,
			     gsize *got, GError **error)
{
	return lazy_loaded ()->read_member (image, index, offset, buf, len, got, error);
}

gboolean
vmi_plugin_lazy_check (VmiImage *image, VmiCheckResult *result, GCancellable *cancellable,
		       GError **error)
{
	return lazy_loaded ()->check (image, result, cancellable, error);
}

VmiImage *
vmi_plugin_lazy_create (int fd, guint64 virtual_size, GVariant *options, GError **error)
{
	const VmiFormatPlugin *impl = vmi_plugin_lazy_get (error);

	return impl != NULL ? impl->create (fd, virtual_size, options, error) : NULL;
}

gboolean
vmi_plugin_lazy_write (VmiImage *image, guint64 offset, const void *buf, gsize len,
		       GError **error)
{
	return lazy_loaded ()->write (image, offset, buf, len, error);
}

gboolean
vmi_plugin_lazy_finish (VmiImage *image, GError **error)
{
	return lazy_loaded ()->finish (image, error);
}

gboolean
vmi_plugin_lazy_measure (guint64 virtual_size, const VmiRange *data, gsize n_data,
			 GVariant *options, VmiMeasurement *out, GError **error)
{
	const VmiFormatPlugin *impl = vmi_plugin_lazy_get (error);

	return impl != NULL && impl->measure (virtual_size, data, n_data, options, out, error);
}
