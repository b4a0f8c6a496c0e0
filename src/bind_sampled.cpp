// Bindings of cpp/shortcutnet/sampled kernels: checks, conversion, GIL release.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_sampled(py::module_& m) { (void)m; }
