"""The experiment functions on tiny settings: tables, seeds, executors, intervals, slopes."""
import concurrent.futures as cf
import math

import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet import experiments as E
from shortcutnet.experiments._common import teacher_direction

TINY = dict(trials=6, steps=400, lr=0.1)


def test_wilson_interval_known_values():
    # Wilson (1927) score interval, z = 1.96: 0/10 -> [0, 0.2775], 5/10 -> [0.2366, 0.7634], 10/10 -> [0.7225, 1]
    assert E.wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert E.wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert E.wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    lo, hi = E.wilson_interval(np.array([1, 7]), np.array([3, 9]))
    assert np.all(lo <= np.array([1 / 3, 7 / 9])) and np.all(np.array([1 / 3, 7 / 9]) <= hi)


def test_wilson_interval_covers_at_nominal_rate():
    # coverage of a 95% interval for n = 40, q = 0.3, estimated from 4000 draws: well inside [0.93, 0.97]
    rng = np.random.default_rng(1)
    successes = rng.binomial(40, 0.3, size=4000)
    lo, hi = E.wilson_interval(successes, np.full(4000, 40))
    coverage = np.mean((lo <= 0.3) & (0.3 <= hi))
    assert 0.93 < coverage < 0.97


@pytest.mark.parametrize("angle", [0.0, 0.7, math.pi / 2, 2.5, math.pi])
def test_teacher_at_prescribed_angle(angle):
    rng = np.random.default_rng(0)
    u = teacher_direction(7, rng, angle)
    assert np.linalg.norm(u) == pytest.approx(1.0)
    assert sn.angle(u, np.ones(7)) == pytest.approx(angle, abs=1e-12)


def test_success_rate_rows_carry_configuration_and_metadata():
    rows = E.success_rate((4,), (3, 5), **TINY, seed=3, executor=None)
    assert [(r["k"], r["p"], r["architecture"]) for r in rows] == [
        (4, 3, "resnet"), (4, 3, "cnn"), (4, 5, "resnet"), (4, 5, "cnn")]
    for r in rows:
        assert r["seed"] == 3 and r["version"] == sn.__version__ and r["backend"] in sn.backends()
        assert r["trials"] == 6 and sum(r[f"n_{o}"] for o in ("global", "spurious", "unconverged", "diverged")) == 6
        assert r["rate"] == r["successes"] / 6
        assert r["ci_low"] <= r["rate"] <= r["ci_high"]


def test_success_rate_counts_match_direct_run_trials():
    """The cell's counts equal run_trials on the same draws, assembled here by hand."""
    from shortcutnet.experiments._common import cell_rng, draw_trials

    rows = E.success_rate((5,), (4,), **TINY, seed=11, executor=None)
    a_star, u_star, a0, w0 = draw_trials(5, 4, 6, cell_rng(11, 5, 4, 0))
    for row in rows:
        model = sn.Model(5, 4, shortcut=row["architecture"] == "resnet")
        start = np.zeros((6, 4)) if row["architecture"] == "resnet" else w0
        out = sn.run_trials(model, u_star - model.s, a_star, start, a0, steps=400, lr=0.1)
        assert row["successes"] == int(np.sum(out.outcome == "global"))


def test_success_rate_same_on_any_executor():
    serial = E.success_rate((3, 4), (3,), **TINY, executor=None)
    with cf.ThreadPoolExecutor(2) as pool:
        threaded = E.success_rate((3, 4), (3,), **TINY, executor=pool)
    processes = E.success_rate((3, 4), (3,), **TINY, executor=2)
    assert serial == threaded == processes


def test_success_rate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="trials"):
        E.success_rate((3,), (3,), trials=0, steps=10, executor=None)
    with pytest.raises(ValueError, match="strides"):
        E.success_rate((3,), (3,), trials=2, steps=10, strides=(4,), executor=None)
    with pytest.raises(TypeError, match="executor"):
        E.success_rate((3,), (3,), trials=2, steps=10, executor="cluster")


def test_trajectory_shows_both_architectures_and_stage_one():
    result = E.trajectory(6, 4, steps=300, cnn_runs=2, seed=1)
    runs = result["runs"]
    assert [r["architecture"] for r in runs] == ["resnet", "cnn", "cnn"]
    resnet_rows = [r for r in result["rows"] if r["run"] == 0]
    assert [r["step"] for r in resnet_rows] == list(range(301))
    # negative_start: a0.a* < 0 at step 0, and stage I ends at the first step with a.a* > 0
    assert resnet_rows[0]["a_dot_astar"] < 0
    end = runs[0]["stage1_end"]
    assert end > 0 and resnet_rows[end]["a_dot_astar"] > 0
    assert all(r["a_dot_astar"] <= 0 for r in resnet_rows[:end])
    # the ResNet starts at w0 = 0: its initial angle is the teacher's angle to s
    assert runs[0]["initial_phi"] == pytest.approx(resnet_rows[0]["phi"])


def test_fit_slopes_recovers_power_law():
    rows = [{"k": k, "p": p, "eps": eps, "median_steps": 7.0 * k ** 1.5 * p ** 0.5 * (1 / eps) ** 0.25}
            for k in (4, 8, 16) for p in (2, 8) for eps in (1e-2, 1e-4)]
    slopes = E.fit_slopes(rows)
    by = {(s["variable"], s["k"], s["p"], s["eps"]): s["slope"] for s in slopes}
    assert by[("k", None, 2, 1e-2)] == pytest.approx(1.5)
    assert by[("p", 8, None, 1e-4)] == pytest.approx(0.5)
    assert by[("1/eps", 16, 8, None)] == pytest.approx(0.25)


def test_convergence_time_rows_and_monotone_in_eps():
    result = E.convergence_time((4, 8), (3,), eps=(1e-2, 1e-6), trials=4, steps=3000, executor=None)
    rows = result["rows"]
    assert len(rows) == 4 and all(r["reached"] == 4 for r in rows)
    for k in (4, 8):
        loose, tight = (next(r for r in rows if r["k"] == k and r["eps"] == e) for e in (1e-2, 1e-6))
        assert 0 < loose["median_steps"] < tight["median_steps"]
    assert any(s["variable"] == "k" and np.isfinite(s["slope"]) for s in result["slopes"])


def test_success_vs_angle_resnet_fails_at_the_antipode():
    rows = E.success_vs_angle((0, 180), k=6, p=4, trials=8, steps=800, executor=None)
    rate = {(r["architecture"], r["angle_deg"]): r["rate"] for r in rows}
    assert rate[("resnet", 0.0)] == 1.0  # v0 = s = v*: already aligned
    assert rate[("resnet", 180.0)] == 0.0  # v0 = s = -v*: exactly the spurious direction, w never turns


def test_success_vs_stride_shares_teachers_across_strides():
    rows = E.success_vs_stride((4, 2), k=5, p=4, trials=4, steps=200, executor=None)
    assert sorted({r["stride"] for r in rows}) == [2, 4]
    assert len({r["mean_teacher_angle"] for r in rows}) == 1


OUTCOME_NAMES = ("global", "spurious", "unconverged", "diverged")


def check_rate_columns(row):
    """Invariants of every row that reports a success rate."""
    assert sum(row[f"n_{name}"] for name in OUTCOME_NAMES) == row["trials"]
    assert row["successes"] == row["n_global"] and row["rate"] == row["successes"] / row["trials"]
    assert 0.0 <= row["ci_low"] <= row["rate"] <= row["ci_high"] <= 1.0
    assert (row["ci_low"], row["ci_high"]) == E.wilson_interval(row["successes"], row["trials"])
    assert 0 <= row["n_basin"] <= row["trials"] and row["basin_rate"] == row["n_basin"] / row["trials"]
    assert 0 <= row["reached"] <= row["trials"]
    if row["reached"]:
        quantiles = [row[name] for name in ("q10_steps", "q25_steps", "median_steps", "q75_steps", "q90_steps")]
        assert quantiles == sorted(quantiles) and 0 <= quantiles[0] and quantiles[-1] <= row["steps"]
    else:
        assert row["median_steps"] is None
    assert row["version"] == sn.__version__ and row["backend"] in sn.backends()


def hand_drawn(k, p, trials, seed, architecture):
    """The cells' teachers and starts, assembled here by hand."""
    from shortcutnet.experiments._common import cell_rng, draw_trials

    a_star, u_star, a0, w0 = draw_trials(k, p, trials, cell_rng(seed, k, p, 0))
    model = sn.Model(k, p, shortcut=architecture == "resnet")
    start = np.zeros((trials, p)) if architecture == "resnet" else w0
    return model, u_star - model.s, a_star, start, a0


SGD_TINY = dict(k=5, p=4, trials=8, steps=(400, 800), executor=None)


def test_sgd_vs_gd_rows_per_bar_and_invariants():
    rows = E.sgd_vs_gd((1, 64, None), lrs=(0.1, 0.05), **SGD_TINY)
    assert [(r["lr"], r["batch_size"], r["architecture"]) for r in rows] == [
        (lr, b, arch) for lr in (0.1, 0.05) for b in (1, 64, 0) for arch in ("resnet", "cnn")]
    for r in rows:
        check_rate_columns(r)
        assert r["steps"] == (400 if r["lr"] == 0.1 else 800) and r["tol"] == 1e-10
        if r["batch_size"] == 0:
            assert r["gradient"] == "population" and r["median_final_train_loss"] is None
        else:
            assert r["gradient"] == "sampled" and r["median_final_train_loss"] >= 0
    # realizable teacher: SGD converges to the optimum, not to a noise floor
    resnet = [r for r in rows if r["architecture"] == "resnet"]
    assert all(r["rate"] == 1.0 and r["median_final_loss"] <= 1e-10 for r in resnet)


def test_sgd_vs_gd_equals_run_trials_on_the_same_draws():
    rows = E.sgd_vs_gd((16, None), lrs=(0.1,), k=5, p=4, trials=8, steps=400, seed=4, executor=None)
    for row in rows:
        model, w_star, a_star, w0, a0 = hand_drawn(5, 4, 8, 4, row["architecture"])
        source = {} if row["batch_size"] == 0 else dict(gradient="sampled", batch_size=16, seed=4)
        out = sn.run_trials(model, w_star, a_star, w0, a0, steps=400, lr=0.1, **source)
        assert row["successes"] == int(np.sum(out.outcome == "global"))
        assert row["median_final_loss"] == float(np.median(out.loss))
        assert row["reached"] == int(np.sum(out.steps_to_tol >= 0))


def test_sgd_vs_gd_same_on_any_executor():
    serial = E.sgd_vs_gd((4, None), lrs=(0.1,), k=4, p=3, trials=4, steps=300, executor=None)
    assert E.sgd_vs_gd((4, None), lrs=(0.1,), k=4, p=3, trials=4, steps=300, executor=2) == serial


def test_sgd_vs_gd_rejects_bad_arguments():
    with pytest.raises(ValueError, match="steps: expected one number or 2"):
        E.sgd_vs_gd((4,), lrs=(0.1, 0.02), steps=(100, 200, 300), trials=2, executor=None)
    with pytest.raises(ValueError, match="lrs"):
        E.sgd_vs_gd((4,), lrs=(0.1, -1.0), trials=2, steps=10, executor=None)
    with pytest.raises(ValueError, match="batch_size"):
        E.sgd_vs_gd((-2,), trials=2, steps=10, executor=None)
    with pytest.raises(ValueError, match="batch_sizes"):
        E.sgd_vs_gd((), trials=2, steps=10, executor=None)


def test_sample_grid_spans_k_plus_p_to_100_k_p():
    grid = E.sample_grid(10, 5, 12)
    assert grid[0] == 15 and grid[-1] == 5000 and len(grid) == 12
    ratios = np.diff(np.log(grid))
    assert np.all(ratios > 0) and np.ptp(ratios) < 0.1  # evenly spaced in log, up to rounding
    with pytest.raises(ValueError, match="points"):
        E.sample_grid(10, 5, 1)


def test_sample_complexity_rows_and_invariants():
    rows = E.sample_complexity((7, 30, 1200), k=4, p=3, trials=8, steps=2000, executor=None)
    assert [(r["n_train"], r["architecture"]) for r in rows] == [
        (n, arch) for n in (7, 30, 1200) for arch in ("resnet", "cnn")]
    for r in rows:
        check_rate_columns(r)
        assert r["n_over_params"] == r["n_train"] / 7
        assert 0 <= r["n_fit_not_global"] <= r["n_fit"] <= r["trials"]
        assert r["median_final_train_loss"] >= 0
    by = {(r["n_train"], r["architecture"]): r for r in rows}
    # many samples: as good as the population gradient, the ResNet always finds the teacher
    assert by[(1200, "resnet")]["rate"] == 1.0
    # fewest samples: GD fits the training set far better than it finds the teacher
    few = by[(7, "cnn")]
    assert few["median_final_train_loss"] < few["median_final_loss"]


def test_sample_complexity_equals_run_trials_on_the_same_draws():
    rows = E.sample_complexity((25,), k=4, p=3, trials=6, steps=1500, lr=0.1, seed=2, executor=None)
    for row in rows:
        model, w_star, a_star, w0, a0 = hand_drawn(4, 3, 6, 2, row["architecture"])
        out = sn.run_trials(model, w_star, a_star, w0, a0, steps=1500, lr=0.1, gradient="empirical", n_train=25,
                            seed=2)
        assert row["successes"] == int(np.sum(out.outcome == "global"))
        assert row["median_final_train_loss"] == float(np.median(out.train_loss))
        assert row["n_fit"] == int(np.sum(out.train_loss <= 1e-10))


def test_compare_optimizers_rows_and_invariants():
    rows = E.compare_optimizers(k=5, p=4, trials=16, steps=2000, executor=None)
    assert [(r["optimizer"], r["architecture"]) for r in rows] == [
        (name, arch) for name in ("gd", "momentum", "nesterov", "adam") for arch in ("resnet", "cnn")]
    for r in rows:
        check_rate_columns(r)
        assert r["lr"] == E.optimizers.DEFAULT_LRS[r["optimizer"]] and r["eps"] == 1e-10
    by = {(r["optimizer"], r["architecture"]): r for r in rows}
    # heavy ball and Nesterov at lr 0.01, beta 0.9: the same effective step size as GD
    for name in ("momentum", "nesterov"):
        assert by[(name, "resnet")]["beta"] == 0.9 and by[(name, "resnet")]["effective_lr"] == pytest.approx(0.1)
    assert by[("gd", "cnn")]["effective_lr"] == 0.1 and by[("adam", "cnn")]["effective_lr"] is None
    assert all(by[(name, "resnet")]["rate"] == 1.0 for name in ("gd", "momentum", "nesterov"))


def test_compare_optimizers_equals_run_trials_on_the_same_draws():
    rows = E.compare_optimizers(("nesterov", "adam"), lrs={"adam": 0.02}, beta=0.8, k=4, p=3, trials=6, steps=1500,
                                seed=5, executor=None)
    made = {"nesterov": sn.optim.momentum(0.01, beta=0.8, nesterov=True), "adam": sn.optim.adam(0.02)}
    for row in rows:
        model, w_star, a_star, w0, a0 = hand_drawn(4, 3, 6, 5, row["architecture"])
        out = sn.run_trials(model, w_star, a_star, w0, a0, steps=1500, optimizer=made[row["optimizer"]])
        assert row["successes"] == int(np.sum(out.outcome == "global"))
        assert row["reached"] == int(np.sum(out.steps_to_tol >= 0))
        reached = out.steps_to_tol[out.steps_to_tol >= 0]
        assert row["median_steps"] == (float(np.median(reached)) if reached.size else None)


def test_compare_optimizers_rejects_bad_arguments():
    with pytest.raises(ValueError, match="optimizers"):
        E.compare_optimizers(("sgd",), trials=2, steps=10, executor=None)
    with pytest.raises(ValueError, match="lrs"):
        E.compare_optimizers(lrs={"rmsprop": 0.1}, trials=2, steps=10, executor=None)
    with pytest.raises(ValueError, match="lrs"):
        E.compare_optimizers(lrs={"gd": 0.0}, trials=2, steps=10, executor=None)
    with pytest.raises(ValueError, match="beta: not a parameter of optimizer 'gd'"):
        E.optimizers.make_optimizer("gd", 0.1, beta=0.9)
