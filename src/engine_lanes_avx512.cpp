// The engine's lanes for AVX-512 (compiled with -mavx512f -mavx512dq -mavx2 -mfma; chosen at run time).
#define SHORTCUTNET_ISA_NAMESPACE shortcutnet_avx512
#define SHORTCUTNET_ISA_ENTRY lane_kernel_avx512
#include "engine_lanes_isa.inc"
