/* The ari front module: identity and probe here, the rest loaded on first use. */
#include "vmi-ari-probe.h"
#include "vmi-plugin-lazy.h"

const VmiFormatPlugin vmi_plugin_lazy_front = {
	VMI_ARI_IDENTITY,
	.probe = vmi_ari_probe,
	VMI_PLUGIN_LAZY_INSPECT,
	VMI_PLUGIN_LAZY_READ,
};

VMI_PLUGIN_DEFINE (vmi_plugin_lazy_front)
