// Exact population loss and gradient of the two-layer convolutional network with an optional
// identity shortcut and optional normalization, on i.i.d. standard Gaussian input.
//
// Model (docs/model.md, "The network"): f(Z; w, a) = sum_j a_j relu(<Z_j, v>), u = w + s, v = u/|u| when
// normalized (else v = u); teacher (w*, a*) with the same s.
// Closed forms: docs/model.md, "Closed forms under Gaussian input" (stride >= p) and its last paragraph (overlapping patches).
//
// Everything here is double precision, allocation-free when the caller passes a workspace, and
// free of global state, so it can run inside OpenMP loops and other people's simulations.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "shortcutnet/angle_math.hpp"

namespace shortcutnet {

constexpr double kPi = 3.14159265358979323846;
constexpr double kTwoPi = 6.28318530717958647692;
// 1/(2 pi) rounded once: the gradient's many divisions by 2 pi become multiplications (the
// backends multiply by the same rounded constant).
constexpr double kInvTwoPi = 1.0 / kTwoPi;

// Below this |cos(angle)| the plain projection y - (x.y) x/|x|^2 loses no significant digits;
// above it, perp is formed from exact products and projected twice (see angle_and_perp).
constexpr double kAccurateCos = 0.75;

inline double dot(const double* x, const double* y, std::int64_t n) {
  double acc = 0.0;
  for (std::int64_t i = 0; i < n; ++i) acc += x[i] * y[i];
  return acc;
}

// Error-free product: a*b == hi + lo exactly.  With an FMA unit, lo = fma(a, b, -hi); without
// one, Dekker's splitting (a library fma call would be far slower).  Both give the same exact lo,
// so results do not depend on the instruction set.
SHORTCUTNET_LANE_INLINE void two_prod(double a, double b, double& hi, double& lo) {
  hi = a * b;
#if defined(__FMA__) || defined(__aarch64__)
  lo = std::fma(a, b, -hi);
#else
  constexpr double kSplitter = 134217729.0;  // 2^27 + 1
  const double ca = kSplitter * a, a_hi = ca - (ca - a), a_lo = a - a_hi;
  const double cb = kSplitter * b, b_hi = cb - (cb - b), b_lo = b - b_hi;
  lo = ((a_hi * b_hi - hi) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo;
#endif
}

// 2^(1-e) for max_i |x_i| = m 2^e, m in [1/2, 1): multiplying by it is exact and brings the
// largest entry into [1, 2), so that squares neither overflow (|x| ~ 1e150) nor underflow
// (|x| ~ 1e-150).  Capped at 2^1023 so that it stays representable for subnormal input.
inline double pow2_normalizer(const double* x, std::int64_t n) {
  double m = 0.0;
  for (std::int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  if (!(m > 0.0)) return 1.0;
  int e = 0;
  std::frexp(m, &e);
  return std::ldexp(1.0, std::min(1 - e, 1023));
}

// Euclidean norm without overflow or underflow of the squares, for any finite scale of x.
inline double safe_norm(const double* x, std::int64_t n) {
  const double sx = pow2_normalizer(x, n);
  double acc = 0.0;
  for (std::int64_t i = 0; i < n; ++i) acc += (sx * x[i]) * (sx * x[i]);
  return std::sqrt(acc) / sx;
}

// The angle phi between two vectors with the two sides of its atan2: sin_part = |x| |perp| >= 0
// (|x| |y| sin(phi)) and cos_part = x.y (|x| |y| cos(phi)), computed from scale_x x and scale_y y
// (powers of two that bring the largest entries into [1, 2)), and r = sqrt(sin_part^2 +
// cos_part^2) (|x| |y| scaled alike); norms = |x| |y| unscaled (r / scale_x / scale_y).
struct AngleParts {
  double phi, sin_part_sq, sin_part, cos_part, r, norms, scale_x, scale_y;
};

// Angle between x and y in [0, pi] by atan2, and perp = the component of y orthogonal to x.
// Near 0 and pi, perp = y - c x is a tiny difference of nearly equal vectors.  There each
// y_i - c x_i is formed from the exact product c x_i, so the only error left is the rounding of
// c, which is parallel to x; a second projection removes it ("twice is enough", Kahan-Parlett).
// The angle and perp then keep a relative accuracy of a few ulps in O(n) operations.
// x and y are rescaled by powers of two first (exact), so any finite scale works; perp is returned
// for the unscaled y, or for scale_y y when scaled_perp (whose entries cannot underflow).
inline AngleParts angle_parts_and_perp(const double* x, const double* y, std::int64_t n, double* perp,
                                       bool scaled_perp = false) {
  const double sx = pow2_normalizer(x, n);
  const double sy = pow2_normalizer(y, n);
  double xx = 0.0, xy = 0.0, yy = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    xx += (sx * x[i]) * (sx * x[i]);
    xy += (sx * x[i]) * (sy * y[i]);
    yy += (sy * y[i]) * (sy * y[i]);
  }
  if (std::fabs(xy) > kAccurateCos * std::sqrt(xx * yy)) {
    // The rounding of c is projected out, so c and c2 share one reciprocal of |x|^2.
    const double inv_xx = 1.0 / xx;
    const double c = xy * inv_xx;
    double c2 = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      double p_hi, p_lo;
      two_prod(c, sx * x[i], p_hi, p_lo);
      perp[i] = (sy * y[i] - p_hi) - p_lo;
      c2 += (sx * x[i]) * perp[i];
    }
    c2 *= inv_xx;
    for (std::int64_t i = 0; i < n; ++i) perp[i] -= c2 * (sx * x[i]);
  } else {
    const double c = xy / xx;
    for (std::int64_t i = 0; i < n; ++i) perp[i] = sy * y[i] - c * (sx * x[i]);
  }
  AngleParts parts;
  parts.sin_part_sq = dot(perp, perp, n) * xx;
  parts.sin_part = std::sqrt(parts.sin_part_sq);
  parts.cos_part = xy;
  parts.r = std::sqrt(parts.sin_part_sq + xy * xy);
  parts.norms = parts.r / sx / sy;  // exact: powers of two
  parts.scale_x = sx;
  parts.scale_y = sy;
  parts.phi = rational_atan2(parts.sin_part, xy);
  if (!scaled_perp)
    for (std::int64_t i = 0; i < n; ++i) perp[i] /= sy;
  return parts;
}

inline double angle_and_perp(const double* x, const double* y, std::int64_t n, double* perp) {
  return angle_parts_and_perp(x, y, n, perp).phi;
}

inline double angle(const double* x, const double* y, std::int64_t n) {
  std::vector<double> perp(static_cast<std::size_t>(n));
  return angle_and_perp(x, y, n, perp.data());
}

// pi - g(phi), g(phi) = (pi - phi) cos(phi) + sin(phi), from phi and the sides of its atan2
// (angle_parts_and_perp; sin_part = sqrt(sin_part_sq) >= 0, r = sqrt(sin_part_sq + cos_part^2)),
// with no sin or cos call: sin(phi) = sin_part/r, cos(phi) = cos_part/r and
// 1 - cos(phi) = sin_part^2/(r m), m = r + cos_part (no cancellation for cos_part > 0), or
// (r - cos_part)/(r m), m = 1 (cos_part <= 0).  pi - g = pi (1 - cos(phi)) + (phi cos(phi) - sin(phi));
// the second term cancels near 0 and is summed there (phi < 0.5) from its series
// sum_n (-1)^n 2n phi^(2n+1)/(2n+1)! (terms beyond n = 11 are below an ulp);
// elsewhere it is (phi cos_part - sin_part) m/(r m), so that both terms share one division.
// Straight-line code (both sides computed, one selected) so that loops over trials vectorize.
SHORTCUTNET_LANE_INLINE double pi_minus_g(double phi, double sin_part_sq, double sin_part, double cos_part,
                                          double r) {
  const bool acute = cos_part > 0.0;
  const double one_minus_cos_num = acute ? sin_part_sq : r - cos_part;
  const double m = acute ? r + cos_part : 1.0;
  const double den = r * m;
  const bool small = phi < 0.5;
  // The series c1 + c2 z + ... + c11 z^10, c_n = 2n (-1)^n/(2n+1)!, as c1 + z inner(z) with inner
  // by Estrin's scheme (a short dependency chain; its roundings are scaled by z inner/c1 < 0.03).
  const double z = phi * phi;
  const double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  const double e0 = 0.03333333333333333 + -0.0011904761904761906 * z;
  const double e1 = 2.2045855379188714e-05 + -2.505210838544172e-07 * z;
  const double e2 = 1.9270852604185937e-09 + -1.0706029224547743e-11 * z;
  const double e3 = 4.498331606952833e-14 + -1.4797143443923793e-16 * z;
  const double e4 = 3.9145882126782523e-19 + -8.509974375387505e-22 * z;
  const double inner = ((e0 + e1 * z2) + (e2 + e3 * z2) * z4) + e4 * z8;
  const double series = -0.3333333333333333 + z * inner;
  const double tail_series = (phi * z) * series;
  const double tail_direct_num = (phi * cos_part - sin_part) * m;  // (phi cos(phi) - sin(phi)) r m
  const double num = kPi * one_minus_cos_num + (small ? 0.0 : tail_direct_num);
  return num / den + (small ? tail_series : 0.0);
}

SHORTCUTNET_LANE_INLINE double pi_minus_g(double phi, double sin_part_sq, double sin_part, double cos_part) {
  return pi_minus_g(phi, sin_part_sq, sin_part, cos_part, std::sqrt(sin_part_sq + cos_part * cos_part));
}

// E[relu(x) relu(y)] for a unit-variance Gaussian pair with correlation r, and its derivative.
inline double kappa(double r) {
  r = std::min(1.0, std::max(-1.0, r));
  const double root = std::sqrt(std::max(0.0, 1.0 - r * r));
  return (root + (kPi - std::atan2(root, r)) * r) / kTwoPi;
}
inline double kappa_prime(double r) {
  r = std::min(1.0, std::max(-1.0, r));
  const double root = std::sqrt(std::max(0.0, 1.0 - r * r));
  return (kPi - std::atan2(root, r)) / kTwoPi;
}

// Scratch doubles needed by population_loss_grad for filter length p.
inline std::int64_t population_workspace_size(std::int64_t p) { return 8 * p; }

namespace detail {

// C_xy(delta) = sum_t x_t y_(t - delta) over valid t.
inline double shifted_dot(const double* x, const double* y, std::int64_t p, std::int64_t delta) {
  double acc = 0.0;
  const std::int64_t lo = std::max<std::int64_t>(0, delta);
  const std::int64_t hi = std::min<std::int64_t>(p, p + delta);
  for (std::int64_t t = lo; t < hi; ++t) acc += x[t] * y[t - delta];
  return acc;
}

// grad += scale * d/dx [|x||y| kappa(C_xy(delta)/(|x||y|))]; returns the value |x||y| kappa(r).
inline double pair_term(const double* x, const double* y, double nx, double ny, std::int64_t p,
                        std::int64_t delta, double scale, double* grad) {
  const double r = shifted_dot(x, y, p, delta) / nx / ny;
  const double value = nx * ny * kappa(r);
  if (grad != nullptr && scale != 0.0) {
    const double root = std::sqrt(std::max(0.0, 1.0 - std::min(1.0, r * r)));
    const double cx = scale * (ny / nx) * (root / kTwoPi);
    const double cy = scale * kappa_prime(r);
    for (std::int64_t t = 0; t < p; ++t) grad[t] += cx * x[t];
    const std::int64_t lo = std::max<std::int64_t>(0, delta);
    const std::int64_t hi = std::min<std::int64_t>(p, p + delta);
    for (std::int64_t t = lo; t < hi; ++t) grad[t] += cy * y[t - delta];
  }
  return value;
}

inline double non_overlapping(const double* u, const double* u_star, const double* a, const double* a_star,
                              std::int64_t k, std::int64_t p, bool normalize, double* grad_w, double* grad_a,
                              double* perp) {
  const double rho = normalize ? 1.0 : safe_norm(u, p);  // only the unnormalized model needs them
  const double rho_star = normalize ? 1.0 : safe_norm(u_star, p);
  const AngleParts angle_parts = angle_parts_and_perp(u, u_star, p, perp, normalize);
  const double phi = angle_parts.phi;
  const double a_dot = dot(a, a_star, k);
  const double pmg =
      pi_minus_g(phi, angle_parts.sin_part_sq, angle_parts.sin_part, angle_parts.cos_part, angle_parts.r);
  const double cs = normalize ? 1.0 : rho;        // student scale
  const double ct = normalize ? 1.0 : rho_star;   // teacher scale
  double sum_diff = 0.0, sq_diff = 0.0, sum_a = 0.0, sum_a_star = 0.0, sq_a = 0.0;
  for (std::int64_t j = 0; j < k; ++j) {
    const double d = cs * a[j] - ct * a_star[j];
    sum_diff += d;
    sq_diff += d * d;
    sum_a += a[j];
    sum_a_star += a_star[j];
    sq_a += a[j] * a[j];
  }
  const double loss = (sum_diff * sum_diff + (kPi - 1.0) * sq_diff + 2.0 * cs * ct * pmg * a_dot) / (4.0 * kPi);
  if (grad_w == nullptr && grad_a == nullptr) return loss;
  const double g = kPi - pmg;
  if (normalize) {
    if (grad_a != nullptr)
      for (std::int64_t j = 0; j < k; ++j)
        grad_a[j] = (sum_diff + (kPi - 1.0) * a[j] - (g - 1.0) * a_star[j]) * kInvTwoPi;
    if (grad_w != nullptr) {
      // -(a.a*)(pi - phi)/(2 pi |u|) (v* - (v.v*) v), with v* - (v.v*) v = perp/|u*|; one
      // division per call, not per entry, by |u| |u*| from the angle's sides (the engine's lanes
      // do the same).  In the rescaled sides (|u| |u*| = r / (sx sy), perp = perp_s / sy) no
      // intermediate over- or underflows: only the gradient itself scales like 1/|u|.
      const double c_perp = -a_dot * (kPi - phi) / (kTwoPi * angle_parts.r);
      for (std::int64_t t = 0; t < p; ++t) grad_w[t] = (c_perp * perp[t]) * angle_parts.scale_x;
    }
  } else {
    if (grad_a != nullptr)
      for (std::int64_t j = 0; j < k; ++j)
        grad_a[j] = (rho * rho * (sum_a + (kPi - 1.0) * a[j]) -
                     rho * rho_star * (sum_a_star + (g - 1.0) * a_star[j])) / kTwoPi;
    if (grad_w != nullptr) {
      const double cu = sum_a * sum_a + (kPi - 1.0) * sq_a;
      const double c_hat = -rho_star * (sum_a * sum_a_star - a_dot) - rho_star * a_dot * std::sin(phi);
      const double c_star = -a_dot * (kPi - phi);  // rho* (pi - phi) v* = (pi - phi) u*
      for (std::int64_t t = 0; t < p; ++t)
        grad_w[t] = (cu * u[t] + c_hat * (u[t] / rho) + c_star * u_star[t]) / kTwoPi;
    }
  }
  return loss;
}

inline double overlapping(const double* u, const double* u_star, const double* a, const double* a_star,
                          std::int64_t k, std::int64_t p, std::int64_t stride, bool normalize, double* grad_w,
                          double* grad_a, double* work) {
  const double rho = safe_norm(u, p);
  const double rho_star = safe_norm(u_star, p);
  double* e = work;
  double* e_star = work + p;
  double* grad_e = work + 2 * p;
  for (std::int64_t t = 0; t < p; ++t) {
    e[t] = normalize ? u[t] / rho : u[t];
    e_star[t] = normalize ? u_star[t] / rho_star : u_star[t];
    grad_e[t] = 0.0;
  }
  const double ne = safe_norm(e, p);
  const double ne_star = safe_norm(e_star, p);
  const bool want_grad = grad_w != nullptr || grad_a != nullptr;
  if (grad_a != nullptr)
    for (std::int64_t j = 0; j < k; ++j) grad_a[j] = 0.0;
  double loss = 0.0;
  // Sums over patch pairs (i, j) depend on m = j - i only.
  for (std::int64_t m = -(k - 1); m < k; ++m) {
    const std::int64_t delta = m * stride;
    const std::int64_t i_lo = std::max<std::int64_t>(0, -m), i_hi = std::min<std::int64_t>(k, k - m);
    double c_aa = 0.0, c_as = 0.0, c_ss = 0.0;
    for (std::int64_t i = i_lo; i < i_hi; ++i) {
      c_aa += a[i] * a[i + m];
      c_as += a[i] * a_star[i + m];
      c_ss += a_star[i] * a_star[i + m];
    }
    double* ge = want_grad ? grad_e : nullptr;
    // d/de G(e, e; delta) = grad_x G(e, e; delta) + grad_x G(e, e; -delta).
    const double g_ee = pair_term(e, e, ne, ne, p, delta, 0.5 * c_aa, ge);
    if (ge != nullptr) pair_term(e, e, ne, ne, p, -delta, 0.5 * c_aa, ge);
    const double g_es = pair_term(e, e_star, ne, ne_star, p, delta, -c_as, ge);
    const double g_ss = pair_term(e_star, e_star, ne_star, ne_star, p, delta, 0.0, nullptr);
    loss += 0.5 * (c_aa * g_ee - 2.0 * c_as * g_es + c_ss * g_ss);
    if (grad_a != nullptr)
      for (std::int64_t i = i_lo; i < i_hi; ++i) grad_a[i] += a[i + m] * g_ee - a_star[i + m] * g_es;
  }
  loss = std::max(loss, 0.0);
  if (grad_w != nullptr) {
    if (normalize) {
      const double c = dot(e, grad_e, p);
      for (std::int64_t t = 0; t < p; ++t) grad_w[t] = (grad_e[t] - c * e[t]) / rho;
    } else {
      for (std::int64_t t = 0; t < p; ++t) grad_w[t] = grad_e[t];
    }
  }
  return loss;
}

}  // namespace detail

// Population loss L(w, a) of docs/model.md, "Closed forms under Gaussian input"; writes the gradients when grad_w / grad_a are
// non-null.  Sizes: s, w, w_star, grad_w of length p; a, a_star, grad_a of length k; work of
// population_workspace_size(p) doubles.  stride >= p selects the closed form of non-overlapping
// patches; stride < p the overlapping-patch formula.  Requires w + s != 0 and w* + s != 0.
inline double population_loss_grad(const double* s, const double* w, const double* a, const double* w_star,
                                   const double* a_star, std::int64_t k, std::int64_t p, std::int64_t stride,
                                   bool normalize, double* grad_w, double* grad_a, double* work) {
  double* u = work + 3 * p;
  double* u_star = work + 4 * p;
  double* perp = work + 5 * p;
  for (std::int64_t t = 0; t < p; ++t) {
    u[t] = w[t] + s[t];
    u_star[t] = w_star[t] + s[t];
  }
  if (stride >= p) return detail::non_overlapping(u, u_star, a, a_star, k, p, normalize, grad_w, grad_a, perp);
  return detail::overlapping(u, u_star, a, a_star, k, p, stride, normalize, grad_w, grad_a, work);
}

inline double population_loss_grad(const double* s, const double* w, const double* a, const double* w_star,
                                   const double* a_star, std::int64_t k, std::int64_t p, std::int64_t stride,
                                   bool normalize, double* grad_w, double* grad_a) {
  std::vector<double> work(static_cast<std::size_t>(population_workspace_size(p)));
  return population_loss_grad(s, w, a, w_star, a_star, k, p, stride, normalize, grad_w, grad_a, work.data());
}

// a_sp = (11^T + (pi-1) I)^(-1) (11^T - I) a* = ((pi/(pi-1+k)) (1^T a*) 1 - a*)/(pi-1): the second
// layer of the spurious local optimum at phi = pi (docs/model.md, "Critical points").
inline void spurious_second_layer(const double* a_star, std::int64_t k, double* a_sp) {
  double sum = 0.0;
  for (std::int64_t j = 0; j < k; ++j) sum += a_star[j];
  const double c = kPi / (kPi - 1.0 + static_cast<double>(k)) * sum;
  for (std::int64_t j = 0; j < k; ++j) a_sp[j] = (c - a_star[j]) / (kPi - 1.0);
}

}  // namespace shortcutnet
