#include "vmi-fuzz.h"
extern const VmiFormatPlugin vmi_vdi_plugin;
VMI_FUZZ_DEFINE (vmi_vdi_plugin)
