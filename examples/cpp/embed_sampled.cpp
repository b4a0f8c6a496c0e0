// Using the shortcutnet kernels from C++ alone: a fused stochastic gradient (the batch is drawn
// inside the kernel and never stored) next to the exact population gradient, for the ResNet
// (shortcut s = 1/sqrt(p)), normalized, with w = 0 and a fixed teacher.
//
// Build in the source tree:
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSHORTCUTNET_BUILD_EXAMPLES=ON -DSKBUILD=OFF && cmake --build build
// or against an installed wheel, with find_package(shortcutnet CONFIG) and
//   target_link_libraries(embed_sampled PRIVATE shortcutnet::dispatch)
//   cmake -S . -B build -Dshortcutnet_DIR="$(python -c 'import shortcutnet; print(shortcutnet.get_cmake_dir())')"
// Run:   ./build/embed_sampled [n = 100000] [seed = 7] [threads = 0, i.e. OpenMP's default]
// Every number printed is the same for any thread count, SIMD level and machine (x86-64, aarch64).
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "shortcutnet/dispatch.hpp"
#include "shortcutnet/population.hpp"

namespace {

// A whole decimal number in [low, high] from argv, or an error naming the argument.
bool parse_count(const char* text, unsigned long long low, unsigned long long high, unsigned long long* value) {
  if (text[0] < '0' || text[0] > '9') return false;
  char* end = nullptr;
  errno = 0;
  *value = std::strtoull(text, &end, 10);
  return errno == 0 && *end == '\0' && *value >= low && *value <= high;
}

int usage(const char* name, const char* argument, const char* expected, const char* given) {
  std::fprintf(stderr, "%s: %s: expected %s, got '%s'\nusage: %s [n] [seed] [threads]\n", name, argument, expected,
               given, name);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t k = 4, p = 3, stride = p;
  unsigned long long n = 100000, seed = 7, threads = 0;
  if (argc > 4) return usage(argv[0], "arguments", "at most 3", argv[4]);
  if (argc > 1 && !parse_count(argv[1], 1, 1ULL << 40, &n))
    return usage(argv[0], "n", "an integer in [1, 2^40]", argv[1]);
  if (argc > 2 && !parse_count(argv[2], 0, ~0ULL, &seed))
    return usage(argv[0], "seed", "an integer in [0, 2^64)", argv[2]);
  if (argc > 3 && !parse_count(argv[3], 0, 1024, &threads))
    return usage(argv[0], "threads", "an integer in [0, 1024] (0: OpenMP's default)", argv[3]);

  std::vector<double> s(p, 1.0 / std::sqrt(double(p))), w(p, 0.0), a{0.5, -0.25, 1.0, 0.75};
  std::vector<double> w_star{0.3, -0.2, 0.1}, a_star{1.0, 0.5, -0.5, 0.25};

  const shortcutnet::dispatch::Network net{s.data(), w.data(), a.data(), k, p, stride, true};
  std::vector<double> grad_w(p), grad_a(k);
  const shortcutnet::dispatch::Level* chosen = nullptr;
  try {
    chosen = &shortcutnet::dispatch::kernels();  // reads SHORTCUTNET_SIMD
  } catch (const std::invalid_argument& error) {
    std::fprintf(stderr, "%s: %s\n", argv[0], error.what());
    return 2;
  }
  const auto& kernels = *chosen;
  const double loss = kernels.f64.stochastic_loss_grad(net, w_star.data(), a_star.data(), std::int64_t(n), seed,
                                                       int(threads), grad_w.data(), grad_a.data());

  std::vector<double> pop_w(p), pop_a(k);
  const double pop_loss = shortcutnet::population_loss_grad(s.data(), w.data(), a.data(), w_star.data(),
                                                            a_star.data(), k, p, stride, true, pop_w.data(),
                                                            pop_a.data());

  std::printf("simd %s\n", kernels.name);
  std::printf("stochastic_loss %.17g\n", loss);
  for (double g : grad_w) std::printf("stochastic_grad_w %.17g\n", g);
  for (double g : grad_a) std::printf("stochastic_grad_a %.17g\n", g);
  std::printf("population_loss %.17g\n", pop_loss);
  for (double g : pop_w) std::printf("population_grad_w %.17g\n", g);
  for (double g : pop_a) std::printf("population_grad_a %.17g\n", g);
  return 0;
}
