"""Sampled loss and gradient and the counter-based Gaussian generator as plain ``@njit`` functions.

MODEL.md section 3; the generator is the one of ``reference_sampled`` (Philox4x32-10 + Box-Muller,
entry (seed, i, j) independent of the batch shape), so every backend draws the same inputs.

Results are identical for any number of threads: samples are cut into FIXED blocks of
``BLOCK`` samples, each block is summed serially into its own partial, and the partials are
added in block order afterwards.  The number of threads only changes who computes a block.

Calling the kernels from your own ``@njit`` code
------------------------------------------------
Every function here is an ordinary Numba dispatcher over NumPy arrays and scalars, so a
simulation loop compiled with ``@njit`` can call them directly, without returning to Python
between steps (see ``examples/numba_embedding.py``)::

    from numba import njit
    from shortcutnet.backends import numba_sampled as ks

    @njit(cache=True)
    def sgd(s, w, a, w_star, a_star, k, p, stride, normalize, n, steps, lr, seed):
        grad_w = np.empty_like(w)
        grad_a = np.empty_like(a)
        for t in range(steps):
            ks.stochastic_loss_grad_serial_into(s, w, a, w_star, a_star, n, k, p, stride, normalize,
                                                seed + t, False, grad_w, grad_a)
            w -= lr * grad_w
            a -= lr * grad_a
        return w, a

Two flavours, with bitwise the same results: ``*_into`` run their blocks of samples on Numba's
thread pool (``prange``; ``numba.set_num_threads``), ``*_serial_into`` on the calling thread.
From a function compiled with ``cache=True`` call the serial ones: Numba (0.68) crashes when it
reloads from its cache a function that calls a parallel kernel.  The serial ones also suit a
``prange`` of your own over independent runs.  A cached function of yours embeds these kernels
and is not invalidated when shortcutnet is upgraded: clear its ``__pycache__`` after an upgrade.

Arguments: ``s, w, a, w_star, a_star`` float64 1-D arrays; ``X`` a 2-D C-contiguous float32 or
float64 array (n, d) with ``d = (k - 1) * stride + p``; ``y`` float64 or X's dtype; ``seed`` an
integer in [0, 2^64) (cast to uint64); ``single`` True for the float32 uniform rule (and labels
rounded to float32).  The kernels do not validate (the public API in ``shortcutnet.kernels``
does): ``w + s`` must be non-zero when normalizing and the shapes must agree.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

BLOCK = 256  # samples per block of the ordered reduction; fixed, so results never depend on threads

_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)
_SHIFT8 = np.uint64(8)
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_TWO_PI = 2.0 * math.pi
_TWO_M32 = 2.0**-32
_TWO_M24 = 2.0**-24

_opts = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


# --------------------------------------------------------------------------- the generator
@njit(**_opts)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 (Random123 constants) on 32-bit words held in uint64 values."""
    c0, c1, c2, c3 = np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3)
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _SHIFT) ^ c1 ^ k0, p1 & _MASK, (p0 >> _SHIFT) ^ c3 ^ k1, p0 & _MASK
        k0 = (k0 + _W0) & _MASK  # the bump after the last round is never used
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@njit(**_opts)
def uniform(x, single):
    """A 32-bit word to a uniform in (0, 1): 24 bits for float32, 32 bits for float64."""
    if single:
        return (np.float64(x >> _SHIFT8) + 0.5) * _TWO_M24
    return (np.float64(x) + 0.5) * _TWO_M32


@njit(**_opts)
def cos_sin_turn(u):
    """(cos 2 pi u, sin 2 pi u) after an exact reduction by quarter turns (|angle| <= pi/4)."""
    q = math.floor(4.0 * u + 0.5)  # 4u is never a half-integer for these uniforms
    theta = _TWO_PI * (u - 0.25 * q)
    c = math.cos(theta)
    s = math.sin(theta)
    quadrant = int(q) & 3
    if quadrant == 0:
        return c, s
    if quadrant == 1:
        return -s, c
    if quadrant == 2:
        return -c, -s
    return s, -c


@njit(**_opts)
def normal4(k0, k1, i, b, single):
    """The four standard normals of block b of row i (entries 4b .. 4b+3), in float64."""
    x0, x1, x2, x3 = philox4x32(b & _MASK, b >> _SHIFT, i & _MASK, i >> _SHIFT, k0, k1)
    r0 = math.sqrt(-2.0 * math.log(uniform(x0, single)))
    c0, s0 = cos_sin_turn(uniform(x1, single))
    r1 = math.sqrt(-2.0 * math.log(uniform(x2, single)))
    c1, s1 = cos_sin_turn(uniform(x3, single))
    return r0 * c0, r0 * s0, r1 * c1, r1 * s1


@njit(**_opts)
def fill_row(out, i, k0, k1, single):
    """out[j] = normal (seed, i, j) for j < len(out); a float32 out rounds each value once."""
    d = out.shape[0]
    row = np.uint64(i)
    for b in range((d + 3) // 4):
        z0, z1, z2, z3 = normal4(k0, k1, row, np.uint64(b), single)
        j = 4 * b
        if j + 3 < d:
            out[j] = z0
            out[j + 1] = z1
            out[j + 2] = z2
            out[j + 3] = z3
        else:
            out[j] = z0
            if j + 1 < d:
                out[j + 1] = z1
            if j + 2 < d:
                out[j + 2] = z2


@njit(**_opts)
def _split_seed(seed):
    seed = np.uint64(seed)
    return seed & _MASK, seed >> _SHIFT


@njit(parallel=True, **_opts)
def sample_inputs_into(X, seed, single):
    """Fill X (n, d) with rows 0 .. n-1 of the Gaussian batch of ``seed``."""
    k0, k1 = _split_seed(seed)
    for i in prange(X.shape[0]):
        fill_row(X[i], i, k0, k1, single)


# --------------------------------------------------------------------------- the network on one sample
@njit(**_opts)
def filter_direction(s, w, normalize):
    """(v, |u|) with u = w + s, v = u/|u| when normalizing, else u."""
    p = w.shape[0]
    v = np.empty(p)
    acc = 0.0
    for t in range(p):
        v[t] = w[t] + s[t]
        acc += v[t] * v[t]
    norm = math.sqrt(acc)
    if normalize:
        for t in range(p):
            v[t] /= norm
    return v, norm


# The dot products are the hot loop.  Summed strictly in order they cannot use SIMD lanes, so they
# alone allow LLVM to reassociate (fastmath "reassoc", no other flag): it then sums in the lanes of
# this machine's vectors.  The order is fixed when the function is compiled, so results are still
# identical for any number of threads and from run to run; they agree with the C++ backend, which
# fixes its own lane order, to rounding.
@njit(cache=True, nogil=True, fastmath={"reassoc"}, error_model="numpy")
def patch_dot(x, base, v, p):
    """<x[base : base + p], v>, accumulated in float64 for float32 and float64 x alike."""
    xs = x[base : base + p]  # a slice lets the compiler drop the negative-index checks
    acc = 0.0
    for t in range(p):
        acc += np.float64(xs[t]) * v[t]
    return acc


@njit(**_opts)
def forward(x, v, a, k, p, stride, h):
    """f = sum_j a_j relu(h_j); fills h (k,) with the patch outputs h_j = <patch_j, v>.

    A non-finite h_j (a nan or inf input) makes f nan instead of vanishing behind the relu
    (h * 0 is 0 for finite h), so bad input shows in the output and needs no extra pass.
    """
    f = 0.0
    for j in range(k):
        hj = patch_dot(x, j * stride, v, p)
        h[j] = hj
        f += a[j] * (hj if hj > 0.0 else hj * 0.0)
    return f


@njit(**_opts)
def accumulate(x, v, a, y, k, p, stride, h, c, g, grad_v, grad_a):
    """One sample's forward and backward pass while x is in cache; returns its squared residual.

    grad_v += r g with g = sum_j a_j 1[h_j > 0] patch_j,  grad_a += r relu(h),  r = f - y.
    g is summed over the patches in x's dtype (as the C++ backend does: k terms, so float32 loses
    little), with weight 0 for inactive patches rather than a branch on their random signs; c (k,)
    and g (p,) are scratch of x's dtype.
    """
    r = forward(x, v, a, k, p, stride, h) - y
    for j in range(k):
        c[j] = a[j] if h[j] > 0.0 else 0.0
        grad_a[j] += r * (h[j] if h[j] > 0.0 else 0.0)
    g[:] = 0.0
    for j in range(k):
        cj = c[j]
        xs = x[j * stride : j * stride + p]
        for t in range(p):
            g[t] += cj * xs[t]
    for t in range(p):
        grad_v[t] += r * np.float64(g[t])
    return r * r


@njit(**_opts)
def _finish(part_loss, part_v, part_a, n, v, norm_u, normalize, grad_w, grad_a):
    """Add the block partials in block order, divide by n, and map dL/dv to dL/dw."""
    p = v.shape[0]
    k = grad_a.shape[0]
    loss = 0.0
    for t in range(p):
        grad_w[t] = 0.0
    for j in range(k):
        grad_a[j] = 0.0
    for blk in range(part_loss.shape[0]):
        loss += part_loss[blk]
        for t in range(p):
            grad_w[t] += part_v[blk, t]
        for j in range(k):
            grad_a[j] += part_a[blk, j]
    for t in range(p):
        grad_w[t] /= n
    for j in range(k):
        grad_a[j] /= n
    if normalize:
        vg = 0.0
        for t in range(p):
            vg += v[t] * grad_w[t]
        for t in range(p):
            grad_w[t] = (grad_w[t] - vg * v[t]) / norm_u
    return 0.5 * loss / n


# --------------------------------------------------------------------------- batched kernels
@njit(**_opts)
def _predict_rows(v, a, X, k, p, stride, out, start, stop):
    h = np.empty(k)
    for i in range(start, stop):
        out[i] = forward(X[i], v, a, k, p, stride, h)


@njit(parallel=True, **_opts)
def predict_into(s, w, a, X, k, p, stride, normalize, out):
    """out[i] = f(X[i]; w, a) for every row (accumulated in float64, stored in out's dtype)."""
    n = X.shape[0]
    v, _ = filter_direction(s, w, normalize)
    nblocks = (n + BLOCK - 1) // BLOCK
    if nblocks > 1:
        for blk in prange(nblocks):
            _predict_rows(v, a, X, k, p, stride, out, blk * BLOCK, min(n, (blk + 1) * BLOCK))
    else:  # one block: not worth waking the thread pool
        _predict_rows(v, a, X, k, p, stride, out, 0, n)


@njit(**_opts)
def _loss_grad_block(v, a, X, y, k, p, stride, blk, part_loss, part_v, part_a):
    """Block blk of samples summed serially into its own partials."""
    h = np.empty(k)
    c = np.empty(k, X.dtype)
    g = np.empty(p, X.dtype)
    gv = np.zeros(p)
    ga = np.zeros(k)
    acc = 0.0
    for i in range(blk * BLOCK, min(X.shape[0], (blk + 1) * BLOCK)):
        acc += accumulate(X[i], v, a, np.float64(y[i]), k, p, stride, h, c, g, gv, ga)
    part_loss[blk] = acc
    part_v[blk, :] = gv
    part_a[blk, :] = ga


@njit(**_opts)
def _block_partials(n, k, p):
    """Per-block partial sums (loss, gradient in v, gradient in a) for n rows in blocks of BLOCK."""
    nblocks = (n + BLOCK - 1) // BLOCK
    return nblocks, np.empty(nblocks), np.empty((nblocks, p)), np.empty((nblocks, k))


@njit(parallel=True, **_opts)
def sampled_loss_grad_into(s, w, a, X, y, k, p, stride, normalize, grad_w, grad_a):
    """Loss (1/2n) sum r_i^2; fills grad_w (p,) and grad_a (k,) (MODEL.md section 3)."""
    n = X.shape[0]
    v, norm_u = filter_direction(s, w, normalize)
    nblocks, part_loss, part_v, part_a = _block_partials(n, k, p)
    if nblocks > 1:
        for blk in prange(nblocks):
            _loss_grad_block(v, a, X, y, k, p, stride, blk, part_loss, part_v, part_a)
    else:
        _loss_grad_block(v, a, X, y, k, p, stride, 0, part_loss, part_v, part_a)
    return _finish(part_loss, part_v, part_a, n, v, norm_u, normalize, grad_w, grad_a)


@njit(**_opts)
def _stochastic_rows(v, v_star, a, a_star, n, k, p, stride, k0, k1, single, blk, row, part_loss, part_v, part_a):
    """Block blk of the fused kernel: draw each row into ``row`` (the batch's dtype), label it,
    accumulate it."""
    h = np.empty(k)
    c = np.empty(k, row.dtype)
    g = np.empty(p, row.dtype)
    gv = np.zeros(p)
    ga = np.zeros(k)
    acc = 0.0
    for i in range(blk * BLOCK, min(n, (blk + 1) * BLOCK)):
        fill_row(row, i, k0, k1, single)
        y = forward(row, v_star, a_star, k, p, stride, h)
        if single:  # the label predict() would store for this row
            y = np.float64(np.float32(y))
        acc += accumulate(row, v, a, y, k, p, stride, h, c, g, gv, ga)
    part_loss[blk] = acc
    part_v[blk, :] = gv
    part_a[blk, :] = ga


@njit(**_opts)
def _stochastic_block(v, v_star, a, a_star, n, k, p, stride, k0, k1, single, blk, part_loss, part_v, part_a):
    """_stochastic_rows with a row buffer of the batch's dtype, so the sums are those of the
    materialized batch."""
    d = (k - 1) * stride + p
    if single:
        row32 = np.empty(d, np.float32)
        _stochastic_rows(v, v_star, a, a_star, n, k, p, stride, k0, k1, single, blk, row32, part_loss, part_v, part_a)
    else:
        row64 = np.empty(d)
        _stochastic_rows(v, v_star, a, a_star, n, k, p, stride, k0, k1, single, blk, row64, part_loss, part_v, part_a)


@njit(parallel=True, **_opts)
def stochastic_loss_grad_into(s, w, a, w_star, a_star, n, k, p, stride, normalize, seed, single, grad_w, grad_a):
    """sampled_loss_grad_into on rows 0..n-1 of the batch of ``seed``, labelled by the teacher
    (w_star, a_star), drawing each row into a small buffer instead of storing the batch.

    Bitwise the materialized pipeline: the rows hold the values sample_inputs_into stores and each
    label is rounded to the batch's dtype as predict_into stores it."""
    k0, k1 = _split_seed(seed)
    v, norm_u = filter_direction(s, w, normalize)
    v_star, _ = filter_direction(s, w_star, normalize)
    nblocks, part_loss, part_v, part_a = _block_partials(n, k, p)
    if nblocks > 1:
        for blk in prange(nblocks):
            _stochastic_block(v, v_star, a, a_star, n, k, p, stride, k0, k1, single, blk, part_loss, part_v, part_a)
    else:
        _stochastic_block(v, v_star, a, a_star, n, k, p, stride, k0, k1, single, 0, part_loss, part_v, part_a)
    return _finish(part_loss, part_v, part_a, n, v, norm_u, normalize, grad_w, grad_a)


# --------------------------------------------------------------------------- serial twins
# The same block sums on the calling thread: bitwise the results of the parallel kernels.  Use
# them inside your own @njit(cache=True) code, or inside your own prange over independent runs:
# Numba (0.68) crashes when it reloads from its cache a function that calls a parallel kernel.
@njit(**_opts)
def sampled_loss_grad_serial_into(s, w, a, X, y, k, p, stride, normalize, grad_w, grad_a):
    """sampled_loss_grad_into without the thread pool."""
    n = X.shape[0]
    v, norm_u = filter_direction(s, w, normalize)
    nblocks, part_loss, part_v, part_a = _block_partials(n, k, p)
    for blk in range(nblocks):
        _loss_grad_block(v, a, X, y, k, p, stride, blk, part_loss, part_v, part_a)
    return _finish(part_loss, part_v, part_a, n, v, norm_u, normalize, grad_w, grad_a)


@njit(**_opts)
def stochastic_loss_grad_serial_into(s, w, a, w_star, a_star, n, k, p, stride, normalize, seed, single, grad_w, grad_a):
    """stochastic_loss_grad_into without the thread pool."""
    k0, k1 = _split_seed(seed)
    v, norm_u = filter_direction(s, w, normalize)
    v_star, _ = filter_direction(s, w_star, normalize)
    nblocks, part_loss, part_v, part_a = _block_partials(n, k, p)
    for blk in range(nblocks):
        _stochastic_block(v, v_star, a, a_star, n, k, p, stride, k0, k1, single, blk, part_loss, part_v, part_a)
    return _finish(part_loss, part_v, part_a, n, v, norm_u, normalize, grad_w, grad_a)


@njit(**_opts)
def sample_inputs_serial_into(X, seed, single):
    """sample_inputs_into without the thread pool."""
    k0, k1 = _split_seed(seed)
    for i in range(X.shape[0]):
        fill_row(X[i], i, k0, k1, single)
