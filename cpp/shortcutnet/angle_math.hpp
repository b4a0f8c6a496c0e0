// The angle phi between filters and pi - g(phi) without library calls other than sqrt.
//
// atan2, sin and cos from libm are opaque calls that the compiler cannot vectorize, so they kept
// the engine's loops over trials scalar.  Here they are straight-line arithmetic (no branches, no table
// lookups: both sides of every choice are computed and one is selected), so a loop over trials
// compiles to SIMD code, and the one-trial path and the lockstep lanes call the same functions
// and get the same bits.  No std::fma: with -ffp-contract=off the results are the same for every
// instruction set.  Accuracy (tests/test_angle_math.py, millions of points against long double
// and mpmath): rational_atan2 within 1.6 ulp of the exact value over its whole domain (libm:
// 0.5 ulp); pi_minus_g (population.hpp) within a relative error of 4 2^-52.
#pragma once

#include <cmath>

// Functions the engine's lockstep lanes call once per lane: inlined always, so that the loops over
// lanes stay vectorized however large the including translation unit is.
#if defined(__GNUC__) || defined(__clang__)
#define SHORTCUTNET_LANE_INLINE inline __attribute__((always_inline))
#else
#define SHORTCUTNET_LANE_INLINE inline
#endif

namespace shortcutnet {

namespace detail {

// Cephes' minimax rational approximation of atan on [-0.66, 0.66] (S. L. Moshier):
// atan(t) = t + t^3 P(t^2)/Q(t^2), relative error 2.6e-18 before rounding.
SHORTCUTNET_LANE_INLINE double atan_core(double t) {
  // Both polynomials by Estrin's scheme (short dependency chains; all terms of each have one sign
  // on [0, 0.44], so no cancellation).
  const double z = t * t;
  const double z2 = z * z;
  const double num = ((-6.485021904942025371773e1 + -1.228866684490136173410e2 * z) +
                      (-7.500855792314704667340e1 + -1.615753718733365076637e1 * z) * z2 +
                      -8.750608600031904122785e-1 * (z2 * z2)) * z;
  const double den = (1.945506571482613964425e2 + 4.853903996359136964868e2 * z) +
                     (4.328810604912902668951e2 + 1.650270098316988542046e2 * z) * z2 +
                     (2.485846490142306297962e1 + z) * (z2 * z2);
  return t + t * (num / den);
}

// The base angle of an atan2 reduced to a small argument: pi/4 times 0 (plain), 1 (mid: by
// (t - 1)/(t + 1)), 2 (swap: by the reciprocal) for x >= 0, and 4, 3, 2 for x < 0 (negative), as
// hi + lo.  Selects, not a table, so that the choice vectorizes.
struct BaseAngle {
  double hi, lo;
};

SHORTCUTNET_LANE_INLINE BaseAngle atan2_base(bool swap, bool negative, bool mid) {
  constexpr double kPi4 = 0.7853981633974483, kPi4Lo = 3.061616997868383e-17;
  constexpr double kPi2 = 1.5707963267948966, kPi2Lo = 6.123233995736766e-17;
  constexpr double k3Pi4 = 2.356194490192345, k3Pi4Lo = 9.184850993605148e-17;
  constexpr double kPiHi = 3.141592653589793, kPiLo = 1.2246467991473532e-16;
  const double pos_hi = mid ? kPi4 : (swap ? kPi2 : 0.0);
  const double pos_lo = mid ? kPi4Lo : (swap ? kPi2Lo : 0.0);
  const double neg_hi = mid ? k3Pi4 : (swap ? kPi2 : kPiHi);
  const double neg_lo = mid ? k3Pi4Lo : (swap ? kPi2Lo : kPiLo);
  return {negative ? neg_hi : pos_hi, negative ? neg_lo : pos_lo};
}

}  // namespace detail

// atan2(y, x) in [0, pi] for y >= 0 (the angles of this package; y < 0 is not supported), with
// atan2(0, 0) = 0.  With t = min(y, |x|)/max(y, |x|) in [0, 1] the angle is one of
//   base + atan(t'),  t' = +-t (t <= 0.66) or +-(t - 1)/(t + 1) (t > 0.66, |t'| <= 0.21),
//   base in {0, pi/4, pi/2, 3 pi/4, pi} carried as hi + lo,
// so atan_core sees |t'| <= 0.66 and the last operation is one rounded addition to base_hi.
SHORTCUTNET_LANE_INLINE double rational_atan2(double y, double x) {
  const double ax = std::fabs(x);
  const bool swap = y > ax;       // |angle - pi/2| < pi/4: reduce by the reciprocal
  const bool negative = x < 0.0;  // angle in (pi/2, pi]: reflect
  const double hi = swap ? y : ax;
  const double lo = swap ? ax : y;
  // t = lo/hi; above 0.66 the argument (t - 1)/(t + 1) = (lo - hi)/(lo + hi) (lo - hi exact):
  // one division either way.
  const bool mid = lo > 0.66 * hi;
  const double num = mid ? lo - hi : lo;
  const double den = mid ? lo + hi : hi;
  const double quotient = num / den;
  const double arg0 = hi == 0.0 ? 0.0 : quotient;  // atan2(0, 0) = 0; NaN stays NaN
  const double arg = swap != negative ? -arg0 : arg0;
  const detail::BaseAngle base = detail::atan2_base(swap, negative, mid);
  return base.hi + (detail::atan_core(arg) + base.lo);
}

}  // namespace shortcutnet
