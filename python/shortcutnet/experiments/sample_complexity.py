"""Sample complexity: full-batch GD on a finite training set of n_train Gaussian inputs (beyond the paper).

``gradient="empirical"`` with ``batch_size=None`` minimizes the training loss on samples
0..n_train-1 of the trial's input stream. The teacher is realizable, so it is an exact zero of the
training loss for every n_train; with few samples other zeros (fits of the training set that miss
the teacher) and new spurious minima appear. A run counts as a success by the population outcome
rule (it reached the teacher, not merely a fit of the training set); the rows also count the runs
that fit the training set (final training loss <= tol). The defaults (k = 10, p = 5, eta = 0.2:
the step size 0.1 of k = 20, p = 10 in units of the second layer's curvature, see ``sgd``) keep the
largest training set, 100 k p = 5000 samples, affordable.
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


def sample_grid(k: int, p: int, points: int = 12) -> list:
    """``points`` training-set sizes on a log grid from k + p (the number of parameters) to 100 k p."""
    points = as_int("points", points, minimum=2)
    grid = np.unique(np.round(np.geomspace(k + p, 100 * k * p, points)).astype(int))
    return [int(n) for n in grid]


def sample_complexity_cell(config: dict) -> list:
    """One training-set size: ``trials`` runs per architecture; one row per architecture.

    ``config`` keys: k, p, n_train, trials, steps, lr, seed; tol (1e-10), architectures, threads.
    Teachers and initializations depend on (seed, k, p) only; trial b's training set is samples
    0..n_train-1 of the stream ``sn.trial_seed(seed, b)``, so the sets grow nested with n_train and
    both architectures fit the same inputs (and labels: the teachers share u*).
    """
    from .. import run_trials

    k, p, n_train, trials, steps, seed = (int(config["k"]), int(config["p"]), int(config["n_train"]),
                                          int(config["trials"]), int(config["steps"]), int(config["seed"]))
    lr = float(config["lr"])
    tol = float(config.get("tol", 1e-10))
    a_star, u_star, a0, w0_sphere = draw_trials(k, p, trials, cell_rng(seed, k, p, 0))
    rows = []
    for architecture in config.get("architectures", ARCHITECTURES):
        model = make_model(architecture, k, p)
        w0 = np.zeros((trials, p)) if architecture == "resnet" else w0_sphere
        out = run_trials(model, u_star - model.s, a_star, w0, a0, steps=steps, lr=lr, tol=tol, gradient="empirical",
                         n_train=n_train, seed=seed, threads=config.get("threads"))
        outcome = np.asarray(out.outcome).astype(str)
        train_loss = np.asarray(out.train_loss, dtype=np.float64)
        fit = train_loss <= tol
        rows.append({
            "k": k, "p": p, "n_train": n_train, "n_over_params": n_train / (k + p), "architecture": architecture,
            "lr": lr, "trials": trials, "steps": steps, "tol": tol, "seed": seed,
            **outcome_columns(outcome),
            **basin_columns(out.phi, out.a, a_star),
            # fitted the training set without reaching the teacher: the finite sample's own zeros
            "n_fit": int(fit.sum()), "n_fit_not_global": int(np.sum(fit & (outcome != "global"))),
            "median_final_loss": median_or_none(out.loss),
            "median_final_train_loss": median_or_none(train_loss),
            "median_final_phi": median_or_none(out.phi),
            "median_failed_loss": median_or_none(np.asarray(out.loss)[outcome != "global"]),
            "median_failed_train_loss": median_or_none(train_loss[outcome != "global"]),
            "median_failed_phi": median_or_none(np.asarray(out.phi)[outcome != "global"]),
            **steps_columns(out.steps_to_tol),
            "engine": str(out.engine), **metadata(),
        })
    return rows


def _cost(config: dict) -> float:
    # the full-batch gradient reads the whole training set every step; failed (CNN) runs take every step
    share = 0.5 if config["architectures"] == ["resnet"] else 1.0
    return (50.0 + 0.5 * config["n_train"] * config["k"] * config["p"]) * config["steps"] * share


def sample_complexity(n_trains: Optional[Sequence[int]] = None, *, k: int = 10, p: int = 5, points: int = 12,
                      trials: int = 200, steps: int = 3000, lr: float = 0.2, seed: int = 0, tol: float = 1e-10,
                      architectures: Sequence[str] = ARCHITECTURES, executor=PROCESSES,
                      progress: bool = False) -> list:
    """Success rate and final population loss vs the training-set size, full-batch GD, ResNet vs CNN.

    ``n_trains``: the training-set sizes (default :func:`sample_grid`: ``points`` sizes on a log
    grid from k + p to 100 k p). Returns rows, one per (n_train, architecture), with the outcome
    counts, the success rate (reached the teacher: outcome "global") and its Wilson 95% interval,
    the runs in the global basin, the runs that fit the training set (training loss <= tol), the
    median final population and training losses and the steps to L <= tol of the runs that reached it.
    """
    k, p = as_int("k", k, minimum=1), as_int("p", p, minimum=1)
    sizes = sample_grid(k, p, points) if n_trains is None else [as_int("n_trains", n, minimum=1) for n in n_trains]
    if not sizes:
        raise ValueError("n_trains: expected at least one training-set size, got none")
    configs = [{"k": k, "p": p, "n_train": n, "trials": as_int("trials", trials, minimum=1),
                "steps": as_int("steps", steps, minimum=1), "lr": positive_number("lr", lr),
                "seed": as_int("seed", seed, minimum=0), "tol": float(tol), "architectures": [arch],
                "threads": None if executor is None else 1}
               for n in sizes for arch in architectures]
    results = map_longest_first(sample_complexity_cell, configs, _cost, executor, progress=progress,
                                desc="sample complexity")
    return Table(row for rows in results for row in rows)
