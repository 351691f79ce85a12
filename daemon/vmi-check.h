/*
 * A consistency check of an image, like qemu-img check: the format's own check (when its plugin
 * has one), a read of every allocated byte of the virtual disk, and optional digests.
 */
#pragma once

#include "vmi-convert.h"

G_BEGIN_DECLS

/* The options of a check: which digests to compute, and the format of the source. */
extern const VmiOptionSpec vmi_check_options[];

/*
 * Checks source or, for a container, the member options "disk" or "member" choose (by default
 * its first disk, as vmi_members_select). options (a{sv}, may be NULL) are validated against
 * vmi_check_options. The result is a new a{sv}: member (s: the member's name, when one was
 * checked), format, virtual-size, consistency-checked (b: the plugin has a check),
 * corruptions, leaks, check-errors (reads of the virtual disk that failed), problems (as),
 * image-end-offset, data-bytes (allocated bytes read), the *-clusters counts when the format has
 * clusters, and sha256, md5, content-sha256 when asked (file digests are of the checked image's
 * bytes: a member's own). What the check finds is in the result;
 * FALSE (with a VMI_ERROR) only when it could not run: a bad option, a format vmimaged cannot
 * read, cancellation, an error of the plugin's check itself. progress gets bytes of work done
 * out of the total of every pass.
 */
GVariant *vmi_check (VmiSource *source, GVariant *options, VmiProgressFunc progress,
		     gpointer user_data, GCancellable *cancellable, GError **error);

G_END_DECLS
