/*
 * A stand-in for polkitd on a private bus, in its own thread and connection so that it answers
 * while the test blocks in a call: it allows org.vmimaged.VMImage1.inspect, refuses every other
 * action and records what it was asked.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _VmiTestPolkit VmiTestPolkit;

/* Owns org.freedesktop.PolicyKit1 on the bus at address; returns once it does. */
VmiTestPolkit *vmi_test_polkit_start (const char *address);
void vmi_test_polkit_stop (VmiTestPolkit *mock);
/* The questions asked since the last call, "action subject-kind subject-name flags", joined
 * with "; ". */
char *vmi_test_polkit_asked (VmiTestPolkit *mock);

G_END_DECLS
