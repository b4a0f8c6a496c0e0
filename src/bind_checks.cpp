// The input scan of run_trials: one pass over a (B, m) array of trials that finds what its checks
// need (a non-finite entry, a zero filter direction, the range of the entries), where NumPy needs
// a temporary and a pass per question.  backends/reference.py, scan_rows, is its specification.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "checks.hpp"

namespace py = pybind11;
using shortcutnet::bind::all_finite;
using shortcutnet::bind::carray;
using shortcutnet::bind::fail;
using shortcutnet::bind::require_vector;
using shortcutnet::bind::shape_of;

namespace {

constexpr int kChains = 8;  // independent partial maxima, so that a row's pass vectorizes

// max_t |x_t + s_t| over one row (s == nullptr: max |x_t|), by branch-free partial maxima.
double row_extent(const double* x, const double* s, std::int64_t m) {
  double largest[kChains] = {};
  std::int64_t t = 0;
  for (; t + kChains <= m; t += kChains)
    for (int l = 0; l < kChains; ++l) {
      const double u = std::fabs(s == nullptr ? x[t + l] : x[t + l] + s[t + l]);
      largest[l] = largest[l] > u ? largest[l] : u;
    }
  double top = 0.0;
  for (; t < m; ++t) {
    const double u = std::fabs(s == nullptr ? x[t] : x[t] + s[t]);
    top = top > u ? top : u;
  }
  for (int l = 0; l < kChains; ++l) top = top > largest[l] ? top : largest[l];
  return top;
}

// (first non-finite flat index of x or -1, first row with x + s = 0 or -1, the largest |x + s|,
// the smallest row maximum of |x + s|) of x (B, m); s (m,) or None for no shift.  The last three
// are meaningful only when x is finite.
py::tuple scan_rows(const carray<double>& x, const std::optional<carray<double>>& s) {
  if (x.ndim() != 2) fail("x: expected a 2-D array (B, m), got shape " + shape_of(x));
  const std::int64_t B = x.shape(0), m = x.shape(1);
  if (s) require_vector(*s, "s", m);
  const double* data = x.data();
  const double* shift = s ? s->data() : nullptr;
  std::int64_t bad_index = -1, zero_row = -1;
  double largest = 0.0, smallest = std::numeric_limits<double>::infinity();
  {
    py::gil_scoped_release release;
    for (std::int64_t b = 0; b < B; ++b) {
      const double* row = data + b * m;
      if (!all_finite(row, m)) {
        for (std::int64_t t = 0; t < m; ++t)
          if (!std::isfinite(row[t])) {
            bad_index = b * m + t;
            break;
          }
        break;
      }
      const double extent = row_extent(row, shift, m);  // in cache after all_finite
      if (extent == 0.0 && zero_row < 0) zero_row = b;
      largest = largest > extent ? largest : extent;
      smallest = smallest < extent ? smallest : extent;
    }
  }
  if (B == 0) smallest = 0.0;
  return py::make_tuple(bad_index, zero_row, largest, smallest);
}

}  // namespace

void register_checks(py::module_& m) {
  m.def("scan_rows", &scan_rows, py::arg("x"), py::arg("s") = py::none(),
        "One pass over x (B, m): (first non-finite flat index or -1, first row with x + s = 0 or -1, "
        "max |x + s|, min over rows of max |x + s|).");
}
