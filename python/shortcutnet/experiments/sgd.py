"""SGD with finite fresh Gaussian batches vs exact population GD (beyond the paper)."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from ._common import PROCESSES, cell_rng, draw_trials, make_model, map_tasks, metadata, wilson_interval
from .trajectory import _history_columns


def sampled_gradient_available() -> bool:
    """Whether this build has the sampled kernels that ``train(gradient="sampled")`` uses."""
    try:
        from .. import kernels  # noqa: F401
    except ImportError:
        return False
    return True


def sgd_cell(config: dict) -> dict:
    """``trials`` runs of one architecture at one batch size (None: population GD).

    A run counts as a success when it ends in the global basin: phi < pi/2 and a.a* > 0 (a rule
    that does not depend on how far a noisy run has converged).
    """
    from .. import population_loss, train

    k, p, trials, steps, lr, seed = (int(config["k"]), int(config["p"]), int(config["trials"]),
                                     int(config["steps"]), float(config["lr"]), int(config["seed"]))
    batch_size: Optional[int] = config.get("batch_size")
    architecture = config["architecture"]
    record_every = int(config.get("record_every", max(1, steps // 200)))
    a_star, u_star, a0, w0_sphere = draw_trials(k, p, trials, cell_rng(seed, k, p, 0))
    model = make_model(architecture, k, p)
    finals, curves = [], []
    for b in range(trials):
        w0 = np.zeros(p) if architecture == "resnet" else w0_sphere[b]
        w_star = u_star[b] - model.s
        if batch_size is None:
            # tol = 0: every run takes all steps, so the curves line up
            result = train(model, w_star, a_star[b], w0, a0[b], steps=steps, lr=lr, record_every=record_every,
                           tol=0.0)
        else:
            result = train(model, w_star, a_star[b], w0, a0[b], steps=steps, lr=lr, gradient="sampled",
                           batch_size=int(batch_size), seed=int(seed) * 1_000_003 + b, record_every=record_every,
                           tol=0.0, threads=config.get("threads"))
        hist = _history_columns(result.history)
        curves.append(hist)
        loss = population_loss(model, result.w, result.a, w_star, a_star[b])
        phi = float(hist["phi"][-1])
        finals.append((loss, phi, float(np.linalg.norm(result.a - a_star[b])),
                       phi < math.pi / 2 and float(result.a @ a_star[b]) > 0))
    loss, phi, a_err, success = (np.array(x) for x in zip(*finals))
    lo, hi = wilson_interval(int(success.sum()), trials)
    step = curves[0]["step"]
    median_loss = np.median(np.stack([c["loss"] for c in curves]), axis=0)
    median_phi = np.median(np.stack([c["phi"] for c in curves]), axis=0)
    summary = {
        "k": k, "p": p, "architecture": architecture,
        "batch_size": 0 if batch_size is None else int(batch_size),
        "gradient": "population" if batch_size is None else "sampled",
        "trials": trials, "steps": steps, "lr": lr, "seed": seed,
        "successes": int(success.sum()), "rate": float(success.mean()), "ci_low": lo, "ci_high": hi,
        "median_final_loss": float(np.median(loss)), "median_final_phi": float(np.median(phi)),
        "median_final_a_err": float(np.median(a_err)), **metadata(),
    }
    curve_rows = [{"architecture": architecture, "batch_size": summary["batch_size"], "step": int(s),
                   "median_loss": float(l), "median_phi": float(f)}
                  for s, l, f in zip(step, median_loss, median_phi)]
    return {"summary": summary, "curves": curve_rows}


def sgd_vs_gd(batch_sizes: Sequence[Optional[int]] = (None, 1024, 128, 16), *, k: int = 20, p: int = 10,
              trials: int = 20, steps: int = 3000, lr: float = 0.1, seed: int = 0,
              architectures: Sequence[str] = ("resnet", "cnn"), executor=PROCESSES,
              progress: bool = False) -> dict:
    """Stochastic gradient descent on fresh Gaussian batches vs population GD, same teachers and inits.

    ``batch_sizes``: None stands for the exact population gradient. Returns ``{"rows": [...],
    "curves": [...]}``: per (architecture, batch size) the success rate (global basin) with its
    Wilson interval and the median final population loss, phi and |a - a*|; and the median
    population loss and phi along training.
    """
    if not sampled_gradient_available():
        raise RuntimeError("sgd_vs_gd: this build of shortcutnet has no sampled kernels (shortcutnet.kernels), "
                           "which SGD needs")
    configs = [{"k": k, "p": p, "trials": trials, "steps": steps, "lr": lr, "seed": seed,
                "batch_size": None if b is None or int(b) == 0 else int(b), "architecture": arch,
                "threads": None if executor is None else 1}
               for arch in architectures for b in batch_sizes]
    results = map_tasks(sgd_cell, configs, executor, progress=progress, desc="SGD vs GD")
    return {"rows": [r["summary"] for r in results], "curves": [c for r in results for c in r["curves"]]}
