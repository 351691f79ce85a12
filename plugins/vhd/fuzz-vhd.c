#include "vmi-fuzz.h"
extern const VmiFormatPlugin vmi_vhd_plugin;
VMI_FUZZ_DEFINE (vmi_vhd_plugin)
