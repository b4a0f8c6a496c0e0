"""The Numba backend: adaptors over the ``@njit`` kernels of ``numba_population`` and friends."""
from __future__ import annotations

import numpy as np

from . import numba_population as _pop

NAME = "numba"


def _frozen(x):
    """A read-only view of x.  Numba compiles one specialization per combination of writable
    flags (the model's s is always read-only, user arrays may be either), each costing seconds;
    handing the kernels read-only inputs only keeps that to one."""
    view = x.view()
    view.flags.writeable = False
    return view


def population_loss_grad(s, w, a, w_star, a_star, stride, normalize, want_grad=True):
    grad_w = np.empty(w.shape[0])
    grad_a = np.empty(a.shape[0])
    s, w, a, w_star, a_star = (_frozen(x) for x in (s, w, a, w_star, a_star))
    loss = _pop.population_loss_grad_into(s, w, a, w_star, a_star, int(stride), bool(normalize), bool(want_grad), grad_w, grad_a)
    if not want_grad:
        return float(loss), None, None
    return float(loss), grad_w, grad_a


def angle(x, y):
    return float(_pop.angle(_frozen(x), _frozen(y)))


def spurious_second_layer(a_star):
    return _pop.spurious_second_layer(_frozen(a_star))


def run_engine(s, stride, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer, gradient,
               batch_size, n_train, seeds, dtype, record_every, threads):
    """B trials of docs/training.md, any gradient source and optimizer, parallel over trials
    (see numba_engine.run_engine): (outcome, phi, loss, steps_to_tol, steps, w, a, train_loss, history)."""
    from . import numba_engine

    return numba_engine.run_engine(s, stride, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds,
                                   optimizer, gradient, batch_size, n_train, seeds, dtype, record_every, threads)


def run_reduced(s, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer, record_every, threads):
    """B trials of population gd or momentum in order-parameter coordinates (docs/reduced.md),
    parallel over trials (see numba_reduced.run_reduced)."""
    from . import numba_reduced

    return numba_reduced.run_reduced(s, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer,
                                     record_every, threads)


def scan_rows(x, s=None, threads=None):
    """The input scan of run_trials: NumPy's (reference.scan_rows), which needs no compilation;
    threads is not used."""
    from .reference import scan_rows as numpy_scan_rows

    return numpy_scan_rows(x, s)


# --------------------------------------------------------------------------- sampled kernels
import threading  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import numba  # noqa: E402

from . import numba_sampled as _smp  # noqa: E402

# Threading layers that take parallel regions from several threads at once.  Numba's own fallback,
# workqueue, does not: two threads in its pool at once end the process.  Under any other layer
# (and before the first parallel call, when the layer is not yet chosen) one thread at a time runs
# a parallel kernel and the others run its serial twin, which gives the same bits.
THREAD_SAFE_LAYERS = ("omp", "tbb")
_pool = threading.Lock()


def _layer_is_thread_safe() -> bool:
    try:
        return numba.threading_layer() in THREAD_SAFE_LAYERS
    except ValueError:  # no parallel region has run yet
        return False


@contextmanager
def _thread_count(threads):
    """Run on ``threads`` Numba threads (0: leave the default), restoring the previous count.

    Counts above Numba's pool size (NUMBA_NUM_THREADS) are capped to it; results do not depend
    on the count, only the speed does.
    """
    if not threads:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _launch(parallel, serial, threads, *args):
    """parallel(*args) on Numba's thread pool where that is safe now, else serial(*args)."""
    if threads == 1:
        return serial(*args)
    if _layer_is_thread_safe():
        with _thread_count(threads):
            return parallel(*args)
    if not _pool.acquire(blocking=False):
        return serial(*args)
    try:
        with _thread_count(threads):
            return parallel(*args)
    finally:
        _pool.release()


def predict(s, w, a, X, k, p, stride, normalize, threads=0):
    out = np.empty(X.shape[0], dtype=X.dtype)
    _launch(_smp.predict_into, _smp.predict_serial_into, threads, s, w, a, X, int(k), int(p), int(stride),
            bool(normalize), out)
    return out


def sampled_loss_grad(s, w, a, X, y, k, p, stride, normalize, threads=0):
    grad_w = np.empty(w.shape[0])
    grad_a = np.empty(a.shape[0])
    loss = _launch(_smp.sampled_loss_grad_into, _smp.sampled_loss_grad_serial_into, threads, s, w, a, X, y, int(k),
                   int(p), int(stride), bool(normalize), grad_w, grad_a)
    return float(loss), grad_w, grad_a


def sample_inputs(n, d, seed, dtype, threads=0):
    dtype = np.dtype(dtype)
    X = np.empty((int(n), int(d)), dtype=dtype)
    _launch(_smp.sample_inputs_into, _smp.sample_inputs_serial_into, threads, X, np.uint64(seed),
            dtype == np.float32)
    return X


def stochastic_loss_grad(s, w, a, w_star, a_star, n, k, p, stride, normalize, seed, dtype, threads=0):
    grad_w = np.empty(w.shape[0])
    grad_a = np.empty(a.shape[0])
    single = np.dtype(dtype) == np.float32
    loss = _launch(_smp.stochastic_loss_grad_into, _smp.stochastic_loss_grad_serial_into, threads, s, w, a, w_star,
                   a_star, int(n), int(k), int(p), int(stride), bool(normalize), np.uint64(seed), single, grad_w,
                   grad_a)
    return float(loss), grad_w, grad_a
