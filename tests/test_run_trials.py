"""run_trials(): agreement with train(), across backends and thread counts; shapes; Ctrl-C."""

import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet import outcomes
from ctrl_c import CtrlC
from train_problems import BACKENDS, available, problem


def batch(model, seed, size):
    return problem(model, seed, size=size)


def test_train_and_run_trials_agree():
    model = sn.Model(10, 5, shortcut=False)
    w_star, a_star, w0, a0 = batch(model, 7, 6)
    out = sn.run_trials(model, w_star, a_star, w0, a0, steps=800, lr=(0.1, 0.12))
    for b in range(6):
        res = sn.train(model, w_star[b], a_star[b], w0[b], a0[b], steps=800, lr=(0.1, 0.12), record_every=800)
        assert (res.outcome, res.steps, res.steps_to_tol) == (out.outcome[b], out.steps[b], out.steps_to_tol[b])
        assert np.array_equal(res.w, out.w[b]) and np.array_equal(res.a, out.a[b])
        assert res.loss == out.loss[b] and res.phi == out.phi[b]


@pytest.mark.parametrize("shortcut", [True, False])
def test_backends_agree(shortcut):
    model = sn.Model(12, 6, shortcut=shortcut)
    w_star, a_star, w0, a0 = batch(model, 8, 40)
    results = {b: sn.run_trials(model, w_star, a_star, w0, a0, steps=1500, lr=0.1, backend=b)
               for b in BACKENDS if available(b)}
    first = results[next(iter(results))]
    for other in results.values():
        np.testing.assert_array_equal(other.outcome, first.outcome)
        np.testing.assert_array_equal(other.steps_to_tol, first.steps_to_tol)
        np.testing.assert_allclose(other.w, first.w, rtol=0, atol=1e-12)
        np.testing.assert_allclose(other.a, first.a, rtol=0, atol=1e-12)
        np.testing.assert_allclose(other.loss, first.loss, rtol=1e-9, atol=1e-20)
        np.testing.assert_allclose(other.phi, first.phi, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_thread_count_does_not_change_results(backend):
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    model = sn.Model(10, 5, shortcut=False)
    w_star, a_star, w0, a0 = batch(model, 9, 64)
    one, two, three = (sn.run_trials(model, w_star, a_star, w0, a0, steps=600, lr=0.1, threads=t, backend=backend)
                       for t in (1, 2, 3))
    for other in (two, three):
        for field in ("outcome_code", "phi", "loss", "steps_to_tol", "steps", "w", "a"):
            assert np.array_equal(getattr(one, field), getattr(other, field)), field


def test_shared_teacher_and_summary():
    model = sn.Model(8, 4)
    w_star, a_star, w0, a0 = batch(model, 10, 5)
    shared = sn.run_trials(model, w_star[0], a_star[0], w0, a0, steps=300, lr=0.1)
    explicit = sn.run_trials(model, np.tile(w_star[0], (5, 1)), np.tile(a_star[0], (5, 1)), w0, a0, steps=300, lr=0.1)
    assert np.array_equal(shared.w, explicit.w)
    summary = shared.summary()
    assert set(summary) == {"global", "spurious", "unconverged", "diverged"} and sum(summary.values()) == 5
    assert shared.rate("global") == summary["global"] / 5
    assert "TrialsResult(B=5" in repr(shared)


def test_python_rule_mirrors_the_engine():
    # steps=1 with lr=0 leaves every state in place, so the engine classifies the given states.
    model = sn.Model(10, 5, shortcut=False)
    rng = np.random.default_rng(2)
    w_star, a_star, w0, a0 = batch(model, 11, 200)
    out = sn.run_trials(model, w_star, a_star, w0, a0, steps=3000, lr=0.1)
    u_star = w_star + model.s
    a_sp = np.array([sn.spurious_optimum(model, x) for x in a_star])
    states_w = np.concatenate([out.w, u_star * 2.0, -u_star + 1e-9 * rng.normal(size=u_star.shape), w0])
    states_a = np.concatenate([out.a, a_star + 1e-6, a_sp + 1e-7, 1e7 * a0])
    teacher_w, teacher_a = np.tile(w_star, (4, 1)), np.tile(a_star, (4, 1))
    th = sn.Thresholds()
    engine = sn.run_trials(model, teacher_w, teacher_a, states_w, states_a, steps=1, lr=0.0, tol=0.0, thresholds=th)
    mirror = outcomes.classify(model, states_w, states_a, teacher_w, teacher_a, engine.loss, engine.phi, th)
    np.testing.assert_array_equal(mirror, engine.outcome_code)
    assert set(engine.outcome[200:400]) == {"global"} and set(engine.outcome[400:600]) <= {"spurious", "unconverged"}
    assert np.mean(engine.outcome[400:600] == "spurious") > 0.5


def test_bad_batches():
    model = sn.Model(6, 3)
    w_star, a_star, w0, a0 = batch(model, 0, 4)
    with pytest.raises(ValueError, match="a0"):
        sn.run_trials(model, w_star, a_star, w0, a0[:3], steps=10, lr=0.1)
    with pytest.raises(ValueError, match="w0"):
        sn.run_trials(model, w_star, a_star, w0[0], a0, steps=10, lr=0.1)
    with pytest.raises(ValueError, match="w_star"):
        sn.run_trials(model, w_star[:2], a_star, w0, a0, steps=10, lr=0.1)
    with pytest.raises(ValueError, match="a_star"):
        sn.run_trials(model, w_star, a_star[:, :5], w0, a0, steps=10, lr=0.1)
    with pytest.raises(ValueError, match="trial 2"):
        sn.run_trials(model, w_star, a_star, np.where(np.arange(4)[:, None] == 2, -model.s, w0), a0, steps=10, lr=0.1)
    with pytest.raises(ValueError, match="w0"):
        sn.run_trials(model, w_star, a_star, np.full_like(w0, np.nan), a0, steps=10, lr=0.1)
    with pytest.raises(ValueError, match="steps"):
        sn.run_trials(model, w_star, a_star, w0, a0, steps=0, lr=0.1)
    with pytest.raises(ValueError, match="threads"):
        sn.run_trials(model, w_star, a_star, w0, a0, steps=10, lr=0.1, threads=0)
    with pytest.raises(ValueError, match="step 4"):
        sn.run_trials(model, w_star, a_star, w0, a0, steps=10, lr=lambda t: -1.0 if t == 4 else 0.1)


# Steps that take minutes uninterrupted (lr tiny and tol 0: nothing stops early) in each engine.
LONG_RUN_STEPS = {"full": 400_000, "reduced": 400_000_000}


@pytest.mark.parametrize("backend", ["cpp", "numba"])
@pytest.mark.parametrize("engine", ["full", "reduced"])
def test_ctrl_c_stops_a_long_run(backend, engine):
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    model = sn.Model(20, 10, shortcut=False)
    w_star, a_star, w0, a0 = batch(model, 1, 500)
    sn.run_trials(model, w_star, a_star, w0, a0, steps=2, lr=0.1, backend=backend, engine=engine)  # compiled first
    with CtrlC(after=0.3) as ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            sn.run_trials(model, w_star, a_star, w0, a0, steps=LONG_RUN_STEPS[engine], lr=1e-7, tol=0.0,
                          backend=backend, engine=engine)
    assert ctrl_c.latency < 1.0


@pytest.mark.parametrize("engine", ["full", "reduced"])
def test_ctrl_c_stops_a_long_train(engine):
    model = sn.Model(20, 10, shortcut=False)
    w_star, a_star, w0, a0 = problem(model, 1)
    with CtrlC(after=0.3) as ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            sn.train(model, w_star, a_star, w0, a0, steps=LONG_RUN_STEPS[engine] * 10, lr=1e-7, tol=0.0,
                     record_every=1000, engine=engine)
    assert ctrl_c.latency < 1.0


# A large model (the lanes of the compiled engine), an overlapping one (a population step costs
# (2k - 1) shifts of the filter), and SGD and full-batch steps on the overlapping one.
LATENCY_CASES = {
    "large": (dict(k=400, p=300), dict()),
    "overlapping": (dict(k=60, p=60, stride=30), dict()),
    "overlapping-sgd": (dict(k=60, p=60, stride=30), dict(gradient="sampled", batch_size=64, seed=1)),
    "overlapping-train-set": (dict(k=60, p=60, stride=30), dict(gradient="empirical", n_train=256, seed=1)),
}


@pytest.mark.parametrize("case", LATENCY_CASES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_latency_on_large_and_overlapping_models(backend, case):
    """KeyboardInterrupt within 1.5 s of Ctrl-C, however much a step costs."""
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    shape, kw = LATENCY_CASES[case]
    model = sn.Model(**shape)
    w_star, a_star, w0, a0 = batch(model, 3, 4)
    sn.run_trials(model, w_star, a_star, w0, a0, steps=1, lr=1e-7, backend=backend, **kw)  # compiled before timing
    with CtrlC(after=0.5) as ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            sn.run_trials(model, w_star, a_star, w0, a0, steps=10**9, lr=1e-7, tol=0.0, backend=backend, **kw)
    assert ctrl_c.latency < 1.5, f"{ctrl_c.latency:.2f} s from Ctrl-C to KeyboardInterrupt"


@pytest.mark.parametrize("engine", ["full", "reduced"])
def test_chunks_lanes_and_threads_do_not_change_results(engine):
    # Many trials make the engine pause at chunk boundaries (their length depends on B and on
    # the thread count) and refill its lanes as trials stop at different steps.
    model = sn.Model(5, 3, shortcut=False)
    w_star, a_star, w0, a0 = batch(model, 12, 1200)
    one = sn.run_trials(model, w_star, a_star, w0, a0, steps=1200, lr=0.2, threads=1, engine=engine)
    two = sn.run_trials(model, w_star, a_star, w0, a0, steps=1200, lr=0.2, threads=2, engine=engine)
    assert len(set(one.steps.tolist())) > 10  # trials stop at many different steps
    for field in ("outcome_code", "phi", "loss", "steps_to_tol", "steps", "w", "a"):
        assert np.array_equal(getattr(one, field), getattr(two, field)), field
    for b in range(0, 1200, 97):
        res = sn.train(model, w_star[b], a_star[b], w0[b], a0[b], steps=1200, lr=0.2, record_every=1200,
                       engine=engine)
        assert (res.steps, res.outcome) == (one.steps[b], one.outcome[b])
        assert np.array_equal(res.w, one.w[b]) and np.array_equal(res.a, one.a[b])


@pytest.mark.parametrize("normalize, stride", [(False, None), (True, 2), (False, 2)])
def test_other_architectures(normalize, stride):
    model = sn.Model(6, 4, normalize=normalize, stride=stride)
    w_star, a_star, w0, a0 = batch(model, 13, 6)
    lr = 0.05 if normalize else 0.01
    results = {b: sn.run_trials(model, w_star, a_star, w0, a0, steps=200, lr=lr, backend=b)
               for b in BACKENDS if available(b)}
    first = next(iter(results.values()))
    # The overlapping-patch reference sums its terms in another order; 200 steps carry that
    # rounding difference to ~1e-11 in the un-normalized model.
    atol = 1e-12 if stride is None else 1e-9
    for other in results.values():
        np.testing.assert_array_equal(other.outcome, first.outcome)
        np.testing.assert_allclose(other.w, first.w, rtol=0, atol=atol)
        np.testing.assert_allclose(other.a, first.a, rtol=0, atol=atol)
    for b in range(3):
        res = sn.train(model, w_star[b], a_star[b], w0[b], a0[b], steps=200, lr=lr, record_every=200)
        assert np.array_equal(res.w, first.w[b]) and np.array_equal(res.a, first.a[b])
        assert res.loss < sn.population_loss(model, w0[b], a0[b], w_star[b], a_star[b])


# The full engine's lanes (population gradient, non-overlapping), its one-trial path (overlapping
# patches; a stochastic source) and the reduced engine.
TOL_CASES = {
    "full-lanes": (dict(k=6, p=4), dict(engine="full")),
    "full-one-trial": (dict(k=6, p=4, stride=2), dict(engine="full")),
    "full-sampled": (dict(k=6, p=4), dict(engine="full", gradient="sampled", batch_size=256, seed=5)),
    "reduced": (dict(k=6, p=4), dict(engine="reduced")),
}


@pytest.mark.parametrize("case", list(TOL_CASES))
def test_steps_to_tol_is_the_first_step_at_the_tolerance(backend, case):
    """steps_to_tol is the first step whose population loss is at most tol, where the run stops
    (docs/training.md section 4), read off the trajectory of every step."""
    shape, kw = TOL_CASES[case]
    model = sn.Model(**shape)
    w_star, a_star, w0, a0 = batch(model, 21, 3)
    w0 = np.zeros_like(w0)  # the ResNet from w0 = 0: the loss falls
    for b in range(3):
        tol = 0.5 * sn.population_loss(model, w0[b], a0[b], w_star[b], a_star[b])
        res = sn.train(model, w_star[b], a_star[b], w0[b], a0[b], steps=400, lr=0.05, tol=tol, record_every=1,
                       backend=backend, **kw)
        steps, loss = res.history["step"], res.history["loss"]
        assert np.array_equal(steps, np.arange(steps.size))
        first = int(np.flatnonzero(loss <= tol)[0])
        assert res.steps_to_tol == res.steps == first > 0
        # One trial with train's seed itself (an integer seed would name trial_seed(seed, 0)).
        trial_kw = dict(kw, seed=np.array([kw["seed"]], dtype=np.uint64)) if "seed" in kw else kw
        out = sn.run_trials(model, w_star[b:b + 1], a_star[b:b + 1], w0[b:b + 1], a0[b:b + 1], steps=400, lr=0.05,
                            tol=tol, backend=backend, **trial_kw)
        assert out.steps_to_tol[0] == out.steps[0] == first
