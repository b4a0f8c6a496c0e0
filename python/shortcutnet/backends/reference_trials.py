"""The population loss and gradient of a batch of B trials, vectorized over B with NumPy.

docs/model.md, "Closed forms under Gaussian input"'s closed forms written for arrays of shape (B, p) and (B, k), with the same
accurate angle as ``reference.angle_and_perp`` (exact products, then a second projection); the
NumPy training engine (``reference_engine``) steps with them.  Overlapping patches fall back to a
loop over trials with ``reference.population_loss_grad``.
"""
from __future__ import annotations

import math

import numpy as np

from ..outcomes import norms, pow2_scales
from . import reference

PI = math.pi
TWO_PI = 2.0 * math.pi

def angle_parts(x, y):
    """Row-wise (phi, perp, r, sx, sy) of reference.angle_parts: the angle (B,) between x and y
    (B, n), the part of sy y orthogonal to x (B, n), |sx x| |sy y| (B,), and the powers of two
    sx, sy (B, 1) that bring the largest entries of each row into [1, 2)."""
    sx = pow2_scales(x)[:, None]
    sy = pow2_scales(y)[:, None]
    x = sx * x
    y = sy * y
    xx = (x * x).sum(-1)
    xy = (x * y).sum(-1)
    yy = (y * y).sum(-1)
    c = (xy / xx)[:, None]
    near = np.abs(xy) > reference.ACCURATE_COS * np.sqrt(xx * yy)
    perp = y - c * x
    if near.any():
        inv_xx = 1.0 / xx[near]  # as reference.angle_and_perp
        p_hi, p_lo = reference._two_prod((xy[near] * inv_xx)[:, None], x[near])
        perp_near = (y[near] - p_hi) - p_lo
        perp_near -= ((x[near] * perp_near).sum(-1) * inv_xx)[:, None] * x[near]
        perp[near] = perp_near
    sin_sq = (perp * perp).sum(-1) * xx
    return np.arctan2(np.sqrt(sin_sq), xy), perp, np.sqrt(sin_sq + xy * xy), sx, sy


def angle_and_perp(x, y):
    """Row-wise angle (B,) between x and y (B, n) and the part of y orthogonal to x (B, n), for rows
    of any finite scale."""
    phi, perp, _, _, sy = angle_parts(x, y)
    return phi, perp / sy


def pi_minus_g(phi):
    """Vectorized reference.pi_minus_g."""
    head = TWO_PI * np.sin(0.5 * phi) ** 2
    term = phi.copy()
    tail = np.zeros_like(phi)
    phi2 = phi * phi
    for n in range(1, 12):
        term *= -phi2 * (1.0 / ((2 * n) * (2 * n + 1)))
        tail += 2 * n * term
    return np.where(phi < 0.5, head + tail, head + (phi * np.cos(phi) - np.sin(phi)))


def loss_grad(s, w, a, w_star, a_star, stride, normalize):
    """Population loss (B,) and gradients (B, p), (B, k) of B independent states."""
    p = w.shape[1]
    if stride < p:
        out = [reference.population_loss_grad(s, w[b], a[b], w_star[b], a_star[b], stride, normalize)
               for b in range(w.shape[0])]
        return (np.array([o[0] for o in out]), np.array([o[1] for o in out]), np.array([o[2] for o in out]))
    u = w + s
    u_star = w_star + s
    rho = norms(u)[:, None]
    rho_star = norms(u_star)[:, None]
    phi, perp, r, sx, _ = angle_parts(u, u_star)  # perp: of sy u*
    phi = phi[:, None]
    a_dot = (a * a_star).sum(-1, keepdims=True)
    pmg = pi_minus_g(phi)
    cs, ct = (1.0, 1.0) if normalize else (rho, rho_star)
    diff = cs * a - ct * a_star
    sum_diff = diff.sum(-1, keepdims=True)
    loss = (sum_diff**2 + (PI - 1.0) * (diff * diff).sum(-1, keepdims=True) + 2.0 * cs * ct * pmg * a_dot) / (4.0 * PI)
    g = PI - pmg
    if normalize:
        grad_a = (sum_diff + (PI - 1.0) * a - (g - 1.0) * a_star) * reference.INV_TWO_PI
        grad_w = ((-a_dot * (PI - phi) / (TWO_PI * r[:, None])) * perp) * sx
    else:
        sum_a = a.sum(-1, keepdims=True)
        sum_a_star = a_star.sum(-1, keepdims=True)
        grad_a = (rho * rho * (sum_a + (PI - 1.0) * a) - rho * rho_star * (sum_a_star + (g - 1.0) * a_star)) / TWO_PI
        cu = sum_a**2 + (PI - 1.0) * (a * a).sum(-1, keepdims=True)
        c_hat = -rho_star * (sum_a * sum_a_star - a_dot) - rho_star * a_dot * np.sin(phi)
        grad_w = (cu * u + c_hat * (u / rho) - a_dot * (PI - phi) * u_star) / TWO_PI
    return loss[:, 0], grad_w, grad_a
