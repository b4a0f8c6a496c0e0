// generator_floor for the "avx2" level (flags set in CMakeLists.txt).
#define SHORTCUTNET_ISA_NAMESPACE sampled_avx2
#define SHORTCUTNET_FLOOR_FUNCTION floor_avx2
#include "generator_floor_level.inc"
