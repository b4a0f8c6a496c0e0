// Argument checks shared by the bindings: every message names the argument, what was expected
// and what was given, and is raised as ValueError (pybind11 maps std::invalid_argument to it).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace shortcutnet::bind {

namespace py = pybind11;

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

inline std::string shape_of(const py::array& x) {
  std::ostringstream out;
  out << "(";
  for (py::ssize_t i = 0; i < x.ndim(); ++i) out << (i ? ", " : "") << x.shape(i);
  out << (x.ndim() == 1 ? ",)" : ")");
  return out.str();
}

[[noreturn]] inline void fail(const std::string& message) { throw py::value_error(message); }

template <class T>
void require_vector(const carray<T>& x, const char* name, std::int64_t length) {
  if (x.ndim() != 1 || x.shape(0) != length) {
    std::ostringstream out;
    out << name << ": expected shape (" << length << ",), got " << shape_of(x);
    fail(out.str());
  }
}

// True when x[0..n) are all finite: x - x is 0 for a finite x and NaN otherwise, summed in
// independent chains without a branch per entry, so that the pass vectorizes.
template <class T>
bool all_finite(const T* x, std::int64_t n) {
  constexpr int kChains = 8;
  T sums[kChains] = {};
  std::int64_t i = 0;
  for (; i + kChains <= n; i += kChains)
    for (int l = 0; l < kChains; ++l) sums[l] += x[i + l] - x[i + l];
  T sum = 0;
  for (; i < n; ++i) sum += x[i] - x[i];
  for (int l = 0; l < kChains; ++l) sum += sums[l];
  return sum == 0;
}

template <class T>
void require_finite(const carray<T>& x, const char* name) {
  constexpr std::int64_t kSpan = 4096;  // entries checked at once before the first bad one is sought
  const T* data = x.data();
  const std::int64_t n = x.size();
  for (std::int64_t start = 0; start < n; start += kSpan) {
    const std::int64_t count = std::min(kSpan, n - start);
    if (all_finite(data + start, count)) continue;
    for (std::int64_t i = start; i < start + count; ++i)
      if (!std::isfinite(data[i])) {
        std::ostringstream out;
        out << name << ": expected finite values, got " << data[i] << " at flat index " << i;
        fail(out.str());
      }
  }
}

}  // namespace shortcutnet::bind
