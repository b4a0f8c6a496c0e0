"""Timings of the compiled sampled kernels (run: pytest benchmarks/test_bench_sampled_cpp.py).

Read bandwidth (np.sum over the same bytes) is measured in the same run as the reference for the
materialized kernels; the fused kernel is reported in ns per generated entry (extra_info).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

_core = pytest.importorskip("shortcutnet._core", reason="the compiled core is not built")

K, P = 16, 64
THREADS = 2


def _network(k=K, p=P):
    rng = np.random.default_rng(1)
    s = np.full(p, 1 / math.sqrt(p))
    return s, 0.1 * rng.normal(size=p), rng.normal(size=k), 0.1 * rng.normal(size=p), rng.normal(size=k)


@pytest.fixture(scope="module", params=["float32", "float64"])
def batch(request):
    s, w, a, w_star, a_star = _network()
    X = _core.sample_inputs(32768, K * P, 5, request.param, 0)
    y = _core.predict(s, w_star, a_star, X, K, P, P, True, 0)
    return request.param, s, w, a, X, y


@pytest.mark.benchmark(group="sampled-materialized")
def test_read_bandwidth(benchmark, batch):
    dtype, *_, X, _ = batch
    benchmark.extra_info.update(dtype=dtype, bytes=X.nbytes)
    benchmark(X.sum)


@pytest.mark.benchmark(group="sampled-materialized")
@pytest.mark.parametrize("threads", [1, THREADS])
def test_sampled_loss_grad(benchmark, batch, threads):
    dtype, s, w, a, X, y = batch
    benchmark.extra_info.update(dtype=dtype, bytes=X.nbytes, threads=threads, simd=_core.build_info()["simd_in_use"])
    benchmark(_core.sampled_loss_grad, s, w, a, X, y, K, P, P, True, threads)


@pytest.mark.benchmark(group="sampled-fused")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, THREADS])
def test_stochastic_loss_grad(benchmark, dtype, threads):
    s, w, a, w_star, a_star = _network()
    n = 2**17
    benchmark.extra_info.update(dtype=dtype, entries=n * K * P, threads=threads)
    benchmark.pedantic(_core.stochastic_loss_grad, args=(s, w, a, w_star, a_star, n, K, P, P, True, 9, dtype, threads),
                       rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["ns_per_entry"] = benchmark.stats.stats.min * 1e9 / (n * K * P)


@pytest.mark.benchmark(group="sampled-small")
def test_small_batch_call_overhead(benchmark):
    s, w, a, w_star, a_star = _network(k=12, p=6)
    X = _core.sample_inputs(256, 72, 3, "float64", 0)
    y = _core.predict(s, w_star, a_star, X, 12, 6, 6, True, 0)
    benchmark(_core.sampled_loss_grad, s, w, a, X, y, 12, 6, 6, True, 0)
