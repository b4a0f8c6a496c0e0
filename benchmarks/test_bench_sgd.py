"""Batched online SGD and the engine's other sources and optimizers, per unit of work.

Run: python -m pytest benchmarks/test_bench_sgd.py --benchmark-only
Problem (``shortcutnet.bench.TRIALS_FULL``): B = 1000 trials, k = 20, p = 10, batch 32, float32,
lr 0.1, the plain CNN from the experiments' random teachers and initializations, tol = 0 so that
every trial makes every step.  Rows (the callables of ``shortcutnet bench``'s per-unit groups):

- sgd-f32: ``run_trials(gradient="sampled")`` on all threads and on one, in ns per trial-step;
  the fused kernel ``stochastic_loss_grad`` on a batch of 2^17 and on batches of 32 in a loop, in
  ns per entry (entries = n k p); ``train`` on one trial, ns per step; PyTorch (``randn``,
  autograd, ``torch.optim.SGD``, batched over trials, its default thread count) and JAX
  (``jit(vmap(lax.scan))``) when installed.
- empirical-f32: full-batch GD on 4096 stored rows per trial against ``sampled_loss_grad`` on
  the same bytes.
- optimizers-f64: population GD, momentum and Adam in the full engine.

extra_info holds ns_per_unit (from the fastest round, as ``shortcutnet bench`` does: other load
only adds time) and, for a row with a reference (``bench.COMPARISONS``), the reference's figure
timed again right after the row (same conditions), ``ratio`` (row / (per x reference)) and
``of_target`` (row / its target bound: <= 1 meets it).
"""
import pytest

import shortcutnet as sn
from shortcutnet import bench

SIZES = bench.TRIALS_FULL
MEASURED: dict = {}


@pytest.fixture(scope="module")
def work():
    return bench.make_trials_workload(SIZES.trials)


@pytest.fixture
def measure(benchmark, work):
    """measure(group, name, rounds): time the row, then its reference, and record both."""

    def run(group, name, rounds):
        contender = bench.per_unit_contender(name, work, SIZES)
        benchmark.group = group
        benchmark.pedantic(contender.fn, rounds=rounds, iterations=1, warmup_rounds=1)
        seconds = benchmark.stats.stats.min  # other load only adds time
        if contender.baseline is not None:
            seconds -= bench.best_time(contender.baseline, repeats=rounds)
        ns = 1e9 * seconds / contender.units
        MEASURED[name] = ns
        benchmark.extra_info.update(ns_per_unit=round(ns, 2), unit=contender.unit, units=contender.units)
        comparison = bench.COMPARISONS.get(name)
        if comparison is None:
            return ns
        reference = bench.ns_per_unit(bench.per_unit_contender(comparison.reference, work, SIZES), repeats=3)
        benchmark.extra_info.update(versus=comparison.versus_text(), reference_ns=round(reference, 2),
                                    ratio=round(comparison.ratio(ns, reference), 3))
        of_target = comparison.of_target(ns, reference)
        if of_target is not None:
            benchmark.extra_info.update(target=comparison.target_text(), of_target=round(of_target, 3))
        return ns

    return run


@pytest.mark.parametrize("name", [bench.KERNEL_LONG, bench.KERNEL_LONG_1, bench.KERNEL_SHORT])
def test_fused_kernel_per_entry(measure, name):
    measure("sgd-f32", name, rounds=7)


@pytest.mark.parametrize("name", [bench.ENGINE, bench.ENGINE_1])
def test_run_trials_sampled(benchmark, measure, name):
    measure("sgd-f32", name, rounds=5)
    benchmark.extra_info["threads"] = 1 if name == bench.ENGINE_1 else sn.build_info().get("max_threads")


def test_train_one_trial(measure):
    measure("sgd-f32", bench.TRAIN, rounds=5)


def test_torch_batched_sgd(benchmark, measure):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    measure("sgd-f32", bench.TORCH, rounds=3)
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()  # its default, not set here


def test_jax_vmap_scan(measure):
    pytest.importorskip("jax", reason="JAX is not installed (an optional peer: pip install jax)")
    measure("sgd-f32", bench.JAX, rounds=3)


@pytest.mark.parametrize("name", [bench.MATERIALIZED, bench.EMPIRICAL])
def test_empirical_full_batch(measure, name):
    measure("empirical-f32", name, rounds=3 if name == bench.EMPIRICAL else 7)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_population_optimizer(measure, optimizer):
    measure("optimizers-f64", bench.POPULATION[optimizer], rounds=5)
