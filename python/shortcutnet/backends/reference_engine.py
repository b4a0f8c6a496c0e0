"""The training engine of ``docs/training.md`` in NumPy: B independent trials, any gradient source
(population, sampled, empirical full-batch or mini-batch) and any optimizer (gd, momentum, adam).

The readable form of the specification the compiled engines are tested against.  The trials
advance in lockstep (every unfinished trial is at the same step), so the population loss and
gradient, the optimizer updates and the stop rule are vectorized over them; the stochastic
gradients draw samples and are taken trial by trial with the reference sampled kernels.

Parameters, gradients and optimizer state are float64 whatever the batch dtype (section 2).
"""
from __future__ import annotations

import math

import numpy as np

from .. import optim as _optim
from ..outcomes import Thresholds, classify_raw, norms
from ..schedules import gives_windows, last_rate_step, rates_from
from ..seeds import epoch_order, step_seed
from . import reference_sampled, reference_trials

GRADIENTS = ("population", "sampled", "empirical")
OPTIMIZERS = ("gd", "momentum", "adam")
HISTORY_COLUMNS = ("step", "loss", "phi", "a_dot_astar", "a_err", "w_norm", "train_loss")

# About this many trial-steps between two returns to the chunk loop (Ctrl-C is seen there).
TRIAL_STEPS_PER_CHUNK = 1 << 16


# --------------------------------------------------------------------------- optimizers (section 3)
class Optimizer:
    """The optimizer of B trials: the update of ``shortcutnet.optim`` (section 3, the same
    expressions the compiled engines evaluate) applied to the rows of the unfinished trials, which
    are all at the same step."""

    def __init__(self, spec, B: int, p: int, k: int):
        kind, beta, nesterov, beta1, beta2, eps = spec
        makers = {
            "gd": lambda lr: _optim.gd(lr),
            "momentum": lambda lr: _optim.momentum(lr, beta=float(beta), nesterov=bool(nesterov)),
            "adam": lambda lr: _optim.adam(lr, beta1=float(beta1), beta2=float(beta2), eps=float(eps)),
        }
        if kind not in makers:
            raise ValueError(f"optimizer: expected a kind in {list(OPTIMIZERS)}, got {kind!r}")
        self.make = makers[kind]
        self.state = self.make(0.0).init(np.zeros((B, p)), np.zeros((B, k)))

    def step(self, idx, t, w, a, grad_w, grad_a, lr_w, lr_a):
        """Update w[idx] and a[idx] in place with their gradients (rows of grad_w, grad_a) of step t."""
        rows = [x[idx] if isinstance(x, np.ndarray) and x.ndim == 2 else x for x in self.state]
        rows[0] = t
        if isinstance(self.state, _optim.GDState):
            rows[1:] = [grad_w.shape, grad_a.shape]
        upd_w, upd_a, new = self.make((lr_w, lr_a)).update(grad_w, grad_a, type(self.state)(*rows))
        w[idx] = w[idx] + upd_w
        a[idx] = a[idx] + upd_a
        merged = list(self.state)
        for i, (old, value) in enumerate(zip(self.state, new)):
            if isinstance(old, np.ndarray) and old.ndim == 2:
                merged[i] = old.copy()
                merged[i][idx] = value
            elif i > 0 and not isinstance(old, tuple):
                merged[i] = value  # Adam's running powers: the same for every unfinished trial
        self.state = type(self.state)(*merged)


# --------------------------------------------------------------------------- gradient sources (section 2)
class Problem:
    """The model and the teachers of B trials: (s, stride, normalize, w*, a*) with k, p, d."""

    def __init__(self, s, stride, normalize, w_star, a_star):
        self.s, self.stride, self.normalize = s, int(stride), bool(normalize)
        self.w_star, self.a_star = w_star, a_star
        self.p = s.shape[0]
        self.k = a_star.shape[1]
        self.d = (self.k - 1) * self.stride + self.p

    def population(self, idx, w, a):
        """Population loss (n,) and gradients of the trials idx at their rows of (w, a)."""
        return reference_trials.loss_grad(self.s, w[idx], a[idx], self.w_star[idx], self.a_star[idx], self.stride,
                                          self.normalize)


class PopulationGradient:
    """The closed-form population gradient; no training loss."""

    def __init__(self, problem):
        self.problem = problem

    def __call__(self, idx, t, w, a):
        loss, grad_w, grad_a = self.problem.population(idx, w, a)
        return loss, grad_w, grad_a, np.full(idx.shape[0], math.nan)


class SampledGradient:
    """Online SGD: a fresh batch of ``batch_size`` inputs per step, drawn from step_seed(sigma, t)."""

    def __init__(self, problem, seeds, batch_size, dtype):
        self.problem, self.seeds, self.batch_size, self.dtype = problem, seeds, int(batch_size), dtype

    def batch_loss_grad(self, b, t, w, a):
        pb = self.problem
        return reference_sampled.stochastic_loss_grad(
            pb.s, w, a, pb.w_star[b], pb.a_star[b], self.batch_size, pb.k, pb.p, pb.stride, pb.normalize,
            int(step_seed(int(self.seeds[b]), t)), self.dtype)

    def __call__(self, idx, t, w, a):
        loss = self.problem.population(idx, w, a)[0]
        grad_w = np.empty((idx.shape[0], self.problem.p))
        grad_a = np.empty((idx.shape[0], self.problem.k))
        train_loss = np.empty(idx.shape[0])
        for i, b in enumerate(idx.tolist()):
            train_loss[i], grad_w[i], grad_a[i] = self.batch_loss_grad(b, t, w[b], a[b])
        return loss, grad_w, grad_a, train_loss


class EmpiricalGradient(SampledGradient):
    """A fixed training set per trial: rows 0..n_train-1 of the trial seed's inputs, labelled by its
    teacher in the batch dtype; full batch (batch_size 0) or mini-batches of epoch_order."""

    def __init__(self, problem, seeds, batch_size, n_train, dtype):
        super().__init__(problem, seeds, batch_size, dtype)
        self.n_train = int(n_train)
        self.training_sets = {}  # trial -> (Z, y), drawn at the trial's first step
        self.orders = {}  # trial -> (epoch, order)

    def training_set(self, b):
        if b not in self.training_sets:
            pb = self.problem
            Z = reference_sampled.sample_inputs(self.n_train, pb.d, int(self.seeds[b]), self.dtype)
            y = reference_sampled.predict(pb.s, pb.w_star[b], pb.a_star[b], Z, pb.k, pb.p, pb.stride, pb.normalize)
            self.training_sets[b] = (Z, y)
        return self.training_sets[b]

    def rows(self, b, t):
        """The rows of step t: batch j = t mod nb of epoch e = t div nb."""
        m = self.batch_size
        nb = -(-self.n_train // m)
        e, j = divmod(t, nb)
        if self.orders.get(b, (None,))[0] != e:
            self.orders[b] = (e, np.asarray(epoch_order(int(self.seeds[b]), e, self.n_train), dtype=np.int64))
        return self.orders[b][1][j * m: min(self.n_train, (j + 1) * m)]

    def batch_loss_grad(self, b, t, w, a):
        pb = self.problem
        Z, y = self.training_set(b)
        if self.batch_size:
            rows = self.rows(b, t)
            Z, y = Z[rows], y[rows]
        return reference_sampled.sampled_loss_grad(pb.s, w, a, Z, y, pb.k, pb.p, pb.stride, pb.normalize)

    def release(self, idx):
        for b in idx.tolist():
            self.training_sets.pop(b, None)
            self.orders.pop(b, None)


def make_source(gradient, problem, seeds, batch_size, n_train, dtype):
    if gradient == "population":
        return PopulationGradient(problem)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype: expected float32 or float64 batches, got {dtype}")
    if gradient == "sampled":
        return SampledGradient(problem, seeds, batch_size, dtype)
    if gradient == "empirical":
        return EmpiricalGradient(problem, seeds, batch_size, n_train, dtype)
    raise ValueError(f"gradient: expected one of {list(GRADIENTS)}, got {gradient!r}")


# --------------------------------------------------------------------------- the step loop (section 4)
class Run:
    """B trials advancing in lockstep through the step loop; see advance()."""

    def __init__(self, problem, w0, a0, rates, n_steps, tol, divergence, optimizer, source, record_every):
        B = w0.shape[0]
        self.problem, self.n_steps = problem, int(n_steps)
        self.rates_source, self.windows = rates, gives_windows(rates)
        self.set_rates(0)
        self.tol, self.divergence = tol, divergence
        self.optimizer, self.source, self.record_every = optimizer, source, int(record_every)
        self.w = np.array(w0, dtype=np.float64)
        self.a = np.array(a0, dtype=np.float64)
        self.step = np.zeros(B, dtype=np.int64)
        self.steps_to_tol = np.full(B, -1, dtype=np.int64)
        self.done = np.zeros(B, dtype=bool)
        self.loss = np.zeros(B)
        self.train_loss = np.full(B, math.nan)
        self.history = []

    def set_rates(self, first):
        """The rates of the steps from ``first`` (a table's last row repeats; a window's rows last
        through rates_last)."""
        self.rates = rates_from(self.rates_source, first)
        self.rates_first = first
        self.rates_last = last_rate_step(first, self.rates.shape[0], self.windows, self.n_steps)

    def record(self, idx, t, loss, train_loss):
        """History rows (step, L, phi, a.a*, |a - a*|, |w|, train_loss) of the trials idx (B == 1)."""
        pb, w, a = self.problem, self.w[idx], self.a[idx]
        phi = reference_trials.angle_and_perp(w + pb.s, pb.w_star[idx] + pb.s)[0]
        table = np.column_stack([np.full(idx.shape[0], float(t)), loss, phi, (a * pb.a_star[idx]).sum(-1),
                                 norms(a - pb.a_star[idx]), norms(w), train_loss])
        self.history.extend(table.tolist())

    def finish(self, idx):
        self.done[idx] = True
        if isinstance(self.source, EmpiricalGradient):
            self.source.release(idx)

    def advance(self, last_step) -> bool:
        """Run the unfinished trials through step last_step; True when every trial is done."""
        limit = self.divergence * self.divergence
        recording = self.record_every > 0
        with np.errstate(all="ignore"):  # diverging trials are detected by the stop rule, not warned about
            while True:
                active = np.flatnonzero(~self.done)
                if active.size == 0:
                    return True
                t = int(self.step[active[0]])
                if t > last_step:
                    return False
                loss, grad_w, grad_a, train_loss = self.source(active, t, self.w, self.a)
                self.train_loss[active] = train_loss
                diverged = ~(loss <= self.divergence)  # NaN counts as diverged
                converged = ~diverged & (loss <= self.tol)
                self.steps_to_tol[active[converged]] = t
                stop = diverged | converged | (t == self.n_steps)
                if recording and (t % self.record_every == 0 or stop.any()):
                    keep = np.ones_like(stop) if t % self.record_every == 0 else stop
                    self.record(active[keep], t, loss[keep], train_loss[keep])
                self.loss[active[stop]] = loss[stop]
                self.finish(active[stop])
                go = active[~stop]
                if go.size == 0:
                    continue
                lr_w, lr_a = self.rates[min(t - self.rates_first, self.rates.shape[0] - 1)]  # the last row repeats
                self.optimizer.step(go, t, self.w, self.a, grad_w[~stop], grad_a[~stop], float(lr_w), float(lr_a))
                self.step[go] = t + 1
                w, a = self.w[go], self.a[go]
                ran_away = go[~(((w * w).sum(-1) <= limit) & ((a * a).sum(-1) <= limit))]
                if ran_away.size:
                    self.loss[ran_away] = self.problem.population(ran_away, self.w, self.a)[0]
                    if recording:
                        self.record(ran_away, t + 1, self.loss[ran_away], np.full(ran_away.size, math.nan))
                    self.finish(ran_away)


def run_engine(s, stride, normalize, w0, a0, w_star, a_star, rates, steps, tol, thresholds, optimizer, gradient,
               batch_size, n_train, seeds, dtype, record_every, threads):
    """B trials of docs/training.md (``threads`` is ignored: NumPy runs serially).

    Returns (outcome int8 (B,), phi, loss, steps_to_tol, steps, w, a, train_loss, history): the
    population loss and angle at the end, the last step's training loss (NaN for the population
    gradient), and the (n_rec, 7) history of HISTORY_COLUMNS when record_every > 0 (B == 1), else None.
    """
    B = w0.shape[0]
    if record_every and B != 1:
        raise ValueError(f"record_every: a history is recorded for one trial only (B == 1), got B = {B}")
    problem = Problem(s, stride, normalize, w_star, a_star)
    opt = Optimizer(optimizer, B, problem.p, problem.k)
    source = make_source(gradient, problem, seeds, batch_size, n_train, dtype)
    run = Run(problem, w0, a0, rates, steps, float(tol), float(thresholds[4]), opt, source, record_every)
    chunk = max(1, TRIAL_STEPS_PER_CHUNK // B)
    last = -1
    while not run.advance(min(last + chunk, run.rates_last)):
        last = min(last + chunk, run.rates_last)
        if last == run.rates_last:
            run.set_rates(last + 1)
    with np.errstate(all="ignore"):
        phi = reference_trials.angle_and_perp(run.w + s, w_star + s)[0]
    code = classify_raw(s, stride, normalize, run.w, run.a, w_star, a_star, run.loss, phi, Thresholds(*thresholds))
    history = np.array(run.history, dtype=np.float64).reshape(-1, 7) if record_every else None
    return code, phi, run.loss, run.steps_to_tol, run.step, run.w, run.a, run.train_loss, history
