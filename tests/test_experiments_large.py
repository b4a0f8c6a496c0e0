"""The large-k experiments on tiny settings: step sizes, order-parameter draws, decisions, hypotheses,
the step-size phase diagram, convergence scaling, GD vs flow and the phi instability."""
import math

import numpy as np
import pytest
from scipy import stats

import shortcutnet as sn
from shortcutnet import experiments as E
from shortcutnet.backends import reference_reduced
from shortcutnet.experiments import order_parameters as op
from shortcutnet.experiments._common import cell_rng, draw_trials
from shortcutnet.experiments.phi_instability import shows_instability
from shortcutnet.experiments.sweep import ALLOWED, EXPERIMENTS, REQUIRED, SUMMARY_COLUMNS, run_cell


def test_step_sizes_follow_the_stability_limit():
    assert E.a_step_limit(123) > 0.1 > E.a_step_limit(124)  # 0.1 diverges beyond k = 123
    assert E.scaled_lr(20) == 0.1
    assert E.scaled_lr(1000) == pytest.approx(math.pi / (1000 + math.pi - 1))
    assert E.scaled_lr(1000) == pytest.approx(E.a_step_limit(1000) / 4)


def _coordinates_of_full_draws(k, p, n, seed):
    """The engine's coordinates of the paper's CNN trials drawn as vectors."""
    a_star, u_star, a0, w0 = draw_trials(k, p, n, cell_rng(seed, k, p, 0))
    co = reference_reduced.Coordinates(np.zeros(p), w0, a0, u_star, a_star)
    return {"x0": co.x0, "y0": co.y0, "a_norm": co.A[:, 0], "c1": co.C[:, 0], "c2": co.C[:, 1],
            "alpha0": co.alpha0}


def test_drawn_coordinates_have_the_law_of_full_draws():
    k, p, n = 7, 5, 3000
    full = _coordinates_of_full_draws(k, p, n, 1)
    drawn = op.draw_cnn(k, p, n, np.random.default_rng(2))
    columns = [(name, lambda c, name=name: c[name]) for name in ("x0", "a_norm", "c1")]
    columns += [(f"alpha0[{i}]", lambda c, i=i: c["alpha0"][:, i]) for i in range(3)]
    for name, column in columns:
        assert stats.ks_2samp(column(full), column(drawn)).pvalue > 1e-4, name
    # a wrong law is caught: a0 uniform in a ball twice as large
    wrong = dict(drawn, alpha0=2 * drawn["alpha0"])
    assert stats.ks_2samp(full["alpha0"][:, 2], wrong["alpha0"][:, 2]).pvalue < 1e-6


def test_embedded_vectors_have_the_drawn_coordinates():
    k = 9
    drawn = op.draw_cnn(k, 40, 50, np.random.default_rng(3))
    model, w_star, a_star, w0, a0 = op.embed(drawn, k)
    assert model.k == k and model.p == 2 and not np.any(model.s)
    co = reference_reduced.Coordinates(model.s, w0, a0, w_star[None], a_star)
    for name, value in (("x0", co.x0), ("y0", co.y0), ("a_norm", co.A[:, 0]), ("c1", co.C[:, 0]),
                        ("c2", co.C[:, 1]), ("alpha0", co.alpha0)):
        np.testing.assert_allclose(value, drawn[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_decided_basins_are_the_converged_outcomes():
    k, p, n = 30, 6, 400
    drawn = op.draw_cnn(k, p, n, np.random.default_rng(4))
    lr = E.scaled_lr(k)
    decided = op.run_until_decided(drawn, lr=lr, max_steps=5000)
    assert np.all(decided["basin"] != op.UNDECIDED)
    model, w_star, a_star, w0, a0 = op.embed(drawn, k)
    out = sn.run_trials(model, w_star, a_star, w0, a0, steps=8000, lr=lr)
    names = np.where(decided["basin"] == op.GLOBAL_BASIN, "global", "spurious")
    np.testing.assert_array_equal(np.asarray(out.outcome), names)
    assert 0.2 < np.mean(names == "global") < 0.9  # both fates occur
    assert decided["steps"].max() < 5000 and np.all(decided["steps"] >= 20)


def test_success_limit_rows_count_every_trial_and_check_agrees():
    rows = E.success_limit((10, 60), (5,), trials=3000, check_trials=150, executor=None)
    assert [(r["k"], r["p"]) for r in rows] == [(10, 5), (60, 5)]
    for r in rows:
        assert r["successes"] + r["n_spurious"] + r["n_undecided"] + r["n_diverged"] == r["trials"] == 3000
        assert r["rate"] == r["successes"] / 3000
        assert (r["ci_low"], r["ci_high"]) == E.wilson_interval(r["successes"], 3000)
        assert r["check_trials"] == 150 and r["check_disagree"] == 0
        assert r["check_global"] + r["check_spurious"] == 150
        assert r["lr"] == E.scaled_lr(r["k"]) and r["version"] == sn.__version__
    # the same draws, whatever the executor
    assert E.success_limit((10,), (5,), trials=500, check_trials=0, executor=2) == E.success_limit(
        (10,), (5,), trials=500, check_trials=0, executor=None)


def test_success_limit_matches_full_draws_statistically():
    k, p, n = 12, 5, 4000
    row = E.success_limit((k,), (p,), trials=n, check_trials=0, seed=5, executor=None)[0]
    a_star, u_star, a0, w0 = draw_trials(k, p, n, cell_rng(6, k, p, 0))
    out = sn.run_trials(sn.Model(k, p, shortcut=False), u_star, a_star, w0, a0, steps=6000, lr=0.1)
    full = int(np.sum(out.outcome == "global"))
    # two independent binomial samples of the same rate: |difference| within 4 standard errors
    q = (full + row["successes"]) / (2 * n)
    assert abs(full - row["successes"]) / n < 4 * math.sqrt(2 * q * (1 - q) / n)


def test_fit_limit_recovers_a_known_limit():
    rows = []
    for k in (25, 100, 400, 1600, 6400):
        for p in (5, 10):
            rate = 0.5 + 0.3 * math.sqrt(p / k) - 0.5 / k
            rows.append({"k": k, "p": p, "trials": 10**6, "rate": rate})
    fits = {f["p"]: f for f in E.fit_limit(rows)}
    assert fits[None]["limit"] == pytest.approx(0.5, abs=1e-9) and fits[None]["limit_se"] > 0
    assert fits[5]["limit"] == pytest.approx(0.5, abs=1e-9)
    assert fits[5]["b"] == pytest.approx(0.3 * math.sqrt(5)) and fits[5]["c"] == pytest.approx(-0.5)
    assert fits[10]["points"] == 4  # k = 25 has p/k above 0.25


def test_hypotheses_resnet_from_zero_always_succeeds_and_counts_match_run_trials():
    rows = E.hypotheses(k=8, p=4, w0_norms=(0.0, 10.0), a0_scales=(1.0, 10.0), trials=60, steps=20000, seed=1,
                        executor=None)
    assert [(r["factor"], r["w0_norm"], r["a0_scale"]) for r in rows] == [
        ("w0_norm", 0.0, 1.0), ("w0_norm", 10.0, 1.0), ("a0_scale", 0.0, 10.0)]
    theorem, far, big = rows
    assert theorem["rate"] == 1.0 and theorem["n_outside_ball"] == 0
    assert big["n_outside_ball"] > 50
    for row in rows:
        a_star, u_star, a0, d = draw_trials(8, 4, 60, cell_rng(1, 8, 4, 0))
        model = sn.Model(8, 4)
        out = sn.run_trials(model, u_star - model.s, a_star, row["w0_norm"] * d, row["a0_scale"] * a0, steps=20000,
                            lr=0.1)
        assert row["successes"] == int(np.sum(out.outcome == "global"))
        assert row["n_spurious"] == int(np.sum(out.outcome == "spurious"))
    assert far["rate"] < 1.0  # a far random w0 loses the guarantee


def test_step_phase_divergence_sets_in_at_the_a_step_limit():
    k = 10
    limit = E.a_step_limit(k)
    rows = E.step_size_phase(k=k, p=4, lrs_w=(0.05,), lrs_a=(0.9 * limit, 1.1 * limit), trials=20, steps=3000,
                             executor=None)
    by = {(r["architecture"], r["a_step_stable"]): r for r in rows}
    for architecture in ("resnet", "cnn"):
        assert by[(architecture, True)]["n_diverged"] == 0
        assert by[(architecture, False)]["divergence_rate"] == 1.0
    boundary = E.divergence_boundary(rows)
    assert all(b["largest_lr_a_without_divergence"] < limit < b["smallest_lr_a_mostly_divergent"] for b in boundary)


def test_convergence_scaling_uses_the_scaled_step_and_reports_flow_time():
    result = E.convergence_scaling((5, 200), (4,), eps=(1e-2, 1e-6), trials=3, executor=None)
    for row in result["rows"]:
        assert row["lr"] == E.scaled_lr(row["k"]) and row["reached"] == 3
        assert row["median_time"] == pytest.approx(row["median_steps"] * row["lr"])
    times = {(r["k"], r["eps"]): r["median_time"] for r in result["rows"]}
    # the flow time to eps hardly grows with k (the steps grow like 1/lr)
    assert times[(200, 1e-6)] < 2 * times[(5, 1e-6)]
    assert {s["variable"] for s in result["time_slopes"]} == {"k", "p", "1/eps"}


def test_gd_approaches_the_flow_with_error_of_order_lr():
    result = E.gd_vs_flow(k=6, p=4, lrs=(0.04, 0.02, 0.01, 0.005), eps=(1e-6,), trials=2, t_max=60.0,
                          architectures=("resnet",), executor=None)
    rows = sorted(result["rows"], key=lambda r: -r["lr"])
    errors = [r["median_state_error"] for r in rows]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert 1.6 < errors[0] / errors[-1] / 4 < 2.4  # lr falls 8-fold: the error falls about 8-fold
    slopes = {s["error"]: s["slope"] for s in result["slopes"]}
    assert slopes["median_state_error"] == pytest.approx(1.0, abs=0.15)
    assert rows[-1]["median_relative_time_error_1e-06"] < 0.01


def test_shows_instability_only_for_growth_near_the_optimum():
    assert not shows_instability([0.5, 0.05, 1e-3, 1e-6], [1, 1, 1, 1])
    assert shows_instability([0.5, 0.05, 1e-6, 1e-4], [1, 1, 1, 1])
    assert not shows_instability([0.05, 0.08], [-1, -1])  # stage I: a.a* < 0, phi may grow


def test_phi_instability_shown_where_predicted():
    rows = E.phi_instability(ks=(20,), fractions=(0.1, 0.9), p=5, trials=10, steps=3000, executor=None)
    small, large = rows
    assert small["n_predicted"] == small["n_shown"] == 0
    assert large["n_predicted"] >= 8 and large["n_shown"] >= large["n_predicted"] - 1
    assert large["n_global"] == 10  # it delays convergence, it does not change the outcome
    assert large["median_final_u_over_threshold_shown"] >= 1.0  # |u| grew until phi became stable


def test_every_sweep_experiment_is_complete():
    for name in ("trajectory", "cnn_success_limit", "hypotheses", "step_size_phase", "convergence_scaling",
                 "gd_vs_flow", "phi_instability"):
        assert name in EXPERIMENTS
    for name in EXPERIMENTS:
        assert set(REQUIRED[name]) <= ALLOWED[name] and name in SUMMARY_COLUMNS


@pytest.mark.parametrize("cell", [
    {"experiment": "trajectory", "k": 5, "p": 3, "steps": 100, "lr": 0.1, "cnn_runs": 2},
    {"experiment": "cnn_success_limit", "k": 8, "p": 3, "trials": 50, "check_trials": 10},
    {"experiment": "hypotheses", "k": 5, "p": 3, "trials": 4, "steps": 500, "w0_norm": 0.1},
    {"experiment": "step_size_phase", "k": 5, "p": 3, "trials": 4, "steps": 300, "lr_w": 0.1, "lr_a": 0.2},
    {"experiment": "convergence_scaling", "k": 5, "p": 3, "trials": 2, "steps": 2000, "eps": [1e-3]},
    {"experiment": "gd_vs_flow", "k": 4, "p": 3, "trials": 1, "lrs": [0.1], "eps": [1e-3], "t_max": 30.0,
     "t_fixed": 1.0},
    {"experiment": "phi_instability", "k": 5, "p": 3, "trials": 2, "steps": 300, "fraction": 0.5},
])
def test_new_sweep_cells_run(cell):
    record = run_cell({"seed": 0, **cell, "key": "k0"})
    assert record["rows"] and all(row["cell"] == "k0" for row in record["rows"])
