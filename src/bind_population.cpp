// Bindings of cpp/shortcutnet/population.hpp: checks, conversion, GIL release.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "checks.hpp"
#include "shortcutnet/population.hpp"

namespace py = pybind11;
using shortcutnet::bind::carray;
using shortcutnet::bind::fail;
using shortcutnet::bind::require_finite;
using shortcutnet::bind::require_vector;

namespace {

py::object population_loss_grad(const carray<double>& s, const carray<double>& w, const carray<double>& a,
                                const carray<double>& w_star, const carray<double>& a_star, std::int64_t stride,
                                bool normalize, bool want_grad) {
  if (w.ndim() != 1 || w.shape(0) < 1) fail("w: expected a non-empty 1-D array of shape (p,), got shape " + shortcutnet::bind::shape_of(w));
  if (a.ndim() != 1 || a.shape(0) < 1) fail("a: expected a non-empty 1-D array of shape (k,), got shape " + shortcutnet::bind::shape_of(a));
  const std::int64_t p = w.shape(0), k = a.shape(0);
  require_vector(s, "s", p);
  require_vector(w_star, "w_star", p);
  require_vector(a_star, "a_star", k);
  if (stride < 1) fail("stride: expected a positive integer, got " + std::to_string(stride));
  require_finite(s, "s");
  require_finite(w, "w");
  require_finite(a, "a");
  require_finite(w_star, "w_star");
  require_finite(a_star, "a_star");
  double loss = 0.0;
  py::array_t<double> grad_w(p), grad_a(k);
  double* gw = want_grad ? grad_w.mutable_data() : nullptr;
  double* ga = want_grad ? grad_a.mutable_data() : nullptr;
  {
    const double *ps = s.data(), *pw = w.data(), *pa = a.data(), *pws = w_star.data(), *pas = a_star.data();
    // Any non-zero entry (not a positive sum of squares, which underflows for |u| ~ 1e-200).
    bool nonzero_u = false, nonzero_u_star = false;
    for (std::int64_t t = 0; t < p; ++t) {
      nonzero_u = nonzero_u || (pw[t] + ps[t]) != 0.0;
      nonzero_u_star = nonzero_u_star || (pws[t] + ps[t]) != 0.0;
    }
    if (!nonzero_u) fail("w: expected w + s != 0 (the filter direction is undefined), got w + s = 0");
    if (!nonzero_u_star) fail("w_star: expected w_star + s != 0 (the teacher direction is undefined), got w_star + s = 0");
    py::gil_scoped_release release;
    loss = shortcutnet::population_loss_grad(ps, pw, pa, pws, pas, k, p, stride, normalize, gw, ga);
  }
  if (!want_grad) return py::float_(loss);
  return py::make_tuple(loss, grad_w, grad_a);
}

double angle(const carray<double>& x, const carray<double>& y) {
  if (x.ndim() != 1 || x.shape(0) < 1) fail("u: expected a non-empty 1-D array, got shape " + shortcutnet::bind::shape_of(x));
  require_vector(y, "v", x.shape(0));
  require_finite(x, "u");
  require_finite(y, "v");
  // A zero vector has no direction; the kernel would return NaN.
  if (!std::any_of(x.data(), x.data() + x.shape(0), [](double t) { return t != 0.0; }))
    fail("u: expected a non-zero vector, got all zeros");
  if (!std::any_of(y.data(), y.data() + y.shape(0), [](double t) { return t != 0.0; }))
    fail("v: expected a non-zero vector, got all zeros");
  return shortcutnet::angle(x.data(), y.data(), x.shape(0));
}

py::array_t<double> spurious_second_layer(const carray<double>& a_star) {
  if (a_star.ndim() != 1 || a_star.shape(0) < 1) fail("a_star: expected a non-empty 1-D array, got shape " + shortcutnet::bind::shape_of(a_star));
  require_finite(a_star, "a_star");
  py::array_t<double> out(a_star.shape(0));
  shortcutnet::spurious_second_layer(a_star.data(), a_star.shape(0), out.mutable_data());
  return out;
}

}  // namespace

void register_population(py::module_& m) {
  m.def("population_loss_grad", &population_loss_grad, py::arg("s"), py::arg("w"), py::arg("a"), py::arg("w_star"),
        py::arg("a_star"), py::arg("stride"), py::arg("normalize"), py::arg("want_grad") = true,
        "Exact population loss (and gradients w.r.t. w and a when want_grad) on Gaussian input.");
  m.def("angle", &angle, py::arg("u"), py::arg("v"), "Angle between u and v in [0, pi], accurate near 0 and pi.");
  m.def("spurious_second_layer", &spurious_second_layer, py::arg("a_star"),
        "Second layer a_sp of the spurious local optimum at phi = pi.");
}
