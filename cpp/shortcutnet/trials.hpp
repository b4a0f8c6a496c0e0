// What a training trial is and how it ends (docs/model.md, "Critical points" and "The paper's claim and the experiments"; docs/training.md section 4):
// the architecture, the per-trial bookkeeping between chunks of steps, the order parameters of a
// state and the outcome rule.  The step loop is in engine.hpp, the lockstep lanes in lane_runner.hpp.
//
// Header-only, no Python.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "shortcutnet/population.hpp"

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

// Loss at the spurious critical point (a_sp, phi = pi) of the normalized model:
// (1/(4 pi)) [(1^T(a_sp - a*))^2 + (pi - 1)|a_sp - a*|^2 + 2 pi a_sp^T a*]   (docs/model.md, "Closed forms under Gaussian input" and "Critical points").
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

// |x - y| with the rescaling of safe_norm (population.hpp), so that the squares of the difference
// neither overflow nor underflow; in the normal range the bits of the plain formula.
inline double distance(const double* x, const double* y, std::int64_t n) {
  double largest = 0.0;
  for (std::int64_t i = 0; i < n; ++i) largest = std::max(largest, std::fabs(x[i] - y[i]));
  int e = 0;
  if (largest > 0.0) std::frexp(largest, &e);
  const double scale = largest > 0.0 ? std::ldexp(1.0, std::min(1 - e, 1023)) : 1.0;
  double acc = 0.0;
  for (std::int64_t i = 0; i < n; ++i) acc += (scale * (x[i] - y[i])) * (scale * (x[i] - y[i]));
  return std::sqrt(acc) / scale;
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
  obs.w_norm = safe_norm(w, p);
  return obs;
}

// What the outcome rule reads of a final state (both engines fill it: the full one from (w, a),
// the reduced one from its coordinates).
struct OutcomeInputs {
  double loss, phi, w_norm, a_norm;
  double a_err;                     // |a - a*|, or |rho a - rho* a*| for the un-normalized model
  bool spurious_possible = false;   // normalized, non-overlapping model with phi > pi/2
  double a_sp_err = 0.0, loss_sp = 0.0;  // |a - a_sp| and L(a_sp, pi), when spurious_possible
};

// The outcome rule (docs/model.md, "Critical points"), the only implementation the compiled engines use;
// python/shortcutnet/outcomes.py mirrors it for runs driven from Python.
//   diverged: a non-finite value, or loss, |w| or |a| above th.divergence;
//   global:   phi <= th.global_phi and |a - a*| <= th.global_a_err
//             (un-normalized model: |rho a - rho* a*| in place of |a - a*|);
//   spurious: normalized, non-overlapping model only: phi > pi/2, |a - a_sp| <= th.spurious_a_err
//             and |L - L(a_sp, pi)| <= th.spurious_loss_gap * max(1, L(a_sp, pi)).  Not a tight
//             tolerance on pi - phi: the minimum is degenerate in phi and pi - phi shrinks slowly;
//   otherwise unconverged.
inline Outcome decide_outcome(const OutcomeInputs& in, const Thresholds& th) {
  if (!std::isfinite(in.loss) || !std::isfinite(in.phi) || !std::isfinite(in.w_norm) || !std::isfinite(in.a_norm) ||
      in.loss > th.divergence || in.w_norm > th.divergence || in.a_norm > th.divergence)
    return kDiverged;
  if (in.phi <= th.global_phi && in.a_err <= th.global_a_err) return kGlobal;
  if (in.spurious_possible && in.a_sp_err <= th.spurious_a_err &&
      std::fabs(in.loss - in.loss_sp) <= th.spurious_loss_gap * std::max(1.0, in.loss_sp))
    return kSpurious;
  return kUnconverged;
}

// The outcome of the full-dimensional state (w, a).  work: at least 3 p + k doubles.
inline Outcome classify(const Architecture& arch, const double* w, const double* a, const double* w_star,
                        const double* a_star, const Observation& obs, const Thresholds& th, double* work) {
  const std::int64_t p = arch.p, k = arch.k;
  OutcomeInputs in;
  in.loss = obs.loss;
  in.phi = obs.phi;
  in.w_norm = obs.w_norm;
  in.a_norm = safe_norm(a, k);
  in.a_err = obs.a_err;
  if (!arch.normalize) {
    double* u = work;
    for (std::int64_t t = 0; t < p; ++t) u[t] = w[t] + arch.s[t];
    const double rho = safe_norm(u, p);
    for (std::int64_t t = 0; t < p; ++t) u[t] = w_star[t] + arch.s[t];
    const double rho_star = safe_norm(u, p);
    double* diff = work;
    for (std::int64_t j = 0; j < k; ++j) diff[j] = rho * a[j] - rho_star * a_star[j];
    in.a_err = safe_norm(diff, k);
  }
  in.spurious_possible = arch.normalize && arch.stride >= arch.p && obs.phi > 0.5 * kPi;
  if (in.spurious_possible) {
    double* a_sp = work;
    spurious_second_layer(a_star, k, a_sp);
    in.a_sp_err = detail::distance(a, a_sp, k);
    in.loss_sp = spurious_loss(a_sp, a_star, k);
  }
  return decide_outcome(in, th);
}

}  // namespace shortcutnet
