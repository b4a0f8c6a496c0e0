"""NumPy reference of the sampled kernels (docs/model.md, "Losses on a finite batch") and of the counter-based generator.

The readable specification the fast backends are tested against.  Every function takes validated,
C-contiguous arrays; X is 2-D (n, d), patch j of row i is ``X[i, j*stride : j*stride + p]``.

Generator (shared by every backend, so that a seed means the same inputs everywhere): entry j of
row i is a function of (seed, i, j) only.  Block b = j // 4 of row i is Philox4x32-10 (Salmon et
al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) of the counter
(b mod 2^32, b >> 32, i mod 2^32, i >> 32) under the key (seed mod 2^32, seed >> 32); its four
32-bit words become two pairs of uniforms in (0, 1) and, by Box-Muller, four standard normals.
"""
from __future__ import annotations

import math

import numpy as np

from ..outcomes import pow2_scales

MASK32 = 0xFFFFFFFF
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10

# Rows generated at once, sized so that the uint64 temporaries stay around a few megabytes.
_CHUNK_ENTRIES = 1 << 18


# --------------------------------------------------------------------------- the generator
def philox4x32(c0, c1, c2, c3, k0: int, k1: int):
    """Philox4x32-10 of counters (c0, c1, c2, c3) (uint64 arrays holding 32-bit words) under key (k0, k1).

    A product of two 32-bit words fits a uint64 exactly, so mulhilo is a multiply and two masks.
    """
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in (c0, c1, c2, c3))
    m0, m1, mask, shift = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1), np.uint64(MASK32), np.uint64(32)
    for rnd in range(PHILOX_ROUNDS):
        if rnd > 0:
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
        p0 = m0 * c0
        p1 = m1 * c2
        c0, c1, c2, c3 = (
            (p1 >> shift) ^ c1 ^ np.uint64(k0),
            p1 & mask,
            (p0 >> shift) ^ c3 ^ np.uint64(k1),
            p0 & mask,
        )
    return c0, c1, c2, c3


# The Box-Muller transform of cpp/shortcutnet/philox.hpp, operation for operation, so that every
# backend draws the same bits.  A uniform is u = U 2^-B with U odd: U = 2 (x >> 8) + 1, B = 25 for
# float32 batches (computed in float32 throughout), U = 2 x + 1, B = 33 for float64 and for the
# radius's uniform of float32 batches when x < 2^23 (its tail keeps all 32 bits).
# ln u: fdlibm's log kernel after the exact split u = 2^K' (1 + f), 1 + f in [sqrt(1/2), sqrt(2));
# cos, sin of 2 pi u: the exact reduction by the nearest quarter turn q, Taylor polynomials in the
# remaining |y| <= 1/8 turn, and a rotation back by q quarter turns.
_F32 = np.float32
LOG_F32 = tuple(_F32(c) for c in (0.40000972152, 0.24279078841, 0.66666662693, 0.28498786688))
LN2_F32 = (_F32(6.9313812256e-01), _F32(9.0580006145e-06))  # hi, lo
LOG_F64 = (3.999999999940941908e-01, 2.222219843214978396e-01, 1.531383769920937332e-01,
           6.666666666666735130e-01, 2.857142874366239149e-01, 1.818357216161805012e-01, 1.479819860511658591e-01)
LN2_F64 = (6.93147180369123816490e-01, 1.90821492927058770002e-10)
# sin(2 pi y) = y (s0 + a (s1 + ...)), cos(2 pi y) = 1 + a (c1 + a (c2 + ...)), a = y^2.
SIN_F32 = tuple(_F32(c) for c in (6.2831855, -41.3417, 81.60525, -76.70586, 42.058693))
COS_F32 = tuple(_F32(c) for c in (-19.739208, 64.93939, -85.45682, 60.24464, -26.426256))
SIN_F64 = (6.283185307179586, -41.34170224039976, 81.60524927607506, -76.70585975306139, 42.058693944897655,
           -15.09464257682299, 3.819952584848282, -0.7181223017785006, 0.10422916220813984)
COS_F64 = (-19.739208802178716, 64.9393940226683, -85.45681720669373, 60.24464137187666, -26.4262567833744,
           7.903536371318469, -1.714390711088672, 0.28200596845579123, -0.03638284114254567)


def odd_integers(x, dtype):
    """The odd integers U (int64) of the angle's uniforms u = U 2^-B of the 32-bit words x."""
    x = np.asarray(x, dtype=np.uint64).astype(np.int64)
    return 2 * (x >> 8) + 1 if np.dtype(dtype) == np.float32 else 2 * x + 1


def radius_integers(x, dtype):
    """(U, B) of the radius's uniforms u = U 2^-B of the 32-bit words x: in float32 all 32 bits
    below 2^23 (u < 2^-9), so that the tail of |z| is that of float64."""
    x = np.asarray(x, dtype=np.uint64).astype(np.int64)
    if np.dtype(dtype) != np.float32:
        return 2 * x + 1, np.int64(33)
    tail = x < (1 << 23)
    return np.where(tail, 2 * x + 1, 2 * (x >> 8) + 1), np.where(tail, 33, 25)


def _horner(coefficients, a, one):
    acc = coefficients[-1] * one
    for c in coefficients[-2::-1]:
        acc = c + a * acc
    return acc


def log_uniform(U, B, dtype):
    """ln(U 2^-B), in float32 for a float32 batch (philox.hpp log_u25), else in float64 (log_u33, B = 33)."""
    if np.dtype(dtype) == np.float32:
        ubits = U.astype(np.float32).view(np.int32).astype(np.int64)  # U rounded to a float, as the C++ does
        K = ((ubits >> 23) - 127) + ((ubits & 0x7FFFFF) > 0x3504F3)
        f = (U - (np.int64(1) << K)).astype(np.float32) * np.ldexp(_F32(1), -K).astype(np.float32)  # exact
        e = (K - B).astype(np.float32)
        two, half, one = _F32(2), _F32(0.5), _F32(1)
        lg1, lg2, lg3, lg4 = LOG_F32
        ln2_hi, ln2_lo = LN2_F32
    else:
        ubits = U.astype(np.float64).view(np.int64)  # exact
        K = ((ubits >> 52) - 1023) + ((ubits & ((1 << 52) - 1)) > 0x6A09E667F3BCD)
        f = U.astype(np.float64) * np.ldexp(1.0, -K) - 1.0  # exact
        e = (K - 33).astype(np.float64)
        two, half, one = 2.0, 0.5, 1.0
        ln2_hi, ln2_lo = LN2_F64
    s = f / (two + f)
    z = s * s
    w = z * z
    if np.dtype(dtype) == np.float32:
        t1 = w * (lg1 + w * lg2)
        t2 = z * (lg3 + w * lg4)
    else:
        t1 = w * _horner(LOG_F64[:3], w, one)
        t2 = z * _horner(LOG_F64[3:], w, one)
    R = t2 + t1
    hfsq = half * f * f
    return e * ln2_hi - ((hfsq - (s * (hfsq + R) + e * ln2_lo)) - f)


def cos_sin_turn(U, dtype):
    """(cos 2 pi u, sin 2 pi u) for u = U 2^-B, in the batch's dtype (philox.hpp sincos_turn25/33)."""
    bits = 25 if np.dtype(dtype) == np.float32 else 33
    q = (U + (np.int64(1) << (bits - 3))) >> (bits - 2)
    rest = U - (q << (bits - 2))  # |y| <= 1/8 turn, exact
    if np.dtype(dtype) == np.float32:
        y = rest.astype(np.float32) * _F32(2.0**-25)
        one, sin_c, cos_c = _F32(1), SIN_F32, COS_F32
    else:
        y = rest.astype(np.float64) * 2.0**-33
        one, sin_c, cos_c = 1.0, SIN_F64, COS_F64
    a = y * y
    sy = y * _horner(sin_c, a, one)
    cy = one + a * _horner(cos_c, a, one)
    swap = (q & 1) != 0
    c1 = np.where(swap, sy, cy)
    s1 = np.where(swap, cy, sy)
    return np.where(((q + 1) & 2) != 0, -c1, c1), np.where((q & 2) != 0, -s1, s1)


def normals_of_words(x0, x1, x2, x3, dtype):
    """The four normals (entries 4b .. 4b+3) of Philox words (x0, x1, x2, x3), in ``dtype``."""
    out = []
    for first, second in ((x0, x1), (x2, x3)):
        minus_two = _F32(-2) if np.dtype(dtype) == np.float32 else -2.0
        r = np.sqrt(minus_two * log_uniform(*radius_integers(first, dtype), dtype))
        cos_u, sin_u = cos_sin_turn(odd_integers(second, dtype), dtype)
        out += [r * cos_u, r * sin_u]
    return out


def sample_rows(rows, d: int, seed: int, dtype) -> np.ndarray:
    """Rows ``rows`` (int64 indices) of the Gaussian batch for ``seed``, length d, in ``dtype``."""
    rows = np.asarray(rows, dtype=np.uint64)
    blocks = np.arange((d + 3) // 4, dtype=np.uint64)
    b = np.broadcast_to(blocks[None, :], (rows.shape[0], blocks.shape[0]))
    i = np.broadcast_to(rows[:, None], b.shape)
    mask, shift = np.uint64(MASK32), np.uint64(32)
    words = philox4x32(b & mask, b >> shift, i & mask, i >> shift, seed & MASK32, seed >> 32)
    z = np.stack(normals_of_words(*words, dtype), axis=-1)  # (rows, blocks, 4)
    z = z.reshape(rows.shape[0], 4 * blocks.shape[0])[:, :d]
    return z.astype(dtype)


def sample_inputs(n, d, seed, dtype, threads=0):
    dtype = np.dtype(dtype)
    X = np.empty((n, d), dtype=dtype)
    chunk = max(1, _CHUNK_ENTRIES // max(d, 1))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        X[start:stop] = sample_rows(np.arange(start, stop, dtype=np.int64), d, seed, dtype)
    return X


# --------------------------------------------------------------------------- the network on samples
def filter_direction(s, w, normalize):
    """(v, |u|): the effective filter v = u/|u| (or u when not normalized) and the norm of u = w + s,
    from u rescaled by a power of two (exact) so that its squares stay finite at any scale."""
    u = w + s
    scale = float(pow2_scales(u))
    scaled_norm = math.sqrt(float((scale * u) @ (scale * u)))
    norm = scaled_norm / scale
    return ((scale * u) / scaled_norm if normalize else u), norm


def patches(X, k, p, stride):
    """View (n, k, p) of the patches of X (n, d): patch j of row i is X[i, j*stride : j*stride + p]."""
    windows = np.lib.stride_tricks.sliding_window_view(X, p, axis=1)  # (n, d - p + 1, p)
    return windows[:, : (k - 1) * stride + 1 : stride, :]


def patch_outputs(v, X, k, p, stride):
    """h_ij = <patch_ij, v>, accumulated in float64 whatever X's dtype."""
    return np.einsum("nkp,p->nk", patches(X, k, p, stride), v, dtype=np.float64)


def relu(h):
    """max(h, 0), except that a non-finite h gives nan: bad input shows in the output."""
    with np.errstate(invalid="ignore"):
        return np.where(h > 0.0, h, h * 0.0)


def predict(s, w, a, X, k, p, stride, normalize, threads=0):
    v, _ = filter_direction(s, w, normalize)
    h = patch_outputs(v, X, k, p, stride)
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite outputs are the caller's to report
        return (relu(h) @ a).astype(X.dtype)


def _loss_grad_of(v, norm_u, a, X, y, k, p, stride, normalize):
    """docs/model.md, "Losses on a finite batch" on a batch (X, y) with y in float64."""
    n = X.shape[0]
    P = patches(X, k, p, stride)
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite results are the caller's to report
        h = np.einsum("nkp,p->nk", P, v, dtype=np.float64)
        out = relu(h)
        r = out @ a - y
        loss = 0.5 * float(r @ r) / n
        grad_a = (out.T @ r) / n
        # dL/dv = (1/n) sum_i r_i sum_j a_j 1[h_ij > 0] patch_ij
        coef = r[:, None] * a[None, :] * (h > 0.0)
        G = np.einsum("nk,nkp->p", coef, P, dtype=np.float64) / n
    if normalize:
        grad_w = (G - float(v @ G) * v) / norm_u
    else:
        grad_w = G
    return loss, grad_w, grad_a


def sampled_loss_grad(s, w, a, X, y, k, p, stride, normalize, threads=0):
    v, norm_u = filter_direction(s, w, normalize)
    return _loss_grad_of(v, norm_u, a, X, y.astype(np.float64), k, p, stride, normalize)


def stochastic_loss_grad(s, w, a, w_star, a_star, n, k, p, stride, normalize, seed, dtype, threads=0):
    """sampled_loss_grad on the batch of sample_inputs(n, d, seed, dtype), labelled by the teacher.

    Each label is accumulated in float64 and rounded to dtype, as predict() stores it, so this is
    the materialized pipeline sampled_loss_grad(X, predict(teacher, X)).  The reference
    materializes the batch chunk by chunk; the fast backends never store it.
    """
    d = (k - 1) * stride + p
    v, norm_u = filter_direction(s, w, normalize)
    v_star, _ = filter_direction(s, w_star, normalize)
    loss = 0.0
    grad_w = np.zeros(p)
    grad_a = np.zeros(k)
    chunk = max(1, _CHUNK_ENTRIES // d)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        X = sample_rows(np.arange(start, stop, dtype=np.int64), d, seed, dtype)
        y = (relu(patch_outputs(v_star, X, k, p, stride)) @ a_star).astype(dtype).astype(np.float64)
        part = _loss_grad_of(v, norm_u, a, X, y, k, p, stride, normalize)
        weight = (stop - start) / n  # each part is a mean over its own rows
        loss += weight * part[0]
        grad_w += weight * part[1]
        grad_a += weight * part[2]
    return loss, grad_w, grad_a
