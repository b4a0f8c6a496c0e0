"""sn.gradient_flow: the reduced flow against a flow on the full vectors, gradient descent as
eta -> 0, the end of stage I, the recorded history, and bad input."""
from __future__ import annotations

import importlib
import math
import sys

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import shortcutnet as sn

pytestmark = pytest.mark.filterwarnings("ignore::shortcutnet.BackendWarning")

# (shortcut, normalize, lr_ratio): the identity shortcut, the plain CNN, a custom shortcut.
CASES = [("on", True, 1.0), ("off", False, 0.5), ("custom", True, 2.0), ("custom", False, 1.0)]


def case_id(case):
    shortcut, normalize, ratio = case
    return f"s_{shortcut}-{'norm' if normalize else 'raw'}-ratio{ratio}"


def problem(rng, shortcut, normalize, k=8, p=5):
    s = {"on": True, "off": False}.get(shortcut)
    model = sn.Model(k, p, shortcut=rng.standard_normal(p) / math.sqrt(p) if s is None else s, normalize=normalize)
    w_star, a_star = 0.3 * rng.standard_normal(p), rng.standard_normal(k)
    w0, a0 = 0.3 * rng.standard_normal(p), 0.3 * rng.standard_normal(k)
    return model, w_star, a_star, w0, a0


def full_vector_flow(model, w_star, a_star, w0, a0, t_max, lr_ratio, times):
    """The flow on (w, a) in R^(p + k) with the closed-form population gradient: no coordinates."""
    p = model.p

    def rhs(t, theta):
        grad_w, grad_a = sn.population_grad(model, theta[:p], theta[p:], w_star, a_star, backend="numpy")
        return -np.concatenate([grad_w, lr_ratio * grad_a])

    sol = solve_ivp(rhs, (0.0, t_max), np.concatenate([w0, a0]), method="DOP853", rtol=1e-12, atol=1e-14,
                    t_eval=times)
    assert sol.status == 0
    return sol.y[:p].T, sol.y[p:].T


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_flow_matches_a_flow_on_the_full_vectors(rng, case):
    model, w_star, a_star, w0, a0 = problem(rng, case[0], case[1])
    times = np.linspace(0.0, 3.0, 7)
    res = sn.gradient_flow(model, w_star, a_star, w0, a0, t_max=3.0, lr_ratio=case[2], times=times, rtol=1e-12)
    w, a = full_vector_flow(model, w_star, a_star, w0, a0, 3.0, case[2], times)
    np.testing.assert_allclose(res.w, w[-1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.a, a[-1], rtol=1e-8, atol=1e-10)
    for i, t in enumerate(times):
        assert res.history["t"][i] == t
        loss = sn.population_loss(model, w[i], a[i], w_star, a_star)
        assert res.history["loss"][i] == pytest.approx(loss, rel=1e-8)
        # The full-vector flow holds u to about rtol |u| absolutely: phi to about 1e-12 absolutely.
        phi = sn.angle(w[i] + model.s, w_star + model.s)
        assert res.history["phi"][i] == pytest.approx(phi, rel=1e-8, abs=1e-11)
        assert res.history["a_dot_astar"][i] == pytest.approx(a[i] @ a_star, rel=1e-8, abs=1e-10)
        assert res.history["a_err"][i] == pytest.approx(np.linalg.norm(a[i] - a_star), rel=1e-8)
        assert res.history["w_norm"][i] == pytest.approx(np.linalg.norm(w[i]), rel=1e-8)
    assert res.loss == pytest.approx(res.history["loss"][-1], rel=1e-12)
    assert res.phi == pytest.approx(res.history["phi"][-1], rel=1e-12)


@pytest.mark.parametrize("case", CASES[:3], ids=case_id)
def test_gradient_descent_approaches_the_flow_at_rate_eta(rng, case):
    model, w_star, a_star, w0, a0 = problem(rng, case[0], case[1])
    ratio, t_max = case[2], 2.0
    flow = sn.gradient_flow(model, w_star, a_star, w0, a0, t_max=t_max, lr_ratio=ratio, rtol=1e-12)
    errors = []
    for eta in (0.02, 0.01, 0.005):
        gd = sn.train(model, w_star, a_star, w0, a0, steps=round(t_max / eta), lr=(eta, ratio * eta), tol=0.0,
                      record_every=1000)
        errors.append(np.linalg.norm(gd.w - flow.w) + np.linalg.norm(gd.a - flow.a))
    assert errors[0] > 1e-5  # far above the flow's own error: the comparison measures GD's
    for coarse, fine in zip(errors, errors[1:]):
        assert 1.8 < coarse / fine < 2.2, errors


def test_stage_one_ends_where_gradient_descent_first_has_a_dot_astar_positive(rng):
    model = sn.Model(8, 5, shortcut=True)
    w_star, a_star = 0.2 * rng.standard_normal(5), rng.standard_normal(8)
    w0, a0 = np.zeros(5), -0.15 * a_star + 0.05 * rng.standard_normal(8)
    assert a0 @ a_star < 0
    flow = sn.gradient_flow(model, w_star, a_star, w0, a0, t_max=5.0, rtol=1e-12, times=[0.0, 1.0])
    tau = flow.stage1_end
    assert 0.1 < tau < 5.0
    at_tau = sn.gradient_flow(model, w_star, a_star, w0, a0, t_max=tau, rtol=1e-12, times=[tau])
    assert abs(at_tau.history["a_dot_astar"][0]) < 1e-9 * (a_star @ a_star)
    for eta in (0.02, 0.01, 0.005, 0.0025):
        gd = sn.train(model, w_star, a_star, w0, a0, steps=round(2 * tau / eta), lr=eta, tol=0.0)
        first = int(np.flatnonzero(gd.history["a_dot_astar"] > 0)[0])
        # The first step past the crossing: within one step of the flow's time, plus GD's O(eta) lag.
        assert abs(eta * first - tau) <= 2 * eta, (eta, eta * first, tau)


def test_stage_one_is_empty_or_endless_in_the_documented_cases(rng):
    model, w_star, a_star, w0, a0 = problem(rng, "on", True)
    a0 = 0.5 * a_star
    assert sn.gradient_flow(model, w_star, a_star, w0, a0, t_max=1.0).stage1_end == 0.0
    assert sn.gradient_flow(model, w_star, np.zeros(model.k), w0, a0, t_max=1.0).stage1_end is None
    far = -3.0 * a_star
    short = sn.gradient_flow(model, w_star, a_star, w0, far, t_max=1e-3)
    assert short.stage1_end is None and short.history["a_dot_astar"][-1] < 0


def test_the_history_without_times_follows_the_solver_and_starts_at_the_start(rng):
    model, w_star, a_star, w0, a0 = problem(rng, "off", True)
    res = sn.gradient_flow(model, w_star, a_star, w0, a0, t_max=4.0)
    t = res.history["t"]
    assert t[0] == 0.0 and t[-1] == 4.0 and np.all(np.diff(t) > 0) and res.history.n_records == t.shape[0] > 3
    assert t.dtype == np.float64 and "step" not in res.history and list(res.history) == list(sn.flow.COLUMNS)
    assert res.history["loss"][0] == pytest.approx(sn.population_loss(model, w0, a0, w_star, a_star), rel=1e-14)
    assert res.history["w_norm"][0] == pytest.approx(np.linalg.norm(w0), rel=1e-14)
    assert np.all(np.diff(res.history["loss"]) <= 1e-15)  # a gradient flow never raises the loss
    assert res.loss == res.history["loss"][-1] and res.phi == res.history["phi"][-1]
    assert res.nfev > 0 and "FlowResult(" in repr(res)
    assert not res.w.flags.writeable and not res.a.flags.writeable


def test_the_normalized_flow_keeps_the_filter_norm(rng):
    model, w_star, a_star, w0, a0 = problem(rng, "custom", True)
    res = sn.gradient_flow(model, w_star, a_star, w0, a0, t_max=5.0, times=np.linspace(0, 5, 11))
    # grad_u L is orthogonal to u in the normalized model: |u| is a constant of the flow.
    assert np.linalg.norm(res.w + model.s) == pytest.approx(np.linalg.norm(w0 + model.s), rel=1e-9)


@pytest.mark.parametrize("normalize", [True, False], ids=["norm", "raw"])
def test_without_numba_the_flow_steps_with_the_numpy_reference(rng, monkeypatch, normalize):
    model, w_star, a_star, w0, a0 = problem(rng, "custom", normalize)
    times = np.linspace(0.0, 1.0, 5)
    fast = sn.gradient_flow(model, w_star, a_star, w0, a0, t_max=1.0, times=times)
    monkeypatch.setitem(sys.modules, "shortcutnet.backends.numba_reduced", None)  # its import now fails
    monkeypatch.delattr(importlib.import_module("shortcutnet.backends"), "numba_reduced", raising=False)
    assert sn.flow._kernel().__module__ == "shortcutnet.flow"
    plain = sn.gradient_flow(model, w_star, a_star, w0, a0, t_max=1.0, times=times)
    np.testing.assert_allclose(plain.a, fast.a, rtol=1e-12)
    np.testing.assert_allclose(plain.w, fast.w, rtol=1e-12, atol=1e-15)
    for name in sn.flow.COLUMNS:
        np.testing.assert_allclose(plain.history[name], fast.history[name], rtol=1e-11, atol=1e-15)


def test_exported():
    assert "gradient_flow" in sn.__all__ and "FlowResult" in sn.__all__
    assert sn.gradient_flow is sn.flow.gradient_flow


# --------------------------------------------------------------------------- bad input
def _good():
    model = sn.Model(4, 3)
    return model, np.full(3, 0.1), np.ones(4), np.zeros(3), np.full(4, 0.2)


@pytest.mark.parametrize(
    "change, error, pattern",
    [
        (dict(model="model"), TypeError, "model: expected a shortcutnet.Model"),
        (dict(model=sn.Model(4, 3, stride=2)), ValueError, "model: .*non-overlapping.*stride = 2 < p = 3"),
        (dict(w0=np.zeros(4)), ValueError, r"w0: expected shape \(3,\)"),
        (dict(a0=[1.0, np.nan, 0.0, 0.0]), ValueError, "a0: expected finite values"),
        (dict(a_star=np.ones((2, 4))), ValueError, "a_star: expected shape"),
        (dict(w_star="abc"), TypeError, "w_star: expected real"),
        (dict(w0=-sn.Model(4, 3).s), ValueError, r"w0: expected w0 \+ s != 0"),
        (dict(w_star=-sn.Model(4, 3).s), ValueError, r"w_star: expected w_star \+ s != 0"),
        (dict(t_max=0.0), ValueError, "t_max: expected a finite number > 0, got 0.0"),
        (dict(t_max=math.inf), ValueError, "t_max: expected a finite number > 0, got inf"),
        (dict(t_max="1"), TypeError, "t_max: expected a finite number > 0, got str"),
        (dict(t_max=True), TypeError, "t_max: expected"),
        (dict(lr_ratio=-1.0), ValueError, "lr_ratio: expected a finite number >= 0, got -1.0"),
        (dict(times=[0.0, 2.0]), ValueError, r"times: expected times in \[0, t_max = 1.0\]"),
        (dict(times=[-0.1]), ValueError, "times: expected times in"),
        (dict(times=[0.5, 0.2]), ValueError, "times: expected non-decreasing times"),
        (dict(times=[[0.5]]), ValueError, "times: expected a 1-D array"),
        (dict(times=[]), ValueError, "times: expected at least one time"),
        (dict(rtol=1e-16), ValueError, r"rtol: expected a finite number >= 2.22\d*e-14 and < 1, got 1e-16"),
        (dict(rtol=1.0), ValueError, "rtol: expected"),
        (dict(atol=0.0), ValueError, "atol: expected a finite number > 0, got 0.0"),
        (dict(atol=None), TypeError, "atol: expected a finite number > 0, got NoneType"),
    ],
)
def test_bad_input_names_the_argument(change, error, pattern):
    model, w_star, a_star, w0, a0 = _good()
    args = dict(model=model, w_star=w_star, a_star=a_star, w0=w0, a0=a0)
    options = dict(t_max=1.0)
    for name, value in change.items():
        (args if name in args else options)[name] = value
    with pytest.raises(error, match=pattern):
        sn.gradient_flow(args["model"], args["w_star"], args["a_star"], args["w0"], args["a0"], **options)


def test_options_are_keyword_only():
    model, w_star, a_star, w0, a0 = _good()
    with pytest.raises(TypeError):
        sn.gradient_flow(model, w_star, a_star, w0, a0, 1.0)
    with pytest.raises(TypeError):
        sn.gradient_flow(model, w_star, a_star, w0, a0)  # t_max is required
