"""train(): the engines against a hand-written exact-GD loop, the result object, and bad input."""
import math

import numpy as np
import pytest

import shortcutnet as sn
from train_problems import BACKENDS, available, problem


def backend_or_skip(backend):
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    return backend


def hand_written_gd(model, w_star, a_star, w, a, steps, lr_w, lr_a, backend):
    """Plain exact GD, one population_loss_grad call per step: losses at steps 0..steps, final (w, a)."""
    losses = []
    for _ in range(steps):
        loss, grad_w, grad_a = sn.population_loss_grad(model, w, a, w_star, a_star, backend=backend)
        losses.append(loss)
        w = w - lr_w * grad_w
        a = a - lr_a * grad_a
    losses.append(sn.population_loss(model, w, a, w_star, a_star, backend=backend))
    return np.array(losses), w, a


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shortcut", [True, False])
@pytest.mark.parametrize("engine", ["full", "reduced"])
def test_train_reproduces_hand_written_loop(backend, shortcut, engine):
    backend_or_skip(backend)
    model = sn.Model(12, 6, shortcut=shortcut)
    w_star, a_star, w0, a0 = problem(model, seed=3)
    losses, w, a = hand_written_gd(model, w_star, a_star, w0, a0, 150, 0.1, 0.05, backend)
    res = sn.train(model, w_star, a_star, w0, a0, steps=150, lr=(0.1, 0.05), tol=0.0, backend=backend, engine=engine)
    assert res.engine == engine
    assert res.steps == 150 and res.steps_to_tol == -1
    np.testing.assert_array_equal(res.history["step"], np.arange(151))
    # The full engine performs the loop's operations; the reduced one the same map in coordinates,
    # rounded differently (docs/reduced.md section 5).
    rtol, atol = (1e-14, 1e-15) if engine == "full" else (1e-12, 1e-14)
    np.testing.assert_allclose(res.history["loss"], losses, rtol=rtol, atol=atol)
    np.testing.assert_allclose(res.w, w, rtol=0, atol=atol)
    np.testing.assert_allclose(res.a, a, rtol=0, atol=atol)
    assert res.loss == res.history["loss"][-1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_user_schedule_loop_matches_engine(backend):
    backend_or_skip(backend)
    model = sn.Model(10, 5, shortcut=False)
    w_star, a_star, w0, a0 = problem(model, seed=4)
    schedule = sn.piecewise([40], [(0.0, 0.2), (0.1, 0.1)])
    engine = sn.train(model, w_star, a_star, w0, a0, steps=300, lr=schedule, backend=backend, record_every=7)
    loop = sn.train(model, w_star, a_star, w0, a0, steps=300, lr=lambda t: schedule(t), backend=backend,
                    record_every=7)
    assert (engine.outcome, engine.steps, engine.steps_to_tol) == (loop.outcome, loop.steps, loop.steps_to_tol)
    np.testing.assert_allclose(loop.w, engine.w, rtol=0, atol=1e-15)
    np.testing.assert_allclose(loop.a, engine.a, rtol=0, atol=1e-15)
    for column in engine.history:
        np.testing.assert_allclose(loop.history[column], engine.history[column], rtol=1e-13, atol=1e-15)


def test_history_and_result():
    model = sn.Model(8, 4)
    w_star, a_star, w0, a0 = problem(model, seed=0)
    inputs = [x.copy() for x in (w_star, a_star, w0, a0)]
    res = sn.train(model, w_star, a_star, w0, a0, steps=5000, lr=0.1, record_every=10)
    for x, y in zip(inputs, (w_star, a_star, w0, a0)):
        assert np.array_equal(x, y)  # inputs untouched
    assert res.outcome == "global" and res.success
    assert 0 < res.steps_to_tol == res.steps < 5000 and res.loss <= 1e-10
    h = res.history
    assert list(h) == ["step", "loss", "phi", "a_dot_astar", "a_err", "w_norm"]
    assert np.all(h["step"][:-1] % 10 == 0) and h["step"][-1] == res.steps
    # a_err comes from the engine's coordinates, res.a is rebuilt from them: they agree to the
    # rounding of a's entries.
    np.testing.assert_allclose(h["a_err"][-1], np.linalg.norm(res.a - a_star), rtol=1e-12,
                               atol=8 * np.finfo(float).eps * np.linalg.norm(a_star))
    assert res.engine == "reduced"
    np.testing.assert_allclose(h["w_norm"][-1], np.linalg.norm(res.w), rtol=1e-12)
    np.testing.assert_allclose(h["a_dot_astar"][0], a0 @ a_star, rtol=1e-12)
    assert h["phi"][-1] == res.phi < 1e-6
    assert h["loss"][0] > h["loss"][-1]
    with pytest.raises(ValueError):
        res.w[0] = 1.0  # results are read-only
    assert "TrainResult(outcome='global'" in repr(res)


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_is_reported(backend):
    backend_or_skip(backend)
    model = sn.Model(10, 5, shortcut=False)
    w_star, a_star, w0, a0 = problem(model, seed=1)
    for lr in (1e3, lambda t: 1e3, 1e200):
        res = sn.train(model, w_star, a_star, w0, a0, steps=1000, lr=lr, backend=backend)
        assert res.outcome == "diverged"
        assert res.steps < 1000
    out = sn.run_trials(model, w_star, a_star, w0[None], a0[None], steps=1000, lr=1e3, backend=backend)
    assert out.outcome[0] == "diverged"


def test_bad_input():
    model = sn.Model(6, 3)
    w_star, a_star, w0, a0 = problem(model, seed=0)
    args = (model, w_star, a_star, w0, a0)
    for steps, error in ((0, ValueError), (-3, ValueError), (2.5, TypeError), (None, TypeError)):
        with pytest.raises(error, match="steps"):
            sn.train(*args, steps=steps, lr=0.1)
    with pytest.raises(ValueError, match="rates"):
        sn.train(*args, steps=10, lr=-0.1)
    with pytest.raises(ValueError, match="rates"):
        sn.train(*args, steps=10, lr=(0.1, math.nan))
    with pytest.raises(TypeError, match="step 3"):
        sn.train(*args, steps=10, lr=lambda t: "fast" if t == 3 else 0.1)
    with pytest.raises(ValueError, match="step 0"):
        sn.train(*args, steps=10, lr=lambda t: math.inf)
    with pytest.raises(TypeError, match="learning_rate"):
        sn.train(*args, steps=10, lr=0.1, learning_rate=0.1)
    with pytest.raises(ValueError, match="gradient"):
        sn.train(*args, steps=10, lr=0.1, gradient="exact")
    with pytest.raises(ValueError, match="batch_size"):
        sn.train(*args, steps=10, lr=0.1, batch_size=100)
    with pytest.raises(ValueError, match="threads"):
        sn.train(*args, steps=10, lr=0.1, threads=2)
    with pytest.raises(ValueError, match="dtype"):
        sn.train(*args, steps=10, lr=0.1, dtype=np.float32)
    with pytest.raises(TypeError, match="dtype"):
        sn.train(*args, steps=10, lr=0.1, dtype="int8")
    with pytest.raises(ValueError, match="tol"):
        sn.train(*args, steps=10, lr=0.1, tol=-1.0)
    with pytest.raises(ValueError, match="record_every"):
        sn.train(*args, steps=10, lr=0.1, record_every=0)
    with pytest.raises(ValueError, match="w"):
        sn.train(model, w_star, a_star, -model.s, a0, steps=10, lr=0.1)
    with pytest.raises(ValueError, match="a"):
        sn.train(model, w_star, a_star, w0, np.ones(7), steps=10, lr=0.1)
    with pytest.raises(ValueError, match="backend"):
        sn.train(*args, steps=10, lr=0.1, backend="cuda")
    with pytest.raises(ValueError, match="divergence"):
        sn.train(*args, steps=10, lr=0.1, thresholds={"divergence": -1.0})
    with pytest.raises(ValueError, match="unknown"):
        sn.train(*args, steps=10, lr=0.1, thresholds={"global_angle": 1e-3})


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_runs_need_no_per_step_table(backend):
    # A billion steps with a constant or piecewise rate: the engines read the last row of a short
    # table, and the run stops at tol long before.
    backend_or_skip(backend)
    model = sn.Model(8, 4)
    w_star, a_star, w0, a0 = problem(model, seed=5)
    lr = sn.piecewise([50], [(0.0, 0.1), 0.1])
    res = sn.train(model, w_star, a_star, w0, a0, steps=10**9, lr=lr, backend=backend, record_every=100)
    short = sn.train(model, w_star, a_star, w0, a0, steps=res.steps, lr=lr, backend=backend, record_every=100)
    assert res.outcome == "global" and res.steps_to_tol == res.steps < 10**4
    assert np.array_equal(res.w, short.w) and np.array_equal(res.a, short.a)
    out = sn.run_trials(model, w_star, a_star, w0[None], a0[None], steps=10**9, lr=lr, backend=backend)
    assert out.steps[0] == res.steps and np.allclose(out.w[0], res.w, rtol=0, atol=1e-15)


def test_history_across_engine_chunks():
    # 300000 steps span more than one chunk of the Numba and C++ engines.
    model = sn.Model(4, 3, shortcut=False)
    w_star, a_star, w0, a0 = problem(model, seed=6)
    runs = [sn.train(model, w_star, a_star, w0, a0, steps=300_000, lr=1e-6, tol=0.0, record_every=50_000, backend=b)
            for b in ("cpp", "numba") if available(b)]
    for res in runs:
        np.testing.assert_array_equal(res.history["step"], np.arange(0, 300_001, 50_000))
        assert res.steps == 300_000
    for other in runs[1:]:
        np.testing.assert_allclose(other.history["loss"], runs[0].history["loss"], rtol=1e-12)
