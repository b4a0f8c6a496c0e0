"""The reduced engine of ``docs/reduced.md`` as ``@njit`` code: population gd or momentum on the
non-overlapping model in order-parameter coordinates, step for step the loop of
``reference_reduced``.

Each trial runs serially; threads take blocks of trials (nogil code), so results are bitwise the
same for any thread count, and runs advance in chunks of steps from Python, so Ctrl-C is honored
between chunks.  A trial keeps O(1) numbers between chunks: its constants
``const[b] = [rho*, x0, y0, omega1, omega2, |omega_perp|^2, A (3), C (3), alpha0 (3)]``, its state
``state_f[b] = [x, y, alpha (3), buffers of x, y, alpha (5), loss]`` and
``state_i[b] = [step, steps_to_tol, done, n_records]``.  The basis vectors (e1, e2, f_1..f_3) are
formed in scratch of one block, at the set-up and again, identically, to rebuild w and a at the end.
Trials run in waves of WAVE, so that this state is held for one wave at a time: beyond the
results, memory does not grow with B.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from . import numba_cache  # noqa: F401  (before any kernel: its cache stamps every backend source)
from ..outcomes import Thresholds
from ..schedules import gives_windows, last_rate_step, rates_from
from . import numba_population as _pop
from . import reference_reduced

_opts = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

PI = math.pi
TWO_PI = 2.0 * math.pi
INV_TWO_PI = _pop.INV_TWO_PI
KEEP_RELATIVE = reference_reduced.KEEP_RELATIVE
PARALLEL_RELATIVE = reference_reduced.PARALLEL_RELATIVE
OPTIMIZERS = reference_reduced.OPTIMIZERS

# Work units (about one multiply-add each) per thread between two interrupt checks; a reduced
# trial-step costs about this many.
WORK_PER_CHUNK = 1 << 24
STEP_COST = 64
# Trials whose state (about 30 numbers each) is held at once; results are filled wave by wave.
WAVE = 1 << 16

RHO_STAR, X0, Y0, OMEGA1, OMEGA2, OMEGA_PERP_SQ, A_, C_, ALPHA0 = 0, 1, 2, 3, 4, 5, 6, 9, 12
N_CONST = 15
X, Y, ALPHA, BUF_X, BUF_Y, BUF_ALPHA, LOSS = 0, 1, 2, 5, 6, 7, 10
N_STATE = 11
STEP, STEPS_TO_TOL, DONE, N_RECORDS = range(4)


# --------------------------------------------------------------------------- set-up (section 2)
@njit(**_opts)
def _project_out(r, f):
    c = _pop.dot(r, f)
    for i in range(r.shape[0]):
        r[i] = r[i] - c * f[i]


@njit(**_opts)
def setup_trial(s, w0, a0, w_star, a_star, const, e1, e2, f1, f2, f3):
    """The constants of one trial into const (N_CONST,) and its bases into e1, e2 (p,), f1..f3 (k,)."""
    p = w0.shape[0]
    k = a0.shape[0]
    # u-plane: e1 = u*/rho*, e2 from the part of u0 orthogonal to u*, by exact products and a
    # second projection (as the angle is formed near 0 and pi).
    xx = 0.0
    xy = 0.0
    for i in range(p):
        us = w_star[i] + s[i]
        xx += us * us
        xy += us * (w0[i] + s[i])
    rho_star = math.sqrt(xx)
    inv_xx = 1.0 / xx
    c = xy * inv_xx
    c2 = 0.0
    for i in range(p):
        us = w_star[i] + s[i]
        hi, lo = _pop.two_prod(c, us)
        e2[i] = ((w0[i] + s[i]) - hi) - lo
        c2 += us * e2[i]
    c2 *= inv_xx
    yy = 0.0
    uu = 0.0
    for i in range(p):
        e1[i] = (w_star[i] + s[i]) / rho_star
        e2[i] -= c2 * (w_star[i] + s[i])
        yy += e2[i] * e2[i]
        uu += (w0[i] + s[i]) * (w0[i] + s[i])
    y0 = math.sqrt(yy)
    if y0 > PARALLEL_RELATIVE * math.sqrt(uu):
        for i in range(p):
            e2[i] = e2[i] / y0
    else:  # u0 parallel or antiparallel to u*: the plane is a line and y stays 0
        y0 = 0.0
        e2[:] = 0.0
    omega1 = _pop.dot(w0, e1)
    omega2 = _pop.dot(w0, e2)
    perp_sq = 0.0
    for i in range(p):
        r = w0[i] - omega1 * e1[i] - omega2 * e2[i]
        perp_sq += r * r
    const[RHO_STAR] = rho_star
    const[X0] = xy / rho_star
    const[Y0] = y0
    const[OMEGA1] = omega1
    const[OMEGA2] = omega2
    const[OMEGA_PERP_SQ] = perp_sq
    # a-space: Gram-Schmidt of a*, 1, a0 (each residual projected twice).
    n_star = math.sqrt(_pop.dot(a_star, a_star))
    for j in range(k):
        f1[j] = a_star[j] / n_star if n_star > 0.0 else 0.0
        f2[j] = 1.0
        f3[j] = a0[j]
    for _ in range(2):
        _project_out(f2, f1)
    n2 = math.sqrt(_pop.dot(f2, f2))
    if n2 > KEEP_RELATIVE * math.sqrt(k):
        for j in range(k):
            f2[j] = f2[j] / n2
    else:
        n2 = 0.0
        f2[:] = 0.0
    for _ in range(2):
        _project_out(f3, f1)
        _project_out(f3, f2)
    n3 = math.sqrt(_pop.dot(f3, f3))
    if n3 > KEEP_RELATIVE * math.sqrt(_pop.dot(a0, a0)):
        for j in range(k):
            f3[j] = f3[j] / n3
    else:
        n3 = 0.0
        f3[:] = 0.0
    sum_f1 = 0.0
    for j in range(k):
        sum_f1 += f1[j]
    const[A_] = n_star
    const[A_ + 1] = 0.0
    const[A_ + 2] = 0.0
    const[C_] = sum_f1
    const[C_ + 1] = n2
    const[C_ + 2] = 0.0
    const[ALPHA0] = _pop.dot(a0, f1)
    const[ALPHA0 + 1] = _pop.dot(a0, f2)
    const[ALPHA0 + 2] = n3


@njit(**_opts)
def setup_range(s, w0, a0, w_star, a_star, const, state_f, lo, hi):
    """Constants and initial state of trials lo..hi-1 (teachers with one row are shared)."""
    p = w0.shape[1]
    k = a0.shape[1]
    e1 = np.empty(p)
    e2 = np.empty(p)
    f1 = np.empty(k)
    f2 = np.empty(k)
    f3 = np.empty(k)
    for b in range(lo, hi):
        bw = 0 if w_star.shape[0] == 1 else b
        ba = 0 if a_star.shape[0] == 1 else b
        setup_trial(s, w0[b], a0[b], w_star[bw], a_star[ba], const[b], e1, e2, f1, f2, f3)
        c = const[b]
        st = state_f[b]
        st[:] = 0.0
        st[X] = c[X0]
        st[Y] = c[Y0]
        for i in range(3):
            st[ALPHA + i] = c[ALPHA0 + i]


@njit(**_opts)
def rebuild_range(s, w0, a0, w_star, a_star, const, state_f, w, a, lo, hi):
    """w = w0 + (x - x0) e1 + (y - y0) e2 and a = a0 + sum_i (alpha_i - alpha0_i) f_i, trials lo..hi-1."""
    p = w0.shape[1]
    k = a0.shape[1]
    e1 = np.empty(p)
    e2 = np.empty(p)
    f1 = np.empty(k)
    f2 = np.empty(k)
    f3 = np.empty(k)
    scratch = np.empty(N_CONST)
    for b in range(lo, hi):
        bw = 0 if w_star.shape[0] == 1 else b
        ba = 0 if a_star.shape[0] == 1 else b
        setup_trial(s, w0[b], a0[b], w_star[bw], a_star[ba], scratch, e1, e2, f1, f2, f3)
        c = const[b]
        st = state_f[b]
        dx = st[X] - c[X0]
        dy = st[Y] - c[Y0]
        for i in range(p):
            w[b, i] = w0[b, i] + dx * e1[i] + dy * e2[i]
        m1 = st[ALPHA] - c[ALPHA0]
        m2 = st[ALPHA + 1] - c[ALPHA0 + 1]
        m3 = st[ALPHA + 2] - c[ALPHA0 + 2]
        for j in range(k):
            a[b, j] = a0[b, j] + m1 * f1[j] + m2 * f2[j] + m3 * f3[j]


# --------------------------------------------------------------------------- one step (section 3)
@njit(**_opts)
def loss_grad(normalize, c, x, y, al0, al1, al2):
    """(loss, phi, grad_x, grad_y, grad_alpha (3 numbers)) of one state; c the trial's constants."""
    rho_star = c[RHO_STAR]
    A0, A1, A2 = c[A_], c[A_ + 1], c[A_ + 2]
    C0, C1, C2 = c[C_], c[C_ + 1], c[C_ + 2]
    rho = math.sqrt(x * x + y * y)
    q = 1.0 / rho
    phi = math.atan2(abs(y), x)
    pmg = _pop.pi_minus_g(phi)
    g = PI - pmg
    a_dot = A0 * al0 + A1 * al1 + A2 * al2
    if normalize:
        D0, D1, D2 = al0 - A0, al1 - A1, al2 - A2
        cc = 1.0
    else:
        D0, D1, D2 = rho * al0 - rho_star * A0, rho * al1 - rho_star * A1, rho * al2 - rho_star * A2
        cc = rho * rho_star
    CD = C0 * D0 + C1 * D1 + C2 * D2
    loss = (CD * CD + (PI - 1.0) * (D0 * D0 + D1 * D1 + D2 * D2) + 2.0 * cc * pmg * a_dot) / (4.0 * PI)
    if normalize:
        gm1 = g - 1.0
        g0 = (CD * C0 + (PI - 1.0) * al0 - gm1 * A0) * INV_TWO_PI
        g1 = (CD * C1 + (PI - 1.0) * al1 - gm1 * A1) * INV_TWO_PI
        g2 = (CD * C2 + (PI - 1.0) * al2 - gm1 * A2) * INV_TWO_PI
        yq = y * q
        coef = -(a_dot * (PI - phi) / TWO_PI) * q * yq
        gx = coef * yq
        gy = coef * -(x * q)
    else:
        S = C0 * al0 + C1 * al1 + C2 * al2
        S_star = C0 * A0 + C1 * A1 + C2 * A2
        N = al0 * al0 + al1 * al1 + al2 * al2
        rr = rho * rho
        rrs = rho * rho_star
        gm1 = g - 1.0
        g0 = (rr * (S * C0 + (PI - 1.0) * al0) - rrs * (S_star * C0 + gm1 * A0)) / TWO_PI
        g1 = (rr * (S * C1 + (PI - 1.0) * al1) - rrs * (S_star * C1 + gm1 * A1)) / TWO_PI
        g2 = (rr * (S * C2 + (PI - 1.0) * al2) - rrs * (S_star * C2 + gm1 * A2)) / TWO_PI
        sin_phi = abs(y) * q
        cu = S * S + (PI - 1.0) * N
        c_hat = rho_star * (S * S_star - a_dot + a_dot * sin_phi)
        gx = (cu * x - c_hat * (x * q) - a_dot * (PI - phi) * rho_star) / TWO_PI
        gy = (cu * y - c_hat * (y * q)) / TWO_PI
    return loss, phi, gx, gy, g0, g1, g2


@njit(**_opts)
def w_norm_sq(c, x, y):
    w1 = c[OMEGA1] + (x - c[X0])
    w2 = c[OMEGA2] + (y - c[Y0])
    return w1 * w1 + w2 * w2 + c[OMEGA_PERP_SQ]


@njit(**_opts)
def observe(c, st, t, loss, phi, row):
    """row = (step, L, phi, a.a*, |a - a*|, |w|, train_loss = NaN)."""
    al0, al1, al2 = st[ALPHA], st[ALPHA + 1], st[ALPHA + 2]
    row[0] = t
    row[1] = loss
    row[2] = phi
    row[3] = c[A_] * al0 + c[A_ + 1] * al1 + c[A_ + 2] * al2
    d0, d1, d2 = al0 - c[A_], al1 - c[A_ + 1], al2 - c[A_ + 2]
    row[4] = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
    row[5] = math.sqrt(w_norm_sq(c, st[X], st[Y]))
    row[6] = math.nan


@njit(**_opts)
def _update(st, i, buf, g, lr, momentum, beta, nesterov, t):
    """One coordinate of gd or momentum (training.md section 3, evaluated as written)."""
    if not momentum:
        st[i] = st[i] - lr * g
        return
    b = g if t == 0 else beta * st[buf] + g
    st[buf] = b
    d = g + beta * b if nesterov else b
    st[i] = st[i] - lr * d


# --------------------------------------------------------------------------- the step loop (training.md section 4)
@njit(**_opts)
def advance_trial(normalize, c, st, si, rates, rates_first, n_steps, tol, divergence, momentum, beta, nesterov, last_step,
                  history, record_every, record):
    """Advance one trial through step last_step (rates: the rows of the steps from rates_first)."""
    n_rates = rates.shape[0]
    limit = divergence * divergence
    while si[DONE] == 0 and si[STEP] <= last_step:
        t = si[STEP]
        loss, phi, gx, gy, g0, g1, g2 = loss_grad(normalize, c, st[X], st[Y], st[ALPHA], st[ALPHA + 1],
                                                  st[ALPHA + 2])
        diverged = not (loss <= divergence)  # NaN counts as diverged
        converged = (not diverged) and loss <= tol
        if converged:
            si[STEPS_TO_TOL] = t
        done = diverged or converged or t == n_steps
        if record and (done or t % record_every == 0):
            observe(c, st, t, loss, phi, history[si[N_RECORDS]])
            si[N_RECORDS] += 1
        if done:
            si[DONE] = 1
            st[LOSS] = loss
            break
        row = min(t - rates_first, n_rates - 1)  # a table's last row repeats
        lr_w = rates[row, 0]
        lr_a = rates[row, 1]
        _update(st, X, BUF_X, gx, lr_w, momentum, beta, nesterov, t)
        _update(st, Y, BUF_Y, gy, lr_w, momentum, beta, nesterov, t)
        _update(st, ALPHA, BUF_ALPHA, g0, lr_a, momentum, beta, nesterov, t)
        _update(st, ALPHA + 1, BUF_ALPHA + 1, g1, lr_a, momentum, beta, nesterov, t)
        _update(st, ALPHA + 2, BUF_ALPHA + 2, g2, lr_a, momentum, beta, nesterov, t)
        si[STEP] = t + 1
        al0, al1, al2 = st[ALPHA], st[ALPHA + 1], st[ALPHA + 2]
        if not (w_norm_sq(c, st[X], st[Y]) <= limit) or not (al0 * al0 + al1 * al1 + al2 * al2 <= limit):
            si[DONE] = 1
            loss, phi, _, _, _, _, _ = loss_grad(normalize, c, st[X], st[Y], al0, al1, al2)
            st[LOSS] = loss
            if record:
                observe(c, st, t + 1, loss, phi, history[si[N_RECORDS]])
                si[N_RECORDS] += 1


@njit(**_opts)
def advance_range(normalize, const, state_f, state_i, rates, rates_first, n_steps, tol, divergence, momentum, beta, nesterov,
                  last_step, history, record_every, record, lo, hi):
    for b in range(lo, hi):
        if state_i[b, DONE] == 0:
            advance_trial(normalize, const[b], state_f[b], state_i[b], rates, rates_first, n_steps, tol, divergence, momentum,
                          beta, nesterov, last_step, history, record_every, record)


def _frozen(x):
    """A read-only view: one Numba specialization whatever the caller's flags (see numba_backend)."""
    view = x.view()
    view.flags.writeable = False
    return view


def max_threads() -> int:
    return os.cpu_count() or 1


def run_reduced(s, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer, record_every,
                threads):
    """B trials of the reduced engine, parallel over trials; the results of reference_reduced.run_reduced."""
    kind, beta, nesterov = optimizer[0], optimizer[1], optimizer[2]
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer: the reduced engine runs one of {list(OPTIMIZERS)} (its updates stay in "
                         f"the coordinates' subspaces), got {kind!r}")
    B = w0.shape[0]
    record_every = int(record_every)
    if record_every and B != 1:
        raise ValueError(f"record_every: a history is recorded for one trial only (B == 1), got B = {B}")
    threads = max_threads() if threads is None else int(threads)
    s, w0, a0, w_star, a_star = (_frozen(np.ascontiguousarray(x, dtype=np.float64))
                                 for x in (s, w0, a0, w_star, a_star))
    out = (np.empty(B, dtype=np.int8), np.empty(B), np.empty(B), np.empty(B, dtype=np.int64),
           np.empty(B, dtype=np.int64), np.empty(w0.shape), np.empty(a0.shape))
    pieces = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        # Waves of trials: the per-trial state is kept for one wave at a time.
        for lo in range(0, B, WAVE):
            rows = slice(lo, min(B, lo + WAVE))
            teachers = tuple(x if x.shape[0] == 1 else x[rows] for x in (w_star, a_star))
            _run_wave(pool, threads, s, bool(normalize), w0[rows], a0[rows], *teachers, rates, int(steps), float(tol),
                      thresholds, kind == "momentum", float(beta), bool(nesterov), int(record_every),
                      tuple(x[rows] for x in out), pieces)
    hist = np.concatenate(pieces) if record_every else None
    return (*out, np.full(B, math.nan), hist)


def _run_wave(pool, threads, s, normalize, w0, a0, w_star, a_star, rates, n_steps, tol, thresholds, momentum, beta,
              nesterov, record_every, out, pieces):
    """Run the trials of one wave to their end; fill out = (code, phi, loss, steps_to_tol, steps, w, a)."""
    B = w0.shape[0]
    code, phi, loss, steps_to_tol, steps, w, a = out
    const = np.empty((B, N_CONST))
    state_f = np.empty((B, N_STATE))
    state_i = np.zeros((B, 4), dtype=np.int64)
    state_i[:, STEPS_TO_TOL] = -1
    record = record_every > 0
    chunk = max(1, min(n_steps + 1, WORK_PER_CHUNK * threads // (B * STEP_COST)))
    history = np.empty((chunk // max(record_every, 1) + 3 if record else 0, 7))
    n_blocks = min(B, 8 * threads)
    edges = np.linspace(0, B, n_blocks + 1).astype(np.int64)
    blocks = list(zip(edges[:-1].tolist(), edges[1:].tolist()))
    inputs = (s, w0, a0, w_star, a_star)
    args = (normalize, const, state_f, state_i, n_steps, tol, float(thresholds[4]), momentum, beta, nesterov)
    # Trials are independent: threads take blocks of them (nogil code), so results do not depend
    # on the thread count, and Ctrl-C is seen between chunks.
    list(pool.map(lambda block: setup_range(*inputs, const, state_f, *block), blocks))
    windows = gives_windows(rates)
    table, first = _frozen(rates_from(rates, 0)), 0
    rates_last = last_rate_step(first, table.shape[0], windows, n_steps)
    last = -1
    while not np.all(state_i[:, DONE] == 1):
        if last == rates_last:
            table, first = _frozen(rates_from(rates, last + 1)), last + 1
            rates_last = last_rate_step(first, table.shape[0], windows, n_steps)
        last = min(last + chunk, rates_last)
        state_i[:, N_RECORDS] = 0
        run = args[:4] + (table, first) + args[4:]
        list(pool.map(lambda block: advance_range(*run, last, history, max(record_every, 1), record, *block), blocks))
        if record:
            pieces.append(history[: state_i[0, N_RECORDS]].copy())
    list(pool.map(lambda block: rebuild_range(*inputs, const, state_f, w, a, *block), blocks))

    x, y = state_f[:, X], state_f[:, Y]
    alpha = state_f[:, ALPHA:ALPHA + 3]
    loss[:] = state_f[:, LOSS]
    steps_to_tol[:] = state_i[:, STEPS_TO_TOL]
    steps[:] = state_i[:, STEP]
    with np.errstate(all="ignore"):
        phi[:] = reference_reduced.angle(x, y)
        w_norm = np.sqrt(_w_norm_sq(const, x, y))
        code[:] = reference_reduced.outcome(normalize, a0.shape[1], const[:, RHO_STAR], const[:, A_:A_ + 3],
                                            const[:, C_:C_ + 3], x, y, alpha, loss, phi, w_norm,
                                            Thresholds(*thresholds))


def _w_norm_sq(const, x, y):
    w1 = const[:, OMEGA1] + (x - const[:, X0])
    w2 = const[:, OMEGA2] + (y - const[:, Y0])
    return w1 * w1 + w2 * w2 + const[:, OMEGA_PERP_SQ]
