"""Shared workloads for the benchmarks (run: python -m pytest benchmarks --benchmark-only).

Each group times every contender on the same data; ``extra_info`` records, for every row, its
ratio to the C++ backend and the fraction of the read bandwidth it reaches (the time of the
faster of ``np.sum`` and ``torch.ones(N).sum()`` over the same bytes divided by its own).  Both references are timed again right after
each row with ``shortcutnet.bench.median_time``, so a ratio compares measurements taken under
the same conditions (CPU clock, caches, other load) rather than with a reading from the start of
the session.
"""
import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet import bench

MATERIALIZED_N = 32768
SMALL_N = 256
FUSED_N = 2**17


def pytest_benchmark_update_machine_info(config, machine_info):
    """The CPU model and the SIMD level in use go into the saved JSON, so that figures from
    different machines or levels are never compared by mistake."""
    machine_info.update(bench.machine_info())


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
    """The reference contenders of a group: the C++ backend and a plain read of the same bytes."""
    refs = {}
    if "cpp" in sn.backends():
        refs["cpp"] = bench.backend_fused_step(work, "cpp") if fused else bench.backend_step(work, "cpp")
    if not fused:
        # The faster of two plain reads of the same bytes stands for the machine's read bandwidth.
        refs["read"] = [fn for fn in (bench.read_numpy(work), bench.read_torch(work)) if fn is not None]
    return refs


def record(benchmark, refs):
    """Ratios of this row's median to the references of its group, timed now."""
    median = benchmark.stats.stats.median
    benchmark.extra_info["median_ms"] = round(1e3 * median, 3)
    if "cpp" in refs:
        benchmark.extra_info["ratio_to_cpp"] = round(median / bench.median_time(refs["cpp"]), 3)
    if "read" in refs:
        read = min(bench.median_time(fn) for fn in refs["read"])
        benchmark.extra_info["percent_of_read_bandwidth"] = round(100.0 * read / median, 1)


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
