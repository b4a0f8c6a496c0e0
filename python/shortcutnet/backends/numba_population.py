"""Population loss and gradient as plain ``@njit`` functions (docs/model.md, "Closed forms under Gaussian input").

These mirror ``cpp/shortcutnet/population.hpp`` line for line and can be called from a user's
own ``@njit`` code: all arguments are float64 arrays and plain scalars.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import numba_cache  # noqa: F401  (before any kernel: its cache stamps every backend source)

PI = math.pi
TWO_PI = 2.0 * math.pi
INV_TWO_PI = 1.0 / TWO_PI  # as population.hpp: multiplications instead of divisions by 2 pi
ACCURATE_COS = 0.75
_SPLITTER = 134217729.0  # 2**27 + 1 (Veltkamp split)

_opts = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


@njit(**_opts)
def two_prod(a, b):
    """a*b == hi + lo exactly (Dekker's product, no FMA needed)."""
    hi = a * b
    ca = _SPLITTER * a
    a_hi = ca - (ca - a)
    a_lo = a - a_hi
    cb = _SPLITTER * b
    b_hi = cb - (cb - b)
    b_lo = b - b_hi
    lo = ((a_hi * b_hi - hi) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return hi, lo


@njit(**_opts)
def dot(x, y):
    acc = 0.0
    for i in range(x.shape[0]):
        acc += x[i] * y[i]
    return acc


@njit(**_opts)
def pow2_normalizer(x):
    """2^(1-e) for max|x_i| = m 2^e, m in [1/2, 1): an exact rescaling that keeps squares finite."""
    m = 0.0
    for i in range(x.shape[0]):
        m = max(m, abs(x[i]))
    if not (m > 0.0):
        return 1.0
    _, e = math.frexp(m)
    return math.ldexp(1.0, min(1 - e, 1023))


@njit(**_opts)
def safe_norm(x):
    """Euclidean norm without overflow or underflow of the squares, for any finite scale of x."""
    sx = pow2_normalizer(x)
    acc = 0.0
    for i in range(x.shape[0]):
        acc += (sx * x[i]) * (sx * x[i])
    return math.sqrt(acc) / sx


@njit(**_opts)
def angle_parts(x, y, perp):
    """(phi, r, sx, sy): the angle between x and y by atan2, |sx x| |sy y| and the powers of two
    sx, sy that bring the largest entries of x and y into [1, 2); perp receives the component of
    sy y orthogonal to x (entries that cannot underflow).

    Near 0 and pi, each y_i - c x_i uses the exact product c x_i and a second projection removes
    the rounding of c (parallel to x), as in population.hpp: a few ulps, O(n).  The rescaling is
    exact, so any finite scale works.
    """
    n = x.shape[0]
    sx = pow2_normalizer(x)
    sy = pow2_normalizer(y)
    xx = 0.0
    xy = 0.0
    yy = 0.0
    for i in range(n):
        xx += (sx * x[i]) * (sx * x[i])
        xy += (sx * x[i]) * (sy * y[i])
        yy += (sy * y[i]) * (sy * y[i])
    if abs(xy) > ACCURATE_COS * math.sqrt(xx * yy):
        inv_xx = 1.0 / xx  # the rounding of c is projected out: c and c2 share it
        c = xy * inv_xx
        c2 = 0.0
        for i in range(n):
            p_hi, p_lo = two_prod(c, sx * x[i])
            perp[i] = (sy * y[i] - p_hi) - p_lo
            c2 += (sx * x[i]) * perp[i]
        c2 *= inv_xx
        for i in range(n):
            perp[i] -= c2 * (sx * x[i])
    else:
        c = xy / xx
        for i in range(n):
            perp[i] = sy * y[i] - c * (sx * x[i])
    sin_sq = dot(perp, perp) * xx
    return math.atan2(math.sqrt(sin_sq), xy), math.sqrt(sin_sq + xy * xy), sx, sy


@njit(**_opts)
def angle_and_perp(x, y, perp):
    """Angle between x and y by atan2; perp receives the component of y orthogonal to x (angle_parts)."""
    phi, _, _, sy = angle_parts(x, y, perp)
    for i in range(x.shape[0]):
        perp[i] /= sy
    return phi


@njit(**_opts)
def angle(x, y):
    perp = np.empty_like(x)
    return angle_and_perp(x, y, perp)


@njit(**_opts)
def pi_minus_g(phi):
    """pi - g(phi) without cancellation near 0 (series for phi cos(phi) - sin(phi))."""
    h = math.sin(0.5 * phi)
    head = TWO_PI * h * h
    if phi < 0.5:
        term = phi
        tail = 0.0
        phi2 = phi * phi
        for n in range(1, 12):
            term *= -phi2 * (1.0 / ((2 * n) * (2 * n + 1)))
            tail += 2 * n * term
        return head + tail
    return head + (phi * math.cos(phi) - math.sin(phi))


@njit(**_opts)
def kappa(r):
    r = min(1.0, max(-1.0, r))
    root = math.sqrt(max(0.0, 1.0 - r * r))
    return (root + (PI - math.atan2(root, r)) * r) / TWO_PI


@njit(**_opts)
def kappa_prime(r):
    r = min(1.0, max(-1.0, r))
    root = math.sqrt(max(0.0, 1.0 - r * r))
    return (PI - math.atan2(root, r)) / TWO_PI


@njit(**_opts)
def _shifted_dot(x, y, delta):
    p = x.shape[0]
    acc = 0.0
    for t in range(max(0, delta), min(p, p + delta)):
        acc += x[t] * y[t - delta]
    return acc


@njit(**_opts)
def _pair_term(x, y, nx, ny, delta, scale, grad, want_grad):
    """Value |x||y| kappa(C_xy(delta)/(|x||y|)); adds scale * its gradient in x to grad."""
    p = x.shape[0]
    r = _shifted_dot(x, y, delta) / nx / ny
    value = nx * ny * kappa(r)
    if want_grad and scale != 0.0:
        root = math.sqrt(max(0.0, 1.0 - min(1.0, r * r)))
        cx = scale * (ny / nx) * (root / TWO_PI)
        cy = scale * kappa_prime(r)
        for t in range(p):
            grad[t] += cx * x[t]
        for t in range(max(0, delta), min(p, p + delta)):
            grad[t] += cy * y[t - delta]
    return value


@njit(**_opts)
def _non_overlapping(u, u_star, a, a_star, normalize, want_grad, grad_w, grad_a, perp):
    k = a.shape[0]
    p = u.shape[0]
    rho = safe_norm(u)
    rho_star = safe_norm(u_star)
    phi, r, sx, sy = angle_parts(u, u_star, perp)  # perp: of sy u*
    a_dot = dot(a, a_star)
    pmg = pi_minus_g(phi)
    cs = 1.0 if normalize else rho
    ct = 1.0 if normalize else rho_star
    sum_diff = 0.0
    sq_diff = 0.0
    sum_a = 0.0
    sum_a_star = 0.0
    sq_a = 0.0
    for j in range(k):
        d = cs * a[j] - ct * a_star[j]
        sum_diff += d
        sq_diff += d * d
        sum_a += a[j]
        sum_a_star += a_star[j]
        sq_a += a[j] * a[j]
    loss = (sum_diff * sum_diff + (PI - 1.0) * sq_diff + 2.0 * cs * ct * pmg * a_dot) / (4.0 * PI)
    if not want_grad:
        return loss
    g = PI - pmg
    if normalize:
        for j in range(k):
            grad_a[j] = (sum_diff + (PI - 1.0) * a[j] - (g - 1.0) * a_star[j]) * INV_TWO_PI
        # -(a.a*)(pi - phi)/(2 pi |u|) (v* - (v.v*) v) from the rescaled sides, |u| |u*| = r/(sx sy):
        # nothing over- or underflows but the gradient itself (~ 1/|u|).
        c = -a_dot * (PI - phi) / (TWO_PI * r)
        for t in range(p):
            grad_w[t] = (c * perp[t]) * sx
    else:
        for j in range(k):
            grad_a[j] = (
                rho * rho * (sum_a + (PI - 1.0) * a[j]) - rho * rho_star * (sum_a_star + (g - 1.0) * a_star[j])
            ) / TWO_PI
        cu = sum_a * sum_a + (PI - 1.0) * sq_a
        c_hat = -rho_star * (sum_a * sum_a_star - a_dot) - rho_star * a_dot * math.sin(phi)
        c_star = -a_dot * (PI - phi)
        for t in range(p):
            grad_w[t] = (cu * u[t] + c_hat * (u[t] / rho) + c_star * u_star[t]) / TWO_PI
    return loss


@njit(**_opts)
def _overlapping(u, u_star, a, a_star, stride, normalize, want_grad, grad_w, grad_a):
    k = a.shape[0]
    p = u.shape[0]
    rho = safe_norm(u)
    rho_star = safe_norm(u_star)
    e = np.empty(p)
    e_star = np.empty(p)
    grad_e = np.zeros(p)
    for t in range(p):
        e[t] = u[t] / rho if normalize else u[t]
        e_star[t] = u_star[t] / rho_star if normalize else u_star[t]
    ne = safe_norm(e)
    ne_star = safe_norm(e_star)
    if want_grad:
        for j in range(k):
            grad_a[j] = 0.0
    loss = 0.0
    for m in range(-(k - 1), k):
        delta = m * stride
        i_lo = max(0, -m)
        i_hi = min(k, k - m)
        c_aa = 0.0
        c_as = 0.0
        c_ss = 0.0
        for i in range(i_lo, i_hi):
            c_aa += a[i] * a[i + m]
            c_as += a[i] * a_star[i + m]
            c_ss += a_star[i] * a_star[i + m]
        g_ee = _pair_term(e, e, ne, ne, delta, 0.5 * c_aa, grad_e, want_grad)
        if want_grad:
            _pair_term(e, e, ne, ne, -delta, 0.5 * c_aa, grad_e, True)
        g_es = _pair_term(e, e_star, ne, ne_star, delta, -c_as, grad_e, want_grad)
        g_ss = _pair_term(e_star, e_star, ne_star, ne_star, delta, 0.0, grad_e, False)
        loss += 0.5 * (c_aa * g_ee - 2.0 * c_as * g_es + c_ss * g_ss)
        if want_grad:
            for i in range(i_lo, i_hi):
                grad_a[i] += a[i + m] * g_ee - a_star[i + m] * g_es
    loss = max(loss, 0.0)
    if want_grad:
        if normalize:
            c = dot(e, grad_e)
            for t in range(p):
                grad_w[t] = (grad_e[t] - c * e[t]) / rho
        else:
            for t in range(p):
                grad_w[t] = grad_e[t]
    return loss


@njit(**_opts)
def population_loss_grad_into(s, w, a, w_star, a_star, stride, normalize, want_grad, grad_w, grad_a):
    """Population loss; fills grad_w (p,) and grad_a (k,) when want_grad.  Requires w + s != 0."""
    p = w.shape[0]
    u = np.empty(p)
    u_star = np.empty(p)
    for t in range(p):
        u[t] = w[t] + s[t]
        u_star[t] = w_star[t] + s[t]
    if stride >= p:
        perp = np.empty(p)
        return _non_overlapping(u, u_star, a, a_star, normalize, want_grad, grad_w, grad_a, perp)
    return _overlapping(u, u_star, a, a_star, stride, normalize, want_grad, grad_w, grad_a)


@njit(**_opts)
def spurious_second_layer(a_star):
    k = a_star.shape[0]
    c = PI / (PI - 1.0 + k) * a_star.sum()
    return (c - a_star) / (PI - 1.0)
