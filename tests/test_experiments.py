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


def test_sgd_vs_gd_tiny():
    if not E.sgd.sampled_gradient_available():
        with pytest.raises(RuntimeError, match="sampled kernels"):
            E.sgd_vs_gd((None, 32), trials=2, steps=20, executor=None)
        pytest.skip("this build has no sampled kernels (shortcutnet.kernels); only the error is checked")
    result = E.sgd_vs_gd((None, 256), k=5, p=4, trials=3, steps=200, executor=None)
    rows = {(r["architecture"], r["batch_size"]): r for r in result["rows"]}
    assert set(rows) == {("resnet", 0), ("resnet", 256), ("cnn", 0), ("cnn", 256)}
    assert rows[("resnet", 0)]["gradient"] == "population"
    assert rows[("resnet", 0)]["rate"] == rows[("resnet", 256)]["rate"] == 1.0  # w0 = 0 on easy teachers
    curve = {b: [c["median_loss"] for c in result["curves"] if c["architecture"] == "resnet" and c["batch_size"] == b]
             for b in (0, 256)}
    assert len(curve[0]) == len(curve[256]) and curve[0] != curve[256]  # the sampled path really ran
    # seeded: the same call gives the same table
    assert E.sgd_vs_gd((None, 256), k=5, p=4, trials=3, steps=200, executor=None) == result
