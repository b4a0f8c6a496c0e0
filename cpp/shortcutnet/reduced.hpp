// The order-parameter reduction of population gradient descent on the non-overlapping model
// (docs/reduced.md): the set-up of a trial's coordinates, one step in them, and the rebuild of
// (w, a).  The engine that runs trials in lanes with it is reduced_engine.hpp.
//
// Header-only, no Python.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "shortcutnet/angle_math.hpp"
#include "shortcutnet/population.hpp"
#include "shortcutnet/trials.hpp"

namespace shortcutnet {

namespace reduced {

constexpr double kInvFourPi = 0.07957747154594767;  // 1/(4 pi)
constexpr double kInvTwoPiR = 0.15915494309189535;  // 1/(2 pi)

// A vector is kept in the a-space's basis when its residual exceeds this fraction of its norm
// (docs/reduced.md section 2): below it the residual is rounding, not a direction.
constexpr double kSpanTolerance = 1e-13;
// u0 is parallel to u* when its residual orthogonal to u* is below this fraction of |u0|.
constexpr double kParallelTolerance = 1e-20;

// The constants of one trial in the coordinates of docs/reduced.md section 2.
struct Coordinates {
  double x0, y0;         // u_0 = x0 e1 + y0 e2
  double rho_star;       // |u*|
  double om1, om2, om_perp_sq;  // w_0 = om1 e1 + om2 e2 + (a part of squared norm om_perp_sq)
  double A[3], C[3];     // a* and 1 in the basis f
  double alpha0[3];      // a_0 in the basis f
};

// Scratch doubles of set_up for filter length p and k patches.
inline std::int64_t setup_workspace_size(std::int64_t k, std::int64_t p) { return std::max(3 * p, 2 * k); }

namespace detail {

// Appends the unit part of v orthogonal to the first `count` rows of basis (each of length n) as
// row `count`, projected twice; returns the new count (unchanged when v lies in their span).
inline int extend_basis(const double* v, double* basis, int count, std::int64_t n, double* residual) {
  const double norm = safe_norm(v, n);
  if (!(norm > 0.0)) return count;
  for (std::int64_t i = 0; i < n; ++i) residual[i] = v[i];
  for (int pass = 0; pass < 2; ++pass)
    for (int b = 0; b < count; ++b) {
      const double* f = basis + b * n;
      const double c = dot(residual, f, n);
      for (std::int64_t i = 0; i < n; ++i) residual[i] -= c * f[i];
    }
  const double r = safe_norm(residual, n);
  if (!(r > kSpanTolerance * norm)) return count;
  double* f = basis + count * n;
  for (std::int64_t i = 0; i < n; ++i) f[i] = residual[i] / r;
  return count + 1;
}

}  // namespace detail

// The coordinates of trial (w0, a0) against the teacher (w_star, a_star) and the bases they refer
// to: e (2 p doubles: e1, e2) and f (3 k doubles: f1, f2, f3; rows beyond the a-space's dimension
// are zero).  work: setup_workspace_size(k, p) doubles.  Requires w0 + s != 0 and w* + s != 0.
inline Coordinates set_up(const Architecture& arch, const double* w0, const double* a0, const double* w_star,
                          const double* a_star, double* e, double* f, double* work) {
  const std::int64_t p = arch.p, k = arch.k;
  double* u0 = work;
  double* us = work + p;
  double* perp = work + 2 * p;
  for (std::int64_t t = 0; t < p; ++t) {
    u0[t] = w0[t] + arch.s[t];
    us[t] = w_star[t] + arch.s[t];
  }
  Coordinates c{};
  double* e1 = e;
  double* e2 = e + p;
  c.rho_star = safe_norm(us, p);
  for (std::int64_t t = 0; t < p; ++t) e1[t] = us[t] / c.rho_star;
  // The part of u0 orthogonal to u*, from exact products and projected twice (population.hpp).
  angle_parts_and_perp(us, u0, p, perp);
  // A residual of rounding (an exactly parallel u0 whose ratio to u* rounds) points anywhere, even
  // along e1: u0 counts as parallel below 1e-20 |u0| (docs/reduced.md section 2).
  const double residual = safe_norm(perp, p);
  c.y0 = residual > kParallelTolerance * safe_norm(u0, p) ? residual : 0.0;
  c.x0 = dot(u0, e1, p);
  for (std::int64_t t = 0; t < p; ++t) e2[t] = c.y0 > 0.0 ? perp[t] / c.y0 : 0.0;
  c.om1 = dot(w0, e1, p);
  c.om2 = dot(w0, e2, p);
  double om_perp_sq = 0.0;
  for (std::int64_t t = 0; t < p; ++t) {
    const double r = w0[t] - c.om1 * e1[t] - c.om2 * e2[t];
    om_perp_sq += r * r;
  }
  c.om_perp_sq = om_perp_sq;

  double* ones = work;  // the u-plane's scratch is free again
  double* scratch = work + k;
  for (std::int64_t j = 0; j < 3 * k; ++j) f[j] = 0.0;
  for (std::int64_t j = 0; j < k; ++j) ones[j] = 1.0;
  int d = 0;
  d = detail::extend_basis(a_star, f, d, k, scratch);
  d = detail::extend_basis(ones, f, d, k, scratch);
  d = detail::extend_basis(a0, f, d, k, scratch);
  for (int i = 0; i < 3; ++i) {
    const double* fi = f + i * k;
    c.A[i] = i < d ? dot(a_star, fi, k) : 0.0;
    c.C[i] = i < d ? dot(ones, fi, k) : 0.0;
    c.alpha0[i] = i < d ? dot(a0, fi, k) : 0.0;
  }
  return c;
}

// w = w0 + (x - x0) e1 + (y - y0) e2 and a = a0 + sum_i (alpha_i - alpha0_i) f_i, in place over
// w (holding w0) and a (holding a0).
inline void rebuild(const Coordinates& c, const double* e, const double* f, std::int64_t k, std::int64_t p, double x,
                    double y, const double* alpha, double* w, double* a) {
  const double dx = x - c.x0, dy = y - c.y0;
  for (std::int64_t t = 0; t < p; ++t) w[t] = w[t] + (dx * e[t] + dy * e[p + t]);
  const double d0 = alpha[0] - c.alpha0[0], d1 = alpha[1] - c.alpha0[1], d2 = alpha[2] - c.alpha0[2];
  for (std::int64_t j = 0; j < k; ++j) a[j] = a[j] + ((d0 * f[j] + d1 * f[k + j]) + d2 * f[2 * k + j]);
}

// ---------------------------------------------------------------------------------------------
// The step's arithmetic: straight-line code, one division and one square root, no library call,
// so that a loop over lanes of trials compiles to SIMD code (and gives the same bits on every
// instruction set: -ffp-contract=off, correctly rounded sqrt and division).

// atan(t) for |t| <= tan(pi/8): t + t z P(z), z = t^2, P a Chebyshev interpolant of degree 10
// (relative error of atan below 1.1e-16 before rounding).
SHORTCUTNET_LANE_INLINE double atan_small(double t) {
  const double z = t * t;
  double acc = -0.01917688711906226;
  acc = acc * z + 0.03923165829558719;
  acc = acc * z + -0.0508544973794026;
  acc = acc * z + 0.0585814891280221;
  acc = acc * z + -0.06664511447381948;
  acc = acc * z + 0.07692183190826087;
  acc = acc * z + -0.09090904578123903;
  acc = acc * z + 0.11111111015256361;
  acc = acc * z + -0.14285714284666542;
  acc = acc * z + 0.1999999999999552;
  acc = acc * z + -0.3333333333333333;
  return t + t * (z * acc);
}

// pi - g(phi) = pi - (pi - phi) cos(phi) - sin(phi) on [0, pi] as phi^2 h(phi), h a Chebyshev
// interpolant of degree 18 in phi - pi/2 (relative error below 5e-16 over the whole range, and no
// cancellation near 0, where pi - g ~ pi phi^2/2).
SHORTCUTNET_LANE_INLINE double pi_minus_g_of(double phi) {
  const double t = phi - 1.5707963267948966;
  double acc = 7.366079685160743e-18;
  acc = acc * t + -3.591177395647569e-17;
  acc = acc * t + -2.5568926196248524e-15;
  acc = acc * t + 1.2538301965188525e-14;
  acc = acc * t + 6.838242275011037e-13;
  acc = acc * t + -3.3804554838577765e-12;
  acc = acc * t + -1.4018690722411281e-10;
  acc = acc * t + 7.010059938878655e-10;
  acc = acc * t + 2.1108054673884398e-08;
  acc = acc * t + -1.0739433233204428e-07;
  acc = acc * t + -2.1948515219364285e-06;
  acc = acc * t + 1.1489007892177673e-05;
  acc = acc * t + 0.00014293290738013874;
  acc = acc * t + -0.0007890509003520294;
  acc = acc * t + -0.004818240745524966;
  acc = acc * t + 0.0301738241790252;
  acc = acc * t + 0.04209466814534968;
  acc = acc * t + -0.46849461497863115;
  acc = acc * t + 0.8679548101658116;
  return (phi * phi) * acc;
}

// The angle of (x, |y|) and the reciprocal of rho = |(x, y)| from one division: the atan2 of
// angle_math.hpp (reduced to |t| <= tan(pi/8), base angle carried as hi + lo), with the quotient
// num/den and 1/rho both taken from 1/(den rho).
struct AngleAndScale {
  double phi, q;  // q = 1/rho
};

SHORTCUTNET_LANE_INLINE AngleAndScale angle_and_scale(double x, double y, double rho) {
  const double ay = std::fabs(y), ax = std::fabs(x);
  const bool swap = ay > ax;
  const bool negative = x < 0.0;
  const double hi = swap ? ay : ax;
  const double lo = swap ? ax : ay;
  const bool mid = lo > 0.41421356237309503 * hi;  // tan(pi/8)
  const double num = mid ? lo - hi : lo;
  const double den = mid ? lo + hi : hi;
  const double inv = 1.0 / (den * rho);
  const double quotient = (num * rho) * inv;
  const double arg0 = hi == 0.0 ? 0.0 : quotient;
  const double arg = swap != negative ? -arg0 : arg0;
  constexpr double kPi4 = 0.7853981633974483, kPi4Lo = 3.061616997868383e-17;
  constexpr double kPi2 = 1.5707963267948966, kPi2Lo = 6.123233995736766e-17;
  constexpr double k3Pi4 = 2.356194490192345, k3Pi4Lo = 9.184850993605148e-17;
  constexpr double kPiHi = 3.141592653589793, kPiLo = 1.2246467991473532e-16;
  const double pos_hi = mid ? kPi4 : (swap ? kPi2 : 0.0);
  const double pos_lo = mid ? kPi4Lo : (swap ? kPi2Lo : 0.0);
  const double neg_hi = mid ? k3Pi4 : (swap ? kPi2 : kPiHi);
  const double neg_lo = mid ? k3Pi4Lo : (swap ? kPi2Lo : kPiLo);
  const double base_hi = negative ? neg_hi : pos_hi;
  const double base_lo = negative ? neg_lo : pos_lo;
  return {base_hi + (atan_small(arg) + base_lo), den * inv};
}

// The population loss and gradient at a state, in coordinates (docs/reduced.md section 3).
struct StepValues {
  double loss, phi, a_dot, a_err_sq;  // a_err_sq = |a - a*|^2
  double gx, gy, g0, g1, g2;
};

template <bool Normalize>
SHORTCUTNET_LANE_INLINE StepValues loss_grad(double x, double y, double al0, double al1, double al2, double A0,
                                             double A1, double A2, double C0, double C1, double C2,
                                             double rho_star) {
  const double rho = std::sqrt(x * x + y * y);
  const AngleAndScale as = angle_and_scale(x, y, rho);
  const double phi = as.phi, q = as.q;
  const double pmg = pi_minus_g_of(phi);
  const double g = kPi - pmg;
  const double a_dot = (A0 * al0 + A1 * al1) + A2 * al2;
  const double xq = x * q, yq = y * q;
  StepValues v;
  v.phi = phi;
  v.a_dot = a_dot;
  if (Normalize) {
    const double d0 = al0 - A0, d1 = al1 - A1, d2 = al2 - A2;
    const double cd = (C0 * d0 + C1 * d1) + C2 * d2;
    const double dd = (d0 * d0 + d1 * d1) + d2 * d2;
    v.loss = ((cd * cd + (kPi - 1.0) * dd) + 2.0 * pmg * a_dot) * kInvFourPi;
    v.a_err_sq = dd;
    const double gm1 = g - 1.0;
    v.g0 = ((cd * C0 + (kPi - 1.0) * al0) - gm1 * A0) * kInvTwoPiR;
    v.g1 = ((cd * C1 + (kPi - 1.0) * al1) - gm1 * A1) * kInvTwoPiR;
    v.g2 = ((cd * C2 + (kPi - 1.0) * al2) - gm1 * A2) * kInvTwoPiR;
    const double coef = -a_dot * (kPi - phi) * kInvTwoPiR * q * yq;
    v.gx = coef * yq;
    v.gy = -coef * xq;
  } else {
    const double rr = rho * rho_star;
    const double d0 = rho * al0 - rho_star * A0, d1 = rho * al1 - rho_star * A1, d2 = rho * al2 - rho_star * A2;
    const double cd = (C0 * d0 + C1 * d1) + C2 * d2;
    const double dd = (d0 * d0 + d1 * d1) + d2 * d2;
    v.loss = ((cd * cd + (kPi - 1.0) * dd) + 2.0 * rr * pmg * a_dot) * kInvFourPi;
    const double e0 = al0 - A0, e1 = al1 - A1, e2 = al2 - A2;
    v.a_err_sq = (e0 * e0 + e1 * e1) + e2 * e2;
    const double sum_a = (C0 * al0 + C1 * al1) + C2 * al2;
    const double sum_as = (C0 * A0 + C1 * A1) + C2 * A2;
    const double sq_a = (al0 * al0 + al1 * al1) + al2 * al2;
    const double r2 = rho * rho, gm1 = g - 1.0;
    v.g0 = (r2 * (sum_a * C0 + (kPi - 1.0) * al0) - rr * (sum_as * C0 + gm1 * A0)) * kInvTwoPiR;
    v.g1 = (r2 * (sum_a * C1 + (kPi - 1.0) * al1) - rr * (sum_as * C1 + gm1 * A1)) * kInvTwoPiR;
    v.g2 = (r2 * (sum_a * C2 + (kPi - 1.0) * al2) - rr * (sum_as * C2 + gm1 * A2)) * kInvTwoPiR;
    const double cu = sum_a * sum_a + (kPi - 1.0) * sq_a;
    const double sin_phi = std::fabs(y) * q;
    const double c_hat = -rho_star * ((sum_a * sum_as - a_dot) + a_dot * sin_phi);
    const double c_star = -a_dot * (kPi - phi) * rho_star;
    v.gx = ((cu * x + c_hat * xq) + c_star) * kInvTwoPiR;
    v.gy = (cu * y + c_hat * yq) * kInvTwoPiR;
  }
  return v;
}

// The outcome of a finished trial from its coordinates (the rule of trials.hpp, decide_outcome).
inline Outcome classify(const Coordinates& c, bool normalize, std::int64_t k, double x, double y, const double* alpha,
                        double loss, double phi, double w_norm, const Thresholds& th) {
  OutcomeInputs in;
  in.loss = loss;
  in.phi = phi;
  in.w_norm = w_norm;
  in.a_norm = std::sqrt((alpha[0] * alpha[0] + alpha[1] * alpha[1]) + alpha[2] * alpha[2]);
  const double rho = std::sqrt(x * x + y * y);
  const double cs = normalize ? 1.0 : rho, ct = normalize ? 1.0 : c.rho_star;
  double err = 0.0;
  for (int i = 0; i < 3; ++i) err += (cs * alpha[i] - ct * c.A[i]) * (cs * alpha[i] - ct * c.A[i]);
  in.a_err = std::sqrt(err);
  in.spurious_possible = normalize && phi > 0.5 * kPi;
  if (in.spurious_possible) {
    // a_sp = ((pi/(pi - 1 + k)) (1.a*) 1 - a*)/(pi - 1) lies in span(a*, 1).
    const double sum_as = (c.C[0] * c.A[0] + c.C[1] * c.A[1]) + c.C[2] * c.A[2];
    const double scale = kPi / (kPi - 1.0 + static_cast<double>(k)) * sum_as;
    double a_sp[3], sp_err = 0.0, sum_d = 0.0, sq_d = 0.0, dot_sp = 0.0;
    for (int i = 0; i < 3; ++i) {
      a_sp[i] = (scale * c.C[i] - c.A[i]) / (kPi - 1.0);
      sp_err += (alpha[i] - a_sp[i]) * (alpha[i] - a_sp[i]);
      const double d = a_sp[i] - c.A[i];
      sum_d += c.C[i] * d;
      sq_d += d * d;
      dot_sp += a_sp[i] * c.A[i];
    }
    in.a_sp_err = std::sqrt(sp_err);
    in.loss_sp = (sum_d * sum_d + (kPi - 1.0) * sq_d + kTwoPi * dot_sp) / (4.0 * kPi);
  }
  return decide_outcome(in, th);
}

}  // namespace reduced

}  // namespace shortcutnet
