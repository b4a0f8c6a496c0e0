"""Training trajectories of the ResNet (w0 = 0) and the plain CNN (w0 on the sphere), docs/model.md, "The paper's claim and the experiments".1."""
from __future__ import annotations

import numpy as np

from ._common import cell_rng, draw_trials, make_model, metadata
from .tables import Table

HISTORY_COLUMNS = ("step", "loss", "phi", "a_dot_astar", "a_err")


def _history_columns(history) -> dict:
    """The history of a training result as a dict of NumPy columns (it may be a DataFrame)."""
    return {name: np.asarray(history[name]) for name in HISTORY_COLUMNS}


def trajectory(k: int = 20, p: int = 10, *, steps: int = 3000, lr: float = 0.1, seed: int = 0,
               cnn_runs: int = 4, record_every: int = 1, negative_start: bool = True) -> dict:
    """History of phi, a.a*, |a - a*| and the loss for one teacher: one ResNet run, several CNN runs.

    Both architectures share the teacher (a*, u*) and the second-layer initialization a0 (uniform
    in B(0, |1'a*|/sqrt(k))); the ResNet starts at w0 = 0, the CNN runs at ``cnn_runs`` points of
    the unit sphere drawn in antipodal pairs (w0, -w0), so that both of the CNN's fates (global
    or spurious, decided by the side of the start) typically appear. With ``negative_start`` a0 is
    reflected, if needed, so that a0.a* < 0 (the ball is symmetric, so a0 stays in it): then the
    ResNet run shows stage I of the proof, where a moves until a.a* > 0 while w stays near 0.

    Returns ``{"rows": [...], "runs": [...]}``: ``rows`` are the history rows (run, architecture,
    step, loss, phi, a_dot_astar, a_err), ``runs`` one summary per run
    (outcome, final values, ``stage1_end``: first step with a.a* > 0).
    """
    from .. import init_first_layer, train

    rng = cell_rng(seed, k, p, 0)
    a_star, u_star, a0, _ = draw_trials(k, p, 1, rng)
    a_star, u_star, a0 = a_star[0], u_star[0], a0[0]
    if negative_start and a0 @ a_star > 0:
        a0 = -a0
    starts = [("resnet", np.zeros(p))]
    cnn = make_model("cnn", k, p)
    for i in range(cnn_runs):
        if i % 2 == 0:
            w0 = init_first_layer(cnn, "sphere", rng)
        starts.append(("cnn", w0 if i % 2 == 0 else -w0))
    config = {"k": k, "p": p, "steps": steps, "lr": lr, "seed": seed, **metadata()}
    rows, runs = [], []
    for run, (architecture, w0) in enumerate(starts):
        model = make_model(architecture, k, p)
        # tol = 0: run all steps, so the figure shows the loss down to rounding
        result = train(model, u_star - model.s, a_star, w0, a0, steps=steps, lr=lr, record_every=record_every, tol=0.0)
        hist = _history_columns(result.history)
        positive = np.flatnonzero(hist["a_dot_astar"] > 0)
        for i in range(len(hist["step"])):
            rows.append({"run": run, "architecture": architecture,
                         **{name: hist[name][i].item() for name in HISTORY_COLUMNS}, **config})
        runs.append({
            "run": run, "architecture": architecture, "outcome": str(result.outcome),
            "initial_phi": float(hist["phi"][0]), "final_phi": float(hist["phi"][-1]),
            "final_loss": float(hist["loss"][-1]), "final_a_err": float(hist["a_err"][-1]),
            "stage1_end": int(hist["step"][positive[0]]) if positive.size else -1,
            "w_norm_final": float(np.linalg.norm(result.w)),
            **config,
        })
    return {"rows": Table(rows), "runs": Table(runs)}


def trajectory_cell(config: dict) -> list:
    """One teacher's trajectories as a sweep cell: the per-run summaries of :func:`trajectory`.

    ``config`` keys: k, p, steps, lr, seed; cnn_runs (4), negative_start (True), threads (unused).
    """
    result = trajectory(int(config["k"]), int(config["p"]), steps=int(config["steps"]), lr=float(config["lr"]),
                        seed=int(config["seed"]), cnn_runs=int(config.get("cnn_runs", 4)),
                        negative_start=bool(config.get("negative_start", True)))
    return result["runs"]
