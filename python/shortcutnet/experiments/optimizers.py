"""GD, heavy-ball momentum, Nesterov momentum and Adam on the ResNet and the CNN (beyond the paper).

Population gradient, the same teachers and starts for every optimizer. The step sizes are chosen
so that the four move the parameters at comparable speed and are far from their stability limits
(k = 20, p = 10):

- GD: lr = 0.1, the step size of every other experiment.
- Momentum and Nesterov, beta = 0.9: lr = 0.01. Along a direction of small curvature the heavy
  ball moves lr / (1 - beta) times the gradient per step, so its *effective* step size equals GD's
  0.1. Stability on a quadratic of curvature h needs lr h < 2 (1 + beta) (heavy ball) and
  lr h < 2 (1 + beta) / (1 + 2 beta) (Nesterov); the largest curvature of the second layer is
  (k + pi - 1) / (2 pi) = 3.5, so lr h = 0.035.
- Adam: lr = 0.05. Adam's first step moves every coordinate by about lr whatever the gradient's
  scale; GD's first step moves a coordinate of the second layer, where stage I happens, by
  0.1 x (median root-mean-square of grad_a L at the start, 0.45 for the CNN, 0.56 for the ResNet),
  i.e. by about 0.05.

Runs stop at L <= eps (1e-10 by default, where the outcome rule recognizes the optimum); a run
counts as a success by the outcome rule. The rows give the median and quantiles of the steps to
L <= eps among the runs that reached it, and the runs that ended in the global basin
(phi < pi/2 and a.a* > 0), which tells an optimizer that does not settle at the optimum from one
that is trapped away from it.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from .._validation import as_int, check_choice
from ._common import (
    ARCHITECTURES,
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
from .tables import Table

OPTIMIZERS = ("gd", "momentum", "nesterov", "adam")
#: the step sizes of the comparison (see the module docstring for why)
DEFAULT_LRS = {"gd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adam": 0.05}
#: the optional parameters each optimizer takes, with their defaults
PARAMETERS = {"gd": {}, "momentum": {"beta": 0.9}, "nesterov": {"beta": 0.9}, "adam": {"beta1": 0.9, "beta2": 0.999}}


def make_optimizer(name: str, lr: float, **params):
    """``sn.optim`` optimizer ``name`` ("gd", "momentum", "nesterov" or "adam") with step size
    ``lr``, and its parameters with defaults filled in (beta for the momenta, beta1 and beta2 for Adam)."""
    from .. import optim

    check_choice("optimizer", name, set(OPTIMIZERS))
    unknown = sorted(set(params) - set(PARAMETERS[name]))
    if unknown:
        raise ValueError(f"{unknown[0]}: not a parameter of optimizer {name!r}; expected some of "
                         f"{sorted(PARAMETERS[name])}")
    values = {**PARAMETERS[name], **{key: float(value) for key, value in params.items()}}
    if name == "gd":
        return optim.gd(lr), values
    if name in ("momentum", "nesterov"):
        return optim.momentum(lr, beta=values["beta"], nesterov=name == "nesterov"), values
    return optim.adam(lr, beta1=values["beta1"], beta2=values["beta2"]), values


def optimizer_cell(config: dict) -> list:
    """One optimizer: ``trials`` runs per architecture; one row per architecture.

    ``config`` keys: k, p, trials, steps, optimizer, lr, seed; eps (1e-10: the loss to reach, the
    runs' tolerance), beta (momentum, nesterov), beta1, beta2 (adam), architectures, threads.
    Teachers and initializations depend on (seed, k, p) only: every optimizer meets the same ones.
    """
    from .. import run_trials

    k, p, trials, steps, seed = (int(config["k"]), int(config["p"]), int(config["trials"]), int(config["steps"]),
                                 int(config["seed"]))
    name, lr, eps = config["optimizer"], float(config["lr"]), float(config.get("eps", 1e-10))
    # a sweep may grid over optimizers with a fixed beta: each takes only its own parameters
    params = {key: config[key] for key in PARAMETERS.get(name, {}) if config.get(key) is not None}
    optimizer, values = make_optimizer(name, lr, **params)
    a_star, u_star, a0, w0_sphere = draw_trials(k, p, trials, cell_rng(seed, k, p, 0))
    rows = []
    for architecture in config.get("architectures", ARCHITECTURES):
        model = make_model(architecture, k, p)
        w0 = np.zeros((trials, p)) if architecture == "resnet" else w0_sphere
        out = run_trials(model, u_star - model.s, a_star, w0, a0, steps=steps, optimizer=optimizer, tol=eps,
                         threads=config.get("threads"))
        outcome = np.asarray(out.outcome).astype(str)
        failed = outcome != "global"
        rows.append({
            "k": k, "p": p, "architecture": architecture, "optimizer": name, "lr": lr,
            "beta": values.get("beta"), "beta1": values.get("beta1"), "beta2": values.get("beta2"),
            # the step size along directions of small curvature: lr / (1 - beta) for the momenta
            "effective_lr": lr / (1 - values["beta"]) if "beta" in values else (lr if name == "gd" else None),
            "trials": trials, "steps": steps, "eps": eps, "seed": seed,
            **outcome_columns(outcome),
            **basin_columns(out.phi, out.a, a_star),
            **steps_columns(out.steps_to_tol),
            "median_final_loss": median_or_none(out.loss),
            "median_failed_loss": median_or_none(np.asarray(out.loss)[failed]),
            "median_failed_phi": median_or_none(np.asarray(out.phi)[failed]),
            "engine": str(out.engine), **metadata(),
        })
    return rows


def compare_optimizers(optimizers: Sequence[str] = OPTIMIZERS, *, lrs: Optional[Mapping[str, float]] = None,
                       beta: float = 0.9, k: int = 20, p: int = 10, trials: int = 4000, steps: int = 5000,
                       eps: float = 1e-10, seed: int = 0, architectures: Sequence[str] = ARCHITECTURES,
                       executor=PROCESSES, progress: bool = False) -> list:
    """Success rate and iterations to L <= eps for each optimizer, ResNet (w0 = 0) vs CNN (w0 on the sphere).

    ``lrs``: step size per optimizer name (default :data:`DEFAULT_LRS`, for k = 20, p = 10; see the
    module docstring); ``beta``: the momentum of "momentum" and "nesterov" (Adam keeps torch's
    beta1 = 0.9, beta2 = 0.999, eps = 1e-8). Returns rows, one per (optimizer, architecture), with
    the outcome counts, the success rate and its Wilson 95% interval, the runs in the global basin,
    and the median and 10/25/75/90% quantiles of the steps to L <= eps of the runs that reached it.
    """
    names = list(optimizers)
    if not names:
        raise ValueError("optimizers: expected at least one optimizer name, got none")
    for name in names:
        check_choice("optimizers", name, set(OPTIMIZERS))
    rates = {**DEFAULT_LRS, **dict(lrs or {})}
    unknown = sorted(set(rates) - set(OPTIMIZERS))
    if unknown:
        raise ValueError(f"lrs: expected step sizes for some of {list(OPTIMIZERS)}, got one for {unknown[0]!r}")
    configs = []
    for name in names:
        config = {"k": as_int("k", k, minimum=1), "p": as_int("p", p, minimum=1),
                  "trials": as_int("trials", trials, minimum=1), "steps": as_int("steps", steps, minimum=1),
                  "optimizer": name, "lr": positive_number(f"lrs[{name!r}]", rates[name]),
                  "eps": positive_number("eps", eps), "seed": as_int("seed", seed, minimum=0),
                  "architectures": list(architectures), "threads": None if executor is None else 1}
        if name in ("momentum", "nesterov"):
            config["beta"] = float(beta)
        configs.append(config)
    results = map_tasks(optimizer_cell, configs, executor, progress=progress, desc="optimizers")
    return Table(row for rows in results for row in rows)
