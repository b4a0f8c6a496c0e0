"""The reduced engine against the full-dimensional one and JAX: ns per trial-step of exact
population GD at k + p from 30 to 1200 (shortcutnet.bench_reduced holds the contenders).

Run: python -m pytest benchmarks/test_bench_reduced.py --benchmark-only
extra_info: ns_per_trial_step, and for the full engine and JAX their ratio to the reduced engine
at the same size; for the reduced engine its ratio to its own cost at k = 20, p = 10 (flat: 1).
"""
from __future__ import annotations

import pytest

import shortcutnet as sn
from shortcutnet import bench_reduced as br

MEASURED: dict = {}


@pytest.mark.parametrize("size", br.SIZES, ids=[f"k{k}-p{p}" for k, p in br.SIZES])
@pytest.mark.parametrize("name", [br.REDUCED, br.FULL, br.JAX])
def test_exact_population_gd(benchmark, name, size):
    if name != br.JAX and "cpp" not in sn.backends():
        pytest.skip("the compiled backend is not available")
    k, p = size
    benchmark.group = f"reduced-f64 k={k} p={p}"
    work = br.contender(name, k, p, br.FULL_SIZES)
    if work is None:
        pytest.skip("jax is not installed")
    benchmark.pedantic(work.run, rounds=5, iterations=1, warmup_rounds=1)
    ns = benchmark.stats.stats.min / work.trial_steps * 1e9
    MEASURED[(name, size)] = ns
    benchmark.extra_info["ns_per_trial_step"] = round(ns, 3)
    reduced = MEASURED.get((br.REDUCED, size))
    if name != br.REDUCED and reduced:
        benchmark.extra_info["times_reduced"] = round(ns / reduced, 1)
    first = MEASURED.get((br.REDUCED, br.SIZES[0]))
    if name == br.REDUCED and first:
        benchmark.extra_info["times_reduced_at_k20_p10"] = round(ns / first, 2)
