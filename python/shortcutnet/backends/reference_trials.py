"""Exact population gradient descent on a batch of B trials, vectorized over B with NumPy.

The readable reference for the compiled engines: MODEL.md section 2's closed forms written for
arrays of shape (B, p) and (B, k), with the same accurate angle as ``reference.angle_and_perp``
(exact products, then a second projection).  Overlapping patches fall back to a loop over
trials with ``reference.population_loss_grad``.
"""
from __future__ import annotations

import math

import numpy as np

from . import reference

PI = math.pi
TWO_PI = 2.0 * math.pi

# About this many trial-steps between two interrupt checks (the loop is in Python anyway).
TRIAL_STEPS_PER_CHUNK = 1 << 16


def angle_and_perp(x, y):
    """Row-wise angle (B,) between x and y (B, n) and the part of y orthogonal to x (B, n)."""
    xx = (x * x).sum(-1)
    xy = (x * y).sum(-1)
    yy = (y * y).sum(-1)
    c = (xy / xx)[:, None]
    near = np.abs(xy) > reference.ACCURATE_COS * np.sqrt(xx * yy)
    perp = y - c * x
    if near.any():
        p_hi, p_lo = reference._two_prod(c[near], x[near])
        perp_near = (y[near] - p_hi) - p_lo
        perp_near -= ((x[near] * perp_near).sum(-1) / xx[near])[:, None] * x[near]
        perp[near] = perp_near
    sin_part = np.sqrt((perp * perp).sum(-1) * xx)
    return np.arctan2(sin_part, xy), perp


def pi_minus_g(phi):
    """Vectorized reference.pi_minus_g."""
    head = TWO_PI * np.sin(0.5 * phi) ** 2
    term = phi.copy()
    tail = np.zeros_like(phi)
    phi2 = phi * phi
    for n in range(1, 12):
        term *= -phi2 * (1.0 / ((2 * n) * (2 * n + 1)))
        tail += 2 * n * term
    return np.where(phi < 0.5, head + tail, head + (phi * np.cos(phi) - np.sin(phi)))


def loss_grad(s, w, a, w_star, a_star, stride, normalize):
    """Population loss (B,) and gradients (B, p), (B, k) of B independent states."""
    p = w.shape[1]
    if stride < p:
        out = [reference.population_loss_grad(s, w[b], a[b], w_star[b], a_star[b], stride, normalize)
               for b in range(w.shape[0])]
        return (np.array([o[0] for o in out]), np.array([o[1] for o in out]), np.array([o[2] for o in out]))
    u = w + s
    u_star = w_star + s
    rho = np.sqrt((u * u).sum(-1))[:, None]
    rho_star = np.sqrt((u_star * u_star).sum(-1))[:, None]
    phi, perp = angle_and_perp(u, u_star)
    phi = phi[:, None]
    a_dot = (a * a_star).sum(-1, keepdims=True)
    pmg = pi_minus_g(phi)
    cs, ct = (1.0, 1.0) if normalize else (rho, rho_star)
    diff = cs * a - ct * a_star
    sum_diff = diff.sum(-1, keepdims=True)
    loss = (sum_diff**2 + (PI - 1.0) * (diff * diff).sum(-1, keepdims=True) + 2.0 * cs * ct * pmg * a_dot) / (4.0 * PI)
    g = PI - pmg
    if normalize:
        grad_a = (sum_diff + (PI - 1.0) * a - (g - 1.0) * a_star) * reference.INV_TWO_PI
        grad_w = -(a_dot * (PI - phi) / (TWO_PI * rho)) / rho_star * perp
    else:
        sum_a = a.sum(-1, keepdims=True)
        sum_a_star = a_star.sum(-1, keepdims=True)
        grad_a = (rho * rho * (sum_a + (PI - 1.0) * a) - rho * rho_star * (sum_a_star + (g - 1.0) * a_star)) / TWO_PI
        cu = sum_a**2 + (PI - 1.0) * (a * a).sum(-1, keepdims=True)
        c_hat = -rho_star * (sum_a * sum_a_star - a_dot) - rho_star * a_dot * np.sin(phi)
        grad_w = (cu * u + c_hat * (u / rho) - a_dot * (PI - phi) * u_star) / TWO_PI
    return loss[:, 0], grad_w, grad_a


def advance_batch(s, w, a, w_star, a_star, stride, normalize, rates, n_steps, tol, divergence, last_step, state):
    """Advance the unfinished trials through step last_step; state: dict of step, steps_to_tol, done, loss."""
    n_rates = rates.shape[0]
    step, steps_to_tol, done, final_loss = state["step"], state["steps_to_tol"], state["done"], state["loss"]
    with np.errstate(all="ignore"):  # diverging trials are detected below, not warned about
        while True:
            active = np.flatnonzero(~done)
            if active.size == 0:
                return True
            t = int(step[active[0]])  # unfinished trials are all at the same step
            if t > last_step:
                return False
            loss, grad_w, grad_a = loss_grad(s, w[active], a[active], w_star[active], a_star[active], stride, normalize)
            diverged = ~(loss <= divergence)
            converged = ~diverged & (loss <= tol)
            steps_to_tol[active[converged]] = t
            stop = diverged | converged | (t == n_steps)
            final_loss[active[stop]] = loss[stop]
            done[active[stop]] = True
            go = active[~stop]
            if go.size == 0:
                continue
            row = min(t, n_rates - 1)  # the last row repeats
            w[go] -= rates[row, 0] * grad_w[~stop]
            a[go] -= rates[row, 1] * grad_a[~stop]
            step[go] = t + 1
            limit = divergence * divergence
            ran_away = go[~(((w[go] ** 2).sum(-1) <= limit) & ((a[go] ** 2).sum(-1) <= limit))]
            if ran_away.size:
                final_loss[ran_away] = loss_grad(s, w[ran_away], a[ran_away], w_star[ran_away], a_star[ran_away],
                                                 stride, normalize)[0]
                done[ran_away] = True


def run_trials(s, w0, a0, w_star, a_star, stride, normalize, rates, n_steps, tol, divergence, threads):
    """B trials: (phi, loss, steps_to_tol, w, a, steps); ``threads`` is ignored (NumPy runs serially)."""
    w = np.array(w0, dtype=np.float64)
    a = np.array(a0, dtype=np.float64)
    B = w.shape[0]
    state = {"step": np.zeros(B, dtype=np.int64), "steps_to_tol": np.full(B, -1, dtype=np.int64),
             "done": np.zeros(B, dtype=bool), "loss": np.zeros(B)}
    chunk = max(1, TRIAL_STEPS_PER_CHUNK // B)
    last = -1
    while not advance_batch(s, w, a, w_star, a_star, stride, normalize, rates, n_steps, tol, divergence, last + chunk,
                            state):
        last += chunk
    with np.errstate(all="ignore"):
        phi = angle_and_perp(w + s, w_star + s)[0]
    return phi, state["loss"], state["steps_to_tol"], w, a, state["step"]
