/* The ovf front module: identity and probe here, the rest loaded on first use. */
#include "vmi-ovf-probe.h"
#include "vmi-plugin-lazy.h"

const VmiFormatPlugin vmi_plugin_lazy_front = {
	VMI_OVF_IDENTITY,
	.probe = vmi_ovf_probe,
	VMI_PLUGIN_LAZY_INSPECT,
	VMI_PLUGIN_LAZY_READ_MEMBER,
};

VMI_PLUGIN_DEFINE (vmi_plugin_lazy_front)
