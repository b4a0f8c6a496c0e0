// The sampled kernels compiled for the "avx512" level (flags set in CMakeLists.txt).
#define SHORTCUTNET_ISA_NAMESPACE sampled_avx512
#define SHORTCUTNET_LEVEL_FUNCTION level_avx512
#define SHORTCUTNET_LEVEL_NAME "avx512"
#include "sampled_level.inc"
