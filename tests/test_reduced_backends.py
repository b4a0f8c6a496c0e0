"""The compiled and Numba reduced engines (cpp/shortcutnet/reduced_engine.hpp,
backends/numba_reduced.py) against the NumPy reference of the same specification
(docs/reduced.md): the same map, so agreement to rounding everywhere."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import shortcutnet as sn
from reduced_cases import (SHORTCUTS, above_floor, loss_scale, make_model, optimizer, random_problem,
                           relative_error, run_reduced, schedule)
from shortcutnet.backends import reference_reduced
from test_reduced_reference import DEGENERATE, _degenerate



def _module(name):
    if name not in sn.backends():
        pytest.skip(f"the {name} backend is not available here")
    if name == "cpp":
        from shortcutnet.backends import compiled
        return compiled
    from shortcutnet.backends import numba_reduced
    return numba_reduced


@pytest.fixture(params=["cpp", "numba"])
def engine(request):
    """The run_reduced of a compiled backend."""
    return _module(request.param)


OPTIMIZERS = ("gd", "heavy-ball", "nesterov")
SCHEDULES = ("constant", "table", "callable")
CASES = [(shortcut, normalize, OPTIMIZERS[i % 3], SCHEDULES[(i // 3 + i) % 3])
         for i, (shortcut, normalize) in enumerate(itertools.product(SHORTCUTS, (True, False)))]


def case_id(case):
    shortcut, normalize, opt, sched = case
    return f"s_{shortcut}-{'norm' if normalize else 'raw'}-{opt}-{sched}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_trajectories_agree_with_the_reference(engine, rng, case, measured):
    shortcut, normalize, opt_kind, sched = case
    k, p = int(rng.integers(3, 15)), int(rng.integers(2, 9))
    model = make_model(rng, k, p, shortcut, normalize)
    w_star, a_star, w0, a0 = random_problem(rng, model)
    opt = optimizer(opt_kind, schedule(sched, 0.1 if opt_kind == "gd" else 0.03, rng))
    steps = 700
    want = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, opt, steps)
    got = run_reduced(engine, model, w_star, a_star, w0, a0, opt, steps)
    hg, hw = got[-1], want[-1]
    np.testing.assert_array_equal(hg[:, 0], hw[:, 0])
    keep = above_floor(hw[:, 2], hw[:, 1], loss_scale(model, w_star, a_star))
    assert keep.sum() >= 20
    for i, name in ((1, "loss"), (2, "phi"), (4, "a_err")):
        worst = relative_error(hg[keep, i], hw[keep, i]).max()
        measured.worst(f"reduced compiled vs numpy: {name} (relative)", worst)
        assert worst <= 1e-12, (name, worst)
    np.testing.assert_allclose(hg[:, 3], hw[:, 3], rtol=1e-12, atol=1e-14 * np.abs(hw[:, 3]).max())
    np.testing.assert_allclose(hg[:, 5], hw[:, 5], rtol=1e-12, atol=1e-15)  # |w|, 0 at a ResNet's start
    assert np.isnan(hg[:, 6]).all()
    for i in (0, 3, 4):  # outcome, steps_to_tol, steps
        np.testing.assert_array_equal(got[i], want[i])
    np.testing.assert_allclose(got[5], want[5], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[6], want[6], rtol=1e-12, atol=1e-14)


def _batch(rng, normalize, B=120):
    k, p = 9, 5
    model = sn.Model(k, p, shortcut=rng.standard_normal(p) * 0.3, normalize=normalize)
    w_star = rng.standard_normal((B, p)) / math.sqrt(p)
    a_star = rng.standard_normal(k)  # shared by every trial
    w0 = rng.standard_normal((B, p))
    a0 = sn.init_second_layer(model, a_star, rng, size=B)
    return model, w_star, a_star, w0, a0


@pytest.mark.parametrize("normalize", [True, False], ids=["norm", "raw"])
def test_batches_agree_with_the_reference(engine, normalize):
    # A fixed problem (not the per-test rng) that ends in more than one outcome.
    model, w_star, a_star, w0, a0 = _batch(np.random.default_rng(3), normalize)
    opt = sn.optim.momentum(0.04, beta=0.5, nesterov=True)
    want = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, opt, 1200, tol=1e-10, record_every=0)
    got = run_reduced(engine, model, w_star, a_star, w0, a0, opt, 1200, tol=1e-10, record_every=0)
    np.testing.assert_array_equal(got[0], want[0])
    assert len(set(want[0].tolist())) >= 2  # more than one outcome among the trials
    np.testing.assert_array_equal(got[3], want[3])
    np.testing.assert_array_equal(got[4], want[4])
    np.testing.assert_allclose(got[2], want[2], rtol=1e-10)
    away = want[1] > 1e-5
    np.testing.assert_allclose(got[1][away], want[1][away], rtol=1e-12)
    np.testing.assert_allclose(got[5], want[5], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(got[6], want[6], rtol=1e-11, atol=1e-13)
    assert np.isnan(got[7]).all() and got[8] is None


def test_results_do_not_depend_on_the_thread_count(engine, rng):
    model, w_star, a_star, w0, a0 = _batch(rng, True, B=37)
    opt = sn.optim.gd((0.1, 0.05))
    runs = [run_reduced(engine, model, w_star, a_star, w0, a0, opt, 400, tol=1e-12, record_every=0, threads=t)
            for t in (1, 2, 3)]
    for other in runs[1:]:
        for x, y in zip(runs[0][:8], other[:8]):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-teacher", "own-teachers"])
def test_waves_of_trials_give_what_one_wave_gives(rng, monkeypatch, shared):
    numba_reduced = _module("numba")
    model, w_star, a_star, w0, a0 = _batch(rng, False, B=37)
    a_star = a_star if shared else np.tile(a_star, (37, 1))
    w_star = w_star if not shared else w_star[0]
    opt = sn.optim.momentum(0.03)
    whole = run_reduced(numba_reduced, model, w_star, a_star, w0, a0, opt, 300, record_every=0)
    monkeypatch.setattr(numba_reduced, "WAVE", 8)
    waves = run_reduced(numba_reduced, model, w_star, a_star, w0, a0, opt, 300, record_every=0)
    for x, y in zip(whole[:8], waves[:8]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_starts_agree_with_the_reference(engine, rng, name):
    model, w_star, a_star, w0, a0 = _degenerate(rng, name)
    opt = sn.optim.momentum(0.05, beta=0.3)
    want = run_reduced(reference_reduced, model, w_star, a_star, w0, a0, opt, 300)
    got = run_reduced(engine, model, w_star, a_star, w0, a0, opt, 300)
    scale = max(1.0, loss_scale(model, w_star, a_star))
    np.testing.assert_array_equal(got[-1][:, 0], want[-1][:, 0])
    np.testing.assert_allclose(got[-1][:, 1:6], want[-1][:, 1:6], rtol=1e-12, atol=1e-14 * scale)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[5], want[5], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[6], want[6], rtol=1e-12, atol=1e-14)


def test_a_trial_stopped_at_step_0_returns_its_start_exactly(engine, rng):
    model, w_star, a_star, w0, a0 = _batch(rng, False, B=3)
    out = run_reduced(engine, model, w_star, a_star, w0, a0, sn.optim.gd(0.1), 10, tol=1e6, record_every=0)
    np.testing.assert_array_equal(out[4], [0, 0, 0])
    np.testing.assert_array_equal(out[5], w0)
    np.testing.assert_array_equal(out[6], a0)


def test_bad_options_are_refused(engine):
    model = sn.Model(3, 2)
    th = sn.Thresholds().as_tuple()
    args = (model.s, True, np.zeros((2, 2)), np.ones((2, 3)), np.ones((1, 2)), np.ones((1, 3)), np.array([[0.1, 0.1]]),
            5, 0.0, th)
    with pytest.raises(ValueError, match="optimizer: .*gd.*momentum.*got 'adam'"):
        engine.run_reduced(*args, ("adam", 0.0, False, 0.9, 0.999, 1e-8), 0, None)
    with pytest.raises(ValueError, match="record_every: .*B = 2"):
        engine.run_reduced(*args, sn.optim.gd(0.1).engine_spec(), 1, None)


def test_the_numba_backend_exports_it():
    _module("numba")
    from shortcutnet.backends import numba_backend, reference

    assert numba_backend.run_reduced.__module__ == numba_backend.__name__
    model, w_star, a_star, w0, a0 = _batch(np.random.default_rng(0), True, B=4)
    got = run_reduced(numba_backend, model, w_star, a_star, w0, a0, sn.optim.gd(0.1), 50, record_every=0)
    want = run_reduced(reference, model, w_star, a_star, w0, a0, sn.optim.gd(0.1), 50, record_every=0)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-12)
