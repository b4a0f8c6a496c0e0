"""The Numba backend: adaptors over the ``@njit`` kernels of ``numba_population`` and friends."""
from __future__ import annotations

import numpy as np

from . import numba_population as _pop

NAME = "numba"


def population_loss_grad(s, w, a, w_star, a_star, stride, normalize, want_grad=True):
    grad_w = np.empty_like(w)
    grad_a = np.empty_like(a)
    loss = _pop.population_loss_grad_into(s, w, a, w_star, a_star, int(stride), bool(normalize), bool(want_grad), grad_w, grad_a)
    if not want_grad:
        return float(loss), None, None
    return float(loss), grad_w, grad_a


def angle(x, y):
    return float(_pop.angle(x, y))


def spurious_second_layer(a_star):
    return _pop.spurious_second_layer(a_star)


def train_population(s, w0, a0, w_star, a_star, stride, normalize, rates, steps, tol, record_every, thresholds):
    """One exact-GD trial in the @njit engine: (w, a, steps, steps_to_tol, outcome, loss, phi, history)."""
    from .. import outcomes
    from . import numba_trials

    w, a, steps, steps_to_tol, loss, phi, history = numba_trials.train_population(
        s, w0, a0, w_star, a_star, stride, normalize, rates, steps, tol, record_every, thresholds[4]
    )
    code = outcomes.classify_raw(s, stride, normalize, w[None], a[None], w_star[None], a_star[None],
                                 np.array([loss]), np.array([phi]), outcomes.Thresholds(*thresholds))[0]
    return w, a, steps, steps_to_tol, int(code), loss, phi, history


def run_trials(s, w0, a0, w_star, a_star, stride, normalize, rates, steps, tol, thresholds, threads):
    """B exact-GD trials, parallel over trials: (outcome, phi, loss, steps_to_tol, w, a, steps)."""
    from .. import outcomes
    from . import numba_trials

    threads = numba_trials.max_threads() if threads is None else int(threads)
    phi, loss, steps_to_tol, w, a, steps = numba_trials.run_trials(
        s, w0, a0, w_star, a_star, stride, normalize, rates, steps, tol, thresholds[4], threads
    )
    code = outcomes.classify_raw(s, stride, normalize, w, a, w_star, a_star, loss, phi, outcomes.Thresholds(*thresholds))
    return code, phi, loss, steps_to_tol, w, a, steps
