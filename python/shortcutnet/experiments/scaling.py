"""Convergence time of the ResNet (w0 = 0) up to k = 10^4 and p = 10^3, with the step size scaled
for stability (beyond the paper's sizes; MODEL.md section 5.3).

The step size is ``scaled_lr(k) = min(0.1, pi/(k + pi - 1))`` on both layers (``step_sizes``):
0.1 diverges beyond k = 123. Since it falls like 1/k, the steps to L <= eps grow like k for a
trivial reason; the rows also give the gradient-flow time ``steps * lr``, and the slopes are
fitted for both.
"""
from __future__ import annotations

import math
from typing import Sequence

from .._validation import as_int
from ._common import PROCESSES, map_longest_first, metadata
from .convergence import convergence_cell, fit_slopes
from .step_sizes import scaled_lr


def scaling_cell(config: dict) -> list:
    """One (k, p): ``convergence_cell`` at ``lr = scaled_lr(k)`` (unless given); rows per eps with
    the median and quartiles of the flow time steps * lr as well."""
    config = dict(config)
    if config.get("lr") is None:
        config["lr"] = scaled_lr(int(config["k"]))
    rows = convergence_cell(config)
    for row in rows:
        for name in ("median", "q25", "q75", "max"):
            row[f"{name}_time"] = row[f"{name}_steps"] * row["lr"]
    return rows


def _with_time(rows):
    return [{**row, "median_steps": row["median_time"]} for row in rows]


def convergence_scaling(ks: Sequence[int] = (5, 20, 100, 500, 2000, 10000), ps: Sequence[int] = (5, 30, 200, 1000),
                        *, eps: Sequence[float] = (1e-2, 1e-4, 1e-6, 1e-8), trials: int = 200, seed: int = 0,
                        executor=PROCESSES, progress: bool = False) -> dict:
    """Steps (and flow time) for the ResNet from w0 = 0 to reach L <= eps, over k, p and eps.

    Each run takes at most ``budget(k, lr)`` steps, enough for eps = 1e-8 from the paper's starts (the
    slow modes of a contract by lr (pi - 1)/(2 pi) per step). Returns
    ``{"rows": [...], "slopes": [...], "time_slopes": [...]}``: rows per (k, p, eps) as in
    ``convergence_time`` plus ``lr`` and ``*_time`` columns; log-log slopes of the median steps
    and of the median flow time (:func:`fit_slopes`).
    """
    configs = []
    for k in ks:
        k = as_int("ks", k, minimum=1)
        lr = scaled_lr(k)
        for p in ps:
            configs.append({"k": k, "p": as_int("ps", p, minimum=1), "eps": [float(e) for e in eps],
                            "trials": as_int("trials", trials, minimum=1), "steps": budget(k, lr),
                            "lr": lr, "seed": as_int("seed", seed, minimum=0),
                            "threads": None if executor is None else 1})
    results = map_longest_first(scaling_cell, configs, lambda c: c["steps"] * c["trials"] * len(c["eps"]), executor,
                                progress=progress, desc="convergence scaling")
    rows = [row for cell in results for row in cell]
    extra = {"trials": int(trials), "seed": int(seed), **metadata()}
    return {"rows": rows, "slopes": [{**s, **extra} for s in fit_slopes(rows)],
            "time_slopes": [{**s, **extra} for s in fit_slopes(_with_time(rows))]}


def budget(k: int, lr: float) -> int:
    """Most steps a run may take: 60 e-folds of the slow modes of a (rate lr (pi - 1)/(2 pi)), at least 3000."""
    return max(3000, int(math.ceil(60.0 / (lr * (math.pi - 1.0) / (2.0 * math.pi)))))
