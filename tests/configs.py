"""Random configurations (model, w, a, w_star, a_star) for the tests."""
from __future__ import annotations

import numpy as np

import shortcutnet as sn

# (k, p, shortcut, normalize, stride): every combination the closed forms distinguish.
MODEL_CASES = [
    (4, 3, "on", True, None),
    (5, 4, "off", True, None),
    (4, 3, "custom", True, None),
    (4, 3, "on", False, None),
    (3, 4, "off", False, None),
    (5, 3, "custom", False, None),
    (4, 5, "on", True, 2),  # overlapping patches
    (3, 4, "custom", True, 1),
    (4, 5, "off", False, 3),
    (3, 4, "on", False, 1),
    (3, 3, "on", True, 5),  # gaps between patches (stride > p)
    (4, 3, "custom", False, 4),
]


def case_id(case) -> str:
    k, p, shortcut, normalize, stride = case
    return f"k{k}-p{p}-s_{shortcut}-{'norm' if normalize else 'raw'}-stride{stride or p}"


def make_model(rng, k, p, shortcut="on", normalize=True, stride=None) -> sn.Model:
    if shortcut == "on":
        s = True
    elif shortcut == "off":
        s = False
    else:
        s = rng.normal(size=p) / np.sqrt(p)
    return sn.Model(k, p, shortcut=s, normalize=normalize, stride=stride)


def draw_parameters(rng, model):
    """w, a, w_star, a_star with entries of natural size: filters ~ N(0, I/p), layers ~ N(0, I)."""
    p, k = model.p, model.k
    w = rng.normal(size=p) / np.sqrt(p)
    w_star = rng.normal(size=p) / np.sqrt(p)
    return w, rng.normal(size=k), w_star, rng.normal(size=k)


def random_config(rng, case):
    model = make_model(rng, *case)
    return (model, *draw_parameters(rng, model))


def unit_orthogonal(rng, x):
    """A random unit vector orthogonal to x."""
    x_hat = x / np.linalg.norm(x)
    r = rng.normal(size=x.shape)
    r -= (r @ x_hat) * x_hat
    r -= (r @ x_hat) * x_hat
    return r / np.linalg.norm(r)


def rotated(rng, u_star, phi, scale=1.0):
    """A vector at angle phi from u_star (up to rounding), of norm scale * |u_star|."""
    n = np.linalg.norm(u_star)
    return scale * n * (np.cos(phi) * (u_star / n) + np.sin(phi) * unit_orthogonal(rng, u_star))


def with_angle(rng, model, w_star, phi, scale=1.0):
    """A first layer w with angle(w + s, w_star + s) = phi up to rounding."""
    return rotated(rng, w_star + model.s, phi, scale) - model.s
