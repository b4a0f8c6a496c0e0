// Picks the instruction-set level of the sampled kernels at run time (see dispatch.hpp).
#include "shortcutnet/dispatch.hpp"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace shortcutnet::dispatch {

namespace {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
#else
  return false;
#endif
}

}  // namespace

std::vector<std::string> simd_supported() {
  std::vector<std::string> levels{"scalar"};
  if (cpu_has_avx2()) levels.emplace_back("avx2");
  if (cpu_has_avx512()) levels.emplace_back("avx512");
  return levels;
}

int simd_level() {
  static const int supported = cpu_has_avx512() ? 2 : cpu_has_avx2() ? 1 : 0;
  // Read on every call (a getenv is cheap next to a kernel) so tests can switch levels.
  const char* forced = std::getenv("SHORTCUTNET_SIMD");
  int cap = 2;
  if (forced != nullptr && forced[0] != '\0') {
    if (std::strcmp(forced, "scalar") == 0 || std::strcmp(forced, "baseline") == 0) cap = 0;
    else if (std::strcmp(forced, "avx2") == 0) cap = 1;
    else if (std::strcmp(forced, "avx512") == 0) cap = 2;
    else
      throw std::invalid_argument(std::string("SHORTCUTNET_SIMD: expected one of 'scalar', 'avx2', 'avx512', got '") +
                                  forced + "'");
  }
  return supported < cap ? supported : cap;
}

const Level& kernels() {
  switch (simd_level()) {
    case 2: return level_avx512();
    case 1: return level_avx2();
    default: return level_scalar();
  }
}

}  // namespace shortcutnet::dispatch
