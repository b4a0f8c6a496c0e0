"""Grids of experiment cells described by a TOML file, run on any executor, resumable.

Config file::

    experiment = "success_rate"      # or any other name of EXPERIMENTS below
    seed = 0
    [fixed]                          # the same in every cell
    trials = 50
    steps = 3000
    lr = 0.1
    [grid]                           # every combination is one cell
    k = [5, 10, 20]
    p = [5, 10]

Grid/fixed keys (required ones first):

- ``success_rate``: k, p, trials, steps, lr; tol, stride, angle_deg (teacher angle to s,
  degrees), architectures.
- ``convergence_time``: k, p, trials, steps, lr, eps (a list).
- ``sgd_vs_gd``: k, p, trials, steps, lr, batch_size (0: population GD); tol, architectures.
- ``sample_complexity``: k, p, n_train, trials, steps, lr; tol, architectures.
- ``compare_optimizers``: k, p, trials, steps, optimizer (gd, momentum, nesterov, adam), lr;
  eps (the loss to reach), beta (used by momentum, nesterov), beta1, beta2 (used by adam),
  architectures.
- ``trajectory``: k, p, steps, lr; cnn_runs, negative_start (one row per run).
- ``cnn_success_limit``: k (>= 3), p (>= 2), trials; lr (default min(0.1, pi/(k + pi - 1))), max_steps,
  check_trials.
- ``hypotheses``: k, p, trials, steps; w0_norm (0), a0_scale (1), lr, tol.
- ``step_size_phase``: k, p, trials, steps, lr_w, lr_a; tol, architectures.
- ``convergence_scaling``: k, p, trials, steps, eps (a list); lr (default min(0.1, pi/(k + pi - 1))).
- ``gd_vs_flow``: k, p, trials, lrs, eps (lists), t_max, t_fixed (each lr below 2 t_fixed); architecture.
- ``phi_instability``: k, p, trials, steps, fraction (in (0, 1): lr = fraction * 4 pi/(k + pi - 1)); tol.

Each cell's key is a hash of its full configuration; finished cells are appended to
``results.jsonl`` in the output directory, so rerunning the same command skips them.

Everything in the file is checked before any cell runs (:mod:`.sweep_checks`): unknown keys (with
the nearest known one), each value against its parameter's rule, the constraints between
parameters of every cell, and the grid's size (at most ``max_cells`` cells). The output folder is
locked for the run (:mod:`.folder_lock`), and the store keeps whole records only (:mod:`.store`).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import sys
from typing import Callable, Dict, List

from ._common import PROCESSES, map_tasks, metadata
from .convergence import convergence_cell
from .errors import FolderInUse, StoreRefused, SweepError, WriteFailed  # noqa: F401 - raised by run_sweep
from .folder_lock import FolderLock
from .gd_vs_flow import flow_cell
from .hypotheses import hypothesis_cell
from .optimizers import optimizer_cell
from .phi_instability import phi_instability_cell
from .sample_complexity import sample_complexity_cell
from .scaling import scaling_cell
from .sgd import sgd_cell
from .step_phase import step_phase_cell
from .store import ResultStore, cell_key
from .success import success_cell
from .success_limit import success_limit_cell
from .sweep_checks import (DEFAULT_MAX_CELLS, ConfigError, check_cell, check_memory, check_size, check_values,
                           did_you_mean)
from .trajectory import trajectory_cell

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - depends on the interpreter
    import tomli as tomllib

EXPERIMENTS: Dict[str, Callable] = {"success_rate": success_cell, "convergence_time": convergence_cell,
                                    "sgd_vs_gd": sgd_cell, "sample_complexity": sample_complexity_cell,
                                    "compare_optimizers": optimizer_cell, "trajectory": trajectory_cell,
                                    "cnn_success_limit": success_limit_cell, "hypotheses": hypothesis_cell,
                                    "step_size_phase": step_phase_cell, "convergence_scaling": scaling_cell,
                                    "gd_vs_flow": flow_cell, "phi_instability": phi_instability_cell}
REQUIRED = {"success_rate": ("k", "p", "trials", "steps", "lr"),
            "convergence_time": ("k", "p", "trials", "steps", "lr", "eps"),
            "sgd_vs_gd": ("k", "p", "trials", "steps", "lr", "batch_size"),
            "sample_complexity": ("k", "p", "n_train", "trials", "steps", "lr"),
            "compare_optimizers": ("k", "p", "trials", "steps", "optimizer", "lr"),
            "trajectory": ("k", "p", "steps", "lr"),
            "cnn_success_limit": ("k", "p", "trials"),
            "hypotheses": ("k", "p", "trials", "steps"),
            "step_size_phase": ("k", "p", "trials", "steps", "lr_w", "lr_a"),
            "convergence_scaling": ("k", "p", "trials", "steps", "eps"),
            "gd_vs_flow": ("k", "p", "trials", "lrs", "eps", "t_max", "t_fixed"),
            "phi_instability": ("k", "p", "trials", "steps", "fraction")}
OPTIONAL = {"success_rate": {"tol", "stride", "angle_deg", "architectures"},
            "convergence_time": set(),
            "sgd_vs_gd": {"tol", "architectures"},
            "sample_complexity": {"tol", "architectures"},
            "compare_optimizers": {"eps", "beta", "beta1", "beta2", "architectures"},
            "trajectory": {"cnn_runs", "negative_start"},
            "cnn_success_limit": {"lr", "max_steps", "check_trials"},
            "hypotheses": {"w0_norm", "a0_scale", "lr", "tol"},
            "step_size_phase": {"tol", "architectures"},
            "convergence_scaling": {"lr"},
            "gd_vs_flow": {"architecture"},
            "phi_instability": {"tol"}}
ALLOWED = {name: set(REQUIRED[name]) | OPTIONAL[name] for name in EXPERIMENTS}


def load_config(path, *, max_cells: int = DEFAULT_MAX_CELLS) -> dict:
    """Read and check a sweep configuration file (TOML); :class:`ConfigError` says what is wrong."""
    try:
        with open(path, "rb") as fh:
            config = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML (not UTF-8 text: {exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror or exc})") from exc
    return check_config(config, source=str(path), max_cells=max_cells)


def check_config(config: dict, *, source: str = "config", max_cells: int = DEFAULT_MAX_CELLS) -> dict:
    """The configuration with its values checked (see :mod:`.sweep_checks`); a grid of more than
    ``max_cells`` cells is refused with its size and an estimate of its time."""
    top = ("experiment", "seed", "fixed", "grid")
    for name in config:
        if name not in top:
            raise ConfigError(f"{source}: unknown top-level key {name!r}{did_you_mean(name, top)}; expected "
                              "experiment, seed, [fixed], [grid]")
    experiment = config.get("experiment")
    if not isinstance(experiment, str) or experiment not in EXPERIMENTS:
        hint = did_you_mean(experiment, list(EXPERIMENTS)) if isinstance(experiment, str) else ""
        raise ConfigError(f"{source}: experiment: expected one of {sorted(EXPERIMENTS)}, got {experiment!r}{hint}")
    seed = config.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{source}: seed: expected a non-negative integer, got {seed!r}")
    for section in ("fixed", "grid"):
        if not isinstance(config.get(section, {}), dict):
            raise ConfigError(f"{source}: {section}: expected a table [{section}], got {config[section]!r}")
    fixed, grid = dict(config.get("fixed", {})), dict(config.get("grid", {}))
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: grid.{name}: expected a non-empty list, got {values!r}")
        seen = set()
        for value in values:
            text = json.dumps(value, sort_keys=True, default=str)
            if text in seen:
                raise ConfigError(f"{source}: grid.{name}: the value {value!r} is given twice (one cell each)")
            seen.add(text)
    both = set(fixed) & set(grid)
    if both:
        raise ConfigError(f"{source}: keys in both [fixed] and [grid]: {sorted(both)}")
    keys = list(fixed) + list(grid)
    for name in keys:
        if name not in ALLOWED[experiment]:
            raise ConfigError(f"{source}: unknown parameter {name!r} for {experiment}"
                              f"{did_you_mean(name, sorted(ALLOWED[experiment]))}; expected some of "
                              f"{sorted(ALLOWED[experiment])}")
    missing = [name for name in REQUIRED[experiment] if name not in keys]
    if missing:
        raise ConfigError(f"{source}: missing parameters {missing} for {experiment} (give them in [fixed] or [grid])")
    check_values(experiment, fixed, grid, source)
    checked = {"experiment": experiment, "seed": seed, "fixed": fixed, "grid": grid}
    check_size(checked, max_cells, source)
    for cell in cells(checked):
        check_cell(cell, source)
        check_memory(cell, source)
    return checked


def cells(config: dict) -> List[dict]:
    """Every cell of the grid, in grid order, each a full configuration with its key."""
    names = list(config["grid"])
    out = []
    for values in itertools.product(*(config["grid"][name] for name in names)):
        cell = {"experiment": config["experiment"], "seed": config["seed"], **config["fixed"],
                **dict(zip(names, values))}
        cell["key"] = cell_key(cell)
        out.append(cell)
    return out


def run_cell(cell: dict) -> dict:
    """Run one cell (in any process); the record written to the store."""
    params = {name: value for name, value in cell.items() if name not in ("experiment", "key", "threads")}
    if "angle_deg" in params:
        angle_deg = params.pop("angle_deg")
        params["angle"] = math.radians(float(angle_deg))
    params["threads"] = cell.get("threads")
    rows = EXPERIMENTS[cell["experiment"]](params)
    if "angle_deg" in cell:
        for row in rows:
            row["angle_deg"] = cell["angle_deg"]
    for row in rows:
        row["cell"] = cell["key"]
    return {"key": cell["key"], "config": {n: v for n, v in cell.items() if n not in ("key", "threads")},
            "rows": rows, **metadata()}


def run_sweep(config: dict, out_dir, *, executor=PROCESSES, progress: bool = True) -> List[dict]:
    """Run every unfinished cell of ``config``, appending each to ``out_dir/results.jsonl`` as it
    finishes; returns the full table (rows of all cells, in grid order).

    The folder is locked for the run: a second sweep on it raises :class:`FolderInUse` at once. A
    failed write (a full disk) raises :class:`WriteFailed`, with every cell finished before kept.
    """
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise WriteFailed(out_dir, exc) from exc
    with FolderLock(out_dir) as lock:
        if lock.note:
            print(lock.note, file=sys.stderr)
        store = ResultStore(os.path.join(out_dir, "results.jsonl"))
        all_cells = cells(config)
        pending = [dict(cell, threads=None if executor is None else 1) for cell in all_cells
                   if cell["key"] not in store]
        if pending:
            map_tasks(run_cell, pending, executor, progress=progress, desc=config["experiment"],
                      on_result=lambda _i, record: store.append(record))
        return [row for cell in all_cells for row in store.records[cell["key"]]["rows"]]


SUMMARY_COLUMNS = {
    "success_rate": ("k", "p", "stride", "angle_deg", "architecture", "trials", "successes", "rate", "ci_low",
                     "ci_high"),
    "convergence_time": ("k", "p", "eps", "trials", "reached", "median_steps", "q25_steps", "q75_steps"),
    "sgd_vs_gd": ("k", "p", "lr", "batch_size", "architecture", "trials", "successes", "rate", "ci_low", "ci_high",
                  "median_final_loss", "median_final_train_loss", "median_steps"),
    "sample_complexity": ("k", "p", "n_train", "architecture", "trials", "successes", "rate", "ci_low", "ci_high",
                          "n_fit", "median_final_loss", "median_final_train_loss"),
    "compare_optimizers": ("k", "p", "optimizer", "lr", "architecture", "trials", "successes", "rate", "ci_low",
                           "ci_high", "basin_rate", "median_steps", "q25_steps", "q75_steps"),
    "trajectory": ("run", "architecture", "outcome", "initial_phi", "final_phi", "final_loss", "stage1_end"),
    "cnn_success_limit": ("k", "p", "lr", "trials", "successes", "rate", "ci_low", "ci_high", "n_undecided",
                          "mean_steps", "check_trials", "check_disagree"),
    "hypotheses": ("k", "p", "w0_norm", "a0_scale", "trials", "successes", "rate", "ci_low", "ci_high", "n_spurious",
                   "n_unconverged", "basin_rate", "median_steps"),
    "step_size_phase": ("k", "p", "architecture", "lr_w", "lr_a", "a_step_stable", "trials", "rate", "ci_low",
                        "ci_high", "divergence_rate"),
    "convergence_scaling": ("k", "p", "eps", "lr", "trials", "reached", "median_steps", "median_time"),
    "gd_vs_flow": ("k", "p", "architecture", "lr", "trials", "median_state_error"),
    "phi_instability": ("k", "fraction", "lr", "trials", "n_predicted", "n_shown", "n_global", "median_steps_shown",
                        "median_steps_not_shown"),
}
