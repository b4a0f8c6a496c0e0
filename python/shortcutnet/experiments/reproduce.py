"""The paper's experiments and the ones beyond it, end to end: data files, figures, a summary."""
from __future__ import annotations

import json
import os
import time
from typing import Callable, Optional

import numpy as np

from ._common import PROCESSES, metadata
from .convergence import convergence_time
from .gd_vs_flow import gd_vs_flow
from .hypotheses import hypotheses
from .optimizers import compare_optimizers
from .phi_instability import phi_instability
from .sample_complexity import sample_complexity
from .scaling import convergence_scaling
from .sgd import sgd_vs_gd
from .step_phase import divergence_boundary, step_size_phase
from .success import success_rate, success_vs_angle, success_vs_stride
from .success_limit import fit_limit, success_limit
from .tables import TABLE_FORMATS, format_table, require_parquet, write_jsonl, write_table
from .trajectory import trajectory

# Settings of the two runs; "quick" takes seconds on 2 cores, "full" minutes.
SETTINGS = {
    "quick": {
        # seed_offset 3: with --seed 0, a teacher on which both fates of the CNN (global, spurious) appear
        "trajectory": dict(k=20, p=10, steps=3000, lr=0.1, cnn_runs=6, seed_offset=3),
        "success": dict(ks=(5, 10, 20), ps=(5, 10), trials=200, steps=3000, lr=0.1),
        "convergence": dict(ks=(5, 10, 20, 40), ps=(5, 10, 20), eps=(1e-2, 1e-4, 1e-6, 1e-8), trials=20,
                            steps=10000, lr=0.1),
        "angle": dict(angles_deg=tuple(range(0, 181, 10)), k=20, p=10, trials=100, steps=3000, lr=0.1),
        # overlapping patches converge more slowly: more steps
        "stride": dict(strides=(10, 5, 2, 1), k=20, p=10, trials=50, steps=10000, lr=0.1),
        # k = 10, p = 5 at eta = 0.2 and 0.04: the step sizes 0.1 and 0.02 of k = 20, p = 10 (see experiments.sgd)
        "sgd": dict(batch_sizes=(1, 2, 4, 16, 64, None), lrs=(0.2, 0.04), k=10, p=5, trials=60,
                    steps=(1200, 2500)),
        "sample_complexity": dict(k=10, p=5, points=5, trials=20, steps=3000, lr=0.2),
        "optimizers": dict(k=20, p=10, trials=1000, steps=5000, eps=1e-10),
        # the large-k experiments run at lr = min(0.1, pi/(k + pi - 1)) (see experiments.step_sizes)
        "success_limit": dict(ks=(5, 20, 100, 1000, 10000), ps=(5, 100, 1000), trials=20000, check_trials=100),
        "hypotheses": dict(k=20, p=10, trials=2000, steps=20000),
        "step_phase": dict(k=20, p=10, lrs_w=(0.001, 0.01, 0.1, 1.0, 10.0), trials=100, steps=5000),
        "scaling": dict(ks=(5, 100, 2000, 10000), ps=(5, 200, 1000), eps=(1e-2, 1e-4, 1e-6, 1e-8), trials=10),
        "gd_vs_flow": dict(k=20, p=10, lrs=(0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001), trials=5),
        "phi_instability": dict(ks=(20, 100, 1000), fractions=(0.1, 0.25, 0.5, 0.9), p=10, trials=20, steps=4000),
    },
    "full": {
        "trajectory": dict(k=20, p=10, steps=3000, lr=0.1, cnn_runs=6, seed_offset=3),
        "success": dict(ks=(5, 10, 20, 40, 80), ps=(5, 10, 20, 40), trials=2000, steps=5000, lr=0.1),
        "convergence": dict(ks=(5, 10, 20, 40, 80), ps=(5, 10, 20, 40), eps=(1e-2, 1e-4, 1e-6, 1e-8, 1e-10),
                            trials=200, steps=20000, lr=0.1),
        "angle": dict(angles_deg=tuple(range(0, 181, 5)), k=20, p=10, trials=1000, steps=5000, lr=0.1),
        "stride": dict(strides=(10, 8, 5, 3, 2, 1), k=20, p=10, trials=400, steps=20000, lr=0.1),
        "sgd": dict(batch_sizes=(1, 2, 4, 8, 16, 64, 256, 1024, None), lrs=(0.2, 0.04), k=10, p=5, trials=1000,
                    steps=(1200, 2500)),
        "sample_complexity": dict(k=10, p=5, points=12, trials=200, steps=3000, lr=0.2),
        "optimizers": dict(k=20, p=10, trials=4000, steps=5000, eps=1e-10),
        "success_limit": dict(ks=(5, 20, 100, 500, 2000, 10000), ps=(5, 20, 100, 1000), trials=1_000_000,
                              check_trials=1000),
        "hypotheses": dict(k=20, p=10, trials=100_000, steps=20000),
        "step_phase": dict(k=20, p=10, lrs_w=tuple(float(f"{x:.4g}") for x in np.geomspace(1e-3, 10.0, 9)),
                           trials=1000, steps=20000),
        "scaling": dict(ks=(5, 20, 100, 500, 2000, 10000), ps=(5, 30, 200, 1000), eps=(1e-2, 1e-4, 1e-6, 1e-8),
                        trials=200),
        "gd_vs_flow": dict(k=20, p=10, lrs=(0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001), trials=100),
        "phi_instability": dict(ks=(20, 100, 1000), fractions=(0.1, 0.25, 0.5, 0.9), p=10, trials=200, steps=4000),
    },
}

SUCCESS_COLUMNS = ("k", "p", "stride", "angle_deg", "architecture", "trials", "successes", "rate", "ci_low",
                   "ci_high")


def reproduce(out_dir: str = "shortcutnet-results", *, quick: bool = False, seed: int = 0, executor=PROCESSES,
              progress: bool = True, settings: Optional[dict] = None, log: Callable[[str], None] = print,
              table_format: str = "csv") -> dict:
    """Run every experiment, write tables (CSV, or Parquet with ``table_format="parquet"``; the
    success rates also as JSON Lines) and PNG/SVG figures into ``out_dir``.

    ``settings`` overrides :data:`SETTINGS` (per experiment, e.g. ``{"success": {"trials": 5}}``).
    Returns ``{"files": [...], "summary": {...}, "seconds": {...}}``.
    """
    from .. import plots

    if table_format not in TABLE_FORMATS:
        raise ValueError(f"table_format: expected one of {list(TABLE_FORMATS)}, got {table_format!r}")
    if table_format == "parquet":
        require_parquet()  # before the experiments run, not after
    config = {name: dict(values) for name, values in SETTINGS["quick" if quick else "full"].items()}
    for name, values in (settings or {}).items():
        if name not in config:
            raise ValueError(f"settings: unknown experiment {name!r}; expected some of {sorted(config)}")
        config[name].update(values)
    os.makedirs(out_dir, exist_ok=True)
    files, seconds, summary = [], {}, {}
    path = lambda name: os.path.join(out_dir, name)  # noqa: E731
    parallel = dict(seed=seed, executor=executor, progress=progress)

    def timed(name, fn):
        start = time.perf_counter()
        log(f"[{name}] running ...")
        value = fn()
        seconds[name] = round(time.perf_counter() - start, 2)
        log(f"[{name}] done in {seconds[name]:.1f} s")
        return value

    traj_config = dict(config["trajectory"])
    traj_seed = seed + int(traj_config.pop("seed_offset", 0))
    traj = timed("trajectory", lambda: trajectory(**traj_config, seed=traj_seed))
    files += [write_table(traj["rows"], path("trajectory"), table_format),
              write_table(traj["runs"], path("trajectory_runs"), table_format)]
    files += plots.plot_trajectory(traj, path("trajectory"))
    summary["trajectory"] = [{k: r[k] for k in ("run", "architecture", "outcome", "initial_phi", "final_phi",
                                                "final_loss", "stage1_end")} for r in traj["runs"]]

    success = timed("success rate", lambda: success_rate(**config["success"], **parallel))
    files += [write_table(success, path("success_rate"), table_format), write_jsonl(success, path("success_rate.jsonl"))]
    files += plots.plot_success(success, path("success_rate"))
    summary["success_rate"] = success

    conv = timed("convergence time", lambda: convergence_time(**config["convergence"], **parallel))
    files += [write_table(conv["rows"], path("convergence_time"), table_format),
              write_table(conv["slopes"], path("convergence_slopes"), table_format)]
    files += plots.plot_convergence(conv, path("convergence_time"))
    summary["convergence_slopes"] = [s for s in conv["slopes"] if s["variable"] in ("k", "p")]

    def section(title, name, run, plot):
        rows = timed(title, run)
        files.append(write_table(rows, path(name), table_format))
        files.extend(plot(rows, path(name)))
        summary[name] = rows

    section("teacher angle", "success_vs_angle", lambda: success_vs_angle(**config["angle"], **parallel),
            plots.plot_phase)
    section("overlapping patches", "success_vs_stride", lambda: success_vs_stride(**config["stride"], **parallel),
            plots.plot_stride)
    section("SGD vs GD", "sgd_vs_gd", lambda: sgd_vs_gd(**config["sgd"], **parallel), plots.plot_sgd)
    section("sample complexity", "sample_complexity",
            lambda: sample_complexity(**config["sample_complexity"], **parallel), plots.plot_sample_complexity)
    section("optimizers", "optimizers", lambda: compare_optimizers(**config["optimizers"], **parallel),
            plots.plot_optimizers)

    limit = timed("CNN success limit", lambda: success_limit(**config["success_limit"], **parallel))
    fits = fit_limit(limit)
    files += [write_table(limit, path("success_limit"), table_format),
              write_table(fits, path("success_limit_fit"), table_format)]
    files += plots.plot_success_limit(limit, fits, path("success_limit"))
    summary["success_limit"], summary["success_limit_fit"] = limit, fits

    section("hypotheses", "hypotheses", lambda: hypotheses(**config["hypotheses"], **parallel), plots.plot_hypotheses)

    phase = timed("step-size phase", lambda: step_size_phase(**config["step_phase"], **parallel))
    boundary = divergence_boundary(phase)
    files += [write_table(phase, path("step_phase"), table_format),
              write_table(boundary, path("step_phase_boundary"), table_format)]
    files += plots.plot_step_phase(phase, path("step_phase"))
    summary["step_phase_boundary"] = boundary

    scaling = timed("convergence scaling", lambda: convergence_scaling(**config["scaling"], **parallel))
    files += [write_table(scaling["rows"], path("convergence_scaling"), table_format),
              write_table(scaling["slopes"] + [{**s, "of": "flow time"} for s in scaling["time_slopes"]],
                          path("convergence_scaling_slopes"), table_format)]
    files += plots.plot_scaling(scaling, path("convergence_scaling"))
    summary["scaling_slopes"] = [{**s, "of": "steps"} for s in scaling["slopes"] if s["variable"] == "k"] + \
        [{**s, "of": "flow time"} for s in scaling["time_slopes"] if s["variable"] in ("k", "p")]

    flow = timed("GD vs flow", lambda: gd_vs_flow(**config["gd_vs_flow"], **parallel))
    files += [write_table(flow["rows"], path("gd_vs_flow"), table_format),
              write_table(flow["slopes"], path("gd_vs_flow_slopes"), table_format)]
    files += plots.plot_gd_vs_flow(flow, path("gd_vs_flow"))
    summary["gd_vs_flow_slopes"] = flow["slopes"]

    section("phi instability", "phi_instability", lambda: phi_instability(**config["phi_instability"], **parallel),
            plots.plot_phi_instability)

    run_info = {"quick": quick, "seed": seed, "settings": config, "seconds": seconds, **metadata()}
    with open(path("run.json"), "w") as fh:
        json.dump(run_info, fh, indent=2, default=str)
    files.append(path("run.json"))
    return {"files": files, "summary": summary, "seconds": seconds}


def summary_text(result: dict) -> str:
    """The summary table printed at the end of ``shortcutnet reproduce``."""
    s = result["summary"]
    parts = ["Trajectory (one teacher):", format_table(s["trajectory"]),
             "", "Success rate (ResNet w0 = 0 vs CNN w0 on the sphere):",
             format_table(s["success_rate"], SUCCESS_COLUMNS),
             "", "Convergence time, fitted log-log slopes T ~ x^slope:",
             format_table(s["convergence_slopes"], ("variable", "k", "p", "eps", "slope", "points")),
             "", "Success rate vs the teacher's angle to the shortcut:",
             format_table(s["success_vs_angle"], SUCCESS_COLUMNS),
             "", "Success rate vs patch stride (stride < p: overlapping patches):",
             format_table(s["success_vs_stride"], SUCCESS_COLUMNS),
             "", "Online SGD vs population GD (batch 0 = population gradient):",
             format_table(s["sgd_vs_gd"], ("lr", "batch_size", "architecture", "trials", "rate", "ci_low", "ci_high",
                                           "basin_rate", "median_final_loss", "median_final_train_loss",
                                           "median_steps")),
             "", "Full-batch GD on n_train samples (success = reached the teacher):",
             format_table(s["sample_complexity"], ("k", "p", "n_train", "architecture", "trials", "rate", "ci_low",
                                                   "ci_high", "n_fit", "median_final_loss",
                                                   "median_final_train_loss")),
             "", "Optimizers (population gradient; steps to L <= eps of the runs that reached it):",
             format_table(s["optimizers"], ("optimizer", "lr", "architecture", "trials", "rate", "ci_low", "ci_high",
                                            "basin_rate", "median_steps", "q10_steps", "q90_steps")),
             "", "Plain CNN success probability (basin decided; check = trials rerun to convergence):",
             format_table(s["success_limit"], ("k", "p", "lr", "trials", "rate", "ci_low", "ci_high", "n_undecided",
                                               "mean_steps", "check_trials", "check_disagree")),
             "", "Its limit as k grows (weighted fits):",
             format_table(s["success_limit_fit"], ("p", "limit", "limit_se", "b", "c", "points", "chi2_per_dof")),
             "", "The theorem's hypotheses one at a time (ResNet):",
             format_table(s["hypotheses"], ("factor", "w0_norm", "a0_scale", "trials", "rate", "ci_low", "ci_high",
                                            "n_spurious", "n_unconverged", "n_outside_ball", "median_steps")),
             "", "Step sizes (lr_w, lr_a): where divergence sets in, against 4 pi/(k + pi - 1):",
             format_table(s["step_phase_boundary"]),
             "", "Convergence time up to k = 10^4 (log-log slopes of steps and of flow time steps * lr):",
             format_table(s["scaling_slopes"], ("of", "variable", "k", "p", "eps", "slope", "points")),
             "", "GD vs gradient flow (slopes of log error vs log lr; 1 = O(lr)):",
             format_table(s["gd_vs_flow_slopes"]),
             "", "The phi instability near the optimum (ResNet from w0 = 0):",
             format_table(s["phi_instability"], ("k", "fraction", "lr", "trials", "n_predicted", "n_shown", "n_global",
                                                 "median_steps_shown", "median_steps_not_shown",
                                                 "median_final_u_over_threshold_shown")),
             "", "Seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items())
             + f"; total {sum(result['seconds'].values()):.1f}"]
    return "\n".join(parts)
