// The training engine for AVX2 + FMA (compiled with -mavx2 -mfma); chosen at run time (engine_dispatch.cpp).
#define SHORTCUTNET_ISA_NAMESPACE shortcutnet_engine_avx2
#define SHORTCUTNET_ENGINE_KERNELS engine_kernels_avx2
#define SHORTCUTNET_ENGINE_NAME "avx2"
#include "engine_isa.inc"
