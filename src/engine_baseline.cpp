// The training engine for baseline x86-64 (no extra flags); chosen at run time (engine_dispatch.cpp).
#define SHORTCUTNET_ISA_NAMESPACE shortcutnet_engine_baseline
#define SHORTCUTNET_ENGINE_KERNELS engine_kernels_baseline
#define SHORTCUTNET_ENGINE_NAME "baseline"
#include "engine_isa.inc"
