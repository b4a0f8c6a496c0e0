"""A callable lr is tabulated a window of steps at a time as the trials reach them: the memory does
not grow with steps, and the runs are bit for bit those of the same rates given as a table."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet import schedules
from train_problems import BACKENDS, available, problem

SOURCES = [dict(), dict(gradient="sampled", batch_size=16, seed=3), dict(gradient="empirical", n_train=40, seed=3),
           dict(gradient="empirical", n_train=40, batch_size=16, seed=3)]


def rate(t):
    return (0.1 + 0.01 * np.sin(t), 0.12 - 0.02 * np.cos(0.5 * t))


def as_table(steps):
    return sn.piecewise(list(range(1, steps)), [rate(t) for t in range(steps)])


class Recorder:
    def __init__(self):
        self.asked = []

    def __call__(self, t):
        self.asked.append(t)
        return rate(t)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_callable_is_asked_only_for_the_steps_the_run_reaches(backend):
    """A run that converges after a few hundred steps of a million asks for about one window."""
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    model = sn.Model(6, 4)
    w_star, a_star, w0, a0 = problem(model, 2, size=3)
    w0 = np.zeros_like(w0)  # the ResNet from w0 = 0 converges
    lr = Recorder()
    out = sn.run_trials(model, w_star, a_star, w0, a0, steps=10**6, lr=lr, tol=1e-8, backend=backend)
    assert np.all(out.steps < 5000) and np.all(out.outcome == "global")
    assert len(lr.asked) == len(set(lr.asked)) and max(lr.asked) < schedules.WINDOW_STEPS


@pytest.mark.parametrize("kw", SOURCES + [dict(engine="full")],
                         ids=["population", "sampled", "empirical", "minibatch", "population-full"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_windows_give_the_bits_of_the_table(backend, kw, monkeypatch):
    """Windows of 7 steps (trials wait at each window's end for the next) against the table; the
    population gradient in the engine "auto" takes (the reduced one on non-overlapping patches)
    and in the full engine's lanes."""
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    monkeypatch.setattr(schedules, "WINDOW_STEPS", 7)
    for model in (sn.Model(6, 4), sn.Model(5, 4, stride=2), sn.Model(6, 4, normalize=False)):
        # Enough trials to fill every lane of the compiled engine's two runners (whose common
        # step runs only when no lane is empty).
        w_star, a_star, w0, a0 = problem(model, 5, size=4 if kw.get("gradient") else 36)
        steps = 40
        lr = Recorder()
        opt = sn.optim.momentum(lr, beta=0.5)
        windowed = sn.run_trials(model, w_star, a_star, w0, a0, steps=steps, optimizer=opt, tol=0.0, backend=backend,
                                 **kw)
        table = sn.run_trials(model, w_star, a_star, w0, a0, steps=steps, tol=0.0, backend=backend,
                              optimizer=sn.optim.momentum(as_table(steps), beta=0.5), **kw)
        assert sorted(set(lr.asked)) == list(range(steps))
        for name in ("w", "a", "loss", "phi", "steps", "outcome"):
            np.testing.assert_array_equal(getattr(windowed, name), getattr(table, name))
        one = sn.train(model, w_star[0], a_star[0], w0[0], a0[0], steps=steps, optimizer=opt, tol=0.0,
                       backend=backend, record_every=3, **kw)
        ref = sn.train(model, w_star[0], a_star[0], w0[0], a0[0], steps=steps, tol=0.0, backend=backend,
                       optimizer=sn.optim.momentum(as_table(steps), beta=0.5), record_every=3, **kw)
        for name in one.history:
            np.testing.assert_array_equal(one.history[name], ref.history[name])


def test_a_failing_callable_names_its_step_in_a_later_window(monkeypatch):
    monkeypatch.setattr(schedules, "WINDOW_STEPS", 5)
    model = sn.Model(6, 4)
    w_star, a_star, w0, a0 = problem(model, 1, size=2)
    with pytest.raises(ValueError, match="step 12"):
        sn.run_trials(model, w_star, a_star, w0, a0, steps=30, lr=lambda t: -1.0 if t == 12 else 0.1, tol=0.0)


@pytest.mark.parametrize("cached", [None, 7], ids=["kept", "asked-again"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_reduced_engine_windows_across_groups_of_trials(backend, cached, monkeypatch):
    """The reduced engine starts trials a few lanes at a time, so it asks for the windows from step
    0 again once the earlier trials are through: kept windows are evaluated once, and windows asked
    again (a cache of one window) give the same bits."""
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    monkeypatch.setattr(schedules, "WINDOW_STEPS", 7)
    if cached is not None:
        monkeypatch.setattr(schedules, "CACHED_STEPS", cached)
    for model in (sn.Model(6, 4), sn.Model(6, 4, normalize=False)):
        w_star, a_star, w0, a0 = problem(model, 9, size=80)
        steps = 47
        lr = Recorder()
        windowed = sn.run_trials(model, w_star, a_star, w0, a0, steps=steps, lr=lr, tol=0.0, backend=backend,
                                 engine="reduced", threads=2)
        table = sn.run_trials(model, w_star, a_star, w0, a0, steps=steps, lr=as_table(steps), tol=0.0,
                              backend=backend, engine="reduced", threads=1)
        assert windowed.engine == "reduced"
        assert sorted(set(lr.asked)) == list(range(steps))
        if cached is None:
            assert len(lr.asked) == steps
        for name in ("w", "a", "loss", "phi", "steps", "steps_to_tol", "outcome"):
            np.testing.assert_array_equal(getattr(windowed, name), getattr(table, name))
