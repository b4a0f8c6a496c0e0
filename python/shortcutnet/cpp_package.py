"""Where the installed C++ package is: the kernel headers and the CMake package config.

A wheel holds them inside the Python package (``shortcutnet/include``, ``shortcutnet/lib`` and
``shortcutnet/share/cmake/shortcutnet``), as pybind11's wheel holds its own, so a C++ project can
build against an installed wheel alone::

    cmake -Dshortcutnet_DIR="$(python -c 'import shortcutnet; print(shortcutnet.get_cmake_dir())')" ...
"""
from __future__ import annotations

import os

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def get_include() -> str:
    """The folder holding ``shortcutnet/*.hpp``: the installed package's, or the source tree's
    ``cpp`` folder when the package is imported from a checkout.

    Raises ImportError when neither exists.
    """
    installed = os.path.join(_PACKAGE, "include")
    if os.path.isfile(os.path.join(installed, "shortcutnet", "sampled.hpp")):
        return installed
    source = os.path.join(os.path.dirname(os.path.dirname(_PACKAGE)), "cpp")
    if os.path.isfile(os.path.join(source, "shortcutnet", "sampled.hpp")):
        return source
    raise ImportError(f"shortcutnet's C++ headers are neither in {installed} nor in {source}: "
                      "install shortcutnet from a wheel or with pip install .")


def get_cmake_dir() -> str:
    """The folder holding ``shortcutnetConfig.cmake``, for ``find_package(shortcutnet CONFIG)``
    (pass it as ``-Dshortcutnet_DIR=...`` or append it to ``CMAKE_PREFIX_PATH``).

    Raises ImportError when the package was not installed with its C++ package (a source checkout
    on ``PYTHONPATH`` has none: build it with CMake there instead).
    """
    cmake_dir = os.path.join(_PACKAGE, "share", "cmake", "shortcutnet")
    if os.path.isfile(os.path.join(cmake_dir, "shortcutnetConfig.cmake")):
        return cmake_dir
    raise ImportError(f"shortcutnet's CMake package is not installed (no shortcutnetConfig.cmake in {cmake_dir}): "
                      "install shortcutnet from a wheel or with pip install .")
