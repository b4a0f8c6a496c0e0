"""The plain CNN's success probability at large k and p, with 10^6 trials per cell (beyond the paper).

Trials are the paper's CNN trials (w0 on the unit sphere, a* ~ N(0, I), a0 uniform in the ball
B(0, |1'a*|/sqrt(k))), drawn directly in order-parameter coordinates (``order_parameters``:
exact in law, a few random numbers per trial whatever k and p) and run by gradient descent with
the rate ``scaled_lr(k) = min(0.1, pi/(k + pi - 1))`` on both layers (``step_sizes``).

A run's fate is decided long before it converges: at k = 10^4 the basin is settled after a few
hundred steps, the outcome rule's |a - a*| <= 1e-3 after about 10^5. So each trial runs until its
basin is decided (phi < pi/4 with a.a* > 0: global; phi > 3 pi/4 with a.a* < 0: spurious), and
the success rate is the fraction decided global. Each cell checks this on its first
``check_trials`` trials: the same trials, realized as vectors (``order_parameters.embed``), run
through ``run_trials`` (the compiled engine) until they converge, and the rows count the trials
whose outcome rule disagrees with the decided basin.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .._validation import as_int
from ._common import PROCESSES, cell_rng, map_longest_first, metadata, positive_number, wilson_interval
from . import order_parameters as op
from .step_sizes import a_step_limit, phi_unstable, scaled_lr

#: trials drawn and run at once (their state is about 30 numbers each); each wave has its own seed
WAVE = 1 << 17
#: the cells' random stream (not draw_trials's): cell_rng(seed, k, p, STREAM, wave)
STREAM = 1


def check_steps(k: int, lr: float) -> int:
    """Steps for a check run to converge: the slow modes of a contract by lr (pi - 1)/(2 pi) per step,
    and |a - a*| falls from about sqrt(k) to the outcome rule's 1e-3 with a margin of 8 e-folds; at
    least 5000, for the spurious side at small k, where phi approaches pi slowly."""
    rate = lr * (math.pi - 1.0) / (2.0 * math.pi)
    return max(5000, int(math.ceil((math.log(math.sqrt(k) * 1e3) + 8.0) / rate)))


def _check(k: int, coords: dict, lr: float) -> dict:
    """The outcome rule after converging, on the same trials realized as vectors."""
    from .. import run_trials

    model, w_star, a_star, w0, a0 = op.embed(coords, k)
    steps = check_steps(k, lr)
    out = run_trials(model, w_star, a_star, w0, a0, steps=steps, lr=lr, threads=1)
    return {"outcome": np.asarray(out.outcome).astype(str), "steps": steps}


def success_limit_cell(config: dict) -> list:
    """One (k, p): ``trials`` CNN trials decided by their basin; one row.

    ``config`` keys: k, p, trials, seed; lr (None: ``scaled_lr(k)``), max_steps (20000: the most
    steps a trial may take to be decided), check_trials (1000: trials rerun to convergence through
    ``run_trials``), threads (unused: a cell runs on one thread).
    """
    k, p = as_int("k", config["k"], minimum=3), as_int("p", config["p"], minimum=2)
    trials, seed = as_int("trials", config["trials"], minimum=1), as_int("seed", config["seed"], minimum=0)
    lr = config.get("lr")
    lr = scaled_lr(k) if lr is None else positive_number("lr", lr)
    max_steps = as_int("max_steps", config.get("max_steps", 20000), minimum=1)
    n_check = min(trials, as_int("check_trials", config.get("check_trials", 1000), minimum=0))
    counts = np.zeros(4, dtype=np.int64)
    steps_sum, steps_max, unstable = 0, 0, 0
    agree = check_global = check_spurious = 0
    check_steps_used = None
    for wave, lo in enumerate(range(0, trials, WAVE)):
        n = min(WAVE, trials - lo)
        coords = op.draw_cnn(k, p, n, cell_rng(seed, k, p, STREAM, wave))
        run = op.run_until_decided(coords, lr=lr, max_steps=max_steps)
        basin = run["basin"]
        counts += np.bincount(basin, minlength=4)
        steps_sum += int(run["steps"].sum())
        steps_max = max(steps_max, int(run["steps"].max()))
        won = basin == op.GLOBAL_BASIN
        # phi would be unstable at the optimum (a.a* = |a*|^2) with the |u| of the decision
        unstable += int(np.sum(won & phi_unstable(run["u_norm_sq"], coords["a_norm"] ** 2, lr)))
        take = min(n, n_check - lo) if lo < n_check else 0
        if take > 0:
            sub = {name: value[:take] for name, value in coords.items()}
            checked = _check(k, sub, lr)
            check_steps_used = checked["steps"]
            decided = np.where(basin[:take] == op.GLOBAL_BASIN, "global",
                               np.where(basin[:take] == op.SPURIOUS_BASIN, "spurious",
                                        np.where(basin[:take] == op.DIVERGED, "diverged", "undecided")))
            agree += int(np.sum(checked["outcome"] == decided))
            check_global += int(np.sum(checked["outcome"] == "global"))
            check_spurious += int(np.sum(checked["outcome"] == "spurious"))
    successes = int(counts[op.GLOBAL_BASIN])
    lo_ci, hi_ci = wilson_interval(successes, trials)
    return [{
        "k": k, "p": p, "architecture": "cnn", "trials": trials, "lr": lr, "a_step_limit": a_step_limit(k),
        "max_steps": max_steps, "seed": seed,
        "successes": successes, "n_spurious": int(counts[op.SPURIOUS_BASIN]),
        "n_undecided": int(counts[op.UNDECIDED]), "n_diverged": int(counts[op.DIVERGED]),
        "rate": successes / trials, "ci_low": lo_ci, "ci_high": hi_ci,
        "mean_steps": steps_sum / trials, "most_steps": steps_max,
        # global-basin trials whose |u|^2 at the decision is below lr |a*|^2/4: phi unstable at the
        # optimum unless |u| grows first (MODEL.md section 6)
        "n_phi_unstable": unstable,
        "check_trials": n_check, "check_steps": check_steps_used, "check_agree": agree,
        "check_disagree": n_check - agree, "check_global": check_global, "check_spurious": check_spurious,
        **metadata(),
    }]


def _cost(config: dict) -> float:
    # decisions take about sqrt(k) steps at large k; checks converge in about k steps
    k = config["k"]
    return config["trials"] * (30.0 + math.sqrt(k)) + config.get("check_trials", 1000) * (k + 30.0) * 3.0


def success_limit(ks: Sequence[int] = (5, 20, 100, 500, 2000, 10000), ps: Sequence[int] = (5, 50, 1000), *,
                  trials: int = 1_000_000, max_steps: int = 20000, check_trials: int = 1000, seed: int = 0,
                  executor=PROCESSES, progress: bool = False) -> list:
    """Success probability of the plain CNN over a grid of (k, p), ``trials`` per cell.

    Step size ``scaled_lr(k)`` on both layers (``step_sizes``: 0.1 up to k = 29, a quarter of the
    a-step's stability limit 4 pi/(k + pi - 1) beyond). Returns rows, one per cell, with the counts
    of trials decided in the global basin (``successes``), the spurious basin, undecided after
    ``max_steps`` or diverged, the rate and its Wilson 95% interval, the mean steps to the decision,
    and the check on ``check_trials`` trials run to convergence through ``run_trials``
    (``check_disagree``: outcome rule and decided basin differ). :func:`fit_limit` fits the limit
    k -> infinity.
    """
    trials = as_int("trials", trials, minimum=1)
    configs = [{"k": as_int("ks", k, minimum=3), "p": as_int("ps", p, minimum=2), "trials": trials,
                "max_steps": as_int("max_steps", max_steps, minimum=1),
                "check_trials": as_int("check_trials", check_trials, minimum=0),
                "seed": as_int("seed", seed, minimum=0)} for k in ks for p in ps]
    if not configs:
        raise ValueError("ks, ps: expected at least one value each, got an empty grid")
    results = map_longest_first(success_limit_cell, configs, _cost, executor, progress=progress,
                                desc="CNN success limit")
    return [row for rows in results for row in rows]


def _weighted_fit(sel, design):
    y = np.array([r["rate"] for r in sel])
    w = np.array([r["trials"] / (r["rate"] * (1.0 - r["rate"])) for r in sel])
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    resid = y - design @ coef
    dof = len(sel) - design.shape[1]
    return coef, cov, float(np.sum(w * resid * resid) / dof) if dof > 0 else None


def fit_limit(rows: Sequence[dict], *, k_min: int = 20, ratio_max: float = 0.25) -> list:
    """The limit of the success rate as k grows, by weighted least squares of
    ``rate = limit + b/sqrt(k) + c/k`` over the cells with k >= k_min and p/k <= ratio_max (weights:
    the inverse binomial variances trials/(rate (1 - rate))), per p (with 4 cells or more) and pooled
    (one limit, b and c per p, over the p with 3 cells or more).

    Returns rows (p, or None for the pooled fit) with the limit, its standard error, b, c, the
    points used and the reduced chi^2 (about 1 when the form fits within the intervals).
    """
    use = [r for r in rows if r["k"] >= k_min and r["p"] <= ratio_max * r["k"] and 0.0 < r["rate"] < 1.0]
    by_p = {p: [r for r in use if r["p"] == p] for p in sorted({r["p"] for r in use})}
    fits = []
    for p, sel in by_p.items():
        if len(sel) < 4:
            continue
        x = np.array([1.0 / math.sqrt(r["k"]) for r in sel])
        coef, cov, chi2 = _weighted_fit(sel, np.column_stack([np.ones(len(sel)), x, x * x]))
        fits.append({"p": p, "limit": float(coef[0]), "limit_se": float(math.sqrt(cov[0, 0])), "b": float(coef[1]),
                     "c": float(coef[2]), "k_min": int(k_min), "ratio_max": float(ratio_max), "points": len(sel),
                     "chi2_per_dof": chi2})
    pooled = [p for p, sel in by_p.items() if len(sel) >= 3]
    sel = [r for p in pooled for r in by_p[p]]
    if len(sel) > 1 + 2 * len(pooled):
        columns = [np.ones(len(sel))]
        for q in pooled:
            x = np.array([(r["p"] == q) / math.sqrt(r["k"]) for r in sel])
            columns += [x, x * x]
        coef, cov, chi2 = _weighted_fit(sel, np.column_stack(columns))
        fits.append({"p": None, "limit": float(coef[0]), "limit_se": float(math.sqrt(cov[0, 0])), "b": None,
                     "c": None, "k_min": int(k_min), "ratio_max": float(ratio_max), "points": len(sel),
                     "chi2_per_dof": chi2})
    return fits
