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
inline std::int64_t setup_workspace_size(std::int64_t k, std::int64_t p) { return std::max(3 * p, 4 * k); }

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

// The teacher's part of the coordinates, shared by every trial with that teacher: e1 = u*/|u*| and
// the orthonormal basis f1, f2 of span(a*, 1) (rows beyond its dimension d are zero).
struct TeacherFrame {
  double rho_star;
  int d;
  double A[2], C[2];  // a* and 1 in (f1, f2)
};

// e1: p doubles; f: 2 k doubles (f1, f2); work: setup_workspace_size(k, p) doubles.
inline TeacherFrame set_up_teacher(const Architecture& arch, const double* w_star, const double* a_star, double* e1,
                                   double* f, double* work) {
  const std::int64_t p = arch.p, k = arch.k;
  TeacherFrame frame{};
  for (std::int64_t t = 0; t < p; ++t) work[t] = w_star[t] + arch.s[t];
  frame.rho_star = safe_norm(work, p);
  for (std::int64_t t = 0; t < p; ++t) e1[t] = work[t] / frame.rho_star;
  double* ones = work;
  double* scratch = work + k;
  for (std::int64_t j = 0; j < k; ++j) ones[j] = 1.0;
  for (std::int64_t j = 0; j < 2 * k; ++j) f[j] = 0.0;
  int d = detail::extend_basis(a_star, f, 0, k, scratch);
  d = detail::extend_basis(ones, f, d, k, scratch);
  frame.d = d;
  // f1 is a*'s own direction (or 1's when a* = 0), so a* = A[0] f1 exactly: A[1] is 0, not the
  // rounding of a* . f2, and the step has no terms in it.
  frame.A[0] = dot(a_star, f, k);
  frame.A[1] = 0.0;
  for (int i = 0; i < 2; ++i) frame.C[i] = i < d ? dot(ones, f + i * k, k) : 0.0;
  return frame;
}

namespace detail {

// Sums over n entries in 8 interleaved partial sums added in a fixed order: the loops vectorize
// (no reassociation is needed) and give the same bits at every SIMD width.
constexpr int kParts = 8;

// body(i, i % kParts) for i in [0, n), in blocks of kParts so that each block's kParts updates of
// distinct partial sums compile to SIMD operations.
template <class Body>
SHORTCUTNET_LANE_INLINE void for_parts(std::int64_t n, Body&& body) {
  std::int64_t i = 0;
  for (; i + kParts <= n; i += kParts)
#pragma omp simd
    for (int j = 0; j < kParts; ++j) body(i + j, j);
  for (int j = 0; i + j < n; ++j) body(i + j, j);
}

inline double add_parts(const double* acc) {
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// The u-plane of a trial the fast way (projections of u0 on e1 without exact products); false when
// the angle of u0 and u* is below about 0.1 or the scale is extreme, where the exact way is needed.
// The direction of the rounded e1 is off by a few eps, an error of a few eps/sin(phi0) in y0
// relative: a few ulps above 0.1.
inline bool u_plane_fast(const Architecture& arch, const double* e1, const double* w0, double* e2, double* r,
                         Coordinates& c) {
  const std::int64_t p = arch.p;
  const double* s = arch.s;
  double cx[kParts] = {}, nu[kParts] = {}, o1[kParts] = {}, nw[kParts] = {};
  for_parts(p, [&](std::int64_t t, int j) {
    const double u = w0[t] + s[t];
    cx[j] += u * e1[t];
    nu[j] += u * u;
    o1[j] += w0[t] * e1[t];
    nw[j] += w0[t] * w0[t];
  });
  const double x0 = add_parts(cx), u_sq = add_parts(nu), om1 = add_parts(o1), w_sq = add_parts(nw);
  double dd[kParts] = {};
  for_parts(p, [&](std::int64_t t, int j) {
    r[t] = (w0[t] + s[t]) - x0 * e1[t];
    dd[j] += r[t] * e1[t];
  });
  const double d = add_parts(dd);
  double rr[kParts] = {};
  for_parts(p, [&](std::int64_t t, int j) {
    r[t] -= d * e1[t];
    rr[j] += r[t] * r[t];
  });
  const double r_sq = add_parts(rr);
  // Only where the residual is above 0.1 |u0| and the squares are far from overflow and underflow.
  if (!(u_sq > 1e-280 && u_sq < 1e280 && w_sq < 1e280 && r_sq > 1e-2 * u_sq)) return false;
  c.x0 = x0;
  c.y0 = std::sqrt(r_sq);
  double o2[kParts] = {};
  const double inv = 1.0 / c.y0;
  for_parts(p, [&](std::int64_t t, int j) {
    e2[t] = r[t] * inv;
    o2[j] += w0[t] * e2[t];
  });
  c.om1 = om1;
  c.om2 = add_parts(o2);
  c.om_perp_sq = std::max(0.0, w_sq - c.om1 * c.om1 - c.om2 * c.om2);
  return true;
}

// The u-plane the exact way: the part of u0 orthogonal to u* = w* + s itself (not to the rounded
// e1) from exact products, projected twice (population.hpp), so that y0 keeps the relative
// accuracy of the angle as phi0 -> 0.  work: 3 p doubles.
inline void u_plane_exact(const Architecture& arch, const double* e1, const double* w_star, const double* w0,
                          double* e2, double* work, Coordinates& c) {
  const std::int64_t p = arch.p;
  double* u0 = work;
  double* perp = work + p;
  double* u_star = work + 2 * p;
  for (std::int64_t t = 0; t < p; ++t) {
    u0[t] = w0[t] + arch.s[t];
    u_star[t] = w_star[t] + arch.s[t];
  }
  angle_parts_and_perp(u_star, u0, p, perp);
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
}

// f3 = the unit part of a0 orthogonal to span(f1, f2), projected twice, and a0's coordinates; the
// fast way, false where the exact way is needed (extreme scales).  r: k doubles.
inline bool a_space_fast(const double* f, const double* a0, std::int64_t k, double* f3, double* r, Coordinates& c,
                         bool& kept) {
  const double* f1 = f;
  const double* f2 = f + k;
  double c1[kParts] = {}, c2[kParts] = {}, nn[kParts] = {};
  for_parts(k, [&](std::int64_t i, int j) {
    c1[j] += a0[i] * f1[i];
    c2[j] += a0[i] * f2[i];
    nn[j] += a0[i] * a0[i];
  });
  const double p1 = add_parts(c1), p2 = add_parts(c2), a_sq = add_parts(nn);
  if (!(a_sq < 1e280) || (a_sq > 0.0 && a_sq < 1e-280)) return false;
  double d1[kParts] = {}, d2[kParts] = {};
  for_parts(k, [&](std::int64_t i, int j) {
    r[i] = a0[i] - p1 * f1[i] - p2 * f2[i];
    d1[j] += r[i] * f1[i];
    d2[j] += r[i] * f2[i];
  });
  const double q1 = add_parts(d1), q2 = add_parts(d2);
  double rr[kParts] = {};
  for_parts(k, [&](std::int64_t i, int j) {
    r[i] -= q1 * f1[i] + q2 * f2[i];
    rr[j] += r[i] * r[i];
  });
  const double r_norm = std::sqrt(add_parts(rr));
  c.alpha0[0] = p1;
  c.alpha0[1] = p2;
  kept = r_norm > kSpanTolerance * std::sqrt(a_sq);
  double a3[kParts] = {};
  const double inv = kept ? 1.0 / r_norm : 0.0;
  for_parts(k, [&](std::int64_t i, int j) {
    f3[i] = r[i] * inv;
    a3[j] += a0[i] * f3[i];
  });
  c.alpha0[2] = add_parts(a3);
  return true;
}

}  // namespace detail

// The coordinates of trial (w0, a0) in the frame (e1, f = f1 f2) of its teacher w_star, with the
// trial's own basis vectors e2 (p doubles) and f3 (k doubles; zero when a0 lies in span(a*, 1)).
// work: setup_workspace_size(k, p) doubles.  Requires w0 + s != 0.
inline Coordinates set_up_trial(const Architecture& arch, const TeacherFrame& frame, const double* e1, const double* f,
                                const double* w_star, const double* w0, const double* a0, double* e2, double* f3,
                                double* work) {
  const std::int64_t k = arch.k;
  Coordinates c{};
  c.rho_star = frame.rho_star;
  if (!detail::u_plane_fast(arch, e1, w0, e2, work, c)) detail::u_plane_exact(arch, e1, w_star, w0, e2, work, c);
  bool kept = false;
  if (!detail::a_space_fast(f, a0, k, f3, work, c, kept)) {
    // Extreme scales: the basis extended with the rescaling of safe_norm.
    double* basis = work;  // f1, f2, f3 in a row-major block of 3 k, then k of scratch
    for (std::int64_t j = 0; j < 2 * k; ++j) basis[j] = f[j];
    for (std::int64_t j = 0; j < k; ++j) basis[2 * k + j] = 0.0;
    // Zero rows of f contribute nothing to the projections, so the new row is always row 2.
    kept = detail::extend_basis(a0, basis, 2, k, work + 3 * k) == 3;
    for (std::int64_t j = 0; j < k; ++j) f3[j] = basis[2 * k + j];
    c.alpha0[0] = dot(a0, f, k);
    c.alpha0[1] = dot(a0, f + k, k);
    c.alpha0[2] = kept ? dot(a0, f3, k) : 0.0;
  }
  for (int i = 0; i < 2; ++i) {
    c.A[i] = frame.A[i];
    c.C[i] = frame.C[i];
  }
  c.A[2] = c.C[2] = 0.0;  // f3 is orthogonal to a* and 1
  return c;
}

// w = w0 + (x - x0) e1 + (y - y0) e2 and a = a0 + sum_i (alpha_i - alpha0_i) f_i, written to w
// and a (which may be w0 and a0).
inline void rebuild(const Coordinates& c, const double* e1, const double* e2, const double* f, const double* f3,
                    std::int64_t k, std::int64_t p, double x, double y, const double* alpha, const double* w0,
                    const double* a0, double* w, double* a) {
  const double dx = x - c.x0, dy = y - c.y0;
  for (std::int64_t t = 0; t < p; ++t) w[t] = w0[t] + (dx * e1[t] + dy * e2[t]);
  const double d0 = alpha[0] - c.alpha0[0], d1 = alpha[1] - c.alpha0[1], d2 = alpha[2] - c.alpha0[2];
  for (std::int64_t j = 0; j < k; ++j) a[j] = a0[j] + ((d0 * f[j] + d1 * f[k + j]) + d2 * f3[j]);
}

// ---------------------------------------------------------------------------------------------
// The step's arithmetic: straight-line code, one division and one square root, no library call,
// so that a loop over lanes of trials compiles to SIMD code (and gives the same bits on every
// instruction set: -ffp-contract=off, correctly rounded sqrt and division).

// atan(t) - t for |t| <= tan(pi/8): t z P(z), z = t^2, P a Chebyshev interpolant of degree 10
// (relative error of atan 1.1e-16 measured against mpmath).  Kept apart from t because pi - g
// needs it alone (pi_minus_g).  Polynomials here are evaluated by Estrin's scheme: the lanes' step
// is bound by the latency of its dependency chains, and Estrin's are a third as long as Horner's.
SHORTCUTNET_LANE_INLINE double atan_small_rest(double t) {
  const double z = t * t;
  const double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  const double e0 = (-0.3333333333333333 + 0.1999999999999552 * z) + (-0.14285714284666542 + 0.11111111015256361 * z) * z2;
  const double e1 = (-0.09090904578123903 + 0.07692183190826087 * z) + (-0.06664511447381948 + 0.0585814891280221 * z) * z2;
  const double e2 = (-0.0508544973794026 + 0.03923165829558719 * z) + -0.01917688711906226 * z2;
  const double acc = (e0 + e1 * z4) + e2 * z8;
  return t * (z * acc);
}

// The angle of (x, |y|) and the reciprocal of rho = |(x, y)| from one division: the atan2 of
// angle_math.hpp (reduced to |t| <= tan(pi/8), base angle carried as hi + lo), with the quotient
// num/den and 1/rho both taken from 1/(den rho).  In two parts, the reduction with its division
// (angle_argument) and the polynomial (angle_of), which the engine runs in passes of their own.
struct AngleArgument {
  double arg, base_hi, base_lo, q;  // q = 1/rho
};

SHORTCUTNET_LANE_INLINE AngleArgument angle_argument(double x, double y, double rho) {
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
  const shortcutnet::detail::BaseAngle base = shortcutnet::detail::atan2_base(swap, negative, mid);
  return {arg, base.hi, base.lo, den * inv};
}

// The angle from its reduced argument and rest = atan(arg) - arg, which pi_minus_g takes where
// the argument was not reduced (base 0).
SHORTCUTNET_LANE_INLINE double angle_of(const AngleArgument& t, double rest) {
  return t.base_hi + ((t.arg + rest) + t.base_lo);
}

// The parts of a step that depend on the filter alone: rho = sqrt(x^2 + y^2), then phi, q = 1/rho
// and rest from angle_argument(x, y, rho) and angle_of; plain when phi's argument was not reduced
// (base 0: phi <= pi/8, arg = tan phi, phi = arg + rest).  The engine computes them in passes of
// their own over the lanes (reduced_engine.hpp).
struct FilterAngle {
  double rho, phi, q, rest;
  bool plain;
};

// pi (1 - cos phi) for phi <= pi/8: the series sum_n pi (-1)^(n+1) phi^2n/(2n)!, n = 1 .. 7 (the
// first omitted term is 2e-19 of the sum).
SHORTCUTNET_LANE_INLINE double pi_one_minus_cos(double phi) {
  const double u = phi * phi;
  const double u2 = u * u, u4 = u2 * u2;
  const double e0 =
      (1.5707963267948966 + -0.13089969389957473 * u) + (0.004363323129985824 + -7.791648446403257e-05 * u) * u2;
  const double e1 = (8.657387162670286e-07 + -6.55862663838658e-09 * u) + 3.6036410101025166e-11 * u2;
  return u * (e0 + e1 * u4);
}

// P = pi - g(phi) = pi - (pi - phi) cos phi - sin phi from c = cos phi and s = sin phi of the
// coordinates.  For plain angles P = pi (1 - cos phi) + cos phi (phi - tan phi), both terms from
// series without cancellation (the second at most a twelfth of the first), so that P keeps its
// relative accuracy as phi -> 0, where P ~ pi phi^2/2; above pi/8 the direct formula, whose terms
// cancel at most 15-fold.  Relative error against mpmath, the error of phi included
// (tests/test_reduced_step_accuracy.py): 5 2^-52 for plain angles, 12 2^-52 above.
SHORTCUTNET_LANE_INLINE double pi_minus_g(const FilterAngle& fa, double c, double s) {
  const double small = pi_one_minus_cos(fa.phi) + c * fa.rest;
  const double large = (kPi - (kPi - fa.phi) * c) - s;
  return fa.plain ? small : large;
}

// The population loss and gradient at a state in coordinates (docs/reduced.md section 3), the
// terms in the zeros of the teacher's coordinates left out, not multiplied by zero.
struct StepValues {
  double loss, a_err_sq;  // a_err_sq = |a - a*|^2
  double gx, gy, g0, g1, g2;
};

// The teacher's coordinates A = (A0, 0, 0), C = (C0, C1, 0) (set_up_teacher, set_up_trial) as the
// normalized step uses them, with the factors 1/(2 pi) and 1/(4 pi) of docs/reduced.md section 3
// taken in: ah = A0/(2 pi), ch = C/sqrt(4 pi), cg = C/sqrt(pi).
struct ScaledTeacher {
  double A0, ah, ch0, ch1, cg0, cg1;
};

inline ScaledTeacher scaled_teacher(double A0, double C0, double C1) {
  constexpr double kInvSqrtFourPi = 0.28209479177387814, kInvSqrtPi = 0.5641895835477563;
  return {A0, A0 * kInvTwoPiR, C0 * kInvSqrtFourPi, C1 * kInvSqrtFourPi, C0 * kInvSqrtPi, C1 * kInvSqrtPi};
}

// The population loss and gradient of the normalized model at a state and its FilterAngle.
SHORTCUTNET_LANE_INLINE StepValues loss_grad_normalized(double x, double y, double al0, double al1, double al2,
                                                        const ScaledTeacher& t, const FilterAngle& fa) {
  constexpr double kHalfRatio = 0.17042252845405234;  // (pi - 1)/(4 pi)
  constexpr double kRatio = 0.3408450569081047;       // (pi - 1)/(2 pi)
  const double c = x * fa.q, s = y * fa.q;
  const double pmg = pi_minus_g(fa, c, std::fabs(s));
  const double adh = t.ah * al0;  // (A . alpha)/(2 pi)
  const double d0 = al0 - t.A0;
  const double h = t.ch0 * d0 + t.ch1 * al1;  // (C . D)/sqrt(4 pi)
  const double dd = (d0 * d0 + al1 * al1) + al2 * al2;
  StepValues v;
  v.loss = (h * h + kHalfRatio * dd) + pmg * adh;
  v.a_err_sq = dd;
  const double gm1 = (kPi - 1.0) - pmg;  // g - 1
  v.g0 = (h * t.cg0 + kRatio * al0) - gm1 * t.ah;
  v.g1 = h * t.cg1 + kRatio * al1;
  v.g2 = kRatio * al2;
  const double m = ((adh * (kPi - fa.phi)) * fa.q) * s;
  v.gx = -(m * s);
  v.gy = m * c;
  return v;
}

// The population loss and gradient of the un-normalized model at a state and its FilterAngle.
SHORTCUTNET_LANE_INLINE StepValues loss_grad_unnormalized(double x, double y, double al0, double al1, double al2,
                                                          double A0, double C0, double C1, double rho_star,
                                                          const FilterAngle& fa) {
  const double rho = fa.rho, phi = fa.phi, q = fa.q;
  const double xq = x * q, yq = y * q;
  const double sin_phi = std::fabs(y) * q;
  const double pmg = pi_minus_g(fa, xq, sin_phi);
  const double g = kPi - pmg;
  const double a_dot = A0 * al0;
  StepValues v;
  const double rr = rho * rho_star;
  const double d0 = rho * al0 - rho_star * A0, d1 = rho * al1, d2 = rho * al2;
  const double cd = C0 * d0 + C1 * d1;
  const double dd = (d0 * d0 + d1 * d1) + d2 * d2;
  v.loss = ((cd * cd + (kPi - 1.0) * dd) + 2.0 * rr * pmg * a_dot) * kInvFourPi;
  const double e0 = al0 - A0;
  v.a_err_sq = (e0 * e0 + al1 * al1) + al2 * al2;
  const double sum_a = C0 * al0 + C1 * al1;
  const double sum_as = C0 * A0;
  const double sq_a = (al0 * al0 + al1 * al1) + al2 * al2;
  const double r2 = rho * rho, gm1 = g - 1.0;
  v.g0 = (r2 * (sum_a * C0 + (kPi - 1.0) * al0) - rr * (sum_as * C0 + gm1 * A0)) * kInvTwoPiR;
  v.g1 = (r2 * (sum_a * C1 + (kPi - 1.0) * al1) - rr * (sum_as * C1)) * kInvTwoPiR;
  v.g2 = (r2 * ((kPi - 1.0) * al2)) * kInvTwoPiR;
  const double cu = sum_a * sum_a + (kPi - 1.0) * sq_a;
  const double c_hat = -rho_star * ((sum_a * sum_as - a_dot) + a_dot * sin_phi);
  const double c_star = -a_dot * (kPi - phi) * rho_star;
  v.gx = ((cu * x + c_hat * xq) + c_star) * kInvTwoPiR;
  v.gy = (cu * y + c_hat * yq) * kInvTwoPiR;
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
