// Where the time of the fused stochastic gradient goes, on one thread, at the instruction-set
// level the kernels run at (dispatch.hpp: the best this CPU has, or SHORTCUTNET_SIMD): the
// Philox4x32-10 words alone, the Gaussian rows (Philox and Box-Muller), and the gradient work on
// rows already in L1 (teacher label, forward, backward) for rows of k = 16 patches of p = 64
// float32 entries.  Their sum is the floor of the fused kernel, which is timed next to it, and
// again at the paper's size k = 20, p = 10.  Divided by the thread count the floor gives that of
// the n = 2^17 benchmark (benchmarks/test_bench_fused.py).  Each figure is the fastest of a few
// repeats.
//
// Build (optimized: an unoptimized build is 15-20x slower and its figures mean nothing):
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSHORTCUTNET_BUILD_BENCHMARKS=ON -DSKBUILD=OFF && cmake --build build
// Run:   [SHORTCUTNET_SIMD=avx2] ./build/generator_floor [rows = 20000] [threads = 2] [repeats = 5]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "generator_floor.hpp"
#include "shortcutnet/dispatch.hpp"

namespace fl = shortcutnet::floor;

int main(int argc, char** argv) {
  const std::int64_t rows = argc > 1 ? std::atoll(argv[1]) : 20000;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
  if (rows < 1 || threads < 1 || repeats < 1) {
    std::fprintf(stderr, "usage: generator_floor [rows >= 1] [threads >= 1] [repeats >= 1]\n");
    return 2;
  }
  int level = 0;
  try {
    level = shortcutnet::dispatch::simd_level();
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  const char* names[] = {"scalar", "avx2", "avx512"};
  const fl::Figures f = level == 2 ? fl::floor_avx512(rows, repeats)
                        : level == 1 ? fl::floor_avx2(rows, repeats)
                                     : fl::floor_scalar(rows, repeats);
  const double floor = f.gaussian + f.gradient, floor_paper = f.gaussian_paper + f.gradient_paper;
  const double entries = static_cast<double>(std::int64_t(1) << 17) * 1024.0;
  std::printf("simd %s\n", names[level]);
  std::printf("philox4x32-10 words      %.3f ns/entry\n", f.philox);
  std::printf("gaussian rows            %.3f ns/entry\n", f.gaussian);
  std::printf("gradient of a cached row %.3f ns/entry\n", f.gradient);
  std::printf("fused floor              %.3f ns/entry\n", floor);
  std::printf("fused kernel             %.3f ns/entry\n", f.fused);
  std::printf("fused kernel float64     %.3f ns/entry\n", f.fused_f64);
  std::printf("paper gaussian rows      %.3f ns/entry\n", f.gaussian_paper);
  std::printf("paper gradient           %.3f ns/entry\n", f.gradient_paper);
  std::printf("paper fused floor        %.3f ns/entry\n", floor_paper);
  std::printf("paper fused kernel       %.3f ns/entry\n", f.fused_paper);
  std::printf("fused kernel / floor     %.3f\n", f.fused / floor);
  std::printf("paper / long rows        %.3f\n", f.fused_paper / f.fused);
  std::printf("n = 2^17 on %d threads   %.1f ms\n", threads, floor * entries / threads * 1e-6);
  std::printf("checksum %.17g\n", f.sink);
  return 0;
}
