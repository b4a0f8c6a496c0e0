"""Phase diagram of gradient descent over the step sizes (lr_w, lr_a) of the two layers: success
rate and divergence, ResNet (w0 = 0) and plain CNN (w0 on the sphere), the same teachers and starts
in every cell (beyond the paper, which allows one step size per layer).

The second layer's step is stable only for ``lr_a < 4 pi/(k + pi - 1)`` (``step_sizes``); the
rows say on which side of that line each cell lies, and :func:`divergence_boundary` finds where the
measured divergence sets in, for comparison.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .._validation import as_int
from ._common import (
    ARCHITECTURES,
    PROCESSES,
    basin_columns,
    cell_rng,
    draw_trials,
    make_model,
    map_tasks,
    metadata,
    outcome_columns,
    positive_number,
    steps_columns,
)
from .step_sizes import a_step_limit, phi_unstable


def step_phase_cell(config: dict) -> list:
    """One (lr_w, lr_a): ``trials`` runs per architecture; one row per architecture.

    ``config`` keys: k, p, trials, steps, lr_w, lr_a, seed; tol (1e-10), architectures, threads.
    """
    from .. import run_trials

    k, p = as_int("k", config["k"], minimum=1), as_int("p", config["p"], minimum=1)
    trials, steps = as_int("trials", config["trials"], minimum=1), as_int("steps", config["steps"], minimum=1)
    seed = as_int("seed", config["seed"], minimum=0)
    lr_w, lr_a = positive_number("lr_w", config["lr_w"]), positive_number("lr_a", config["lr_a"])
    tol = float(config.get("tol", 1e-10))
    a_star, u_star, a0, w0_sphere = draw_trials(k, p, trials, cell_rng(seed, k, p, 0))
    a_sq = np.einsum("ij,ij->i", a_star, a_star)
    limit = a_step_limit(k)
    rows = []
    for architecture in config.get("architectures", ARCHITECTURES):
        model = make_model(architecture, k, p)
        w0 = np.zeros((trials, p)) if architecture == "resnet" else w0_sphere
        out = run_trials(model, u_star - model.s, a_star, w0, a0, steps=steps, lr=(lr_w, lr_a), tol=tol,
                         threads=config.get("threads"))
        counts = outcome_columns(out.outcome)
        u0_sq = np.sum((w0 + model.s) ** 2, axis=1)
        rows.append({
            "k": k, "p": p, "architecture": architecture, "lr_w": lr_w, "lr_a": lr_a, "trials": trials,
            "steps": steps, "tol": tol, "seed": seed,
            "a_step_limit": limit, "a_step_stable": bool(lr_a < limit),
            **counts, "divergence_rate": counts["n_diverged"] / trials,
            **basin_columns(out.phi, out.a, a_star), **steps_columns(out.steps_to_tol),
            "n_phi_unstable_start": int(np.sum(phi_unstable(u0_sq, a_sq, lr_w))),
            "engine": str(out.engine), **metadata(),
        })
    return rows


def default_lrs_a(k: int, points: int = 13) -> list:
    """A log grid of lr_a from 1e-3 to twice the a-step's limit, with the limit times 0.9 and 1.1 added."""
    limit = a_step_limit(k)
    grid = np.geomspace(1e-3, 2.0 * limit, points).tolist() + [0.9 * limit, 1.1 * limit]
    return sorted(float(f"{x:.4g}") for x in grid)


def step_size_phase(*, k: int = 20, p: int = 10, lrs_w: Sequence[float] = tuple(np.geomspace(1e-3, 10.0, 9)),
                    lrs_a: Sequence[float] = None, trials: int = 1000, steps: int = 20000, seed: int = 0,
                    tol: float = 1e-10, architectures: Sequence[str] = ARCHITECTURES, executor=PROCESSES,
                    progress: bool = False) -> list:
    """Success and divergence rates on a grid of (lr_w, lr_a), one row per (lr_w, lr_a, architecture).

    ``lrs_a`` defaults to ``default_lrs_a(k)`` (up to twice 4 pi/(k + pi - 1), with points at 0.9
    and 1.1 times it). Rows carry ``a_step_stable`` (lr_a below the limit), the outcome counts,
    the rate and its Wilson 95% interval, ``divergence_rate``, the global basin, the steps to
    L <= tol and the starts whose phi would be unstable at the optimum (|u0|^2 < lr_w |a*|^2/4).
    """
    k, p = as_int("k", k, minimum=1), as_int("p", p, minimum=1)
    lrs_a = default_lrs_a(k) if lrs_a is None else list(lrs_a)
    lrs_w = [positive_number("lrs_w", x) for x in lrs_w]
    lrs_a = [positive_number("lrs_a", x) for x in lrs_a]
    if not lrs_w or not lrs_a:
        raise ValueError("lrs_w, lrs_a: expected at least one step size each, got an empty grid")
    configs = [{"k": k, "p": p, "trials": as_int("trials", trials, minimum=1), "steps": as_int("steps", steps, minimum=1),
                "lr_w": float(f"{lw:.4g}"), "lr_a": la, "seed": as_int("seed", seed, minimum=0), "tol": float(tol),
                "architectures": list(architectures), "threads": None if executor is None else 1}
               for lw in lrs_w for la in lrs_a]
    results = map_tasks(step_phase_cell, configs, executor, progress=progress, desc="step-size phase")
    return [row for rows in results for row in rows]


def divergence_boundary(rows: Sequence[dict]) -> list:
    """Per architecture and lr_w: the largest lr_a with no divergent run and the smallest with more
    than half divergent, next to the a-step's limit 4 pi/(k + pi - 1)."""
    out = []
    for architecture in dict.fromkeys(r["architecture"] for r in rows):
        for lr_w in sorted({r["lr_w"] for r in rows if r["architecture"] == architecture}):
            sel = sorted((r for r in rows if r["architecture"] == architecture and r["lr_w"] == lr_w),
                         key=lambda r: r["lr_a"])
            calm = [r["lr_a"] for r in sel if r["n_diverged"] == 0]
            wild = [r["lr_a"] for r in sel if r["divergence_rate"] > 0.5]
            out.append({"architecture": architecture, "lr_w": lr_w, "a_step_limit": sel[0]["a_step_limit"],
                        "largest_lr_a_without_divergence": max(calm) if calm else None,
                        "smallest_lr_a_mostly_divergent": min(wild) if wild else None})
    return out
