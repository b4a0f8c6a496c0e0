"""Sampled loss and gradient and the counter-based Gaussian generator as plain ``@njit`` functions.

docs/model.md, "Losses on a finite batch"; the generator is the one of ``reference_sampled`` (Philox4x32-10 + Box-Muller,
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

from . import numba_cache  # noqa: F401  (before any kernel: its cache stamps every backend source)
from .numba_bits import bits_float, float_bits
from .numba_population import pow2_normalizer

BLOCK = 256  # samples per block of the ordered reduction; fixed, so results never depend on threads

_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MANTISSA = np.int64((1 << 52) - 1)
_SQRT2_MANTISSA = np.int64(0x6A09E667F3BCD)  # the mantissa bits of sqrt(2)

LANES = 64  # Philox blocks (4 entries each) drawn together, so that every step runs in SIMD lanes

_opts = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


# --------------------------------------------------------------------------- the generator
# Written as loops over LANES counters with no calls (philox_block is inlined) and no branches
# inside, which LLVM vectorizes: ln and cos/sin are the polynomial kernels of
# cpp/shortcutnet/philox.hpp, in float32 for float32 batches and in float64 otherwise, operation
# for operation, so the bits are the compiled backend's (libm calls would also run one lane at a
# time).
@njit(inline="always", **_opts)
def philox_block(x0, x1, x2, x3, k0, k1):
    """Philox4x32-10 (Random123 constants) of the counter (x0, x1, x2, x3) under the key (k0, k1),
    32-bit words held in uint64: the four words of the block.  Inlined by Numba where it is called
    (LLVM does not inline across Numba's functions, and a call per lane would not vectorize)."""
    for _ in range(10):
        p0 = _M0 * (x0 & _MASK)
        p1 = _M1 * (x2 & _MASK)
        x0, x2 = (p1 >> _SHIFT) ^ x1 ^ k0, (p0 >> _SHIFT) ^ x3 ^ k1
        x1, x3 = p1 & _MASK, p0 & _MASK
        k0 = (k0 + _W0) & _MASK  # the bump after the last round is never used
        k1 = (k1 + _W1) & _MASK
    return x0, x1, x2, x3


@njit(**_opts)
def philox_lanes(c, k0, k1, words):
    """words[:, l] = Philox4x32-10 under the key (k0, k1) of the counter in column l of c (4, L),
    32-bit words held in uint64; words (4, L) uint32."""
    # The ten rounds inside the loop over lanes: LLVM unrolls them and vectorizes the lanes with
    # the words in registers (rounds outside it load and store every word each round, 3x slower).
    for lane in range(c.shape[1]):
        x0, x1, x2, x3 = philox_block(c[0, lane], c[1, lane], c[2, lane], c[3, lane], k0, k1)
        words[0, lane] = np.uint32(x0)
        words[1, lane] = np.uint32(x1)
        words[2, lane] = np.uint32(x2)
        words[3, lane] = np.uint32(x3)


@njit(**_opts)
def box_muller_lanes_f64(first, second, z_cos, z_sin):
    """z_cos, z_sin = r cos(2 pi u'), r sin(2 pi u') with r = sqrt(-2 ln u), for the uniforms u, u'
    of the Philox words ``first``, ``second`` (uint32): the float64 transform of philox.hpp.
    u = U 2^-33 with U = 2 x + 1 odd, so both the split u = 2^e (1 + f) and the reduction by
    quarter turns are exact."""
    # Integers reach floats only from 32 bits (U = 2 x + 1 exactly as 2.0 x + 1.0): AVX2 has no
    # vector conversion of int64.  Three short loops (the split, the log, the angle) with the
    # intermediate values in z_cos and z_sin: as one loop the transform ran 1.25 times slower on
    # Zen 4 (AVX-512).
    for lane in range(first.shape[0]):
        U = 2.0 * np.float64(first[lane]) + 1.0
        # ln u = (K - 33) ln 2 + ln(1 + f), U 2^-K = 1 + f in [sqrt(1/2), sqrt(2)): fdlibm's log kernel.
        exponent_bits = float_bits(U)
        K = (exponent_bits >> 52) - 1023 + (1 if (exponent_bits & _MANTISSA) > _SQRT2_MANTISSA else 0)
        z_cos[lane] = U * bits_float((1023 - K) << 52) - 1.0  # f and e, until the next loop
        z_sin[lane] = np.float64(np.int32(K - 33))
    for lane in range(first.shape[0]):
        f = z_cos[lane]
        e = z_sin[lane]
        s = f / (2.0 + f)
        z = s * s
        w = z * z
        t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01))
        t2 = z * (6.666666666666735130e-01
                  + w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)))
        hfsq = 0.5 * f * f
        log_u = e * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + (t2 + t1)) + e * 1.90821492927058770002e-10)) - f)
        z_cos[lane] = math.sqrt(-2.0 * log_u)  # r, until the second loop
    # cos, sin of 2 pi u': q the nearest quarter turn, y = u' - q/4 exact (|y| <= 1/8), Taylor in y.
    for lane in range(first.shape[0]):
        U1 = 2 * np.int64(second[lane]) + 1
        q = (U1 + (np.int64(1) << 30)) >> 31
        y = np.float64(np.int32(U1 - (q << 31))) * 2.0**-33  # |U1 - q 2^31| <= 2^30
        a = y * y
        sy = y * (6.283185307179586 + a * (-41.34170224039976 + a * (81.60524927607506 + a * (
            -76.70585975306139 + a * (42.058693944897655 + a * (-15.09464257682299 + a * (
                3.819952584848282 + a * (-0.7181223017785006 + a * 0.10422916220813984))))))))
        cy = 1.0 + a * (-19.739208802178716 + a * (64.9393940226683 + a * (-85.45681720669373 + a * (
            60.24464137187666 + a * (-26.4262567833744 + a * (7.903536371318469 + a * (
                -1.714390711088672 + a * (0.28200596845579123 + a * -0.03638284114254567))))))))
        swap = (q & 1) != 0  # rotate back by q quarter turns
        c1 = sy if swap else cy
        s1 = cy if swap else sy
        c = -c1 if ((q + 1) & 2) != 0 else c1
        s_ = -s1 if (q & 2) != 0 else s1
        r = z_cos[lane]
        z_cos[lane] = r * c
        z_sin[lane] = r * s_


# float32 constants of the float32 transform (philox.hpp log_u25, sincos_turn25): Numba keeps
# arithmetic on float32 values in float32 only when every operand is one, and integer arithmetic
# in int32 only when every operand is an int32 (hence the casts of every intermediate).
_I32 = np.int32
_F32_2 = np.float32(2.0)
_F32_HALF = np.float32(0.5)
_F32_ONE = np.float32(1.0)
_F32_MINUS_TWO = np.float32(-2.0)
_F32_TURN = np.float32(2.0**-25)
_TAIL_WORDS = np.uint32(1 << 23)  # radius words below this keep all 32 bits
_U32_SHIFT8 = np.uint32(8)
_LG1, _LG2, _LG3, _LG4 = (np.float32(c) for c in (0.40000972152, 0.24279078841, 0.66666662693, 0.28498786688))
_LN2_HI, _LN2_LO = np.float32(6.9313812256e-01), np.float32(9.0580006145e-06)
_S0, _S1, _S2, _S3, _S4 = (np.float32(c) for c in (6.2831855, -41.3417, 81.60525, -76.70586, 42.058693))
_C1, _C2, _C3, _C4, _C5 = (np.float32(c) for c in (-19.739208, 64.93939, -85.45682, 60.24464, -26.426256))


@njit(**_opts)
def box_muller_lanes_f32(first, second, z_cos, z_sin):
    """The float32 transform of philox.hpp, every operation in float32, from the words ``first``,
    ``second`` (uint32) into z_cos, z_sin (float32): u = U 2^-25 with U = 2 (x >> 8) + 1 odd, but
    u = U 2^-33 with U = 2 x + 1 for the radius's word below 2^23 (the tail keeps all 32 bits);
    ln u from the split U = 2^K (1 + f) (K read off U rounded to a float, f exact), cos and sin of
    2 pi u' by the exact quarter-turn reduction."""
    # No value in the loops is 64 bits wide (the widest type sets the lane count): they run in 16
    # float32 lanes on AVX-512, 8 on AVX2.  The radius waits in z_cos for the angle's loop.
    for lane in range(first.shape[0]):
        x = first[lane]
        tail = x < _TAIL_WORDS
        U = _I32(_I32(2) * _I32(x if tail else x >> _U32_SHIFT8) + _I32(1))
        B = _I32(33) if tail else _I32(25)  # the uniform's exponent, u = U 2^-B
        ubits = float_bits(np.float32(U))
        K = _I32(_I32(_I32(ubits >> _I32(23)) - _I32(127)) + (_I32(1) if _I32(ubits & _I32(0x7FFFFF)) > _I32(0x3504F3)
                                                               else _I32(0)))
        two_to_k = bits_float(_I32(_I32(_I32(127) + K) << _I32(23)))  # no variable shift
        f = np.float32(_I32(U - _I32(two_to_k))) * bits_float(_I32(_I32(_I32(127) - K) << _I32(23)))  # exact
        e = np.float32(_I32(K - B))
        s = f / (_F32_2 + f)
        z = s * s
        w = z * z
        t1 = w * (_LG1 + w * _LG2)
        t2 = z * (_LG3 + w * _LG4)
        R = t2 + t1
        hfsq = _F32_HALF * f * f
        log_u = e * _LN2_HI - ((hfsq - (s * (hfsq + R) + e * _LN2_LO)) - f)
        z_cos[lane] = np.sqrt(_F32_MINUS_TWO * log_u)  # r, until the second loop
    for lane in range(first.shape[0]):
        U1 = _I32(_I32(2) * _I32(second[lane] >> _U32_SHIFT8) + _I32(1))
        q = _I32(_I32(U1 + _I32(1 << 22)) >> _I32(23))
        y = np.float32(_I32(U1 - _I32(q << _I32(23)))) * _F32_TURN
        a = y * y
        sy = y * (_S0 + a * (_S1 + a * (_S2 + a * (_S3 + a * _S4))))
        cy = _F32_ONE + a * (_C1 + a * (_C2 + a * (_C3 + a * (_C4 + a * _C5))))
        swap = _I32(q & _I32(1)) != _I32(0)
        c1 = sy if swap else cy
        s1 = cy if swap else sy
        c = -c1 if _I32(_I32(q + _I32(1)) & _I32(2)) != _I32(0) else c1
        s_ = -s1 if _I32(q & _I32(2)) != _I32(0) else s1
        r = z_cos[lane]
        z_cos[lane] = r * c
        z_sin[lane] = r * s_


@njit(**_opts)
def generator_scratch():
    """The scratch of fill_rows: counters (4, LANES) uint64, normals (4, LANES) float64, Philox
    words (4, LANES) uint32 and float32 normals (4, LANES)."""
    return (np.empty((4, LANES), np.uint64), np.empty((4, LANES)), np.empty((4, LANES), np.uint32),
            np.empty((4, LANES), np.float32))


@njit(**_opts)
def _normals_of_lanes(c, k0, k1, single, z, words, z32):
    """z[q, l] = entry 4 b + q of row i for the counter (b, i) in column l of c."""
    philox_lanes(c, k0, k1, words)
    if single:
        box_muller_lanes_f32(words[0], words[1], z32[0], z32[1])
        box_muller_lanes_f32(words[2], words[3], z32[2], z32[3])
        for q in range(4):  # widened here, so that the transform's loops stay 32 bits wide
            for lane in range(z.shape[1]):
                z[q, lane] = np.float64(z32[q, lane])
    else:
        box_muller_lanes_f64(words[0], words[1], z[0], z[1])
        box_muller_lanes_f64(words[2], words[3], z[2], z[3])


@njit(**_opts)
def _fill_long_row(out, i, k0, k1, single, c, z, words, z32):
    """Row i (at least LANES blocks long), LANES consecutive blocks at a time."""
    d = out.shape[0]
    blocks = (d + 3) // 4
    row = np.uint64(i)
    for b0 in range(0, blocks, LANES):
        for lane in range(LANES):  # lanes past the row's last block are drawn and dropped
            b = np.uint64(b0 + lane)
            c[0, lane] = b & _MASK
            c[1, lane] = b >> _SHIFT
            c[2, lane] = row & _MASK
            c[3, lane] = row >> _SHIFT
        _normals_of_lanes(c, k0, k1, single, z, words, z32)
        used = min(LANES, blocks - b0)
        whole = used if 4 * (b0 + used) <= d else used - 1
        seg = out[4 * b0 : 4 * (b0 + whole)]
        for lane in range(whole):
            seg[4 * lane] = z[0, lane]
            seg[4 * lane + 1] = z[1, lane]
            seg[4 * lane + 2] = z[2, lane]
            seg[4 * lane + 3] = z[3, lane]
        for j in range(4 * (b0 + whole), min(d, 4 * (b0 + used))):
            out[j] = z[j - 4 * (b0 + whole), whole]


@njit(**_opts)
def _fill_short_rows(out, i0, k0, k1, single, c, z, words, z32):
    """Rows shorter than LANES blocks share the lanes: lane l takes the l-th (row, block) pair in
    row-major order, so no lane is wasted on short rows."""
    rows, d = out.shape
    blocks = (d + 3) // 4
    total = rows * blocks
    whole_blocks = 4 * blocks == d
    r0 = 0
    b0 = 0
    for first in range(0, total, LANES):
        # The lanes a row's blocks take form one run: counters and copies go a run at a time, with
        # no test per lane.
        r, b, lane = r0, b0, 0
        while lane < LANES:
            run = min(LANES - lane, blocks - b)
            i = np.uint64(i0 + r)
            for l in range(run):
                c[0, lane + l] = np.uint64(b + l)  # b + l < LANES: the high word is 0
                c[1, lane + l] = 0
                c[2, lane + l] = i & _MASK
                c[3, lane + l] = i >> _SHIFT
            lane += run
            b = 0
            r += 1
        _normals_of_lanes(c, k0, k1, single, z, words, z32)
        lane, count = 0, min(LANES, total - first)
        while lane < count:
            run = min(count - lane, blocks - b0)
            row = out[r0]
            if whole_blocks:  # four entries per lane, no test per entry
                for l in range(run):
                    j = 4 * (b0 + l)
                    row[j] = z[0, lane + l]
                    row[j + 1] = z[1, lane + l]
                    row[j + 2] = z[2, lane + l]
                    row[j + 3] = z[3, lane + l]
            else:
                for l in range(run):
                    j = 4 * (b0 + l)
                    for q in range(min(4, d - j)):
                        row[j + q] = z[q, lane + l]
            lane += run
            b0 += run
            if b0 == blocks:
                b0 = 0
                r0 += 1


@njit(**_opts)
def fill_rows(out, i0, k0, k1, single, c, z, words, z32):
    """out[r, j] = normal (seed, i0 + r, j) for the 2-D out, with key (k0, k1) = the seed's 32-bit
    halves and the scratch (c, z, words, z32) of generator_scratch(); a float32 out rounds each
    value once."""
    if (out.shape[1] + 3) // 4 >= LANES:
        for r in range(out.shape[0]):
            _fill_long_row(out[r], i0 + r, k0, k1, single, c, z, words, z32)
    else:
        _fill_short_rows(out, i0, k0, k1, single, c, z, words, z32)


@njit(**_opts)
def _split_seed(seed):
    seed = np.uint64(seed)
    return seed & _MASK, seed >> _SHIFT


@njit(**_opts)
def _sample_block(X, blk, k0, k1, single):
    stop = min(X.shape[0], (blk + 1) * BLOCK)
    c, z, words, z32 = generator_scratch()
    fill_rows(X[blk * BLOCK : stop], blk * BLOCK, k0, k1, single, c, z, words, z32)


@njit(parallel=True, **_opts)
def sample_inputs_into(X, seed, single):
    """Fill X (n, d) with rows 0 .. n-1 of the Gaussian batch of ``seed``."""
    k0, k1 = _split_seed(seed)
    for blk in prange((X.shape[0] + BLOCK - 1) // BLOCK):
        _sample_block(X, blk, k0, k1, single)


# --------------------------------------------------------------------------- the network on one sample
@njit(**_opts)
def filter_direction(s, w, normalize):
    """(v, |u|) with u = w + s, v = u/|u| when normalizing, else u; u is rescaled by the power of
    two that brings its largest entry into [1, 2) first (exact), so its squares stay finite at any
    scale (the bits of sampled.hpp's filter_direction)."""
    p = w.shape[0]
    v = np.empty(p)
    for t in range(p):
        v[t] = w[t] + s[t]
    scale = pow2_normalizer(v)
    acc = 0.0
    for t in range(p):
        acc += (scale * v[t]) * (scale * v[t])
    scaled_norm = math.sqrt(acc)
    if normalize:
        for t in range(p):
            v[t] = (scale * v[t]) / scaled_norm
    return v, scaled_norm / scale


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
    g is summed over the patches in float64, with weight 0 for inactive patches rather than a
    branch on their random signs; c (k,) and g (p,) are float64 scratch.
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
            g[t] += cj * np.float64(xs[t])
    for t in range(p):
        grad_v[t] += r * g[t]
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
def predict_serial_into(s, w, a, X, k, p, stride, normalize, out):
    """predict_into without the thread pool."""
    v, _ = filter_direction(s, w, normalize)
    _predict_rows(v, a, X, k, p, stride, out, 0, X.shape[0])


@njit(**_opts)
def _loss_grad_block(v, a, X, y, k, p, stride, blk, part_loss, part_v, part_a):
    """Block blk of samples summed serially into its own partials."""
    h = np.empty(k)
    c = np.empty(k)
    g = np.empty(p)
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
    """Loss (1/2n) sum r_i^2; fills grad_w (p,) and grad_a (k,) (docs/model.md, "Losses on a finite batch")."""
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
def _stochastic_block(v, v_star, a, a_star, n, k, p, stride, k0, k1, single, blk, part_loss, part_v, part_a):
    """Block blk of the fused kernel: draw its rows a group at a time (about 2048 entries, which stay
    in L1) holding the values the batch would hold, label each row, accumulate it."""
    d = (k - 1) * stride + p
    rows = np.empty((max(1, min(BLOCK, 2048 // d)), d))
    h = np.empty(k)
    c = np.empty(k)
    g = np.empty(p)
    gv = np.zeros(p)
    ga = np.zeros(k)
    counters, normals, words, normals32 = generator_scratch()
    acc = 0.0
    stop = min(n, (blk + 1) * BLOCK)
    for i0 in range(blk * BLOCK, stop, rows.shape[0]):
        group = rows[: min(rows.shape[0], stop - i0)]
        fill_rows(group, i0, k0, k1, single, counters, normals, words, normals32)
        for r in range(group.shape[0]):
            x = group[r]  # with single, float32 values already (the float32 transform's)
            y = forward(x, v_star, a_star, k, p, stride, h)
            if single:  # the label predict() would store for this row
                y = np.float64(np.float32(y))
            acc += accumulate(x, v, a, y, k, p, stride, h, c, g, gv, ga)
    part_loss[blk] = acc
    part_v[blk, :] = gv
    part_a[blk, :] = ga


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
    for blk in range((X.shape[0] + BLOCK - 1) // BLOCK):
        _sample_block(X, blk, k0, k1, single)
