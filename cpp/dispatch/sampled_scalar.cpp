// The sampled kernels compiled for the "scalar" level (flags set in CMakeLists.txt).
#define SHORTCUTNET_ISA_NAMESPACE sampled_scalar
#define SHORTCUTNET_LEVEL_FUNCTION level_scalar
#define SHORTCUTNET_LEVEL_NAME "scalar"
#include "sampled_level.inc"
