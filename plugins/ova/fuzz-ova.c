#include "vmi-fuzz.h"

extern const VmiFormatPlugin vmi_ova_plugin;
VMI_FUZZ_DEFINE (vmi_ova_plugin)
