/* The ova front module: identity and probe here, the rest loaded on first use. */
#include "vmi-ova-probe.h"
#include "vmi-plugin-lazy.h"

const VmiFormatPlugin vmi_plugin_lazy_front = {
	VMI_OVA_IDENTITY,
	.probe = vmi_ova_probe,
	VMI_PLUGIN_LAZY_INSPECT,
	VMI_PLUGIN_LAZY_READ_MEMBER,
	VMI_PLUGIN_LAZY_WRITE,
};

VMI_PLUGIN_DEFINE (vmi_plugin_lazy_front)
