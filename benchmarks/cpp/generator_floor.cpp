// Where the time of the fused stochastic gradient goes, on one thread, for rows of k = 16 patches
// of p = 64 float32 entries: the Philox4x32-10 words alone, the Gaussian rows (Philox and
// Box-Muller), and the gradient work on a row already in L1 (teacher label, forward, backward).
// The sum is the floor of the fused kernel; divided by the thread count it gives the floor of
// the n = 2^17 benchmark (benchmarks/test_bench_fused.py).
//
// Build (optimized: an unoptimized build is 15-20x slower and its figures mean nothing):
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSHORTCUTNET_BUILD_BENCHMARKS=ON -DSKBUILD=OFF && cmake --build build
// Run:   ./build/generator_floor [rows = 200000] [threads = 2]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "shortcutnet/sampled.hpp"

namespace sn = shortcutnet::sampled;

namespace {

constexpr std::int64_t kK = 16, kP = 64, kD = kK * kP;

template <class Body>
double ns_per_entry(std::int64_t rows, Body&& body) {
  body(0);  // warm-up: page in the buffers, settle the clock
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < rows; ++i) body(i);
  const std::chrono::duration<double, std::nano> elapsed = std::chrono::steady_clock::now() - start;
  return elapsed.count() / static_cast<double>(rows * kD);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t rows = argc > 1 ? std::atoll(argv[1]) : 200000;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  if (rows < 1 || threads < 1) {
    std::fprintf(stderr, "usage: generator_floor [rows >= 1] [threads >= 1]\n");
    return 2;
  }
  const sn::PhiloxKey key = sn::philox_key(2019);

  // Philox words only: the counters of one row, 64 blocks at a time; a checksum keeps them live.
  std::uint64_t checksum = 0;
  const double philox = ns_per_entry(rows, [&](std::int64_t i) {
    for (std::int64_t b0 = 0; b0 < kD / 4; b0 += sn::kPhiloxLanes) {
      std::uint64_t c0[sn::kPhiloxLanes], c1[sn::kPhiloxLanes], c2[sn::kPhiloxLanes], c3[sn::kPhiloxLanes];
      for (int l = 0; l < sn::kPhiloxLanes; ++l) {
        c0[l] = static_cast<std::uint64_t>(b0 + l);
        c1[l] = 0;
        c2[l] = static_cast<std::uint64_t>(i) & 0xffffffffu;
        c3[l] = static_cast<std::uint64_t>(i) >> 32;
      }
      sn::detail::philox_rounds(c0, c1, c2, c3, key);
      for (int l = 0; l < sn::kPhiloxLanes; ++l) checksum += (c0[l] ^ c1[l] ^ c2[l] ^ c3[l]) & 0xffffffffu;
    }
  });

  std::vector<float> row(kD);
  const double gaussian = ns_per_entry(rows, [&](std::int64_t i) { sn::gaussian_rows(key, i, 1, kD, row.data()); });

  std::vector<double> s(kP, 0.125), w(kP, 0.01), a(kK, 0.5), w_star(kP, -0.02), a_star(kK, 1.0);
  for (std::int64_t t = 0; t < kP; t += 2) w_star[t] = 0.03;
  const sn::Network student{s.data(), w.data(), a.data(), kK, kP, kP, true};
  const sn::Network teacher{s.data(), w_star.data(), a_star.data(), kK, kP, kP, true};
  const sn::Prepared<float> P = sn::prepare<float>(student), Q = sn::prepare<float>(teacher);
  std::vector<double> h(kK), acc(1 + kK + kP);
  std::vector<float> c(kK), g(kP);
  const double gradient = ns_per_entry(rows, [&](std::int64_t) {
    const float y = static_cast<float>(sn::forward(Q, row.data(), h.data()));
    sn::accumulate_sample(P, row.data(), static_cast<double>(y), h.data(), c.data(), g.data(), acc.data());
  });

  const double floor = gaussian + gradient;
  const double entries = static_cast<double>(std::int64_t(1) << 17) * static_cast<double>(kD);
  std::printf("philox4x32-10 words      %.3f ns/entry\n", philox);
  std::printf("gaussian rows            %.3f ns/entry\n", gaussian);
  std::printf("gradient of a cached row %.3f ns/entry\n", gradient);
  std::printf("fused floor              %.3f ns/entry\n", floor);
  std::printf("n = 2^17 on %d threads   %.1f ms\n", threads, floor * entries / threads * 1e-6);
  std::printf("checksum %llu %.17g\n", static_cast<unsigned long long>(checksum), acc[0] + static_cast<double>(row[7]));
  return 0;
}
