"""Shared workloads for the benchmarks (run: python -m pytest benchmarks --benchmark-only).

Each group times every contender on the same data; ``extra_info`` records, for every row, its
ratio to the C++ backend and the fraction of the read bandwidth it reaches (the time of
``np.sum`` over the same bytes divided by its own), both measured once per session with
``shortcutnet.bench.median_time`` so that they do not depend on the order of the tests.
"""
import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet import bench

MATERIALIZED_N = 32768
SMALL_N = 256
FUSED_N = 2**17


@pytest.fixture(scope="session")
def materialized():
    """Stored batches (n = 32768, k = 16, p = 64), one per dtype, with the C++ and np.sum times."""
    out = {}
    for dtype in (np.float32, np.float64):
        work = bench.make_workload(MATERIALIZED_N, dtype=dtype)
        out[np.dtype(dtype).name] = (work, _references(work, fused=False))
    return out


@pytest.fixture(scope="session")
def small_batch():
    work = bench.make_workload(SMALL_N, dtype=np.float64)
    return work, _references(work, fused=False)


@pytest.fixture(scope="session")
def fused():
    work = bench.make_workload(FUSED_N, dtype=np.float32, materialize=False)
    return work, _references(work, fused=True)


def _references(work, *, fused):
    refs = {}
    if "cpp" in sn.backends():
        step = bench.backend_fused_step(work, "cpp") if fused else bench.backend_step(work, "cpp")
        refs["cpp"] = bench.median_time(step)
    if not fused:
        refs["read"] = bench.median_time(bench.read_numpy(work))
    return refs


def record(benchmark, refs):
    """Ratios of this row's median to the references of its group."""
    median = benchmark.stats.stats.median
    if "cpp" in refs:
        benchmark.extra_info["ratio_to_cpp"] = round(median / refs["cpp"], 3)
    if "read" in refs:
        benchmark.extra_info["percent_of_read_bandwidth"] = round(100.0 * refs["read"] / median, 1)


@pytest.fixture
def timed(benchmark):
    """timed(fn, refs, rounds, warmup): time fn after warm-up calls (JIT, caches), record ratios."""

    def run(fn, refs, rounds=7, warmup=1):
        if fn is None:
            pytest.skip("the library of this contender is not installed")
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=warmup)
        record(benchmark, refs)

    return run


@pytest.fixture
def needs_backend():
    def check(name):
        if name not in sn.backends():
            pytest.skip(f"backend {name!r} is not available")

    return check
