"""The C++ backend: thin adaptors over the compiled module ``shortcutnet._core``.

Its arrays are validated (backends/__init__.py): the engines' entries have been checked by the
caller's scan_rows, so the engines are told not to read them a second time (``scanned=True``).
"""
from __future__ import annotations

from .. import _core

NAME = "cpp"


def population_loss_grad(s, w, a, w_star, a_star, stride, normalize, want_grad=True):
    out = _core.population_loss_grad(s, w, a, w_star, a_star, stride, normalize, want_grad)
    return out if want_grad else (out, None, None)


def angle(x, y):
    return _core.angle(x, y)


def spurious_second_layer(a_star):
    return _core.spurious_second_layer(a_star)


def run_engine(s, stride, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer, gradient,
               batch_size, n_train, seeds, dtype, record_every, threads):
    """B trials of any optimizer and gradient source in the compiled engine (docs/training.md):
    (outcome, phi, loss, steps_to_tol, steps, w, a, train_loss, history or None)."""
    if threads is None:
        threads = _core.default_threads()
    return _core.run_engine(s, stride, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer,
                            gradient, batch_size, n_train, seeds, _dtype_name(dtype), record_every, threads,
                            scanned=True)


def run_reduced(s, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer, record_every, threads):
    """B trials of population gd or momentum in the compiled reduced engine (docs/reduced.md); the
    results of run_engine.  w_star, a_star: (B, .) or (1, .) for one teacher shared by all trials."""
    if threads is None:
        threads = _core.default_threads()
    return _core.run_reduced(s, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer,
                             record_every, threads, scanned=True)


def scan_rows(x, s=None, threads=None):
    """reference.scan_rows in one pass of compiled code, its blocks of rows on `threads` threads
    (default: all; the answer does not depend on them)."""
    return _core.scan_rows(x, s, _core.default_threads() if threads is None else threads)


# --------------------------------------------------------------------------- sampled kernels
def _dtype_name(dtype):
    import numpy as np

    return np.dtype(dtype).name


def predict(s, w, a, X, k, p, stride, normalize, threads):
    return _core.predict(s, w, a, X, k, p, stride, normalize, threads)


def sampled_loss_grad(s, w, a, X, y, k, p, stride, normalize, threads):
    return _core.sampled_loss_grad(s, w, a, X, y, k, p, stride, normalize, threads)


def sample_inputs(n, d, seed, dtype, threads):
    return _core.sample_inputs(n, d, seed, _dtype_name(dtype), threads)


def stochastic_loss_grad(s, w, a, w_star, a_star, n, k, p, stride, normalize, seed, dtype, threads):
    return _core.stochastic_loss_grad(
        s, w, a, w_star, a_star, n, k, p, stride, normalize, seed, _dtype_name(dtype), threads
    )
