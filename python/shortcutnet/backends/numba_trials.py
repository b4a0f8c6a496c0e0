"""Exact population gradient descent as ``@njit`` code: the engine of ``cpp/shortcutnet/trials.hpp``
step for step (one trial with its trajectory, or a batch of trials in parallel).

Runs are advanced in chunks of steps from Python, so Ctrl-C is honored between chunks; the
state of a trial lives in small arrays (``state_i = [step, steps_to_tol, done, n_records]``,
``state_f = [loss]``).  The outcome is classified afterwards by ``shortcutnet.outcomes``.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from . import numba_population as _pop

_opts = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

# About this many trial-steps between two interrupt checks.
TRIAL_STEPS_PER_CHUNK = 1 << 18


@njit(**_opts)
def _loss_grad(s, w, a, w_star, a_star, stride, normalize, grad_w, grad_a, u, u_star, perp):
    p = w.shape[0]
    for t in range(p):
        u[t] = w[t] + s[t]
        u_star[t] = w_star[t] + s[t]
    if stride >= p:
        return _pop._non_overlapping(u, u_star, a, a_star, normalize, True, grad_w, grad_a, perp)
    return _pop._overlapping(u, u_star, a, a_star, stride, normalize, True, grad_w, grad_a)


@njit(**_opts)
def _observe(s, w, a, w_star, a_star, loss, step, u, u_star, perp, row):
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


@njit(**_opts)
def advance_trial(s, w, a, w_star, a_star, stride, normalize, rates, n_steps, tol, record_every, divergence,
                  last_step, state_i, state_f, history, record):
    """Advance one trial through step last_step (see trials.hpp, advance_trial); True when done."""
    p = w.shape[0]
    k = a.shape[0]
    n_rates = rates.shape[0]
    grad_w = np.empty(p)
    grad_a = np.empty(k)
    u = np.empty(p)
    u_star = np.empty(p)
    perp = np.empty(p)
    limit = divergence * divergence
    while state_i[2] == 0 and state_i[0] <= last_step:
        t = state_i[0]
        loss = _loss_grad(s, w, a, w_star, a_star, stride, normalize, grad_w, grad_a, u, u_star, perp)
        diverged = not (loss <= divergence)
        converged = (not diverged) and loss <= tol
        if converged:
            state_i[1] = t
        if diverged or converged or t == n_steps:
            state_i[2] = 1
            state_f[0] = loss
        if record and (state_i[2] == 1 or t % record_every == 0):
            _observe(s, w, a, w_star, a_star, loss, t, u, u_star, perp, history[state_i[3]])
            state_i[3] += 1
        if state_i[2] == 1:
            break
        row = min(t, n_rates - 1)  # the last row repeats
        lr_w = rates[row, 0]
        lr_a = rates[row, 1]
        w_sq = 0.0
        a_sq = 0.0
        for i in range(p):
            w[i] -= lr_w * grad_w[i]
            w_sq += w[i] * w[i]
        for j in range(k):
            a[j] -= lr_a * grad_a[j]
            a_sq += a[j] * a[j]
        state_i[0] = t + 1
        if not (w_sq <= limit) or not (a_sq <= limit):
            state_i[2] = 1
            state_f[0] = _loss_grad(s, w, a, w_star, a_star, stride, normalize, grad_w, grad_a, u, u_star, perp)
            if record:
                _observe(s, w, a, w_star, a_star, state_f[0], state_i[0], u, u_star, perp, history[state_i[3]])
                state_i[3] += 1
    return state_i[2] == 1


@njit(**_opts)
def advance_range(s, w, a, w_star, a_star, stride, normalize, rates, n_steps, tol, divergence, last_step, state_i,
                  state_f, lo, hi):
    """Advance the unfinished trials lo..hi-1 of a batch through step last_step (GIL released)."""
    no_history = np.empty((0, 6))
    for b in range(lo, hi):
        if state_i[b, 2] == 0:
            advance_trial(s, w[b], a[b], w_star[b], a_star[b], stride, normalize, rates, n_steps, tol, 1, divergence,
                          last_step, state_i[b], state_f[b], no_history, False)


@njit(**_opts)
def final_angles(s, w, w_star):
    B, p = w.shape
    phi = np.empty(B)
    perp = np.empty(p)
    for b in range(B):
        phi[b] = _pop.angle_and_perp(w[b] + s, w_star[b] + s, perp)
    return phi


def train_population(s, w0, a0, w_star, a_star, stride, normalize, rates, n_steps, tol, record_every, divergence):
    """One trial: (w, a, steps, steps_to_tol, loss, phi, history)."""
    w = np.array(w0, dtype=np.float64)
    a = np.array(a0, dtype=np.float64)
    n_steps = int(n_steps)
    state_i = np.array([0, -1, 0, 0], dtype=np.int64)
    state_f = np.zeros(1)
    # One history buffer per chunk (a chunk records at most chunk/record_every + 2 rows), so a
    # long run allocates only what it records.
    buffer = np.empty((TRIAL_STEPS_PER_CHUNK // int(record_every) + 3, 6))
    pieces = []
    last = -1
    while True:
        last += TRIAL_STEPS_PER_CHUNK
        state_i[3] = 0
        done = advance_trial(s, w, a, w_star, a_star, int(stride), bool(normalize), rates, n_steps, float(tol),
                             int(record_every), float(divergence), last, state_i, state_f, buffer, True)
        pieces.append(buffer[: state_i[3]].copy())
        if done:
            break
    history = np.concatenate(pieces)
    phi = float(final_angles(s, w[None, :], w_star[None, :])[0])
    return w, a, int(state_i[0]), int(state_i[1]), float(state_f[0]), phi, history


def run_trials(s, w0, a0, w_star, a_star, stride, normalize, rates, n_steps, tol, divergence, threads):
    """B trials: (phi, loss, steps_to_tol, w, a, steps); outcomes are classified by the caller."""
    w = np.array(w0, dtype=np.float64)
    a = np.array(a0, dtype=np.float64)
    B = w.shape[0]
    state_i = np.zeros((B, 4), dtype=np.int64)
    state_i[:, 1] = -1
    state_f = np.zeros((B, 1))
    chunk = max(1, TRIAL_STEPS_PER_CHUNK * threads // B)
    # Trials are independent: threads take blocks of them (nogil code), so results do not
    # depend on the thread count, and Ctrl-C is seen between chunks.
    n_blocks = min(B, 8 * threads)
    edges = np.linspace(0, B, n_blocks + 1).astype(np.int64)
    blocks = list(zip(edges[:-1].tolist(), edges[1:].tolist()))
    args = (s, w, a, w_star, a_star, int(stride), bool(normalize), rates, int(n_steps), float(tol), float(divergence))
    last = -1
    with ThreadPoolExecutor(max_workers=threads) as pool:
        while not np.all(state_i[:, 2] == 1):
            last += chunk
            list(pool.map(lambda block: advance_range(*args, last, state_i, state_f, *block), blocks))
    phi = final_angles(s, w, w_star)
    return phi, state_f[:, 0].copy(), state_i[:, 1].copy(), w, a, state_i[:, 0].copy()


def max_threads() -> int:
    return os.cpu_count() or 1
