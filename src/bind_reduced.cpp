// Binding of the reduced order-parameter engine (docs/reduced.md, cpp/shortcutnet/reduced_engine.hpp):
// checks and conversion; the engine itself is the training engine's entry point with args.reduced.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "checks.hpp"
#include "engine_binding.hpp"
#include "shortcutnet/engine_entry.hpp"

namespace py = pybind11;
using shortcutnet::bind::carray;
using shortcutnet::bind::fail;
using shortcutnet::bind::require_vector;
using shortcutnet::bind::shape_of;
using namespace shortcutnet::bind::engine;

namespace {

// B trials of population gd or momentum on the non-overlapping model in coordinates.  w0 (B, p)
// and a0 (B, k); w_star (B, p) or (1, p) and a_star (B, k) or (1, k), a first axis of 1 meaning
// one for every trial (never copied B times).  Returns what run_engine returns.
py::tuple run_reduced(const carray<double>& s, bool normalize, const carray<double>& w0, const carray<double>& a0,
                      const carray<double>& w_star, const carray<double>& a_star, const py::object& rates,
                      std::int64_t n_steps, double tol, const py::tuple& thresholds, const py::tuple& optimizer,
                      std::int64_t record_every, int threads, bool scanned) {
  if (w0.ndim() != 2 || w0.shape(0) < 1 || w0.shape(1) < 1)
    fail("w0: expected a 2-D array of shape (B, p) with B, p >= 1, got shape " + shape_of(w0));
  const std::int64_t B = w0.shape(0), p = w0.shape(1);
  if (a0.ndim() != 2 || a0.shape(0) != B || a0.shape(1) < 1)
    fail("a0: expected shape (" + std::to_string(B) + ", k), got " + shape_of(a0));
  const std::int64_t k = a0.shape(1);
  require_vector(s, "s", p);
  if (w_star.ndim() != 2 || (w_star.shape(0) != B && w_star.shape(0) != 1) || w_star.shape(1) != p)
    fail("w_star: expected shape (" + std::to_string(B) + ", " + std::to_string(p) + ") or (1, " + std::to_string(p) +
         "), got " + shape_of(w_star));
  if (a_star.ndim() != 2 || (a_star.shape(0) != B && a_star.shape(0) != 1) || a_star.shape(1) != k)
    fail("a_star: expected shape (" + std::to_string(B) + ", " + std::to_string(k) + ") or (1, " + std::to_string(k) +
         "), got " + shape_of(a_star));
  const std::int64_t w_star_rows = w_star.shape(0);
  require_trials(s, w0, a0, w_star, a_star, threads, scanned);
  if (std::isnan(tol)) fail("tol: expected a number, got nan");
  if (record_every < 0) fail("record_every: expected an integer >= 0, got " + std::to_string(record_every));
  if (record_every > 0 && B != 1)
    fail("record_every: a trajectory is recorded for one trial only, got B = " + std::to_string(B));
  carray<double> table = rates_from(rates, 0, n_steps);
  if (n_steps > (std::int64_t{1} << 53))
    fail("steps: expected at most 2^53 for the reduced engine (its step counts are exact doubles), got " +
         std::to_string(n_steps));

  shortcutnet::EngineArgs args{};
  set_optimizer(optimizer, args);
  if (args.optimizer != 0 && args.optimizer != 1)
    fail("optimizer: the reduced engine runs 'gd' and 'momentum' (Adam's per-entry scaling leaves the "
         "order-parameter subspaces), got '" + optimizer[0].cast<std::string>() + "'");
  set_thresholds(thresholds, args);

  py::array_t<double> w({B, p}), a({B, k}), phi(B), loss(B), train_loss(B);
  py::array_t<std::int8_t> outcome(B);
  py::array_t<std::int64_t> steps_to_tol(B), steps(B);

  args.s = s.data();
  args.k = k;
  args.p = p;
  args.stride = p;
  args.normalize = normalize;
  set_first_rates(rates, table, args);
  args.n_steps = n_steps;
  args.tol = tol;
  args.source = 0;
  args.threads = threads;
  args.batch = B;
  args.w = w.mutable_data();
  args.a = a.mutable_data();
  args.w_start = w0.data();
  args.a_start = a0.data();
  args.w_star = w_star.data();
  args.a_star = a_star.data();
  args.w_star_rows = w_star_rows;
  args.a_star_rows = a_star.shape(0);
  args.reduced = true;
  args.record_every = record_every;
  args.out = {outcome.mutable_data(), phi.mutable_data(), loss.mutable_data(), steps_to_tol.mutable_data(),
              steps.mutable_data(), train_loss.mutable_data()};
  py::object rows = run_to_end(args, rates, std::move(table));
  return py::make_tuple(outcome, phi, loss, steps_to_tol, steps, w, a, train_loss, rows);
}

}  // namespace

void register_reduced(py::module_& m) {
  m.def("run_reduced", &run_reduced, py::arg("s"), py::arg("normalize"), py::arg("w0"), py::arg("a0"),
        py::arg("w_star"), py::arg("a_star"), py::arg("rates"), py::arg("steps"), py::arg("tol"),
        py::arg("thresholds"), py::arg("optimizer"), py::arg("record_every"), py::arg("threads"),
        py::arg("scanned") = false,
        "B trials of population gd or momentum on the non-overlapping model in the reduced engine; rates as "
        "for run_engine (a table or a callable giving windows); scanned=True: the caller has checked the "
        "trials' entries with scan_rows; returns "
        "(outcome, phi, loss, steps_to_tol, steps, w, a, train_loss, history or None).");
}
