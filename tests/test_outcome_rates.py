"""The paper's claim, statistically (docs/model.md, "The paper's claim and the experiments"): the plain CNN with random init reaches the
global optimum in about two thirds of runs and ends at the spurious optimum otherwise; the ResNet
with w0 = 0 always reaches it.  Confidence bounds are exact (Clopper-Pearson) or Wilson, at 99.9%."""
import math

import numpy as np
import pytest
from scipy import stats

import shortcutnet as sn
from train_problems import problem

B = 2000
CONFIDENCE = 0.999
# The full run's rate at k = 20, p = 10 (README, 2000 teachers): 63.9%, 95% interval [61.8%, 66.0%].
MEASURED = (0.618, 0.660)


def interval(successes, n, method):
    ci = stats.binomtest(int(successes), n).proportion_ci(confidence_level=CONFIDENCE, method=method)
    return ci.low, ci.high


@pytest.fixture(scope="module")
def cnn_runs():
    model = sn.Model(20, 10, shortcut=False)
    w_star, a_star, w0, a0 = problem(model, seed=2019, size=B)
    return model, a_star, sn.run_trials(model, w_star, a_star, w0, a0, steps=3000, lr=0.1)


def test_cnn_reaches_global_in_about_two_thirds(cnn_runs):
    _, _, out = cnn_runs
    summary = out.summary()
    low, high = interval(summary["global"], B, "wilson")
    # About two thirds, consistent with the measured rate, and far from the other cells' 58% and
    # 75% (the interval is about +-3.5% wide at 99.9%).
    assert low <= MEASURED[1] and MEASURED[0] <= high, (summary, low, high)
    assert 0.6 < low and high < 0.7, (summary, low, high)


def test_cnn_other_runs_end_spurious(cnn_runs):
    _, _, out = cnn_runs
    summary = out.summary()
    others = B - summary["global"]
    low, _ = interval(summary["spurious"], others, "exact")
    assert low > 0.8, summary
    assert summary["diverged"] == 0


def test_spurious_runs_sit_at_the_spurious_optimum(cnn_runs):
    # docs/model.md, "Critical points": a -> a_sp fast, phi -> pi slowly (the minimum is degenerate in phi).
    model, a_star, out = cnn_runs
    spurious = np.flatnonzero(out.outcome == "spurious")
    assert spurious.size > 0
    for b in spurious:
        a_sp = sn.spurious_optimum(model, a_star[b])
        assert sn.is_spurious_minimum(model, a_star[b])
        assert np.linalg.norm(out.a[b] - a_sp) < 1e-4
        assert float(a_sp @ a_star[b]) < 0
        assert math.pi - 0.1 < out.phi[b] < math.pi
        assert out.steps_to_tol[b] == -1
    globals_ = out.outcome == "global"
    assert np.all(out.phi[globals_] < 1e-6) and np.all(out.loss[globals_] <= 1e-10)


def test_resnet_from_zero_always_global():
    model = sn.Model(20, 10)
    w_star, a_star, w0, a0 = problem(model, seed=2020, size=B)
    out = sn.run_trials(model, w_star, a_star, w0, a0, steps=3000, lr=0.1)
    summary = out.summary()
    low, _ = interval(summary["global"], B, "exact")
    assert low > 0.97, summary
