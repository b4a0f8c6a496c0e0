"""Seeded teacher-student problems of docs/model.md, "The paper's claim and the experiments", shared by the training tests."""
from __future__ import annotations

import numpy as np

import shortcutnet as sn

BACKENDS = ("cpp", "numba", "numpy")


def available(backend):
    return backend in sn.backends()


def teacher(model, rng, size=None):
    """a* ~ N(0, I); filter direction random: w* ~ N(0, I) for the CNN, N(0, 0.25/p I) for the ResNet."""
    shape_a = (model.k,) if size is None else (size, model.k)
    shape_w = (model.p,) if size is None else (size, model.p)
    a_star = rng.standard_normal(shape_a)
    scale = np.sqrt(0.25 / model.p) if model.has_shortcut else 1.0
    w_star = scale * rng.standard_normal(shape_w)
    return w_star, a_star


def problem(model, seed, size=None):
    """(w_star, a_star, w0, a0): paper's initialization (w0 = 0 with a shortcut, sphere without)."""
    rng = np.random.default_rng(seed)
    w_star, a_star = teacher(model, rng, size)
    kind = "zero" if model.has_shortcut else "sphere"
    w0 = sn.init_first_layer(model, kind, rng, size=size)
    a0 = sn.init_second_layer(model, a_star, rng, size=None if a_star.ndim == 2 else size)
    return w_star, a_star, w0, a0
