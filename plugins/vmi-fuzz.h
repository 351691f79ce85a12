/*
 * The body of every plugin's libFuzzer target: the input becomes an in-memory file that the
 * plugin opens, describes and reads the way Inspect and Convert would. Each fuzz-<name>.c is
 *
 *   #include "vmi-fuzz.h"
 *   extern const VmiFormatPlugin vmi_<name>_plugin;
 *   VMI_FUZZ_DEFINE (vmi_<name>_plugin)
 *
 * Build with -Dfuzzing=true and CC=clang; seeds come from the unit tests (VMI_FUZZ_SEED_DIR).
 */
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include "vmi-source.h"

/* Reads stop after this much of the virtual disk so one input costs bounded time. */
#define VMI_FUZZ_READ_LIMIT (4u * 1024u * 1024u)

/* A container's compressed members, read forward through read_member as the engine copies them. */
static inline void
vmi_fuzz_read_members (const VmiFormatPlugin *plugin, VmiSource *source, guint8 *buf, gsize len)
{
	GPtrArray *members = vmi_source_get_info (source)->members;

	for (guint i = 0; plugin->read_member != NULL && i < members->len; i++) {
		const VmiMember *member = g_ptr_array_index (members, i);
		guint64 pos = 0;
		gsize got = 1;

		if (member->location != VMI_MEMBER_STREAM)
			continue;
		while (got > 0 && pos < VMI_FUZZ_READ_LIMIT) {
			if (!plugin->read_member (vmi_source_get_image (source), i, pos, buf, len, &got,
						  NULL))
				break;
			g_assert_cmpuint (got, <=, len);
			pos += got;
		}
	}
}

/* The format's consistency check, whose table walks see the same hostile input as open. */
static inline void
vmi_fuzz_check (const VmiFormatPlugin *plugin, VmiSource *source)
{
	VmiCheckResult result = { 0 };

	if (plugin->check == NULL)
		return;
	result.problems = g_ptr_array_new_with_free_func (g_free);
	if (plugin->check (vmi_source_get_image (source), &result, NULL, NULL))
		g_assert_cmpuint (result.problems->len, <=, VMI_CHECK_MAX_PROBLEMS);
	g_ptr_array_unref (result.problems);
}

static inline void
vmi_fuzz_one (const VmiFormatPlugin *plugin, const guint8 *data, size_t size)
{
	g_autoptr(VmiSource) source = NULL;
	g_autoptr(GVariant) info = NULL;
	g_autofree guint8 *buf = NULL;
	guint64 vsize, offset = 0, limit;
	int fd = memfd_create ("fuzz", MFD_CLOEXEC);

	g_assert_cmpint (fd, >=, 0);
	g_assert_cmpint (write (fd, data, size), ==, (ssize_t) size);
	plugin->probe (data, MIN (size, VMI_PROBE_HEAD_SIZE), size);
	if (plugin->probe_tail != NULL)
		plugin->probe_tail (data + size - MIN (size, VMI_PROBE_TAIL_SIZE),
				    MIN (size, VMI_PROBE_TAIL_SIZE), size);
	source = vmi_source_open_with (plugin, fd, -1, NULL, NULL);
	close (fd);
	if (source == NULL)
		return;
	info = vmi_source_to_variant (source);
	buf = g_malloc (64 * 1024);
	vmi_fuzz_read_members (plugin, source, buf, 64 * 1024);
	vmi_fuzz_check (plugin, source);
	if ((plugin->flags & VMI_FORMAT_CAN_READ) == 0)
		return;
	vsize = vmi_source_get_virtual_size (source);
	limit = MIN (vsize, VMI_FUZZ_READ_LIMIT);
	while (offset < limit) {
		VmiExtent extent = { 0 };
		guint64 len;

		if (!plugin->block_status (vmi_source_get_image (source), offset, vsize - offset, &extent,
					   NULL))
			return;
		g_assert_cmpuint (extent.length, >, 0);
		g_assert_cmpuint (extent.length, <=, vsize - offset);
		len = MIN (MIN (extent.length, 64 * 1024), vsize - offset);
		if (extent.kind == VMI_EXTENT_DATA &&
		    !plugin->read (vmi_source_get_image (source), offset, buf, len, NULL))
			return;
		offset += len;
	}
}

#define VMI_FUZZ_DEFINE(plugin_struct)                                                             \
	int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);                              \
	int LLVMFuzzerTestOneInput (const guint8 *data, size_t size)                               \
	{                                                                                          \
		vmi_fuzz_one (&(plugin_struct), data, size);                                       \
		return 0;                                                                          \
	}
