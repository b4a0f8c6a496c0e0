// Bindings of the training engine (cpp/shortcutnet/engine_entry.hpp): checks, conversion, GIL
// release per chunk, and Ctrl-C between chunks (KeyboardInterrupt within a fraction of a second, no
// partial results).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "checks.hpp"
#include "engine_binding.hpp"
#include "shortcutnet/angle_math.hpp"
#include "shortcutnet/engine_entry.hpp"
#include "shortcutnet/population.hpp"
#include "shortcutnet/trials.hpp"

#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

namespace py = pybind11;
using shortcutnet::bind::carray;
using shortcutnet::bind::fail;
using shortcutnet::bind::require_vector;
using shortcutnet::bind::shape_of;
using namespace shortcutnet::bind::engine;

namespace {

std::string engine_simd() { return shortcutnet::engine_kernels().name; }

// The engine's angle arithmetic (angle_math.hpp, pi_minus_g) elementwise, for accuracy tests:
// phi = atan2(y, x) and pi - g(phi) from the sides y >= 0, x of the angle.
py::tuple angle_math(const carray<double>& y, const carray<double>& x) {
  if (y.ndim() != 1 || x.ndim() != 1 || x.shape(0) != y.shape(0))
    fail("y, x: expected 1-D arrays of the same length, got shapes " + shape_of(y) + " and " + shape_of(x));
  const std::int64_t n = y.shape(0);
  py::array_t<double> phi(n), pmg(n);
  const double *yd = y.data(), *xd = x.data();
  double *pd = phi.mutable_data(), *gd = pmg.mutable_data();
  for (std::int64_t i = 0; i < n; ++i) {
    if (yd[i] < 0.0) fail("y: expected non-negative numbers, got " + std::to_string(yd[i]));
    pd[i] = shortcutnet::rational_atan2(yd[i], xd[i]);
    gd[i] = shortcutnet::pi_minus_g(pd[i], yd[i] * yd[i], yd[i], xd[i]);
  }
  return py::make_tuple(phi, pmg);
}

int source_kind(const std::string& name) {
  if (name == "population") return 0;
  if (name == "sampled") return 1;
  if (name == "empirical") return 2;
  fail("gradient: expected 'population', 'sampled' or 'empirical', got '" + name + "'");
}

void check_source(int kind, std::int64_t batch_size, std::int64_t n_train, std::int64_t d, bool recording,
                  std::int64_t B) {
  if (kind == 0 && batch_size != 0)
    fail("batch_size: only used with a stochastic gradient, got " + std::to_string(batch_size));
  if (kind == 1 && batch_size < 1)
    fail("batch_size: expected an integer >= 1 for gradient='sampled', got " + std::to_string(batch_size));
  if (kind == 2) {
    if (n_train < 1) fail("n_train: expected an integer >= 1 for gradient='empirical', got " + std::to_string(n_train));
    if (batch_size < 0 || batch_size > n_train)
      fail("batch_size: expected 0 (full batch) or an integer in [1, n_train = " + std::to_string(n_train) +
           "], got " + std::to_string(batch_size));
    if (static_cast<double>(n_train) * static_cast<double>(d) * 8.0 >= 9.2e18)
      fail("n_train: expected n_train * d * 8 bytes to fit in 64 bits, got n_train=" + std::to_string(n_train));
  } else if (n_train != 0) {
    fail("n_train: only used with gradient='empirical', got " + std::to_string(n_train));
  }
  if (kind == 1 && static_cast<double>(batch_size) * static_cast<double>(d) * 8.0 >= 9.2e18)
    fail("batch_size: expected batch_size * d * 8 bytes to fit in 64 bits, got " + std::to_string(batch_size));
  if (recording && B != 1) fail("record_every: a trajectory is recorded for one trial only, got B = " + std::to_string(B));
}

// B independent trials of any optimizer and gradient source (docs/training.md); every trial array
// has a leading batch axis.  With record_every > 0 (B = 1) the trajectory comes back as rows of
// (step, loss, phi, a_dot_astar, a_err, w_norm, train_loss).
py::tuple run_engine(const carray<double>& s, std::int64_t stride, bool normalize, const carray<double>& w0,
                     const carray<double>& a0, const carray<double>& w_star, const carray<double>& a_star,
                     const py::object& rates, std::int64_t n_steps, double tol, const py::tuple& thresholds,
                     const py::tuple& optimizer, const std::string& gradient, std::int64_t batch_size,
                     std::int64_t n_train, const carray<std::uint64_t>& seeds, const std::string& dtype,
                     std::int64_t record_every, int threads, bool scanned) {
  if (w0.ndim() != 2 || w0.shape(0) < 1 || w0.shape(1) < 1)
    fail("w0: expected a 2-D array of shape (B, p) with B, p >= 1, got shape " + shape_of(w0));
  const std::int64_t B = w0.shape(0), p = w0.shape(1);
  if (a0.ndim() != 2 || a0.shape(0) != B || a0.shape(1) < 1)
    fail("a0: expected shape (" + std::to_string(B) + ", k), got " + shape_of(a0));
  const std::int64_t k = a0.shape(1);
  require_vector(s, "s", p);
  if (w_star.ndim() != 2 || w_star.shape(0) != B || w_star.shape(1) != p)
    fail("w_star: expected shape (" + std::to_string(B) + ", " + std::to_string(p) + "), got " + shape_of(w_star));
  if (a_star.ndim() != 2 || a_star.shape(0) != B || a_star.shape(1) != k)
    fail("a_star: expected shape (" + std::to_string(B) + ", " + std::to_string(k) + "), got " + shape_of(a_star));
  if (seeds.ndim() != 1 || seeds.shape(0) != B)
    fail("seeds: expected shape (" + std::to_string(B) + ",), got " + shape_of(seeds));
  require_trials(s, w0, a0, w_star, a_star, threads, scanned);
  if (stride < 1) fail("stride: expected a positive integer, got " + std::to_string(stride));
  if (std::isnan(tol)) fail("tol: expected a number, got nan");
  if (record_every < 0) fail("record_every: expected an integer >= 0, got " + std::to_string(record_every));
  if (dtype != "float32" && dtype != "float64") fail("dtype: expected 'float32' or 'float64', got '" + dtype + "'");
  carray<double> table = rates_from(rates, 0, n_steps);
  const int src_kind = source_kind(gradient);
  const std::int64_t d = (k - 1) * stride + p;
  check_source(src_kind, batch_size, n_train, d, record_every > 0, B);
  py::array_t<double> w({B, p}), a({B, k}), phi(B), loss(B), train_loss(B);
  py::array_t<std::int8_t> outcome(B);
  py::array_t<std::int64_t> steps_to_tol(B), steps(B);
  std::copy_n(w0.data(), B * p, w.mutable_data());
  std::copy_n(a0.data(), B * k, a.mutable_data());

  shortcutnet::EngineArgs args{};
  args.s = s.data();
  args.k = k;
  args.p = p;
  args.stride = stride;
  args.normalize = normalize;
  set_first_rates(rates, table, args);
  args.n_steps = n_steps;
  args.tol = tol;
  set_thresholds(thresholds, args);
  set_optimizer(optimizer, args);
  args.source = src_kind;
  args.batch_size = batch_size;
  args.n_train = n_train;
  args.single = dtype == "float32";
  args.threads = threads;
  args.batch = B;
  args.w = w.mutable_data();
  args.a = a.mutable_data();
  args.w_star = w_star.data();
  args.a_star = a_star.data();
  args.w_star_rows = B;
  args.a_star_rows = B;
  args.reduced = false;
  args.seeds = seeds.data();
  args.record_every = record_every;
  args.out = {outcome.mutable_data(), phi.mutable_data(), loss.mutable_data(), steps_to_tol.mutable_data(),
              steps.mutable_data(), train_loss.mutable_data()};

  py::object rows = run_to_end(args, rates, std::move(table));
  return py::make_tuple(outcome, phi, loss, steps_to_tol, steps, w, a, train_loss, rows);
}

int default_threads() {
#ifdef SHORTCUTNET_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

void register_trials(py::module_& m) {
  m.def("run_engine", &run_engine, py::arg("s"), py::arg("stride"), py::arg("normalize"), py::arg("w0"),
        py::arg("a0"), py::arg("w_star"), py::arg("a_star"), py::arg("rates"), py::arg("steps"), py::arg("tol"),
        py::arg("thresholds"), py::arg("optimizer"), py::arg("gradient"), py::arg("batch_size"), py::arg("n_train"),
        py::arg("seeds"), py::arg("dtype"), py::arg("record_every"), py::arg("threads"), py::arg("scanned") = false,
        "B independent trials of any optimizer and gradient source; rates: an (n, 2) table whose last row "
        "repeats, or a callable first -> the table's rows from step first on (asked for as the trials reach them); "
        "scanned=True: the caller has checked the trials' entries with scan_rows; returns (outcome, phi, loss, "
        "steps_to_tol, steps, w, a, train_loss, history or None).");
  m.def("default_threads", &default_threads, "Threads the engine uses when none are given.");
  m.def("_angle_math", &angle_math, py::arg("y"), py::arg("x"),
        "Elementwise (atan2(y, x), pi - g(phi)) as the engine computes them (accuracy tests).");
  m.def("engine_simd", &engine_simd, "Instruction set of the engine on this CPU: avx512, avx2 or baseline.");
}
