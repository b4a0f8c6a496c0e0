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
