"""train / run_trials refuse bad optimizer, gradient-source and seed arguments by name, on every
backend, and stop within about a second on Ctrl-C whatever the gradient source."""

import numpy as np
import pytest

import shortcutnet as sn
from ctrl_c import CtrlC
from train_problems import BACKENDS, available, problem

MODEL = sn.Model(6, 3)


def args(size=None):
    return problem(MODEL, 0, size=size)


def backends():
    return [pytest.param(b, marks=pytest.mark.skipif(not available(b), reason=f"{b} backend not available"))
            for b in BACKENDS]


CASES = [
    (ValueError, "beta", lambda: dict(optimizer=sn.optim.momentum(0.1, beta=1.0))),
    (ValueError, "beta", lambda: dict(optimizer=sn.optim.momentum(0.1, beta=-0.1))),
    (ValueError, "beta2", lambda: dict(optimizer=sn.optim.adam(0.1, beta2=1.0))),
    (ValueError, "beta1", lambda: dict(optimizer=sn.optim.adam(0.1, beta1=1.5))),
    (ValueError, "eps", lambda: dict(optimizer=sn.optim.adam(0.1, eps=0.0))),
    (ValueError, "eps", lambda: dict(optimizer=sn.optim.adam(0.1, eps=-1e-8))),
    (TypeError, "momentum", lambda: dict(optimizer=sn.optim.momentum(0.1, mu=0.9))),
    (ValueError, "lr.*optimizer", lambda: dict(lr=0.1, optimizer=sn.optim.gd(0.1))),
    (ValueError, "lr.*optimizer", lambda: dict()),
    (TypeError, "optimizer", lambda: dict(optimizer="adam")),
    (ValueError, "batch_size", lambda: dict(lr=0.1, batch_size=8)),
    (ValueError, "n_train", lambda: dict(lr=0.1, n_train=8)),
    (ValueError, "seed", lambda: dict(lr=0.1, seed=3)),
    (ValueError, "batch_size", lambda: dict(lr=0.1, gradient="sampled")),
    (ValueError, "batch_size", lambda: dict(lr=0.1, gradient="sampled", batch_size=0)),
    (TypeError, "batch_size", lambda: dict(lr=0.1, gradient="sampled", batch_size=2.5)),
    (ValueError, "n_train", lambda: dict(lr=0.1, gradient="sampled", batch_size=4, n_train=10)),
    (ValueError, "n_train", lambda: dict(lr=0.1, gradient="empirical")),
    (ValueError, "n_train", lambda: dict(lr=0.1, gradient="empirical", n_train=0)),
    (ValueError, "batch_size", lambda: dict(lr=0.1, gradient="empirical", n_train=10, batch_size=11)),
    (ValueError, "seed", lambda: dict(lr=0.1, gradient="sampled", batch_size=4, seed=-1)),
    (ValueError, "seed", lambda: dict(lr=0.1, gradient="sampled", batch_size=4, seed=2**64)),
    (TypeError, "seed", lambda: dict(lr=0.1, gradient="sampled", batch_size=4, seed=1.5)),
    (ValueError, "gradient", lambda: dict(lr=0.1, gradient="online")),
    (TypeError, "gradient", lambda: dict(lr=0.1, gradient=1)),
    (TypeError, "dtype", lambda: dict(lr=0.1, gradient="sampled", batch_size=4, dtype=np.int32)),
    (ValueError, "dtype", lambda: dict(lr=0.1, dtype=np.float32)),
    (ValueError, "engine", lambda: dict(lr=0.1, engine="fast")),
]


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("error, name, make", CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_train_refuses(backend, error, name, make):
    with pytest.raises(error, match=name):
        sn.train(MODEL, *args(), steps=5, backend=backend, **make())


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("error, name, make", CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_run_trials_refuses(backend, error, name, make):
    with pytest.raises(error, match=name):
        sn.run_trials(MODEL, *args(size=3), steps=5, backend=backend, **make())


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("seed, error", [
    (np.array([1, 2]), ValueError),                  # wrong length
    (np.array([[1, 2, 3]]), ValueError),             # wrong shape
    (np.array([1.0, 2.0, 3.0]), TypeError),          # floats
    (np.array([True, False, True]), TypeError),      # booleans
    (np.array([1, -2, 3]), ValueError),              # negative
    (["a", "b", "c"], TypeError),
])
def test_run_trials_refuses_bad_seed_arrays(backend, seed, error):
    with pytest.raises(error, match="seed"):
        sn.run_trials(MODEL, *args(size=3), steps=5, lr=0.1, gradient="sampled", batch_size=4, seed=seed,
                      backend=backend)


def test_seed_arrays_of_any_integer_dtype_name_the_same_trials():
    kw = dict(steps=20, lr=0.1, gradient="sampled", batch_size=8, backend="numpy")
    ref = sn.run_trials(MODEL, *args(size=3), seed=np.array([5, 6, 7], dtype=np.uint64), **kw)
    for dtype in (np.int64, np.int32, np.uint16):
        other = sn.run_trials(MODEL, *args(size=3), seed=np.array([5, 6, 7], dtype=dtype), **kw)
        assert np.array_equal(ref.w, other.w)
    listed = sn.run_trials(MODEL, *args(size=3), seed=[5, 6, 7], **kw)
    assert np.array_equal(ref.w, listed.w)


@pytest.mark.parametrize("kw", [dict(gradient="sampled", batch_size=512), dict(gradient="empirical", n_train=20000),
                                dict(gradient="empirical", n_train=20000, batch_size=100),
                                dict(optimizer=sn.optim.adam(1e-7))],
                         ids=["sampled", "empirical", "minibatch", "adam"])
@pytest.mark.parametrize("call", ["run_trials", "train"])
def test_ctrl_c_stops_every_source(kw, call):
    if not available("cpp"):
        pytest.skip("cpp backend not available")
    model = sn.Model(20, 10, shortcut=False)
    kw = dict(kw)
    if "optimizer" not in kw:
        kw.update(lr=1e-7, seed=1)
    if call == "run_trials":
        w_star, a_star, w0, a0 = problem(model, 1, size=64)
        run = lambda: sn.run_trials(model, w_star, a_star, w0, a0, steps=10**7, tol=0.0, **kw)  # noqa: E731
    else:
        w_star, a_star, w0, a0 = problem(model, 1)
        run = lambda: sn.train(model, w_star, a_star, w0, a0, steps=10**7, tol=0.0, record_every=100, **kw)  # noqa: E731
    with CtrlC(after=0.3) as ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            run()
    assert ctrl_c.latency < 1.2
