#include "vmi-fuzz.h"
extern const VmiFormatPlugin vmi_vmdk_plugin;
VMI_FUZZ_DEFINE (vmi_vmdk_plugin)
