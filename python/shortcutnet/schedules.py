"""Step sizes as data (after JAX's example optimizers: a number or a schedule, normalized once).

A step size ``lr`` may be

- a number: the same rate for both layers;
- a pair ``(lr_w, lr_a)``: one rate per layer;
- ``constant(lr_w, lr_a=None)``;
- ``piecewise(boundaries, values)``: ``values[j]`` (a number or a pair) for
  ``boundaries[j-1] <= step < boundaries[j]``, e.g. the paper's two stages
  ``piecewise([t1], [(lr_w_I, lr_a_I), (lr_w_II, lr_a_II)])``;
- any callable ``step -> number or (lr_w, lr_a)``.

:func:`make_schedule` turns each into a :class:`Schedule`; ``schedule.rates(steps)`` gives the
``(steps, 2)`` float64 table ``[lr_w, lr_a]`` per step; ``schedule.table(steps)`` the same table
cut after its last change (the last row repeats; one row for a constant), which the engines
consume, so a long run with a built-in schedule needs no per-step table.  A callable is given to
the engines as :class:`RateWindows`: its rates are tabulated ``WINDOW_STEPS`` steps at a time as
the trials reach them, so the memory does not grow with the number of steps.
Rates must be finite and non-negative; a callable that returns anything else raises an error
naming the step.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence

import numpy as np

from ._validation import as_int, describe


def _is_real(x) -> bool:
    return isinstance(x, (numbers.Real, np.floating, np.integer)) and not isinstance(x, (bool, np.bool_))


def _pair(value, where: str) -> tuple:
    """A number or a pair of numbers as a validated (lr_w, lr_a)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if _is_real(value):
        pair = (value, value)
    elif isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2 and all(_is_real(v) for v in value):
        pair = tuple(value)
    else:
        raise TypeError(f"{where}: expected a number or a pair (lr_w, lr_a) of numbers, got {describe(value)}")
    pair = (float(pair[0]), float(pair[1]))
    for name, v in zip(("lr_w", "lr_a"), pair):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{where}: expected finite non-negative rates, got {name} = {v!r}")
    return pair


class Schedule:
    """A step-size schedule: ``schedule(step) -> (lr_w, lr_a)``, ``schedule.rates(steps)`` -> table."""

    #: Whether the rates are known ahead of time (built-ins) or come from a user callable.
    tabulated = True

    def __call__(self, step: int) -> tuple:
        raise NotImplementedError

    def rates(self, steps: int) -> np.ndarray:
        steps = as_int("steps", steps, minimum=1)
        table = np.empty((steps, 2))
        for t in range(steps):
            table[t] = self(t)
        return table

    def table(self, steps: int) -> np.ndarray:
        """The rates of steps 0..n-1 (n <= steps) with the last row repeating after n."""
        return self.rates(steps)


class Constant(Schedule):
    """The same (lr_w, lr_a) at every step."""

    def __init__(self, lr_w, lr_a=None):
        self.lr = _pair(lr_w if lr_a is None else (lr_w, lr_a), "lr")

    def __call__(self, step):
        return self.lr

    def rates(self, steps):
        steps = as_int("steps", steps, minimum=1)
        return np.tile(np.asarray(self.lr, dtype=np.float64), (steps, 1))

    def table(self, steps):
        as_int("steps", steps, minimum=1)
        return np.asarray([self.lr], dtype=np.float64)

    def __repr__(self):
        return f"constant(lr_w={self.lr[0]!r}, lr_a={self.lr[1]!r})"


class Piecewise(Schedule):
    """``values[j]`` for ``boundaries[j-1] <= step < boundaries[j]``."""

    def __init__(self, boundaries: Sequence[int], values: Sequence):
        if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, (Sequence, np.ndarray)):
            raise TypeError(f"boundaries: expected a sequence of increasing step numbers, got {describe(boundaries)}")
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
            raise TypeError(f"values: expected a sequence of numbers or (lr_w, lr_a) pairs, got {describe(values)}")
        self.boundaries = tuple(as_int(f"boundaries[{i}]", b, minimum=1) for i, b in enumerate(boundaries))
        if any(b2 <= b1 for b1, b2 in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"boundaries: expected strictly increasing step numbers, got {list(self.boundaries)}")
        if len(values) != len(self.boundaries) + 1:
            raise ValueError(
                f"values: expected len(boundaries) + 1 = {len(self.boundaries) + 1} entries, got {len(values)}"
            )
        self.values = tuple(_pair(v, f"values[{i}]") for i, v in enumerate(values))

    def __call__(self, step):
        return self.values[int(np.searchsorted(self.boundaries, step, side="right"))]

    def rates(self, steps):
        steps = as_int("steps", steps, minimum=1)
        index = np.searchsorted(np.asarray(self.boundaries, dtype=np.int64), np.arange(steps), side="right")
        return np.asarray(self.values, dtype=np.float64)[index]

    def table(self, steps):
        steps = as_int("steps", steps, minimum=1)
        return self.rates(min(steps, self.boundaries[-1] + 1 if self.boundaries else 1))

    def __repr__(self):
        return f"piecewise(boundaries={list(self.boundaries)}, values={list(self.values)})"


class FromCallable(Schedule):
    """A user function ``step -> number or (lr_w, lr_a)``, checked at every call."""

    tabulated = False

    def __init__(self, fn: Callable):
        self.fn = fn

    def __call__(self, step):
        try:
            value = self.fn(step)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"lr: the schedule failed at step {step}: {exc}") from exc
        return _pair(value, f"lr: the schedule's value at step {step}")

    def __repr__(self):
        return f"FromCallable({self.fn!r})"


#: Steps of a callable schedule tabulated at a time.
WINDOW_STEPS = 1 << 14

#: Steps of windows kept for engines that ask again (32 MiB of rates).
CACHED_STEPS = 1 << 21


class RateWindows:
    """The rates of a schedule for ``steps`` steps, a window at a time: ``windows(first)`` is the
    ``(n, 2)`` table of the steps ``first .. first + n - 1``, ``n = min(window, steps - first)``.

    The full engine asks for step 0 and then whenever every unfinished trial has used the rates it
    has (see :func:`last_rate_step`).  The reduced engine runs its trials a few lanes at a time and
    asks for the windows from step 0 again for each new group of trials; windows are kept up to
    ``CACHED_STEPS`` steps in all, so the schedule is evaluated once per step in runs up to that
    length and the memory stays bounded beyond it."""

    def __init__(self, schedule: Schedule, steps: int, window=None):
        self.schedule = schedule
        self.steps = as_int("steps", steps, minimum=1)
        self.window = as_int("window", WINDOW_STEPS if window is None else window, minimum=1)
        self._kept = {}
        self._kept_steps = 0

    def __call__(self, first: int) -> np.ndarray:
        first = int(first)
        if first in self._kept:
            return self._kept[first]
        stop = min(self.steps, first + self.window)
        table = np.empty((max(0, stop - first), 2))
        for t in range(first, stop):
            table[t - first] = self.schedule(t)
        if self._kept_steps + table.shape[0] <= CACHED_STEPS:
            table.flags.writeable = False
            self._kept[first] = table
            self._kept_steps += table.shape[0]
        return table

    def __repr__(self):
        return f"RateWindows({self.schedule!r}, steps={self.steps}, window={self.window})"


def rates_from(rates, first: int) -> np.ndarray:
    """The rows of an engine's ``rates`` for the steps from ``first``: a table (its last row
    repeating) or the window of a :class:`RateWindows`."""
    if gives_windows(rates):
        return np.ascontiguousarray(rates(first), dtype=np.float64)
    return np.ascontiguousarray(rates, dtype=np.float64)


def gives_windows(rates) -> bool:
    """True for a callable giving windows of rows (a :class:`RateWindows`), False for a table."""
    return callable(rates) and not isinstance(rates, np.ndarray)


def last_rate_step(first: int, rows: int, windowed: bool, steps: int) -> int:
    """The last step trials may reach with the rates of steps first .. first + rows - 1: ``steps``
    (which needs no rate) once the rows reach step ``steps - 1`` or, for a table, whose last row
    repeats; else ``first + rows - 1``, after which the next window is needed."""
    return first + rows - 1 if windowed and first + rows < steps else steps


def constant(lr_w, lr_a=None) -> Constant:
    """The same rate at every step: one for both layers, or (lr_w, lr_a)."""
    return Constant(lr_w, lr_a)


def piecewise(boundaries, values) -> Piecewise:
    """Piecewise-constant rates: ``values[j]`` for ``boundaries[j-1] <= step < boundaries[j]``."""
    return Piecewise(boundaries, values)


def make_schedule(lr) -> Schedule:
    """Normalize any accepted step size (see the module docstring) to a :class:`Schedule`."""
    if isinstance(lr, Schedule):
        return lr
    if callable(lr):
        return FromCallable(lr)
    return Constant(*_pair(lr, "lr"))
