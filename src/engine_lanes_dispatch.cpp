// Run-time choice of the engine's lanes (see cpp/shortcutnet/lane_kernels.hpp).
#include <cstdlib>
#include <cstring>

#include "shortcutnet/lane_kernels.hpp"

namespace shortcutnet {

#ifdef SHORTCUTNET_LANES_X86
void lane_kernel_avx2(const LaneArgs& args);
void lane_kernel_avx512(const LaneArgs& args);
#endif

LaneKernel select_lane_kernel(const char** name) {
  const char* cap = std::getenv("SHORTCUTNET_SIMD");
  const bool allow_avx512 = cap == nullptr || std::strcmp(cap, "avx512") == 0;
  const bool allow_avx2 = allow_avx512 || std::strcmp(cap, "avx2") == 0;
#ifdef SHORTCUTNET_LANES_X86
  __builtin_cpu_init();
  if (allow_avx512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    *name = "avx512";
    return &lane_kernel_avx512;
  }
  if (allow_avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    *name = "avx2";
    return &lane_kernel_avx2;
  }
#else
  (void)allow_avx2;
#endif
  *name = "baseline";
  return nullptr;
}

}  // namespace shortcutnet
