// Counter-based Gaussian generator: Philox4x32-10 (Salmon et al., SC 2011, the Random123 constants)
// followed by Box-Muller.  Entry j of row i of a batch depends only on (seed, i, j):
//   block b = j / 4, counter = (b lo, b hi, i lo, i hi), key = (seed lo, seed hi),
//   (x0, x1, x2, x3) = Philox4x32-10(counter, key),
//   entries 4b, 4b+1 = r cos(2 pi u1), r sin(2 pi u1) with r = sqrt(-2 ln u0), and likewise
//   entries 4b+2, 4b+3 from (x2, x3).
// Uniforms in (0, 1): float64 u = (x + 1/2) 2^-32; float32 u = ((x >> 8) + 1/2) 2^-24, except
// that the radius's uniform keeps all 32 bits, u = (x + 1/2) 2^-32, when x < 2^23 (u < 2^-9):
// the tail of |z| then reaches sqrt(66 ln 2) = 6.76 as in float64, instead of stopping at
// sqrt(50 ln 2) = 5.89.
//
// A float32 uniform has up to 25 significant bits, one more than a float holds, so it is never
// rounded to a float: ln u and the angle are computed from the exact odd integer U = u 2^B,
// B = 25, or 33 for the tail (and for float64).  ln uses the fdlibm decomposition u = 2^e (1 + f), |f| < 0.42, with f exact;
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
#include <vector>

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

// Counters handled together: 64 Philox blocks = 256 entries (four AVX-512 vectors, eight AVX2
// vectors per word).
constexpr int kPhiloxLanes = 64;

namespace detail {

template <class To, class From>
inline To bits_as(From x) {
  static_assert(sizeof(To) == sizeof(From), "bit cast between equal sizes only");
  To y;
  std::memcpy(&y, &x, sizeof(To));
  return y;
}

// ln u for u = U 2^-B, U odd in [1, 2^25): f = U/2^K - 1 is formed exactly from the integer
// U - 2^K (fewer than 24 significant bits), then fdlibm's logf kernel.
inline float log_u25(std::int32_t U, std::int32_t B) {
  const std::int32_t ubits = bits_as<std::int32_t>(static_cast<float>(U));
  const std::int32_t exponent = (ubits >> 23) - 127;
  const std::int32_t K = exponent + (((ubits & 0x7fffff) > 0x3504f3) ? 1 : 0);  // U/2^K in [0.707, 1.414)
  const float scale = bits_as<float>((127 - K) << 23);                          // 2^-K
  const std::int32_t two_to_K = static_cast<std::int32_t>(bits_as<float>((127 + K) << 23));  // no variable shift
  const float f = static_cast<float>(U - two_to_K) * scale;
  const float e = static_cast<float>(K - B);
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

// A Box-Muller pair from two Philox words in parts: ln u0 from the first word (log_of_first), the
// radius r = sqrt(-2 ln u0), and (cos, sin) of the angle from the second word.  The pair is
// (r cos, r sin).
inline float log_of_first(std::uint32_t x_first, float) {
  const bool tail = x_first < (1u << 23);
  const std::int32_t U0 = static_cast<std::int32_t>(((tail ? x_first : x_first >> 8) << 1) | 1u);
  return log_u25(U0, tail ? 33 : 25);
}
inline double log_of_first(std::uint32_t x_first, double) { return log_u33(x_first); }
inline float radius_of_log(float ln_u) { return __builtin_sqrtf(-2.0f * ln_u); }
inline double radius_of_log(double ln_u) { return __builtin_sqrt(-2.0 * ln_u); }

inline void angle_of_second(std::uint32_t x_second, float& c, float& s) {
  sincos_turn25(static_cast<std::int32_t>(((x_second >> 8) << 1) | 1u), c, s);
}
inline void angle_of_second(std::uint32_t x_second, double& c, double& s) { sincos_turn33(x_second, c, s); }

// Philox in 32-bit lanes: W counters per native vector (16 on AVX-512, 8 on AVX2, 4 on SSE2),
// word q of counter l in lane l of vector q.  x86 has no 32x32 -> 64 multiply of every lane:
// (v)pmuludq multiplies the even lanes into 64-bit products.  So the rounds run on the even and
// the odd counters as two halves, each counter in the low word of a 64-bit lane (the odd ones
// after a 64-bit shift by 32): the low word of a product is then already in place, its high
// word is one shift away, and the high words of the lanes are never read.  The halves are
// merged back into 32-bit lanes once, after the ten rounds.  Elsewhere plain loops, which the
// compiler vectorizes with the target's widening multiplies.
#if defined(__AVX512F__)
constexpr int kPhiloxWords = 16;  // counters per vector
constexpr int kPhiloxChains = 4;  // vectors of counters whose rounds are interleaved
typedef __m512i PhiloxVec;
inline PhiloxVec philox_load(const std::uint32_t* p) { return _mm512_loadu_si512(p); }
inline void philox_store(std::uint32_t* p, PhiloxVec v) { _mm512_storeu_si512(p, v); }
inline PhiloxVec philox_splat(std::uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
inline PhiloxVec philox_mul(PhiloxVec x, PhiloxVec m) { return _mm512_mul_epu32(x, m); }
inline PhiloxVec philox_high(PhiloxVec x) { return _mm512_srli_epi64(x, 32); }
inline PhiloxVec philox_xor3(PhiloxVec a, PhiloxVec b, PhiloxVec c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }
inline PhiloxVec philox_merge(PhiloxVec even, PhiloxVec odd) {
  return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}
#elif defined(__AVX2__)
constexpr int kPhiloxWords = 8;
constexpr int kPhiloxChains = 2;  // 8 registers of state: two vectors would spill
typedef __m256i PhiloxVec;
inline PhiloxVec philox_load(const std::uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void philox_store(std::uint32_t* p, PhiloxVec v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline PhiloxVec philox_splat(std::uint32_t x) { return _mm256_set1_epi32(static_cast<int>(x)); }
inline PhiloxVec philox_mul(PhiloxVec x, PhiloxVec m) { return _mm256_mul_epu32(x, m); }
inline PhiloxVec philox_high(PhiloxVec x) { return _mm256_srli_epi64(x, 32); }
inline PhiloxVec philox_xor3(PhiloxVec a, PhiloxVec b, PhiloxVec c) {
  return _mm256_xor_si256(_mm256_xor_si256(a, b), c);  // (a ^ b) ^ c
}
inline PhiloxVec philox_merge(PhiloxVec even, PhiloxVec odd) {
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}
#elif defined(__SSE2__)
constexpr int kPhiloxWords = 4;
constexpr int kPhiloxChains = 1;
typedef __m128i PhiloxVec;
inline PhiloxVec philox_load(const std::uint32_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline void philox_store(std::uint32_t* p, PhiloxVec v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
inline PhiloxVec philox_splat(std::uint32_t x) { return _mm_set1_epi32(static_cast<int>(x)); }
inline PhiloxVec philox_mul(PhiloxVec x, PhiloxVec m) { return _mm_mul_epu32(x, m); }
inline PhiloxVec philox_high(PhiloxVec x) { return _mm_srli_epi64(x, 32); }
inline PhiloxVec philox_xor3(PhiloxVec a, PhiloxVec b, PhiloxVec c) { return _mm_xor_si128(_mm_xor_si128(a, b), c); }
// No blend before SSE4.1: the low words of the shifted odd half are zero, so a mask and an or.
inline PhiloxVec philox_merge(PhiloxVec even, PhiloxVec odd) {
  return _mm_or_si128(_mm_and_si128(even, _mm_set_epi32(0, -1, 0, -1)), _mm_slli_epi64(odd, 32));
}
#endif

// Ten Philox rounds in place on the L counters (c0[l], c1[l], c2[l], c3[l]).
template <int L>
inline void philox_rounds(std::uint32_t* c0, std::uint32_t* c1, std::uint32_t* c2, std::uint32_t* c3, PhiloxKey key) {
#if defined(__SSE2__)
  constexpr int W = kPhiloxWords, C = (L / W < kPhiloxChains) ? L / W : kPhiloxChains, H = 2 * C;
  static_assert(L % (W * C) == 0 && C > 0, "whole groups of vectors of counters");
  const PhiloxVec m0 = philox_splat(kPhiloxM0), m1 = philox_splat(kPhiloxM1);
  std::uint32_t* const words[4] = {c0, c1, c2, c3};
  // C vectors at a time through all ten rounds: the 2 C halves' independent multiply chains
  // hide each other's latency, and the state stays in registers.
  for (int g = 0; g < L; g += W * C) {
    PhiloxVec x[4][H];
    for (int q = 0; q < 4; ++q)
      for (int v = 0; v < C; ++v) {
        const PhiloxVec packed = philox_load(words[q] + g + v * W);
        x[q][2 * v] = packed;                   // even counters; the odd ones above them are ignored
        x[q][2 * v + 1] = philox_high(packed);  // odd counters
      }
    std::uint32_t k0 = key.k0, k1 = key.k1;
#pragma GCC unroll 10
    for (int round = 0; round < 10; ++round) {
      const PhiloxVec key0 = philox_splat(k0), key1 = philox_splat(k1);
      for (int h = 0; h < H; ++h) {
        const PhiloxVec p0 = philox_mul(x[0][h], m0);
        const PhiloxVec p1 = philox_mul(x[2][h], m1);
        // The key joins the old word first, off the multiply's critical path.
        x[0][h] = philox_xor3(x[1][h], key0, philox_high(p1));
        x[2][h] = philox_xor3(x[3][h], key1, philox_high(p0));
        x[1][h] = p1;
        x[3][h] = p0;
      }
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    for (int q = 0; q < 4; ++q)
      for (int v = 0; v < C; ++v) philox_store(words[q] + g + v * W, philox_merge(x[q][2 * v], x[q][2 * v + 1]));
  }
#else
  std::uint32_t k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < 10; ++round) {
    for (int l = 0; l < L; ++l) {
      const std::uint64_t p0 = static_cast<std::uint64_t>(kPhiloxM0) * c0[l];
      const std::uint64_t p1 = static_cast<std::uint64_t>(kPhiloxM1) * c2[l];
      const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1[l] ^ k0;
      const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = static_cast<std::uint32_t>(p1);
      c3[l] = static_cast<std::uint32_t>(p0);
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
#endif
}

// The four normals of each of the L counters' Philox words: z[4 l + q] = entry q of block l.
// Logarithms, radii, angles and products in passes of their own over the lanes: a short loop body
// lets the core overlap the long dependency chains (a division, a square root, polynomials) of
// many lanes, where one loop over whole pairs left it waiting (8% slower on Zen 3).
template <class T, int L>
inline void normals_of_words(const std::uint32_t* x0, const std::uint32_t* x1, const std::uint32_t* x2,
                             const std::uint32_t* x3, T* z) {
  T r0[L], r2[L], c1[L], s1[L], c3[L], s3[L];
  for (int l = 0; l < L; ++l) r0[l] = log_of_first(x0[l], T{});
  for (int l = 0; l < L; ++l) r2[l] = log_of_first(x2[l], T{});
  for (int l = 0; l < L; ++l) r0[l] = radius_of_log(r0[l]);
  for (int l = 0; l < L; ++l) r2[l] = radius_of_log(r2[l]);
  for (int l = 0; l < L; ++l) angle_of_second(x1[l], c1[l], s1[l]);
  for (int l = 0; l < L; ++l) angle_of_second(x3[l], c3[l], s3[l]);
  for (int l = 0; l < L; ++l) {
    z[4 * l + 0] = r0[l] * c1[l];
    z[4 * l + 1] = r0[l] * s1[l];
    z[4 * l + 2] = r2[l] * c3[l];
    z[4 * l + 3] = r2[l] * s3[l];
  }
}

}  // namespace detail

// Rows i0 .. i0 + rows - 1 of blocks Philox blocks each (4 blocks entries), as one stream: entry j
// of row r goes to out[4 blocks r + j].  Lane l of a Philox call takes the (row, block) pair that
// comes l-th in row-major order, so neither short rows nor the ends of long rows leave lanes idle;
// only the last call of the stream may draw blocks it drops.  Each entry depends on (seed, i, j)
// only.  out holds 4 blocks rows entries.
template <class T>
inline void gaussian_stream(PhiloxKey key, std::int64_t i0, std::int64_t rows, std::int64_t blocks, T* out) {
  constexpr int L = kPhiloxLanes;
  const std::int64_t total = rows * blocks;
  if (total <= 0) return;
  // Lanes past a row's end move to the next row: exactly once for rows of at least L blocks;
  // for shorter rows by t / blocks with t < blocks + L < 128, which the multiply by
  // ceil(2^16 / blocks) and a shift give exactly (the error t (magic blocks - 2^16) / 2^16 stays
  // below 1 / blocks).
  const bool short_rows = blocks < L;
  const std::uint32_t magic = short_rows ? static_cast<std::uint32_t>((65536 + blocks - 1) / blocks) : 0;
  std::int64_t row = 0, block = 0;  // the pair of the first lane of the next call
  for (std::int64_t first = 0; first < total; first += L) {
    std::uint32_t c0[L], c1[L], c2[L], c3[L];
    if (short_rows) {
      const std::uint64_t base = static_cast<std::uint64_t>(i0 + row);
      const std::uint32_t base_lo = static_cast<std::uint32_t>(base), base_hi = static_cast<std::uint32_t>(base >> 32);
      const std::uint32_t b0 = static_cast<std::uint32_t>(block), nb = static_cast<std::uint32_t>(blocks);
      for (int l = 0; l < L; ++l) {
        const std::uint32_t t = b0 + static_cast<std::uint32_t>(l);
        const std::uint32_t dr = (t * magic) >> 16;
        const std::uint32_t lo = base_lo + dr;
        c0[l] = t - dr * nb;
        c1[l] = 0;
        c2[l] = lo;
        c3[l] = base_hi + (lo < base_lo ? 1u : 0u);
      }
    } else {
      for (int l = 0; l < L; ++l) {
        const std::int64_t t = block + l;
        const std::int64_t dr = t >= blocks ? 1 : 0;
        const std::uint64_t b = static_cast<std::uint64_t>(t - dr * blocks);
        const std::uint64_t i = static_cast<std::uint64_t>(i0 + row + dr);
        c0[l] = static_cast<std::uint32_t>(b);
        c1[l] = static_cast<std::uint32_t>(b >> 32);
        c2[l] = static_cast<std::uint32_t>(i);
        c3[l] = static_cast<std::uint32_t>(i >> 32);
      }
    }
    detail::philox_rounds<L>(c0, c1, c2, c3, key);
    T* dst = out + 4 * first;
    if (first + L <= total) {
      detail::normals_of_words<T, L>(c0, c1, c2, c3, dst);
    } else {
      T z[4 * L];
      detail::normals_of_words<T, L>(c0, c1, c2, c3, z);
      std::memcpy(dst, z, static_cast<std::size_t>(4 * (total - first)) * sizeof(T));
    }
    block += L;
    row += block / blocks;
    block %= blocks;
  }
}

// Rows i0 .. i0 + rows - 1 into out (row-major, row length d).  Each entry is the same as in the
// stream of gaussian_stream: its value depends on (seed, i, j) only.  When 4 does not divide d the
// rows' last blocks are partly dropped: the stream is drawn a few rows at a time into a buffer
// and copied.
template <class T>
inline void gaussian_rows(PhiloxKey key, std::int64_t i0, std::int64_t rows, std::int64_t d, T* out) {
  const std::int64_t blocks = (d + 3) / 4;
  if (4 * blocks == d) return gaussian_stream(key, i0, rows, blocks, out);
  // A few short rows at a time through a buffer on the stack; a long row alone through the heap.
  constexpr std::int64_t kBuffer = 16 * kPhiloxLanes;
  const std::int64_t padded = 4 * blocks;
  T on_stack[kBuffer];
  std::vector<T> on_heap(padded > kBuffer ? static_cast<std::size_t>(padded) : 0);
  T* buffer = padded > kBuffer ? on_heap.data() : on_stack;
  const std::int64_t step = std::max<std::int64_t>(1, kBuffer / padded);
  for (std::int64_t r = 0; r < rows; r += step) {
    const std::int64_t count = std::min(step, rows - r);
    gaussian_stream(key, i0 + r, count, blocks, buffer);
    for (std::int64_t q = 0; q < count; ++q)
      std::memcpy(out + (r + q) * d, buffer + q * padded, static_cast<std::size_t>(d) * sizeof(T));
  }
}

}  // namespace SHORTCUTNET_ISA_NAMESPACE
}  // namespace shortcutnet
