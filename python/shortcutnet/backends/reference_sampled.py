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


def uniforms(x, dtype) -> np.ndarray:
    """32-bit words to uniforms in (0, 1), never 0 or 1, as float64 (exact for either dtype's rule)."""
    x = np.asarray(x, dtype=np.uint64)
    if np.dtype(dtype) == np.float32:
        return ((x >> np.uint64(8)).astype(np.float64) + 0.5) * 2.0**-24
    return (x.astype(np.float64) + 0.5) * 2.0**-32


def cos_sin_turn(u):
    """(cos 2 pi u, sin 2 pi u), reducing u by quarter turns first so that no precision is lost.

    u - q/4 is exact for these uniforms (at most 33 significant bits), and the reduced angle
    is at most pi/4, where cos and sin are accurate to an ulp.
    """
    q = np.rint(4.0 * u)
    theta = (2.0 * math.pi) * (u - 0.25 * q)
    c, s = np.cos(theta), np.sin(theta)
    quadrant = q.astype(np.int64) & 3
    cos_u = np.choose(quadrant, (c, -s, -c, s))
    sin_u = np.choose(quadrant, (s, c, -s, -c))
    return cos_u, sin_u


def normals_of_words(x0, x1, x2, x3, dtype):
    """The four normals (entries 4b .. 4b+3) of Philox words (x0, x1, x2, x3), in float64."""
    out = []
    for first, second in ((x0, x1), (x2, x3)):
        r = np.sqrt(-2.0 * np.log(uniforms(first, dtype)))
        cos_u, sin_u = cos_sin_turn(uniforms(second, dtype))
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
    """(v, |u|): the effective filter v = u/|u| (or u when not normalized) and the norm of u = w + s."""
    u = w + s
    norm = math.sqrt(float(u @ u))
    return (u / norm if normalize else u), norm


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
