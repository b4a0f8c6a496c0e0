// The optimizers of the training engine (docs/training.md section 3), in torch.optim's conventions
// (dampening 0, no weight decay), per layer with the step's rate lr:
//   gd:        x = x - lr g
//   momentum:  b = g at t = 0, else b = beta b + g;  d = g + beta b (Nesterov) or b;  x = x - lr d
//   adam:      m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) (g g),  P1 = beta1 P1,
//              P2 = beta2 P2,  x = x - (lr / (1 - P1)) (m / (sqrt(v) (1 / sqrt(1 - P2)) + eps))
// The state of a trial is plain doubles: momentum [b_w (p), b_a (k)], adam [m_w (p), m_a (k),
// v_w (p), v_a (k), P1, P2].  The element rules below are what every path (one trial, lockstep
// lanes) and python/shortcutnet/optim.py evaluate, operation for operation, so they agree bitwise.
#pragma once

#include <cmath>
#include <cstdint>

#include "shortcutnet/angle_math.hpp"

namespace shortcutnet {

enum OptimizerKind : int { kGd = 0, kMomentum = 1, kAdam = 2 };

struct OptimizerSpec {
  int kind = kGd;
  double beta = 0.0;
  bool nesterov = false;
  double beta1 = 0.0, beta2 = 0.0, eps = 0.0;
};

// Doubles of state per trial.
inline std::int64_t optimizer_state_size(const OptimizerSpec& spec, std::int64_t k, std::int64_t p) {
  switch (spec.kind) {
    case kMomentum: return p + k;
    case kAdam: return 2 * (p + k) + 2;
    default: return 0;
  }
}

// The state before the first step: zero buffers and moments, running powers 1.
inline void optimizer_init(const OptimizerSpec& spec, std::int64_t k, std::int64_t p, double* state) {
  const std::int64_t n = optimizer_state_size(spec, k, p);
  for (std::int64_t i = 0; i < n; ++i) state[i] = 0.0;
  if (spec.kind == kAdam) state[n - 2] = state[n - 1] = 1.0;
}

// The direction of momentum for gradient entry g with buffer b (updated in place).
SHORTCUTNET_LANE_INLINE double momentum_direction(double g, double& b, double beta, bool first, bool nesterov) {
  b = first ? g : beta * b + g;
  return nesterov ? g + beta * b : b;
}

// The term Adam subtracts for entry g with moments m, v (updated in place); step_lr = lr / (1 - P1),
// r2 = 1 / sqrt(1 - P2) (a product, not a quotient, per entry: one division per entry).
SHORTCUTNET_LANE_INLINE double adam_term(double g, double& m, double& v, double beta1, double beta2, double eps,
                                         double step_lr, double r2) {
  m = beta1 * m + (1.0 - beta1) * g;
  v = beta2 * v + (1.0 - beta2) * (g * g);
  return step_lr * (m / (std::sqrt(v) * r2 + eps));
}

namespace detail {

inline void gd_layer(double* x, const double* g, std::int64_t n, double lr) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] - lr * g[i];
}

inline void momentum_layer(double* x, const double* g, double* b, std::int64_t n, double lr, double beta, bool first,
                           bool nesterov) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] - lr * momentum_direction(g[i], b[i], beta, first, nesterov);
}

inline void adam_layer(double* x, const double* g, double* m, double* v, std::int64_t n, double beta1, double beta2,
                       double eps, double step_lr, double r2) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] - adam_term(g[i], m[i], v[i], beta1, beta2, eps, step_lr, r2);
}

}  // namespace detail

// Adam's bias corrections of a step for both layers, after advancing the running powers.
struct AdamCorrections {
  double step_lr_w, step_lr_a, r2;
};
inline AdamCorrections adam_corrections(const OptimizerSpec& spec, double lr_w, double lr_a, double& power1,
                                        double& power2) {
  power1 = spec.beta1 * power1;
  power2 = spec.beta2 * power2;
  const double c1 = 1.0 - power1;
  return {lr_w / c1, lr_a / c1, 1.0 / std::sqrt(1.0 - power2)};
}

// One update of (w, a) by (grad_w, grad_a) at step t with rates (lr_w, lr_a).
inline void optimizer_step(const OptimizerSpec& spec, std::int64_t t, double lr_w, double lr_a, const double* grad_w,
                           const double* grad_a, double* w, double* a, std::int64_t k, std::int64_t p,
                           double* state) {
  switch (spec.kind) {
    case kMomentum:
      detail::momentum_layer(w, grad_w, state, p, lr_w, spec.beta, t == 0, spec.nesterov);
      detail::momentum_layer(a, grad_a, state + p, k, lr_a, spec.beta, t == 0, spec.nesterov);
      return;
    case kAdam: {
      double* m = state;
      double* v = state + p + k;
      double* powers = state + 2 * (p + k);
      const AdamCorrections c = adam_corrections(spec, lr_w, lr_a, powers[0], powers[1]);
      detail::adam_layer(w, grad_w, m, v, p, spec.beta1, spec.beta2, spec.eps, c.step_lr_w, c.r2);
      detail::adam_layer(a, grad_a, m + p, v + p, k, spec.beta1, spec.beta2, spec.eps, c.step_lr_a, c.r2);
      return;
    }
    default:
      detail::gd_layer(w, grad_w, p, lr_w);
      detail::gd_layer(a, grad_a, k, lr_a);
  }
}

}  // namespace shortcutnet
