"""Success rate of gradient descent: ResNet (w0 = 0) vs plain CNN (w0 on the sphere), docs/model.md, "The paper's claim and the experiments".

One *cell* is a configuration (k, p, stride, teacher angle); in a cell, ``trials`` random teachers
and second-layer initializations are drawn once and shared by both architectures, so the
comparison is paired. The population-GD runs go through ``run_trials`` (the compiled engine).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from ._common import (
    ARCHITECTURES,
    OUTCOMES,
    PROCESSES,
    angle_key,
    cell_rng,
    draw_trials,
    make_model,
    map_tasks,
    metadata,
    wilson_interval,
)
from .tables import Table

def success_cell(config: dict) -> list:
    """Run one cell; one row per architecture.

    ``config`` keys: k, p, trials, steps, lr, seed; optional stride (None), angle (None, radians:
    teacher at that angle to s), tol (1e-10), architectures (("resnet", "cnn")), threads (None).
    """
    from .. import run_trials

    k, p = int(config["k"]), int(config["p"])
    trials, steps, lr, seed = int(config["trials"]), int(config["steps"]), float(config["lr"]), int(config["seed"])
    stride = config.get("stride")
    stride = None if stride is None or int(stride) == p else int(stride)
    angle = config.get("angle")
    angle = None if angle is None else float(angle)
    tol = float(config.get("tol", 1e-10))
    architectures = tuple(config.get("architectures", ARCHITECTURES))
    # stride is not part of the seed: cells that differ only in stride share their teachers
    rng = cell_rng(seed, k, p, angle_key(angle))
    a_star, u_star, a0, w0_sphere = draw_trials(k, p, trials, rng, angle)
    rows = []
    for architecture in architectures:
        model = make_model(architecture, k, p, stride)
        w_star = u_star - model.s
        w0 = np.zeros((trials, p)) if architecture == "resnet" else w0_sphere
        out = run_trials(model, w_star, a_star, w0, a0, steps=steps, lr=lr, tol=tol, threads=config.get("threads"))
        outcome = np.asarray(out.outcome).astype(str)
        counts = {name: int(np.sum(outcome == name)) for name in OUTCOMES}
        lo, hi = wilson_interval(counts["global"], trials)
        angle_to_s = np.arccos(np.clip(u_star @ np.full(p, 1 / math.sqrt(p)) / np.linalg.norm(u_star, axis=1), -1, 1))
        spurious_exists = (a_star.sum(1) ** 2) < (math.pi - 1 + k) / math.pi * np.einsum("ij,ij->i", a_star, a_star)
        rows.append({
            "k": k, "p": p, "stride": p if stride is None else stride, "angle": angle,
            "architecture": architecture, "trials": trials, "steps": steps, "lr": lr, "tol": tol,
            "seed": seed,
            "successes": counts["global"],
            **{f"n_{name}": counts[name] for name in OUTCOMES},
            "rate": counts["global"] / trials, "ci_low": lo, "ci_high": hi,
            # teachers whose spurious critical point is a local minimum (docs/model.md, "Critical points")
            "frac_spurious_minimum": float(np.mean(spurious_exists)),
            "mean_teacher_angle": float(np.mean(angle_to_s)),
            "median_final_phi": float(np.median(out.phi)),
            # where the failed runs stopped: tells a spurious point (phi ~ pi) from other stationary points
            "median_failed_phi": _median(np.asarray(out.phi)[outcome != "global"]),
            "median_failed_loss": _median(np.asarray(out.loss)[outcome != "global"]),
            **metadata(),
        })
    return rows


def _median(x):
    """Median, or None when there is nothing to take it of (None, unlike nan, compares equal)."""
    return float(np.median(x)) if np.size(x) else None


def _grid(ks, ps, strides, angles):
    cells = []
    for k in ks:
        for p in ps:
            for stride in strides:
                for angle in angles:
                    cells.append((k, p, stride, angle))
    return cells


def success_rate(ks: Sequence[int] = (5, 10, 20), ps: Sequence[int] = (5, 10), *, trials: int = 100,
                 steps: int = 3000, lr: float = 0.1, seed: int = 0, tol: float = 1e-10,
                 strides: Sequence[Optional[int]] = (None,), angles: Sequence[Optional[float]] = (None,),
                 architectures: Sequence[str] = ARCHITECTURES, executor=PROCESSES,
                 progress: bool = False) -> list:
    """Fraction of runs that reach the global optimum over a grid of (k, p) (and strides, angles).

    Teachers per docs/model.md, "The paper's claim and the experiments": a* ~ N(0, I), ResNet teacher w* ~ N(0, 0.25/p I) (or, with
    ``angles``, a teacher at a prescribed angle to s); ResNet starts at w0 = 0, the CNN on the unit
    sphere, both with a0 uniform in B(0, |1'a*|/sqrt(k)). Returns rows (one per cell and
    architecture) with counts per outcome, the rate and its Wilson 95% interval, the seed, backend
    and version. ``executor``: any ``concurrent.futures.Executor``, a worker count, ``"processes"``
    (default, one local process per core) or None (sequential).
    """
    for name, value in (("trials", trials), ("steps", steps)):
        if int(value) < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    configs = []
    for k, p, stride, angle in _grid(ks, ps, strides, angles):
        if stride is not None and int(stride) > int(p):
            raise ValueError(f"strides: expected values <= p = {p}, got {stride}")
        configs.append({
            "k": int(k), "p": int(p), "stride": stride, "angle": angle, "trials": int(trials),
            "steps": int(steps), "lr": float(lr), "seed": int(seed), "tol": float(tol),
            "architectures": list(architectures),
            "threads": None if executor is None else 1,
        })
    results = map_tasks(success_cell, configs, executor, progress=progress, desc="success rate")
    return Table(row for rows in results for row in rows)


def success_vs_angle(angles_deg: Sequence[float] = tuple(range(0, 181, 15)), *, k: int = 20, p: int = 10,
                     trials: int = 100, steps: int = 3000, lr: float = 0.1, seed: int = 0,
                     tol: float = 1e-10, executor=PROCESSES, progress: bool = False) -> list:
    """Success rate vs the teacher's angle to the shortcut direction, angle(s, u*) in degrees.

    The ResNet guarantee assumes the teacher filter is near s (an acute angle); this maps where
    it breaks. Rows as in :func:`success_rate`, with ``angle_deg``.
    """
    rows = success_rate((k,), (p,), trials=trials, steps=steps, lr=lr, seed=seed, tol=tol,
                        angles=[math.radians(float(x)) for x in angles_deg], executor=executor,
                        progress=progress)
    for row in rows:
        row["angle_deg"] = round(math.degrees(row["angle"]), 6)
    return rows


def success_vs_stride(strides: Sequence[int] = (10, 5, 2, 1), *, k: int = 20, p: int = 10, trials: int = 100,
                      steps: int = 3000, lr: float = 0.1, seed: int = 0, tol: float = 1e-10,
                      executor=PROCESSES, progress: bool = False) -> list:
    """Success rate when patches overlap (stride < p); stride = p is the paper's setting."""
    return success_rate((k,), (p,), trials=trials, steps=steps, lr=lr, seed=seed, tol=tol,
                        strides=list(strides), executor=executor, progress=progress)
