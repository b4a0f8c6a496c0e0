// Using the shortcutnet kernels from C++ alone: a fused stochastic gradient (the batch is drawn
// inside the kernel and never stored) next to the exact population gradient, for the ResNet
// (shortcut s = 1/sqrt(p)), normalized, with w = 0 and a fixed teacher.
//
// Build: cmake -S . -B build -DSHORTCUTNET_BUILD_EXAMPLES=ON -DSKBUILD=OFF && cmake --build build
// Run:   ./build/embed_sampled [n] [seed]
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "shortcutnet/dispatch.hpp"
#include "shortcutnet/population.hpp"

int main(int argc, char** argv) {
  const std::int64_t k = 4, p = 3, stride = p;
  const std::int64_t n = argc > 1 ? std::atoll(argv[1]) : 100000;
  const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 7;

  std::vector<double> s(p, 1.0 / std::sqrt(double(p))), w(p, 0.0), a{0.5, -0.25, 1.0, 0.75};
  std::vector<double> w_star{0.3, -0.2, 0.1}, a_star{1.0, 0.5, -0.5, 0.25};

  const shortcutnet::dispatch::Network net{s.data(), w.data(), a.data(), k, p, stride, true};
  std::vector<double> grad_w(p), grad_a(k);
  const auto& kernels = shortcutnet::dispatch::kernels();
  const double loss = kernels.f64.stochastic_loss_grad(net, w_star.data(), a_star.data(), n, seed, 0, grad_w.data(),
                                                       grad_a.data());

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
