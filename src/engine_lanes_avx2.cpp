// The engine's lanes for AVX2 + FMA (compiled with -mavx2 -mfma; chosen at run time).
#define SHORTCUTNET_ISA_NAMESPACE shortcutnet_avx2
#define SHORTCUTNET_ISA_ENTRY lane_kernel_avx2
#include "engine_lanes_isa.inc"
