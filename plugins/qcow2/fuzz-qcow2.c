#include "vmi-fuzz.h"
extern const VmiFormatPlugin vmi_qcow2_plugin;
VMI_FUZZ_DEFINE (vmi_qcow2_plugin)
