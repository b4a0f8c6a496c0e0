"""Online SGD on fresh Gaussian batches vs exact population GD, over batch sizes and step sizes
(beyond the paper).

Every step of a ``gradient="sampled"`` run draws a fresh batch of Gaussian inputs. The teacher is
realizable, so at the optimum every sample's residual is zero and the stochastic gradient with it:
SGD can converge to the global optimum exactly, and it is judged by the same outcome rule as
population GD (``shortcutnet.outcomes``: phi <= 1e-3 and |a - a*| <= 1e-3 when the run stops,
which it does once the population loss is <= tol). The rows also count the runs that ended in the
global basin (phi < pi/2 and a.a* > 0), which tells a run that is merely slow or noisy on the right
side from one trapped on the wrong side.

Step sizes are measured against the curvature of the second layer, whose largest eigenvalue
(k + pi - 1) / (2 pi) grows with k, as does the squared norm of a sample's hidden layer (about k/2)
that sets the size of SGD's steps: eta = 0.2 and 0.04 at k = 10, p = 5 (the defaults) are the step
sizes 0.1 and 0.02 of k = 20, p = 10 in these units, with a quarter of the input entries per
sample.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .._validation import as_int
from ._common import (
    ARCHITECTURES,
    PROCESSES,
    basin_columns,
    cell_rng,
    draw_trials,
    make_model,
    map_longest_first,
    median_or_none,
    metadata,
    outcome_columns,
    positive_number,
    steps_columns,
)
from .tables import Table

#: batch_size of population GD in the rows and in sweep files (a batch of infinitely many samples)
POPULATION = 0


def _batch_size(value) -> Optional[int]:
    """None for population GD (given as None or 0), else a batch size >= 1."""
    if value is None:
        return None
    value = as_int("batch_size", value, minimum=0)
    return None if value == POPULATION else value


def sgd_cell(config: dict) -> list:
    """One step size and batch size: ``trials`` runs per architecture; one row per architecture.

    ``config`` keys: k, p, trials, steps, lr, seed; batch_size (None or 0: population GD), tol
    (1e-10), architectures (("resnet", "cnn")), threads (None). Teachers and initializations depend
    on (seed, k, p) only, so every batch size and step size meets the same ones; trial b's batches
    come from ``sn.trial_seed(seed, b)``, the same stream for both architectures.
    """
    from .. import run_trials

    k, p, trials, steps, seed = (int(config["k"]), int(config["p"]), int(config["trials"]), int(config["steps"]),
                                 int(config["seed"]))
    lr = float(config["lr"])
    batch_size = _batch_size(config.get("batch_size"))
    tol = float(config.get("tol", 1e-10))
    a_star, u_star, a0, w0_sphere = draw_trials(k, p, trials, cell_rng(seed, k, p, 0))
    source = {} if batch_size is None else {"gradient": "sampled", "batch_size": batch_size, "seed": seed}
    rows = []
    for architecture in config.get("architectures", ARCHITECTURES):
        model = make_model(architecture, k, p)
        w0 = np.zeros((trials, p)) if architecture == "resnet" else w0_sphere
        out = run_trials(model, u_star - model.s, a_star, w0, a0, steps=steps, lr=lr, tol=tol,
                         threads=config.get("threads"), **source)
        outcome = np.asarray(out.outcome).astype(str)
        failed = outcome != "global"
        rows.append({
            "k": k, "p": p, "architecture": architecture,
            "gradient": "population" if batch_size is None else "sampled",
            "batch_size": POPULATION if batch_size is None else batch_size,
            "lr": lr, "trials": trials, "steps": steps, "tol": tol, "seed": seed,
            **outcome_columns(outcome),
            **basin_columns(out.phi, out.a, a_star),
            "median_final_loss": median_or_none(out.loss),
            # the loss on the last step's batch; population GD has none
            "median_final_train_loss": None if out.train_loss is None else median_or_none(out.train_loss),
            "median_final_phi": median_or_none(out.phi),
            "median_failed_loss": median_or_none(np.asarray(out.loss)[failed]),
            "median_failed_phi": median_or_none(np.asarray(out.phi)[failed]),
            "median_failed_train_loss": None if out.train_loss is None else median_or_none(
                np.asarray(out.train_loss)[failed]),
            # steps to L <= tol: the price of the noise in speed
            **steps_columns(out.steps_to_tol),
            "engine": str(out.engine), **metadata(),
        })
    return rows


def _cost(config: dict) -> float:
    """Rough relative cost of a cell (ns): the sampled gradient's cost per step grows with the batch;
    failed runs, mostly the CNN's, take every step."""
    batch = config["batch_size"] or 0
    per_step = 20.0 + 1.5 * batch * config["k"] * config["p"]
    share = 0.5 if config["architectures"] == ["resnet"] else 1.0
    return per_step * config["steps"] * share


def sgd_vs_gd(batch_sizes: Sequence[Optional[int]] = (1, 2, 4, 8, 16, 64, 256, 1024, None), *,
              lrs: Sequence[float] = (0.2, 0.04), k: int = 10, p: int = 5, trials: int = 1000,
              steps=(1200, 2500), seed: int = 0, tol: float = 1e-10, architectures: Sequence[str] = ARCHITECTURES,
              executor=PROCESSES, progress: bool = False) -> list:
    """Online SGD at several batch sizes vs population GD, at several step sizes, same teachers.

    ``batch_sizes``: None (or 0) stands for the exact population gradient. ``steps``: the maximum
    number of steps, one number or one per step size in ``lrs``; runs stop once L <= ``tol``.
    Returns rows, one per (lr, batch size, architecture) in that order, with the outcome counts, the
    success rate (outcome "global") and its Wilson 95% interval, the runs in the global basin, the
    median final population loss, training loss (of the last batch) and phi, where the failed runs
    stopped, and the median and quantiles of the steps to L <= tol of the runs that reached it.
    """
    lrs = [positive_number("lrs", lr) for lr in lrs]
    if not lrs:
        raise ValueError("lrs: expected at least one step size, got none")
    per_lr = [steps] * len(lrs) if np.ndim(steps) == 0 else list(steps)
    if len(per_lr) != len(lrs):
        raise ValueError(f"steps: expected one number or {len(lrs)} (one per step size in lrs), got {len(per_lr)}")
    per_lr = [as_int("steps", s, minimum=1) for s in per_lr]
    sizes = [_batch_size(b) for b in batch_sizes]
    if not sizes:
        raise ValueError("batch_sizes: expected at least one batch size (None: population GD), got none")
    trials = as_int("trials", trials, minimum=1)
    configs = [{"k": as_int("k", k, minimum=1), "p": as_int("p", p, minimum=1), "trials": trials,
                "steps": n_steps, "lr": lr, "seed": as_int("seed", seed, minimum=0), "batch_size": b,
                "tol": float(tol), "architectures": [arch], "threads": None if executor is None else 1}
               for lr, n_steps in zip(lrs, per_lr) for b in sizes for arch in architectures]
    results = map_longest_first(sgd_cell, configs, _cost, executor, progress=progress, desc="SGD vs GD")
    return Table(row for rows in results for row in rows)
