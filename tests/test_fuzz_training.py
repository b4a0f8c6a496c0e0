"""Property-based fuzzing of the training API, the initializations and the spurious optimum.

Whatever is passed, the result is a documented outcome or a ValueError/TypeError naming the option;
a run's first step is gradient descent on the population loss, its end is where the step loop
stops, and its outcome is the rule applied to its final state.
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shortcutnet as sn

#: every engine of train/run_trials; a new engine is fuzzed by adding its name here. An engine that
#: does not take some combination must refuse it with a ValueError that names the engine.
ENGINES = ["auto", "full", "reduced"]
BACKENDS = ["cpp", "numba", "numpy"]

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
garbage = st.one_of(st.none(), st.text(max_size=3), st.booleans(), st.complex_numbers(), st.lists(st.integers(), max_size=3),
                    st.floats(allow_nan=True, allow_infinity=True))


def run_or_refusal(engine, fn, *args, **kwargs):
    """``fn(...)``, or None when ``engine`` refuses the combination by name."""
    try:
        return fn(*args, engine=engine, **kwargs)
    except ValueError as exc:
        if engine in ("auto", "full") or "engine" not in str(exc):
            raise
        return None


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 60),
       st.one_of(st.floats(0.0, 50.0), st.tuples(st.floats(0.0, 50.0), st.floats(0.0, 50.0))), st.integers(0, 2**31))
def test_any_valid_run_ends_in_a_documented_outcome(backend, engine, k, p, steps, lr, seed):
    model = sn.Model(k, p, shortcut=bool(seed % 2))
    rng = np.random.default_rng(seed)
    w_star, a_star = rng.normal(size=p), rng.normal(size=k)
    w0 = sn.init_first_layer(model, "zero" if model.has_shortcut else "sphere", rng)
    a0 = sn.init_second_layer(model, a_star, rng)
    res = run_or_refusal(engine, sn.train, model, w_star, a_star, w0, a0, steps=steps, lr=lr, backend=backend)
    if res is None:
        return
    assert res.outcome in sn.OUTCOMES
    assert res.steps <= steps
    if res.outcome != "diverged":
        assert np.isfinite(res.w).all() and np.isfinite(res.a).all() and math.isfinite(res.loss)
    check_run(model, w_star, a_star, w0, a0, lr, steps, res, backend)


def check_run(model, w_star, a_star, w0, a0, lr, steps, res, backend):
    """The run against the definitions: its first step, its stop and its outcome."""
    lr_w, lr_a = (lr, lr) if np.isscalar(lr) else lr
    hist = res.history
    assert hist["step"][0] == 0 and hist["step"][-1] == res.steps and hist["loss"][-1] == res.loss
    # (the NumPy engine sums its batch of trials in another order than the one-state reference)
    assert hist["loss"][0] == pytest.approx(sn.population_loss(model, w0, a0, w_star, a_star, backend=backend),
                                            rel=1e-13, abs=1e-300)
    if res.steps >= 1 and hist["step"][1] == 1 and np.isfinite(hist["loss"][1]):
        g_w, g_a = sn.population_grad(model, w0, a0, w_star, a_star, backend=backend)
        w1, a1 = w0 - lr_w * g_w, a0 - lr_a * g_a
        if np.any(w1 + model.s) and np.all(np.isfinite(w1)) and np.all(np.isfinite(a1)):
            want = sn.population_loss(model, w1, a1, w_star, a_star, backend=backend)
            assert hist["loss"][1] == pytest.approx(want, rel=1e-12, abs=1e-300)
    # Stopped early only at the tolerance or by diverging; steps_to_tol is where L <= tol first.
    if res.outcome != "diverged" and res.steps < steps:
        assert res.loss <= 1e-10 and res.steps_to_tol == res.steps
    below = np.flatnonzero(hist["loss"] <= 1e-10)
    assert res.steps_to_tol == (int(hist["step"][below[0]]) if below.size else -1)
    phi = sn.angle(res.w + model.s, w_star + model.s, backend="numpy") if np.any(res.w + model.s) else np.nan
    if np.isfinite(res.loss) and np.all(np.isfinite(res.w)) and np.isfinite(phi):
        assert res.phi == pytest.approx(phi, rel=1e-12, abs=1e-15)
        rule = sn.outcomes.classify(model, res.w[None], res.a[None], w_star[None], a_star[None],
                                    np.array([res.loss]), np.array([res.phi]))
        assert sn.OUTCOMES[int(rule[0])] == res.outcome


optimizers = st.one_of(
    st.builds(lambda lr: sn.optim.gd(lr), st.floats(0.0, 5.0)),
    st.builds(lambda lr, beta, nesterov: sn.optim.momentum(lr, beta=beta, nesterov=nesterov), st.floats(0.0, 5.0),
              st.floats(0.0, 0.999), st.booleans()),
    st.builds(lambda lr, b1, b2, eps: sn.optim.adam(lr, beta1=b1, beta2=b2, eps=eps), st.floats(0.0, 5.0),
              st.floats(0.0, 0.999), st.floats(0.0, 0.9999), st.floats(1e-12, 1.0)))
sources = st.one_of(
    st.just(dict()),
    st.builds(lambda b, dtype: dict(gradient="sampled", batch_size=b, dtype=dtype), st.integers(1, 40),
              st.sampled_from([np.float32, np.float64])),
    st.builds(lambda n, b, dtype: dict(gradient="empirical", n_train=n, batch_size=None if b > n else b, dtype=dtype),
              st.integers(1, 60), st.integers(1, 61), st.sampled_from([np.float32, np.float64])))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 30), optimizers, sources, st.integers(0, 2**64 - 1),
       st.integers(1, 3))
def test_any_optimizer_and_source_ends_in_a_documented_outcome(backend, engine, k, p, steps, optimizer, source, seed,
                                                               trials):
    model = sn.Model(k, p, shortcut=bool(seed % 2), normalize=bool(seed % 3))
    rng = np.random.default_rng(seed % 2**32)
    w_star, a_star = rng.normal(size=(trials, p)), rng.normal(size=(trials, k))
    w0 = sn.init_first_layer(model, "zero" if model.has_shortcut else "sphere", rng, size=trials)
    a0 = sn.init_second_layer(model, a_star, rng, size=trials)
    out = run_or_refusal(engine, sn.run_trials, model, w_star, a_star, w0, a0, steps=steps, optimizer=optimizer,
                         backend=backend, seed=seed if source else None, **source)
    if out is None:
        return
    assert all(o in sn.OUTCOMES for o in out.outcome) and (np.asarray(out.steps) <= steps).all()
    # each trial is the run train makes from the trial's own seed
    for b in range(trials):
        seed_kw = dict(seed=sn.trial_seed(seed, b)) if source else {}
        res = sn.train(model, w_star[b], a_star[b], w0[b], a0[b], steps=steps, optimizer=optimizer, backend=backend,
                       engine=engine, **seed_kw, **source)
        assert res.outcome in sn.OUTCOMES and res.steps <= steps
        if res.outcome != "diverged":
            assert np.isfinite(res.w).all() and np.isfinite(res.a).all() and math.isfinite(res.loss)
        assert out.outcome[b] == res.outcome and out.steps[b] == res.steps


@FUZZ
@given(garbage, st.sampled_from(["steps", "lr", "tol", "record_every", "gradient", "backend", "threads",
                                 "optimizer", "engine"]))
def test_garbage_options_are_refused_by_name(value, option):
    model = sn.Model(3, 2)
    kwargs = dict(steps=5, lr=0.1)
    assume(value is not None)  # None is the documented default of several options
    # Short text can spell a valid choice ("cpp", "gd"...): those are not garbage.
    valid = {"backend": sn.backends(), "engine": ["auto", "full", "reduced"],
             "gradient": ["population", "sampled", "empirical"]}
    assume(not (isinstance(value, str) and value in valid.get(option, ())))
    if option in ("lr", "tol") and isinstance(value, float) and value >= 0:
        value = -1.0 - value  # a non-negative float is a valid rate or tolerance; inf stays inf
    kwargs[option] = value
    with pytest.raises((ValueError, TypeError), match=option):
        sn.train(model, np.ones(2), np.ones(3), np.zeros(2), np.zeros(3), **kwargs)


@FUZZ
@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 2**32), st.integers(1, 5))
def test_initializations_have_their_support(k, p, seed, size):
    model = sn.Model(k, p, shortcut=False)  # the sphere start of the plain CNN
    rng = np.random.default_rng(seed)
    a_star = rng.normal(size=k)
    w = sn.init_first_layer(model, "sphere", rng, size=size)
    assert w.shape == (size, p)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, rtol=1e-12)
    assert not sn.init_first_layer(sn.Model(k, p), "zero", rng).any()
    a = sn.init_second_layer(model, a_star, rng, size=size)
    assert a.shape == (size, k)
    assert (np.linalg.norm(a, axis=1) <= abs(a_star.sum()) / math.sqrt(k) * (1 + 1e-12)).all()


@FUZZ
@given(garbage)
def test_unknown_initializations_are_refused(kind):
    with pytest.raises((ValueError, TypeError), match="kind"):
        sn.init_first_layer(sn.Model(3, 2), kind, np.random.default_rng(0))


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(hnp.arrays(np.float64, st.integers(1, 10), elements=st.floats(-1e3, 1e3)))
def test_spurious_optimum_solves_its_linear_system(backend, a_star):
    k = a_star.shape[0]
    model = sn.Model(k, 3)
    a_sp = sn.spurious_optimum(model, a_star, backend=backend)
    ones = np.ones((k, k))
    lhs = (ones + (math.pi - 1.0) * np.eye(k)) @ a_sp
    rhs = (ones - np.eye(k)) @ a_star
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-12 * max(1.0, np.abs(a_star).sum() * k))
