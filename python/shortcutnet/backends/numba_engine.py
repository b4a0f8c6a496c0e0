"""The training engine of ``docs/training.md`` as ``@njit`` code: B independent trials, any gradient
source (population, sampled, empirical full-batch or mini-batch) and any optimizer (gd, momentum,
adam), step for step the loop of ``reference_engine``.

Each trial runs serially (the serial sampled kernels of ``numba_sampled``); threads take blocks of
trials, so results are bitwise the same for any thread count.  Runs advance in chunks of steps
from Python, so Ctrl-C is honored between chunks.  The state of trial b lives in small arrays:
``state_i[b] = [step, steps_to_tol, done, n_records, epoch of order[b], has training set]``,
``state_f[b] = [loss, train_loss, P1, P2]``, and the optimizer buffers (first, second moments).

An empirical trial's training set is drawn at its first step and kept until it ends; it is stored
in float64 holding the batch dtype's values (for float32, each entry and label rounded once, as
``sample_inputs`` and ``predict`` store them), which the sampled kernels sum exactly as they sum
a float32 batch.  Trials with a training set run in waves whose training sets fit in
TRAINING_SET_BYTES (and at least one per thread).
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from . import numba_cache  # noqa: F401  (before any kernel: its cache stamps every backend source)
from ..outcomes import Thresholds, classify_raw
from ..schedules import gives_windows, last_rate_step, rates_from
from . import numba_population as _pop
from . import numba_sampled as _smp

_opts = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

POPULATION, SAMPLED, EMPIRICAL = 0, 1, 2
GD, MOMENTUM, ADAM = 0, 1, 2
GRADIENTS = {"population": POPULATION, "sampled": SAMPLED, "empirical": EMPIRICAL}
OPTIMIZERS = {"gd": GD, "momentum": MOMENTUM, "adam": ADAM}

# Work units (about one multiply-add each) per thread of the first chunk, and the wall time of the
# later ones: the time between two interrupt checks.
WORK_PER_CHUNK = 1 << 24
CHUNK_SECONDS = 0.05
TRAINING_SET_BYTES = 1 << 28

STEP, STEPS_TO_TOL, DONE, N_RECORDS, ORDER_EPOCH, HAS_DATA = range(6)
LOSS, TRAIN_LOSS, P1, P2 = range(4)

# --------------------------------------------------------------------------- seeds (section 1)
# The generator's constants (Philox4x32-10, Random123) as the sampled kernels hold them.
_MASK, _SHIFT = _smp._MASK, _smp._SHIFT
TAG_STEP = np.uint64(0x7374 << 16)
TAG_EPOCH = np.uint64(0x6570 << 16)


@njit(**_opts)
def philox_word64(seed, c0, c1, c2, c3):
    """word64 of Philox4x32-10 of the counter (c0, c1, c2, c3) (32-bit words in uint64) under the
    key (seed mod 2^32, seed >> 32): x0 + 2^32 x1."""
    x0, x1, _, _ = _smp.philox_block(c0, c1, c2, c3, seed & _MASK, seed >> _SHIFT)
    return x0 + (x1 << _SHIFT)


@njit(**_opts)
def step_seed(seed, t):
    u = np.uint64(t)
    return philox_word64(np.uint64(seed), u & _MASK, u >> _SHIFT, np.uint64(0), TAG_STEP)


@njit(**_opts)
def epoch_keys(seed, e, n):
    seed = np.uint64(seed)
    ue = np.uint64(e)
    c2 = ue & _MASK
    c3 = TAG_EPOCH + ((ue >> _SHIFT) & np.uint64(0xFFFF))
    keys = np.empty(n, np.uint64)
    for i in range(n):
        ui = np.uint64(i)
        keys[i] = philox_word64(seed, ui & _MASK, ui >> _SHIFT, c2, c3)
    return keys


@njit(**_opts)
def epoch_order(seed, e, n):
    """0..n-1 sorted by (key, index): mergesort is stable."""
    return np.argsort(epoch_keys(seed, e, n), kind="mergesort")


# --------------------------------------------------------------------------- gradient sources (section 2)
@njit(**_opts)
def population_loss_grad(s, w, a, w_star, a_star, stride, want_grad, normalize, grad_w, grad_a, u, u_star, perp):
    p = w.shape[0]
    for t in range(p):
        u[t] = w[t] + s[t]
        u_star[t] = w_star[t] + s[t]
    if stride >= p:
        return _pop._non_overlapping(u, u_star, a, a_star, normalize, want_grad, grad_w, grad_a, perp)
    return _pop._overlapping(u, u_star, a, a_star, stride, normalize, want_grad, grad_w, grad_a)


@njit(**_opts)
def make_training_set(s, w_star, a_star, stride, normalize, seed, single, Z, y):
    """Z = rows 0..n-1 of the inputs of ``seed``, y = the teacher's labels, both rounded to float32
    when ``single`` (the values sample_inputs and predict store for a float32 batch)."""
    k = a_star.shape[0]
    p = w_star.shape[0]
    k0 = np.uint64(seed) & _MASK
    k1 = np.uint64(seed) >> _SHIFT
    c, z, words, z32 = _smp.generator_scratch()
    _smp.fill_rows(Z, 0, k0, k1, single, c, z, words, z32)
    v_star, _ = _smp.filter_direction(s, w_star, normalize)
    h = np.empty(k)
    for i in range(Z.shape[0]):
        x = Z[i]  # with single, float32 values already (the float32 transform's)
        label = _smp.forward(x, v_star, a_star, k, p, stride, h)
        y[i] = np.float64(np.float32(label)) if single else label


@njit(**_opts)
def empirical_loss_grad(s, w, a, stride, normalize, batch_size, seed, t, Z, y, order, state_i, grad_w, grad_a):
    """Training loss and gradient of step t: the full set, or batch t mod nb of epoch t div nb."""
    k = a.shape[0]
    p = w.shape[0]
    n = Z.shape[0]
    if batch_size == 0:
        return _smp.sampled_loss_grad_serial_into(s, w, a, Z, y, k, p, stride, normalize, grad_w, grad_a)
    nb = (n + batch_size - 1) // batch_size
    e = t // nb
    j = t - e * nb
    if state_i[ORDER_EPOCH] != e:
        order[:] = epoch_order(seed, e, n)
        state_i[ORDER_EPOCH] = e
    lo = j * batch_size
    rows = min(n, lo + batch_size) - lo
    X = np.empty((rows, Z.shape[1]))
    labels = np.empty(rows)
    for r in range(rows):
        X[r, :] = Z[order[lo + r]]
        labels[r] = y[order[lo + r]]
    return _smp.sampled_loss_grad_serial_into(s, w, a, X, labels, k, p, stride, normalize, grad_w, grad_a)


# --------------------------------------------------------------------------- optimizers (section 3)
@njit(**_opts)
def optimizer_update(x, g, lr, first, second, kind, beta, nesterov, beta1, beta2, eps, t, c1, r2):
    """One layer's update in place, each expression as section 3 writes it (fastmath off: no FMA)."""
    for i in range(x.shape[0]):
        if kind == GD:
            x[i] = x[i] - lr * g[i]
        elif kind == MOMENTUM:
            b = g[i] if t == 0 else beta * first[i] + g[i]
            first[i] = b
            d = g[i] + beta * b if nesterov else b
            x[i] = x[i] - lr * d
        else:
            m = beta1 * first[i] + (1.0 - beta1) * g[i]
            v = beta2 * second[i] + (1.0 - beta2) * (g[i] * g[i])
            first[i] = m
            second[i] = v
            x[i] = x[i] - (lr / c1) * (m / (math.sqrt(v) * r2 + eps))


# --------------------------------------------------------------------------- the step loop (section 4)
@njit(**_opts)
def observe(s, w, a, w_star, a_star, loss, train_loss, step, u, u_star, perp, row):
    """row = (step, L, phi, a.a*, |a - a*|, |w|, train_loss)."""
    p = w.shape[0]
    for t in range(p):
        u[t] = w[t] + s[t]
        u_star[t] = w_star[t] + s[t]
    row[0] = step
    row[1] = loss
    row[2] = _pop.angle_and_perp(u, u_star, perp)
    row[3] = _pop.dot(a, a_star)
    acc = 0.0
    for j in range(a.shape[0]):
        acc += (a[j] - a_star[j]) * (a[j] - a_star[j])
    row[4] = math.sqrt(acc)
    row[5] = math.sqrt(_pop.dot(w, w))
    row[6] = train_loss


@njit(**_opts)
def advance_trial(s, w, a, w_star, a_star, stride, normalize, rates, rates_first, n_steps, tol, divergence,
                  kind, beta, nesterov, beta1, beta2, eps, first_w, first_a, second_w, second_a,
                  source, batch_size, single, seed, Z, y, order,
                  last_step, state_i, state_f, history, record_every, record):
    """Advance one trial through step last_step; True when it is done."""
    p = w.shape[0]
    k = a.shape[0]
    n_rates = rates.shape[0]
    grad_w = np.empty(p)
    grad_a = np.empty(k)
    u = np.empty(p)
    u_star = np.empty(p)
    perp = np.empty(p)
    limit = divergence * divergence
    if source == EMPIRICAL and state_i[HAS_DATA] == 0:
        make_training_set(s, w_star, a_star, stride, normalize, seed, single, Z, y)
        state_i[HAS_DATA] = 1
    while state_i[DONE] == 0 and state_i[STEP] <= last_step:
        t = state_i[STEP]
        loss = population_loss_grad(s, w, a, w_star, a_star, stride, source == POPULATION, normalize, grad_w, grad_a,
                                    u, u_star, perp)
        train_loss = math.nan
        if source == SAMPLED:
            train_loss = _smp.stochastic_loss_grad_serial_into(s, w, a, w_star, a_star, batch_size, k, p, stride,
                                                               normalize, step_seed(seed, t), single, grad_w, grad_a)
        elif source == EMPIRICAL:
            train_loss = empirical_loss_grad(s, w, a, stride, normalize, batch_size, seed, t, Z, y, order, state_i,
                                             grad_w, grad_a)
        state_f[TRAIN_LOSS] = train_loss
        diverged = not (loss <= divergence)  # NaN counts as diverged
        converged = (not diverged) and loss <= tol
        if converged:
            state_i[STEPS_TO_TOL] = t
        done = diverged or converged or t == n_steps
        if record and (done or t % record_every == 0):
            observe(s, w, a, w_star, a_star, loss, train_loss, t, u, u_star, perp, history[state_i[N_RECORDS]])
            state_i[N_RECORDS] += 1
        if done:
            state_i[DONE] = 1
            state_f[LOSS] = loss
            break
        row = min(t - rates_first, n_rates - 1)  # the last row repeats
        c1 = 1.0
        r2 = 1.0
        if kind == ADAM:
            state_f[P1] = beta1 * state_f[P1]
            state_f[P2] = beta2 * state_f[P2]
            c1 = 1.0 - state_f[P1]
            r2 = 1.0 / math.sqrt(1.0 - state_f[P2])
        optimizer_update(w, grad_w, rates[row, 0], first_w, second_w, kind, beta, nesterov, beta1, beta2, eps, t,
                         c1, r2)
        optimizer_update(a, grad_a, rates[row, 1], first_a, second_a, kind, beta, nesterov, beta1, beta2, eps, t,
                         c1, r2)
        state_i[STEP] = t + 1
        if not (_pop.dot(w, w) <= limit) or not (_pop.dot(a, a) <= limit):
            state_i[DONE] = 1
            state_f[LOSS] = population_loss_grad(s, w, a, w_star, a_star, stride, False, normalize, grad_w, grad_a,
                                                 u, u_star, perp)
            if record:
                observe(s, w, a, w_star, a_star, state_f[LOSS], math.nan, t + 1, u, u_star, perp,
                        history[state_i[N_RECORDS]])
                state_i[N_RECORDS] += 1
    return state_i[DONE] == 1


@njit(**_opts)
def advance_range(s, w, a, w_star, a_star, stride, normalize, n_steps, tol, divergence,
                  kind, beta, nesterov, beta1, beta2, eps, first_w, first_a, second_w, second_a,
                  source, batch_size, single, seeds, Z, y, order, rates, rates_first,
                  last_step, state_i, state_f, history, record_every, record, offset, lo, hi):
    """Advance the unfinished trials offset+lo .. offset+hi-1 through step last_step (GIL released);
    Z, y, order hold the training sets of the wave starting at trial offset."""
    for g in range(lo, hi):
        b = offset + g
        if state_i[b, DONE] == 0:
            advance_trial(s, w[b], a[b], w_star[b], a_star[b], stride, normalize, rates, rates_first, n_steps, tol,
                          divergence,
                          kind, beta, nesterov, beta1, beta2, eps, first_w[b], first_a[b], second_w[b], second_a[b],
                          source, batch_size, single, seeds[b], Z[g], y[g], order[g],
                          last_step, state_i[b], state_f[b], history, record_every, record)


def _frozen(x):
    """A read-only view: one Numba specialization whatever the caller's flags (see numba_backend)."""
    view = x.view()
    view.flags.writeable = False
    return view


def population_cost(k, p, stride):
    """Work units of one population loss and gradient: the closed form reads w and a a few times;
    overlapping patches sum four pair terms of about p entries and a kappa over 2k - 1 shifts."""
    if stride >= p:
        return 4 * (k + p)
    return (2 * k - 1) * (6 * p + 3 * k + 160)


def _batch_rows(source, batch_size, n_train):
    """Samples a step's stochastic gradient reads."""
    if source == POPULATION:
        return 0
    if source == SAMPLED:
        return batch_size
    return batch_size or n_train


def run_engine(s, stride, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer, gradient,
               batch_size, n_train, seeds, dtype, record_every, threads):
    """B trials of docs/training.md, parallel over trials; the results of reference_engine.run_engine."""
    kind, beta, nesterov, beta1, beta2, eps = optimizer
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected a kind in {sorted(OPTIMIZERS)}, got {kind!r}")
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient: expected one of {sorted(GRADIENTS)}, got {gradient!r}")
    B, p = w0.shape
    k = a0.shape[1]
    d = (k - 1) * int(stride) + p
    record_every = int(record_every)
    if record_every and B != 1:
        raise ValueError(f"record_every: a history is recorded for one trial only (B == 1), got B = {B}")
    source = GRADIENTS[gradient]
    if source != POPULATION and np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype: expected float32 or float64 batches, got {np.dtype(dtype)}")
    single = source != POPULATION and np.dtype(dtype) == np.float32
    n_train = int(n_train) if source == EMPIRICAL else 0
    batch_size = int(batch_size) if source != POPULATION else 0
    threads = max_threads() if threads is None else int(threads)

    w = np.array(w0, dtype=np.float64)
    a = np.array(a0, dtype=np.float64)
    state_i = np.zeros((B, 6), dtype=np.int64)
    state_i[:, STEPS_TO_TOL] = -1
    state_i[:, ORDER_EPOCH] = -1
    state_f = np.ones((B, 4))
    state_f[:, TRAIN_LOSS] = math.nan
    moments = [np.zeros((B, n)) for n in (p, k, p, k)]  # first_w, first_a, second_w, second_a
    seeds = _frozen(np.ascontiguousarray(seeds, dtype=np.uint64))

    cost = population_cost(k, p, int(stride)) + _batch_rows(source, batch_size, n_train) * (k * p + d)
    wave = B
    if source == EMPIRICAL:
        wave = min(B, max(threads, TRAINING_SET_BYTES // max(1, 8 * n_train * (d + 1))))
    # The first chunk by the cost estimate, every later one by the measured time of the last.
    chunk = max(1, WORK_PER_CHUNK * threads // (wave * cost))
    record = record_every > 0
    windows = gives_windows(rates)
    pieces = []
    args = (_frozen(s), w, a, _frozen(w_star), _frozen(a_star), int(stride), bool(normalize),
            int(steps), float(tol), float(thresholds[4]), OPTIMIZERS[kind], float(beta), bool(nesterov), float(beta1),
            float(beta2), float(eps), *moments, source, batch_size, bool(single), seeds)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for offset in range(0, B, wave):
            size = min(wave, B - offset)
            Z = np.empty((size, n_train, d))
            y = np.empty((size, n_train))
            order = np.empty((size, n_train), dtype=np.int64)
            n_blocks = min(size, 8 * threads)
            edges = np.linspace(0, size, n_blocks + 1).astype(np.int64)
            blocks = list(zip(edges[:-1].tolist(), edges[1:].tolist()))
            table, first = _frozen(rates_from(rates, 0)), 0
            rates_last = last_rate_step(first, table.shape[0], windows, steps)
            last = -1
            # Trials are independent: threads take blocks of them (nogil code), so results do
            # not depend on the thread count, and Ctrl-C is seen between chunks.
            while not np.all(state_i[offset: offset + size, DONE] == 1):
                if last == rates_last:
                    table, first = _frozen(rates_from(rates, last + 1)), last + 1
                    rates_last = last_rate_step(first, table.shape[0], windows, steps)
                target = min(last + chunk, rates_last)
                history = np.empty(((target - last) // max(record_every, 1) + 3 if record else 0, 7))
                state_i[:, N_RECORDS] = 0
                started = time.perf_counter()
                list(pool.map(lambda block: advance_range(*args, Z, y, order, table, first, target, state_i, state_f,
                                                          history, max(record_every, 1), record, offset, *block),
                              blocks))
                elapsed = time.perf_counter() - started
                chunk = max(1, min(int(chunk * 4), int((target - last) * CHUNK_SECONDS / max(elapsed, 1e-6))))
                last = target
                if record:
                    pieces.append(history[: state_i[0, N_RECORDS]].copy())
            del Z, y, order
    phi = final_angles(_frozen(s), w, _frozen(w_star))
    loss = state_f[:, LOSS].copy()
    code = classify_raw(s, stride, normalize, w, a, w_star, a_star, loss, phi, Thresholds(*thresholds))
    hist = np.concatenate(pieces) if record else None
    return (code, phi, loss, state_i[:, STEPS_TO_TOL].copy(), state_i[:, STEP].copy(), w, a,
            state_f[:, TRAIN_LOSS].copy(), hist)


@njit(**_opts)
def final_angles(s, w, w_star):
    B, p = w.shape
    phi = np.empty(B)
    perp = np.empty(p)
    for b in range(B):
        phi[b] = _pop.angle_and_perp(w[b] + s, w_star[b] + s, perp)
    return phi


def max_threads() -> int:
    return os.cpu_count() or 1
