// generator_floor for the "scalar" level (flags set in CMakeLists.txt).
#define SHORTCUTNET_ISA_NAMESPACE sampled_scalar
#define SHORTCUTNET_FLOOR_FUNCTION floor_scalar
#include "generator_floor_level.inc"
