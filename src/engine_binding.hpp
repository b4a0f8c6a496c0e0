// What the bindings of the training engines share (bind_trials.cpp, bind_reduced.cpp): argument
// checks and the chunk loop that releases the GIL and sees Ctrl-C between chunks.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "checks.hpp"
#include "row_scan.hpp"
#include "shortcutnet/engine_entry.hpp"
#include "shortcutnet/trials.hpp"

namespace shortcutnet {
namespace bind {
namespace engine {

namespace py = pybind11;

inline void check_signals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

inline shortcutnet::Thresholds thresholds_from(const py::tuple& t) {
  if (t.size() != 5) fail("thresholds: expected a tuple of 5 floats, got " + std::to_string(t.size()) + " items");
  shortcutnet::Thresholds th;
  th.global_phi = t[0].cast<double>();
  th.global_a_err = t[1].cast<double>();
  th.spurious_a_err = t[2].cast<double>();
  th.spurious_loss_gap = t[3].cast<double>();
  th.divergence = t[4].cast<double>();
  return th;
}

// Rows of (lr_w, lr_a) for the steps first, first + 1, ...: at least one, none past steps - 1.
inline void check_rates(const carray<double>& rates, std::int64_t first, std::int64_t steps) {
  if (steps < 1) fail("steps: expected an integer >= 1, got " + std::to_string(steps));
  if (rates.ndim() != 2 || rates.shape(1) != 2 || rates.shape(0) < 1 || rates.shape(0) > steps - first)
    fail("lr: expected per-step rates of shape (n, 2) with 1 <= n <= " + std::to_string(steps - first) +
         " for the steps from " + std::to_string(first) + " (the last row repeats), got shape " + shape_of(rates));
  const double* r = rates.data();
  for (py::ssize_t i = 0; i < rates.size(); ++i)
    if (!std::isfinite(r[i]) || r[i] < 0.0)
      fail("lr: expected finite non-negative rates, got " + std::to_string(r[i]) + " at step " +
           std::to_string(first + i / 2));
}

// A callable gives the rates a window of steps at a time, as the trials reach them.
inline bool gives_windows(const py::object& rates) {
  return !py::isinstance<py::array>(rates) && PyCallable_Check(rates.ptr()) != 0;
}

// The rows for the steps from first: the table itself, or what the callable gives for first.
inline carray<double> rates_from(const py::object& rates, std::int64_t first, std::int64_t steps) {
  carray<double> table = gives_windows(rates) ? carray<double>::ensure(rates(first)) : carray<double>::ensure(rates);
  if (!table) throw py::error_already_set();
  check_rates(table, first, steps);
  return table;
}

// The first rows of a run into args; the table must outlive the run.
inline void set_first_rates(const py::object& rates, const carray<double>& table, EngineArgs& args) {
  args.rates = table.data();
  args.rates_first = 0;
  args.n_rates = table.shape(0);
  args.rates_window = gives_windows(rates);
}

// The checks of the trials' parameters and the thread count shared by both engines: a positive
// thread count, a finite s, and one parallel pass per array for finite entries and, with the
// shift, non-zero filter directions (row_scan.hpp).  scanned: the caller has run scan_rows over
// these arrays and acted on its answer, as the Python layer does before it calls a backend
// (backends/__init__.py: backends get validated arrays), so their entries are not read again; a
// second pass over B (k + p) entries costs as much as the set-up of the reduced engine's trials.
inline void require_trials(const carray<double>& s, const carray<double>& w0, const carray<double>& a0,
                           const carray<double>& w_star, const carray<double>& a_star, int threads, bool scanned) {
  if (threads < 1) fail("threads: expected an integer >= 1, got " + std::to_string(threads));
  require_finite(s, "s");
  if (scanned) return;
  require_trial_rows(w0, s.data(), "w0", threads);
  require_trial_rows(a0, nullptr, "a0", threads);
  require_trial_rows(w_star, s.data(), "w_star", threads);
  require_trial_rows(a_star, nullptr, "a_star", threads);
}

// The optimizer's kind by the name the Python layer uses.
inline int optimizer_kind(const std::string& name) {
  if (name == "gd") return 0;
  if (name == "momentum") return 1;
  if (name == "adam") return 2;
  fail("optimizer: expected 'gd', 'momentum' or 'adam', got '" + name + "'");
}

inline void check_optimizer(int kind, double beta, double beta1, double beta2, double eps) {
  auto unit = [](double x) { return x >= 0.0 && x < 1.0; };
  if (kind == 1 && !unit(beta)) fail("beta: expected a number in [0, 1), got " + std::to_string(beta));
  if (kind == 2) {
    if (!unit(beta1)) fail("beta1: expected a number in [0, 1), got " + std::to_string(beta1));
    if (!unit(beta2)) fail("beta2: expected a number in [0, 1), got " + std::to_string(beta2));
    if (!(eps > 0.0) || !std::isfinite(eps)) fail("eps: expected a finite number > 0, got " + std::to_string(eps));
  }
}

// The (kind, beta, nesterov, beta1, beta2, eps) tuple of shortcutnet.optim, checked, into args.
inline void set_optimizer(const py::tuple& optimizer, EngineArgs& args) {
  if (optimizer.size() != 6)
    fail("optimizer: expected (kind, beta, nesterov, beta1, beta2, eps), got " + std::to_string(optimizer.size()) +
         " items");
  args.optimizer = optimizer_kind(optimizer[0].cast<std::string>());
  args.beta = optimizer[1].cast<double>();
  args.nesterov = optimizer[2].cast<bool>();
  args.beta1 = optimizer[3].cast<double>();
  args.beta2 = optimizer[4].cast<double>();
  args.eps = optimizer[5].cast<double>();
  check_optimizer(args.optimizer, args.beta, args.beta1, args.beta2, args.eps);
}

inline void set_thresholds(const py::tuple& thresholds, EngineArgs& args) {
  const shortcutnet::Thresholds th = thresholds_from(thresholds);
  const double values[5] = {th.global_phi, th.global_a_err, th.spurious_a_err, th.spurious_loss_gap, th.divergence};
  std::copy_n(values, 5, args.thresholds);
}

// Runs the engine of args to the end, a chunk at a time without the GIL, checking for Ctrl-C in
// between (KeyboardInterrupt within a fraction of a second, no partial results) and bringing the
// windows of rates the engine asks for (rates: what set_first_rates read, table: its first rows).
// Returns the trajectory's rows (record_every > 0) or None.
inline py::object run_to_end(const EngineArgs& args, const py::object& rates, carray<double> table) {
  const std::int64_t record_every = args.record_every;
  const shortcutnet::EngineKernels& kernels = shortcutnet::engine_kernels();
  std::unique_ptr<void, void (*)(void*)> engine(kernels.create(args), kernels.destroy);
  // The trajectory arrives a chunk at a time through a buffer of kHistoryRows rows.
  constexpr std::int64_t kHistoryRows = 1 << 14;
  std::vector<double> buffer(record_every > 0 ? static_cast<std::size_t>(7 * kHistoryRows) : 0);
  std::vector<double> history;
  for (;;) {
    bool done;
    std::int64_t count = 0;
    {
      py::gil_scoped_release release;
      done = kernels.run_chunk(engine.get(), record_every > 0 ? buffer.data() : nullptr, kHistoryRows, &count);
    }
    history.insert(history.end(), buffer.begin(), buffer.begin() + 7 * count);
    check_signals();
    if (done) break;
    const std::int64_t wanted = kernels.rates_wanted(engine.get());
    if (wanted >= 0) {
      carray<double> next = rates_from(rates, wanted, args.n_steps);
      kernels.set_rates(engine.get(), next.data(), wanted, next.shape(0), true);
      table = std::move(next);
    }
  }
  kernels.finish(engine.get());
  py::object rows = py::none();
  if (record_every > 0) {
    py::array_t<double> hist({static_cast<py::ssize_t>(history.size() / 7), static_cast<py::ssize_t>(7)});
    std::copy(history.begin(), history.end(), hist.mutable_data());
    rows = hist;
  }
  return rows;
}

}  // namespace engine
}  // namespace bind
}  // namespace shortcutnet
