"""The C++ backend: thin adaptors over the compiled module ``shortcutnet._core``."""
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


def train_population(s, w0, a0, w_star, a_star, stride, normalize, rates, steps, tol, record_every, thresholds):
    """One exact-GD trial in the compiled engine: (w, a, steps, steps_to_tol, outcome, loss, phi, history).

    rates: (n, 2) per-step (lr_w, lr_a), 1 <= n <= steps, the last row repeating.
    """
    return _core.train_population(s, w0, a0, w_star, a_star, stride, normalize, rates, steps, tol, record_every,
                                  thresholds)


def run_trials(s, w0, a0, w_star, a_star, stride, normalize, rates, steps, tol, thresholds, threads):
    """B exact-GD trials: (outcome, phi, loss, steps_to_tol, w, a, steps)."""
    if threads is None:
        threads = _core.default_threads()
    return _core.run_trials(s, w0, a0, w_star, a_star, stride, normalize, rates, steps, tol, thresholds, threads)
