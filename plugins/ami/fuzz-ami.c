#include "vmi-fuzz.h"

extern const VmiFormatPlugin vmi_ami_plugin;
VMI_FUZZ_DEFINE (vmi_ami_plugin)
