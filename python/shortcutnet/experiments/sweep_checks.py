"""Checks of a sweep configuration's values, all made before any cell runs.

Each parameter a sweep file may give has a rule (an integer >= 1, a number in [0, 1), one of some
names...); every value of ``[fixed]`` and of each ``[grid]`` list is checked against it, then every
cell for the constraints between parameters (stride <= p, ...). The size of the grid is checked
before its cells are listed: above ``max_cells`` the sweep is refused with the cell count and an
estimate of the time it would take.
"""
from __future__ import annotations

import difflib
import math
import numbers
import os
import random
from typing import Callable, Dict, Optional, Sequence

from ._common import ARCHITECTURES

#: the largest grid a sweep runs unless asked for more (``--max-cells``)
DEFAULT_MAX_CELLS = 10_000


class ConfigError(ValueError):
    """A sweep configuration that cannot run; the message names the file, the key and the fix."""


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__) + f" {value!r}"


def _integer(minimum: int) -> Callable:
    def check(value) -> Optional[str]:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return f"expected an integer >= {minimum}, got {_kind(value)}"
        if value < minimum:
            return f"expected an integer >= {minimum}, got {value}"
        return None
    return check


def _number(low: float, high: float = math.inf, *, low_open: bool = True, high_open: bool = True) -> Callable:
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    if high == math.inf and low_open:
        span = f"a finite number > {low:g}"
    else:
        span = f"a number in {left}{low:g}, {high:g}{right}"

    def check(value) -> Optional[str]:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"expected {span}, got {_kind(value)}"
        x = float(value)
        if not math.isfinite(x) or x < low or x > high or (low_open and x == low) or (high_open and x == high):
            return f"expected {span}, got {value!r}"
        return None
    return check


def _choice(choices: Sequence[str]) -> Callable:
    def check(value) -> Optional[str]:
        if not isinstance(value, str) or value not in choices:
            return f"expected one of {list(choices)}, got {_kind(value)}{did_you_mean(value, choices)}"
        return None
    return check


def _names(choices: Sequence[str]) -> Callable:
    one = _choice(choices)

    def check(value) -> Optional[str]:
        if not isinstance(value, list) or not value:
            return f"expected a non-empty list of {list(choices)}, got {_kind(value)}"
        for item in value:
            problem = one(item)
            if problem:
                return problem
        if len(set(value)) != len(value):
            return f"expected each name once, got {value!r}"
        return None
    return check


def _numbers(single: Callable) -> Callable:
    def check(value) -> Optional[str]:
        if not isinstance(value, list) or not value:
            return f"expected a non-empty list of numbers > 0, got {_kind(value)}"
        for item in value:
            problem = single(item)
            if problem:
                return problem
        return None
    return check


_positive = _number(0.0)
_fraction = _number(0.0, 1.0, low_open=False)
#: the rule of each parameter; ``eps`` is a list for convergence_time, one number elsewhere
RULES: Dict[str, Callable] = {
    "k": _integer(1), "p": _integer(1), "trials": _integer(1), "steps": _integer(1), "n_train": _integer(1),
    "stride": _integer(1), "batch_size": _integer(0), "lr": _positive, "tol": _positive, "eps": _positive,
    "angle_deg": _number(0.0, 180.0, low_open=False, high_open=False), "beta": _fraction, "beta1": _fraction,
    "beta2": _fraction, "optimizer": _choice(("gd", "momentum", "nesterov", "adam")),
    "architectures": _names(ARCHITECTURES),
}
LIST_RULES: Dict[str, Dict[str, Callable]] = {"convergence_time": {"eps": _numbers(_positive)}}


def check_values(experiment: str, fixed: dict, grid: dict, source: str) -> None:
    """Every value of ``[fixed]`` and ``[grid]`` against its parameter's rule."""
    rules = {**RULES, **LIST_RULES.get(experiment, {})}
    for section, name, values in ([("fixed", n, [v]) for n, v in fixed.items()]
                                  + [("grid", n, v) for n, v in grid.items()]):
        rule = rules.get(name)
        if rule is None:
            continue
        for value in values:
            problem = rule(value)
            if problem:
                where = f"{section}.{name}" if section == "fixed" else f"grid.{name} value {value!r}"
                raise ConfigError(f"{source}: {where}: {problem}")


def check_cell(cell: dict, source: str) -> None:
    """Constraints between the parameters of one cell."""
    where = ", ".join(f"{name} = {cell[name]!r}" for name in ("k", "p", "stride", "angle_deg") if name in cell)
    stride, p = cell.get("stride"), cell.get("p")
    if isinstance(stride, int) and isinstance(p, int) and stride > p:
        raise ConfigError(f"{source}: stride: expected at most p = {p} (patches of p pixels), got {stride} "
                          f"in the cell {where}")
    if "angle_deg" in cell and p == 1:
        raise ConfigError(f"{source}: angle_deg: a teacher at a prescribed angle to s needs p >= 2, got p = 1 "
                          f"in the cell {where}")


def cell_bytes(cell: dict) -> float:
    """Rough peak memory of a cell: the trials' parameters, teachers and histories, and one batch or
    training set per thread (the engine keeps a trial's training set while it runs)."""
    def size(name):
        value = cell.get(name, 0)
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else 0.0

    k, p, trials = size("k"), size("p"), size("trials")
    samples = max(size("batch_size"), size("n_train"))
    return 8.0 * (trials * (4 * k + 4 * p + 16) + samples * k * p * min(trials, os.cpu_count() or 1))


def memory_limit() -> float:
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 64.0 * 2**30


def check_memory(cell: dict, source: str) -> None:
    need, have = cell_bytes(cell), memory_limit()
    if need > have:
        where = ", ".join(f"{name} = {cell[name]!r}" for name in ("k", "p", "trials", "batch_size", "n_train")
                          if name in cell)
        raise ConfigError(f"{source}: the cell {where} needs about {need / 2**30:.3g} GiB of memory, more than "
                          f"this machine's {have / 2**30:.3g} GiB: give smaller sizes")


def cell_count(grid: dict) -> int:
    return math.prod(len(values) for values in grid.values())


def _cell_at(config: dict, index: int) -> dict:
    """Cell number ``index`` of the grid (grid order), without listing the others."""
    cell = {"experiment": config["experiment"], "seed": config["seed"], **config["fixed"]}
    for name in reversed(list(config["grid"])):
        values = config["grid"][name]
        index, position = divmod(index, len(values))
        cell[name] = values[position]
    return cell


def cell_seconds(cell: dict) -> float:
    """Rough single-core time of a cell if every run takes all its steps (the worst case)."""
    def number(name, default):
        value = cell.get(name, default)
        return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else default

    k, p, trials, steps = number("k", 10), number("p", 10), number("trials", 1), number("steps", 1)
    if cell.get("experiment") == "sample_complexity":
        per_step = 50 + 0.5 * number("n_train", 1) * k * p  # the full batch is read every step
    elif number("batch_size", 0) > 0:
        per_step = 20 + 1.5 * number("batch_size", 0) * k * p  # a fresh batch is drawn every step
    else:
        per_step = 20 + 0.5 * k * p  # population gradient
    runs = len(cell["eps"]) if cell.get("experiment") == "convergence_time" and isinstance(cell.get("eps"), list) \
        else len(cell.get("architectures") or ARCHITECTURES)
    return per_step * 1e-9 * trials * steps * runs


def estimated_seconds(config: dict, count: int, samples: int = 2000) -> float:
    """Wall time of the whole grid on this machine's cores, from the cost of up to ``samples`` cells."""
    draw = random.Random(0)
    chosen = range(count) if count <= samples else [draw.randrange(count) for _ in range(samples)]
    mean = sum(cell_seconds(_cell_at(config, i)) for i in chosen) / len(chosen)
    return mean * count / (os.cpu_count() or 1)


def duration_text(seconds: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.2g} seconds"


def check_size(config: dict, max_cells: int, source: str) -> None:
    count = cell_count(config["grid"])
    if count > max_cells:
        cores = os.cpu_count() or 1
        raise ConfigError(
            f"{source}: the grid has {count:,} cells, above the limit of {max_cells:,} (about "
            f"{duration_text(estimated_seconds(config, count))} on {cores} core(s) if every run takes all its "
            f"steps): shrink the [grid] lists, or raise the limit with --max-cells {count}")
