// The figures of generator_floor, one set per instruction-set level (generator_floor_<level>.cpp).
#pragma once

#include <cstdint>

namespace shortcutnet::floor {

// ns per entry, one thread, float32 unless named otherwise.
struct Figures {
  double philox;                                       // Philox4x32-10 words alone
  double gaussian, gradient;                           // k = 16, p = 64: Gaussian rows; gradient of a row in L1
  double fused, fused_f64;                             // the fused kernel, k = 16, p = 64
  double gaussian_paper, gradient_paper, fused_paper;  // the same at the paper's size, k = 20, p = 10
  double sink;                                         // keeps the results live
};

Figures floor_scalar(std::int64_t rows, int repeats);
Figures floor_avx2(std::int64_t rows, int repeats);
Figures floor_avx512(std::int64_t rows, int repeats);

}  // namespace shortcutnet::floor
