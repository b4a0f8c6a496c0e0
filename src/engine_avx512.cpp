// The training engine for AVX-512 (compiled with -mavx512f -mavx512dq -mavx2 -mfma); chosen at run time (engine_dispatch.cpp).
#define SHORTCUTNET_ISA_NAMESPACE shortcutnet_engine_avx512
#define SHORTCUTNET_ENGINE_KERNELS engine_kernels_avx512
#define SHORTCUTNET_ENGINE_NAME "avx512"
#include "engine_isa.inc"
