"""Training on the teacher-student problem: one run with its trajectory (:func:`train`) or many
independent runs at once (:func:`run_trials`), with the outcome of each (docs/model.md, "Critical points" and "The paper's claim and the experiments").

Every combination of optimizer (``shortcutnet.optim``: gd, momentum, adam) and gradient source
(``"population"``, ``"sampled"`` online SGD, ``"empirical"`` finite training set) runs in the
backend's engine, the same computation for one trial and for a batch (docs/training.md).  Inputs
are never modified.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Optional

import numpy as np

from . import optim as _optim
from . import seeds as _seeds
from .backends import get as get_backend
from .backends.reference import scan_rows as reference_scan_rows
from ._validation import SEED_LIMIT, as_dtype, as_float_array, as_int, as_seed, check_choice, describe
from .model import Model, check_model
from .outcomes import OUTCOMES, as_thresholds
from .population import check_parameters
from .schedules import RateWindows

COLUMNS = ("step", "loss", "phi", "a_dot_astar", "a_err", "w_norm")
STOCHASTIC_COLUMNS = COLUMNS + ("train_loss",)
GRADIENTS = ("population", "sampled", "empirical")
ENGINES = ("auto", "full", "reduced")


def _frozen(x):
    x = np.asarray(x)
    x.setflags(write=False)
    return x


class History(Mapping):
    """A recorded trajectory: columns step, loss, phi, a_dot_astar, a_err, w_norm (NumPy arrays),
    and train_loss (the loss on the step's batch or training set) for stochastic gradients.
    A continuous-time trajectory (``gradient_flow``) has the column t (float) in place of step.

    ``history["phi"]`` is the angle to the teacher at every recorded step; ``len(history)`` is the
    number of columns, ``history.n_records`` the number of rows; ``to_pandas()`` needs pandas.
    """

    def __init__(self, table, columns=COLUMNS):
        table = np.asarray(table, dtype=np.float64).reshape(-1, len(columns))
        self._columns = {name: _frozen(table[:, i].copy()) for i, name in enumerate(columns)}
        self._time = columns[0]
        if self._time == "step":
            self._columns["step"] = _frozen(table[:, 0].astype(np.int64))

    def __getitem__(self, name):
        return self._columns[name]

    def __iter__(self):
        return iter(self._columns)

    def __len__(self):
        return len(self._columns)

    @property
    def n_records(self) -> int:
        return self._columns[self._time].shape[0]

    def to_pandas(self):
        """The trajectory as a pandas DataFrame (pandas is optional)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("History.to_pandas: pandas is not installed (pip install pandas)") from exc
        return pd.DataFrame(dict(self._columns))

    def __repr__(self):
        return f"History({self.n_records} records, columns {list(self._columns)})"


@dataclasses.dataclass(frozen=True, repr=False)
class TrainResult:
    """One gradient-descent run (like scipy's OptimizeResult).

    Attributes: ``w``, ``a`` final parameters; ``steps`` updates made; ``outcome`` one of
    ``"global"``, ``"spurious"``, ``"unconverged"``, ``"diverged"``; ``loss`` and ``phi`` at the
    final parameters (population loss, also for SGD); ``steps_to_tol`` first step with
    ``loss <= tol`` (-1 if never); ``history`` the recorded trajectory; ``seed`` the seed of a
    stochastic gradient (None for the population gradient); ``train_loss`` the loss on the last
    step's batch or training set (None for the population gradient); ``engine`` the engine that ran.
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
    train_loss: Optional[float] = None
    engine: str = "full"

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
    ``shortcutnet.OUTCOMES``, ``phi``, ``loss`` (population loss), ``steps_to_tol`` (-1 if never),
    ``steps`` (updates made), ``w`` (B, p), ``a`` (B, k); for stochastic gradients ``train_loss``
    (the loss on each trial's last batch or training set) and ``seeds`` (uint64, each trial's seed),
    else None; ``engine`` the engine that ran.
    """

    outcome: np.ndarray
    outcome_code: np.ndarray
    phi: np.ndarray
    loss: np.ndarray
    steps_to_tol: np.ndarray
    steps: np.ndarray
    w: np.ndarray
    a: np.ndarray
    train_loss: Optional[np.ndarray] = None
    seeds: Optional[np.ndarray] = None
    engine: str = "full"

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
        return f"TrialsResult(B={len(self)}, {self.summary()}, engine={self.engine!r})"


def _as_tol(tol) -> float:
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"tol: expected a non-negative number, got {describe(tol)}")
    tol = float(tol)
    if math.isnan(tol) or tol < 0:
        raise ValueError(f"tol: expected a non-negative number, got {tol!r}")
    return tol


def _as_threads(threads):
    return None if threads is None else as_int("threads", threads, minimum=1)


def _random_seed() -> int:
    return int(np.random.SeedSequence().entropy % SEED_LIMIT)


def _as_gradient(gradient, batch_size, n_train, seed, dtype):
    """Validated (gradient, batch_size, n_train, dtype) as the engines take them (0 for unused sizes)."""
    if not isinstance(gradient, str):
        raise TypeError(f"gradient: expected one of {list(GRADIENTS)}, got {describe(gradient)}")
    check_choice("gradient", gradient, set(GRADIENTS))
    dtype = as_dtype("dtype", dtype)
    if gradient == "population":
        for name, value in (("batch_size", batch_size), ("n_train", n_train), ("seed", seed)):
            if value is not None:
                raise ValueError(f"{name}: only used with gradient='sampled' or 'empirical', got {value!r} with "
                                 "gradient='population'")
        if dtype != np.float64:
            raise ValueError(f"dtype: the population gradient is exact in float64, got {dtype} with "
                             "gradient='population'")
        return gradient, 0, 0, dtype
    if gradient == "sampled":
        if n_train is not None:
            raise ValueError(f"n_train: only used with gradient='empirical', got {n_train!r} with gradient='sampled'")
        if batch_size is None:
            raise ValueError("batch_size: expected a positive integer for gradient='sampled', got None")
        return gradient, as_int("batch_size", batch_size, minimum=1), 0, dtype
    if n_train is None:
        raise ValueError("n_train: expected a positive integer for gradient='empirical', got None")
    n_train = as_int("n_train", n_train, minimum=1)
    if batch_size is None:
        return gradient, 0, n_train, dtype
    batch_size = as_int("batch_size", batch_size, minimum=1)
    if batch_size > n_train:
        raise ValueError(f"batch_size: expected at most n_train = {n_train} (mini-batches of the training set), "
                         f"got {batch_size}")
    return gradient, batch_size, n_train, dtype


#: The reduced engine's coordinates square |w + s|, |w* + s| and the second layers: it runs where
#: their largest entries lie within 2^-REDUCED_EXPONENT .. 2^REDUCED_EXPONENT (about 1e-120 .. 1e120).
REDUCED_EXPONENT = 400


def _extents(scan, model, parameters, threads=None) -> dict:
    """{name: (largest entry, smallest row maximum)} of |w0 + s|, |a0|, |w_star + s|, |a_star| over
    the rows of trials in parameters (w0, a0, w_star, a_star), one pass of scan (a backend's
    scan_rows, on threads threads) each, after the checks that pass answers: finite entries, and
    w0 + s and w_star + s non-zero in every row."""
    extents = {}
    for name, x in zip(("w0", "a0", "w_star", "a_star"), parameters):
        shifted = name in ("w0", "w_star")
        bad, zero_row, largest, smallest = scan(x, model.s if shifted else None, threads=threads)
        if bad >= 0:
            raise ValueError(f"{name}: expected finite values, got {x.ravel()[bad]} at flat index {bad}")
        if shifted and zero_row >= 0:
            raise ValueError(f"{name}: expected {name} + s != 0 (the filter direction is undefined), "
                             f"got {name} + s = 0 in trial {zero_row}")
        extents[name] = (largest, smallest)
    return extents


def _outside_reduced_range(extents):
    """Why the parameters (their _extents) are beyond the reduced engine's range, or None."""
    low, high = 2.0**-REDUCED_EXPONENT, 2.0**REDUCED_EXPONENT
    for name in ("w0", "w_star", "a0", "a_star"):
        shifted = name in ("w0", "w_star")
        largest, smallest = extents[name]
        if largest > high or (shifted and smallest < low):
            what = f"{name} + s" if shifted else name
            return (f"its coordinates need the entries of {what} within 2^-{REDUCED_EXPONENT} .. "
                    f"2^{REDUCED_EXPONENT} in size")
    return None


def _reduced_obstacle(model, optimizer, gradient, extents):
    """Why the reduced engine cannot run this configuration (docs/reduced.md section 1), or None.
    extents: the parameters' _extents."""
    if gradient != "population":
        return f"it follows the population gradient, got gradient={gradient!r}"
    if model.stride < model.p:
        return f"it needs non-overlapping patches (stride >= p), got stride={model.stride} < p={model.p}"
    kind = optimizer.engine_spec()[0]
    if kind not in ("gd", "momentum"):
        return f"it runs gd and momentum (Adam's per-entry scaling leaves its subspaces), got optimizer {kind!r}"
    return _outside_reduced_range(extents)


def _as_engine(engine, model, optimizer, gradient, extents) -> str:
    """The engine that runs: "reduced" wherever it is exact for engine="auto", else "full"."""
    if not isinstance(engine, str):
        raise TypeError(f"engine: expected one of {list(ENGINES)}, got {describe(engine)}")
    check_choice("engine", engine, set(ENGINES))
    if engine == "full":
        return "full"
    obstacle = _reduced_obstacle(model, optimizer, gradient, extents)
    if engine == "reduced" and obstacle is not None:
        raise ValueError(f"engine: the reduced order-parameter engine does not apply here: {obstacle}; "
                         "use engine='full' or 'auto'")
    return "full" if obstacle is not None else "reduced"


def _rates(optimizer, steps):
    """The engines' rates: a table whose last row repeats, or a callable schedule's windows."""
    schedule = optimizer.lr
    if schedule.tabulated:
        return np.ascontiguousarray(schedule.table(steps))
    return RateWindows(schedule, steps)


def _run_engine(module, model, w0, a0, w_star, a_star, steps, optimizer, gradient, batch_size, n_train, seeds,
                dtype, tol, th, record_every, threads, engine):
    rates = _rates(optimizer, steps)
    if engine == "reduced":
        return module.run_reduced(model.s, model.normalize, w0, a0, w_star, a_star, rates, steps, tol, th.as_tuple(),
                                  optimizer.engine_spec(), record_every, threads)
    # The full engine reads one teacher per trial.
    w_star = np.ascontiguousarray(np.broadcast_to(w_star, (w0.shape[0], model.p)))
    a_star = np.ascontiguousarray(np.broadcast_to(a_star, (w0.shape[0], model.k)))
    return module.run_engine(model.s, model.stride, model.normalize, w0, a0, w_star, a_star, rates, steps, tol,
                             th.as_tuple(), optimizer.engine_spec(), gradient, batch_size, n_train, seeds, dtype,
                             record_every, threads)


def train(model: Model, w_star, a_star, w0, a0, *, steps, lr=None, optimizer=None, gradient="population",
          batch_size=None, n_train=None, seed=None, record_every=1, tol=1e-10, backend=None, thresholds=None,
          dtype=np.float64, threads=None, engine="auto") -> TrainResult:
    """Train from (w0, a0) against the teacher (w_star, a_star); the same engine as :func:`run_trials`.

    steps: maximum number of updates; the run stops early when the population loss is <= tol or
    diverges.  Exactly one of ``lr`` (a number, a pair (lr_w, lr_a), a schedule or a callable
    step -> rate(s); shorthand for ``shortcutnet.optim.gd(lr)``) and ``optimizer``
    (``shortcutnet.optim.gd``, ``momentum`` or ``adam``).  gradient: ``"population"`` (exact),
    ``"sampled"`` (online SGD: a fresh batch of ``batch_size`` Gaussian inputs every step) or
    ``"empirical"`` (the training set ``sample_inputs(model, n_train, seed)``; full batch, or
    mini-batches of ``batch_size`` without replacement, reshuffled every epoch), in ``dtype``; the
    stochastic gradients draw from ``seed`` (random when None; ``result.seed`` tells it).
    record_every: record the trajectory every so many steps (and at the final step).
    thresholds: the outcome rule's thresholds (``shortcutnet.Thresholds`` or a dict).  threads:
    threads for one step's sums over samples (results do not depend on it).  A callable ``lr`` is
    evaluated once for every step, a window of steps at a time as the run reaches them.  engine:
    ``"auto"`` (the reduced order-parameter engine of docs/reduced.md wherever it is exact:
    population gradient, non-overlapping patches, gd or momentum; the full-dimensional one
    otherwise), ``"reduced"`` (an error where it does not apply) or ``"full"``; ``result.engine``
    names the one that ran.
    """
    check_model(model)
    w0, a0, w_star, a_star = check_parameters(model, w0, a0, w_star, a_star)
    steps = as_int("steps", steps, minimum=1)
    record_every = as_int("record_every", record_every, minimum=1)
    tol = _as_tol(tol)
    th = as_thresholds(thresholds)
    optimizer = _optim.resolve(lr, optimizer)
    gradient, batch_size, n_train, dtype = _as_gradient(gradient, batch_size, n_train, seed, dtype)
    extents = _extents(reference_scan_rows, model, (w0[None], a0[None], w_star[None], a_star[None]))
    engine = _as_engine(engine, model, optimizer, gradient, extents)
    threads = _as_threads(threads)
    stochastic = gradient != "population"
    if stochastic:
        seed = _random_seed() if seed is None else as_seed("seed", seed)
    elif threads is not None:
        raise ValueError(f"threads: only used with a stochastic gradient (run_trials parallelizes over trials), "
                         f"got {threads!r} with gradient='population'")
    module = get_backend(backend)
    seeds = np.array([seed if stochastic else 0], dtype=np.uint64)
    code, phi, loss, steps_to_tol, n, w, a, train_loss, history = _run_engine(
        module, model, w0[None], a0[None], w_star[None], a_star[None], steps, optimizer, gradient, batch_size,
        n_train, seeds, dtype, tol, th, record_every, threads, engine)
    history = np.asarray(history)
    columns = STOCHASTIC_COLUMNS if stochastic else COLUMNS
    return TrainResult(w=_frozen(w[0]), a=_frozen(a[0]), steps=int(n[0]), outcome=OUTCOMES[int(code[0])],
                       loss=float(loss[0]), phi=float(phi[0]), steps_to_tol=int(steps_to_tol[0]),
                       history=History(history[:, :len(columns)], columns), seed=seed if stochastic else None,
                       train_loss=float(train_loss[0]) if stochastic else None, engine=engine)


def _batched(name, x, batch, length, shared_ok):
    """x as (batch, length), or (1, length) for a shared vector (never copied batch times); its
    entries are checked by _extents."""
    x = as_float_array(name, x, finite=False)
    if shared_ok and x.ndim == 1:
        if x.shape[0] != length:
            raise ValueError(f"{name}: expected shape ({length},) or ({batch}, {length}), got shape {x.shape}")
        return np.ascontiguousarray(x[None])
    if x.ndim != 2 or x.shape != (batch, length):
        expected = f"({length},) or ({batch}, {length})" if shared_ok else f"({batch}, {length})"
        raise ValueError(f"{name}: expected shape {expected}, got shape {x.shape}")
    return x


def _trial_seeds(seed, batch) -> np.ndarray:
    """The (B,) uint64 seeds of the trials: trial_seed(seed, b) for an integer, the entries of an array."""
    if seed is None:
        seed = _random_seed()
    seeds, scalar = _seeds.as_indices("seed", seed)
    if scalar:
        return np.asarray(_seeds.trial_seed(int(seeds), np.arange(batch, dtype=np.uint64)), dtype=np.uint64)
    if seeds.shape != (batch,):
        raise ValueError(f"seed: expected an integer or an integer array of shape ({batch},), got shape {seeds.shape}")
    return np.ascontiguousarray(seeds)


def run_trials(model: Model, w_star, a_star, w0, a0, *, steps, lr=None, optimizer=None, gradient="population",
               batch_size=None, n_train=None, seed=None, dtype=np.float64, engine="auto", tol=1e-10, threads=None,
               backend=None, thresholds=None) -> TrialsResult:
    """B independent runs of :func:`train`, in parallel in the backend's engine.

    w0 (B, p) and a0 (B, k) carry the batch axis; w_star (p,) or (B, p) and a_star (k,) or (B, k)
    may be shared.  lr / optimizer, gradient, batch_size, n_train, dtype as for :func:`train`.
    seed (stochastic gradients): an integer (trial b uses ``shortcutnet.trial_seed(seed, b)``) or an
    integer array of shape (B,); trial b gives exactly what ``train`` gives with that seed (bit for
    bit on the cpp backend).  threads: number of threads (default: all); results do not depend on it.
    engine as for :func:`train`: ``"auto"`` runs the reduced engine wherever it is exact, at a cost
    per step that does not grow with k and p; shared teachers are never copied B times there.
    """
    check_model(model)
    w0 = as_float_array("w0", w0, finite=False)
    if w0.ndim != 2 or w0.shape[1] != model.p or w0.shape[0] < 1:
        raise ValueError(f"w0: expected shape (B, {model.p}) with B >= 1, got shape {w0.shape}")
    batch = w0.shape[0]
    a0 = _batched("a0", a0, batch, model.k, shared_ok=False)
    w_star = _batched("w_star", w_star, batch, model.p, shared_ok=True)
    a_star = _batched("a_star", a_star, batch, model.k, shared_ok=True)
    module = get_backend(backend)
    threads = _as_threads(threads)
    extents = _extents(module.scan_rows, model, (w0, a0, w_star, a_star), threads)
    steps = as_int("steps", steps, minimum=1)
    tol = _as_tol(tol)
    th = as_thresholds(thresholds)
    optimizer = _optim.resolve(lr, optimizer)
    gradient, batch_size, n_train, dtype = _as_gradient(gradient, batch_size, n_train, seed, dtype)
    engine = _as_engine(engine, model, optimizer, gradient, extents)
    stochastic = gradient != "population"
    seeds = _trial_seeds(seed, batch) if stochastic else np.zeros(batch, dtype=np.uint64)
    code, phi, loss, steps_to_tol, n, w, a, train_loss, _ = _run_engine(
        module, model, w0, a0, w_star, a_star, steps, optimizer, gradient, batch_size, n_train, seeds, dtype, tol,
        th, 0, threads, engine)
    code = np.asarray(code, dtype=np.int8)
    return TrialsResult(outcome=_frozen(np.asarray(OUTCOMES)[code]), outcome_code=_frozen(code), phi=_frozen(phi),
                        loss=_frozen(loss), steps_to_tol=_frozen(steps_to_tol), steps=_frozen(n), w=_frozen(w),
                        a=_frozen(a), train_loss=_frozen(train_loss) if stochastic else None,
                        seeds=_frozen(seeds) if stochastic else None, engine=engine)
