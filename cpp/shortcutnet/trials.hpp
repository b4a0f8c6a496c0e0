// Exact population gradient descent: one trial with a recorded trajectory, or many independent
// trials at once, and the classification of where each run ended (MODEL.md sections 2, 4, 5).
//
// A trial is GD on the closed-form population loss, w <- w - lr_w(t) grad_w, a <- a - lr_a(t) grad_a,
// with per-step rates given as an (n_rates, 2) table whose last row repeats (a constant rate is
// one row, a piecewise-constant schedule one row per step up to its last change).  A run is advanced in chunks of steps with its
// state kept in TrialState, so that a caller can check for interrupts between chunks; the
// results do not depend on the chunk length or on the number of threads (trials are independent).
// One trial runs population_loss_grad step by step (advance_trial); a batch of the paper's model
// (normalized, non-overlapping) runs LaneRunner, which performs the same operations for several
// trials in lockstep and gives the same bits; other models run advance_trial per trial.
// LaneRunner is also compiled for AVX2 and AVX-512 and chosen at run time (lane_kernels.hpp).
//
// Header-only, no Python, no allocation inside the step loop (the caller passes a workspace).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "shortcutnet/lane_kernels.hpp"
#include "shortcutnet/population.hpp"

#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

// The loops over the lanes of LaneRunner are the ones to vectorize (each lane is independent):
// without the annotation the compiler unrolls them and vectorizes the enclosing loop over the
// filter instead, with strided access and many shuffles.  Requires -fopenmp or -fopenmp-simd to
// take effect; the results are the same either way.
#define SHORTCUTNET_LANE_LOOP _Pragma("omp simd")

namespace shortcutnet {

// Where a run ended.  The codes are part of the binary interface (NumPy int8 arrays).
enum Outcome : std::int8_t { kUnconverged = 0, kGlobal = 1, kSpurious = 2, kDiverged = 3 };

// Thresholds of the outcome rule; the defaults are documented in python/shortcutnet/outcomes.py.
struct Thresholds {
  double global_phi = 1e-3;         // global: phi <= global_phi ...
  double global_a_err = 1e-3;       // ... and |a - a*| <= global_a_err
  double spurious_a_err = 1e-3;     // spurious: phi > pi/2, |a - a_sp| <= spurious_a_err ...
  double spurious_loss_gap = 1e-4;  // ... and |L - L(a_sp, pi)| <= spurious_loss_gap * max(1, L(a_sp, pi))
  double divergence = 1e12;         // diverged: non-finite, or loss, |w| or |a| above this
};

// The fixed part of a problem: architecture and teacher-independent data.
struct Architecture {
  const double* s;
  std::int64_t k, p, stride;
  bool normalize;
};

// Order parameters of a state (the columns of a trajectory).
struct Observation {
  double loss, phi, a_dot_astar, a_err, w_norm;
};

// Mutable per-trial bookkeeping between chunks.
struct TrialState {
  std::int64_t step = 0;           // updates done so far
  std::int64_t steps_to_tol = -1;  // first step with loss <= tol, -1 if never
  bool done = false;
  double loss = 0.0;               // loss at the current parameters once done
};

// Doubles of scratch needed by a trial: population workspace, both gradients, u, u*, perp, a_sp.
inline std::int64_t trial_workspace_size(std::int64_t k, std::int64_t p) {
  return population_workspace_size(p) + 4 * p + 2 * k;
}

// Loss at the spurious critical point (a_sp, phi = pi) of the normalized model:
// (1/(4 pi)) [(1^T(a_sp - a*))^2 + (pi - 1)|a_sp - a*|^2 + 2 pi a_sp^T a*]   (MODEL.md sections 2, 4).
inline double spurious_loss(const double* a_sp, const double* a_star, std::int64_t k) {
  double sum_diff = 0.0, sq_diff = 0.0, a_dot = 0.0;
  for (std::int64_t j = 0; j < k; ++j) {
    const double d = a_sp[j] - a_star[j];
    sum_diff += d;
    sq_diff += d * d;
    a_dot += a_sp[j] * a_star[j];
  }
  return (sum_diff * sum_diff + (kPi - 1.0) * sq_diff + kTwoPi * a_dot) / (4.0 * kPi);
}

namespace detail {

inline double distance(const double* x, const double* y, std::int64_t n) {
  double acc = 0.0;
  for (std::int64_t i = 0; i < n; ++i) acc += (x[i] - y[i]) * (x[i] - y[i]);
  return std::sqrt(acc);
}

}  // namespace detail

// Order parameters at (w, a) given the loss there.  work: at least 3 p doubles.
inline Observation observe(const Architecture& arch, const double* w, const double* a, const double* w_star,
                           const double* a_star, double loss, double* work) {
  const std::int64_t p = arch.p, k = arch.k;
  double* u = work;
  double* u_star = work + p;
  double* perp = work + 2 * p;
  for (std::int64_t t = 0; t < p; ++t) {
    u[t] = w[t] + arch.s[t];
    u_star[t] = w_star[t] + arch.s[t];
  }
  Observation obs;
  obs.loss = loss;
  obs.phi = angle_and_perp(u, u_star, p, perp);
  obs.a_dot_astar = dot(a, a_star, k);
  obs.a_err = detail::distance(a, a_star, k);
  obs.w_norm = std::sqrt(dot(w, w, p));
  return obs;
}

// The outcome rule (MODEL.md section 4), the only implementation the compiled engine uses;
// python/shortcutnet/outcomes.py mirrors it for runs driven from Python.
//   diverged: a non-finite value, or loss, |w| or |a| above th.divergence;
//   global:   phi <= th.global_phi and |a - a*| <= th.global_a_err
//             (un-normalized model: |rho a - rho* a*| in place of |a - a*|);
//   spurious: normalized, non-overlapping model only: phi > pi/2, |a - a_sp| <= th.spurious_a_err
//             and |L - L(a_sp, pi)| <= th.spurious_loss_gap * max(1, L(a_sp, pi)).  Not a tight
//             tolerance on pi - phi: the minimum is degenerate in phi and pi - phi shrinks slowly;
//   otherwise unconverged.
// work: at least 3 p + k doubles.
inline Outcome classify(const Architecture& arch, const double* w, const double* a, const double* w_star,
                        const double* a_star, const Observation& obs, const Thresholds& th, double* work) {
  const std::int64_t p = arch.p, k = arch.k;
  const double a_norm = std::sqrt(dot(a, a, k));
  if (!std::isfinite(obs.loss) || !std::isfinite(obs.phi) || !std::isfinite(obs.w_norm) || !std::isfinite(a_norm) ||
      obs.loss > th.divergence || obs.w_norm > th.divergence || a_norm > th.divergence)
    return kDiverged;
  double a_err = obs.a_err;
  if (!arch.normalize) {
    double rho = 0.0, rho_star = 0.0, acc = 0.0;
    for (std::int64_t t = 0; t < p; ++t) {
      rho += (w[t] + arch.s[t]) * (w[t] + arch.s[t]);
      rho_star += (w_star[t] + arch.s[t]) * (w_star[t] + arch.s[t]);
    }
    rho = std::sqrt(rho);
    rho_star = std::sqrt(rho_star);
    for (std::int64_t j = 0; j < k; ++j) acc += (rho * a[j] - rho_star * a_star[j]) * (rho * a[j] - rho_star * a_star[j]);
    a_err = std::sqrt(acc);
  }
  if (obs.phi <= th.global_phi && a_err <= th.global_a_err) return kGlobal;
  if (arch.normalize && arch.stride >= arch.p && obs.phi > 0.5 * kPi) {
    double* a_sp = work;
    spurious_second_layer(a_star, k, a_sp);
    const double loss_sp = spurious_loss(a_sp, a_star, k);
    if (detail::distance(a, a_sp, k) <= th.spurious_a_err &&
        std::fabs(obs.loss - loss_sp) <= th.spurious_loss_gap * std::max(1.0, loss_sp))
      return kSpurious;
  }
  return kUnconverged;
}

// A recorder that keeps nothing (batched trials need only the final state).
struct NoRecord {
  static constexpr bool active = false;
  void operator()(std::int64_t, const Observation&) {}
};

// Advance one trial until it stops or has evaluated step `last_step` (inclusive).
//   rates: (n_rates, 2) row-major (lr_w, lr_a) for the update after step t (row min(t, n_rates - 1));
//   the run makes at most n_steps updates.  Step t evaluates L and its gradient at the current parameters, records when
//   t % record_every == 0 (and at the final step), stops when L is non-finite or above the
//   divergence threshold, when L <= tol, or when t == n_steps, and otherwise updates.
//   w (p), a (k) are updated in place.  work: trial_workspace_size(k, p) doubles.
// Returns true once the trial is done (state.done).
template <class Recorder>
bool advance_trial(const Architecture& arch, double* w, double* a, const double* w_star, const double* a_star,
                   const double* rates, std::int64_t n_rates, std::int64_t n_steps, double tol,
                   std::int64_t record_every,
                   double divergence, std::int64_t last_step, TrialState& state, double* work, Recorder& record) {
  const std::int64_t p = arch.p, k = arch.k;
  double* pop_work = work;
  double* grad_w = work + population_workspace_size(p);
  double* grad_a = grad_w + p;
  double* obs_work = grad_a + k;
  while (!state.done && state.step <= last_step) {
    const std::int64_t t = state.step;
    const double loss = population_loss_grad(arch.s, w, a, w_star, a_star, k, p, arch.stride, arch.normalize, grad_w,
                                             grad_a, pop_work);
    const bool diverged = !(loss <= divergence);  // also catches NaN
    const bool converged = !diverged && loss <= tol;
    if (converged) state.steps_to_tol = t;
    if (diverged || converged || t == n_steps) {
      state.done = true;
      state.loss = loss;
    }
    if constexpr (Recorder::active) {
      if (state.done || t % record_every == 0) record(t, observe(arch, w, a, w_star, a_star, loss, obs_work));
    }
    if (state.done) break;
    const std::int64_t row = t < n_rates ? t : n_rates - 1;
    const double lr_w = rates[2 * row], lr_a = rates[2 * row + 1];
    double w_sq = 0.0, a_sq = 0.0;
    for (std::int64_t i = 0; i < p; ++i) {
      w[i] -= lr_w * grad_w[i];
      w_sq += w[i] * w[i];
    }
    for (std::int64_t j = 0; j < k; ++j) {
      a[j] -= lr_a * grad_a[j];
      a_sq += a[j] * a[j];
    }
    state.step = t + 1;
    // Parameters can run away while the loss stays bounded (the filter's scale is free in the
    // normalized model); stop there too rather than produce infinities.
    const double limit = divergence * divergence;
    if (!(w_sq <= limit) || !(a_sq <= limit)) {
      state.done = true;
      state.loss = population_loss_grad(arch.s, w, a, w_star, a_star, k, p, arch.stride, arch.normalize, nullptr,
                                        nullptr, pop_work);
      if constexpr (Recorder::active) record(state.step, observe(arch, w, a, w_star, a_star, state.loss, obs_work));
    }
  }
  return state.done;
}

// The normalized, non-overlapping model (the paper's) advanced for L trials in lockstep.
// One trial's step is a long chain of dependent dot products, square roots and atan2, so a
// single trial leaves the core mostly idle; L independent trials in structure-of-arrays layout
// ([i][lane]) fill it (and let the compiler use SIMD).  Every lane performs exactly the
// operations of population_loss_grad / advance_trial in the same order, so results are
// bit-identical to the one-trial path.  A lane whose trial stops is refilled with the next one.
template <int L>
class LaneRunner {
 public:
  LaneRunner(const Architecture& arch, const double* rates, std::int64_t n_rates, std::int64_t n_steps, double tol,
             double divergence)
      : arch_(arch), rates_(rates), n_rates_(n_rates), n_steps_(n_steps), tol_(tol), divergence_(divergence),
        p_(arch.p), k_(arch.k),
        w_(static_cast<std::size_t>(p_ * L)), us_(w_.size()), u_(w_.size()), perp_(w_.size()), pn_(w_.size()),
        a_(static_cast<std::size_t>(k_ * L)), as_(a_.size()),
        scratch_(static_cast<std::size_t>(population_workspace_size(p_) + 2 * p_ + 2 * k_)) {}

  // Advance trials lo..hi-1 (w, a, w_star, a_star: row-major (B, p) / (B, k)) through last_step.
  void run(std::int64_t lo, std::int64_t hi, std::int64_t last_step, TrialState* states, double* w, double* a,
           const double* w_star, const double* a_star) {
    std::int64_t next = lo;
    int live = 0;
    for (int l = 0; l < L; ++l) {
      trial_[l] = -1;
      for (std::int64_t i = 0; i < p_; ++i) w_[i * L + l] = us_[i * L + l] = 1.0;  // harmless filler
      for (std::int64_t j = 0; j < k_; ++j) a_[j * L + l] = as_[j * L + l] = 0.0;
    }
    auto refill = [&](int l) {
      trial_[l] = -1;
      while (next < hi) {
        const std::int64_t b = next++;
        const TrialState& st = states[b];
        if (st.done || st.step > last_step) continue;
        load(l, b, st, w + b * p_, a + b * k_, w_star + b * p_, a_star + b * k_);
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
            store(l, w + b * p_, a + b * k_);
          } else {
            const std::int64_t row = t < n_rates_ ? t : n_rates_ - 1;
            lr_w[l] = rates_[2 * row];
            lr_a[l] = rates_[2 * row + 1];
          }
        }
      }
      update_all(lr_w, lr_a, w_sq, a_sq);
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
          store(l, w + b * p_, a + b * k_);
          st.step = t;
          st.done = true;
          st.loss = population_loss_grad(arch_.s, w + b * p_, a + b * k_, w_star + b * p_, a_star + b * k_, k_, p_,
                                         arch_.stride, arch_.normalize, nullptr, nullptr, scratch_.data());
          live -= refill(l) ? 0 : 1;
        } else if (t > last_step) {
          states[b].step = t;
          store(l, w + b * p_, a + b * k_);
          live -= refill(l) ? 0 : 1;
        }
      }
    }
  }

 private:
  void load(int l, std::int64_t b, const TrialState& st, const double* w, const double* a, const double* w_star,
            const double* a_star) {
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
  }

  void store(int l, double* w, double* a) const {
    for (std::int64_t i = 0; i < p_; ++i) w[i] = w_[i * L + l];
    for (std::int64_t j = 0; j < k_; ++j) a[j] = a_[j * L + l];
  }

  // The update of every lane, as in advance_trial, and the squared norms after it.  The
  // gradient entries are formed here from step_all's per-lane factors (the same operations as
  // population_loss_grad, so the same bits) rather than stored and read back.
  void update_all(const double* lr_w, const double* lr_a, double* w_sq, double* a_sq) {
    double* __restrict w = w_.data();
    double* __restrict a = a_.data();
    const double* __restrict perp = perp_.data();
    const double* __restrict as = as_.data();
    double cw[L], sum_diff[L], g[L];
    for (int l = 0; l < L; ++l) {
      cw[l] = cw_[l];
      sum_diff[l] = sum_diff_[l];
      g[l] = g_[l];
    }
    for (std::int64_t i = 0; i < p_; ++i)
      SHORTCUTNET_LANE_LOOP
      for (int l = 0; l < L; ++l) {
        const double gw = cw[l] * perp[i * L + l];
        const double wi = w[i * L + l] - lr_w[l] * gw;
        w[i * L + l] = wi;
        w_sq[l] += wi * wi;
      }
    for (std::int64_t j = 0; j < k_; ++j)
      SHORTCUTNET_LANE_LOOP
      for (int l = 0; l < L; ++l) {
        const double aj0 = a[j * L + l];
        const double ga = (sum_diff[l] + (kPi - 1.0) * aj0 - (g[l] - 1.0) * as[j * L + l]) * kInvTwoPi;
        const double aj = aj0 - lr_a[l] * ga;
        a[j * L + l] = aj;
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
  std::int64_t p_, k_;
  std::vector<double> w_, us_, u_, perp_, pn_, a_, as_, scratch_;
  std::int64_t trial_[L], step_[L];
  double yy_[L], rho_star_[L], loss_[L];
  double g_[L], sum_diff_[L], cw_[L];  // per-lane factors of the gradient (step_all -> update_all):
                                       // grad_a from g_ and sum_diff_, grad_w = cw_ perp
};

// B trials of the normalized, non-overlapping model through last_step: groups of trials handed
// to threads, each thread running them kLanes at a time in a LaneRunner.
constexpr int kLanes = 8;              // trials in lockstep per thread
constexpr std::int64_t kLaneGroup = 64;  // trials handed to a thread at a time

inline void run_lane_groups(const Architecture& arch, const double* rates, std::int64_t n_rates, std::int64_t n_steps,
                            double tol, double divergence, int threads, std::int64_t batch, std::int64_t last_step,
                            TrialState* states, double* w, double* a, const double* w_star, const double* a_star) {
  const std::int64_t n_groups = (batch + kLaneGroup - 1) / kLaneGroup;
#ifdef SHORTCUTNET_OPENMP
#pragma omp parallel num_threads(threads)
#endif
  {
    LaneRunner<kLanes> runner(arch, rates, n_rates, n_steps, tol, divergence);
#ifdef SHORTCUTNET_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (std::int64_t g = 0; g < n_groups; ++g)
      runner.run(g * kLaneGroup, std::min(batch, (g + 1) * kLaneGroup), last_step, states, w, a, w_star, a_star);
  }
  (void)threads;
}

// Per-trial results of a batch.
struct TrialsOutput {
  std::int8_t* outcome;       // (B,)
  double* phi;                // (B,)
  double* loss;               // (B,)
  std::int64_t* steps_to_tol; // (B,)
  std::int64_t* steps;        // (B,) updates made
};

// B independent trials, advanced together one chunk of steps at a time.
//   w (B, p), a (B, k): initial parameters on entry, current parameters after each chunk;
//   w_star (B, p), a_star (B, k); rates (n_rates, 2) shared by all trials (see advance_trial).
// Usage: construct, call run_chunk(last_step) for increasing last_step until it returns true,
// then finish(out).  Between chunks the caller may stop (the state stays consistent).
class TrialBatch {
 public:
  TrialBatch(const Architecture& arch, std::int64_t batch, double* w, double* a, const double* w_star,
             const double* a_star, const double* rates, std::int64_t n_rates, std::int64_t n_steps, double tol,
             const Thresholds& th, int threads)
      : arch_(arch), batch_(batch), w_(w), a_(a), w_star_(w_star), a_star_(a_star), rates_(rates),
        n_rates_(n_rates), n_steps_(n_steps), tol_(tol), th_(th), threads_(threads), state_(static_cast<std::size_t>(batch)) {}

  // Run the lockstep lanes through kernel (see lane_kernels.hpp) instead of the baseline copy.
  void use_lane_kernel(LaneKernel kernel) { lane_kernel_ = kernel; }

  // Advance every unfinished trial through step last_step; true when all are done.
  bool run_chunk(std::int64_t last_step) {
    const std::int64_t p = arch_.p, k = arch_.k, B = batch_;
    if (arch_.normalize && arch_.stride >= p) {
      if (lane_kernel_ != nullptr) {
        const LaneArgs args{arch_.s, k, p, arch_.stride, rates_, n_rates_, n_steps_, tol_, th_.divergence, threads_,
                            B, last_step, state_.data(), w_, a_, w_star_, a_star_};
        lane_kernel_(args);
      } else {
        run_lane_groups(arch_, rates_, n_rates_, n_steps_, tol_, th_.divergence, threads_, B, last_step,
                        state_.data(), w_, a_, w_star_, a_star_);
      }
      for (const TrialState& st : state_)
        if (!st.done) return false;
      return true;
    }
    const std::int64_t ws = trial_workspace_size(k, p);
    bool all_done = true;
#ifdef SHORTCUTNET_OPENMP
#pragma omp parallel num_threads(threads_) reduction(&& : all_done)
#endif
    {
      std::vector<double> work(static_cast<std::size_t>(ws));
      NoRecord none;
#ifdef SHORTCUTNET_OPENMP
#pragma omp for schedule(dynamic, 8)
#endif
      for (std::int64_t b = 0; b < B; ++b) {
        TrialState& st = state_[static_cast<std::size_t>(b)];
        const bool done = advance_trial(arch_, w_ + b * p, a_ + b * k, w_star_ + b * p, a_star_ + b * k, rates_,
                                        n_rates_, n_steps_, tol_, 1, th_.divergence, last_step, st, work.data(), none);
        all_done = all_done && done;
      }
    }
    return all_done;
  }

  void finish(const TrialsOutput& out) const {
    const std::int64_t p = arch_.p, k = arch_.k;
    std::vector<double> work(static_cast<std::size_t>(3 * p + k));
    for (std::int64_t b = 0; b < batch_; ++b) {
      const TrialState& st = state_[static_cast<std::size_t>(b)];
      const double *w = w_ + b * p, *a = a_ + b * k, *ws = w_star_ + b * p, *as = a_star_ + b * k;
      const Observation obs = observe(arch_, w, a, ws, as, st.loss, work.data());
      out.outcome[b] = classify(arch_, w, a, ws, as, obs, th_, work.data());
      out.phi[b] = obs.phi;
      out.loss[b] = st.loss;
      out.steps_to_tol[b] = st.steps_to_tol;
      out.steps[b] = st.step;
    }
  }

 private:
  Architecture arch_;
  std::int64_t batch_;
  double *w_, *a_;
  const double *w_star_, *a_star_, *rates_;
  std::int64_t n_rates_, n_steps_;
  double tol_;
  Thresholds th_;
  int threads_;
  std::vector<TrialState> state_;
  LaneKernel lane_kernel_ = nullptr;
};

}  // namespace shortcutnet
