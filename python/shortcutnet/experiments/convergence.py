"""Polynomial time: iterations for the ResNet to reach L <= eps vs k, p and eps (docs/model.md, "The paper's claim and the experiments".3)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ._common import PROCESSES, cell_rng, draw_trials, make_model, map_tasks, metadata
from .tables import Table


def convergence_cell(config: dict) -> list:
    """One (k, p): ResNet runs from w0 = 0 on ``trials`` random teachers; one row per eps."""
    from .. import run_trials

    k, p, trials, steps, lr, seed = (int(config["k"]), int(config["p"]), int(config["trials"]),
                                     int(config["steps"]), float(config["lr"]), int(config["seed"]))
    rng = cell_rng(seed, k, p, 0)
    a_star, u_star, a0, _ = draw_trials(k, p, trials, rng)
    model = make_model("resnet", k, p)
    rows = []
    for eps in config["eps"]:
        out = run_trials(model, u_star - model.s, a_star, np.zeros((trials, p)), a0, steps=steps, lr=lr,
                         tol=float(eps), threads=config.get("threads"))
        t = np.asarray(out.steps_to_tol, dtype=np.float64)
        reached = t >= 0
        tr = t[reached]
        rows.append({
            "k": k, "p": p, "eps": float(eps), "trials": trials, "steps": steps, "lr": lr, "seed": seed,
            "reached": int(reached.sum()),
            "median_steps": float(np.median(tr)) if tr.size else math.nan,
            "q25_steps": float(np.quantile(tr, 0.25)) if tr.size else math.nan,
            "q75_steps": float(np.quantile(tr, 0.75)) if tr.size else math.nan,
            "max_steps": float(tr.max()) if tr.size else math.nan,
            **metadata(),
        })
    return rows


def convergence_time(ks: Sequence[int] = (5, 10, 20, 40), ps: Sequence[int] = (5, 10, 20), *,
                     eps: Sequence[float] = (1e-2, 1e-4, 1e-6, 1e-8), trials: int = 20, steps: int = 20000,
                     lr: float = 0.1, seed: int = 0, executor=PROCESSES, progress: bool = False) -> dict:
    """Iterations to reach L <= eps for the ResNet started at w0 = 0, over k, p and eps.

    Returns ``{"rows": [...], "slopes": [...]}``: rows per (k, p, eps) with the median and
    quartiles of the steps over runs that reached eps within ``steps``; slopes from
    :func:`fit_slopes`. Keep ``lr`` below 4 pi / (k + pi - 1) (the largest stable step of the
    second layer) for the largest k.
    """
    configs = [{"k": int(k), "p": int(p), "eps": [float(e) for e in eps], "trials": int(trials),
                "steps": int(steps), "lr": float(lr), "seed": int(seed),
                "threads": None if executor is None else 1} for k in ks for p in ps]
    results = map_tasks(convergence_cell, configs, executor, progress=progress, desc="convergence time")
    rows = [row for cell in results for row in cell]
    slopes = [{**s, "trials": int(trials), "lr": float(lr), "seed": int(seed), **metadata()} for s in fit_slopes(rows)]
    return {"rows": Table(rows), "slopes": Table(slopes)}


def _fit(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 2 or np.unique(x[ok]).size < 2:
        return math.nan, math.nan
    slope, intercept = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)
    return float(slope), float(intercept)


def fit_slopes(rows: Sequence[dict]) -> list:
    """Log-log slopes of the median steps: vs k (each p, eps), vs p (each k, eps), vs 1/eps (each k, p).

    A slope s vs k means T ~ k^s (polynomial time); linear convergence in stage II shows as
    T growing like log(1/eps), i.e. a slope vs 1/eps that flattens toward 0.
    """
    slopes = []
    keys = {(r["k"], r["p"], r["eps"]): r["median_steps"] for r in rows}
    ks = sorted({r["k"] for r in rows})
    ps = sorted({r["p"] for r in rows})
    epss = sorted({r["eps"] for r in rows})
    for variable, outer, inner in (("k", ps, ks), ("p", ks, ps)):
        for fixed in outer:
            for eps in epss:
                if variable == "k":
                    y = [keys.get((k, fixed, eps), math.nan) for k in inner]
                    fixed_desc = {"p": fixed, "k": None}
                else:
                    y = [keys.get((fixed, p, eps), math.nan) for p in inner]
                    fixed_desc = {"k": fixed, "p": None}
                slope, intercept = _fit(inner, y)
                slopes.append({"variable": variable, **fixed_desc, "eps": eps, "slope": slope,
                               "intercept": intercept, "points": int(np.sum(np.isfinite(y)))})
    for k in ks:
        for p in ps:
            y = [keys.get((k, p, eps), math.nan) for eps in epss]
            slope, intercept = _fit([1.0 / e for e in epss], y)
            slopes.append({"variable": "1/eps", "k": k, "p": p, "eps": None, "slope": slope,
                           "intercept": intercept, "points": int(np.sum(np.isfinite(y)))})
    return slopes
