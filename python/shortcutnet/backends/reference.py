"""NumPy reference backend: the readable specification every fast backend is tested against.

Every function takes validated, C-contiguous float64 arrays (the public layer in
``shortcutnet.population`` does the checking) and follows ``docs/model.md`` literally.
"""
from __future__ import annotations

import math

import numpy as np

NAME = "numpy"

PI = math.pi
TWO_PI = 2.0 * math.pi
INV_TWO_PI = 1.0 / TWO_PI  # as population.hpp: multiplications instead of divisions by 2 pi
_SPLITTER = 134217729.0  # 2**27 + 1, Veltkamp's constant for splitting a double in halves


# --------------------------------------------------------------------------- accurate angles
def _two_prod(a, b):
    """Error-free product: a*b == hi + lo exactly (Dekker), without relying on an FMA."""
    hi = a * b
    ca = _SPLITTER * a
    a_hi = ca - (ca - a)
    a_lo = a - a_hi
    cb = _SPLITTER * b
    b_hi = cb - (cb - b)
    b_lo = b - b_hi
    lo = ((a_hi * b_hi - hi) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return hi, lo


# Below this |cos|, the plain projection y - (x.y) x / |x|^2 loses no significant digits.
ACCURATE_COS = 0.75


def pow2_normalizer(x):
    """2^(1-e) for max|x_i| = m 2^e, m in [1/2, 1).

    Multiplying by it is exact and brings the largest entry into [1, 2), so that squares neither
    overflow (|x| ~ 1e150) nor underflow (|x| ~ 1e-150); capped at 2^1023 to stay representable.
    """
    m = float(np.max(np.abs(x)))
    if not (m > 0.0):
        return 1.0
    _, e = math.frexp(m)
    return math.ldexp(1.0, min(1 - e, 1023))


def safe_norm(x):
    """Euclidean norm without overflow or underflow of the squares, for any finite scale of x."""
    sx = pow2_normalizer(x)
    return math.sqrt(float((sx * x) @ (sx * x))) / sx


def _dot(x, y):
    """x.y summed left to right, in the order of the compiled kernels."""
    acc = 0.0
    for xi, yi in zip(x.tolist(), y.tolist()):
        acc += xi * yi
    return acc


def angle_parts(x, y):
    """(phi, perp, r, sx, sy): the angle between x and y (by atan2), the component perp of sy y
    orthogonal to x, |sx x| |sy y|, and the powers of two sx, sy that bring the largest entries of
    x and y into [1, 2).

    Near 0 and pi the orthogonal part is a tiny difference of two nearly equal vectors.  There
    each y_i - c x_i is formed from the exact product c x_i (Dekker), so the only error left is
    the rounding of c = x.y / x.x, which lies along x; a second projection removes it ("twice is
    enough", Kahan and Parlett).  The angle and the orthogonal part keep a relative accuracy of
    a few ulps.  x and y are first rescaled by powers of two (exact), so any finite scale works.
    """
    sx = pow2_normalizer(x)
    sy = pow2_normalizer(y)
    x = sx * x
    y = sy * y
    xx = _dot(x, x)
    xy = _dot(x, y)
    yy = _dot(y, y)
    if abs(xy) > ACCURATE_COS * math.sqrt(xx * yy):
        inv_xx = 1.0 / xx  # the rounding of c is projected out: c and the correction share it
        p_hi, p_lo = _two_prod(xy * inv_xx, x)
        perp = (y - p_hi) - p_lo
        perp = perp - (_dot(x, perp) * inv_xx) * x
    else:
        perp = y - (xy / xx) * x
    sin_sq = _dot(perp, perp) * xx
    return math.atan2(math.sqrt(sin_sq), xy), perp, math.sqrt(sin_sq + xy * xy), sx, sy


def angle_and_perp(x, y):
    """Angle between x and y (by atan2) and the component of y orthogonal to x (angle_parts)."""
    phi, perp, _, _, sy = angle_parts(x, y)
    return phi, perp / sy


def angle(x, y):
    return angle_and_perp(x, y)[0]


# --------------------------------------------------------------------------- g(phi)
def pi_minus_g(phi):
    """pi - g(phi), g(phi) = (pi - phi) cos(phi) + sin(phi), without cancellation near 0.

    pi - g = 2 pi sin^2(phi/2) + (phi cos(phi) - sin(phi)); the second term cancels near 0 and is
    summed there from its series  sum_n (-1)^n 2n phi^(2n+1) / (2n+1)!.
    """
    head = TWO_PI * math.sin(0.5 * phi) ** 2
    if phi < 0.5:
        term = phi
        tail = 0.0
        phi2 = phi * phi
        for n in range(1, 12):
            term *= -phi2 * (1.0 / ((2 * n) * (2 * n + 1)))
            tail += 2 * n * term
        return head + tail
    return head + (phi * math.cos(phi) - math.sin(phi))


# --------------------------------------------------------------------------- kappa (arc-cosine kernel)
def kappa(r):
    """E[relu(x) relu(y)] for a unit-variance Gaussian pair with correlation r."""
    r = min(1.0, max(-1.0, r))
    root = math.sqrt(max(0.0, 1.0 - r * r))
    return (root + (PI - math.atan2(root, r)) * r) / TWO_PI


def kappa_prime(r):
    r = min(1.0, max(-1.0, r))
    root = math.sqrt(max(0.0, 1.0 - r * r))
    return (PI - math.atan2(root, r)) / TWO_PI


# --------------------------------------------------------------------------- population loss and gradient
def _directions(s, w, w_star):
    u = w + s
    u_star = w_star + s
    return u, u_star


def _non_overlapping(s, w, a, w_star, a_star, normalize, want_grad):
    """docs/model.md, "Closed forms under Gaussian input", closed forms for stride >= p."""
    u, u_star = _directions(s, w, w_star)
    rho = safe_norm(u)
    rho_star = safe_norm(u_star)
    phi, perp, r, sx, _ = angle_parts(u, u_star)  # perp: part of sy u* orthogonal to u
    a_dot = float(a @ a_star)
    pmg = pi_minus_g(phi)
    if normalize:
        diff = a - a_star
    else:
        diff = rho * a - rho_star * a_star
    sum_diff = float(diff.sum())
    loss = (sum_diff**2 + (PI - 1.0) * float(diff @ diff) + 2.0 * (1.0 if normalize else rho * rho_star) * pmg * a_dot) / (
        4.0 * PI
    )
    if not want_grad:
        return loss, None, None
    g = PI - pmg
    if normalize:
        grad_a = (sum_diff + (PI - 1.0) * a - (g - 1.0) * a_star) * INV_TWO_PI
        # -(a.a*)(pi - phi)/(2 pi |u|) (v* - (v.v*) v) with |u| |u*| = r/(sx sy) and perp of sy u*:
        # nothing over- or underflows but the gradient itself (~ 1/|u|).
        grad_w = ((-a_dot * (PI - phi) / (TWO_PI * r)) * perp) * sx
    else:
        sum_a = float(a.sum())
        sum_a_star = float(a_star.sum())
        grad_a = (rho * rho * (sum_a + (PI - 1.0) * a) - rho * rho_star * (sum_a_star + (g - 1.0) * a_star)) / TWO_PI
        v_hat = u / rho
        v_star = u_star / rho_star
        grad_w = (
            (sum_a**2 + (PI - 1.0) * float(a @ a)) * u
            - rho_star * (sum_a * sum_a_star - a_dot) * v_hat
            - rho_star * a_dot * (math.sin(phi) * v_hat + (PI - phi) * v_star)
        ) / TWO_PI
    return loss, grad_w, grad_a


def shifted(x, delta):
    """out[t] = x[t - delta] where 0 <= t - delta < len(x), else 0."""
    p = x.shape[0]
    out = np.zeros_like(x)
    if abs(delta) < p:
        if delta >= 0:
            out[delta:] = x[: p - delta]
        else:
            out[: p + delta] = x[-delta:]
    return out


def _pair_term(x, y, nx, ny, delta, want_grad):
    """G = |x||y| kappa(C_xy(delta)/(|x||y|)) and its gradient in x, C_xy(delta) = sum_t x_t y_(t-delta)."""
    y_shift = shifted(y, delta)
    r = float(x @ y_shift) / nx / ny
    value = nx * ny * kappa(r)
    if not want_grad:
        return value, None, y_shift, r
    root = math.sqrt(max(0.0, 1.0 - min(1.0, r * r)))
    grad_x = (ny / nx) * (root / TWO_PI) * x + kappa_prime(r) * y_shift
    return value, grad_x, y_shift, r


def _overlapping(s, w, a, w_star, a_star, stride, normalize, want_grad):
    """docs/model.md, "Closed forms under Gaussian input", last paragraph: patches overlap (stride < p), Gaussian raw input."""
    k = a.shape[0]
    u, u_star = _directions(s, w, w_star)
    rho = safe_norm(u)
    rho_star = safe_norm(u_star)
    if normalize:
        e, e_star = u / rho, u_star / rho_star
    else:
        e, e_star = u, u_star
    ne = safe_norm(e)
    ne_star = safe_norm(e_star)
    # Sums over patch pairs (i, j) depend on m = j - i only.
    m = np.arange(-(k - 1), k)
    loss = 0.0
    grad_e = np.zeros_like(e)
    grad_a = np.zeros_like(a)
    for mm in m:
        delta = int(mm) * stride
        i = np.arange(max(0, -mm), min(k, k - mm))
        j = i + mm
        c_aa = float(a[i] @ a[j])
        c_as = float(a[i] @ a_star[j])
        c_ss = float(a_star[i] @ a_star[j])
        g_ee, gx_ee, _, _ = _pair_term(e, e, ne, ne, delta, want_grad)
        g_es, gx_es, _, _ = _pair_term(e, e_star, ne, ne_star, delta, want_grad)
        g_ss, _, _, _ = _pair_term(e_star, e_star, ne_star, ne_star, delta, False)
        loss += 0.5 * (c_aa * g_ee - 2.0 * c_as * g_es + c_ss * g_ss)
        if want_grad:
            # d/de of G(e, e; delta) = grad_x G(e, e; delta) + grad_x G(e, e; -delta).
            _, gx_ee_neg, _, _ = _pair_term(e, e, ne, ne, -delta, True)
            grad_e += 0.5 * c_aa * (gx_ee + gx_ee_neg) - c_as * gx_es
            grad_a[i] += a[j] * g_ee - a_star[j] * g_es
    loss = max(loss, 0.0)
    if not want_grad:
        return loss, None, None
    if normalize:
        grad_w = (grad_e - float(e @ grad_e) * e) / rho
    else:
        grad_w = grad_e
    return loss, grad_w, grad_a


def population_loss_grad(s, w, a, w_star, a_star, stride, normalize, want_grad=True):
    p = w.shape[0]
    if stride >= p:
        return _non_overlapping(s, w, a, w_star, a_star, normalize, want_grad)
    return _overlapping(s, w, a, w_star, a_star, stride, normalize, want_grad)


def population_loss(s, w, a, w_star, a_star, stride, normalize):
    return population_loss_grad(s, w, a, w_star, a_star, stride, normalize, want_grad=False)[0]


def population_grad(s, w, a, w_star, a_star, stride, normalize):
    _, grad_w, grad_a = population_loss_grad(s, w, a, w_star, a_star, stride, normalize)
    return grad_w, grad_a


def spurious_second_layer(a_star):
    """a_sp = (11^T + (pi-1) I)^(-1) (11^T - I) a*, the second layer of the spurious optimum (section 4)."""
    k = a_star.shape[0]
    return ((PI / (PI - 1.0 + k)) * float(a_star.sum()) - a_star) / (PI - 1.0)


# Sampled kernels and the Gaussian generator (docs/model.md, "Losses on a finite batch").
from .reference_sampled import predict, sample_inputs, sampled_loss_grad, stochastic_loss_grad  # noqa: E402,F401


def run_engine(s, stride, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer, gradient,
               batch_size, n_train, seeds, dtype, record_every, threads):
    """B trials of docs/training.md, any gradient source and optimizer (see reference_engine.run_engine)."""
    from . import reference_engine

    return reference_engine.run_engine(s, stride, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds,
                                       optimizer, gradient, batch_size, n_train, seeds, dtype, record_every, threads)


def run_reduced(s, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer, record_every, threads):
    """B trials of population gd or momentum in order-parameter coordinates (docs/reduced.md; see
    reference_reduced.run_reduced)."""
    from . import reference_reduced

    return reference_reduced.run_reduced(s, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds,
                                         optimizer, record_every, threads)


# --------------------------------------------------------------------------- input scan
def scan_rows(x, s=None, threads=None, rows_per_pass=1 << 16):
    """What run_trials checks of a (B, m) array of trials: (first non-finite flat index of x or -1,
    first row b with x[b] + s = 0 or -1, max |x + s|, min over rows of max_t |x[b, t] + s_t|), s
    None for no shift; the last three only when x is finite (else -1, nan, nan).  A pass at a time
    over rows_per_pass rows, so that no temporary of x's size is made; threads is not used (the
    compiled scan's blocks of rows run in parallel)."""
    largest, smallest, zero_row = 0.0, math.inf, -1
    for start in range(0, x.shape[0], rows_per_pass):
        rows = x[start:start + rows_per_pass]
        finite = np.isfinite(rows)
        if not finite.all():
            return int(start * x.shape[1] + np.flatnonzero(~finite.ravel())[0]), -1, math.nan, math.nan
        with np.errstate(over="ignore"):  # an x + s beyond the doubles has extent inf
            row_max = np.max(np.abs(rows if s is None else rows + s), axis=1)
        zeros = np.flatnonzero(row_max == 0.0)
        if zero_row < 0 and zeros.size:
            zero_row = int(start + zeros[0])
        largest, smallest = max(largest, float(row_max.max())), min(smallest, float(row_max.min()))
    return -1, zero_row, largest, (smallest if x.shape[0] else 0.0)
