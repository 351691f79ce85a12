#include "vmi-fuzz.h"

extern const VmiFormatPlugin vmi_iso_plugin;
VMI_FUZZ_DEFINE (vmi_iso_plugin)
