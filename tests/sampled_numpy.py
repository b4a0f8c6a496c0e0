"""The sampled loss and gradient of docs/model.md, "Losses on a finite batch" in plain NumPy, per sample, used as an
independent oracle: Monte Carlo against the closed forms, and PyTorch autograd against it."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def draw_patches(rng, model, n):
    """n Gaussian inputs as patches, shape (n, k, p); overlapping models slide over a raw x (n, d)."""
    if model.stride == model.p:
        return rng.standard_normal((n, model.k, model.p))
    x = rng.standard_normal((n, model.d))
    return sliding_window_view(x, model.p, axis=1)[:, :: model.stride]


def directions(model, w, w_star):
    u, u_star = w + model.s, w_star + model.s
    if model.normalize:
        return u, u / np.linalg.norm(u), u_star / np.linalg.norm(u_star)
    return u, u, u_star


def per_sample(model, w, a, w_star, a_star, Z):
    """Per-sample loss (n,), grad_w (n, p), grad_a (n, k) for patches Z (n, k, p)."""
    u, v, v_star = directions(model, w, w_star)
    h = Z @ v
    relu_h = np.maximum(h, 0.0)
    y = np.maximum(Z @ v_star, 0.0) @ a_star
    r = relu_h @ a - y
    grad_a = r[:, None] * relu_h
    G = r[:, None] * np.einsum("nk,nkp->np", (h > 0) * a, Z)
    if model.normalize:
        grad_w = (G - (G @ v)[:, None] * v) / np.linalg.norm(u)
    else:
        grad_w = G
    return 0.5 * r * r, grad_w, grad_a


def monte_carlo(model, w, a, w_star, a_star, n, rng, chunk=100_000):
    """Sample means and standard errors of (loss, grad_w..., grad_a...) as flat vectors."""
    total = np.zeros(1 + model.p + model.k)
    total_sq = np.zeros_like(total)
    done = 0
    while done < n:
        m = min(chunk, n - done)
        loss, grad_w, grad_a = per_sample(model, w, a, w_star, a_star, draw_patches(rng, model, m))
        values = np.column_stack([loss, grad_w, grad_a])
        total += values.sum(axis=0)
        total_sq += (values * values).sum(axis=0)
        done += m
    mean = total / n
    var = (total_sq / n - mean * mean) * n / (n - 1)
    return mean, np.sqrt(var / n)
