"""Memory leaks: 10^4 calls of each public kernel, of ``train`` and of ``run_trials`` (every optimizer
and gradient source) leave the resident memory flat, within 5%.

Resident memory is read from /proc/self/statm. Under AddressSanitizer freed memory is held in a
quarantine and the resident size grows by design; there its own checks stand in for this one.
"""
import os

import numpy as np
import pytest

import shortcutnet as sn

pytestmark = pytest.mark.leak

CALLS = 10_000
TOLERANCE = 0.05

if not os.path.exists("/proc/self/statm"):
    pytest.skip("resident memory is read from /proc/self/statm (Linux)", allow_module_level=True)
with open("/proc/self/maps") as _maps:
    if "libasan" in _maps.read():
        pytest.skip("AddressSanitizer's quarantine keeps freed memory resident", allow_module_level=True)


def resident_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def growth(call, calls: int = CALLS) -> float:
    """Relative growth of the resident memory over ``calls`` calls, after a warm-up (caches, thread
    pools, compiled code) of a tenth as many."""
    for _ in range(calls // 10):
        call()
    before = resident_bytes()
    for _ in range(calls):
        call()
    return (resident_bytes() - before) / before


K, P = 6, 4
MODEL = sn.Model(K, P)
RNG = np.random.default_rng(11)
W, A = RNG.normal(size=P), RNG.normal(size=K)
W_STAR, A_STAR = RNG.normal(size=P), RNG.normal(size=K)
Z = sn.sample_inputs(MODEL, 32, seed=1)
Y = sn.teacher_labels(MODEL, W_STAR, A_STAR, Z)
B = 4
W0, A0 = np.zeros((B, P)), RNG.normal(size=(B, K))
W_STARS, A_STARS = RNG.normal(size=(B, P)), RNG.normal(size=(B, K))

KERNELS = {
    "angle": lambda: sn.angle(W, W_STAR),
    "population_loss": lambda: sn.population_loss(MODEL, W, A, W_STAR, A_STAR),
    "population_grad": lambda: sn.population_grad(MODEL, W, A, W_STAR, A_STAR),
    "population_loss_grad": lambda: sn.population_loss_grad(MODEL, W, A, W_STAR, A_STAR),
    "objective": lambda: sn.objective(MODEL, W_STAR, A_STAR)[1](np.concatenate([W, A])),
    "spurious_optimum": lambda: sn.spurious_optimum(MODEL, A_STAR),
    "is_spurious_minimum": lambda: sn.is_spurious_minimum(MODEL, A_STAR),
    "sample_inputs": lambda: sn.sample_inputs(MODEL, 32, seed=3),
    "sample_inputs_f32": lambda: sn.sample_inputs(MODEL, 32, seed=3, dtype=np.float32),
    "teacher_labels": lambda: sn.teacher_labels(MODEL, W_STAR, A_STAR, Z),
    "predict": lambda: sn.predict(MODEL, W, A, Z),
    "sampled_loss_grad": lambda: sn.sampled_loss_grad(MODEL, W, A, Z, Y),
    "stochastic_loss_grad": lambda: sn.stochastic_loss_grad(MODEL, W, A, W_STAR, A_STAR, 32, seed=5),
}

RUNS = {
    "run_trials": lambda: sn.run_trials(MODEL, W_STARS, A_STARS, W0, A0, steps=5, lr=0.1, threads=1),
    "run_trials_adam_sampled": lambda: sn.run_trials(MODEL, W_STARS, A_STARS, W0, A0, steps=5,
                                                     optimizer=sn.optim.adam(0.01), gradient="sampled",
                                                     batch_size=8, seed=2, dtype=np.float32, threads=1),
    "run_trials_momentum_empirical": lambda: sn.run_trials(MODEL, W_STARS, A_STARS, W0, A0, steps=5,
                                                           optimizer=sn.optim.momentum(0.01, beta=0.9),
                                                           gradient="empirical", n_train=16, batch_size=4, seed=2,
                                                           threads=1),
    "train_history": lambda: sn.train(MODEL, W_STAR, A_STAR, W0[0], A0[0], steps=5, lr=0.1, record_every=1),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_leaves_memory_flat(name):
    assert growth(KERNELS[name]) <= TOLERANCE


@pytest.mark.parametrize("name", sorted(RUNS))
def test_training_leaves_memory_flat(name):
    assert growth(RUNS[name]) <= TOLERANCE


def test_the_check_sees_a_leak():
    # A call that keeps, over the run, four times the tolerance of this process's resident memory
    # (which is large at the end of the whole suite).
    kept = []
    per_call = max(1024, int(4 * TOLERANCE * resident_bytes() / CALLS / 8))
    assert growth(lambda: kept.append(np.ones(per_call))) > TOLERANCE
