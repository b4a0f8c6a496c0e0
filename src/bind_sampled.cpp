// Bindings of the sampled kernels (cpp/shortcutnet/sampled.hpp through the run-time dispatch of
// cpp/shortcutnet/dispatch.hpp): argument checks, float32/float64 dispatch, GIL release.
//
// Finiteness of X and y is not checked by an extra pass over the batch (that pass would cost as
// much as the kernel): a NaN or infinite entry read by a patch makes an output non-finite, and
// only then are X and y scanned to name the offending entry (finite batches whose sums overflow
// return their infinite results).  predict cannot see an infinite entry whose every patch has
// pre-activation -inf (the relu maps it to 0, the limit of the formula).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "checks.hpp"
#include "shortcutnet/dispatch.hpp"
#include "shortcutnet/philox.hpp"

namespace py = pybind11;
using shortcutnet::bind::carray;
using shortcutnet::bind::fail;
using shortcutnet::bind::require_finite;
using shortcutnet::bind::require_vector;
using shortcutnet::bind::shape_of;
namespace dispatch = shortcutnet::dispatch;

namespace {

std::string type_name(const py::handle& x) { return py::str(py::type::handle_of(x).attr("__name__")); }

[[noreturn]] void fail_type(const std::string& message) { throw py::type_error(message); }

std::int64_t positive(std::int64_t value, const char* name, const char* what) {
  if (value < 1) fail(std::string(name) + ": expected " + what + ", got " + std::to_string(value));
  return value;
}

int thread_count(std::int64_t threads) {
  if (threads < 0 || threads > 1 << 16)
    fail("threads: expected 0 (the OpenMP default) or a positive number of threads, got " + std::to_string(threads));
  return static_cast<int>(threads);
}

std::uint64_t seed_value(const py::object& seed) {
  if (py::isinstance<py::bool_>(seed) || !py::isinstance<py::int_>(seed))
    fail_type("seed: expected an int in [0, 2**64), got " + type_name(seed));
  const py::int_ value = seed.cast<py::int_>();
  if (value < py::int_(0) || value >= py::int_(py::module_::import("builtins").attr("pow")(2, 64)))
    fail("seed: expected an int in [0, 2**64), got " + std::string(py::str(seed)));
  return value.cast<std::uint64_t>();
}

// float32 -> false, float64 -> true; anything else is a TypeError naming the argument.
bool is_double(const py::dtype& dtype, const char* name) {
  if (dtype.equal(py::dtype::of<double>())) return true;
  if (dtype.equal(py::dtype::of<float>())) return false;
  fail_type(std::string(name) + ": expected dtype float32 or float64, got " + std::string(py::str(dtype)));
}

// Whether w + s has a non-zero entry (not whether a sum of squares is positive: the squares
// underflow for |w + s| ~ 1e-170).
bool nonzero_sum(const double* w, const double* s, std::int64_t p) {
  for (std::int64_t t = 0; t < p; ++t)
    if (w[t] + s[t] != 0.0) return true;
  return false;
}

// The network arguments shared by every kernel, checked against k, p and stride.
struct NetworkArgs {
  carray<double> s, w, a;
  dispatch::Network net;
  std::int64_t d;
};

NetworkArgs network(const carray<double>& s, const carray<double>& w, const carray<double>& a, std::int64_t k,
                    std::int64_t p, std::int64_t stride, bool normalize) {
  positive(k, "k", "a positive number of patches");
  positive(p, "p", "a positive patch size");
  positive(stride, "stride", "a positive integer");
  if (k > (std::int64_t(1) << 40) || p > (std::int64_t(1) << 40) || stride > (std::int64_t(1) << 40))
    fail("k, p, stride: expected sizes below 2**40, got k=" + std::to_string(k) + ", p=" + std::to_string(p) +
         ", stride=" + std::to_string(stride));
  if (k - 1 > ((std::int64_t(1) << 62) - p) / stride)
    fail("k, p, stride: expected a row length (k - 1) * stride + p below 2**62, got k=" + std::to_string(k) +
         ", p=" + std::to_string(p) + ", stride=" + std::to_string(stride));
  require_vector(s, "s", p);
  require_vector(w, "w", p);
  require_vector(a, "a", k);
  require_finite(s, "s");
  require_finite(w, "w");
  require_finite(a, "a");
  if (normalize && !nonzero_sum(w.data(), s.data(), p))
    fail("w: expected w + s != 0 (the filter direction is undefined), got w + s = 0");
  NetworkArgs out{s, w, a, dispatch::Network{s.data(), w.data(), a.data(), k, p, stride, normalize},
                  (k - 1) * stride + p};
  return out;
}

template <class T>
carray<T> batch(const py::array& X, std::int64_t d) {
  carray<T> x = carray<T>::ensure(X);
  if (!x) throw py::error_already_set();
  if (x.ndim() != 2 || x.shape(1) != d || x.shape(0) < 1)
    fail("X: expected shape (n, " + std::to_string(d) + ") with n >= 1 (d = (k - 1) * stride + p), got " +
         shape_of(x));
  return x;
}

template <class T>
py::array predict_typed(const NetworkArgs& args, const py::array& X_in, int threads) {
  const carray<T> X = batch<T>(X_in, args.d);
  const std::int64_t n = X.shape(0);
  const auto& kernels = dispatch::kernels();
  const auto& table = [&]() -> const dispatch::SampledKernels<T>& {
    if constexpr (std::is_same_v<T, float>) return kernels.f32;
    else return kernels.f64;
  }();
  py::array_t<T> f(n);
  T* out = f.mutable_data();
  {
    py::gil_scoped_release release;
    table.predict(args.net, X.data(), n, threads, out);
  }
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(out[i])) {
      require_finite(X, "X");
      break;
    }
  return f;
}

template <class T>
py::tuple loss_grad_typed(const NetworkArgs& args, const py::array& X_in, const py::array& y_in, int threads) {
  const carray<T> X = batch<T>(X_in, args.d);
  const std::int64_t n = X.shape(0);
  if (!y_in.dtype().equal(X.dtype()))
    fail_type("y: expected dtype " + std::string(py::str(X.dtype())) + " (the dtype of X), got " +
              std::string(py::str(y_in.dtype())));
  const carray<T> y = carray<T>::ensure(y_in);
  if (y.ndim() != 1 || y.shape(0) != n)
    fail("y: expected shape (" + std::to_string(n) + ",) (one label per row of X), got " + shape_of(y));
  const auto& kernels = dispatch::kernels();
  const auto& table = [&]() -> const dispatch::SampledKernels<T>& {
    if constexpr (std::is_same_v<T, float>) return kernels.f32;
    else return kernels.f64;
  }();
  py::array_t<double> grad_w(args.net.p), grad_a(args.net.k);
  double* gw = grad_w.mutable_data();
  double* ga = grad_a.mutable_data();
  double loss;
  {
    py::gil_scoped_release release;
    loss = table.sampled_loss_grad(args.net, X.data(), y.data(), n, threads, gw, ga);
  }
  // An infinite input makes some output NaN (the active-patch sum multiplies it by 0 or by a_j).
  bool finite = std::isfinite(loss);
  for (std::int64_t t = 0; t < args.net.p; ++t) finite = finite && std::isfinite(gw[t]);
  for (std::int64_t j = 0; j < args.net.k; ++j) finite = finite && std::isfinite(ga[j]);
  if (!finite) {
    require_finite(X, "X");
    require_finite(y, "y");
  }
  return py::make_tuple(loss, grad_w, grad_a);
}

py::array predict(const carray<double>& s, const carray<double>& w, const carray<double>& a, const py::array& X,
                  std::int64_t k, std::int64_t p, std::int64_t stride, bool normalize, std::int64_t threads) {
  const NetworkArgs args = network(s, w, a, k, p, stride, normalize);
  const int t = thread_count(threads);
  return is_double(X.dtype(), "X") ? predict_typed<double>(args, X, t) : predict_typed<float>(args, X, t);
}

py::tuple sampled_loss_grad(const carray<double>& s, const carray<double>& w, const carray<double>& a,
                            const py::array& X, const py::array& y, std::int64_t k, std::int64_t p, std::int64_t stride,
                            bool normalize, std::int64_t threads) {
  const NetworkArgs args = network(s, w, a, k, p, stride, normalize);
  const int t = thread_count(threads);
  return is_double(X.dtype(), "X") ? loss_grad_typed<double>(args, X, y, t) : loss_grad_typed<float>(args, X, y, t);
}

void require_batch_size(std::int64_t n, std::int64_t d) {
  positive(n, "n", "a positive number of samples");
  positive(d, "d", "a positive row length");
  if (n > std::numeric_limits<std::int64_t>::max() / 8 / d)
    fail("n: expected n * d * 8 bytes to fit in 64 bits, got n=" + std::to_string(n) + ", d=" + std::to_string(d));
}

py::array sample_inputs(std::int64_t n, std::int64_t d, const py::object& seed, const py::object& dtype,
                        std::int64_t threads) {
  require_batch_size(n, d);
  const std::uint64_t key = seed_value(seed);
  const bool dbl = is_double(py::dtype::from_args(dtype), "dtype");
  const int t = thread_count(threads);
  const auto& kernels = dispatch::kernels();
  if (dbl) {
    py::array_t<double> X({n, d});
    double* out = X.mutable_data();
    py::gil_scoped_release release;
    kernels.f64.sample_inputs(n, d, key, t, out);
    return std::move(X);
  }
  py::array_t<float> X({n, d});
  float* out = X.mutable_data();
  py::gil_scoped_release release;
  kernels.f32.sample_inputs(n, d, key, t, out);
  return std::move(X);
}

py::tuple stochastic_loss_grad(const carray<double>& s, const carray<double>& w, const carray<double>& a,
                               const carray<double>& w_star, const carray<double>& a_star, std::int64_t n,
                               std::int64_t k, std::int64_t p, std::int64_t stride, bool normalize,
                               const py::object& seed, const py::object& dtype, std::int64_t threads) {
  const NetworkArgs args = network(s, w, a, k, p, stride, normalize);
  require_vector(w_star, "w_star", p);
  require_vector(a_star, "a_star", k);
  require_finite(w_star, "w_star");
  require_finite(a_star, "a_star");
  if (normalize && !nonzero_sum(w_star.data(), s.data(), p))
    fail("w_star: expected w_star + s != 0 (the teacher direction is undefined), got w_star + s = 0");
  require_batch_size(n, args.d);
  const std::uint64_t key = seed_value(seed);
  const bool dbl = is_double(py::dtype::from_args(dtype), "dtype");
  const int t = thread_count(threads);
  const auto& kernels = dispatch::kernels();
  py::array_t<double> grad_w(p), grad_a(k);
  double* gw = grad_w.mutable_data();
  double* ga = grad_a.mutable_data();
  double loss;
  {
    py::gil_scoped_release release;
    loss = dbl ? kernels.f64.stochastic_loss_grad(args.net, w_star.data(), a_star.data(), n, key, t, gw, ga)
               : kernels.f32.stochastic_loss_grad(args.net, w_star.data(), a_star.data(), n, key, t, gw, ga);
  }
  return py::make_tuple(loss, grad_w, grad_a);
}

py::tuple philox4x32(const std::array<std::uint32_t, 4>& counter, const std::array<std::uint32_t, 2>& key) {
  std::uint32_t out[4];
  shortcutnet::sampled::philox4x32_10(counter.data(), {key[0], key[1]}, out);
  return py::make_tuple(out[0], out[1], out[2], out[3]);
}

}  // namespace

void register_sampled(py::module_& m) {
  m.def("predict", &predict, py::arg("s"), py::arg("w"), py::arg("a"), py::arg("X"), py::arg("k"), py::arg("p"),
        py::arg("stride"), py::arg("normalize"), py::arg("threads") = 0,
        "Network output f (n,) on the rows of X (n, d), in X's dtype (float32 or float64).");
  m.def("sampled_loss_grad", &sampled_loss_grad, py::arg("s"), py::arg("w"), py::arg("a"), py::arg("X"),
        py::arg("y"), py::arg("k"), py::arg("p"), py::arg("stride"), py::arg("normalize"), py::arg("threads") = 0,
        "Empirical loss and gradients (loss, grad_w, grad_a) on X (n, d) with labels y (n,), in one pass.");
  m.def("sample_inputs", &sample_inputs, py::arg("n"), py::arg("d"), py::arg("seed"), py::arg("dtype"),
        py::arg("threads") = 0, "Gaussian batch (n, d) from the counter-based generator (Philox4x32-10, Box-Muller).");
  m.def("stochastic_loss_grad", &stochastic_loss_grad, py::arg("s"), py::arg("w"), py::arg("a"), py::arg("w_star"),
        py::arg("a_star"), py::arg("n"), py::arg("k"), py::arg("p"), py::arg("stride"), py::arg("normalize"),
        py::arg("seed"), py::arg("dtype"), py::arg("threads") = 0,
        "Fused: loss and gradients on n generated rows labelled by the teacher, without storing the batch.");
  m.def("philox4x32", &philox4x32, py::arg("counter"), py::arg("key"),
        "One Philox4x32-10 block: four 32-bit words from a counter of four words and a key of two.");
}
