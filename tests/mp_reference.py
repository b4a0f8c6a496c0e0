"""The closed forms of MODEL.md section 2 (normalized model, stride >= p) in 50-digit mpmath,
evaluated on the exact values of float64 inputs."""
from __future__ import annotations

import mpmath
from mpmath import mp

mp.dps = 50


def mp_vector(x):
    return [mpmath.mpf(float(t)) for t in x]


def mp_dot(x, y):
    return mpmath.fsum(a * b for a, b in zip(x, y))


def mp_angle(x, y):
    """atan2(|y - (x.y) x/|x|^2| |x|, x.y) on the exact inputs."""
    x, y = mp_vector(x), mp_vector(y)
    xx, xy = mp_dot(x, x), mp_dot(x, y)
    perp = [b - xy / xx * a for a, b in zip(x, y)]
    return mpmath.atan2(mpmath.sqrt(mp_dot(perp, perp) * xx), xy)


def mp_loss_grad_w(s, w, a, w_star, a_star):
    """Normalized model: L and dL/dw, from the exact float64 values of the inputs."""
    s, w, w_star = mp_vector(s), mp_vector(w), mp_vector(w_star)
    a, a_star = mp_vector(a), mp_vector(a_star)
    u = [x + y for x, y in zip(w, s)]
    u_star = [x + y for x, y in zip(w_star, s)]
    rho, rho_star = mpmath.sqrt(mp_dot(u, u)), mpmath.sqrt(mp_dot(u_star, u_star))
    v = [t / rho for t in u]
    v_star = [t / rho_star for t in u_star]
    cos = mp_dot(v, v_star)
    perp = [x - cos * y for x, y in zip(v_star, v)]  # v* - (v.v*) v
    phi = mpmath.atan2(mpmath.sqrt(mp_dot(perp, perp)), cos)
    g = (mp.pi - phi) * mpmath.cos(phi) + mpmath.sin(phi)
    diff = [x - y for x, y in zip(a, a_star)]
    a_dot = mp_dot(a, a_star)
    loss = (mpmath.fsum(diff) ** 2 + (mp.pi - 1) * mp_dot(diff, diff) + 2 * (mp.pi - g) * a_dot) / (4 * mp.pi)
    grad_w = [-a_dot * (mp.pi - phi) / (2 * mp.pi * rho) * t for t in perp]
    return loss, grad_w, phi
