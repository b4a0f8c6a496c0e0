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
