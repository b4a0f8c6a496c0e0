"""A C++ project builds against the installed package alone: examples/cpp (embed_sampled.cpp and its
CMakeLists.txt, find_package(shortcutnet CONFIG)) copied to a folder outside the source tree, configured
with sn.get_cmake_dir(), prints the compiled core's numbers."""
from __future__ import annotations

import json
import math
import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

import shortcutnet as sn
from installed_package import ROOT, cmake_dir, unavailable

EXAMPLE = ROOT / "examples" / "cpp"


def _run(args, **kwargs):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    package = cmake_dir()
    if shutil.which("cmake") is None:
        unavailable("cmake is not on PATH")
    if not any(shutil.which(name) for name in ("c++", "g++", "clang++")):
        unavailable("no C++ compiler (c++, g++ or clang++) on PATH")
    if not (EXAMPLE / "embed_sampled.cpp").is_file():
        unavailable(f"the example sources are not next to the tests ({EXAMPLE})")
    project = tmp_path_factory.mktemp("embed_project")
    for name in ("CMakeLists.txt", "embed_sampled.cpp"):
        shutil.copy(EXAMPLE / name, project / name)
    build = project / "build"
    configure = _run(["cmake", "-S", project, "-B", build, f"-Dshortcutnet_DIR={package}",
                      "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"])
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compiled = _run(["cmake", "--build", build, "--parallel", "2"])
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return build


def _values(stdout):
    values = {}
    for line in stdout.splitlines():
        key, value = line.split()
        values.setdefault(key, []).append(value)
    return values


def test_compiled_against_the_installed_headers_only(build):
    (command,) = [c["command"] for c in json.loads((build / "compile_commands.json").read_text())]
    include = os.path.realpath(sn.get_include())
    assert include in command or sn.get_include() in command, command
    assert str(ROOT / "cpp") not in command, "the example must not see the source tree"
    # The package's interface: OpenMP and no multiply-add contraction (C++17 is the compiler's default
    # or an -std option, as CMake sees fit).
    assert "-ffp-contract=off" in command and "-fopenmp" in command, command
    cache = (build / "CMakeCache.txt").read_text()
    assert re.search(rf"^shortcutnet_DIR:\w+={re.escape(cmake_dir())}$", cache, re.M), "found elsewhere"


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_example_prints_the_compiled_cores_numbers(build, threads):
    from shortcutnet import _core

    n, seed = 30000, 2**63 + 5
    done = _run([build / "embed_sampled", n, seed, threads], check=True)
    values = _values(done.stdout)
    k, p = 4, 3
    s = np.full(p, 1 / math.sqrt(p))
    w, a = np.zeros(p), np.array([0.5, -0.25, 1.0, 0.75])
    w_star, a_star = np.array([0.3, -0.2, 0.1]), np.array([1.0, 0.5, -0.5, 0.25])
    loss, grad_w, grad_a = _core.stochastic_loss_grad(s, w, a, w_star, a_star, n, k, p, p, True, seed, "float64", 1)
    # %.17g round-trips a double, and every thread count and SIMD level computes the same bits.
    assert float(values["stochastic_loss"][0]) == loss
    np.testing.assert_array_equal(np.array(values["stochastic_grad_w"], dtype=float), grad_w)
    np.testing.assert_array_equal(np.array(values["stochastic_grad_a"], dtype=float), grad_a)
    pop_loss, pop_w, pop_a = _core.population_loss_grad(s, w, a, w_star, a_star, p, True)
    assert float(values["population_loss"][0]) == pytest.approx(pop_loss, rel=1e-15)
    np.testing.assert_allclose(np.array(values["population_grad_w"], dtype=float), pop_w, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(np.array(values["population_grad_a"], dtype=float), pop_a, rtol=1e-14, atol=1e-16)
    assert values["simd"] == [sn.build_info()["simd_in_use"]]


def test_every_simd_level_prints_the_same_numbers(build):
    outputs = {}
    for level in sn.build_info()["simd_supported"]:
        done = _run([build / "embed_sampled", 5000, 3, 2], check=True, env={**os.environ, "SHORTCUTNET_SIMD": level})
        lines = done.stdout.splitlines()
        assert lines[0] == f"simd {level}"
        outputs[level] = lines[1:]
    assert len({tuple(lines) for lines in outputs.values()}) == 1, outputs


def test_bad_simd_level_is_a_clear_error_not_an_abort(build):
    done = _run([build / "embed_sampled", 100, 1], env={**os.environ, "SHORTCUTNET_SIMD": "sse9"})
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "SHORTCUTNET_SIMD: expected one of 'scalar', 'avx2', 'avx512', got 'sse9'" in done.stderr
    assert "terminate" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize("args, name", [(["0"], "n"), (["12x"], "n"), (["5", "-1"], "seed"),
                                        (["5", "1", "9999"], "threads"), (["5", "1", "1", "1"], "arguments")])
def test_bad_arguments_name_the_argument(build, args, name):
    done = _run([build / "embed_sampled", *args])
    assert done.returncode == 2 and f": {name}: expected " in done.stderr and "usage:" in done.stderr, done.stderr


def test_version_requirement_is_checked(tmp_path):
    package = cmake_dir()
    if shutil.which("cmake") is None:
        unavailable("cmake is not on PATH")
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(v NONE)\nfind_package(shortcutnet 99.0 CONFIG REQUIRED)\n")
    done = _run(["cmake", "-S", tmp_path, "-B", tmp_path / "build", f"-Dshortcutnet_DIR={package}"])
    assert done.returncode != 0
    assert sn.__version__ in done.stderr and "99.0" in done.stderr, done.stderr
