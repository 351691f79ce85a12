/* Comparing the virtual disks of two images, whatever their formats (qemu-img compare). */
#pragma once

#include "vmi-convert.h"

G_BEGIN_DECLS

/* The options of a comparison: "strict" (b) and the formats of both images. */
extern const VmiOptionSpec vmi_compare_options[];

/*
 * The choice of a container's member for one side ("a" or "b") in a normalized a{sv}: its
 * "disk-<side>" and "member-<side>" as vmi_members_select's "disk" and "member" (full ref).
 */
GVariant *vmi_compare_choice (GVariant *normalized, const char *side);

/*
 * Compares the virtual disks of a and b byte for byte; of a container, the disk that
 * "disk-a"/"member-a" (or -b) choose, or its first disk, as Convert reads it. options (a{sv}, may be NULL) are checked
 * against vmi_compare_options. With "strict" (the default) disks of different sizes differ; with
 * strict FALSE the part of the longer disk past the end of the shorter must read as zeros, as in
 * qemu-img compare without -s. Runs that are holes or zeros in both are not read.
 *
 * The result is a new a{sv}: identical (b), first-difference (t: the offset of the first byte
 * that differs, or the shorter size for a strict size mismatch; absent when identical),
 * size-a and size-b (t). progress gets bytes of the longer disk done.
 */
GVariant *vmi_compare (VmiSource *a, VmiSource *b, GVariant *options, VmiProgressFunc progress,
		       gpointer user_data, GCancellable *cancellable, GError **error);

G_END_DECLS
