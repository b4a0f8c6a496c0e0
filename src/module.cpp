// The compiled core of shortcutnet: one module, one registration function per kernel family.
#include <pybind11/pybind11.h>

#include <string>

#include "shortcutnet/dispatch.hpp"

#ifdef SHORTCUTNET_OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

void register_population(py::module_& m);
void register_sampled(py::module_& m);
void register_trials(py::module_& m);
void register_reduced(py::module_& m);
void register_checks(py::module_& m);

namespace {

py::list simd_levels_supported() {
  py::list levels;
  for (const auto& level : shortcutnet::dispatch::simd_supported()) levels.append(level);
  return levels;
}

py::dict build_info() {
  py::dict info;
  info["version"] = SHORTCUTNET_VERSION_INFO;
  info["compiler"] = SHORTCUTNET_COMPILER_ID;
#ifdef SHORTCUTNET_OPENMP
  info["openmp"] = true;
  info["openmp_version"] = _OPENMP;
  info["max_threads"] = omp_get_max_threads();
#else
  info["openmp"] = false;
  info["openmp_version"] = py::none();
  info["max_threads"] = 1;
#endif
#ifdef SHORTCUTNET_NATIVE
  info["native"] = true;
#else
  info["native"] = false;
#endif
  info["simd_supported"] = simd_levels_supported();
  info["simd_in_use"] = shortcutnet::dispatch::kernels().name;
  return info;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "shortcutnet compiled kernels (C++17, OpenMP).";
  m.def("build_info", &build_info, "What the compiled core was built with and what this CPU supports.");
  register_population(m);
  register_sampled(m);
  register_trials(m);
  register_reduced(m);
  register_checks(m);
}
