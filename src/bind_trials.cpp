// Bindings of cpp/shortcutnet/trials.hpp: checks, conversion, GIL release per chunk of steps,
// and Ctrl-C between chunks (KeyboardInterrupt within a fraction of a second, no partial results).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "checks.hpp"
#include "shortcutnet/trials.hpp"

namespace py = pybind11;
using shortcutnet::bind::carray;
using shortcutnet::bind::fail;
using shortcutnet::bind::require_finite;
using shortcutnet::bind::require_vector;
using shortcutnet::bind::shape_of;

namespace {

// About this many trial-steps run between two interrupt checks (~0.05 s on one core).
constexpr std::int64_t kTrialStepsPerChunk = 1 << 19;

void check_signals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

shortcutnet::Thresholds thresholds_from(const py::tuple& t) {
  if (t.size() != 5) fail("thresholds: expected a tuple of 5 floats, got " + std::to_string(t.size()) + " items");
  shortcutnet::Thresholds th;
  th.global_phi = t[0].cast<double>();
  th.global_a_err = t[1].cast<double>();
  th.spurious_a_err = t[2].cast<double>();
  th.spurious_loss_gap = t[3].cast<double>();
  th.divergence = t[4].cast<double>();
  return th;
}

void check_rates(const carray<double>& rates, std::int64_t steps) {
  if (steps < 1) fail("steps: expected an integer >= 1, got " + std::to_string(steps));
  if (rates.ndim() != 2 || rates.shape(1) != 2 || rates.shape(0) < 1 || rates.shape(0) > steps)
    fail("lr: expected per-step rates of shape (n, 2) with 1 <= n <= steps = " + std::to_string(steps) +
         " (the last row repeats), got shape " + shape_of(rates));
  const double* r = rates.data();
  for (py::ssize_t i = 0; i < rates.size(); ++i)
    if (!std::isfinite(r[i]) || r[i] < 0.0)
      fail("lr: expected finite non-negative rates, got " + std::to_string(r[i]) + " at step " + std::to_string(i / 2));
}

void check_directions(const double* s, const double* w, std::int64_t p, const char* name, std::int64_t row) {
  double nu = 0.0;
  for (std::int64_t t = 0; t < p; ++t) nu += (w[t] + s[t]) * (w[t] + s[t]);
  if (!(nu > 0.0)) {
    std::string where = row >= 0 ? " in trial " + std::to_string(row) : "";
    fail(std::string(name) + ": expected " + name + " + s != 0 (the filter direction is undefined), got " + name +
         " + s = 0" + where);
  }
}

struct History {
  static constexpr bool active = true;
  std::vector<double> rows;  // step, loss, phi, a_dot_astar, a_err, w_norm
  void operator()(std::int64_t step, const shortcutnet::Observation& o) {
    rows.insert(rows.end(), {static_cast<double>(step), o.loss, o.phi, o.a_dot_astar, o.a_err, o.w_norm});
  }
};

// One trial with its trajectory.
py::tuple train_population(const carray<double>& s, const carray<double>& w0, const carray<double>& a0,
                           const carray<double>& w_star, const carray<double>& a_star, std::int64_t stride,
                           bool normalize, const carray<double>& rates, std::int64_t n_steps, double tol,
                           std::int64_t record_every,
                           const py::tuple& thresholds) {
  if (w0.ndim() != 1 || w0.shape(0) < 1) fail("w0: expected a non-empty 1-D array of shape (p,), got shape " + shape_of(w0));
  if (a0.ndim() != 1 || a0.shape(0) < 1) fail("a0: expected a non-empty 1-D array of shape (k,), got shape " + shape_of(a0));
  const std::int64_t p = w0.shape(0), k = a0.shape(0);
  require_vector(s, "s", p);
  require_vector(w_star, "w_star", p);
  require_vector(a_star, "a_star", k);
  for (auto [x, name] : {std::pair{&s, "s"}, {&w0, "w0"}, {&a0, "a0"}, {&w_star, "w_star"}, {&a_star, "a_star"}})
    require_finite(*x, name);
  if (stride < 1) fail("stride: expected a positive integer, got " + std::to_string(stride));
  if (record_every < 1) fail("record_every: expected an integer >= 1, got " + std::to_string(record_every));
  if (std::isnan(tol)) fail("tol: expected a number, got nan");
  check_rates(rates, n_steps);
  check_directions(s.data(), w0.data(), p, "w0", -1);
  check_directions(s.data(), w_star.data(), p, "w_star", -1);
  const shortcutnet::Thresholds th = thresholds_from(thresholds);
  const std::int64_t n_rates = rates.shape(0);

  py::array_t<double> w(p), a(k);
  std::copy_n(w0.data(), p, w.mutable_data());
  std::copy_n(a0.data(), k, a.mutable_data());
  const shortcutnet::Architecture arch{s.data(), k, p, stride, normalize};
  std::vector<double> work(static_cast<std::size_t>(shortcutnet::trial_workspace_size(k, p) + 3 * p + k));
  History history;
  history.rows.reserve(static_cast<std::size_t>(6 * (std::min<std::int64_t>(n_steps / record_every, 1 << 22) + 2)));
  shortcutnet::TrialState state;
  const std::int64_t chunk = std::max<std::int64_t>(1, kTrialStepsPerChunk);
  double *pw = w.mutable_data(), *pa = a.mutable_data();
  for (std::int64_t last = chunk - 1;; last += chunk) {
    bool done;
    {
      py::gil_scoped_release release;
      done = shortcutnet::advance_trial(arch, pw, pa, w_star.data(), a_star.data(), rates.data(), n_rates, n_steps,
                                        tol, record_every, th.divergence, last, state, work.data(), history);
    }
    check_signals();
    if (done) break;
  }
  double* extra = work.data() + shortcutnet::trial_workspace_size(k, p);
  const shortcutnet::Observation obs =
      shortcutnet::observe(arch, pw, pa, w_star.data(), a_star.data(), state.loss, extra);
  const auto outcome = shortcutnet::classify(arch, pw, pa, w_star.data(), a_star.data(), obs, th, extra);
  const auto n_rows = static_cast<py::ssize_t>(history.rows.size() / 6);
  py::array_t<double> hist({n_rows, static_cast<py::ssize_t>(6)});
  std::copy(history.rows.begin(), history.rows.end(), hist.mutable_data());
  return py::make_tuple(w, a, state.step, state.steps_to_tol, static_cast<int>(outcome), state.loss, obs.phi, hist);
}

// The engine's lanes for this CPU, chosen once (lane_kernels.hpp).
const char* lane_kernel_name = nullptr;
shortcutnet::LaneKernel lane_kernel() {
  static const shortcutnet::LaneKernel kernel = shortcutnet::select_lane_kernel(&lane_kernel_name);
  return kernel;
}

std::string engine_simd() {
  lane_kernel();
  return lane_kernel_name;
}

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

// B independent trials; every input has a leading batch axis.
py::tuple run_trials(const carray<double>& s, const carray<double>& w0, const carray<double>& a0,
                     const carray<double>& w_star, const carray<double>& a_star, std::int64_t stride, bool normalize,
                     const carray<double>& rates, std::int64_t n_steps, double tol, const py::tuple& thresholds,
                     int threads) {
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
  for (auto [x, name] : {std::pair{&s, "s"}, {&w0, "w0"}, {&a0, "a0"}, {&w_star, "w_star"}, {&a_star, "a_star"}})
    require_finite(*x, name);
  if (stride < 1) fail("stride: expected a positive integer, got " + std::to_string(stride));
  if (std::isnan(tol)) fail("tol: expected a number, got nan");
  if (threads < 1) fail("threads: expected an integer >= 1, got " + std::to_string(threads));
  check_rates(rates, n_steps);
  for (std::int64_t b = 0; b < B; ++b) {
    check_directions(s.data(), w0.data() + b * p, p, "w0", b);
    check_directions(s.data(), w_star.data() + b * p, p, "w_star", b);
  }
  const shortcutnet::Thresholds th = thresholds_from(thresholds);
  const std::int64_t n_rates = rates.shape(0);

  py::array_t<double> w({B, p}), a({B, k}), phi(B), loss(B);
  py::array_t<std::int8_t> outcome(B);
  py::array_t<std::int64_t> steps_to_tol(B), steps(B);
  std::copy_n(w0.data(), B * p, w.mutable_data());
  std::copy_n(a0.data(), B * k, a.mutable_data());
  const shortcutnet::Architecture arch{s.data(), k, p, stride, normalize};
  shortcutnet::TrialBatch batch(arch, B, w.mutable_data(), a.mutable_data(), w_star.data(), a_star.data(),
                                rates.data(), n_rates, n_steps, tol, th, threads);
  batch.use_lane_kernel(lane_kernel());
  const std::int64_t chunk = std::max<std::int64_t>(1, kTrialStepsPerChunk * threads / B);
  for (std::int64_t last = chunk - 1;; last += chunk) {
    bool done;
    {
      py::gil_scoped_release release;
      done = batch.run_chunk(last);
    }
    check_signals();
    if (done) break;
  }
  batch.finish({outcome.mutable_data(), phi.mutable_data(), loss.mutable_data(), steps_to_tol.mutable_data(),
                steps.mutable_data()});
  return py::make_tuple(outcome, phi, loss, steps_to_tol, w, a, steps);
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
  m.def("train_population", &train_population, py::arg("s"), py::arg("w0"), py::arg("a0"), py::arg("w_star"),
        py::arg("a_star"), py::arg("stride"), py::arg("normalize"), py::arg("rates"), py::arg("steps"),
        py::arg("tol"), py::arg("record_every"), py::arg("thresholds"),
        "Exact population GD for one trial; returns (w, a, steps, steps_to_tol, outcome, loss, phi, history).");
  m.def("run_trials", &run_trials, py::arg("s"), py::arg("w0"), py::arg("a0"), py::arg("w_star"), py::arg("a_star"),
        py::arg("stride"), py::arg("normalize"), py::arg("rates"), py::arg("steps"), py::arg("tol"),
        py::arg("thresholds"),
        py::arg("threads"),
        "B independent exact population-GD trials; returns (outcome, phi, loss, steps_to_tol, w, a, steps).");
  m.def("default_threads", &default_threads, "Threads the engine uses when none are given.");
  m.def("_angle_math", &angle_math, py::arg("y"), py::arg("x"),
        "Elementwise (atan2(y, x), pi - g(phi)) as the engine computes them (accuracy tests).");
  m.def("engine_simd", &engine_simd, "Instruction set of the engine's lanes on this CPU: avx512, avx2 or baseline.");
}
