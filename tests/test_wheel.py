"""The installed package is complete: the compiled core with its OpenMP runtime, every C++ header,
the static dispatch library and the CMake package. Marked ``wheel``: CI runs these against the
repaired wheel in a fresh environment where no compiler can be reached."""
from __future__ import annotations

import os
import pathlib
import re
import sys

import numpy as np
import pytest

import shortcutnet as sn
from installed_package import ROOT, cmake_dir, unavailable

pytestmark = pytest.mark.wheel


def test_compiled_core_is_the_default_backend():
    info = sn.build_info()
    assert info["available"], info.get("error")
    assert sn.backends()[0] == "cpp"
    assert info["openmp"] is True
    assert not info["native"], "a distributable build must not be tuned for the build machine"
    assert info["simd_supported"][0] == "scalar"


def test_headers_include_every_header_of_the_source_tree():
    include = pathlib.Path(sn.get_include())
    installed = {path.name for path in (include / "shortcutnet").glob("*.hpp")}
    assert {"dispatch.hpp", "population.hpp", "sampled.hpp", "philox.hpp", "engine.hpp"} <= installed
    source = ROOT / "cpp" / "shortcutnet"
    if source.is_dir():
        assert {path.name for path in source.glob("*.hpp")} <= installed


def test_cmake_package_matches_the_python_package():
    folder = pathlib.Path(cmake_dir())
    for name in ("shortcutnetConfig.cmake", "shortcutnetConfigVersion.cmake", "shortcutnetTargets.cmake"):
        assert (folder / name).is_file(), name
    version = (folder / "shortcutnetConfigVersion.cmake").read_text()
    assert f'set(PACKAGE_VERSION "{sn.__version__}")' in version
    targets = (folder / "shortcutnetTargets.cmake").read_text()
    assert "add_library(shortcutnet::kernels INTERFACE IMPORTED)" in targets
    assert "add_library(shortcutnet::dispatch STATIC IMPORTED)" in targets
    assert "OpenMP::OpenMP_CXX" in targets
    # Relocatable: paths are relative to the installed package, never the build machine's folders.
    assert str(ROOT) not in targets
    assert re.search(r'INTERFACE_INCLUDE_DIRECTORIES "\$\{_IMPORT_PREFIX\}/(shortcutnet/)?include"', targets)
    library = "shortcutnet_dispatch.lib" if sys.platform == "win32" else "libshortcutnet_dispatch.a"
    assert (folder.parents[2] / "lib" / library).is_file()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="auditwheel bundles libraries on Linux only")
def test_openmp_runtime_comes_from_the_wheel():
    from shortcutnet import _core

    bundled = pathlib.Path(sn.__file__).parent.parent / "shortcutnet.libs"
    if not bundled.is_dir():
        unavailable("the package was not installed from a repaired wheel (no shortcutnet.libs)")
    assert any(bundled.glob("libgomp*.so*")), sorted(os.listdir(bundled))
    sn.stochastic_loss_grad(sn.Model(3, 2), np.zeros(2), np.ones(3), np.ones(2), np.ones(3), 1000, 1, threads=2)
    with open("/proc/self/maps") as fh:
        loaded = {m.group(0) for m in re.finditer(r"/\S*libgomp\S*", fh.read())}
    assert loaded and all(pathlib.Path(path).parent == bundled for path in loaded), loaded
    assert pathlib.Path(_core.__file__).parent == pathlib.Path(sn.__file__).parent
