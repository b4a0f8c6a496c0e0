// Run-time choice of the training engine's copy (see cpp/shortcutnet/engine_entry.hpp): the level
// the sampled kernels use (shortcutnet::dispatch::simd_level), so one CPU check and one reading of
// SHORTCUTNET_SIMD decide both.
#include "shortcutnet/dispatch.hpp"
#include "shortcutnet/engine_entry.hpp"

namespace shortcutnet {

const EngineKernels& engine_kernels_baseline();
#ifdef SHORTCUTNET_ENGINE_X86
const EngineKernels& engine_kernels_avx2();
const EngineKernels& engine_kernels_avx512();
#endif

const EngineKernels& engine_kernels() {
  const int level = dispatch::simd_level();
#ifdef SHORTCUTNET_ENGINE_X86
  if (level >= 2) return engine_kernels_avx512();
  if (level == 1) return engine_kernels_avx2();
#else
  (void)level;
#endif
  return engine_kernels_baseline();
}

}  // namespace shortcutnet
