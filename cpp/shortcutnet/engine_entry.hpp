// The training engine (engine.hpp) behind a plain interface: it is compiled once per instruction
// set, each copy in its own translation unit with every inline function in a namespace of its own
// (src/engine_isa.inc), so that no function compiled for a wider instruction set can be picked by
// the linker for baseline code.  engine_kernels() returns the copy for this CPU, following the
// sampled kernels' choice (dispatch::simd_level(): one CPU check, one reading of SHORTCUTNET_SIMD).
// Every copy gives the same bits.
#pragma once

#include <cstdint>

namespace shortcutnet {

// Per-trial results, (B,) each.
struct EngineOutputs {
  std::int8_t* outcome;
  double* phi;
  double* loss;
  std::int64_t* steps_to_tol;
  std::int64_t* steps;
  double* train_loss;  // NaN for the population gradient
};

// One run of B trials (docs/training.md): the problem, the optimizer, the gradient source, the
// trials' arrays (w and a are updated in place) and where the results go.
struct EngineArgs {
  const double* s;
  std::int64_t k, p, stride;
  bool normalize;
  // (n_rates, 2): (lr_w, lr_a) of the steps rates_first, rates_first + 1, ..., the last row repeating;
  // with rates_window, rows for later steps come from set_rates when rates_wanted asks for them.
  const double* rates;
  std::int64_t rates_first, n_rates, n_steps;
  bool rates_window;
  double tol;
  double thresholds[5];  // global_phi, global_a_err, spurious_a_err, spurious_loss_gap, divergence
  int optimizer;         // 0 gd, 1 momentum, 2 adam (optimizers.hpp)
  double beta;
  bool nesterov;
  double beta1, beta2, eps;
  int source;              // 0 population, 1 sampled, 2 empirical (gradient_sources.hpp)
  std::int64_t batch_size;  // sampled: rows per step; empirical: rows per mini-batch, 0 = full batch
  std::int64_t n_train;
  bool single;              // float32 batches
  int threads;
  std::int64_t batch;
  double* w;
  double* a;
  const double* w_start;  // reduced engine: w0 and a0, read there (w and a are written only)
  const double* a_start;
  const double* w_star;        // (w_star_rows, p)
  const double* a_star;        // (a_star_rows, k)
  std::int64_t w_star_rows;    // B, or 1 for one shared by all trials (reduced engine only)
  std::int64_t a_star_rows;
  bool reduced;                // the order-parameter engine (docs/reduced.md): population gd or momentum,
                               // non-overlapping patches
  const std::uint64_t* seeds;  // (B,)
  std::int64_t record_every;   // > 0: record the trajectory (batch == 1)
  EngineOutputs out;
};

struct EngineKernels {
  const char* name;  // "avx512", "avx2" or "baseline"
  // A new engine (throws std::bad_alloc when its buffers do not fit).
  void* (*create)(const EngineArgs& args);
  // One chunk (about 0.02 s per thread); with rows != nullptr the trajectory's rows of 7 doubles
  // are appended at rows[7 * *count ..] while *count < capacity.  True when every trial is done.
  bool (*run_chunk)(void* engine, double* rows, std::int64_t capacity, std::int64_t* count);
  // The first step without a rate once every unfinished trial waits for it (rates_window), else -1.
  std::int64_t (*rates_wanted)(void* engine);
  // Rows for the steps first .. first + n - 1 (window: more follow), kept by the caller while it runs.
  void (*set_rates)(void* engine, const double* rates, std::int64_t first, std::int64_t n, bool window);
  // Writes the outputs (outcome rule of trials.hpp).
  void (*finish)(void* engine);
  void (*destroy)(void* engine);
};

const EngineKernels& engine_kernels();

}  // namespace shortcutnet
