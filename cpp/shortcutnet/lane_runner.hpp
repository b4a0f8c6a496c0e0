// The paper's model (normalized, non-overlapping patches) under the exact population gradient,
// advanced for L trials in lockstep with any optimizer of optimizers.hpp.  Compiled once per
// instruction set (src/engine_isa.inc) and chosen at run time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "shortcutnet/optimizers.hpp"
#include "shortcutnet/population.hpp"
#include "shortcutnet/trials.hpp"

#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

// The loops over the lanes of LaneRunner are the ones to vectorize (each lane is independent):
// without the annotation the compiler unrolls them and vectorizes the enclosing loop over the
// filter instead, with strided access and many shuffles.  Requires -fopenmp or -fopenmp-simd to
// take effect; the results are the same either way.
#define SHORTCUTNET_LANE_LOOP _Pragma("omp simd")

namespace shortcutnet {

// One call of run_lane_groups: trials [0, batch) through last_step.
struct LaneArgs {
  const double* s;
  std::int64_t k, p, stride;
  const double* rates;
  std::int64_t n_rates, n_steps;
  double tol, divergence;
  OptimizerSpec opt;
  int threads;
  std::int64_t batch, last_step;
  void* states;  // batch TrialState objects
  double* w;
  double* a;
  const double* w_star;
  const double* a_star;
  double* opt_state;
};

// The normalized, non-overlapping model (the paper's) advanced for L trials in lockstep.
// One trial's step is a long chain of dependent dot products, square roots and atan2, so a
// single trial leaves the core mostly idle; L independent trials in structure-of-arrays layout
// ([i][lane]) fill it (and let the compiler use SIMD).  Every lane performs exactly the
// operations of population_loss_grad and of the step loop (engine.hpp, advance) in the same order,
// with the optimizer's element rules of optimizers.hpp (Opt: its kind), so results are
// bit-identical to the one-trial path.  A lane whose trial stops is refilled with the next one.
template <int L, int Opt>
class LaneRunner {
 public:
  LaneRunner(const Architecture& arch, const double* rates, std::int64_t n_rates, std::int64_t n_steps, double tol,
             double divergence, const OptimizerSpec& opt)
      : arch_(arch), rates_(rates), n_rates_(n_rates), n_steps_(n_steps), tol_(tol), divergence_(divergence),
        opt_(opt), p_(arch.p), k_(arch.k), state_size_(optimizer_state_size(opt, arch.k, arch.p)),
        w_(static_cast<std::size_t>(p_ * L)), us_(w_.size()), u_(w_.size()), perp_(w_.size()), pn_(w_.size()),
        a_(static_cast<std::size_t>(k_ * L)), as_(a_.size()),
        mw_(Opt == kGd ? 0 : w_.size()), vw_(Opt == kAdam ? w_.size() : 0),
        ma_(Opt == kGd ? 0 : a_.size()), va_(Opt == kAdam ? a_.size() : 0),
        scratch_(static_cast<std::size_t>(population_workspace_size(p_) + 2 * p_ + 2 * k_)) {}

  // Advance trials lo..hi-1 (w, a, w_star, a_star: row-major (B, p) / (B, k); opt_state: B rows of
  // optimizer_state_size doubles) through last_step.
  void run(std::int64_t lo, std::int64_t hi, std::int64_t last_step, TrialState* states, double* w, double* a,
           const double* w_star, const double* a_star, double* opt_state) {
    std::int64_t next = lo;
    int live = 0;
    for (int l = 0; l < L; ++l) {
      trial_[l] = -1;
      for (std::int64_t i = 0; i < p_; ++i) w_[i * L + l] = us_[i * L + l] = 1.0;  // harmless filler
      for (std::int64_t j = 0; j < k_; ++j) a_[j * L + l] = as_[j * L + l] = 0.0;
      for (double& x : mw_) x = 0.0;
      for (double& x : vw_) x = 0.0;
      for (double& x : ma_) x = 0.0;
      for (double& x : va_) x = 0.0;
      power1_[l] = power2_[l] = 0.5;  // keeps Adam's corrections finite in an empty lane
    }
    auto refill = [&](int l) {
      trial_[l] = -1;
      while (next < hi) {
        const std::int64_t b = next++;
        const TrialState& st = states[b];
        if (st.done || st.step > last_step) continue;
        load(l, b, st, w + b * p_, a + b * k_, w_star + b * p_, a_star + b * k_, opt_state + b * state_size_);
        return true;
      }
      return false;
    };
    for (int l = 0; l < L; ++l) live += refill(l) ? 1 : 0;
    const double limit = divergence_ * divergence_;
    while (live > 0) {
      step_all();
      // Which lanes stop at this step (their state is stored before the update), and the rates
      // of the others; a stopped or empty lane gets rate 0 and is refilled below.  A lane's step
      // count lives in step_ while it runs and is written to its TrialState when it leaves.
      double lr_w[L], lr_a[L], w_sq[L], a_sq[L];
      bool stopped[L];
      // Most steps no lane stops: one test for all of them, then only the rates.
      bool ordinary = true;
      for (int l = 0; l < L; ++l)
        ordinary = ordinary && trial_[l] >= 0 && loss_[l] > tol_ && loss_[l] <= divergence_ &&
                   step_[l] < n_steps_;
      if (ordinary) {
        for (int l = 0; l < L; ++l) {
          w_sq[l] = a_sq[l] = 0.0;
          stopped[l] = false;
          const std::int64_t t = step_[l];
          const std::int64_t row = t < n_rates_ ? t : n_rates_ - 1;
          lr_w[l] = rates_[2 * row];
          lr_a[l] = rates_[2 * row + 1];
        }
      } else {
        for (int l = 0; l < L; ++l) {
          lr_w[l] = lr_a[l] = w_sq[l] = a_sq[l] = 0.0;
          stopped[l] = false;
          const std::int64_t b = trial_[l];
          if (b < 0) continue;
          TrialState& st = states[b];
          const std::int64_t t = step_[l];
          const double loss = loss_[l];
          const bool diverged = !(loss <= divergence_);
          const bool converged = !diverged && loss <= tol_;
          if (converged) st.steps_to_tol = t;
          if (diverged || converged || t == n_steps_) {
            st.step = t;
            st.done = true;
            st.loss = loss;
            stopped[l] = true;
            store(l, w + b * p_, a + b * k_, opt_state + b * state_size_);
          } else {
            const std::int64_t row = t < n_rates_ ? t : n_rates_ - 1;
            lr_w[l] = rates_[2 * row];
            lr_a[l] = rates_[2 * row + 1];
          }
        }
      }
      bool live_lane[L];
      for (int l = 0; l < L; ++l) live_lane[l] = trial_[l] >= 0 && !stopped[l];
      update_all(lr_w, lr_a, w_sq, a_sq, live_lane);
      for (int l = 0; l < L; ++l) {
        const std::int64_t b = trial_[l];
        if (b < 0) continue;
        if (stopped[l]) {
          live -= refill(l) ? 0 : 1;
          continue;
        }
        const std::int64_t t = ++step_[l];
        if (!(w_sq[l] <= limit) || !(a_sq[l] <= limit)) {
          TrialState& st = states[b];
          store(l, w + b * p_, a + b * k_, opt_state + b * state_size_);
          st.step = t;
          st.done = true;
          st.loss = population_loss_grad(arch_.s, w + b * p_, a + b * k_, w_star + b * p_, a_star + b * k_, k_, p_,
                                         arch_.stride, arch_.normalize, nullptr, nullptr, scratch_.data());
          live -= refill(l) ? 0 : 1;
        } else if (t > last_step) {
          states[b].step = t;
          store(l, w + b * p_, a + b * k_, opt_state + b * state_size_);
          live -= refill(l) ? 0 : 1;
        }
      }
    }
  }

 private:
  void load(int l, std::int64_t b, const TrialState& st, const double* w, const double* a, const double* w_star,
            const double* a_star, const double* opt) {
    trial_[l] = b;
    step_[l] = st.step;
    const double* s = arch_.s;
    double yy = 0.0;
    for (std::int64_t i = 0; i < p_; ++i) {
      w_[i * L + l] = w[i];
      us_[i * L + l] = w_star[i] + s[i];
      yy += us_[i * L + l] * us_[i * L + l];
    }
    yy_[l] = yy;
    rho_star_[l] = std::sqrt(yy);
    for (std::int64_t j = 0; j < k_; ++j) {
      a_[j * L + l] = a[j];
      as_[j * L + l] = a_star[j];
    }
    // The optimizer's state (optimizers.hpp): [b or m: w part, a part][v: w part, a part][P1, P2].
    if (Opt != kGd) {
      for (std::int64_t i = 0; i < p_; ++i) mw_[i * L + l] = opt[i];
      for (std::int64_t j = 0; j < k_; ++j) ma_[j * L + l] = opt[p_ + j];
    }
    if (Opt == kAdam) {
      for (std::int64_t i = 0; i < p_; ++i) vw_[i * L + l] = opt[p_ + k_ + i];
      for (std::int64_t j = 0; j < k_; ++j) va_[j * L + l] = opt[2 * p_ + k_ + j];
      power1_[l] = opt[2 * (p_ + k_)];
      power2_[l] = opt[2 * (p_ + k_) + 1];
    }
  }

  void store(int l, double* w, double* a, double* opt) const {
    for (std::int64_t i = 0; i < p_; ++i) w[i] = w_[i * L + l];
    for (std::int64_t j = 0; j < k_; ++j) a[j] = a_[j * L + l];
    if (Opt != kGd) {
      for (std::int64_t i = 0; i < p_; ++i) opt[i] = mw_[i * L + l];
      for (std::int64_t j = 0; j < k_; ++j) opt[p_ + j] = ma_[j * L + l];
    }
    if (Opt == kAdam) {
      for (std::int64_t i = 0; i < p_; ++i) opt[p_ + k_ + i] = vw_[i * L + l];
      for (std::int64_t j = 0; j < k_; ++j) opt[2 * p_ + k_ + j] = va_[j * L + l];
      opt[2 * (p_ + k_)] = power1_[l];
      opt[2 * (p_ + k_) + 1] = power2_[l];
    }
  }

  // The update of every lane, as in the step loop (engine.hpp), and the squared norms after it.
  // The gradient entries are formed here from step_all's per-lane factors (the same operations as
  // population_loss_grad, so the same bits) rather than stored and read back; each entry then
  // goes through the optimizer's element rule.  live: lanes that really update (the others have
  // rate 0 and their state is not kept).
  void update_all(const double* lr_w, const double* lr_a, double* w_sq, double* a_sq, const bool* live) {
    double* __restrict w = w_.data();
    double* __restrict a = a_.data();
    double* __restrict mw = mw_.data();
    double* __restrict ma = ma_.data();
    double* __restrict vw = vw_.data();
    double* __restrict va = va_.data();
    const double* __restrict perp = perp_.data();
    const double* __restrict as = as_.data();
    double cw[L], sum_diff[L], g[L], rate_w[L], rate_a[L], c2[L];
    std::int64_t first[L];  // 0 or 1, as wide as a double so that it vectorizes with them
    for (int l = 0; l < L; ++l) {
      cw[l] = cw_[l];
      sum_diff[l] = sum_diff_[l];
      g[l] = g_[l];
      rate_w[l] = lr_w[l];
      rate_a[l] = lr_a[l];
      first[l] = step_[l] == 0 ? 1 : 0;
      c2[l] = 1.0;
    }
    if (Opt == kAdam)
      for (int l = 0; l < L; ++l)
        if (live[l]) {
          const AdamCorrections c = adam_corrections(opt_, lr_w[l], lr_a[l], power1_[l], power2_[l]);
          rate_w[l] = c.step_lr_w;
          rate_a[l] = c.step_lr_a;
          c2[l] = c.c2;
        }
    const double beta = opt_.beta, beta1 = opt_.beta1, beta2 = opt_.beta2, eps = opt_.eps;
    const bool nesterov = opt_.nesterov;
    for (std::int64_t i = 0; i < p_; ++i)
      SHORTCUTNET_LANE_LOOP
      for (int l = 0; l < L; ++l) {
        const double gw = cw[l] * perp[i * L + l];
        const std::int64_t at = i * L + l;
        double wi;
        if (Opt == kMomentum) {
          wi = w[at] - rate_w[l] * momentum_direction(gw, mw[at], beta, first[l] != 0, nesterov);
        } else if (Opt == kAdam) {
          wi = w[at] - adam_term(gw, mw[at], vw[at], beta1, beta2, eps, rate_w[l], c2[l]);
        } else {
          wi = w[at] - rate_w[l] * gw;
        }
        w[at] = wi;
        w_sq[l] += wi * wi;
      }
    for (std::int64_t j = 0; j < k_; ++j)
      SHORTCUTNET_LANE_LOOP
      for (int l = 0; l < L; ++l) {
        const std::int64_t at = j * L + l;
        const double ga = (sum_diff[l] + (kPi - 1.0) * a[at] - (g[l] - 1.0) * as[at]) * kInvTwoPi;
        double aj;
        if (Opt == kMomentum) {
          aj = a[at] - rate_a[l] * momentum_direction(ga, ma[at], beta, first[l] != 0, nesterov);
        } else if (Opt == kAdam) {
          aj = a[at] - adam_term(ga, ma[at], va[at], beta1, beta2, eps, rate_a[l], c2[l]);
        } else {
          aj = a[at] - rate_a[l] * ga;
        }
        a[at] = aj;
        a_sq[l] += aj * aj;
      }
  }

  // Loss and gradients of every lane: population_loss_grad's normalized, non-overlapping branch.
  // The arrays are reached through restrict-qualified locals: the compiler then knows that no
  // store changes another array or a member, and the short loops over lanes vectorize without
  // run-time overlap checks.
  void step_all() {
    const double* __restrict s = arch_.s;
    const double* __restrict w = w_.data();
    const double* __restrict us = us_.data();
    const double* __restrict a = a_.data();
    const double* __restrict as = as_.data();
    double* __restrict u = u_.data();
    double* __restrict perp = perp_.data();
    double* __restrict pn = pn_.data();
    const std::int64_t p = p_, k = k_;
    double xx[L], xy[L], c[L], c2[L], pp[L], phi[L], a_dot[L], sum_diff[L], sq_diff[L], yy[L];
    std::int64_t near[L];  // 0 or 1; as wide as a double so that it vectorizes with them
    SHORTCUTNET_LANE_LOOP
    for (int l = 0; l < L; ++l) {
      xx[l] = xy[l] = pp[l] = a_dot[l] = sum_diff[l] = sq_diff[l] = c2[l] = 0.0;
      yy[l] = yy_[l];
    }
    for (std::int64_t i = 0; i < p; ++i) {
      const double si = s[i];
      SHORTCUTNET_LANE_LOOP
      for (int l = 0; l < L; ++l) {
        const double ui = w[i * L + l] + si;
        u[i * L + l] = ui;
        xx[l] += ui * ui;
        xy[l] += ui * us[i * L + l];
      }
    }
    SHORTCUTNET_LANE_LOOP
    for (int l = 0; l < L; ++l) {
      c[l] = xy[l] / xx[l];
      near[l] = std::fabs(xy[l]) > kAccurateCos * std::sqrt(xx[l] * yy[l]) ? 1 : 0;
    }
    // angle_and_perp: the branch each lane needs (both when the lanes disagree), then a
    // per-lane choice.
    std::int64_t n_near = 0;
    for (int l = 0; l < L; ++l) n_near += near[l];
    const bool any_near = n_near > 0, any_far = n_near < L;
    if (any_near) {
      for (std::int64_t i = 0; i < p; ++i)
        SHORTCUTNET_LANE_LOOP
        for (int l = 0; l < L; ++l) {
          const double x = u[i * L + l], y = us[i * L + l];
          double hi, lo;
          two_prod(c[l], x, hi, lo);
          const double q = (y - hi) - lo;
          pn[i * L + l] = q;
          c2[l] += x * q;
        }
      SHORTCUTNET_LANE_LOOP
      for (int l = 0; l < L; ++l) c2[l] = c2[l] / xx[l];
    }
    if (any_far)
      for (std::int64_t i = 0; i < p; ++i)
        SHORTCUTNET_LANE_LOOP
        for (int l = 0; l < L; ++l) perp[i * L + l] = us[i * L + l] - c[l] * u[i * L + l];
    if (any_near && !any_far) {
      for (std::int64_t i = 0; i < p; ++i)
        SHORTCUTNET_LANE_LOOP
        for (int l = 0; l < L; ++l) {
          const double q = pn[i * L + l] - c2[l] * u[i * L + l];
          perp[i * L + l] = q;
          pp[l] += q * q;
        }
    } else if (any_near) {
      for (std::int64_t i = 0; i < p; ++i)
        SHORTCUTNET_LANE_LOOP
        for (int l = 0; l < L; ++l) {
          const double q_near = pn[i * L + l] - c2[l] * u[i * L + l];
          const double q = near[l] != 0 ? q_near : perp[i * L + l];
          perp[i * L + l] = q;
          pp[l] += q * q;
        }
    } else {
      for (std::int64_t i = 0; i < p; ++i)
        SHORTCUTNET_LANE_LOOP
        for (int l = 0; l < L; ++l) {
          const double q = perp[i * L + l];
          pp[l] += q * q;
        }
    }
    double sin_sq[L], sin_part[L];
    SHORTCUTNET_LANE_LOOP
    for (int l = 0; l < L; ++l) {
      sin_sq[l] = pp[l] * xx[l];
      sin_part[l] = std::sqrt(sin_sq[l]);
      phi[l] = rational_atan2(sin_part[l], xy[l]);
    }
    for (std::int64_t j = 0; j < k; ++j)
      SHORTCUTNET_LANE_LOOP
      for (int l = 0; l < L; ++l) {
        const double x = a[j * L + l], y = as[j * L + l];
        a_dot[l] += x * y;
        const double d = x - y;
        sum_diff[l] += d;
        sq_diff[l] += d * d;
      }
    SHORTCUTNET_LANE_LOOP
    for (int l = 0; l < L; ++l) {
      const double pmg = pi_minus_g(phi[l], sin_sq[l], sin_part[l], xy[l]);
      loss_[l] = (sum_diff[l] * sum_diff[l] + (kPi - 1.0) * sq_diff[l] + 2.0 * pmg * a_dot[l]) / (4.0 * kPi);
      g_[l] = kPi - pmg;
      sum_diff_[l] = sum_diff[l];
      cw_[l] = (-a_dot[l] * (kPi - phi[l]) / (kTwoPi * std::sqrt(xx[l]))) / rho_star_[l];
    }
  }

  Architecture arch_;
  const double* rates_;
  std::int64_t n_rates_, n_steps_;
  double tol_, divergence_;
  OptimizerSpec opt_;
  std::int64_t p_, k_, state_size_;
  std::vector<double> w_, us_, u_, perp_, pn_, a_, as_;
  std::vector<double> mw_, vw_, ma_, va_;  // optimizer state per lane: b or m, and v (Adam)
  std::vector<double> scratch_;
  std::int64_t trial_[L], step_[L];
  double power1_[L], power2_[L];  // Adam's running powers
  double yy_[L], rho_star_[L], loss_[L];
  double g_[L], sum_diff_[L], cw_[L];  // per-lane factors of the gradient (step_all -> update_all):
                                       // grad_a from g_ and sum_diff_, grad_w = cw_ perp
};

// B trials of the normalized, non-overlapping model through last_step: groups of trials handed
// to threads, each thread running them kLanes at a time in a LaneRunner.
constexpr int kLanes = 8;                // trials in lockstep per thread
constexpr std::int64_t kLaneGroup = 64;  // trials handed to a thread at a time

template <int Opt>
inline void run_lane_groups_of(const LaneArgs& args) {
  const Architecture arch{args.s, args.k, args.p, args.stride, true};
  const std::int64_t batch = args.batch;
  const std::int64_t n_groups = (batch + kLaneGroup - 1) / kLaneGroup;
  TrialState* states = static_cast<TrialState*>(args.states);
#ifdef SHORTCUTNET_OPENMP
#pragma omp parallel num_threads(args.threads)
#endif
  {
    LaneRunner<kLanes, Opt> runner(arch, args.rates, args.n_rates, args.n_steps, args.tol, args.divergence, args.opt);
#ifdef SHORTCUTNET_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (std::int64_t g = 0; g < n_groups; ++g)
      runner.run(g * kLaneGroup, std::min(batch, (g + 1) * kLaneGroup), args.last_step, states, args.w, args.a,
                 args.w_star, args.a_star, args.opt_state);
  }
}

inline void run_lane_groups(const LaneArgs& args) {
  switch (args.opt.kind) {
    case kMomentum: return run_lane_groups_of<kMomentum>(args);
    case kAdam: return run_lane_groups_of<kAdam>(args);
    default: return run_lane_groups_of<kGd>(args);
  }
}

}  // namespace shortcutnet
