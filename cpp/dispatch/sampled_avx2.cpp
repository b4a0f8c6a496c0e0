// The sampled kernels compiled for the "avx2" level (flags set in CMakeLists.txt).
#define SHORTCUTNET_ISA_NAMESPACE sampled_avx2
#define SHORTCUTNET_LEVEL_FUNCTION level_avx2
#define SHORTCUTNET_LEVEL_NAME "avx2"
#include "sampled_level.inc"
