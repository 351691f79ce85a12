/*
 * Shared parts of the test-only plugin modules that test-registry loads. Each module is a tiny
 * format whose probe answers to a marker in the head, so a test can see which one detection
 * picked. They never open anything.
 */
#pragma once

#include <string.h>

#include "vmi-plugin.h"

static inline guint
test_module_probe_marker (const guint8 *head, gsize head_len, const char *marker, guint score)
{
	gsize len = strlen (marker);

	return head_len >= len && memcmp (head, marker, len) == 0 ? score : VMI_PROBE_NO;
}

static inline VmiImage *
test_module_open (const VmiOpenArgs *args, GError **error)
{
	g_set_error_literal (error, VMI_ERROR, VMI_ERROR_NOT_SUPPORTED, "test module: no open");
	return NULL;
}

static inline gboolean
test_module_get_info (VmiImage *image, VmiImageInfo *info, GError **error)
{
	return TRUE;
}

static inline void
test_module_close (VmiImage *image)
{
}

#define TEST_MODULE_CALLS                                                                          \
	.open = test_module_open, .get_info = test_module_get_info, .close = test_module_close
