"""The NumPy reduced engine (backends/reference_reduced.py) against the full-dimensional engines
(NumPy and compiled) and, for degenerate starts, against a plain gradient-descent loop on the
full vectors written here from docs/model.md, "Closed forms under Gaussian input"."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import shortcutnet as sn
from reduced_cases import (SHORTCUTS, above_floor, loss_scale, make_model, optimizer, random_problem,
                           relative_error, run_reduced, schedule)
from shortcutnet.backends import reference_reduced

pytestmark = pytest.mark.filterwarnings("ignore::shortcutnet.BackendWarning")

FULL_BACKENDS = [b for b in ("numpy", "cpp") if b in sn.backends()]
OPTIMIZERS = ("gd", "heavy-ball", "nesterov")
SCHEDULES = ("constant", "table", "callable")
MODELS = list(itertools.product(SHORTCUTS, (True, False)))
# Every optimizer with every schedule, every model with every optimizer and every schedule.
CASES = [(shortcut, normalize, opt, SCHEDULES[(i + j) % 3])
         for i, (shortcut, normalize) in enumerate(MODELS) for j, opt in enumerate(OPTIMIZERS)]


def case_id(case):
    shortcut, normalize, opt, sched = case
    return f"s_{shortcut}-{'norm' if normalize else 'raw'}-{opt}-{sched}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_trajectories_agree_with_the_full_engines(rng, case, measured):
    shortcut, normalize, opt_kind, sched = case
    k, p = int(rng.integers(3, 15)), int(rng.integers(2, 9))
    model = make_model(rng, k, p, shortcut, normalize)
    w_star, a_star, w0, a0 = random_problem(rng, model)
    lr = 0.1 if opt_kind == "gd" else 0.03
    opt = optimizer(opt_kind, schedule(sched, lr, rng))
    steps = 700
    out = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, opt, steps)
    hist = out[-1]
    scale = loss_scale(model, w_star, a_star)
    for backend in FULL_BACKENDS:
        full = sn.train(model, w_star, a_star, w0, a0, steps=steps, optimizer=opt, tol=0.0, backend=backend,
                        engine="full")
        h = full.history
        np.testing.assert_array_equal(hist[:, 0], h["step"])
        keep = above_floor(h["phi"], h["loss"], scale)
        assert keep.sum() >= 20, "too few rows above the full engine's rounding floor to compare"
        for i, name in ((1, "loss"), (2, "phi"), (4, "a_err")):
            worst = relative_error(hist[keep, i], h[name][keep]).max()
            measured.worst(f"reduced numpy vs full {backend}: {name} (relative)", worst)
            assert worst <= 1e-10, (name, worst)
        np.testing.assert_allclose(hist[:, 3], h["a_dot_astar"], rtol=1e-10, atol=1e-12 * scale)
        np.testing.assert_allclose(hist[:, 5], h["w_norm"], rtol=1e-10, atol=1e-13)
        assert np.isnan(hist[:, 6]).all()
        assert sn.OUTCOMES[int(out[0][0])] == full.outcome
        np.testing.assert_allclose(out[5][0], full.w, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(out[6][0], full.a, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("normalize", [True, False], ids=["norm", "raw"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared-teacher", "own-teachers"])
def test_outcomes_of_many_trials_match_the_compiled_full_engine(rng, normalize, shared):
    if "cpp" not in sn.backends():
        pytest.skip("the compiled core is not available")
    B, k, p, steps = 300, 10, 6, 1500
    model = sn.Model(k, p, shortcut=False, normalize=normalize)
    w0 = rng.standard_normal((B, p))
    w0 /= np.linalg.norm(w0, axis=1, keepdims=True)
    shape = () if shared else (B,)
    # |u*| ~ 1: un-normalized runs with much larger |u*| at this step size are chaotic, and
    # rounding alone decides where they end.
    a_star, w_star = rng.standard_normal(shape + (k,)), rng.standard_normal(shape + (p,)) / math.sqrt(p)
    a0 = sn.init_second_layer(model, a_star, rng, size=B if shared else None)
    opt = sn.optim.gd(0.1)
    full = sn.run_trials(model, w_star, a_star, w0, a0, steps=steps, optimizer=opt, engine="full", backend="cpp")
    out = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, opt, steps, tol=1e-10, record_every=0)
    code, phi, loss, steps_to_tol, n = out[:5]
    np.testing.assert_array_equal(code, full.outcome_code)
    summary = full.summary()
    assert summary["global"] > 0
    if normalize:  # the plain CNN from a random start: both basins (docs/model.md, "The paper's claim and the experiments")
        assert summary["spurious"] > 0
    np.testing.assert_array_equal(steps_to_tol, full.steps_to_tol)
    np.testing.assert_array_equal(n, full.steps)
    np.testing.assert_allclose(loss, full.loss, rtol=1e-7)  # the last loss is at tol = 1e-10 or above
    away = full.phi > 1e-5
    np.testing.assert_allclose(phi[away], full.phi[away], rtol=1e-9)
    np.testing.assert_allclose(out[5], full.w, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out[6], full.a, rtol=1e-9, atol=1e-12)
    assert np.isnan(out[7]).all() and out[8] is None


def test_shared_teachers_give_what_repeated_teachers_give(rng):
    B, k, p = 6, 7, 4
    model = sn.Model(k, p, shortcut=True)
    w_star, a_star = rng.standard_normal(p) * 0.2, rng.standard_normal(k)
    w0 = rng.standard_normal((B, p)) * 0.1
    a0 = sn.init_second_layer(model, a_star, rng, size=B)
    opt = sn.optim.momentum(0.05, beta=0.5)
    shared = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, opt, 200, tol=1e-12, record_every=0)
    repeated = run_reduced(reference_reduced, model, np.tile(w_star, (B, 1)), np.tile(a_star, (B, 1)), w0, a0, opt,
                           200, tol=1e-12, record_every=0)
    for x, y in zip(shared[:8], repeated[:8]):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- degenerate starts
def plain_gd(model, w_star, a_star, w0, a0, lr, steps):
    """Gradient descent on the full vectors, docs/model.md, "Closed forms under Gaussian input" as written (no care for rounding)."""
    s, k = model.s, model.k
    ones = np.ones(k)
    w, a = w0.astype(float).copy(), a0.astype(float).copy()
    u_star = w_star + s
    rho_star = np.linalg.norm(u_star)
    v_star = u_star / rho_star
    rows = []
    for t in range(steps + 1):
        u = w + s
        rho = np.linalg.norm(u)
        v = u / rho
        perp = v_star - (v @ v_star) * v
        phi = math.atan2(np.linalg.norm(perp), v @ v_star)
        g = (math.pi - phi) * math.cos(phi) + math.sin(phi)
        a_dot = a @ a_star
        if model.normalize:
            diff = a - a_star
            loss = (diff.sum() ** 2 + (math.pi - 1) * diff @ diff + 2 * (math.pi - g) * a_dot) / (4 * math.pi)
            grad_a = (ones * diff.sum() + (math.pi - 1) * a - (g - 1) * a_star) / (2 * math.pi)
            grad_w = -a_dot * (math.pi - phi) / (2 * math.pi * rho) * perp
        else:
            M = rho**2 * (np.outer(ones, ones) + (math.pi - 1) * np.eye(k)) / (2 * math.pi)
            N = rho * rho_star * (np.outer(ones, ones) + (g - 1) * np.eye(k)) / (2 * math.pi)
            M_star = rho_star**2 * (np.outer(ones, ones) + (math.pi - 1) * np.eye(k)) / (2 * math.pi)
            loss = 0.5 * (a @ M @ a - 2 * a @ N @ a_star + a_star @ M_star @ a_star)
            grad_a = M @ a - N @ a_star
            grad_w = (((a.sum()) ** 2 + (math.pi - 1) * a @ a) * u
                      - rho_star * (a.sum() * a_star.sum() - a_dot) * v
                      - rho_star * a_dot * (math.sin(phi) * v + (math.pi - phi) * v_star)) / (2 * math.pi)
        rows.append((t, loss, phi, a_dot, np.linalg.norm(a - a_star), np.linalg.norm(w)))
        if t < steps:
            w = w - lr * grad_w
            a = a - lr * grad_a
    return np.array(rows), w, a


def _degenerate(rng, name):
    """(model, w_star, a_star, w0, a0) of a start where a subspace of section 2 degenerates."""
    k, p = 6, 4
    shortcut, normalize = True, True
    if name.startswith("raw "):
        normalize = False
        name = name[4:]
    if name == "k = 1":
        k = 1
    elif name == "k = 2":
        k = 2
    elif name in ("p = 1 resnet", "p = 1 cnn antiparallel"):
        p = 1
        shortcut = name == "p = 1 resnet"
    elif name in ("u0 = 2 u*", "u0 = -0.5 u*", "u* = 3 u0", "u* = -3 u0"):
        shortcut = False
    model = sn.Model(k, p, shortcut=shortcut, normalize=normalize)
    w_star = rng.standard_normal(p) * (0.3 if shortcut else 1.0 / math.sqrt(p))
    a_star = rng.standard_normal(k)
    w0 = np.zeros(p) if shortcut else rng.standard_normal(p)
    a0 = 0.4 * rng.standard_normal(k)
    u_star = w_star + model.s
    if name == "u0 = u*":
        w0 = w_star.copy()
    elif name == "u0 = 2 u*":
        w0 = 2.0 * u_star - model.s
    elif name in ("u0 = -0.5 u*", "p = 1 cnn antiparallel"):
        w0 = -0.5 * u_star - model.s
    elif name in ("u* = 3 u0", "u* = -3 u0"):
        # Exactly parallel, with a ratio 1/3 that rounds: the residual of u0 is pure rounding.
        w0 = np.array([1.0, -2.0, 3.0, 5.0]) / 8.0
        w_star = (3.0 if name == "u* = 3 u0" else -3.0) * w0
    elif name == "a0 in span(a*, 1)":
        a0 = 0.3 * a_star - 0.2 * np.ones(k)
    elif name == "a0 = 0":
        a0 = np.zeros(k)
    elif name == "a0 = -a*":
        a0 = -a_star
    elif name == "a* parallel to 1":
        a_star = 1.3 * np.ones(k)
    elif name == "a* = 0":
        a_star = np.zeros(k)
    return model, w_star, a_star, w0, a0


DEGENERATE = ["u0 = u*", "u0 = 2 u*", "u0 = -0.5 u*", "u* = 3 u0", "u* = -3 u0",
              "a0 in span(a*, 1)", "a0 = 0", "a0 = -a*", "a* parallel to 1", "a* = 0", "k = 1", "k = 2", "p = 1 resnet", "p = 1 cnn antiparallel"]
DEGENERATE += ["raw " + name for name in DEGENERATE]


@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_starts_follow_plain_gradient_descent(rng, name):
    model, w_star, a_star, w0, a0 = _degenerate(rng, name)
    lr, steps = 0.05, 300
    want, w_want, a_want = plain_gd(model, w_star, a_star, w0, a0, lr, steps)
    out = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, sn.optim.gd(lr), steps)
    got = out[-1]
    scale = max(1.0, loss_scale(model, w_star, a_star))
    np.testing.assert_array_equal(got[:, 0], want[:, 0])
    np.testing.assert_allclose(got[:, 1], want[:, 1], rtol=1e-9, atol=1e-13 * scale)  # loss
    np.testing.assert_allclose(got[:, 2], want[:, 2], rtol=1e-9, atol=1e-9)  # phi (plain: rounding ~1e-16 / phi)
    np.testing.assert_allclose(got[:, 3:6], want[:, 3:6], rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(out[5][0], w_want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out[6][0], a_want, rtol=1e-9, atol=1e-12)
    want_code = sn.outcomes.classify(model, w_want[None], a_want[None], w_star[None], a_star[None],
                                     want[-1:, 1], want[-1:, 2])
    np.testing.assert_array_equal(out[0], want_code)


def test_a_parallel_start_stays_on_the_line_and_an_antiparallel_one_at_the_spurious_optimum(rng):
    model, w_star, a_star, w0, a0 = _degenerate(rng, "u* = -3 u0")
    while sn.is_spurious_minimum(model, a_star) is False:
        a_star = rng.standard_normal(model.k)
    out = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, sn.optim.gd(0.1), 3000, tol=1e-10)
    assert (out[-1][:, 2] == math.pi).all()  # y = 0 for ever: phi is pi exactly
    assert sn.OUTCOMES[int(out[0][0])] == "spurious"
    np.testing.assert_allclose(out[6][0], sn.spurious_optimum(model, a_star), atol=1e-6)
    model, w_star, a_star, w0, a0 = _degenerate(rng, "u* = 3 u0")
    out = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, sn.optim.gd(0.1), 3000, tol=1e-10)
    assert (out[-1][:, 2] == 0.0).all()
    assert sn.OUTCOMES[int(out[0][0])] == "global"


@pytest.mark.parametrize("normalize", [True, False], ids=["norm", "raw"])
def test_a_trial_stopped_at_step_0_returns_its_start_exactly(rng, normalize):
    model = sn.Model(5, 3, shortcut=rng.standard_normal(3), normalize=normalize)
    w_star, a_star = rng.standard_normal((2, 3)), rng.standard_normal((2, 5))
    w0, a0 = rng.standard_normal((2, 3)), rng.standard_normal((2, 5))
    out = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, sn.optim.gd(0.1), 10, tol=1e6,
                      record_every=0)
    np.testing.assert_array_equal(out[3], [0, 0])
    np.testing.assert_array_equal(out[4], [0, 0])
    np.testing.assert_array_equal(out[5], w0)
    np.testing.assert_array_equal(out[6], a0)


def test_divergence_stops_a_trial_as_the_full_engine_does(rng):
    model = sn.Model(30, 4, shortcut=True)
    w_star, a_star, w0, a0 = random_problem(rng, model)
    opt = sn.optim.gd(1.0)  # beyond 4 pi / (k + pi - 1): the a-step diverges
    out = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, opt, 500)
    full = sn.train(model, w_star, a_star, w0, a0, steps=500, optimizer=opt, tol=0.0, backend="numpy", engine="full")
    assert sn.OUTCOMES[int(out[0][0])] == full.outcome == "diverged"
    assert int(out[4][0]) == full.steps < 500
    np.testing.assert_array_equal(out[-1][:, 0], full.history["step"])


@pytest.mark.parametrize("kind", ["adam", "sgd", None])
def test_optimizers_outside_the_subspaces_are_refused(kind):
    model = sn.Model(3, 2)
    spec = ("adam", 0.0, False, 0.9, 0.999, 1e-8) if kind == "adam" else (kind, 0.0, False, 0.0, 0.0, 0.0)
    args = (model.s, True, np.zeros((1, 2)), np.ones((1, 3)), np.ones((1, 2)), np.ones((1, 3)), np.array([[0.1, 0.1]]),
            5, 0.0, sn.Thresholds().as_tuple(), spec, 0, None)
    with pytest.raises(ValueError, match="optimizer: .*gd.*momentum.*got"):
        reference_reduced.run_reduced(*args)


def test_a_history_is_for_one_trial():
    model = sn.Model(3, 2)
    with pytest.raises(ValueError, match="record_every: .*B = 2"):
        reference_reduced.run_reduced(model.s, True, np.zeros((2, 2)), np.ones((2, 3)), np.ones((1, 2)),
                                      np.ones((1, 3)), np.array([[0.1, 0.1]]), 5, 0.0, sn.Thresholds().as_tuple(),
                                      sn.optim.gd(0.1).engine_spec(), 1, None)
