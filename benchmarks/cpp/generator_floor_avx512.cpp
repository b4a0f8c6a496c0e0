// generator_floor for the "avx512" level (flags set in CMakeLists.txt).
#define SHORTCUTNET_ISA_NAMESPACE sampled_avx512
#define SHORTCUTNET_FLOOR_FUNCTION floor_avx512
#include "generator_floor_level.inc"
