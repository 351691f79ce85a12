#include "vmi-fuzz.h"

extern const VmiFormatPlugin vmi_ari_plugin;
VMI_FUZZ_DEFINE (vmi_ari_plugin)
