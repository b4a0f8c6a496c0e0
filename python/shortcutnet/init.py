"""Initializations of the paper's experiments (docs/model.md, "The paper's claim and the experiments").

First layer: ``"zero"`` (the ResNet of Liu et al.: ``w0 = 0``, the filter starts at the shortcut)
or ``"sphere"`` (the plain CNN of Du et al.: ``w0`` uniform on the unit sphere).  Second layer:
uniform in the ball ``B(0, |1^T a*|/sqrt(k))``.  ``rng`` is a ``numpy.random.Generator`` or an
integer seed; ``size=B`` draws a batch with a leading axis B (for ``run_trials``).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ._validation import as_float_array, as_int, describe
from .model import Model, check_model

FIRST_LAYER_KINDS = ("zero", "sphere")


def as_generator(rng) -> np.random.Generator:
    """A numpy Generator from a Generator or an integer seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise ValueError(f"rng: expected a non-negative integer seed, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng: expected a numpy.random.Generator or an integer seed, got {describe(rng)}")


def _size(size):
    return None if size is None else as_int("size", size, minimum=1)


def _unit_vectors(gen: np.random.Generator, n: int, size):
    """Uniform on the unit sphere S^(n-1): a normalized standard normal vector."""
    shape = (n,) if size is None else (size, n)
    while True:
        x = gen.standard_normal(shape)
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        if np.all(norm > 0):  # probability one; redraw the measure-zero case rather than divide by 0
            return x / norm


def init_first_layer(model: Model, kind: str, rng=None, *, size=None) -> np.ndarray:
    """First-layer filter w0, shape (p,) (or (size, p)).

    kind ``"zero"``: w0 = 0, so the effective filter starts at the shortcut s (needs a shortcut);
    kind ``"sphere"``: w0 uniform on the unit sphere (needs ``rng``).
    """
    check_model(model)
    size = _size(size)
    if not isinstance(kind, str):
        raise TypeError(f"kind: expected one of {list(FIRST_LAYER_KINDS)}, got {describe(kind)}")
    if kind == "zero":
        if not model.has_shortcut:
            raise ValueError(
                "kind: 'zero' needs a shortcut (with s = 0 the filter direction w + s is undefined); "
                "use kind='sphere' for the plain CNN"
            )
        return np.zeros(model.p if size is None else (size, model.p))
    if kind == "sphere":
        if rng is None:
            raise TypeError("rng: expected a numpy.random.Generator or an integer seed for kind='sphere', got None")
        w0 = _unit_vectors(as_generator(rng), model.p, size)
        if model.has_shortcut and np.any(np.all(w0 + model.s == 0, axis=-1)):
            raise ValueError("w0: drew w0 = -s (undefined filter direction); use another seed")
        return w0
    raise ValueError(f"kind: expected one of {list(FIRST_LAYER_KINDS)}, got {kind!r}")


def second_layer_radius(a_star) -> np.ndarray:
    """|1^T a*|/sqrt(k): the radius of the paper's initialization ball (over the last axis)."""
    a_star = np.asarray(a_star, dtype=np.float64)
    return np.abs(a_star.sum(-1)) / math.sqrt(a_star.shape[-1])


def init_second_layer(model: Model, a_star, rng, *, size=None) -> np.ndarray:
    """Second layer a0 uniform in volume in the ball B(0, |1^T a*|/sqrt(k)).

    Direction uniform on the sphere, radius R U^(1/k) with U uniform on [0, 1] (the volume of a
    ball grows like r^k).  ``a_star`` of shape (k,) gives a0 of shape (k,), or (size, k) with
    ``size``; ``a_star`` of shape (B, k) gives one draw per row (B, k).
    """
    check_model(model)
    size = _size(size)
    a_star = np.asarray(a_star) if not isinstance(a_star, np.ndarray) else a_star
    if getattr(a_star, "ndim", 0) == 2:
        a_star = as_float_array("a_star", a_star, ndim=2)
        if a_star.shape[1] != model.k:
            raise ValueError(f"a_star: expected shape (B, {model.k}), got shape {a_star.shape}")
        if size is not None and size != a_star.shape[0]:
            raise ValueError(f"size: expected None or {a_star.shape[0]} (the batch of a_star), got {size}")
        size = a_star.shape[0]
    else:
        a_star = as_float_array("a_star", a_star, ndim=1, shape=(model.k,))
    gen = as_generator(rng)
    direction = _unit_vectors(gen, model.k, size)
    u = gen.random(() if size is None else (size,))
    radius = second_layer_radius(a_star) * u ** (1.0 / model.k)
    return direction * np.asarray(radius)[..., None]
