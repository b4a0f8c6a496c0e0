// Exact population gradient descent: one trial with a recorded trajectory, or many independent
// trials at once, and the classification of where each run ended (MODEL.md sections 2, 4, 5).
//
// A trial is GD on the closed-form population loss, w <- w - lr_w(t) grad_w, a <- a - lr_a(t) grad_a,
// with per-step rates given as a (steps, 2) array.  A run is advanced in chunks of steps with its
// state kept in TrialState, so that a caller can check for interrupts between chunks; the
// results do not depend on the chunk length or on the number of threads (trials are independent).
//
// Header-only, no Python, no allocation inside the step loop (the caller passes a workspace).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "shortcutnet/population.hpp"

#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

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
//   rates: (n_steps, 2) row-major (lr_w, lr_a) for the update after step t; the run makes at most
//   n_steps updates.  Step t evaluates L and its gradient at the current parameters, records when
//   t % record_every == 0 (and at the final step), stops when L is non-finite or above the
//   divergence threshold, when L <= tol, or when t == n_steps, and otherwise updates.
//   w (p), a (k) are updated in place.  work: trial_workspace_size(k, p) doubles.
// Returns true once the trial is done (state.done).
template <class Recorder>
bool advance_trial(const Architecture& arch, double* w, double* a, const double* w_star, const double* a_star,
                   const double* rates, std::int64_t n_steps, double tol, std::int64_t record_every,
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
    const double lr_w = rates[2 * t], lr_a = rates[2 * t + 1];
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
//   w_star (B, p), a_star (B, k); rates (n_steps, 2) shared by all trials.
// Usage: construct, call run_chunk(last_step) for increasing last_step until it returns true,
// then finish(out).  Between chunks the caller may stop (the state stays consistent).
class TrialBatch {
 public:
  TrialBatch(const Architecture& arch, std::int64_t batch, double* w, double* a, const double* w_star,
             const double* a_star, const double* rates, std::int64_t n_steps, double tol, const Thresholds& th,
             int threads)
      : arch_(arch), batch_(batch), w_(w), a_(a), w_star_(w_star), a_star_(a_star), rates_(rates),
        n_steps_(n_steps), tol_(tol), th_(th), threads_(threads), state_(static_cast<std::size_t>(batch)) {}

  // Advance every unfinished trial through step last_step; true when all are done.
  bool run_chunk(std::int64_t last_step) {
    const std::int64_t p = arch_.p, k = arch_.k, B = batch_;
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
                                        n_steps_, tol_, 1, th_.divergence, last_step, st, work.data(), none);
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
  std::int64_t n_steps_;
  double tol_;
  Thresholds th_;
  int threads_;
  std::vector<TrialState> state_;
};

}  // namespace shortcutnet
