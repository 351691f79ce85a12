#include "vmi-fuzz.h"

extern const VmiFormatPlugin vmi_uec_plugin;
VMI_FUZZ_DEFINE (vmi_uec_plugin)
