// Bindings of cpp/shortcutnet/trials kernels: checks, conversion, GIL release.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_trials(py::module_& m) { (void)m; }
