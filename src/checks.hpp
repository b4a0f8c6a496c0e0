// Argument checks shared by the bindings: every message names the argument, what was expected
// and what was given, and is raised as ValueError (pybind11 maps std::invalid_argument to it).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

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

template <class T>
void require_finite(const carray<T>& x, const char* name) {
  const T* data = x.data();
  for (py::ssize_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(data[i])) {
      std::ostringstream out;
      out << name << ": expected finite values, got " << data[i] << " at flat index " << i;
      fail(out.str());
    }
}

}  // namespace shortcutnet::bind
