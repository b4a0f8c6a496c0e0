// Run-time choice of the engine's lanes (see cpp/shortcutnet/lane_kernels.hpp): the level the
// sampled kernels use (shortcutnet::dispatch::simd_level), so one CPU check and one reading of
// SHORTCUTNET_SIMD decide both.
#include "shortcutnet/dispatch.hpp"
#include "shortcutnet/lane_kernels.hpp"

namespace shortcutnet {

#ifdef SHORTCUTNET_LANES_X86
void lane_kernel_avx2(const LaneArgs& args);
void lane_kernel_avx512(const LaneArgs& args);
#endif

LaneKernel select_lane_kernel(const char** name) {
  const int level = dispatch::simd_level();
#ifdef SHORTCUTNET_LANES_X86
  if (level >= 2) {
    *name = "avx512";
    return &lane_kernel_avx512;
  }
  if (level == 1) {
    *name = "avx2";
    return &lane_kernel_avx2;
  }
#else
  (void)level;
#endif
  *name = "baseline";
  return nullptr;
}

}  // namespace shortcutnet
