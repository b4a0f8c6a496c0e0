"""The theorem's hypotheses on the start, one at a time (MODEL.md section 5): the ResNet from
w0 = 0 with a0 in the ball B(0, |1'a*|/sqrt(k)), against w0 random with norm r and against a0
drawn from a ball r times larger.

Every cell meets the same teachers and the same random directions: w0 = r d with d uniform on the
unit sphere (the CNN's start of the other experiments), a0 = c a0' with a0' uniform in the
theorem's ball (so a0 is uniform in the ball of radius c |1'a*|/sqrt(k)). Population GD with the
rate ``scaled_lr(k)`` on both layers (0.1 at k <= 29, see ``step_sizes``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .._validation import as_int
from ._common import (
    PROCESSES,
    basin_columns,
    cell_rng,
    draw_trials,
    make_model,
    map_tasks,
    median_or_none,
    metadata,
    outcome_columns,
    positive_number,
    steps_columns,
)
from .step_sizes import phi_unstable, scaled_lr


def _non_negative(name: str, value) -> float:
    return 0.0 if value == 0 else positive_number(name, value)


def hypothesis_cell(config: dict) -> list:
    """One start: ``trials`` ResNet runs; one row.

    ``config`` keys: k, p, trials, steps, seed; w0_norm (0: the theorem's w0 = 0), a0_scale (1: the
    theorem's ball), lr (None: ``scaled_lr(k)``), tol (1e-10), threads (None). Teachers and random
    directions depend on (seed, k, p) only.
    """
    from .. import run_trials

    k, p = as_int("k", config["k"], minimum=1), as_int("p", config["p"], minimum=1)
    trials, steps = as_int("trials", config["trials"], minimum=1), as_int("steps", config["steps"], minimum=1)
    seed = as_int("seed", config["seed"], minimum=0)
    w0_norm = _non_negative("w0_norm", config.get("w0_norm", 0.0))
    a0_scale = positive_number("a0_scale", config.get("a0_scale", 1.0))
    lr = config.get("lr")
    lr = scaled_lr(k) if lr is None else positive_number("lr", lr)
    tol = float(config.get("tol", 1e-10))
    a_star, u_star, a0_ball, directions = draw_trials(k, p, trials, cell_rng(seed, k, p, 0))
    model = make_model("resnet", k, p)
    w0 = w0_norm * directions
    a0 = a0_scale * a0_ball
    out = run_trials(model, u_star - model.s, a_star, w0, a0, steps=steps, lr=lr, tol=tol,
                     threads=config.get("threads"))
    outcome = np.asarray(out.outcome).astype(str)
    failed = outcome != "global"
    radius = np.abs(a_star.sum(1)) / np.sqrt(k)
    u0_sq = np.sum((w0 + model.s) ** 2, axis=1)
    a_sq = np.einsum("ij,ij->i", a_star, a_star)
    return [{
        "k": k, "p": p, "architecture": "resnet", "w0_norm": w0_norm, "a0_scale": a0_scale,
        "trials": trials, "steps": steps, "lr": lr, "tol": tol, "seed": seed,
        **outcome_columns(outcome), **basin_columns(out.phi, out.a, a_star), **steps_columns(out.steps_to_tol),
        # starts outside the theorem's ball (a0_scale > 1 puts most of them there)
        "n_outside_ball": int(np.sum(np.linalg.norm(a0, axis=1) > radius)),
        # the start's |u0|^2 below lr |a*|^2/4: phi would be unstable at the optimum (MODEL.md section 6)
        "n_phi_unstable_start": int(np.sum(phi_unstable(u0_sq, a_sq, lr))),
        "median_failed_phi": median_or_none(np.asarray(out.phi)[failed]),
        "median_failed_loss": median_or_none(np.asarray(out.loss)[failed]),
        "engine": str(out.engine), **metadata(),
    }]


def hypotheses(*, k: int = 20, p: int = 10, w0_norms: Sequence[float] = (0.0, 0.01, 0.1, 1.0, 10.0),
               a0_scales: Sequence[float] = (1.0, 2.0, 5.0, 10.0), trials: int = 100_000, steps: int = 20000,
               seed: int = 0, tol: float = 1e-10, executor=PROCESSES, progress: bool = False) -> list:
    """Success rate of the ResNet as each hypothesis of the theorem is dropped, one at a time.

    Rows: ``factor = "w0_norm"`` for each w0 norm (a0 in the theorem's ball), then
    ``factor = "a0_scale"`` for each ball scale other than 1 (w0 = 0); each with the outcome counts,
    the rate and its Wilson 95% interval, the runs in the global basin, the steps to L <= tol, the
    starts outside the theorem's ball and the starts whose phi would be unstable at the optimum.
    Step size ``scaled_lr(k)`` on both layers. A w0 of norm 10 slows the filter by about 100 (the
    normalized gradient scales like 1/|u|^2 in angle): give it enough ``steps``.
    """
    starts = [("w0_norm", _non_negative("w0_norms", r), 1.0) for r in w0_norms]
    starts += [("a0_scale", 0.0, positive_number("a0_scales", c)) for c in a0_scales if float(c) != 1.0]
    if not starts:
        raise ValueError("w0_norms, a0_scales: expected at least one start, got none")
    configs = [{"k": as_int("k", k, minimum=1), "p": as_int("p", p, minimum=1), "trials": as_int("trials", trials,
                                                                                               minimum=1),
                "steps": as_int("steps", steps, minimum=1), "seed": as_int("seed", seed, minimum=0),
                "w0_norm": r, "a0_scale": c, "tol": float(tol), "threads": None if executor is None else 1}
               for _, r, c in starts]
    results = map_tasks(hypothesis_cell, configs, executor, progress=progress, desc="hypotheses")
    rows = []
    for (factor, _, _), cell in zip(starts, results):
        for row in cell:
            rows.append({"factor": factor, **row})
    return rows
