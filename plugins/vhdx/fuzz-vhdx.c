#include "vmi-fuzz.h"
extern const VmiFormatPlugin vmi_vhdx_plugin;
VMI_FUZZ_DEFINE (vmi_vhdx_plugin)
