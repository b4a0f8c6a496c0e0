"""Shared cases and slow, readable oracles for the sampled-kernel tests."""
from __future__ import annotations

import math

import numpy as np
import pytest

import shortcutnet as sn

BACKENDS = ["cpp", "numba", "numpy"]
DTYPES = [np.float32, np.float64]

# Relative tolerance against a scale built from absolute values (see loop_loss_grad): float64
# kernels agree to rounding; float32 data may be accumulated in float32 by a backend.
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 3e-5}

# (k, p, shortcut, normalize, stride): ResNet and CNN, normalized or not, non-overlapping,
# overlapping (stride < p) and gapped (stride > p) patches, p both a multiple of 8 and not.
MODEL_CASES = {
    "resnet": (6, 5, True, True, None),
    "cnn": (6, 5, False, True, None),
    "resnet-unnormalized": (6, 5, True, False, None),
    "cnn-unnormalized-p16": (3, 16, False, False, None),
    "overlapping": (5, 9, True, True, 3),
    "gapped": (4, 3, True, True, 5),
    "custom-shortcut-p11": (7, 11, "custom", True, None),
}


def make_model(case: str) -> sn.Model:
    k, p, shortcut, normalize, stride = MODEL_CASES[case]
    if shortcut == "custom":
        shortcut = np.linspace(-0.5, 1.0, p)
    return sn.Model(k, p, shortcut=shortcut, normalize=normalize, stride=stride)


def make_parameters(model: sn.Model, rng):
    """Student (w, a) and teacher (w*, a*) with moderate sizes and a non-trivial angle."""
    w = 0.5 * rng.normal(size=model.p)
    a = rng.normal(size=model.k)
    w_star = rng.normal(size=model.p)
    a_star = rng.normal(size=model.k)
    return w, a, w_star, a_star


def backend_or_skip(name: str):
    """The backend module; a backend that cannot load on this machine is skipped, not failed."""
    if name not in sn.backends():
        pytest.skip(f"backend {name!r} is not available here")
    return name


def raw_patches(model: sn.Model, X: np.ndarray) -> np.ndarray:
    """(n, k, p) float64 copy of the patches, by explicit slicing."""
    X = np.asarray(X, dtype=np.float64).reshape(X.shape[0], model.d)
    return np.stack([X[:, j * model.stride : j * model.stride + model.p] for j in range(model.k)], axis=1)


def direction(model: sn.Model, w):
    u = np.asarray(w, dtype=np.float64) + model.s
    norm = math.sqrt(float(u @ u))
    return (u / norm if model.normalize else u), norm


def loop_loss_grad(model: sn.Model, w, a, X, y):
    """docs/model.md, "Losses on a finite batch" by a per-sample loop in float64, and error scales for each output.

    The scales are the same sums with every term replaced by its absolute value: a rounding
    error of relative size eps in any term moves the result by at most about eps * scale.
    """
    P = raw_patches(model, X)
    y = np.asarray(y, dtype=np.float64)
    v, norm_u = direction(model, w)
    n = P.shape[0]
    loss = 0.0
    G = np.zeros(model.p)
    grad_a = np.zeros(model.k)
    s_loss = 0.0
    s_G = np.zeros(model.p)
    s_a = np.zeros(model.k)
    f_all = np.zeros(n)
    s_f = np.zeros(n)
    for i in range(n):
        h = np.array([float(P[i, j] @ v) for j in range(model.k)])
        h_abs = np.array([float(np.abs(P[i, j]) @ np.abs(v)) for j in range(model.k)])
        f = float(sum(a[j] * max(h[j], 0.0) for j in range(model.k)))
        f_all[i] = f
        s_f[i] = float(np.abs(a) @ h_abs)
        r = f - y[i]
        r_scale = s_f[i] + abs(y[i])
        loss += 0.5 * r * r
        s_loss += abs(r) * r_scale
        for j in range(model.k):
            if h[j] > 0.0:
                grad_a[j] += r * h[j]
                G += r * a[j] * P[i, j]
                s_G += r_scale * abs(a[j]) * np.abs(P[i, j])
            s_a[j] += r_scale * max(h[j], 0.0) + abs(r) * h_abs[j]
    loss, G, grad_a = loss / n, G / n, grad_a / n
    s_loss, s_G, s_a = s_loss / n, s_G / n, s_a / n
    if model.normalize:
        grad_w = (G - float(v @ G) * v) / norm_u
        s_w = (s_G + float(np.abs(v) @ s_G) * np.abs(v)) / norm_u
    else:
        grad_w, s_w = G, s_G
    return {
        "loss": loss, "grad_w": grad_w, "grad_a": grad_a, "f": f_all,
        "scale_loss": s_loss, "scale_w": s_w, "scale_a": s_a, "scale_f": s_f,
    }


def assert_within(name, got, want, scale, rtol):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    bound = rtol * (np.asarray(scale, dtype=np.float64) + 1e-300)
    err = np.abs(got - want)
    worst = np.max(err / bound) if err.size else 0.0
    assert np.all(err <= bound), f"{name}: error up to {worst:.3g} x the bound (rtol {rtol:g}); got {got}, want {want}"


def assert_matches_loop(result, ref, dtype, rtol=None):
    rtol = RTOL[np.dtype(dtype)] if rtol is None else rtol
    loss, grad_w, grad_a = result
    assert isinstance(loss, float)
    assert grad_w.dtype == np.float64 and grad_a.dtype == np.float64
    assert_within("loss", loss, ref["loss"], ref["scale_loss"], rtol)
    assert_within("grad_w", grad_w, ref["grad_w"], ref["scale_w"], rtol)
    assert_within("grad_a", grad_a, ref["grad_a"], ref["scale_a"], rtol)
