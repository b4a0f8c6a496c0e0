"""How often the instability of phi near the optimum occurs, and what it does (MODEL.md section 6).

Near the optimum phi is multiplied each step by about ``1 - lr_w a.a*/(2 |u|^2)``: below -1 when
``|u|^2 < lr_w a.a*/4``. Then phi grows instead of settling, until |u| (which normalized GD only
increases) is large enough. The reduced engine resolves phi far below double precision's 1e-8
floor of the full one, so the trajectories show it. A run *shows* the instability when, with
a.a* > 0 and phi < 0.1, phi grows from one step to the next: gradient descent with a stable phi
step only shrinks phi there. ResNet from w0 = 0 (|u0| = 1), step sizes as fractions of the a-step's
limit 4 pi/(k + pi - 1), the same rate on both layers.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .._validation import as_int
from ._common import PROCESSES, cell_rng, draw_trials, make_model, map_tasks, median_or_none, metadata, outcome_columns
from .step_sizes import a_step_limit, phi_unstable

#: phi below which a growth of phi counts as the instability (stage II has phi < 0.1 long before)
NEAR = 0.1


def shows_instability(phi, a_dot_astar) -> bool:
    """True when phi grows from one recorded step to the next while a.a* > 0 and phi < NEAR."""
    phi, a_dot = np.asarray(phi, dtype=np.float64), np.asarray(a_dot_astar, dtype=np.float64)
    near = (phi[:-1] < NEAR) & (a_dot[:-1] > 0)
    return bool(np.any(near & (phi[1:] > phi[:-1])))


def phi_instability_cell(config: dict) -> list:
    """One (k, fraction): ``trials`` ResNet trajectories; one row.

    ``config`` keys: k, p, trials, steps, fraction (lr = fraction * 4 pi/(k + pi - 1)), seed; tol
    (1e-20: runs go on far below double-precision rounding of the full engine).
    """
    from .. import train

    k, p = as_int("k", config["k"], minimum=1), as_int("p", config["p"], minimum=1)
    trials, steps = as_int("trials", config["trials"], minimum=1), as_int("steps", config["steps"], minimum=1)
    seed = as_int("seed", config["seed"], minimum=0)
    fraction = float(config["fraction"])
    lr = fraction * a_step_limit(k)
    tol = float(config.get("tol", 1e-20))
    a_star, u_star, a0, _ = draw_trials(k, p, trials, cell_rng(seed, k, p, 0))
    model = make_model("resnet", k, p)
    a_sq = np.einsum("ij,ij->i", a_star, a_star)
    shown, outcomes, steps_to, growth = [], [], [], []
    for b in range(trials):
        res = train(model, u_star[b] - model.s, a_star[b], np.zeros(p), a0[b], steps=steps, lr=lr, tol=tol)
        shown.append(shows_instability(res.history["phi"], res.history["a_dot_astar"]))
        outcomes.append(res.outcome)
        steps_to.append(res.steps_to_tol)
        # |u|^2 at the end over the threshold lr |a*|^2/4: >= 1 means phi became stable
        growth.append(float(np.sum((res.w + model.s) ** 2)) / (lr * a_sq[b] / 4.0))
    shown, steps_to, growth = np.array(shown), np.array(steps_to, float), np.array(growth)
    predicted = phi_unstable(np.ones(trials), a_sq, lr)
    reached = steps_to >= 0
    return [{
        "k": k, "p": p, "architecture": "resnet", "fraction": fraction, "lr": lr, "trials": trials, "steps": steps,
        "tol": tol, "seed": seed,
        "n_predicted": int(predicted.sum()), "n_shown": int(shown.sum()), "shown_rate": float(shown.mean()),
        "n_shown_not_predicted": int(np.sum(shown & ~predicted)), "n_predicted_not_shown": int(np.sum(predicted & ~shown)),
        **outcome_columns(outcomes),
        "median_steps_shown": median_or_none(steps_to[shown & reached]),
        "median_steps_not_shown": median_or_none(steps_to[~shown & reached]),
        "median_final_u_over_threshold_shown": median_or_none(growth[shown]),
        "median_final_u_over_threshold_not_shown": median_or_none(growth[~shown]),
        **metadata(),
    }]


def phi_instability(*, ks: Sequence[int] = (20, 100, 1000), fractions: Sequence[float] = (0.1, 0.25, 0.5, 0.9),
                    p: int = 10, trials: int = 200, steps: int = 4000, seed: int = 0, executor=PROCESSES,
                    progress: bool = False) -> list:
    """The phi instability of the ResNet from w0 = 0 at step sizes ``fraction * 4 pi/(k + pi - 1)``.

    ``steps`` is the budget at k = 20, scaled by (k + pi - 1)/(20 + pi - 1) so every k gets the same
    flow time at a given fraction. Returns rows per (k, fraction) with the runs predicted to be
    unstable at the optimum (``|u0|^2 = 1 < lr |a*|^2/4``), the runs that showed it, their outcomes,
    the median steps to L <= 1e-20 with and without it, and the final ``|u|^2/(lr |a*|^2/4)``.
    """
    configs = []
    for k in ks:
        k = as_int("ks", k, minimum=1)
        scale = (k + np.pi - 1) / (20 + np.pi - 1)
        for fraction in fractions:
            configs.append({"k": k, "p": as_int("p", p, minimum=1), "trials": as_int("trials", trials, minimum=1),
                            "steps": int(np.ceil(as_int("steps", steps, minimum=1) * max(1.0, scale))),
                            "fraction": float(fraction), "seed": as_int("seed", seed, minimum=0)})
    results = map_tasks(phi_instability_cell, configs, executor, progress=progress, desc="phi instability")
    return [row for rows in results for row in rows]
