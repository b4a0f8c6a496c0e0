"""Every backend gives the serial answers under threads, the Numba backend under every threading layer;
the compiled kernels release the GIL and keep no global state."""
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import shortcutnet as sn
from conftest import BACKENDS

MODEL = sn.Model(16, 64)


def _problem(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=64) * 0.3, rng.normal(size=16), rng.normal(size=64) * 0.3, rng.normal(size=16)


KINDS = ["sample", "predict", "sampled", "stochastic", "population", "trials"]


def _call(kind, seed, backend, threads=None):
    w, a, w_star, a_star = _problem(seed)
    if kind == "sample":
        return sn.sample_inputs(MODEL, 3000, seed, dtype=np.float32, backend=backend, threads=threads)
    if kind in ("predict", "sampled"):
        Z = sn.sample_inputs(MODEL, 3000, seed, backend="numpy")
        if kind == "predict":
            return sn.predict(MODEL, w, a, Z, backend=backend, threads=threads)
        return sn.sampled_loss_grad(MODEL, w, a, Z, Z[:, 0, 0], backend=backend, threads=threads)
    if kind == "stochastic":
        return sn.stochastic_loss_grad(MODEL, w, a, w_star, a_star, 3000, seed, backend=backend, threads=threads)
    if kind == "population":
        return sn.population_loss_grad(MODEL, w, a, w_star, a_star, backend=backend)
    model = sn.Model(10, 5)
    rng = np.random.default_rng(seed)
    out = sn.run_trials(model, rng.normal(size=(20, 5)), rng.normal(size=(20, 10)), np.zeros((20, 5)),
                        np.zeros((20, 10)), steps=100, lr=0.1, threads=threads, backend=backend)
    return out.loss, out.w, out.a


def _same(x, y):
    if isinstance(x, tuple):
        return all(_same(u, v) for u, v in zip(x, y))
    return np.array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_threads_give_the_serial_results(kind, backend):
    if backend not in sn.backends():
        pytest.skip(f"backend {backend!r} is not available here")
    seeds = list(range(6))
    serial = [_call(kind, seed, backend) for seed in seeds]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda seed: _call(kind, seed, backend), seeds))
    assert all(_same(x, y) for x, y in zip(serial, threaded))


# Every kernel of the Numba backend from four Python threads at once, under one threading layer.
LAYER_SCRIPT = r"""
import sys
from concurrent.futures import ThreadPoolExecutor
import numba
sys.path.insert(0, sys.argv[1])
import test_concurrency as t
for kind in t.KINDS:
    serial = [t._call(kind, seed, "numba") for seed in range(6)]
    for _ in range(2):
        with ThreadPoolExecutor(max_workers=4) as pool:
            threaded = list(pool.map(lambda seed: t._call(kind, seed, "numba"), range(6)))
        assert all(t._same(x, y) for x, y in zip(serial, threaded)), kind
print(numba.threading_layer())
"""


@pytest.mark.parametrize("layer", ["workqueue", "omp", "tbb"])
def test_numba_backend_is_thread_safe_under_every_threading_layer(layer):
    if "numba" not in sn.backends():
        pytest.skip("the numba backend is not available here")
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS="2")
    probe = subprocess.run([sys.executable, "-c", LAYER_PROBE], env=env, capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"threading layer {layer!r} cannot be loaded here")
    done = subprocess.run([sys.executable, "-c", LAYER_SCRIPT, os.path.dirname(__file__)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == layer


# Whether a parallel region can run under the layer of NUMBA_THREADING_LAYER.
LAYER_PROBE = r"""
import numpy as np
from numba import njit, prange
@njit(parallel=True)
def total(x):
    s = 0.0
    for i in prange(x.shape[0]):
        s += x[i]
    return s
total(np.ones(100))
"""


def test_the_gil_is_released_inside_a_kernel():
    # While one thread is inside a long compiled call, a pure-Python thread must keep running.
    w, a, w_star, a_star = _problem(0)
    ticks = 0
    started = threading.Event()
    stop = threading.Event()

    def count():
        nonlocal ticks
        started.set()
        while not stop.is_set():
            ticks += 1

    counter = threading.Thread(target=count)
    counter.start()
    started.wait()
    try:
        before = ticks
        t0 = time.perf_counter()
        sn.stochastic_loss_grad(MODEL, w, a, w_star, a_star, 150000, 1, backend="cpp", threads=1)
        elapsed = time.perf_counter() - t0
        during = ticks - before
    finally:
        stop.set()
        counter.join()
    # A held GIL would allow at most a handful of ticks (one switch interval, 5 ms, at the start).
    assert elapsed > 0.02
    assert during > 1000


def _busy_machine():
    return hasattr(os, "getloadavg") and os.getloadavg()[0] > 3.0


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to run two kernels at once")
def test_two_threads_overlap_in_wall_time():
    if _busy_machine():
        pytest.skip(f"other processes keep the cores busy (load average {os.getloadavg()[0]:.1f})")
    w, a, w_star, a_star = _problem(0)

    def work(seed):
        return sn.stochastic_loss_grad(MODEL, w, a, w_star, a_star, 150000, seed, backend="cpp", threads=1)

    work(0)  # warm up
    best_ratio = np.inf
    for _ in range(5):  # the best of a few attempts: other processes may share the cores
        t0 = time.perf_counter()
        work(1)
        work(2)
        serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(work, [1, 2]))
        parallel = time.perf_counter() - t0
        best_ratio = min(best_ratio, parallel / serial)
        if best_ratio < 0.8:
            break
    assert best_ratio < 0.8, f"two threads took {best_ratio:.2f} of the serial time"
