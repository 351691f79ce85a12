/* The uec front module: identity and probe here, the rest loaded on first use. */
#include "vmi-plugin-lazy.h"
#include "vmi-uec-probe.h"

const VmiFormatPlugin vmi_plugin_lazy_front = {
	VMI_UEC_IDENTITY,
	.probe = vmi_uec_probe,
	VMI_PLUGIN_LAZY_INSPECT,
	VMI_PLUGIN_LAZY_READ,
	VMI_PLUGIN_LAZY_READ_MEMBER,
};

VMI_PLUGIN_DEFINE (vmi_plugin_lazy_front)
