"""Shared workloads for the benchmarks (run: python -m pytest benchmarks --benchmark-only).

Each group times every contender on the same data; ``extra_info`` records, for every row, its
ratio to the C++ backend and the fraction of the read bandwidth it reaches (the time of the
faster of ``np.sum`` and ``torch.ones(N).sum()`` over the same bytes divided by its own).  After
each row, the row and its references are timed again in alternation
(``shortcutnet.bench.interleaved_times``) and each ratio is the median of the ratios within a
round, so it compares measurements taken under the same conditions (CPU clock, memory bandwidth,
other load) rather than with a reading from another moment of the session.
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


# Rounds of the row and its references in alternation, for the ratios of record().
RATIO_ROUNDS = 5


def record(benchmark, fn, refs):
    """This row's median, and its ratios to the references of its group timed in alternation
    with it now."""
    benchmark.extra_info["median_ms"] = round(1e3 * benchmark.stats.stats.median, 3)
    reads = {f"read {i}": read for i, read in enumerate(refs.get("read", []))}
    together = {"row": fn, **({"cpp": refs["cpp"]} if "cpp" in refs else {}), **reads}
    times = bench.interleaved_times(together, rounds=RATIO_ROUNDS)
    if "cpp" in refs:
        benchmark.extra_info["ratio_to_cpp"] = round(bench.median_ratio(times["row"], times["cpp"]), 3)
    if reads:
        percent = bench.percent_of_read(times["row"], [times[name] for name in reads])
        benchmark.extra_info["percent_of_read_bandwidth"] = round(percent, 1)


@pytest.fixture
def timed(benchmark):
    """timed(fn, refs, rounds, warmup): time fn after warm-up calls (JIT, caches), record ratios."""

    def run(fn, refs, rounds=7, warmup=1):
        if fn is None:
            pytest.skip("the library of this contender is not installed")
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=warmup)
        record(benchmark, fn, refs)

    return run


@pytest.fixture
def needs_backend():
    def check(name):
        if name not in sn.backends():
            pytest.skip(f"backend {name!r} is not available")

    return check
