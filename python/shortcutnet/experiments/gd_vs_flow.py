"""Gradient descent against the gradient flow (``sn.gradient_flow``) as the step size shrinks: the
time to reach L <= eps, ``steps * lr``, and the state at a fixed time (beyond the paper).

GD with one rate lr on both layers, after n steps, approaches the flow (``lr_ratio = 1``) at time
``t = n lr`` with an error O(lr); the rows measure that error on the paper's random starts.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .._validation import as_int
from ._common import ARCHITECTURES, PROCESSES, cell_rng, draw_trials, make_model, map_tasks, metadata, positive_number


def flow_time_to(times, loss, eps: float) -> float:
    """First time the loss reaches eps, interpolated linearly in log(loss) between recorded times
    (nan if it never does)."""
    loss = np.asarray(loss, dtype=np.float64)
    hit = np.flatnonzero(loss <= eps)
    if hit.size == 0:
        return math.nan
    i = int(hit[0])
    if i == 0:
        return float(times[0])
    l0, l1 = math.log(loss[i - 1]), math.log(max(loss[i], 1e-300))
    frac = (l0 - math.log(eps)) / (l0 - l1)
    return float(times[i - 1] + frac * (times[i] - times[i - 1]))


def _state_error(model, w1, a1, w2, a2):
    """|u1/|u1| - u2/|u2|| + |a1 - a2|: the distance of two states in what the loss sees."""
    v1 = (w1 + model.s) / np.linalg.norm(w1 + model.s, axis=-1, keepdims=True)
    v2 = (w2 + model.s) / np.linalg.norm(w2 + model.s, axis=-1, keepdims=True)
    return np.linalg.norm(v1 - v2, axis=-1) + np.linalg.norm(a1 - a2, axis=-1)


def flow_cell(config: dict) -> list:
    """One architecture: ``trials`` flows and GD runs at every lr; one row per lr.

    ``config`` keys: k, p, trials, seed, lrs (a list), eps (a list), t_max, t_fixed, architecture
    ("resnet": w0 = 0, "cnn": w0 on the sphere), threads.
    """
    from .. import gradient_flow, run_trials

    k, p = as_int("k", config["k"], minimum=1), as_int("p", config["p"], minimum=1)
    trials, seed = as_int("trials", config["trials"], minimum=1), as_int("seed", config["seed"], minimum=0)
    lrs = [positive_number("lrs", x) for x in config["lrs"]]
    epss = [positive_number("eps", x) for x in config["eps"]]
    t_max, t_fixed = positive_number("t_max", config["t_max"]), positive_number("t_fixed", config["t_fixed"])
    architecture = config.get("architecture", "resnet")
    a_star, u_star, a0, w0_sphere = draw_trials(k, p, trials, cell_rng(seed, k, p, 0))
    model = make_model(architecture, k, p)
    w_star = u_star - model.s
    w0 = np.zeros((trials, p)) if architecture == "resnet" else w0_sphere
    times = np.linspace(0.0, t_max, 40001)
    flow_t = np.full((trials, len(epss)), math.nan)
    flow_w, flow_a = np.empty((trials, p)), np.empty((trials, k))
    for b in range(trials):
        res = gradient_flow(model, w_star[b], a_star[b], w0[b], a0[b], t_max=t_max, times=times)
        loss = np.asarray(res.history["loss"])
        flow_t[b] = [flow_time_to(times, loss, eps) for eps in epss]
        fixed = gradient_flow(model, w_star[b], a_star[b], w0[b], a0[b], t_max=t_fixed)
        flow_w[b], flow_a[b] = fixed.w, fixed.a
    rows = []
    for lr in lrs:
        fixed_steps = int(round(t_fixed / lr))
        at_fixed = run_trials(model, w_star, a_star, w0, a0, steps=fixed_steps, lr=lr, tol=0.0,
                              threads=config.get("threads"))
        error = _state_error(model, np.asarray(at_fixed.w), np.asarray(at_fixed.a), flow_w, flow_a)
        row = {"k": k, "p": p, "architecture": architecture, "lr": lr, "trials": trials, "seed": seed,
               "t_fixed": t_fixed, "fixed_steps": fixed_steps,
               # GD's step count rounds t_fixed to a multiple of lr: an O(lr) part of the error
               "median_state_error": float(np.median(error)), "max_state_error": float(np.max(error))}
        for j, eps in enumerate(epss):
            out = run_trials(model, w_star, a_star, w0, a0, steps=int(math.ceil(t_max / lr)), lr=lr, tol=eps,
                             threads=config.get("threads"))
            t_gd = np.where(np.asarray(out.steps_to_tol) >= 0, np.asarray(out.steps_to_tol) * lr, math.nan)
            diff = np.abs(t_gd - flow_t[:, j])
            both = np.isfinite(diff)
            tag = f"{eps:.0e}"
            row[f"median_flow_time_{tag}"] = float(np.median(flow_t[both, j])) if both.any() else None
            row[f"median_gd_time_{tag}"] = float(np.median(t_gd[both])) if both.any() else None
            row[f"median_time_error_{tag}"] = float(np.median(diff[both])) if both.any() else None
            # a start already at L <= eps (time 0) has no relative error
            timed = both & (flow_t[:, j] > 0)
            row[f"median_relative_time_error_{tag}"] = (float(np.median(diff[timed] / flow_t[timed, j]))
                                                       if timed.any() else None)
            row[f"n_compared_{tag}"] = int(both.sum())
        rows.append({**row, **metadata()})
    return rows


def gd_vs_flow(*, k: int = 20, p: int = 10, lrs: Sequence[float] = (0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001),
               eps: Sequence[float] = (1e-4, 1e-8), trials: int = 100, t_max: float = 80.0, t_fixed: float = 5.0,
               seed: int = 0, architectures: Sequence[str] = ARCHITECTURES, executor=PROCESSES,
               progress: bool = False) -> dict:
    """GD at each step size in ``lrs`` against the gradient flow, on ``trials`` random starts.

    Returns ``{"rows": [...], "slopes": [...]}``: rows per (architecture, lr) with the median over
    trials of the time to L <= eps of the flow and of GD (``steps * lr``), their absolute and
    relative differences, and the distance of GD's state after ``t_fixed/lr`` steps from the
    flow's at ``t_fixed`` (``|v_gd - v_flow| + |a_gd - a_flow|``); slopes of the log errors against
    log lr (1: an O(lr) error), fitted over the four smallest step sizes.
    """
    lrs = sorted((positive_number("lrs", x) for x in lrs), reverse=True)
    if not lrs:
        raise ValueError("lrs: expected at least one step size, got none")
    configs = [{"k": as_int("k", k, minimum=1), "p": as_int("p", p, minimum=1), "trials": as_int("trials", trials,
                                                                                               minimum=1),
                "seed": as_int("seed", seed, minimum=0), "lrs": lrs, "eps": [positive_number("eps", e) for e in eps],
                "t_max": positive_number("t_max", t_max), "t_fixed": positive_number("t_fixed", t_fixed),
                "architecture": arch, "threads": None if executor is None else 1} for arch in architectures]
    results = map_tasks(flow_cell, configs, executor, progress=progress, desc="GD vs flow")
    rows = [row for cell in results for row in cell]
    return {"rows": rows, "slopes": error_slopes(rows)}


def error_slopes(rows, *, points: int = 4) -> list:
    """Log-log slopes of each error column against lr over the ``points`` smallest step sizes."""
    out = []
    for architecture in dict.fromkeys(r["architecture"] for r in rows):
        sel = sorted((r for r in rows if r["architecture"] == architecture), key=lambda r: r["lr"])[:points]
        for column in [c for c in sel[0] if c.startswith("median_") and "error" in c]:
            x = np.array([r["lr"] for r in sel], float)
            y = np.array([np.nan if r[column] is None else r[column] for r in sel], float)
            ok = np.isfinite(y) & (y > 0)
            slope = float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0]) if ok.sum() >= 2 else math.nan
            out.append({"architecture": architecture, "error": column, "slope": slope, "points": int(ok.sum()),
                        "smallest_lr": float(x.min()), "largest_lr": float(x.max())})
    return out
