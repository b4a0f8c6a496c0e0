// The lockstep lanes of the engine (trials.hpp, LaneRunner) compiled once per instruction set
// and chosen at run time.  The same source with -ffp-contract=off gives the same bits for every
// instruction set (the only fused multiply-add, in two_prod, is exact), so a batch of trials run
// by any of these equals the one-trial path.
//
// The interface uses plain types only: each compiled copy lives in its own translation unit with
// internal linkage, so that no inline function compiled for a wider instruction set can be
// picked by the linker for baseline code.
#pragma once

#include <cstdint>

namespace shortcutnet {

// One call of run_lane_groups (trials.hpp); states points to batch TrialState objects.
struct LaneArgs {
  const double* s;
  std::int64_t k, p, stride;
  const double* rates;
  std::int64_t n_rates, n_steps;
  double tol, divergence;
  int threads;
  std::int64_t batch, last_step;
  void* states;
  double* w;
  double* a;
  const double* w_star;
  const double* a_star;
};

using LaneKernel = void (*)(const LaneArgs&);

// The widest compiled copy this CPU supports, or nullptr for the baseline one in trials.hpp;
// name receives "avx512", "avx2" or "baseline".  SHORTCUTNET_SIMD=scalar (or baseline)|avx2|avx512 in the
// environment caps the choice (to compare the levels).
LaneKernel select_lane_kernel(const char** name);

}  // namespace shortcutnet
