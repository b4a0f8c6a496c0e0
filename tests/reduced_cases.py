"""Problems and helpers shared by the tests of the reduced engine (docs/reduced.md)."""
from __future__ import annotations

import math

import numpy as np

import shortcutnet as sn

THRESHOLDS = sn.Thresholds().as_tuple()
SHORTCUTS = ("on", "off", "custom")

# The full engine forms a - a* and the part of u orthogonal to u* with absolute errors of a few
# eps per step, so its relative accuracy in phi, |a - a*| and L is about eps/phi, eps/|a - a*|
# and eps/sqrt(L): rows below these floors measure its rounding, not the reduction.
PHI_FLOOR = 1e-5
LOSS_FLOOR = 1e-10  # times the loss scale |a*|^2 (normalized) or |u*|^2 |a*|^2


def make_model(rng, k, p, shortcut, normalize):
    if shortcut == "custom":
        s = rng.standard_normal(p)
        s /= np.linalg.norm(s)  # |s| = 1 as for the identity shortcut, keeping |u|^2 > lr_w a.a*/4
    else:
        s = shortcut == "on"
    return sn.Model(k, p, shortcut=s, normalize=normalize)


def random_problem(rng, model):
    """(w_star, a_star, w0, a0): the paper's set-up (w0 = 0 with a shortcut, a unit w0 without one)."""
    k, p = model.k, model.p
    a_star = rng.standard_normal(k)
    w_star = rng.standard_normal(p) * (math.sqrt(0.25 / p) if model.has_shortcut else 1.0)
    if model.has_shortcut:
        w0 = np.zeros(p)
    else:
        w0 = rng.standard_normal(p)
        w0 /= np.linalg.norm(w0)
    a0 = sn.init_second_layer(model, a_star, rng)
    return w_star, a_star, w0, a0


def schedule(kind, lr, rng):
    """A step size of the given kind around lr: a constant pair, a table, or a callable."""
    if kind == "constant":
        return (lr, lr * rng.uniform(0.5, 1.0))
    if kind == "table":
        return sn.piecewise([37, 150], [(lr, 0.5 * lr), (0.5 * lr, lr), (0.8 * lr, 0.7 * lr)])
    if kind == "callable":
        return lambda t: (lr * (1.0 + 0.3 * math.sin(t / 7.0)), lr / (1.0 + t / 400.0))
    raise ValueError(kind)


def optimizer(kind, lr):
    if kind == "gd":
        return sn.optim.gd(lr)
    if kind == "heavy-ball":
        return sn.optim.momentum(lr, beta=0.6)
    if kind == "nesterov":
        return sn.optim.momentum(lr, beta=0.6, nesterov=True)
    raise ValueError(kind)


def rates(opt, steps):
    """The rates table the engines take (training.md section 4)."""
    schedule = opt.lr
    return np.ascontiguousarray(schedule.table(steps) if schedule.tabulated else schedule.rates(steps))


def run_reduced(module, model, w_star, a_star, w0, a0, opt, steps, *, tol=0.0, record_every=1, threads=None):
    """module.run_reduced on one trial (1-D arrays) or a batch (2-D w0, a0; teachers 1-D shared or 2-D)."""
    w0, a0 = np.atleast_2d(w0), np.atleast_2d(a0)
    w_star, a_star = np.atleast_2d(w_star), np.atleast_2d(a_star)
    w0, a0, w_star, a_star = (np.ascontiguousarray(x, dtype=np.float64) for x in (w0, a0, w_star, a_star))
    return module.run_reduced(model.s, model.normalize, w0, a0, w_star, a_star, rates(opt, steps), steps, tol,
                              THRESHOLDS, opt.engine_spec(), record_every, threads)


def loss_scale(model, w_star, a_star):
    scale = float(a_star @ a_star)
    if not model.normalize:
        scale *= float(np.sum((w_star + model.s) ** 2))
    return scale


def above_floor(phi, loss, scale):
    """Rows where the full engine resolves phi, L and |a - a*| to better than 1e-10 relative."""
    return (phi > PHI_FLOOR) & (loss > LOSS_FLOOR * scale)


def relative_error(got, want):
    return np.abs(got - want) / np.abs(want)
