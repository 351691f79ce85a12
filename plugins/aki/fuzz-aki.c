#include "vmi-fuzz.h"

extern const VmiFormatPlugin vmi_aki_plugin;
VMI_FUZZ_DEFINE (vmi_aki_plugin)
