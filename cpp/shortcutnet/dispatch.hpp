// Run-time choice of the instruction set for the sampled kernels (sampled.hpp).
//
// The kernels are compiled three times (cpp/dispatch/sampled_*.cpp): for baseline x86-64
// ("scalar", i.e. SSE2), for AVX2+FMA and for AVX-512 (F, DQ, VL, BW).  kernels() returns the
// table of the best level this CPU supports, or a lower one named by the environment variable
// SHORTCUTNET_SIMD=scalar|avx2|avx512 ("baseline" means scalar too; a level above what the CPU
// supports falls back to the best supported one).  Every level computes the same bits: the kernels avoid contraction and
// fix every summation order.  Link the STATIC target shortcutnet::dispatch to use this from C++.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shortcutnet::dispatch {

struct Network {
  const double* s;
  const double* w;
  const double* a;
  std::int64_t k, p, stride;
  bool normalize;
};

template <class T>
struct SampledKernels {
  void (*predict)(const Network& net, const T* X, std::int64_t n, int threads, T* f);
  double (*sampled_loss_grad)(const Network& net, const T* X, const T* y, std::int64_t n, int threads,
                              double* grad_w, double* grad_a);
  void (*sample_inputs)(std::int64_t n, std::int64_t d, std::uint64_t seed, int threads, T* X);
  double (*stochastic_loss_grad)(const Network& net, const double* w_star, const double* a_star, std::int64_t n,
                                 std::uint64_t seed, int threads, double* grad_w, double* grad_a);
};

struct Level {
  const char* name;
  SampledKernels<float> f32;
  SampledKernels<double> f64;
};

// Levels this CPU can run, lowest first ("scalar" always).
std::vector<std::string> simd_supported();
// The level to run now, 0 (scalar), 1 (avx2) or 2 (avx512): the best this CPU supports, capped
// by SHORTCUTNET_SIMD, read on every call; throws std::invalid_argument for an unknown
// SHORTCUTNET_SIMD.  The training engine (src/engine_dispatch.cpp) follows the same choice.
int simd_level();
// The level kernels() uses now; throws std::invalid_argument for an unknown SHORTCUTNET_SIMD.
const Level& kernels();

// The tables of each compiled level (defined in cpp/dispatch/sampled_<level>.cpp).
const Level& level_scalar();
const Level& level_avx2();
const Level& level_avx512();

}  // namespace shortcutnet::dispatch
