// Counter-based Gaussian generator: Philox4x32-10 (Salmon et al., SC 2011, the Random123 constants)
// followed by Box-Muller.  Entry j of row i of a batch depends only on (seed, i, j):
//   block b = j / 4, counter = (b lo, b hi, i lo, i hi), key = (seed lo, seed hi),
//   (x0, x1, x2, x3) = Philox4x32-10(counter, key),
//   entries 4b, 4b+1 = r cos(2 pi u1), r sin(2 pi u1) with r = sqrt(-2 ln u0), and likewise
//   entries 4b+2, 4b+3 from (x2, x3).
// Uniforms in (0, 1): float64 u = (x + 1/2) 2^-32, float32 u = ((x >> 8) + 1/2) 2^-24.
//
// The float32 uniform has 25 significant bits, one more than a float holds, so it is never
// rounded to a float: ln u and the angle are computed from the exact odd integer U = u 2^25
// (2^33 for float64).  ln uses the fdlibm decomposition u = 2^e (1 + f), |f| < 0.42, with f exact;
// cos/sin of 2 pi u reduce u by whole quarter turns in integer arithmetic (exact), then evaluate
// Taylor polynomials in the remaining |y| <= 1/8 turn (truncation below 3e-9 for float32 and
// 1e-19 for float64).  Every z is within a few ulps (relative to r) of the exact formula.
//
// All loops run over a fixed number of lanes and contain no branches, so the compiler vectorizes
// them for whatever instruction set the including translation unit targets; only IEEE
// operations without contraction are used, so every instruction set gives the same bits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#ifndef SHORTCUTNET_ISA_NAMESPACE
#define SHORTCUTNET_ISA_NAMESPACE sampled
#endif

namespace shortcutnet {
namespace SHORTCUTNET_ISA_NAMESPACE {

constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

struct PhiloxKey {
  std::uint32_t k0, k1;
};

inline PhiloxKey philox_key(std::uint64_t seed) {
  return {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
}

// The plain one-counter Philox4x32-10 (the reference the lane version is tested against).
inline void philox4x32_10(const std::uint32_t counter[4], PhiloxKey key, std::uint32_t out[4]) {
  std::uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  std::uint32_t k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kPhiloxM0) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(kPhiloxM1) * c2;
    const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<std::uint32_t>(p1);
    c3 = static_cast<std::uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// Counters handled together: 64 Philox blocks = 256 entries, four AVX-512 vectors per word so
// that independent multiply chains overlap.
constexpr int kPhiloxLanes = 64;

namespace detail {

template <class To, class From>
inline To bits_as(From x) {
  static_assert(sizeof(To) == sizeof(From), "bit cast between equal sizes only");
  To y;
  std::memcpy(&y, &x, sizeof(To));
  return y;
}

// ln u for u = U 2^-25, U odd in [1, 2^25): f = U/2^K - 1 is formed exactly from the integer
// U - 2^K (fewer than 24 significant bits), then fdlibm's logf kernel.
inline float log_u25(std::int32_t U) {
  const std::int32_t ubits = bits_as<std::int32_t>(static_cast<float>(U));
  const std::int32_t exponent = (ubits >> 23) - 127;
  const std::int32_t K = exponent + (((ubits & 0x7fffff) > 0x3504f3) ? 1 : 0);  // U/2^K in [0.707, 1.414)
  const float scale = bits_as<float>((127 - K) << 23);                          // 2^-K
  const std::int32_t two_to_K = static_cast<std::int32_t>(bits_as<float>((127 + K) << 23));  // no variable shift
  const float f = static_cast<float>(U - two_to_K) * scale;
  const float e = static_cast<float>(K - 25);
  const float s = f / (2.0f + f);
  const float z = s * s;
  const float w = z * z;
  const float t1 = w * (0.40000972152f + w * 0.24279078841f);
  const float t2 = z * (0.66666662693f + w * 0.28498786688f);
  const float R = t2 + t1;
  const float hfsq = 0.5f * f * f;
  return e * 6.9313812256e-01f - ((hfsq - (s * (hfsq + R) + e * 9.0580006145e-06f)) - f);
}

// ln u for u = (x + 1/2) 2^-32: exact as a double, fdlibm's log kernel.  Only 32-bit integer
// lanes are used (the high word of u), so AVX2 vectorizes it as well as AVX-512.
inline double log_u33(std::uint32_t x) {
  const double u = (static_cast<double>(static_cast<std::int32_t>(x ^ 0x80000000u)) + 2147483648.5) * 0x1p-32;
  const std::int32_t hi = static_cast<std::int32_t>(bits_as<std::uint64_t>(u) >> 32);
  const std::int32_t K = ((hi >> 20) - 1023) + (((hi & 0xfffff) > 0x6a09e) ? 1 : 0);  // u/2^K in [0.707, 1.414)
  const double scale = bits_as<double>(static_cast<std::uint64_t>(static_cast<std::uint32_t>((1023 - K) << 20)) << 32);
  const double f = u * scale - 1.0;  // exact (Sterbenz)
  const double e = static_cast<double>(K);
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double w = z * z;
  const double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  const double t2 = z * (6.666666666666735130e-01 +
                         w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  const double R = t2 + t1;
  const double hfsq = 0.5 * f * f;
  return e * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + R) + e * 1.90821492927058770002e-10)) - f);
}

// cos and sin of 2 pi y for |y| <= 1/8 (Taylor coefficients (2 pi)^n / n!, correctly rounded).
inline void sincos_turn_poly(float y, float& c, float& s) {
  const float a = y * y;
  s = y * (6.2831855f + a * (-41.3417f + a * (81.60525f + a * (-76.70586f + a * 42.058693f))));
  c = 1.0f + a * (-19.739208f + a * (64.93939f + a * (-85.45682f + a * (60.24464f + a * -26.426256f))));
}

inline void sincos_turn_poly(double y, double& c, double& s) {
  const double a = y * y;
  s = y * (6.283185307179586 +
           a * (-41.34170224039976 +
                a * (81.60524927607506 +
                     a * (-76.70585975306139 +
                          a * (42.058693944897655 +
                               a * (-15.09464257682299 +
                                    a * (3.819952584848282 + a * (-0.7181223017785006 + a * 0.10422916220813984))))))));
  c = 1.0 + a * (-19.739208802178716 +
                 a * (64.9393940226683 +
                      a * (-85.45681720669373 +
                           a * (60.24464137187666 +
                                a * (-26.4262567833744 +
                                     a * (7.903536371318469 + a * (-1.714390711088672 +
                                                                   a * (0.28200596845579123 + a * -0.03638284114254567))))))));
}

// Quarter-turn reduction: with U = u 2^B (B = 25 for float32, 33 for float64, U odd), q is the
// nearest multiple of 2^(B-2) and y = U 2^-B - q/4 is exact; (cos, sin) of 2 pi y are then
// rotated back by q quarter turns.  U is never formed for float64: with x the 32-bit word,
// q = round(x / 2^30) and U - q 2^31 = 2 (x - q 2^30) + 1 fit in 32-bit lanes.
template <class T>
inline void rotate_quarters(std::uint32_t q, T cy, T sy, T& c, T& s) {
  const bool swap = (q & 1u) != 0;
  const T c1 = swap ? sy : cy;
  const T s1 = swap ? cy : sy;
  c = ((q + 1u) & 2u) ? -c1 : c1;
  s = (q & 2u) ? -s1 : s1;
}

inline void sincos_turn25(std::int32_t U, float& c, float& s) {
  const std::int32_t q = (U + (1 << 22)) >> 23;
  const float y = static_cast<float>(U - (q << 23)) * 0x1p-25f;
  float cy, sy;
  sincos_turn_poly(y, cy, sy);
  rotate_quarters(static_cast<std::uint32_t>(q), cy, sy, c, s);
}

inline void sincos_turn33(std::uint32_t x, double& c, double& s) {
  const std::uint32_t q = (x >> 30) + ((x >> 29) & 1u);
  const std::int32_t m = static_cast<std::int32_t>(x - (q << 30));  // wraps correctly for q = 4
  const double y = static_cast<double>(2 * m + 1) * 0x1p-33;
  double cy, sy;
  sincos_turn_poly(y, cy, sy);
  rotate_quarters(q, cy, sy, c, s);
}

// One Box-Muller pair from two Philox words.
inline void box_muller(std::uint32_t x_first, std::uint32_t x_second, float& z_cos, float& z_sin) {
  const std::int32_t U0 = static_cast<std::int32_t>(((x_first >> 8) << 1) | 1u);
  const std::int32_t U1 = static_cast<std::int32_t>(((x_second >> 8) << 1) | 1u);
  const float r = __builtin_sqrtf(-2.0f * log_u25(U0));
  float c, s;
  sincos_turn25(U1, c, s);
  z_cos = r * c;
  z_sin = r * s;
}

inline void box_muller(std::uint32_t x_first, std::uint32_t x_second, double& z_cos, double& z_sin) {
  const double r = __builtin_sqrt(-2.0 * log_u33(x_first));
  double c, s;
  sincos_turn33(x_second, c, s);
  z_cos = r * c;
  z_sin = r * s;
}



#if defined(__AVX512F__)
constexpr int kPhiloxVectorBytes = 64;
#elif defined(__AVX2__)
constexpr int kPhiloxVectorBytes = 32;
#elif defined(__SSE2__)
constexpr int kPhiloxVectorBytes = 16;
#else
constexpr int kPhiloxVectorBytes = 0;
#endif

#if defined(__SSE2__)
typedef std::uint64_t PhiloxU64 __attribute__((vector_size(kPhiloxVectorBytes), may_alias, aligned(8)));

// Products of the low 32 bits of each 64-bit lane of x with m, as 64-bit lanes.
inline PhiloxU64 mul_even(PhiloxU64 x, PhiloxU64 m) {
#if defined(__AVX512F__)
  return reinterpret_cast<PhiloxU64>(_mm512_mul_epu32(reinterpret_cast<__m512i>(x), reinterpret_cast<__m512i>(m)));
#elif defined(__AVX2__)
  return reinterpret_cast<PhiloxU64>(_mm256_mul_epu32(reinterpret_cast<__m256i>(x), reinterpret_cast<__m256i>(m)));
#else
  return reinterpret_cast<PhiloxU64>(_mm_mul_epu32(reinterpret_cast<__m128i>(x), reinterpret_cast<__m128i>(m)));
#endif
}
#endif

// Ten Philox rounds on L counters, one 32-bit word per 64-bit lane: the full product then comes
// from one (v)pmuludq (SSE2, AVX2, AVX-512; a plain loop elsewhere) and the high bits of each lane
// are never read.  On return the low 32 bits of each lane hold the output words.
template <int L = kPhiloxLanes>
inline void philox_rounds(std::uint64_t* c0, std::uint64_t* c1, std::uint64_t* c2, std::uint64_t* c3, PhiloxKey key) {
  std::uint64_t k0 = key.k0, k1 = key.k1;
#if defined(__SSE2__)
  // Rounds outside, vectors inside: the independent vectors hide the multiply latency.
  constexpr int V = kPhiloxVectorBytes / 8, NV = L / V;
  static_assert(L % V == 0, "whole vectors of counters");
  const PhiloxU64 m0 = PhiloxU64{} + kPhiloxM0;
  const PhiloxU64 m1 = PhiloxU64{} + kPhiloxM1;
  PhiloxU64 x0[NV], x1[NV], x2[NV], x3[NV];
  for (int v = 0; v < NV; ++v) {
    std::memcpy(&x0[v], c0 + v * V, sizeof x0[v]);
    std::memcpy(&x1[v], c1 + v * V, sizeof x1[v]);
    std::memcpy(&x2[v], c2 + v * V, sizeof x2[v]);
    std::memcpy(&x3[v], c3 + v * V, sizeof x3[v]);
  }
  for (int round = 0; round < 10; ++round) {
    for (int v = 0; v < NV; ++v) {
      const PhiloxU64 p0 = mul_even(x0[v], m0);
      const PhiloxU64 p1 = mul_even(x2[v], m1);
      x0[v] = (p1 >> 32) ^ x1[v] ^ k0;
      x1[v] = p1;
      x2[v] = (p0 >> 32) ^ x3[v] ^ k1;
      x3[v] = p0;
    }
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  for (int v = 0; v < NV; ++v) {
    std::memcpy(c0 + v * V, &x0[v], sizeof x0[v]);
    std::memcpy(c1 + v * V, &x1[v], sizeof x1[v]);
    std::memcpy(c2 + v * V, &x2[v], sizeof x2[v]);
    std::memcpy(c3 + v * V, &x3[v], sizeof x3[v]);
  }
#else
  for (int round = 0; round < 10; ++round) {
    for (int l = 0; l < L; ++l) {
      const std::uint64_t p0 = (c0[l] & 0xffffffffu) * kPhiloxM0;
      const std::uint64_t p1 = (c2[l] & 0xffffffffu) * kPhiloxM1;
      const std::uint64_t n0 = (p1 >> 32) ^ c1[l] ^ k0;
      const std::uint64_t n2 = (p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = p1;
      c3[l] = p0;
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
#endif
}

}  // namespace detail

// Entries [4 b0, 4 b0 + 4 L) of row i (blocks b0 .. b0 + L - 1), in order.
template <class T, int L = kPhiloxLanes>
inline void gaussian_blocks(PhiloxKey key, std::int64_t i, std::int64_t b0, T* out) {
  std::uint64_t c0[L], c1[L], c2[L], c3[L];
  const std::uint32_t i_lo = static_cast<std::uint32_t>(static_cast<std::uint64_t>(i));
  const std::uint32_t i_hi = static_cast<std::uint32_t>(static_cast<std::uint64_t>(i) >> 32);
  for (int l = 0; l < L; ++l) {
    const std::uint64_t b = static_cast<std::uint64_t>(b0) + static_cast<std::uint64_t>(l);
    c0[l] = b & 0xffffffffu;
    c1[l] = b >> 32;
    c2[l] = i_lo;
    c3[l] = i_hi;
  }
  detail::philox_rounds<L>(c0, c1, c2, c3, key);
  T z0[L], z1[L], z2[L], z3[L];
  for (int l = 0; l < L; ++l)
    detail::box_muller(static_cast<std::uint32_t>(c0[l]), static_cast<std::uint32_t>(c1[l]), z0[l], z1[l]);
  for (int l = 0; l < L; ++l)
    detail::box_muller(static_cast<std::uint32_t>(c2[l]), static_cast<std::uint32_t>(c3[l]), z2[l], z3[l]);
  for (int l = 0; l < L; ++l) {
    out[4 * l + 0] = z0[l];
    out[4 * l + 1] = z1[l];
    out[4 * l + 2] = z2[l];
    out[4 * l + 3] = z3[l];
  }
}

// Row i of a batch of rows of length d: entries 0 .. d-1.  Long rows go 256 entries at a time; the
// rest in groups of 32 so that short rows (small k p) do not pay for entries they drop.
template <class T>
inline void gaussian_row(PhiloxKey key, std::int64_t i, std::int64_t d, T* out) {
  constexpr int kSmall = 8;
  constexpr std::int64_t big = 4 * kPhiloxLanes, small = 4 * kSmall;
  std::int64_t j = 0;
  for (; j + big <= d; j += big) gaussian_blocks<T, kPhiloxLanes>(key, i, j / 4, out + j);
  for (; j + small <= d; j += small) gaussian_blocks<T, kSmall>(key, i, j / 4, out + j);
  if (j < d) {
    T tail[small];
    gaussian_blocks<T, kSmall>(key, i, j / 4, tail);
    for (std::int64_t t = 0; j + t < d; ++t) out[j + t] = tail[t];
  }
}

// Rows i0 .. i0 + rows - 1 into out (row-major, row length d).  Rows shorter than 4 kPhiloxLanes
// entries share the lanes of one Philox call: lane l takes the (row, block) pair that comes l-th
// in row-major order, so short rows waste no generated entries.  Each entry is the same as in
// gaussian_row: its value depends on (seed, i, j) only.
template <class T>
inline void gaussian_rows(PhiloxKey key, std::int64_t i0, std::int64_t rows, std::int64_t d, T* out) {
  constexpr int L = kPhiloxLanes;
  const std::int64_t blocks = (d + 3) / 4;
  if (blocks >= L) {
    for (std::int64_t r = 0; r < rows; ++r) gaussian_row(key, i0 + r, d, out + r * d);
    return;
  }
  const std::int64_t total = rows * blocks;
  std::int64_t row = 0, block = 0;  // the pair of the first lane of the next call
  for (std::int64_t first = 0; first < total; first += L) {
    std::uint64_t c0[L], c1[L], c2[L], c3[L];
    std::int64_t r = row, b = block;
    for (int l = 0; l < L; ++l) {
      const std::uint64_t i = static_cast<std::uint64_t>(i0 + r);
      c0[l] = static_cast<std::uint64_t>(b) & 0xffffffffu;
      c1[l] = static_cast<std::uint64_t>(b) >> 32;
      c2[l] = i & 0xffffffffu;
      c3[l] = i >> 32;
      if (++b == blocks) {
        b = 0;
        ++r;
      }
    }
    detail::philox_rounds<L>(c0, c1, c2, c3, key);
    T z[4][L];
    for (int l = 0; l < L; ++l)
      detail::box_muller(static_cast<std::uint32_t>(c0[l]), static_cast<std::uint32_t>(c1[l]), z[0][l], z[1][l]);
    for (int l = 0; l < L; ++l)
      detail::box_muller(static_cast<std::uint32_t>(c2[l]), static_cast<std::uint32_t>(c3[l]), z[2][l], z[3][l]);
    const int used = static_cast<int>(std::min<std::int64_t>(L, total - first));
    for (int l = 0; l < used; ++l) {
      T* dst = out + row * d + 4 * block;
      const std::int64_t left = d - 4 * block;
      for (int q = 0; q < 4; ++q)
        if (q < left) dst[q] = z[q][l];
      if (++block == blocks) {
        block = 0;
        ++row;
      }
    }
  }
}

}  // namespace SHORTCUTNET_ISA_NAMESPACE
}  // namespace shortcutnet
