// Sampled (empirical) loss and gradients of the two-layer convolutional network, MODEL.md section 3:
//   h_ij = <patch_ij, v>,  r_i = sum_j a_j relu(h_ij) - y_i,  loss = (1/2n) sum_i r_i^2,
//   grad_a = (1/n) sum_i r_i relu(h_i.),  G = (1/n) sum_i r_i sum_j a_j 1[h_ij > 0] patch_ij,
//   grad_w = (G - (v.G) v)/|u| (normalized, v = u/|u|) or G (v = u), u = w + s.
// Patch j of row i is X[i, j*stride : j*stride + p] (overlapping patches are read in place).
//
// One pass per sample: the k dot products, the residual, then the backward accumulation of the
// sample's gradient while its row is still in L1.  The fused stochastic kernel draws each row with
// the counter-based generator of philox.hpp into a per-thread buffer and never stores the batch.
//
// Precision.  Inputs are float32 or float64 (T).  Dot products run in T over 64-byte lane groups
// (16 float / 8 double partial sums, reduced by a fixed pairwise tree), so every instruction set
// computes the same bits; everything after the dot product is float64: relu, f_i, r_i, the loss,
// grad_a.  For a sample, g_i = sum_j a_j 1[h_ij > 0] patch_ij is summed in T (k terms), then
// r_i g_i is added to float64 block sums.
//
// Determinism.  Samples are cut into blocks of kBlock rows, independent of the thread count; each
// block is reduced serially into its own float64 partial sums; partials are added in block order
// on one thread.  So results are identical to the last bit for any number of threads.
//
// All indices are 64-bit.  Nothing here allocates per sample; nothing touches Python.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

#include "philox.hpp"

namespace shortcutnet {
namespace SHORTCUTNET_ISA_NAMESPACE {

// Samples per block: the unit of parallel work and of the fixed summation order.
constexpr std::int64_t kBlock = 256;
// Blocks whose partial sums are held at once; bounds the memory of the partials for huge n.
constexpr std::int64_t kBlocksPerRound = 1024;

// The network as the kernels see it: shortcut s (p), first layer w (p), second layer a (k).
struct Network {
  const double* s;
  const double* w;
  const double* a;
  std::int64_t k, p, stride;
  bool normalize;
  std::int64_t d() const { return (k - 1) * stride + p; }
};

// <x, v> over p entries with 64-byte lane groups and a fixed reduction tree.
template <class T>
inline T dot_lanes(const T* x, const T* v, std::int64_t p) {
  constexpr int L = 64 / sizeof(T);
  T acc[L] = {};
  std::int64_t t = 0;
  for (; t + L <= p; t += L)
    for (int l = 0; l < L; ++l) acc[l] += x[t + l] * v[t + l];
  for (int l = 0; t + l < p; ++l) acc[l] += x[t + l] * v[t + l];
  for (int half = L / 2; half >= 1; half /= 2)
    for (int l = 0; l < half; ++l) acc[l] += acc[l + half];
  return acc[0];
}

// The filter direction v (double, length p) and |u|; false when u = 0 in the normalized model.
inline bool filter_direction(const double* s, const double* w, std::int64_t p, bool normalize, double* v,
                             double* norm_u) {
  double nn = 0.0;
  for (std::int64_t t = 0; t < p; ++t) {
    v[t] = w[t] + s[t];
    nn += v[t] * v[t];
  }
  *norm_u = std::sqrt(nn);
  if (!normalize) return true;
  if (!(nn > 0.0)) return false;
  for (std::int64_t t = 0; t < p; ++t) v[t] /= *norm_u;
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

template <class T>
inline Prepared<T> prepare(const Network& net) {
  Prepared<T> P;
  P.k = net.k;
  P.p = net.p;
  P.stride = net.stride;
  P.d = net.d();
  P.v.resize(static_cast<std::size_t>(net.p));
  filter_direction(net.s, net.w, net.p, net.normalize, P.v.data(), &P.norm_u);
  P.a.assign(net.a, net.a + net.k);
  P.vT.assign(P.v.begin(), P.v.end());
  P.aT.assign(P.a.begin(), P.a.end());
  return P;
}

// f(x) = sum_j a_j relu(<patch_j, v>) in double; h receives the k pre-activations.  A non-finite
// pre-activation (a NaN or infinite input) makes f NaN instead of vanishing behind the relu
// (h * 0 is 0 for finite h), so callers detect bad input from the output alone.
template <class T>
inline double forward(const Prepared<T>& P, const T* x, double* h) {
  double f = 0.0;
  for (std::int64_t j = 0; j < P.k; ++j) {
    h[j] = static_cast<double>(dot_lanes(x + j * P.stride, P.vT.data(), P.p));
    f += P.a[j] * (h[j] > 0.0 ? h[j] : h[j] * 0.0);
  }
  return f;
}

// One sample's contribution to the block sums acc = [sum r^2, sum r relu(h) (k), sum r g (p)].
template <class T>
inline void accumulate_sample(const Prepared<T>& P, const T* x, double y, double* h, T* g, double* acc) {
  const double r = forward(P, x, h) - y;
  acc[0] += r * r;
  double* acc_a = acc + 1;
  double* acc_G = acc + 1 + P.k;
  for (std::int64_t j = 0; j < P.k; ++j) acc_a[j] += r * (h[j] > 0.0 ? h[j] : 0.0);
  const std::int64_t p = P.p;
  for (std::int64_t t = 0; t < p; ++t) g[t] = T(0);
  for (std::int64_t j = 0; j < P.k; ++j) {
    if (!(h[j] > 0.0)) continue;
    const T c = P.aT[j];
    const T* patch = x + j * P.stride;
    for (std::int64_t t = 0; t < p; ++t) g[t] += c * patch[t];
  }
  for (std::int64_t t = 0; t < p; ++t) acc_G[t] += r * static_cast<double>(g[t]);
}

inline int resolve_threads(int threads) {
#ifdef SHORTCUTNET_OPENMP
  return threads > 0 ? threads : omp_get_max_threads();
#else
  (void)threads;
  return 1;
#endif
}

// Runs block(b, acc, scratch_index) for every block b of n samples and adds the partial sums
// acc (length m, zeroed before each block) in block order into total.  Deterministic for any
// thread count; below two blocks no OpenMP team is started.
template <class BlockFn>
inline void reduce_blocks(std::int64_t n, std::int64_t m, int threads, double* total, BlockFn&& block) {
  const std::int64_t nblocks = (n + kBlock - 1) / kBlock;
  const int team = static_cast<int>(std::min<std::int64_t>(resolve_threads(threads), nblocks));
  std::fill(total, total + m, 0.0);
  const std::int64_t round_blocks = std::min(nblocks, kBlocksPerRound);
  std::vector<double> partial(static_cast<std::size_t>(round_blocks * m));
  for (std::int64_t first = 0; first < nblocks; first += kBlocksPerRound) {
    const std::int64_t count = std::min(kBlocksPerRound, nblocks - first);
    std::fill(partial.begin(), partial.begin() + count * m, 0.0);
    if (team <= 1) {
      for (std::int64_t b = 0; b < count; ++b) block(first + b, partial.data() + b * m);
    } else {
#ifdef SHORTCUTNET_OPENMP
#pragma omp parallel for schedule(static) num_threads(team)
      for (std::int64_t b = 0; b < count; ++b) block(first + b, partial.data() + b * m);
#endif
    }
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
  const int team = static_cast<int>(std::min<std::int64_t>(resolve_threads(threads), nblocks));
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
#pragma omp parallel num_threads(team)
  {
    std::vector<double> h(static_cast<std::size_t>(P.k));
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < nblocks; ++b) run(b, h);
  }
#endif
}

// Per-thread scratch of the gradient kernels, sized once per call.
template <class T>
struct Scratch {
  std::vector<double> h;
  std::vector<T> g, row;
};

template <class T>
inline std::vector<Scratch<T>> make_scratch(const Prepared<T>& P, int threads, bool with_row) {
  std::vector<Scratch<T>> scratch(static_cast<std::size_t>(std::max(1, resolve_threads(threads))));
  for (auto& s : scratch) {
    s.h.resize(static_cast<std::size_t>(P.k));
    s.g.resize(static_cast<std::size_t>(P.p));
    if (with_row) s.row.resize(static_cast<std::size_t>(P.d));
  }
  return scratch;
}

inline int thread_index() {
#ifdef SHORTCUTNET_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Loss and gradients over X (n, d) with labels y (n); returns the loss.
template <class T>
inline double sampled_loss_grad(const Network& net, const T* X, const T* y, std::int64_t n, int threads,
                                double* grad_w, double* grad_a) {
  const Prepared<T> P = prepare<T>(net);
  const std::int64_t m = 1 + P.k + P.p;
  std::vector<Scratch<T>> scratch = make_scratch(P, threads, false);
  std::vector<double> total(static_cast<std::size_t>(m));
  reduce_blocks(n, m, threads, total.data(), [&](std::int64_t b, double* acc) {
    Scratch<T>& s = scratch[static_cast<std::size_t>(thread_index())];
    const std::int64_t end = std::min(n, (b + 1) * kBlock);
    for (std::int64_t i = b * kBlock; i < end; ++i)
      accumulate_sample(P, X + i * P.d, static_cast<double>(y[i]), s.h.data(), s.g.data(), acc);
  });
  return finish(P, net.normalize, n, total.data(), grad_w, grad_a);
}

// X (n, d) filled with the generator's entries for seed (row i = rows i of the batch).
template <class T>
inline void sample_inputs(std::int64_t n, std::int64_t d, std::uint64_t seed, int threads, T* X) {
  const PhiloxKey key = philox_key(seed);
  const std::int64_t nblocks = (n + kBlock - 1) / kBlock;
  const int team = static_cast<int>(std::min<std::int64_t>(resolve_threads(threads), nblocks));
  auto run = [&](std::int64_t b) {
    const std::int64_t end = std::min(n, (b + 1) * kBlock);
    for (std::int64_t i = b * kBlock; i < end; ++i) gaussian_row(key, i, d, X + i * d);
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
  std::vector<Scratch<T>> scratch = make_scratch(P, threads, true);
  std::vector<double> total(static_cast<std::size_t>(m));
  reduce_blocks(n, m, threads, total.data(), [&](std::int64_t b, double* acc) {
    Scratch<T>& s = scratch[static_cast<std::size_t>(thread_index())];
    const std::int64_t end = std::min(n, (b + 1) * kBlock);
    for (std::int64_t i = b * kBlock; i < end; ++i) {
      gaussian_row(key, i, P.d, s.row.data());
      const T y = static_cast<T>(forward(Q, s.row.data(), s.h.data()));
      accumulate_sample(P, s.row.data(), static_cast<double>(y), s.h.data(), s.g.data(), acc);
    }
  });
  return finish(P, net.normalize, n, total.data(), grad_w, grad_a);
}

}  // namespace SHORTCUTNET_ISA_NAMESPACE
}  // namespace shortcutnet
