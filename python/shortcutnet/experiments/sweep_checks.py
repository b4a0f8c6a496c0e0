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


def _integer(minimum: int, maximum: Optional[int] = None, why: str = "") -> Callable:
    span = f"an integer >= {minimum}" + (f" and <= {maximum}{why}" if maximum is not None else "")

    def check(value) -> Optional[str]:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return f"expected {span}, got {_kind(value)}"
        if value < minimum or (maximum is not None and value > maximum):
            return f"expected {span}, got {value}"
        return None
    return check


def _boolean(value) -> Optional[str]:
    if not isinstance(value, bool):
        return f"expected true or false, got {_kind(value)}"
    return None


def _number(low: float, high: float = math.inf, *, low_open: bool = True, high_open: bool = True) -> Callable:
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    if high == math.inf:
        span = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif low_open and not high_open:
        span = f"a finite number > {low:g}, at most {high:g}"
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


#: the engine counts steps in 64-bit integers
ENGINE_MAX_STEPS = 2**63 - 1
#: the most steps of one run when a cell derives them from a step size (gd_vs_flow's t/lr, the
#: check runs of cnn_success_limit): a tiny lr would otherwise ask silently for ages of work
DERIVED_MAX_STEPS = 10**9
#: step sizes above this overflow the products the rows compute (lr |a*|^2/4) in double precision;
#: the second layer diverges above 4 pi/(k + pi - 1) <= 4 already
MAX_RATE = 1e100
#: start scales above this overflow the start's squared norms in double precision
MAX_START_SCALE = 1e100
#: gradient_flow's work grows with the time integrated, and so do t/lr GD steps: beyond, one flow
#: runs for hours
MAX_FLOW_TIME = 1e6

_positive = _number(0.0)
_rate = _number(0.0, MAX_RATE, high_open=False)
_fraction = _number(0.0, 1.0, low_open=False)
_steps = _integer(1, ENGINE_MAX_STEPS, " (the engine's 64-bit step counter)")
_flow_time = _number(0.0, MAX_FLOW_TIME, high_open=False)
#: the rule of each parameter, for every experiment but those of EXPERIMENT_RULES
RULES: Dict[str, Callable] = {
    "k": _integer(1), "p": _integer(1), "trials": _integer(1), "steps": _steps, "n_train": _integer(1),
    "stride": _integer(1), "batch_size": _integer(0), "lr": _rate, "tol": _positive, "eps": _positive,
    "angle_deg": _number(0.0, 180.0, low_open=False, high_open=False), "beta": _fraction, "beta1": _fraction,
    "beta2": _fraction, "optimizer": _choice(("gd", "momentum", "nesterov", "adam")),
    "architectures": _names(ARCHITECTURES), "architecture": _choice(ARCHITECTURES),
    # trajectory: CNN runs besides the ResNet's one; a0 reflected so that a0.a* < 0
    "cnn_runs": _integer(0), "negative_start": _boolean,
    # cnn_success_limit: the most steps to a basin's decision; trials rerun to convergence
    "max_steps": _steps, "check_trials": _integer(0),
    # hypotheses: |w0| (0: the theorem's w0 = 0) and the scale of a0's ball (1: the theorem's)
    "w0_norm": _number(0.0, MAX_START_SCALE, low_open=False, high_open=False),
    "a0_scale": _number(0.0, MAX_START_SCALE, high_open=False),
    "lr_w": _rate, "lr_a": _rate, "lrs": _numbers(_rate), "t_max": _flow_time, "t_fixed": _flow_time,
    # phi_instability: lr as a fraction of the a-step's stability limit 4 pi/(k + pi - 1); at 1 and
    # beyond the second layer diverges
    "fraction": _number(0.0, 1.0),
}
_eps_list = {"eps": _numbers(_positive)}
#: rules of one experiment that differ from RULES: eps as a list, the sizes the order-parameter
#: draws of cnn_success_limit need (k >= 3, p >= 2)
EXPERIMENT_RULES: Dict[str, Dict[str, Callable]] = {
    "convergence_time": _eps_list, "convergence_scaling": _eps_list, "gd_vs_flow": _eps_list,
    "cnn_success_limit": {"k": _integer(3), "p": _integer(2)},
}


def rule_of(experiment: str, name: str) -> Optional[Callable]:
    return EXPERIMENT_RULES.get(experiment, {}).get(name) or RULES.get(name)


def check_values(experiment: str, fixed: dict, grid: dict, source: str) -> None:
    """Every value of ``[fixed]`` and ``[grid]`` against its parameter's rule."""
    for section, name, values in ([("fixed", n, [v]) for n, v in fixed.items()]
                                  + [("grid", n, v) for n, v in grid.items()]):
        rule = rule_of(experiment, name)
        if rule is None:  # every parameter has a rule (tests/test_sweep_faults_config.py checks)
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
    check = {"gd_vs_flow": _check_flow_cell, "cnn_success_limit": _check_success_limit_cell,
             "phi_instability": _check_phi_cell}.get(cell.get("experiment"))
    if check is not None:
        check(cell, source)


def _check_flow_cell(cell: dict, source: str) -> None:
    # GD runs round(t_fixed/lr) steps to the fixed time (at least one) and ceil(t_max/lr) to t_max
    t_max, t_fixed = float(cell["t_max"]), float(cell["t_fixed"])
    for lr in cell["lrs"]:
        lr = float(lr)
        most = max(t_max, t_fixed) / lr
        if not most <= DERIVED_MAX_STEPS:
            raise ConfigError(f"{source}: lrs: lr = {lr!r} takes {most:.3g} GD steps to t = {max(t_max, t_fixed)!r}, "
                              f"more than {DERIVED_MAX_STEPS:.0e}: give larger step sizes or smaller t_max, t_fixed")
        if round(t_fixed / lr) < 1:
            raise ConfigError(f"{source}: lrs: expected step sizes below 2 t_fixed = {2 * t_fixed!r} (GD takes "
                              f"round(t_fixed/lr) >= 1 steps to t_fixed), got lr = {lr!r}")
    tags = [f"{float(eps):.0e}" for eps in cell["eps"]]  # the rows' column names
    if len(set(tags)) != len(tags):
        raise ConfigError(f"{source}: eps: expected values distinct at one significant digit (the columns are "
                          f"named by eps to that precision), got {cell['eps']!r}")


def success_limit_check_steps(cell: dict) -> float:
    """Steps of each of cnn_success_limit's check runs (inf when too many to count)."""
    from .step_sizes import scaled_lr
    from .success_limit import check_steps

    k, lr = int(cell["k"]), cell.get("lr")
    try:
        return float(check_steps(k, scaled_lr(k) if lr is None else float(lr)))
    except (OverflowError, ZeroDivisionError):  # lr so small that the count is infinite
        return math.inf


def _check_success_limit_cell(cell: dict, source: str) -> None:
    if min(cell["trials"], cell.get("check_trials", 1000)) == 0:
        return
    steps = success_limit_check_steps(cell)
    if steps > DERIVED_MAX_STEPS:
        raise ConfigError(f"{source}: lr: the check runs to convergence take {steps:.3g} steps at lr = "
                          f"{cell.get('lr')!r}, more than {DERIVED_MAX_STEPS:.0e}: give a larger lr, or "
                          f"check_trials = 0")


def _check_phi_cell(cell: dict, source: str) -> None:
    from .step_sizes import a_step_limit

    if not cell["fraction"] * a_step_limit(cell["k"]) > 0:
        raise ConfigError(f"{source}: fraction: {cell['fraction']!r} times the a-step's limit at k = {cell['k']} "
                          "is 0 in double precision: give a larger fraction")


def cell_bytes(cell: dict) -> float:
    """Rough peak memory of a cell: the trials' parameters, teachers and histories, and one batch or
    training set per thread (the engine keeps a trial's training set while it runs). The order-
    parameter trials of cnn_success_limit take a few numbers each (waves of WAVE trials), only its
    check runs are vectors; trajectory keeps a row per step of every run, phi_instability a trial's
    history while it runs."""
    def size(name, default=0):
        value = cell.get(name, default)
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else 0.0

    k, p, trials = size("k"), size("p"), size("trials")
    experiment = cell.get("experiment")
    if experiment == "cnn_success_limit":
        from .success_limit import WAVE

        vectors = min(trials, size("check_trials", 1000))
        return 8.0 * (min(trials, WAVE) * 64 + vectors * (4 * k + 4 * p + 16))
    if experiment == "trajectory":
        return (1 + size("cnn_runs", 4)) * size("steps") * 1500.0 + 8.0 * (4 * k + 4 * p)
    samples = max(size("batch_size"), size("n_train"))
    history = 64.0 * size("steps") if experiment == "phi_instability" else 0.0
    return 8.0 * (trials * (4 * k + 4 * p + 16) + samples * k * p * min(trials, os.cpu_count() or 1)) + history


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


#: rough costs in nanoseconds: a population-gradient step of one trial (plus 0.5 k p), a step of an
#: order-parameter trial (cnn_success_limit's decisions: independent of k and p), a recorded row of
#: trajectory (a Python dict per step); seconds of gradient_flow per unit of flow time and per flow
STEP_NS, DECIDE_NS, ROW_NS = 20.0, 30.0, 2000.0
FLOW_SECONDS_PER_TIME, FLOW_SECONDS = 1e-2, 5e-2


def cell_seconds(cell: dict) -> float:
    """Rough single-core time of a cell if every run takes all its steps (the worst case)."""
    def number(name, default):
        value = cell.get(name, default)
        return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else default

    def count(name, default):
        value = cell.get(name)
        return len(value) if isinstance(value, list) else default

    experiment = cell.get("experiment")
    k, p, trials, steps = number("k", 10), number("p", 10), number("trials", 1), number("steps", 1)
    if experiment == "sample_complexity":
        per_step = 50 + 0.5 * number("n_train", 1) * k * p  # the full batch is read every step
    elif number("batch_size", 0) > 0:
        per_step = STEP_NS + 1.5 * number("batch_size", 0) * k * p  # a fresh batch is drawn every step
    else:
        per_step = STEP_NS + 0.5 * k * p  # population gradient
    if experiment == "cnn_success_limit":
        # every trial up to max_steps to its decision, then check_trials runs to convergence
        checks = min(trials, number("check_trials", 1000))
        check = success_limit_check_steps(cell) if checks > 0 else 0.0
        return 1e-9 * (trials * number("max_steps", 20000) * DECIDE_NS + checks * check * per_step)
    if experiment == "gd_vs_flow":
        # per trial two flows, then per lr: t_fixed/lr steps, and t_max/lr steps for each eps
        t_max, t_fixed = number("t_max", 1.0), number("t_fixed", 1.0)
        flows = FLOW_SECONDS + FLOW_SECONDS_PER_TIME * (t_max + t_fixed)
        lrs = [float(lr) for lr in cell.get("lrs") or [] if isinstance(lr, numbers.Real)]
        gd = sum((t_fixed + count("eps", 1) * t_max) / lr for lr in lrs if lr > 0)
        return trials * (flows + 1e-9 * gd * per_step)
    if experiment in ("convergence_time", "convergence_scaling"):
        runs = count("eps", 1)
    elif experiment == "trajectory":
        runs, per_step = 1 + number("cnn_runs", 4), per_step + ROW_NS  # one teacher: trials is absent
    elif experiment in ("hypotheses", "phi_instability"):
        runs = 1  # the ResNet only
    else:
        runs = len(cell.get("architectures") or ARCHITECTURES)
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
