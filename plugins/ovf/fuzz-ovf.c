#include "vmi-fuzz.h"

extern const VmiFormatPlugin vmi_ovf_plugin;
VMI_FUZZ_DEFINE (vmi_ovf_plugin)
