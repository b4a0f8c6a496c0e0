"""Gradient descent on the teacher-student problem: one run with its trajectory (:func:`train`) or
many independent runs at once (:func:`run_trials`), with the outcome of each (MODEL.md sections 4, 5).

Exact population GD with a number, a pair or a built-in schedule runs entirely in a compiled engine
(C++ or Numba); user schedules, SGD (``gradient="sampled"``) and the NumPy backend run a Python loop
over the same kernels with the same arithmetic.  Inputs are never modified.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Optional

import numpy as np

from .backends import get as get_backend
from ._validation import as_dtype, as_float_array, as_int, check_choice, describe
from .model import Model, check_model
from .outcomes import OUTCOMES, Thresholds, as_thresholds, classify_raw
from .population import check_parameters
from .schedules import make_schedule

COLUMNS = ("step", "loss", "phi", "a_dot_astar", "a_err", "w_norm")


def _frozen(x):
    x = np.asarray(x)
    x.setflags(write=False)
    return x


class History(Mapping):
    """A recorded trajectory: columns step, loss, phi, a_dot_astar, a_err, w_norm (NumPy arrays).

    ``history["phi"]`` is the angle to the teacher at every recorded step; ``len(history)`` is the
    number of columns, ``history.n_records`` the number of rows; ``to_pandas()`` needs pandas.
    """

    def __init__(self, table):
        table = np.asarray(table, dtype=np.float64).reshape(-1, len(COLUMNS))
        self._columns = {name: _frozen(table[:, i].copy()) for i, name in enumerate(COLUMNS)}
        self._columns["step"] = _frozen(table[:, 0].astype(np.int64))

    def __getitem__(self, name):
        return self._columns[name]

    def __iter__(self):
        return iter(self._columns)

    def __len__(self):
        return len(self._columns)

    @property
    def n_records(self) -> int:
        return self._columns["step"].shape[0]

    def to_pandas(self):
        """The trajectory as a pandas DataFrame (pandas is optional)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("History.to_pandas: pandas is not installed (pip install pandas)") from exc
        return pd.DataFrame(dict(self._columns))

    def __repr__(self):
        return f"History({self.n_records} records, columns {list(COLUMNS)})"


@dataclasses.dataclass(frozen=True, repr=False)
class TrainResult:
    """One gradient-descent run (like scipy's OptimizeResult).

    Attributes: ``w``, ``a`` final parameters; ``steps`` updates made; ``outcome`` one of
    ``"global"``, ``"spurious"``, ``"unconverged"``, ``"diverged"``; ``loss`` and ``phi`` at the
    final parameters (population loss, also for SGD); ``steps_to_tol`` first step with
    ``loss <= tol`` (-1 if never); ``history`` the recorded trajectory; ``seed`` the SGD seed.
    """

    w: np.ndarray
    a: np.ndarray
    steps: int
    outcome: str
    loss: float
    phi: float
    steps_to_tol: int
    history: History
    seed: Optional[int] = None

    @property
    def success(self) -> bool:
        return self.outcome == "global"

    def __repr__(self):
        return (
            f"TrainResult(outcome={self.outcome!r}, steps={self.steps}, loss={self.loss:.6g}, phi={self.phi:.6g}, "
            f"steps_to_tol={self.steps_to_tol}, w=<array {self.w.shape}>, a=<array {self.a.shape}>, "
            f"history=<{self.history.n_records} records>)"
        )


@dataclasses.dataclass(frozen=True, repr=False)
class TrialsResult:
    """B independent gradient-descent runs.

    Attributes (leading axis B): ``outcome`` names, ``outcome_code`` int8 indices into
    ``shortcutnet.OUTCOMES``, ``phi``, ``loss``, ``steps_to_tol`` (-1 if never), ``steps``
    (updates made), ``w`` (B, p), ``a`` (B, k).
    """

    outcome: np.ndarray
    outcome_code: np.ndarray
    phi: np.ndarray
    loss: np.ndarray
    steps_to_tol: np.ndarray
    steps: np.ndarray
    w: np.ndarray
    a: np.ndarray

    def __len__(self):
        return self.outcome.shape[0]

    def summary(self) -> dict:
        """Counts of each outcome, e.g. ``{"global": 61, "spurious": 39, "unconverged": 0, "diverged": 0}``."""
        counts = np.bincount(self.outcome_code, minlength=len(OUTCOMES))
        return {name: int(counts[i]) for i, name in ((1, "global"), (2, "spurious"), (0, "unconverged"), (3, "diverged"))}

    def rate(self, outcome: str = "global") -> float:
        """Fraction of trials that ended in ``outcome``."""
        check_choice("outcome", outcome, set(OUTCOMES))
        return float(np.mean(self.outcome == outcome))

    def __repr__(self):
        return f"TrialsResult(B={len(self)}, {self.summary()})"


def _as_tol(tol) -> float:
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"tol: expected a non-negative number, got {describe(tol)}")
    tol = float(tol)
    if math.isnan(tol) or tol < 0:
        raise ValueError(f"tol: expected a non-negative number, got {tol!r}")
    return tol


def _as_threads(threads):
    return None if threads is None else as_int("threads", threads, minimum=1)


def _step_seed(seed: int, t: int) -> int:
    """The seed of step t's batch: a 63-bit integer derived from (seed, t), independent across steps."""
    return int(np.random.SeedSequence([seed, t]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def train(model: Model, w_star, a_star, w0, a0, *, steps, lr, gradient="population", batch_size=None, seed=None,
          record_every=1, tol=1e-10, backend=None, thresholds=None, dtype=np.float64, threads=None) -> TrainResult:
    """Run gradient descent from (w0, a0) against the teacher (w_star, a_star).

    steps: maximum number of updates; the run stops early when the population loss is <= tol
    or diverges.  lr: a number, a pair (lr_w, lr_a), a schedule (``shortcutnet.constant``,
    ``shortcutnet.piecewise``) or a callable step -> rate(s).  gradient: ``"population"`` (exact GD)
    or ``"sampled"`` (SGD on fresh Gaussian batches of ``batch_size`` per step, drawn from ``seed``
    and the step number, so runs are reproducible; ``dtype`` and ``threads`` go to the kernel).
    record_every: record the trajectory every so many steps (and at the final step).
    thresholds: the outcome rule's thresholds (``shortcutnet.Thresholds`` or a dict).
    """
    check_model(model)
    w0, a0, w_star, a_star = check_parameters(model, w0, a0, w_star, a_star)
    steps = as_int("steps", steps, minimum=1)
    record_every = as_int("record_every", record_every, minimum=1)
    tol = _as_tol(tol)
    th = as_thresholds(thresholds)
    schedule = make_schedule(lr)
    if not isinstance(gradient, str):
        raise TypeError(f"gradient: expected 'population' or 'sampled', got {describe(gradient)}")
    check_choice("gradient", gradient, {"population", "sampled"})
    module = get_backend(backend)
    threads = _as_threads(threads)
    if gradient == "sampled":
        if batch_size is None:
            raise ValueError("batch_size: expected a positive integer for gradient='sampled', got None")
        batch_size = as_int("batch_size", batch_size, minimum=1)
        dtype = as_dtype("dtype", dtype)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (1 << 63))
        seed = as_int("seed", seed, minimum=0)
        from . import kernels

        def gradient_at(w, a, t):
            _, grad_w, grad_a = kernels.stochastic_loss_grad(model, w, a, w_star, a_star, batch_size, _step_seed(seed, t),
                                                             dtype=dtype, backend=backend, threads=threads)
            loss = module.population_loss_grad(model.s, w, a, w_star, a_star, model.stride, model.normalize, False)[0]
            return loss, np.asarray(grad_w, dtype=np.float64), np.asarray(grad_a, dtype=np.float64)

        return _python_loop(model, module, w_star, a_star, w0, a0, steps, schedule, tol, record_every, th,
                            gradient_at, seed)
    if batch_size is not None:
        raise ValueError(f"batch_size: only used with gradient='sampled', got {batch_size!r} with gradient='population'")
    if seed is not None:
        raise ValueError(f"seed: only used with gradient='sampled', got {seed!r} with gradient='population'")
    if threads is not None:
        raise ValueError(f"threads: only used with gradient='sampled' (run_trials parallelizes over trials), "
                         f"got {threads!r} with gradient='population'")
    if as_dtype("dtype", dtype) != np.float64:
        raise ValueError(f"dtype: exact population GD runs in float64, got {np.dtype(dtype)} with gradient='population'")
    if schedule.tabulated and hasattr(module, "train_population"):
        w, a, n, steps_to_tol, code, loss, phi, history = module.train_population(
            model.s, w0, a0, w_star, a_star, model.stride, model.normalize, schedule.table(steps), steps, tol,
            record_every, th.as_tuple()
        )
        return TrainResult(w=_frozen(w), a=_frozen(a), steps=int(n), outcome=OUTCOMES[int(code)], loss=float(loss),
                           phi=float(phi), steps_to_tol=int(steps_to_tol), history=History(history))

    def gradient_at(w, a, t):
        loss, grad_w, grad_a = module.population_loss_grad(model.s, w, a, w_star, a_star, model.stride,
                                                           model.normalize, True)
        return float(loss), np.asarray(grad_w), np.asarray(grad_a)

    return _python_loop(model, module, w_star, a_star, w0, a0, steps, schedule, tol, record_every, th, gradient_at)


def _python_loop(model, module, w_star, a_star, w, a, steps, schedule, tol, record_every, th, gradient_at, seed=None):
    """The engine's loop (cpp/shortcutnet/trials.hpp, advance_trial) in Python, for any gradient."""
    s = model.s
    u_star = w_star + s
    rows = []

    def finite(*xs):
        return all(np.isfinite(x).all() for x in xs)

    def observe(t, w, a, loss):
        phi = float(module.angle(w + s, u_star)) if finite(w) and np.any(w + s) else math.nan
        rows.append((t, loss, phi, float(a @ a_star), float(np.linalg.norm(a - a_star)), float(np.linalg.norm(w))))
        return phi

    def loss_only(w, a):
        if not finite(w, a) or not np.any(w + s):
            return math.nan
        try:
            return float(module.population_loss_grad(s, w, a, w_star, a_star, model.stride, model.normalize, False)[0])
        except OverflowError:  # Python floats (the NumPy reference) raise where C++ gives inf
            return math.inf

    limit = th.divergence * th.divergence
    steps_to_tol = -1
    t = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while True:
            try:
                loss, grad_w, grad_a = gradient_at(w, a, t)
            except OverflowError:
                loss, grad_w, grad_a = math.inf, None, None
            diverged = not (loss <= th.divergence)
            converged = not diverged and loss <= tol
            if converged:
                steps_to_tol = t
            done = diverged or converged or t == steps
            if done or t % record_every == 0:
                phi = observe(t, w, a, loss)
            if done:
                break
            lr_w, lr_a = schedule(t)
            w = w - lr_w * grad_w
            a = a - lr_a * grad_a
            t += 1
            if not (float(w @ w) <= limit) or not (float(a @ a) <= limit):
                loss = loss_only(w, a)
                phi = observe(t, w, a, loss)
                break
    code = classify_raw(s, model.stride, model.normalize, w[None], a[None], w_star[None], a_star[None],
                        np.array([loss]), np.array([phi]), th)[0]
    return TrainResult(w=_frozen(w), a=_frozen(a), steps=t, outcome=OUTCOMES[int(code)], loss=float(loss),
                       phi=float(phi), steps_to_tol=steps_to_tol, history=History(rows), seed=seed)


def _batched(name, x, batch, length, shared_ok):
    x = as_float_array(name, x)
    if shared_ok and x.ndim == 1:
        if x.shape[0] != length:
            raise ValueError(f"{name}: expected shape ({length},) or ({batch}, {length}), got shape {x.shape}")
        return np.ascontiguousarray(np.broadcast_to(x, (batch, length)))
    if x.ndim != 2 or x.shape != (batch, length):
        expected = f"({length},) or ({batch}, {length})" if shared_ok else f"({batch}, {length})"
        raise ValueError(f"{name}: expected shape {expected}, got shape {x.shape}")
    return x


def run_trials(model: Model, w_star, a_star, w0, a0, *, steps, lr, tol=1e-10, threads=None, backend=None,
               thresholds=None) -> TrialsResult:
    """B independent exact population-GD runs, in parallel in the compiled engine.

    w0 (B, p) and a0 (B, k) carry the batch axis; w_star (p,) or (B, p) and a_star (k,) or (B, k)
    may be shared.  lr as for :func:`train` (a callable is evaluated once per step, shared by all
    trials).  threads: number of threads (default: all); results do not depend on it.
    """
    check_model(model)
    w0 = as_float_array("w0", w0)
    if w0.ndim != 2 or w0.shape[1] != model.p or w0.shape[0] < 1:
        raise ValueError(f"w0: expected shape (B, {model.p}) with B >= 1, got shape {w0.shape}")
    batch = w0.shape[0]
    a0 = _batched("a0", a0, batch, model.k, shared_ok=False)
    w_star = _batched("w_star", w_star, batch, model.p, shared_ok=True)
    a_star = _batched("a_star", a_star, batch, model.k, shared_ok=True)
    for name, x in (("w0", w0), ("w_star", w_star)):
        bad = np.flatnonzero(~np.any(x + model.s, axis=1))
        if bad.size:
            raise ValueError(f"{name}: expected {name} + s != 0 (the filter direction is undefined), "
                             f"got {name} + s = 0 in trial {bad[0]}")
    steps = as_int("steps", steps, minimum=1)
    tol = _as_tol(tol)
    th = as_thresholds(thresholds)
    threads = _as_threads(threads)
    rates = make_schedule(lr).table(steps)
    module = get_backend(backend)
    code, phi, loss, steps_to_tol, w, a, n = module.run_trials(
        model.s, w0, a0, w_star, a_star, model.stride, model.normalize, rates, steps, tol, th.as_tuple(), threads
    )
    code = np.asarray(code, dtype=np.int8)
    return TrialsResult(outcome=_frozen(np.asarray(OUTCOMES)[code]), outcome_code=_frozen(code), phi=_frozen(phi),
                        loss=_frozen(loss), steps_to_tol=_frozen(steps_to_tol), steps=_frozen(n), w=_frozen(w),
                        a=_frozen(a))
