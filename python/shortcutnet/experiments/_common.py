"""Shared pieces of the experiments: teachers, initializations, intervals, metadata, task maps."""
from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import numbers
import os
from typing import Callable, Iterable, List, Optional

import numpy as np

from ..backends import ENV_VAR as _BACKEND_ENV_VAR, available as _available_backends
from .._validation import describe
from .._version import __version__
from ..model import Model

#: Sentinel for "a pool of local processes" (the default executor of the experiments).
PROCESSES = "processes"

ARCHITECTURES = ("resnet", "cnn")
OUTCOMES = ("global", "spurious", "unconverged", "diverged")


def backend_name() -> str:
    """Name of the kernel backend the experiments run on (the package default)."""
    name = os.environ.get(_BACKEND_ENV_VAR) or None
    return name if name is not None else _available_backends()[0]


def metadata() -> dict:
    """Columns recorded in every row: package version and kernel backend."""
    return {"version": __version__, "backend": backend_name()}


def make_model(architecture: str, k: int, p: int, stride=None) -> Model:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture: expected one of {list(ARCHITECTURES)}, got {architecture!r}")
    return Model(k, p, shortcut=(architecture == "resnet"), stride=stride)


def wilson_interval(successes, n, z: float = 1.959963984540054):
    """Wilson score interval for a binomial proportion (95% by default); (nan, nan) when n = 0."""
    successes = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        phat = successes / n
        denom = 1.0 + z * z / n
        centre = (phat + z * z / (2 * n)) / denom
        half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    # the interval contains phat; rounding could put an endpoint a hair on the wrong side
    lo = np.clip(np.minimum(centre - half, phat), 0.0, 1.0)
    hi = np.clip(np.maximum(centre + half, phat), 0.0, 1.0)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def teacher_direction(p: int, rng: np.random.Generator, angle: Optional[float] = None) -> np.ndarray:
    """The teacher's effective filter u* = w* + s of the ResNet (docs/model.md, "The paper's claim and the experiments").

    ``angle=None``: w* ~ N(0, 0.25/p I), so u* is a random direction near the shortcut s.
    ``angle=theta``: a unit u* at exactly the angle theta to s, in a uniformly random plane
    through s (the phase-diagram teachers). The plain CNN gets the same u* as its own w* (its
    sphere initialization is rotation invariant), so both architectures meet identical teachers.
    """
    s = np.full(p, 1.0 / math.sqrt(p))
    if angle is None:
        return rng.normal(scale=math.sqrt(0.25 / p), size=p) + s
    if p == 1:
        raise ValueError("angle: a teacher at a prescribed angle to s needs p >= 2, got p = 1")
    e = rng.normal(size=p)
    e -= (e @ s) * s
    e /= np.linalg.norm(e)
    return math.cos(angle) * s + math.sin(angle) * e


def cell_rng(*keys) -> np.random.Generator:
    """A generator seeded by integers (base seed and cell coordinates): the same cell, the same draws."""
    return np.random.default_rng(np.random.SeedSequence([int(x) for x in keys]))


def angle_key(angle: Optional[float]) -> int:
    # 0 for the default teacher, 1 + microradians for a prescribed angle (seeds are non-negative)
    return 0 if angle is None else 1 + int(round(angle * 1e6))


def draw_trials(k: int, p: int, trials: int, rng: np.random.Generator, angle=None):
    """Teachers and second-layer initializations shared by both architectures.

    Returns (a_star (B, k), u_star (B, p), a0 (B, k), w0_sphere (B, p)).
    """
    from .. import init_first_layer, init_second_layer

    cnn = Model(k, p, shortcut=False)
    a_star = rng.normal(size=(trials, k))
    u_star = np.stack([teacher_direction(p, rng, angle) for _ in range(trials)])
    a0 = np.stack([init_second_layer(cnn, a_star[b], rng) for b in range(trials)])
    w0_sphere = np.stack([init_first_layer(cnn, "sphere", rng) for _ in range(trials)])
    return a_star, u_star, a0, w0_sphere


def positive_number(name: str, value) -> float:
    """A finite number > 0 (a step size, a tolerance), or a ValueError/TypeError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a number > 0, got {describe(value)}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return value


def median_or_none(x):
    """Median, or None when there is nothing to take it of (None, unlike nan, compares equal)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.median(x)) if x.size else None


def outcome_columns(outcome) -> dict:
    """Counts per outcome, the success rate (outcome "global") and its Wilson interval."""
    outcome = np.asarray(outcome).astype(str)
    trials = outcome.size
    counts = {name: int(np.sum(outcome == name)) for name in OUTCOMES}
    lo, hi = wilson_interval(counts["global"], trials)
    return {"successes": counts["global"], **{f"n_{name}": counts[name] for name in OUTCOMES},
            "rate": counts["global"] / trials, "ci_low": lo, "ci_high": hi}


def basin_columns(phi, a, a_star) -> dict:
    """Runs that ended in the global basin, phi < pi/2 and a.a* > 0: a rule that does not ask how far
    a run has converged, so it tells a slow or noisy run on the right side from a trapped one."""
    a_dot = np.einsum("ij,ij->i", np.asarray(a), np.asarray(a_star))
    basin = (np.asarray(phi) < math.pi / 2) & (a_dot > 0)
    return {"n_basin": int(basin.sum()), "basin_rate": float(basin.mean())}


def steps_columns(steps_to_tol) -> dict:
    """How many runs reached the tolerance, and the median and quantiles of their steps to it
    (None where no run did)."""
    t = np.asarray(steps_to_tol, dtype=np.float64)
    t = t[t >= 0]
    columns = {"reached": int(t.size), "median_steps": median_or_none(t)}
    for q in (10, 25, 75, 90):
        columns[f"q{q}_steps"] = float(np.quantile(t, q / 100)) if t.size else None
    return columns


def map_longest_first(fn: Callable, tasks: List, cost: Callable, executor=PROCESSES, **kwargs) -> list:
    """:func:`map_tasks` with the costliest tasks submitted first (so a pool does not end waiting on
    one long task started last); results in task order."""
    tasks = list(tasks)
    order = sorted(range(len(tasks)), key=lambda i: -cost(tasks[i]))
    done = map_tasks(fn, [tasks[i] for i in order], executor, **kwargs)
    results: list = [None] * len(tasks)
    for position, i in enumerate(order):
        results[i] = done[position]
    return results


def _process_pool(workers: int) -> cf.ProcessPoolExecutor:
    # Forking a process that has threads (the OpenMP and Numba pools, a Dask client's) copies
    # whatever locks those threads held at that instant: a worker can then wait forever on one
    # (seen under AddressSanitizer, whose allocator lock is one).  A fork server starts the
    # workers from a clean single-threaded process instead.
    if "forkserver" in multiprocessing.get_all_start_methods():
        return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))
    return cf.ProcessPoolExecutor(max_workers=workers)


def resolve_executor(executor):
    """(executor or None, owned): None means run sequentially in this process."""
    if executor is None:
        return None, False
    if executor == PROCESSES:
        workers = os.cpu_count() or 1
        if workers <= 1:
            return None, False
        return _process_pool(workers), True
    if isinstance(executor, int) and not isinstance(executor, bool):
        if executor <= 1:
            return None, False
        return _process_pool(executor), True
    if isinstance(executor, cf.Executor) or hasattr(executor, "submit"):
        if getattr(executor, "_max_workers", 2) == 1:
            return None, False
        return executor, False
    raise TypeError(
        f"executor: expected a concurrent.futures.Executor, a worker count, {PROCESSES!r} or None, got {executor!r}"
    )


def map_tasks(fn: Callable, tasks: List, executor=PROCESSES, *, progress=False, desc: str = "",
              on_result: Optional[Callable] = None) -> list:
    """Results of ``fn(task)`` for every task, in task order, on the given executor.

    ``on_result(index, result)`` is called as each task finishes (in completion order), so a
    caller can save work as it arrives.
    """
    tasks = list(tasks)
    results: list = [None] * len(tasks)
    bar = _progress(len(tasks), desc, progress)
    pool, owned = resolve_executor(executor)
    try:
        if pool is None:
            for i, task in enumerate(tasks):
                results[i] = fn(task)
                if on_result is not None:
                    on_result(i, results[i])
                bar.update(1)
        else:
            futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
            try:
                for future in cf.as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    if on_result is not None:
                        on_result(i, results[i])
                    bar.update(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        bar.close()
        if owned:
            pool.shutdown(wait=True, cancel_futures=True)
    return results


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    # mininterval/delay: no bar at all for work that finishes within a second
    return tqdm(total=total, desc=desc, unit="cell", delay=1.0, mininterval=0.5, leave=False)


def rows_to_columns(rows: Iterable[dict]) -> dict:
    """A list of row dicts as a dict of columns (NumPy arrays where the values allow)."""
    rows = list(rows)
    keys: list = []
    for row in rows:
        keys.extend(key for key in row if key not in keys)
    return {key: np.asarray([row.get(key) for row in rows]) for key in keys}
