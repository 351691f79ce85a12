#include "vmi-fuzz.h"
extern const VmiFormatPlugin vmi_raw_plugin;
VMI_FUZZ_DEFINE (vmi_raw_plugin)
