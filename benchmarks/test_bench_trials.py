"""Batched exact population GD: ns per trial-step of run_trials on the compiled engines against
a vectorized NumPy batch loop, a Python loop over trials, and JAX (jit + vmap + lax.scan).

Run: python -m pytest benchmarks/test_bench_trials.py --benchmark-only
Problem: B = 1000 trials, k = 20, p = 10, plain CNN from random init (docs/model.md, "The paper's claim and the experiments"),
lr = 0.1, tol = 0 so that every trial makes every step (the per-trial-step figure is honest).
The slower baselines run fewer steps or trials and are normalized per trial-step; extra_info
holds ns_per_trial_step and the ratio to the C++ engine.
"""
from __future__ import annotations


import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet.bench_reduced import jax_population_gd

B, K, P, STEPS, LR = 1000, 20, 10, 3000, 0.1
MEASURED: dict = {}


@pytest.fixture(scope="module")
def problem():
    model = sn.Model(K, P, shortcut=False)
    rng = np.random.default_rng(0)
    a_star = rng.standard_normal((B, K))
    w_star = rng.standard_normal((B, P))
    w0 = sn.init_first_layer(model, "sphere", rng, size=B)
    a0 = sn.init_second_layer(model, a_star, rng)
    return model, w_star, a_star, w0, a0


def record(benchmark, name, trial_steps):
    ns = benchmark.stats.stats.min / trial_steps * 1e9
    MEASURED[name] = ns
    benchmark.extra_info["ns_per_trial_step"] = round(ns, 2)
    benchmark.extra_info["trial_steps"] = trial_steps
    if "cpp" in MEASURED and name != "cpp":
        benchmark.extra_info["slower_than_cpp"] = round(ns / MEASURED["cpp"], 1)
    return ns


@pytest.mark.parametrize("backend, engine", [("cpp", "full"), ("cpp", "reduced"), ("numba", "full"),
                                             ("numba", "reduced")])
def test_run_trials_engine(benchmark, problem, backend, engine):
    if backend not in sn.backends():
        pytest.skip(f"{backend} backend not available")
    model, w_star, a_star, w0, a0 = problem
    kw = dict(lr=LR, backend=backend, engine=engine)
    sn.run_trials(model, w_star[:2], a_star[:2], w0[:2], a0[:2], steps=2, **kw)  # compile/warm up
    out = benchmark.pedantic(sn.run_trials, args=(model, w_star, a_star, w0, a0),
                             kwargs=dict(steps=STEPS, tol=0.0, **kw), rounds=5, iterations=1)
    assert int(out.steps.sum()) == B * STEPS and out.engine == engine
    benchmark.extra_info["threads"] = sn.build_info().get("max_threads")
    # The full compiled engine is the reference the other rows are compared with.
    record(benchmark, "cpp" if (backend, engine) == ("cpp", "full") else f"{backend} {engine}", B * STEPS)


def test_numpy_batch_loop(benchmark, problem):
    model, w_star, a_star, w0, a0 = problem
    steps = 100
    benchmark.pedantic(sn.run_trials, args=(model, w_star, a_star, w0, a0),
                       kwargs=dict(steps=steps, lr=LR, tol=0.0, backend="numpy", engine="full"), rounds=5, iterations=1)
    record(benchmark, "numpy_batch", B * steps)


def test_python_loop_over_trials(benchmark, problem):
    model, w_star, a_star, w0, a0 = problem
    trials, steps = 3, 200

    def loop():
        for b in range(trials):
            sn.train(model, w_star[b], a_star[b], w0[b], a0[b], steps=steps, lr=LR, tol=0.0, backend="numpy",
                     record_every=steps, engine="full")

    benchmark.pedantic(loop, rounds=5, iterations=1)
    record(benchmark, "python_loop", trials * steps)


def test_jax_jit_vmap_scan(benchmark, problem):
    jax = pytest.importorskip("jax", reason="jax is not installed")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    model, w_star, a_star, w0, a0 = problem
    fn = jax_population_gd(jax, LR, LR, teacher_axis=0)
    args = [jnp.asarray(x) for x in (w0, a0, w_star, a_star, model.s)]
    fn(*args, STEPS)[0].block_until_ready()  # compile
    benchmark.pedantic(lambda: fn(*args, STEPS)[0].block_until_ready(), rounds=5, iterations=1)
    record(benchmark, "jax", B * STEPS)
