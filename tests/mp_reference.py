"""The closed forms of docs/model.md, "Closed forms under Gaussian input" (normalized model, stride >= p) in 50-digit mpmath,
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


def mp_kappa_sum_loss(s, w, a, w_star, a_star, stride, normalize):
    """Any model (docs/model.md, "Closed forms under Gaussian input", last paragraph): L = 1/2 sum_ij E[D_i D_j] with
    D_i = a_i relu(h_i) - a*_i relu(h*_i), E[relu(x) relu(y)] = |x||y| kappa(corr), the
    correlations from shifted dot products.  Valid for every stride (no overlap: corr = 0)."""
    s, w, w_star = mp_vector(s), mp_vector(w), mp_vector(w_star)
    a, a_star = mp_vector(a), mp_vector(a_star)
    p, k = len(s), len(a)
    u = [x + y for x, y in zip(w, s)]
    u_star = [x + y for x, y in zip(w_star, s)]
    if normalize:
        nu, nu_star = mpmath.sqrt(mp_dot(u, u)), mpmath.sqrt(mp_dot(u_star, u_star))
        u = [t / nu for t in u]
        u_star = [t / nu_star for t in u_star]

    def expect(x, y, delta):  # E[relu(<Z_i, x>) relu(<Z_j, y>)], (j - i) * stride = delta
        c = mpmath.fsum(x[t] * y[t - delta] for t in range(max(0, delta), min(p, p + delta)))
        nx, ny = mpmath.sqrt(mp_dot(x, x)), mpmath.sqrt(mp_dot(y, y))
        r = c / (nx * ny)
        r = min(mpmath.mpf(1), max(mpmath.mpf(-1), r))
        return nx * ny * (mpmath.sqrt(1 - r * r) + (mp.pi - mpmath.acos(r)) * r) / (2 * mp.pi)

    total = mpmath.mpf(0)
    for i in range(k):
        for j in range(k):
            delta = (j - i) * stride
            total += (
                a[i] * a[j] * expect(u, u, delta)
                - a[i] * a_star[j] * expect(u, u_star, delta)
                - a_star[i] * a[j] * expect(u_star, u, delta)
                + a_star[i] * a_star[j] * expect(u_star, u_star, delta)
            )
    return total / 2
