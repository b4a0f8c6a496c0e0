"""The reduced engine of ``docs/reduced.md`` in NumPy: population gradient descent (gd or momentum)
on the non-overlapping model in order-parameter coordinates, B trials in lockstep.

The readable form of the specification the compiled reduced engines are tested against.  The
filter lives in the plane span(u*, u0) as ``u = x e1 + y e2`` and the second layer in
span(a*, 1, a0) as ``a = sum_i alpha_i f_i`` (three slots: f_1 from a*, f_2 from 1, f_3 from a0,
an empty slot holding a zero vector and zero coordinates); a step costs O(1) whatever k and p.
Teachers with a first axis of 1 are shared by every trial: their basis vectors keep that axis.
"""
from __future__ import annotations

import math

import numpy as np

from ..outcomes import Thresholds, classify_observables
from ..schedules import gives_windows, last_rate_step, rates_from
from . import reference, reference_trials

PI = math.pi
TWO_PI = 2.0 * math.pi
INV_TWO_PI = reference.INV_TWO_PI
HISTORY_COLUMNS = ("step", "loss", "phi", "a_dot_astar", "a_err", "w_norm", "train_loss")
OPTIMIZERS = ("gd", "momentum")

# Gram-Schmidt keeps a vector when its residual is larger than this times its norm (section 2).
KEEP_RELATIVE = 1e-13
# u0 counts as parallel to u* when its orthogonal part is below this times |u0|.  An exactly
# parallel u0 (p = 1, u0 = c u*) leaves a residual of a few eps^2 |u0| ~ 1e-31 |u0| pointing
# anywhere, even along u*, which would make e2 a second copy of e1; above the threshold e2 is
# orthogonal to e1 within eps + eps^2/1e-20 ~ 1e-12 (twice is enough).
PARALLEL_RELATIVE = 1e-20


def _dot(x, y):
    return (x * y).sum(-1)


def _norm(x):
    return np.sqrt(_dot(x, x))


# --------------------------------------------------------------------------- set-up (section 2)
def orthogonal_part(x, y):
    """The part of y (B, n) orthogonal to x (1 or B, n): y - (x.y / x.x) x from the exact products
    (Dekker) and projected a second time, so that it keeps its relative accuracy when y is nearly
    parallel or antiparallel to x (as ``reference_trials.angle_and_perp`` forms it near 0 and pi)."""
    xx = _dot(x, x)
    inv_xx = 1.0 / xx
    c = (_dot(x, y) * inv_xx)[:, None]
    p_hi, p_lo = reference._two_prod(c, x)
    r = (y - p_hi) - p_lo
    return r - (_dot(x, r) * inv_xx)[:, None] * x


def _residual(v, basis):
    """v minus its projections on the orthonormal (or zero) vectors of basis, twice."""
    r = v
    for _ in range(2):
        for f in basis:
            r = r - _dot(r, f)[..., None] * f
    return r


def _unit_or_zero(r, keep):
    n = _norm(r)
    safe = np.where(keep, n, 1.0)
    return np.where(keep[..., None], r / safe[..., None], 0.0), np.where(keep, n, 0.0)


class Coordinates:
    """The bases and constants of B trials (section 2).

    u-plane: e1 (1 or B, p), e2 (B, p), rho_star, x0, y0, and w0 = omega1 e1 + omega2 e2 + omega_perp;
    a-space: f = [f_1, f_2, f_3] (each (1 or B, k)), the coordinates A of a*, C of 1 and alpha0 of a0
    (each (1 or B, 3)).
    """

    def __init__(self, s, w0, a0, w_star, a_star):
        k = a0.shape[1]
        u0 = w0 + s
        u_star = w_star + s
        self.rho_star = _norm(u_star)
        self.e1 = u_star / self.rho_star[:, None]
        self.x0 = _dot(u0, u_star) / self.rho_star
        r = orthogonal_part(u_star, u0)
        # u0 parallel or antiparallel to u*: the plane is a line and y stays 0.
        self.e2, self.y0 = _unit_or_zero(r, _norm(r) > PARALLEL_RELATIVE * _norm(u0))
        self.omega1 = _dot(w0, self.e1)
        self.omega2 = _dot(w0, self.e2)
        omega_perp = w0 - self.omega1[:, None] * self.e1 - self.omega2[:, None] * self.e2
        self.omega_perp_sq = _dot(omega_perp, omega_perp)

        ones = np.ones((1, k))
        n_star = _norm(a_star)
        f1, _ = _unit_or_zero(a_star, n_star > 0.0)
        r2 = _residual(ones, [f1])
        n2 = _norm(r2)
        f2, c2 = _unit_or_zero(r2, n2 > KEEP_RELATIVE * math.sqrt(k))
        r3 = _residual(a0, [f1, f2])
        n3 = _norm(r3)
        f3, alpha3 = _unit_or_zero(r3, n3 > KEEP_RELATIVE * _norm(a0))
        self.f = [f1, f2, f3]
        zero_star = np.zeros_like(n_star)
        self.A = np.stack([n_star, zero_star, zero_star], axis=-1)
        # 1.f_2 = |residual of 1| and a0.f_3 = |residual of a0| exactly in exact arithmetic.
        self.C = np.stack([_dot(ones, f1), c2, np.zeros_like(c2)], axis=-1)
        self.alpha0 = np.stack([_dot(a0, f1), _dot(a0, f2), alpha3], axis=-1)
        self.k = k

    def w_norm_sq(self, x, y, idx=slice(None)):
        """|w|^2 of the trials idx at (x, y): w0 moved by (x - x0) e1 + (y - y0) e2."""
        w1 = self.omega1[idx] + (x - self.x0[idx])
        w2 = self.omega2[idx] + (y - self.y0[idx])
        return w1 * w1 + w2 * w2 + self.omega_perp_sq[idx]

    def rebuild(self, w0, a0, x, y, alpha):
        """w = w0 + (x - x0) e1 + (y - y0) e2 and a = a0 + sum_i (alpha_i - alpha0_i) f_i."""
        w = w0 + (x - self.x0)[:, None] * self.e1 + (y - self.y0)[:, None] * self.e2
        moved = alpha - self.alpha0
        a = a0 + moved[:, 0:1] * self.f[0] + moved[:, 1:2] * self.f[1] + moved[:, 2:3] * self.f[2]
        return w, a


def _rows(x, idx):
    """The rows idx of a per-trial array, or the shared row of a (1, ...) array."""
    return x if x.shape[0] == 1 else x[idx]


# --------------------------------------------------------------------------- one step (section 3)
def angle(x, y):
    """phi = atan2(|y|, x) in [0, pi]."""
    return np.arctan2(np.abs(y), x)


def loss_grad(normalize, rho_star, A, C, x, y, alpha):
    """Population loss (n,) and its gradients in (x, y) and alpha (n, 3) of n states in coordinates;
    rho_star (n,) or (1,), A and C (n, 3) or (1, 3)."""
    rho = np.sqrt(x * x + y * y)
    q = 1.0 / rho
    phi = angle(x, y)
    pmg = reference_trials.pi_minus_g(phi)
    g = PI - pmg
    a_dot = _dot(A, alpha)
    if normalize:
        D = alpha - A
        c = 1.0
    else:
        D = rho[:, None] * alpha - rho_star[:, None] * A
        c = rho * rho_star
    CD = _dot(C, D)
    loss = (CD * CD + (PI - 1.0) * _dot(D, D) + 2.0 * c * pmg * a_dot) / (4.0 * PI)
    if normalize:
        grad_alpha = (CD[:, None] * C + (PI - 1.0) * alpha - (g - 1.0)[:, None] * A) * INV_TWO_PI
        yq = y * q
        coef = -(a_dot * (PI - phi) / TWO_PI) * q * yq
        grad_x = coef * yq
        grad_y = coef * -(x * q)
    else:
        S = _dot(C, alpha)
        S_star = _dot(C, A)
        N = _dot(alpha, alpha)
        rr = (rho * rho)[:, None]
        rrs = (rho * rho_star)[:, None]
        grad_alpha = (rr * (S[:, None] * C + (PI - 1.0) * alpha)
                      - rrs * (S_star[:, None] * C + (g - 1.0)[:, None] * A)) / TWO_PI
        sin_phi = np.abs(y) * q
        cu = S * S + (PI - 1.0) * N
        c_hat = rho_star * (S * S_star - a_dot + a_dot * sin_phi)
        grad_x = (cu * x - c_hat * (x * q) - a_dot * (PI - phi) * rho_star) / TWO_PI
        grad_y = (cu * y - c_hat * (y * q)) / TWO_PI
    return loss, phi, grad_x, grad_y, grad_alpha


def observables(normalize, rho_star, A, C, x, y, alpha):
    """Loss, phi, a.a*, |a - a*| of n states in coordinates (the trajectory's columns)."""
    loss, phi = loss_grad(normalize, rho_star, A, C, x, y, alpha)[:2]
    return loss, phi, _dot(A, alpha), _norm(alpha - A)


def outcome(normalize, k, rho_star, A, C, x, y, alpha, loss, phi, w_norm, thresholds):
    """The outcome rule of ``shortcutnet.outcomes`` in coordinates (section 4)."""
    a_norm = _norm(alpha)
    if normalize:
        a_err = _norm(alpha - A)
        a_sp = ((PI / (PI - 1.0 + k)) * _dot(C, A)[:, None] * C - A) / (PI - 1.0)
        diff = a_sp - A
        CD = _dot(C, diff)
        loss_sp = (CD * CD + (PI - 1.0) * _dot(diff, diff) + 2.0 * PI * _dot(a_sp, A)) / (4.0 * PI)
        return classify_observables(loss, phi, w_norm, a_norm, a_err, _norm(alpha - a_sp), loss_sp, thresholds)
    rho = np.sqrt(x * x + y * y)
    a_err = _norm(rho[:, None] * alpha - rho_star[:, None] * A)
    return classify_observables(loss, phi, w_norm, a_norm, a_err, None, None, thresholds)


# --------------------------------------------------------------------------- optimizers (training.md section 3)
class Optimizer:
    """gd or momentum on the coordinates (x, y) with lr_w and alpha with lr_a, buffers alike."""

    def __init__(self, spec, B):
        kind, beta, nesterov = spec[0], spec[1], spec[2]
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer: the reduced engine runs one of {list(OPTIMIZERS)} (its updates stay in "
                             f"the coordinates' subspaces), got {kind!r}")
        self.momentum = kind == "momentum"
        self.beta, self.nesterov = float(beta), bool(nesterov)
        if self.momentum:
            self.buffers = [np.zeros(B), np.zeros(B), np.zeros((B, 3))]

    def _layer(self, x, g, lr, i, idx, t):
        if not self.momentum:
            return x - lr * g
        b = g if t == 0 else self.beta * self.buffers[i][idx] + g
        self.buffers[i][idx] = b
        d = g + self.beta * b if self.nesterov else b
        return x - lr * d

    def step(self, idx, t, x, y, alpha, grad_x, grad_y, grad_alpha, lr_w, lr_a):
        """New (x, y, alpha) of the trials idx after step t."""
        return (self._layer(x, grad_x, lr_w, 0, idx, t), self._layer(y, grad_y, lr_w, 1, idx, t),
                self._layer(alpha, grad_alpha, lr_a, 2, idx, t))


# --------------------------------------------------------------------------- the step loop (training.md section 4)
def run_reduced(s, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer, record_every,
                threads):
    """B trials of population gd or momentum in coordinates (``threads`` is ignored: NumPy runs serially).

    Returns (outcome int8 (B,), phi, loss, steps_to_tol, steps, w, a, train_loss, history) as
    ``reference_engine.run_engine`` does: train_loss is NaN (population gradient), history the
    (n_rec, 7) table of HISTORY_COLUMNS when record_every > 0 (B == 1), else None.
    """
    B = w0.shape[0]
    record_every = int(record_every)
    if record_every and B != 1:
        raise ValueError(f"record_every: a history is recorded for one trial only (B == 1), got B = {B}")
    opt = Optimizer(optimizer, B)
    normalize = bool(normalize)
    n_steps = int(steps)
    tol = float(tol)
    divergence = float(thresholds[4])
    limit = divergence * divergence
    with np.errstate(all="ignore"):
        co = Coordinates(s, w0, a0, w_star, a_star)
    x, y, alpha = co.x0.copy(), co.y0.copy(), co.alpha0.copy()
    step = np.zeros(B, dtype=np.int64)
    steps_to_tol = np.full(B, -1, dtype=np.int64)
    loss = np.zeros(B)
    done = np.zeros(B, dtype=bool)
    history = []

    def record(idx, t, loss_idx):
        _, phi, a_dot, a_err = observables(normalize, _rows(co.rho_star, idx), _rows(co.A, idx), _rows(co.C, idx),
                                           x[idx], y[idx], alpha[idx])
        w_norm = np.sqrt(co.w_norm_sq(x[idx], y[idx], idx))
        table = np.column_stack([np.full(idx.shape[0], float(t)), loss_idx, phi, a_dot, a_err, w_norm,
                                 np.full(idx.shape[0], math.nan)])
        history.extend(table.tolist())

    t = 0
    table, first = rates_from(rates, 0), 0
    rates_last = last_rate_step(first, table.shape[0], gives_windows(rates), n_steps)
    with np.errstate(all="ignore"):  # diverging trials are detected by the stop rule, not warned about
        while True:
            active = np.flatnonzero(~done)
            if active.size == 0:
                break
            rho_star, A, C = _rows(co.rho_star, active), _rows(co.A, active), _rows(co.C, active)
            L, _, grad_x, grad_y, grad_alpha = loss_grad(normalize, rho_star, A, C, x[active], y[active],
                                                         alpha[active])
            diverged = ~(L <= divergence)  # NaN counts as diverged
            converged = ~diverged & (L <= tol)
            steps_to_tol[active[converged]] = t
            stop = diverged | converged | (t == n_steps)
            if record_every and (t % record_every == 0 or stop.any()):
                keep = np.ones_like(stop) if t % record_every == 0 else stop
                record(active[keep], t, L[keep])
            loss[active[stop]] = L[stop]
            done[active[stop]] = True
            go = active[~stop]
            if go.size == 0:
                continue
            if t > rates_last:
                table, first = rates_from(rates, t), t
                rates_last = last_rate_step(first, table.shape[0], gives_windows(rates), n_steps)
            lr_w, lr_a = table[min(t - first, table.shape[0] - 1)]  # a table's last row repeats
            move = ~stop
            x[go], y[go], alpha[go] = opt.step(go, t, x[go], y[go], alpha[go], grad_x[move], grad_y[move],
                                               grad_alpha[move], float(lr_w), float(lr_a))
            t += 1
            step[go] = t
            ran_away = go[~((co.w_norm_sq(x[go], y[go], go) <= limit) & (_dot(alpha[go], alpha[go]) <= limit))]
            if ran_away.size:
                loss[ran_away] = loss_grad(normalize, _rows(co.rho_star, ran_away), _rows(co.A, ran_away),
                                           _rows(co.C, ran_away), x[ran_away], y[ran_away], alpha[ran_away])[0]
                if record_every:
                    record(ran_away, t, loss[ran_away])
                done[ran_away] = True
        phi = angle(x, y)
        w_norm = np.sqrt(co.w_norm_sq(x, y))
        code = outcome(normalize, co.k, co.rho_star, co.A, co.C, x, y, alpha, loss, phi, w_norm,
                       Thresholds(*thresholds))
        w, a = co.rebuild(w0, a0, x, y, alpha)
    hist = np.array(history, dtype=np.float64).reshape(-1, 7) if record_every else None
    return code, phi, loss, steps_to_tol, step, w, a, np.full(B, math.nan), hist
