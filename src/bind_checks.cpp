// The input scan of run_trials: one pass over a (B, m) array of trials that finds what its checks
// need (a non-finite entry, a zero filter direction, the range of the entries), where NumPy needs
// a temporary and a pass per question.  backends/reference.py, scan_rows, is its specification.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "checks.hpp"
#include "row_scan.hpp"

namespace py = pybind11;
using shortcutnet::bind::carray;
using shortcutnet::bind::fail;
using shortcutnet::bind::require_vector;
using shortcutnet::bind::RowScan;
using shortcutnet::bind::shape_of;

namespace {

// (first non-finite flat index of x or -1, first row with x + s = 0 or -1, the largest |x + s|,
// the smallest row maximum of |x + s|) of x (B, m); s (m,) or None for no shift; on `threads`
// threads (the answer does not depend on them).  The last three are -1 and NaN when x is not finite.
py::tuple scan_rows(const carray<double>& x, const std::optional<carray<double>>& s, int threads) {
  if (x.ndim() != 2) fail("x: expected a 2-D array (B, m), got shape " + shape_of(x));
  if (threads < 1) fail("threads: expected an integer >= 1, got " + std::to_string(threads));
  const std::int64_t B = x.shape(0), m = x.shape(1);
  if (s) require_vector(*s, "s", m);
  RowScan scan;
  {
    py::gil_scoped_release release;
    scan = shortcutnet::bind::scan_rows(x.data(), s ? s->data() : nullptr, B, m, threads);
  }
  return py::make_tuple(scan.bad_index, scan.zero_row, scan.largest, scan.smallest);
}

}  // namespace

void register_checks(py::module_& m) {
  m.def("scan_rows", &scan_rows, py::arg("x"), py::arg("s") = py::none(), py::arg("threads") = 1,
        "One pass over x (B, m): (first non-finite flat index or -1, first row with x + s = 0 or -1, "
        "max |x + s|, min over rows of max |x + s|), on threads threads.");
}
