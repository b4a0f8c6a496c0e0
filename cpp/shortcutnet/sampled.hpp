// Sampled (empirical) loss and gradients of the two-layer convolutional network, docs/model.md, "Losses on a finite batch":
//   h_ij = <patch_ij, v>,  r_i = sum_j a_j relu(h_ij) - y_i,  loss = (1/2n) sum_i r_i^2,
//   grad_a = (1/n) sum_i r_i relu(h_i.),  G = (1/n) sum_i r_i sum_j a_j 1[h_ij > 0] patch_ij,
//   grad_w = (G - (v.G) v)/|u| (normalized, v = u/|u|) or G (v = u), u = w + s.
// Patch j of row i is X[i, j*stride : j*stride + p] (overlapping patches are read in place).
//
// One pass per sample: the k dot products, the residual, then the backward accumulation of the
// sample's gradient while its row is still in L1.  The fused stochastic kernel draws each row with
// the counter-based generator of philox.hpp into a per-thread buffer and never stores the batch.
// With short patches the materialized kernel takes several stored rows at once, one per vector
// lane, each lane running the same sums in the same order (sampled_rows_lanes).
//
// Precision.  Inputs are float32 or float64 (T).  Dot products run in T over 64-byte lane groups
// (16 float / 8 double partial sums in a fixed order, see dot_lanes), so every instruction set
// computes the same bits; everything after the dot product is float64: relu, f_i, r_i, the loss,
// grad_a.  For a sample, g_i = sum_j a_j 1[h_ij > 0] patch_ij is summed in T (k terms, a_j rounded
// to T), then r_i g_i is added to float64 block sums.  For float32 input this keeps the relative
// error of each h_ij near sqrt(p) 2^-24 and of G near k 2^-24, with no error growth in n.
//
// Determinism.  Samples are cut into blocks of kBlock rows, independent of the thread count; each
// block is reduced serially into its own float64 partial sums; partials are added in block order
// on one thread.  So results are identical to the last bit for any number of threads.
//
// All indices are 64-bit.  Nothing here allocates per sample; nothing touches Python.
// Needs GCC or Clang (vector extensions).  Included directly, the kernels live in
// shortcutnet::sampled and use the instruction set the includer compiles for; the dispatch
// library (dispatch.hpp) compiles them once per level and picks one at run time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

#include "philox.hpp"

namespace shortcutnet {
namespace SHORTCUTNET_ISA_NAMESPACE {

// Samples per block: the unit of parallel work and of the fixed summation order.
constexpr std::int64_t kBlock = 256;
// Entries per thread below which waking an OpenMP team costs more than it saves.
constexpr std::int64_t kEntriesPerThread = std::int64_t(1) << 16;
// Blocks whose partial sums are held at once; bounds the memory of the partials for huge n.
constexpr std::int64_t kBlocksPerRound = 1024;

// The network as the kernels see it: shortcut s (p), first layer w (p), second layer a (k).
// The normalized model needs w + s != 0 (the bindings check it; the kernels do not).
struct Network {
  const double* s;
  const double* w;
  const double* a;
  std::int64_t k, p, stride;
  bool normalize;
  std::int64_t d() const { return (k - 1) * stride + p; }
};

// <x, v> over p entries with 64-byte lane groups (acc_l = sum of the products with t = l mod L,
// L = 64 / sizeof(T)) reduced by the fixed pairwise tree acc_l += acc_(l + L/2), ... when L
// divides p, else by an in-order sum of the lanes.  The lane group is held in 64/NB native
// vectors of NB bytes and the first tree levels add whole vectors, so every instruction set
// computes the same bits with its own registers.
#if defined(__AVX512F__)
constexpr int kNativeBytes = 64;
#elif defined(__AVX__)
constexpr int kNativeBytes = 32;
#else
constexpr int kNativeBytes = 16;
#endif

typedef float F32x16 __attribute__((vector_size(64)));
typedef float F32x8 __attribute__((vector_size(32)));
typedef float F32x4 __attribute__((vector_size(16)));
typedef double F64x8 __attribute__((vector_size(64)));
typedef double F64x4 __attribute__((vector_size(32)));
typedef double F64x2 __attribute__((vector_size(16)));

template <class T, int NB>
struct Native;
template <>
struct Native<float, 64> {
  typedef F32x16 type;
};
template <>
struct Native<float, 32> {
  typedef F32x8 type;
};
template <>
struct Native<float, 16> {
  typedef F32x4 type;
};
template <>
struct Native<double, 64> {
  typedef F64x8 type;
};
template <>
struct Native<double, 32> {
  typedef F64x4 type;
};
template <>
struct Native<double, 16> {
  typedef F64x2 type;
};

// The tree inside one native vector: halves added lane by lane, down to one lane.
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
inline float reduce_native(F32x4 a4) {
  const float a0 = a4[0] + a4[2], a1 = a4[1] + a4[3];
  return a0 + a1;
}
inline float reduce_native(F32x8 a8) {
  return reduce_native(F32x4(__builtin_shufflevector(a8, a8, 0, 1, 2, 3) + __builtin_shufflevector(a8, a8, 4, 5, 6, 7)));
}
inline float reduce_native(F32x16 a16) {
  return reduce_native(F32x8(__builtin_shufflevector(a16, a16, 0, 1, 2, 3, 4, 5, 6, 7) +
                             __builtin_shufflevector(a16, a16, 8, 9, 10, 11, 12, 13, 14, 15)));
}
inline double reduce_native(F64x2 a2) { return a2[0] + a2[1]; }
inline double reduce_native(F64x4 a4) {
  return reduce_native(F64x2(__builtin_shufflevector(a4, a4, 0, 1) + __builtin_shufflevector(a4, a4, 2, 3)));
}
inline double reduce_native(F64x8 a8) {
  return reduce_native(F64x4(__builtin_shufflevector(a8, a8, 0, 1, 2, 3) + __builtin_shufflevector(a8, a8, 4, 5, 6, 7)));
}
#else
// Compilers without __builtin_shufflevector: the same tree on an array.
template <class V>
inline auto reduce_native(V acc) -> typename std::remove_reference<decltype(acc[0])>::type {
  typedef typename std::remove_reference<decltype(acc[0])>::type T;
  constexpr int W = sizeof(V) / sizeof(T);
  T lanes[W];
  std::memcpy(lanes, &acc, sizeof lanes);
  for (int half = W / 2; half >= 1; half /= 2)
    for (int l = 0; l < half; ++l) lanes[l] += lanes[l + half];
  return lanes[0];
}
#endif

template <class V, class T>
inline V load_native(const T* x) {
  V out;
  std::memcpy(&out, x, sizeof out);
  return out;
}

template <class T>
inline T dot_lanes(const T* x, const T* v, std::int64_t p) {
  typedef typename Native<T, kNativeBytes>::type V;
  constexpr int W = kNativeBytes / sizeof(T);  // lanes per native vector
  constexpr int R = 64 / kNativeBytes;          // native vectors per lane group
  constexpr std::int64_t L = W * R;
  V acc[R];
  for (int q = 0; q < R; ++q) acc[q] = V{};
  std::int64_t t = 0;
  for (; t + L <= p; t += L)
    for (int q = 0; q < R; ++q) acc[q] += load_native<V>(x + t + q * W) * load_native<V>(v + t + q * W);
  if (t == p) {
    for (int half = R / 2; half >= 1; half /= 2)
      for (int q = 0; q < half; ++q) acc[q] += acc[q + half];
    return reduce_native(acc[0]);
  }
  // A partial last group (or p < L): finish with in-order scalar sums, which no instruction set
  // reorders (and which never reload a vector just written lane by lane).
  const int count = static_cast<int>(p - t);
  if (t == 0) {
    T h = x[0] * v[0];
    for (int l = 1; l < count; ++l) h += x[l] * v[l];
    return h;
  }
  T lanes[L];
  std::memcpy(lanes, acc, sizeof lanes);
  for (int l = 0; l < count; ++l) lanes[l] += x[t + l] * v[t + l];
  T h = lanes[0];
  for (int l = 1; l < static_cast<int>(L); ++l) h += lanes[l];
  return h;
}

// The filter direction v (double, length p) and |u|; false when u = 0 in the normalized model.
// u is first multiplied by the power of two that brings its largest entry into [1, 2) (exact, the
// rescaling of population.hpp), so that the squares neither overflow nor underflow for any finite
// scale of u; in the normal range the result is bitwise that of the plain formulas.
inline bool filter_direction(const double* s, const double* w, std::int64_t p, bool normalize, double* v,
                             double* norm_u) {
  double largest = 0.0;
  for (std::int64_t t = 0; t < p; ++t) {
    v[t] = w[t] + s[t];
    largest = std::max(largest, std::fabs(v[t]));
  }
  if (!(largest > 0.0)) {
    *norm_u = 0.0;
    return !normalize;
  }
  int e = 0;
  std::frexp(largest, &e);
  const double scale = std::ldexp(1.0, std::min(1 - e, 1023));
  double nn = 0.0;
  for (std::int64_t t = 0; t < p; ++t) nn += (scale * v[t]) * (scale * v[t]);
  const double scaled_norm = std::sqrt(nn);
  *norm_u = scaled_norm / scale;
  if (!normalize) return true;
  for (std::int64_t t = 0; t < p; ++t) v[t] = (scale * v[t]) / scaled_norm;
  return true;
}

// Per-call constants shared by all threads.
template <class T>
struct Prepared {
  std::int64_t k, p, stride, d;
  std::vector<double> v, a;  // v in double, a
  std::vector<T> vT, aT;     // the same rounded to T, for the T-precision loops
  double norm_u;
};

// Fills P for net, reusing P's storage (no allocation once P has held a network of this size).
template <class T>
inline void prepare_into(const Network& net, Prepared<T>& P) {
  P.k = net.k;
  P.p = net.p;
  P.stride = net.stride;
  P.d = net.d();
  P.v.resize(static_cast<std::size_t>(net.p));
  filter_direction(net.s, net.w, net.p, net.normalize, P.v.data(), &P.norm_u);
  P.a.assign(net.a, net.a + net.k);
  P.vT.assign(P.v.begin(), P.v.end());
  P.aT.assign(P.a.begin(), P.a.end());
}

template <class T>
inline Prepared<T> prepare(const Network& net) {
  Prepared<T> P;
  prepare_into(net, P);
  return P;
}

// f(std::integral_constant<int, N>()) for the N in [First, Last] equal to n, and true; false
// when there is none.  Turns a run-time count (a patch length, a number of lane groups) into the
// template argument of a kernel whose loops are unrolled for it.
template <int First, int Last, class F>
inline bool with_constant(std::int64_t n, F&& f) {
  if constexpr (First > Last) {
    return false;
  } else {
    if (n != First) return with_constant<First + 1, Last>(n, f);
    f(std::integral_constant<int, First>());
    return true;
  }
}

// dot_lanes of the k patches when p is G whole lane groups, with v held in registers: the same
// sums in the same order, but each product needs one load instead of two (v is read once per
// row, not once per patch; a store to h could alias v, so the compiler would not hoist it).
template <class T, int G>
inline void dots_in_registers(const T* x, std::int64_t k, std::int64_t stride, const T* v, double* h) {
  typedef typename Native<T, kNativeBytes>::type V;
  constexpr int W = kNativeBytes / sizeof(T);
  constexpr int R = 64 / kNativeBytes;
  constexpr int L = W * R;
  V vv[G][R];
  for (int q = 0; q < G; ++q)
    for (int r = 0; r < R; ++r) vv[q][r] = load_native<V>(v + q * L + r * W);
  for (std::int64_t j = 0; j < k; ++j) {
    const T* xj = x + j * stride;
    V acc[R];
    for (int r = 0; r < R; ++r) acc[r] = V{};
    for (int q = 0; q < G; ++q)
      for (int r = 0; r < R; ++r) acc[r] += load_native<V>(xj + q * L + r * W) * vv[q][r];
    for (int half = R / 2; half >= 1; half /= 2)
      for (int r = 0; r < half; ++r) acc[r] += acc[r + half];
    h[j] = static_cast<double>(reduce_native(acc[0]));
  }
}

// The k pre-activations h_j = <patch_j, v> of one row, in double.
template <class T>
inline void preactivations(const Prepared<T>& P, const T* x, double* h) {
  constexpr std::int64_t L = 64 / sizeof(T);
  const T* v = P.vT.data();
  const auto in_registers = [&](auto G) { dots_in_registers<T, decltype(G)::value>(x, P.k, P.stride, v, h); };
  if (P.p % L == 0 && with_constant<1, 8>(P.p / L, in_registers)) return;
  for (std::int64_t j = 0; j < P.k; ++j) h[j] = static_cast<double>(dot_lanes(x + j * P.stride, v, P.p));
}

// f = sum_j a_j relu(h_j) in double.  A NaN pre-activation (a NaN input) makes f NaN instead of
// vanishing behind the relu, so callers detect bad input from the output alone; +inf passes
// through the relu as itself (an overflowing dot product of finite values is no error).  No
// branches: the relu signs are random, a branch would mispredict half the time.
template <class T>
inline double output(const Prepared<T>& P, const double* h) {
  double f = 0.0, poison = 0.0;
  for (std::int64_t j = 0; j < P.k; ++j) {
    f += P.a[j] * (h[j] > 0.0 ? h[j] : 0.0);
    poison += h[j] == h[j] ? 0.0 : h[j];
  }
  return f + poison;
}

template <class T>
inline double forward(const Prepared<T>& P, const T* x, double* h) {
  preactivations(P, x, h);
  return output(P, h);
}

// U native vectors of g at entries t.. as U independent chains of adds over the patches (a single
// chain waits on the add latency at every patch); the order within each entry is unchanged.
template <class T, int U>
inline void patch_sum_vectors(const T* x, std::int64_t k, std::int64_t stride, const T* c, std::int64_t t, T* g) {
  typedef typename Native<T, kNativeBytes>::type V;
  constexpr int W = kNativeBytes / sizeof(T);
  V gv[U];
  for (int u = 0; u < U; ++u) gv[u] = V{};
  for (std::int64_t j = 0; j < k; ++j) {
    const T cj = c[j];
    for (int u = 0; u < U; ++u) gv[u] += cj * load_native<V>(x + j * stride + t + u * W);
  }
  std::memcpy(g + t, gv, sizeof gv);
}

// a_j where h_j > 0, else +0, without a branch (the signs are random) and without arithmetic on
// a_j (a select keeps any a_j's bits as they are).
template <class T>
inline T active_weight(T a, double h) {
  typedef typename std::conditional<sizeof(T) == 8, std::uint64_t, std::uint32_t>::type Bits;
  Bits bits;
  std::memcpy(&bits, &a, sizeof bits);
  bits &= Bits(0) - static_cast<Bits>(h > 0.0);
  T out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// g = sum_j a_j 1[h_j > 0] patch_j in T, summed over j in order for each entry.  Patches with
// h <= 0 are added with weight 0 rather than skipped (no branch; adding +-0 to a sum that starts
// at +0 changes no bit).  Each native vector of g stays in a register across the k patches.
template <class T>
inline void active_patch_sum(const Prepared<T>& P, const T* x, const double* h, T* c, T* g) {
  constexpr int W = kNativeBytes / sizeof(T);
  const std::int64_t k = P.k, p = P.p, stride = P.stride;
  for (std::int64_t j = 0; j < k; ++j) c[j] = active_weight(P.aT[j], h[j]);
  std::int64_t t = 0;
  for (; t + 8 * W <= p; t += 8 * W) patch_sum_vectors<T, 8>(x, k, stride, c, t, g);
  for (; t + 4 * W <= p; t += 4 * W) patch_sum_vectors<T, 4>(x, k, stride, c, t, g);
  for (; t + W <= p; t += W) patch_sum_vectors<T, 1>(x, k, stride, c, t, g);
  for (; t < p; ++t) {
    T gt = T(0);
    for (std::int64_t j = 0; j < k; ++j) gt += c[j] * x[j * stride + t];
    g[t] = gt;
  }
}

// One sample's contribution to the block sums acc = [sum r^2, sum r relu(h) (k), sum r g (p)].
// g depends on the signs of h only, so it is formed while f and r are still being summed.
template <class T>
inline void accumulate_sample(const Prepared<T>& P, const T* x, double y, double* h, T* c, T* g, double* acc) {
  preactivations(P, x, h);
  active_patch_sum(P, x, h, c, g);
  const double r = output(P, h) - y;
  acc[0] += r * r;
  double* acc_a = acc + 1;
  double* acc_G = acc + 1 + P.k;
  for (std::int64_t j = 0; j < P.k; ++j) acc_a[j] += r * (h[j] > 0.0 ? h[j] : 0.0);
  for (std::int64_t t = 0; t < P.p; ++t) acc_G[t] += r * static_cast<double>(g[t]);
}

inline int thread_index() {
#ifdef SHORTCUTNET_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int resolve_threads(int threads) {
#ifdef SHORTCUTNET_OPENMP
  return threads > 0 ? threads : omp_get_max_threads();
#else
  (void)threads;
  return 1;
#endif
}

// Threads worth using for n rows of d entries: at most one per block and per kEntriesPerThread.
inline int team_size(int threads, std::int64_t n, std::int64_t d) {
  const std::int64_t nblocks = (n + kBlock - 1) / kBlock;
  const std::int64_t by_work = std::max<std::int64_t>(1, n * d / kEntriesPerThread);
  return static_cast<int>(std::min<std::int64_t>(resolve_threads(threads), std::min(nblocks, by_work)));
}

// reduce_blocks on the calling thread with one block of partial sums (m doubles) as scratch: the
// same sums in the same order, with no allocation (the training engine calls it every step).
template <class BlockFn>
inline void reduce_blocks_serial(std::int64_t n, std::int64_t m, double* partial, double* total, BlockFn&& block) {
  const std::int64_t nblocks = (n + kBlock - 1) / kBlock;
  std::fill(total, total + m, 0.0);
  for (std::int64_t b = 0; b < nblocks; ++b) {
    std::fill(partial, partial + m, 0.0);
    block(b, partial);
    for (std::int64_t q = 0; q < m; ++q) total[q] += partial[q];
  }
}

// Runs block(b, acc) for every block b of n samples on team threads and adds the partial sums
// acc (length m, zeroed before each block) in block order into total.  Deterministic for any
// thread count; with team = 1 no OpenMP team is started.
template <class BlockFn>
inline void reduce_blocks(std::int64_t n, std::int64_t m, int team, double* total, BlockFn&& block) {
  if (team <= 1) {
    std::vector<double> partial(static_cast<std::size_t>(m));
    reduce_blocks_serial(n, m, partial.data(), total, block);
    return;
  }
  const std::int64_t nblocks = (n + kBlock - 1) / kBlock;
  std::fill(total, total + m, 0.0);
  const std::int64_t round_blocks = std::min(nblocks, kBlocksPerRound);
  std::vector<double> partial(static_cast<std::size_t>(round_blocks * m));
  for (std::int64_t first = 0; first < nblocks; first += kBlocksPerRound) {
    const std::int64_t count = std::min(kBlocksPerRound, nblocks - first);
    std::fill(partial.begin(), partial.begin() + count * m, 0.0);
#ifdef SHORTCUTNET_OPENMP
#pragma omp parallel for schedule(static) num_threads(team)
#endif
    for (std::int64_t b = 0; b < count; ++b) block(first + b, partial.data() + b * m);
    for (std::int64_t b = 0; b < count; ++b)
      for (std::int64_t q = 0; q < m; ++q) total[q] += partial[static_cast<std::size_t>(b * m + q)];
  }
}

// Turns the summed [sum r^2, sum r relu(h), sum r g] into the loss and the gradients.
template <class T>
inline double finish(const Prepared<T>& P, bool normalize, std::int64_t n, const double* total, double* grad_w,
                     double* grad_a) {
  const double inv_n = 1.0 / static_cast<double>(n);
  for (std::int64_t j = 0; j < P.k; ++j) grad_a[j] = total[1 + j] * inv_n;
  const double* G = total + 1 + P.k;
  if (normalize) {
    double vG = 0.0;
    for (std::int64_t t = 0; t < P.p; ++t) vG += P.v[t] * (G[t] * inv_n);
    for (std::int64_t t = 0; t < P.p; ++t) grad_w[t] = (G[t] * inv_n - vG * P.v[t]) / P.norm_u;
  } else {
    for (std::int64_t t = 0; t < P.p; ++t) grad_w[t] = G[t] * inv_n;
  }
  return 0.5 * total[0] * inv_n;
}

// f = network output on each row of X (n, d); f has X's type.
template <class T>
inline void predict(const Network& net, const T* X, std::int64_t n, int threads, T* f) {
  const Prepared<T> P = prepare<T>(net);
  const std::int64_t nblocks = (n + kBlock - 1) / kBlock;
  const int team = team_size(threads, n, P.d);
  auto run = [&](std::int64_t b, std::vector<double>& h) {
    const std::int64_t end = std::min(n, (b + 1) * kBlock);
    for (std::int64_t i = b * kBlock; i < end; ++i) f[i] = static_cast<T>(forward(P, X + i * P.d, h.data()));
  };
  if (team <= 1) {
    std::vector<double> h(static_cast<std::size_t>(P.k));
    for (std::int64_t b = 0; b < nblocks; ++b) run(b, h);
    return;
  }
#ifdef SHORTCUTNET_OPENMP
  // Allocated before the team starts: an exception must not escape a parallel region.
  std::vector<std::vector<double>> h(static_cast<std::size_t>(team), std::vector<double>(static_cast<std::size_t>(P.k)));
#pragma omp parallel for schedule(static) num_threads(team)
  for (std::int64_t b = 0; b < nblocks; ++b) run(b, h[static_cast<std::size_t>(thread_index())]);
#endif
}

// Per-thread scratch of the gradient kernels, sized once per call.
template <class T>
struct Scratch {
  std::vector<double> h;
  std::vector<T> c, g, row;
  std::vector<T> lanes;   // the transposed rows of sampled_rows_lanes, when patches are short
  std::vector<double> lane_sums;
};

template <class T>
inline void size_lanes(const Prepared<T>& P, Scratch<T>& s);

template <class T>
inline void size_scratch(const Prepared<T>& P, std::int64_t rows, Scratch<T>& s) {
  s.h.resize(static_cast<std::size_t>(P.k));
  s.c.resize(static_cast<std::size_t>(P.k));
  s.g.resize(static_cast<std::size_t>(P.p));
  s.row.resize(static_cast<std::size_t>(rows * 4 * ((P.d + 3) / 4)));  // rows of whole Philox blocks
  size_lanes(P, s);
}

template <class T>
inline std::vector<Scratch<T>> make_scratch(const Prepared<T>& P, int team, std::int64_t rows) {
  std::vector<Scratch<T>> scratch(static_cast<std::size_t>(std::max(1, team)));
  for (auto& s : scratch) size_scratch(P, rows, s);
  return scratch;
}

// ---- The materialized kernel's pass over one stored row: the sums of accumulate_sample, bit for
// bit, arranged so that independent chains keep the vector units busy (the fused kernel's rows are
// drawn into a buffer and go through accumulate_sample).

// dots_in_registers with four patches in flight: four independent chains of adds instead of one.
template <class T, int G>
inline void dots_grouped(const T* x, std::int64_t k, std::int64_t stride, const T* v, double* h) {
  typedef typename Native<T, kNativeBytes>::type V;
  constexpr int W = kNativeBytes / sizeof(T);
  constexpr int R = 64 / kNativeBytes;
  constexpr int L = W * R;
  constexpr int F = kNativeBytes >= 32 ? 4 : 1;  // patches in flight (16 SSE registers hold one)
  V vv[G][R];
  for (int q = 0; q < G; ++q)
    for (int r = 0; r < R; ++r) vv[q][r] = load_native<V>(v + q * L + r * W);
  std::int64_t j = 0;
  for (; j + F <= k; j += F) {
    V acc[F][R];
    for (int f = 0; f < F; ++f)
      for (int r = 0; r < R; ++r) acc[f][r] = V{};
    for (int q = 0; q < G; ++q)
      for (int f = 0; f < F; ++f)
        for (int r = 0; r < R; ++r) acc[f][r] += load_native<V>(x + (j + f) * stride + q * L + r * W) * vv[q][r];
    for (int f = 0; f < F; ++f) {
      for (int half = R / 2; half >= 1; half /= 2)
        for (int r = 0; r < half; ++r) acc[f][r] += acc[f][r + half];
      h[j + f] = static_cast<double>(reduce_native(acc[f][0]));
    }
  }
  if (j < k) dots_in_registers<T, G>(x + j * stride, k - j, stride, v, h + j);
}

template <class T>
inline void row_preactivations(const Prepared<T>& P, const T* x, double* h) {
  constexpr std::int64_t L = 64 / sizeof(T);
  const T* v = P.vT.data();
  const auto grouped = [&](auto G) { dots_grouped<T, decltype(G)::value>(x, P.k, P.stride, v, h); };
  if (P.p % L == 0 && with_constant<1, 8>(P.p / L, grouped)) return;
  preactivations(P, x, h);
}

// active_patch_sum with the last p mod W entries in one partial native vector instead of one
// chain per entry: the lanes past p read whatever follows in the row (the next patch) and are
// dropped, the patches too close to the row's end are added lane by lane; each kept lane is the
// scalar sum in order.
template <class T>
inline void row_patch_sum(const Prepared<T>& P, const T* x, const double* h, T* c, T* g) {
  typedef typename Native<T, kNativeBytes>::type V;
  constexpr int W = kNativeBytes / sizeof(T);
  const std::int64_t k = P.k, p = P.p, stride = P.stride, d = P.d;
  for (std::int64_t j = 0; j < k; ++j) c[j] = active_weight(P.aT[j], h[j]);
  std::int64_t t = 0;
  for (; t + 8 * W <= p; t += 8 * W) patch_sum_vectors<T, 8>(x, k, stride, c, t, g);
  for (; t + 4 * W <= p; t += 4 * W) patch_sum_vectors<T, 4>(x, k, stride, c, t, g);
  for (; t + W <= p; t += W) patch_sum_vectors<T, 1>(x, k, stride, c, t, g);
  if (t == p) return;
  const int rest = static_cast<int>(p - t);
  V gv = V{};
  std::int64_t j = 0;
  for (; j < k && j * stride + t + W <= d; ++j) gv += c[j] * load_native<V>(x + j * stride + t);
  for (; j < k; ++j)  // the last patches: no vector read past the row
    for (int l = 0; l < rest; ++l) gv[l] += c[j] * x[j * stride + t + l];
  for (int l = 0; l < rest; ++l) g[t + l] = gv[l];
}

// accumulate_sample for a stored row.
template <class T>
inline void accumulate_row(const Prepared<T>& P, const T* x, double y, double* h, T* c, T* g, double* acc) {
  row_preactivations(P, x, h);
  row_patch_sum(P, x, h, c, g);
  const double r = output(P, h) - y;
  acc[0] += r * r;
  double* acc_a = acc + 1;
  double* acc_G = acc + 1 + P.k;
  for (std::int64_t j = 0; j < P.k; ++j) acc_a[j] += r * (h[j] > 0.0 ? h[j] : 0.0);
  for (std::int64_t t = 0; t < P.p; ++t) acc_G[t] += r * static_cast<double>(g[t]);
}

// ---- Short patches (p < 64 / sizeof(T), whose dot products are in-order scalar chains): the
// rows of a block taken W at a time (W = the lanes of a native vector), transposed so that lane i
// of every vector holds row i.  Each lane then runs exactly the chains of accumulate_row
// (h_j = x_0 v_0 + x_1 v_1 + ... in order, g_t = 0 + c_0 x_0t + c_1 x_1t + ... in order), with the
// k patches' chains independent of one another; the float64 sums into the block's partials are
// then taken row by row in order.  Same sums in the same order, so the same bits.

// At most 32-byte vectors: measured faster than 64-byte ones here, whose 16 x 16 transposes and
// 16 rows in flight cost more than their wider arithmetic saves.
constexpr int kLaneBytes = kNativeBytes < 32 ? kNativeBytes : 32;

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
template <class V, int... I>
inline V broadcast_lane0(V x, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(x, x, (I * 0)...);
}
// value in every lane, bits unchanged (a lane-by-lane fill compiles to a chain of masked inserts).
template <class V, class T>
inline V broadcast(T value) {
  V x{};
  x[0] = value;
  return broadcast_lane0(x, std::make_integer_sequence<int, sizeof(V) / sizeof(T)>());
}
#else
template <class V, class T>
inline V broadcast(T value) {
  constexpr int W = sizeof(V) / sizeof(T);
  V out;
  for (int l = 0; l < W; ++l) out[l] = value;
  return out;
}
#endif

template <class V>
inline void store_native(const V& value, void* out) {
  std::memcpy(out, &value, sizeof value);
}

// The lanes of a where h > 0, else +0: active_weight lane by lane (a select, no arithmetic on a).
template <class V>
inline V active_lanes(V a, V h) {
  const auto positive = h > V{};
  typedef decltype(positive) Mask;
  return reinterpret_cast<V>(reinterpret_cast<Mask>(a) & positive);
}

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
// One level of the block transpose: the off-diagonal B x B blocks of the rows lo, hi exchanged.
template <int W, int B>
constexpr int swap_low(int l) {
  return (l & B) ? W + l - B : l;
}
template <int W, int B>
constexpr int swap_high(int l) {
  return (l & B) ? W + l : l + B;
}
template <int B, class V, int... I>
inline void swap_blocks(V& lo, V& hi, std::integer_sequence<int, I...>) {
  constexpr int W = sizeof...(I);
  const V a = lo, b = hi;
  lo = __builtin_shufflevector(a, b, swap_low<W, B>(I)...);
  hi = __builtin_shufflevector(a, b, swap_high<W, B>(I)...);
}
template <int B, class T, class V, int W>
inline void transpose_level(V (&m)[W]) {
  if constexpr (B >= 1) {
    for (int r = 0; r < W; ++r)
      if ((r & B) == 0) swap_blocks<B>(m[r], m[r + B], std::make_integer_sequence<int, W>());
    transpose_level<B / 2, T>(m);
  }
}
template <class T, class V, int W>
inline void transpose_square(V (&m)[W]) {
  transpose_level<W / 2, T>(m);
}
#else
template <class T, class V, int W>
inline void transpose_square(V (&m)[W]) {
  T a[W][W];
  std::memcpy(a, m, sizeof a);
  for (int r = 0; r < W; ++r)
    for (int c = r + 1; c < W; ++c) std::swap(a[r][c], a[c][r]);
  std::memcpy(m, a, sizeof a);
}
#endif

template <class T>
constexpr bool short_patches(std::int64_t p) {
  return p < static_cast<std::int64_t>(64 / sizeof(T));
}

// The scratch of sampled_rows_lanes, W lanes each: the transposed rows (d rounded up to whole
// W x W squares), then h and g (k + p rounded up to whole squares) and the same transposed back
// to one row per lane, then a copy of W stored rows; and float64 sums of the k + p products per
// row, rounded up likewise.
template <class T>
struct LaneLayout {
  static constexpr std::int64_t W = kLaneBytes / sizeof(T);
  std::int64_t columns, terms, d;
  explicit LaneLayout(const Prepared<T>& P)
      : columns((P.d + W - 1) / W * W), terms((P.k + P.p + W - 1) / W * W), d(P.d) {}
  std::int64_t size() const { return (columns + 2 * terms + d) * W; }
};

template <class T>
inline void size_lanes(const Prepared<T>& P, Scratch<T>& s) {
  if (!short_patches<T>(P.p)) return;
  const LaneLayout<T> layout(P);
  s.lanes.resize(static_cast<std::size_t>(layout.size()));
  s.lane_sums.resize(static_cast<std::size_t>(layout.terms));
}

// cols[e W + i] = row i's entry e, for the W rows at x[0..W), while the rows at next[0..W) (unless
// next is null) are fetched into the cache.  The last d mod W entries of each row are copied into
// a zero-padded square first: no read past a row.
template <class T>
inline void transpose_rows(const T* const* x, const T* const* next, std::int64_t d, T* cols) {
  typedef typename Native<T, kLaneBytes>::type V;
  constexpr int W = kLaneBytes / sizeof(T);
  constexpr int line = 64 / sizeof(T);
  V m[W];
  std::int64_t e = 0;
  for (; e + W <= d; e += W) {
    if (next != nullptr && e % line == 0)
      for (int i = 0; i < W; ++i) __builtin_prefetch(next[i] + e);
    for (int i = 0; i < W; ++i) m[i] = load_native<V>(x[i] + e);
    transpose_square<T>(m);
#pragma GCC unroll 16
    for (int c = 0; c < W; ++c) store_native(m[c], cols + (e + c) * W);
  }
  if (e == d) return;
  for (int i = 0; i < W; ++i) {
    T padded[W] = {};
    for (std::int64_t c = 0; c < d - e; ++c) padded[c] = x[i][e + c];
    m[i] = load_native<V>(padded);
  }
  transpose_square<T>(m);
  for (int c = 0; c < W; ++c) store_native(m[c], cols + (e + c) * W);
}

// h (k x W lanes) and, with Backward, g (p x W lanes) of the transposed rows: the k patches one
// after another, g's p chains carried across them.
template <class T, int Pn, bool Backward>
inline void lane_patches(const Prepared<T>& P, const T* cols, T* h, T* g) {
  typedef typename Native<T, kLaneBytes>::type V;
  constexpr int W = kLaneBytes / sizeof(T);
  const std::int64_t k = P.k, stride = P.stride;
  V v[Pn], gv[Pn];
  for (int t = 0; t < Pn; ++t) {
    v[t] = broadcast<V>(P.vT[static_cast<std::size_t>(t)]);
    gv[t] = V{};
  }
  for (std::int64_t j = 0; j < k; ++j) {
    const T* xj = cols + j * stride * W;
    V x[Pn];
    for (int t = 0; t < Pn; ++t) x[t] = load_native<V>(xj + t * W);
    V hj = x[0] * v[0];
    for (int t = 1; t < Pn; ++t) hj += x[t] * v[t];
    store_native(hj, h + j * W);
    if constexpr (Backward) {
      const V cj = active_lanes(broadcast<V>(P.aT[static_cast<std::size_t>(j)]), hj);
      for (int t = 0; t < Pn; ++t) gv[t] += cj * x[t];
    }
  }
  if constexpr (Backward)
    for (int t = 0; t < Pn; ++t) store_native(gv[t], g + t * W);
}

// lane_patches of short patches (g == nullptr: h alone, the forward pass).
template <class T>
inline void lane_patches_of(const Prepared<T>& P, const T* cols, T* h, T* g) {
  constexpr int kLongest = 64 / sizeof(T) - 1;  // the longest short patch
  if (g == nullptr)
    with_constant<1, kLongest>(P.p, [&](auto Pn) { lane_patches<T, decltype(Pn)::value, false>(P, cols, h, g); });
  else
    with_constant<1, kLongest>(P.p, [&](auto Pn) { lane_patches<T, decltype(Pn)::value, true>(P, cols, h, g); });
}

// The W lanes of x (T) as float64 vectors of the native width.
template <class T, class D, int N>
inline void widen(const T* x, D (&out)[N]) {
  constexpr int WD = sizeof(D) / sizeof(double);
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
  typedef T Narrow __attribute__((vector_size(WD * sizeof(T))));
  for (int q = 0; q < N; ++q) out[q] = __builtin_convertvector(load_native<Narrow>(x + q * WD), D);
#else
  for (int q = 0; q < N; ++q)
    for (int l = 0; l < WD; ++l) out[q][l] = static_cast<double>(x[q * WD + l]);
#endif
}

// r_i = output(h_i) - y_i for the W rows of the lanes, in float64.
template <class T>
inline void lane_residuals(const Prepared<T>& P, const T* h, const double* y, double* r) {
  typedef typename Native<double, kLaneBytes>::type D;
  constexpr int W = kLaneBytes / sizeof(T);
  constexpr int WD = kLaneBytes / sizeof(double);
  constexpr int N = W / WD;  // float64 vectors per lane group
  D f[N], poison[N], hv[N];
  for (int q = 0; q < N; ++q) f[q] = poison[q] = D{};
  for (std::int64_t j = 0; j < P.k; ++j) {
    const D aj = broadcast<D>(P.a[static_cast<std::size_t>(j)]);
    widen(h + j * W, hv);
    for (int q = 0; q < N; ++q) {
      f[q] += aj * (hv[q] > 0.0 ? hv[q] : D{});
      poison[q] += hv[q] == hv[q] ? D{} : hv[q];
    }
  }
  for (int q = 0; q < N; ++q) store_native((f[q] + poison[q]) - load_native<D>(y + q * WD), r + q * WD);
}

// lanes (rows x W, rows a multiple of W) transposed into out (W x rows).
template <class T>
inline void transpose_back(const T* lanes, std::int64_t rows, T* out) {
  typedef typename Native<T, kLaneBytes>::type V;
  constexpr int W = kLaneBytes / sizeof(T);
  V m[W];
  for (std::int64_t b = 0; b < rows; b += W) {
    for (int c = 0; c < W; ++c) m[c] = load_native<V>(lanes + (b + c) * W);
    transpose_square<T>(m);
#pragma GCC unroll 16
    for (int i = 0; i < W; ++i) store_native(m[i], out + i * rows + b);
  }
}

// sums[q] += r_i relu(h_ij) (q = j < k) or r_i g_it (q = k + t), row i = 0, 1, ..., count - 1 in
// order, from the rows of h and g (`terms` entries per row, the ones past k + p dropped).
template <class T>
inline void add_row_terms(const T* hg, std::int64_t terms, std::int64_t k, const double* r, int count,
                          double* sums) {
  typedef typename Native<double, kLaneBytes>::type D;
  constexpr int WD = kLaneBytes / sizeof(double);
  D index;
  for (int l = 0; l < WD; ++l) index[l] = l;
  for (std::int64_t q = 0; q < terms; q += WD) {
    const auto relu = index + static_cast<double>(q) < static_cast<double>(k);
    D sum = load_native<D>(sums + q);
    for (int i = 0; i < count; ++i) {
      D x[1];
      widen(hg + i * terms + q, x);
      const D term = relu ? (x[0] > 0.0 ? x[0] : D{}) : x[0];
      sum += broadcast<D>(r[i]) * term;
    }
    store_native(sum, sums + q);
  }
}

// Where sampled_rows_lanes keeps its lanes in the scratch: the transposed rows, h and g, the same
// one row per lane, and the float64 sums.
template <class T>
struct LaneBuffers {
  T* cols;
  T* hg;
  T* hg_rows;
  T* stored_rows;
  double* sums;
  LaneBuffers(const LaneLayout<T>& layout, Scratch<T>& s)
      : cols(s.lanes.data()),
        hg(cols + layout.columns * layout.W),
        hg_rows(hg + layout.terms * layout.W),
        stored_rows(hg_rows + layout.terms * layout.W),
        sums(s.lane_sums.data()) {}
};

// One lane group of sampled_rows_lanes, its rows already transposed into L.cols: the residuals
// r against the labels yl, the squared residuals of the first count rows added to loss, their
// gradient terms to L.sums.
template <class T>
inline void lane_group(const Prepared<T>& P, const LaneLayout<T>& layout, const LaneBuffers<T>& L,
                       const double* yl, int count, double* loss) {
  constexpr int W = kLaneBytes / sizeof(T);
  double r[W];
  lane_patches_of(P, L.cols, L.hg, L.hg + P.k * W);
  lane_residuals(P, L.hg, yl, r);
  for (int i = 0; i < count; ++i) *loss += r[i] * r[i];
  transpose_back(L.hg, layout.terms, L.hg_rows);
  add_row_terms(L.hg_rows, layout.terms, P.k, r, count, L.sums);
}

// The samples [begin, end) of a block of n samples with short patches, W rows at a time; a last
// group of fewer rows repeats its last row in the unused lanes and drops them.  W consecutive rows
// are first copied in order into the scratch: one stream, which the hardware prefetcher follows,
// where transposing them in place reads W short streams at once, which it does not (the kernel
// 1.4x slower from memory on AMD Zen 4, and fetching the rows ahead by software made it slower
// still).  Rows picked by index are read in place, the rows two groups ahead fetched meanwhile.
template <class T>
inline void sampled_rows_lanes(const Prepared<T>& P, const T* X, const T* y, const std::int64_t* rows,
                               std::int64_t n, std::int64_t begin, std::int64_t end, Scratch<T>& s, double* acc) {
  constexpr int W = kLaneBytes / sizeof(T);
  const LaneLayout<T> layout(P);
  const LaneBuffers<T> L(layout, s);
  const std::int64_t m = P.k + P.p;
  std::copy(acc + 1, acc + 1 + m, L.sums);
  std::fill(L.sums + m, L.sums + layout.terms, 0.0);
  const T* x[W];
  const T* next[W];
  double yl[W];
  for (std::int64_t i0 = begin; i0 < end; i0 += W) {
    const int count = static_cast<int>(std::min<std::int64_t>(W, end - i0));
    for (int i = 0; i < W; ++i) {
      const std::int64_t sample = i0 + std::min(i, count - 1);
      const std::int64_t row = rows == nullptr ? sample : rows[sample];
      x[i] = X + row * P.d;
      yl[i] = static_cast<double>(y[row]);
      if (rows != nullptr) next[i] = X + rows[std::min(i0 + 2 * W + i, n - 1)] * P.d;
    }
    if (rows == nullptr && count == W) {
      std::copy(x[0], x[0] + W * P.d, L.stored_rows);
      for (int i = 0; i < W; ++i) x[i] = L.stored_rows + i * P.d;
    }
    transpose_rows(x, rows == nullptr ? nullptr : next, P.d, L.cols);
    lane_group(P, layout, L, yl, count, acc);
  }
  std::copy(L.sums, L.sums + m, acc + 1);
}

// Batches larger than this come from memory rather than from the cache.
constexpr std::int64_t kStreamedBytes = std::int64_t(16) << 20;

// One load per cache line of the row, in order.  accumulate_row reads a few patches of a row at a
// time: a few short interleaved streams, which the hardware prefetcher follows poorly (AVX2
// float64 rows from memory 1.4x faster after this pass on AMD Zen 4); from the cache, the pass
// only costs (15% at k = 16, p = 64).
template <class T>
inline void touch_row(const T* x, std::int64_t d) {
  constexpr std::int64_t line = 64 / sizeof(T);
  for (std::int64_t e = 0; e < d; e += line) (void)*static_cast<const volatile T*>(x + e);
  (void)*static_cast<const volatile T*>(x + d - 1);
}

// float32 rows from memory are also requested kRowsAhead rows ahead, into the L2 cache, so that
// the memory works while the rows before are computed: on AMD Zen 3 (AVX2, k = 16, p = 64, two
// threads) the kernel went from 72% to 87-89% of the read bandwidth.  float64 rows are not: the
// same request (one or two rows ahead) made them slower in shortcutnet bench, from 76% to 60-68%.
template <class T>
constexpr bool kRequestAhead = sizeof(T) == 4;
constexpr std::int64_t kRowsAhead = 2;

template <class T>
inline void request_row(const T* x, std::int64_t d) {
  constexpr std::int64_t line = 64 / sizeof(T);
  for (std::int64_t e = 0; e < d; e += line) __builtin_prefetch(x + e, 0, 2);
  __builtin_prefetch(x + d - 1, 0, 2);
}

// Block b of the materialized kernel: rows rows[i] (rows == nullptr: row i) of X for the
// samples i of the block, in order.
template <class T>
inline void sampled_block(const Prepared<T>& P, const T* X, const T* y, const std::int64_t* rows, std::int64_t n,
                          std::int64_t b, Scratch<T>& s, double* acc) {
  const std::int64_t end = std::min(n, (b + 1) * kBlock);
  if (short_patches<T>(P.p)) return sampled_rows_lanes(P, X, y, rows, n, b * kBlock, end, s, acc);
  const bool streamed = n * P.d * static_cast<std::int64_t>(sizeof(T)) > kStreamedBytes;
  for (std::int64_t i = b * kBlock; i < end; ++i) {
    const std::int64_t r = rows == nullptr ? i : rows[i];
    if (streamed) {
      touch_row(X + r * P.d, P.d);
      if (kRequestAhead<T> && i + kRowsAhead < n)
        request_row(X + (rows == nullptr ? i + kRowsAhead : rows[i + kRowsAhead]) * P.d, P.d);
    }
    accumulate_row(P, X + r * P.d, static_cast<double>(y[r]), s.h.data(), s.c.data(), s.g.data(), acc);
  }
}

// The W float64 lanes at x rounded to T, into out, by explicit vector conversions: GCC 12.2 at
// -O3 with AVX-512 was seen to vectorize a lane-by-lane round trip double -> float -> double in
// the fused kernel into no rounding at all (its SLP pass; the tests of the fused kernel's bits
// catch it).
template <class T>
inline void round_lanes(const double* x, double* out) {
  constexpr int W = kLaneBytes / sizeof(T);
  if constexpr (std::is_same<T, double>::value) {
    std::copy(x, x + W, out);
  } else {
    typedef typename Native<double, kLaneBytes>::type D;
    constexpr int WD = kLaneBytes / sizeof(double);
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
    typedef T Narrow __attribute__((vector_size(WD * sizeof(T))));
    for (int q = 0; q < W / WD; ++q) {
      const Narrow rounded = __builtin_convertvector(load_native<D>(x + q * WD), Narrow);
      store_native(__builtin_convertvector(rounded, D), out + q * WD);
    }
#else
    for (int l = 0; l < W; ++l) out[l] = static_cast<double>(static_cast<T>(x[l]));
#endif
  }
}

// fused_rows with short patches: rows `stride` apart in the buffer, W at a time.  The teacher's
// lanes give its outputs as lane_residuals against labels 0 (f - 0 = f), rounded to T: forward()'s
// sums in forward()'s order, so the labels predict() would store.
template <class T>
inline void fused_rows_lanes(const Prepared<T>& P, const Prepared<T>& Q, const T* X, std::int64_t stride,
                             std::int64_t rows, Scratch<T>& s, double* acc) {
  constexpr int W = kLaneBytes / sizeof(T);
  const LaneLayout<T> layout(P);
  const LaneBuffers<T> L(layout, s);
  const std::int64_t m = P.k + P.p;
  std::copy(acc + 1, acc + 1 + m, L.sums);
  std::fill(L.sums + m, L.sums + layout.terms, 0.0);
  const T* x[W];
  const double zeros[W] = {};
  double f[W], y[W];
  for (std::int64_t i0 = 0; i0 < rows; i0 += W) {
    const int count = static_cast<int>(std::min<std::int64_t>(W, rows - i0));
    for (int i = 0; i < W; ++i) x[i] = X + (i0 + std::min(i, count - 1)) * stride;
    transpose_rows<T>(x, nullptr, P.d, L.cols);
    lane_patches_of<T>(Q, L.cols, L.hg, nullptr);
    lane_residuals(Q, L.hg, zeros, f);
    round_lanes<T>(f, y);
    lane_group(P, layout, L, y, count, acc);
  }
  std::copy(L.sums, L.sums + m, acc + 1);
}

// Rows the fused kernel draws together into its buffer: about 2048 entries, which stay in L1; with
// short patches whole lane groups of sampled_rows_lanes.
template <class T>
inline std::int64_t fused_group(std::int64_t d, std::int64_t p) {
  constexpr std::int64_t W = kLaneBytes / sizeof(T);
  const std::int64_t rows = std::max<std::int64_t>(1, std::min<std::int64_t>(kBlock, 2048 / d));
  return short_patches<T>(p) ? std::max(W, rows / W * W) : rows;
}

// Block b of the fused kernel: rows of the generator (key) labelled by the teacher Q, rounded to T
// exactly as predict() stores a label.  The rows are drawn as one stream of whole Philox blocks
// (gaussian_stream), so the generator's lanes are all used whatever the row length; a row's
// entries past d are never read.
// The gradient work of the fused kernel on rows of its buffer (row r at X + 4 ceil(d/4) r): the
// teacher's labels, rounded to T as predict() stores them, then the student's sums.  Short
// patches go through the materialized kernel's lanes (the same sums in the same order), the
// teacher's forward pass in the same lanes as the student's, on rows transposed once.
template <class T>
inline void fused_rows(const Prepared<T>& P, const Prepared<T>& Q, const T* X, std::int64_t rows, Scratch<T>& s,
                       double* acc) {
  const std::int64_t stride = 4 * ((P.d + 3) / 4);
  if (short_patches<T>(P.p)) return fused_rows_lanes(P, Q, X, stride, rows, s, acc);
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* x = X + r * stride;
    const T y = static_cast<T>(forward(Q, x, s.h.data()));
    accumulate_sample(P, x, static_cast<double>(y), s.h.data(), s.c.data(), s.g.data(), acc);
  }
}

template <class T>
inline void fused_block(const Prepared<T>& P, const Prepared<T>& Q, PhiloxKey key, std::int64_t n, std::int64_t b,
                        Scratch<T>& s, double* acc) {
  const std::int64_t group = fused_group<T>(P.d, P.p), blocks = (P.d + 3) / 4;
  const std::int64_t end = std::min(n, (b + 1) * kBlock);
  for (std::int64_t i = b * kBlock; i < end; i += group) {
    const std::int64_t rows = std::min(group, end - i);
    gaussian_stream(key, i, rows, blocks, s.row.data());
    fused_rows(P, Q, s.row.data(), rows, s, acc);
  }
}

// Loss and gradients over X (n, d) with labels y (n); returns the loss.
template <class T>
inline double sampled_loss_grad(const Network& net, const T* X, const T* y, std::int64_t n, int threads,
                                double* grad_w, double* grad_a) {
  const Prepared<T> P = prepare<T>(net);
  const std::int64_t m = 1 + P.k + P.p;
  const int team = team_size(threads, n, P.d);
  std::vector<Scratch<T>> scratch = make_scratch(P, team, 0);
  std::vector<double> total(static_cast<std::size_t>(m));
  reduce_blocks(n, m, team, total.data(), [&](std::int64_t b, double* acc) {
    sampled_block(P, X, y, nullptr, n, b, scratch[static_cast<std::size_t>(thread_index())], acc);
  });
  return finish(P, net.normalize, n, total.data(), grad_w, grad_a);
}

// X (n, d) filled with the generator's entries for seed (row i = rows i of the batch).
template <class T>
inline void sample_inputs(std::int64_t n, std::int64_t d, std::uint64_t seed, int threads, T* X) {
  const PhiloxKey key = philox_key(seed);
  const std::int64_t nblocks = (n + kBlock - 1) / kBlock;
  const int team = team_size(threads, n, 8 * d);  // generating costs about 8 reads
  auto run = [&](std::int64_t b) {
    const std::int64_t end = std::min(n, (b + 1) * kBlock);
    gaussian_rows(key, b * kBlock, end - b * kBlock, d, X + b * kBlock * d);
  };
  if (team <= 1) {
    for (std::int64_t b = 0; b < nblocks; ++b) run(b);
    return;
  }
#ifdef SHORTCUTNET_OPENMP
#pragma omp parallel for schedule(static) num_threads(team)
  for (std::int64_t b = 0; b < nblocks; ++b) run(b);
#endif
}

// Fused: loss and gradients on n fresh rows of the generator (seed) labelled by the teacher
// (w_star, a_star, same s, stride and normalization).  Each row lives only in a per-thread buffer.
// The label is rounded to T, exactly as predict() stores it, so the result is bitwise that of
// sampled_loss_grad(X = sample_inputs(...), y = predict(teacher, X)).
template <class T>
inline double stochastic_loss_grad(const Network& net, const double* w_star, const double* a_star, std::int64_t n,
                                   std::uint64_t seed, int threads, double* grad_w, double* grad_a) {
  const Prepared<T> P = prepare<T>(net);
  const Network teacher{net.s, w_star, a_star, net.k, net.p, net.stride, net.normalize};
  const Prepared<T> Q = prepare<T>(teacher);
  const PhiloxKey key = philox_key(seed);
  const std::int64_t m = 1 + P.k + P.p;
  const int team = team_size(threads, n, 8 * P.d);
  std::vector<Scratch<T>> scratch = make_scratch(P, team, fused_group<T>(P.d, P.p));
  std::vector<double> total(static_cast<std::size_t>(m));
  reduce_blocks(n, m, team, total.data(), [&](std::int64_t b, double* acc) {
    fused_block(P, Q, key, n, b, scratch[static_cast<std::size_t>(thread_index())], acc);
  });
  return finish(P, net.normalize, n, total.data(), grad_w, grad_a);
}

// The kernels above on the calling thread, with every buffer kept in a workspace across calls (a
// training step allocates nothing).  Same sums in the same order, so the same bits.
template <class T>
struct SerialWorkspace {
  Prepared<T> student, teacher;
  Scratch<T> scratch;
  std::vector<double> partial, total;
};

// Sizes every buffer of ws for networks of k patches of p entries at the given stride.
template <class T>
inline void size_serial(std::int64_t k, std::int64_t p, std::int64_t stride, SerialWorkspace<T>& ws) {
  for (Prepared<T>* P : {&ws.student, &ws.teacher}) {
    P->k = k;
    P->p = p;
    P->stride = stride;
    P->d = (k - 1) * stride + p;
    P->v.resize(static_cast<std::size_t>(p));
    P->vT.resize(static_cast<std::size_t>(p));
    P->a.resize(static_cast<std::size_t>(k));
    P->aT.resize(static_cast<std::size_t>(k));
  }
  size_scratch(ws.teacher, fused_group<T>(ws.teacher.d, ws.teacher.p), ws.scratch);
  ws.partial.resize(static_cast<std::size_t>(1 + k + p));
  ws.total.resize(static_cast<std::size_t>(1 + k + p));
}

// Sets the teacher of the fused kernel (ws sized by size_serial).
template <class T>
inline void start_serial(const Network& teacher, SerialWorkspace<T>& ws) {
  prepare_into(teacher, ws.teacher);
}

// stochastic_loss_grad with the teacher set by start_serial.
template <class T>
inline double stochastic_loss_grad_serial(const Network& net, std::int64_t n, std::uint64_t seed,
                                          SerialWorkspace<T>& ws, double* grad_w, double* grad_a) {
  prepare_into(net, ws.student);
  const PhiloxKey key = philox_key(seed);
  const std::int64_t m = 1 + net.k + net.p;
  reduce_blocks_serial(n, m, ws.partial.data(), ws.total.data(), [&](std::int64_t b, double* acc) {
    fused_block(ws.student, ws.teacher, key, n, b, ws.scratch, acc);
  });
  return finish(ws.student, net.normalize, n, ws.total.data(), grad_w, grad_a);
}

// sampled_loss_grad over the n rows rows[0..n) of X (rows == nullptr: the first n rows).
template <class T>
inline double sampled_loss_grad_serial(const Network& net, const T* X, const T* y, const std::int64_t* rows,
                                       std::int64_t n, SerialWorkspace<T>& ws, double* grad_w, double* grad_a) {
  prepare_into(net, ws.student);
  const std::int64_t m = 1 + net.k + net.p;
  reduce_blocks_serial(n, m, ws.partial.data(), ws.total.data(), [&](std::int64_t b, double* acc) {
    sampled_block(ws.student, X, y, rows, n, b, ws.scratch, acc);
  });
  return finish(ws.student, net.normalize, n, ws.total.data(), grad_w, grad_a);
}

}  // namespace SHORTCUTNET_ISA_NAMESPACE
}  // namespace shortcutnet
