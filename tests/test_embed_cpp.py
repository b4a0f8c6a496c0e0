"""The C++-only programs build with CMake alone: the embedding example (examples/cpp/embed_sampled.cpp)
prints the same numbers as the Python package, and the generator-floor timing
(benchmarks/cpp/generator_floor.cpp) reports its parts consistently."""
from __future__ import annotations

import math
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

_core = pytest.importorskip("shortcutnet._core", reason="the compiled core is not built")

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _compiler_available():
    return any(shutil.which(name) for name in ("c++", "g++", "clang++"))


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    if not _compiler_available():
        pytest.skip("no C++ compiler (c++, g++ or clang++) on PATH")
    if not (ROOT / "examples" / "cpp" / "embed_sampled.cpp").exists():
        pytest.skip("the source tree (examples/cpp) is not available next to the tests")
    build = tmp_path_factory.mktemp("embed_build")
    configure = ["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                 "-DSHORTCUTNET_BUILD_EXAMPLES=ON", "-DSHORTCUTNET_BUILD_BENCHMARKS=ON", "-DSKBUILD=OFF"]
    subprocess.run(configure, check=True, capture_output=True, text=True)
    subprocess.run(["cmake", "--build", str(build), "--target", "embed_sampled", "generator_floor", "--parallel", "2"],
                   check=True, capture_output=True, text=True)
    return build


@pytest.fixture(scope="module")
def example(programs):
    return programs / "embed_sampled"


def _parse(output):
    values = {}
    for line in output.splitlines():
        key, value = line.split()
        values.setdefault(key, []).append(value)
    return values


def test_embedded_example_matches_python(example):
    n, seed = 20000, 11
    out = subprocess.run([str(example), str(n), str(seed)], check=True, capture_output=True, text=True).stdout
    values = _parse(out)
    k, p = 4, 3
    s = np.full(p, 1 / math.sqrt(p))
    w, a = np.zeros(p), np.array([0.5, -0.25, 1.0, 0.75])
    w_star, a_star = np.array([0.3, -0.2, 0.1]), np.array([1.0, 0.5, -0.5, 0.25])
    loss, grad_w, grad_a = _core.stochastic_loss_grad(s, w, a, w_star, a_star, n, k, p, p, True, seed, "float64", 0)
    # %.17g round-trips a double exactly, and every SIMD level computes the same bits.
    assert float(values["stochastic_loss"][0]) == loss
    np.testing.assert_array_equal(np.array(values["stochastic_grad_w"], dtype=float), grad_w)
    np.testing.assert_array_equal(np.array(values["stochastic_grad_a"], dtype=float), grad_a)
    pop_loss, pop_w, pop_a = _core.population_loss_grad(s, w, a, w_star, a_star, p, True)
    assert float(values["population_loss"][0]) == pytest.approx(pop_loss, rel=1e-15)
    np.testing.assert_allclose(np.array(values["population_grad_w"], dtype=float), pop_w, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(np.array(values["population_grad_a"], dtype=float), pop_a, rtol=1e-14, atol=1e-16)
    assert values["simd"][0] in _core.build_info()["simd_supported"]


FLOOR_PARTS = {"philox4x32-10 words", "gaussian rows", "gradient of a cached row", "fused floor", "fused kernel",
               "fused kernel float64", "paper gaussian rows", "paper gradient", "paper fused floor",
               "paper fused kernel"}


@pytest.mark.parametrize("level", _core.build_info()["simd_supported"])
def test_generator_floor_reports_its_parts(programs, level, monkeypatch):
    monkeypatch.setenv("SHORTCUTNET_SIMD", level)
    out = subprocess.run([str(programs / "generator_floor"), "300", "2", "1"], check=True, capture_output=True,
                         text=True).stdout
    lines = out.splitlines()
    assert lines[0] == f"simd {level}"
    ns = {line.rsplit(" ", 2)[0].strip(): float(line.split()[-2]) for line in lines if "ns/entry" in line}
    assert set(ns) == FLOOR_PARTS
    assert all(value > 0 for value in ns.values())
    # Box-Muller comes on top of the Philox words; a floor is its rows plus its gradient.
    assert ns["gaussian rows"] > ns["philox4x32-10 words"]
    assert ns["fused floor"] == pytest.approx(ns["gaussian rows"] + ns["gradient of a cached row"], abs=2e-3)
    assert ns["paper fused floor"] == pytest.approx(ns["paper gaussian rows"] + ns["paper gradient"], abs=2e-3)
    ratios = {line.rsplit(" ", 1)[0].strip(): float(line.split()[-1]) for line in lines if " / " in line}
    assert ratios["fused kernel / floor"] == pytest.approx(ns["fused kernel"] / ns["fused floor"], abs=2e-3)
    assert ratios["paper / long rows"] == pytest.approx(ns["paper fused kernel"] / ns["fused kernel"], abs=2e-3)


def test_generator_floor_rejects_bad_arguments(programs, monkeypatch):
    bad = subprocess.run([str(programs / "generator_floor"), "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
    monkeypatch.setenv("SHORTCUTNET_SIMD", "sse9")
    bad = subprocess.run([str(programs / "generator_floor"), "10"], capture_output=True, text=True)
    assert bad.returncode == 2 and "SHORTCUTNET_SIMD" in bad.stderr
