"""What every optimizer promises: pure init/update over immutable plain data, checked options,
a decreasing loss on a quadratic, and the data the compiled engines take."""
import dataclasses
import math

import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet import optim

K, P = 3, 5

OPTIMIZERS = {
    "gd": lambda lr: optim.gd(lr),
    "momentum": lambda lr: optim.momentum(lr, beta=0.8),
    "nesterov": lambda lr: optim.momentum(lr, beta=0.8, nesterov=True),
    "adam": lambda lr: optim.adam(lr, beta1=0.8, beta2=0.99),
}
STATES = {optim.GDState, optim.MomentumState, optim.AdamState}


@pytest.fixture(params=list(OPTIMIZERS))
def make(request):
    return OPTIMIZERS[request.param]


def problem(rng):
    return rng.normal(size=P), rng.normal(size=K), rng.normal(size=P), rng.normal(size=K)


def state_arrays(state):
    return [x for x in state if isinstance(x, np.ndarray)]


def test_init_update_round_trip(make, rng):
    opt = make((0.1, 0.05))
    w, a, g_w, g_a = problem(rng)
    state = opt.init(w, a)
    assert type(state) in STATES and state.count == 0
    upd_w, upd_a, new = opt.update(g_w, g_a, state)
    assert type(new) is type(state) and new.count == 1
    assert upd_w.shape == w.shape and upd_a.shape == a.shape
    assert upd_w.dtype == upd_a.dtype == np.float64
    assert all(x.dtype == np.float64 for x in state_arrays(new))
    assert [x.shape for x in state_arrays(new)] == [x.shape for x in state_arrays(state)]
    # A descent step on the first update, for every optimizer here: upd has the sign of -g.
    assert np.all(upd_w * g_w < 0) and np.all(upd_a * g_a < 0)
    # Pure: the same state and gradients give the same result again.
    again = opt.update(g_w, g_a, state)
    np.testing.assert_array_equal(again[0], upd_w)
    np.testing.assert_array_equal(again[1], upd_a)
    for x, y in zip(again[2], new):
        np.testing.assert_array_equal(x, y)


def test_inputs_are_not_mutated(make, rng):
    opt = make(0.1)
    w, a, g_w, g_a = problem(rng)
    originals = [x.copy() for x in (w, a, g_w, g_a)]
    state = opt.update(g_w, g_a, opt.init(w, a))[2]
    before = [x.copy() for x in state_arrays(state)]
    upd_w, upd_a, _ = opt.update(g_w, g_a, state)
    for x, y in zip((w, a, g_w, g_a), originals):
        np.testing.assert_array_equal(x, y)
        assert x.flags.writeable
    for x, y in zip(state_arrays(state), before):
        np.testing.assert_array_equal(x, y)
    # The updates are the caller's own: writing into them changes no state.
    upd_w[:] = np.nan
    upd_a[:] = np.nan
    for x, y in zip(state_arrays(state), before):
        np.testing.assert_array_equal(x, y)


def test_state_and_optimizer_are_immutable(make, rng):
    opt = make(0.1)
    w, a, g_w, g_a = problem(rng)
    for state in (opt.init(w, a), opt.update(g_w, g_a, opt.init(w, a))[2]):
        with pytest.raises(AttributeError):
            state.count = 7
        for x in state_arrays(state):
            assert not x.flags.writeable
            with pytest.raises(ValueError):
                x[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        opt.lr = sn.constant(1.0)
    # The step-0 momentum buffer is a copy of the gradient, not the caller's array made read-only.
    assert g_w.flags.writeable and g_a.flags.writeable


def test_float32_and_lists_become_float64(make, rng):
    opt = make(0.1)
    w, a, g_w, g_a = problem(rng)
    state32 = opt.init(w.astype(np.float32), list(a))
    assert all(x.dtype == np.float64 for x in state_arrays(state32))
    got = opt.update(g_w.astype(np.float32), list(g_a), state32)
    want = opt.update(g_w.astype(np.float32).astype(np.float64), g_a, opt.init(w, a))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[0].dtype == got[1].dtype == np.float64


def test_loss_decreases_on_a_quadratic(make, rng):
    """L = sum h_w (w - c_w)^2 / 2 + sum h_a (a - c_a)^2 / 2, curvatures 0.5..2."""
    h_w, h_a = rng.uniform(0.5, 2.0, size=P), rng.uniform(0.5, 2.0, size=K)
    c_w, c_a = rng.normal(size=P), rng.normal(size=K)

    def loss(w, a):
        return 0.5 * np.sum(h_w * (w - c_w) ** 2) + 0.5 * np.sum(h_a * (a - c_a) ** 2)

    # A decaying rate lets Adam settle instead of hovering at a distance ~ lr.
    opt = make(lambda t: 0.1 / (1.0 + 0.02 * t))
    w, a = np.zeros(P), np.zeros(K)
    state = opt.init(w, a)
    start = loss(w, a)
    for _ in range(600):
        upd_w, upd_a, state = opt.update(h_w * (w - c_w), h_a * (a - c_a), state)
        w, a = w + upd_w, a + upd_a
    assert loss(w, a) < 1e-4 * start


def test_rates_of_the_state_step(rng):
    """Step t uses opt.lr(t), per layer: a callable schedule sees the counts 0, 1, 2, ..."""
    seen = []

    def rates(t):
        seen.append(t)
        return (0.1 * (t + 1), 0.5)

    opt = optim.gd(rates)
    w, a, g_w, g_a = problem(rng)
    state = opt.init(w, a)
    for t in range(4):
        upd_w, upd_a, state = opt.update(g_w, g_a, state)
        np.testing.assert_array_equal(upd_w, -((0.1 * (t + 1)) * g_w))
        np.testing.assert_array_equal(upd_a, -(0.5 * g_a))
    assert seen == [0, 1, 2, 3]


def test_momentum_buffer_starts_as_the_gradient():
    """b = g at step 0, not beta * 0 + g: they differ on the sign of a zero gradient."""
    g = np.array([-0.0, 0.0, 1.5])
    for nesterov in (False, True):
        state = optim.momentum(0.1, beta=0.5, nesterov=nesterov).update(g, g, optim.momentum(0.1).init(g, g))[2]
        np.testing.assert_array_equal(np.signbit(state.buf_w), np.signbit(g))


WRONG_STATES = [(mine, given) for mine in OPTIMIZERS for given in OPTIMIZERS
                if {mine, given} != {"momentum", "nesterov"} and mine != given]


@pytest.mark.parametrize("mine, given", WRONG_STATES)
def test_the_wrong_state_is_a_type_error(mine, given, rng):
    opt = OPTIMIZERS[mine](0.1)
    w, a, g_w, g_a = problem(rng)
    with pytest.raises(TypeError, match=r"state: expected the \w+State of \w+\(\.\.\.\)\.init"):
        opt.update(g_w, g_a, OPTIMIZERS[given](0.1).init(w, a))


@pytest.mark.parametrize("state", [None, (0,), {"count": 0}])
def test_a_state_not_made_by_init_is_a_type_error(make, state, rng):
    _, _, g_w, g_a = problem(rng)
    with pytest.raises(TypeError, match="state"):
        make(0.1).update(g_w, g_a, state)


def test_gradients_are_checked(make, rng):
    opt = make(0.1)
    w, a, g_w, g_a = problem(rng)
    state = opt.init(w, a)
    with pytest.raises(ValueError, match=r"grad_w: expected shape \(5,\), got shape \(3,\)"):
        opt.update(g_a, g_a, state)
    with pytest.raises(ValueError, match=r"grad_a: expected shape \(3,\)"):
        opt.update(g_w, g_w, state)
    with pytest.raises(ValueError, match="grad_a: expected finite values, got nan"):
        opt.update(g_w, np.full(K, np.nan), state)
    with pytest.raises(TypeError, match="grad_w"):
        opt.update(["x"] * P, g_a, state)
    with pytest.raises(ValueError, match="w: expected finite"):
        opt.init(np.full(P, np.inf), a)


def test_an_overflowing_update_is_not_an_error(make):
    # Divergence is the engine's to detect: the update computes what IEEE arithmetic gives, with
    # no warning (which -W error would turn into a failure).
    opt = make(1e300)
    g = np.full(2, 1e300)
    upd_w, _, state = opt.update(g, g, opt.init(np.zeros(2), np.zeros(2)))
    if isinstance(state, optim.AdamState):
        assert np.all(np.isinf(state.v_w))  # g * g overflows; m / inf is then 0
    else:
        assert np.all(upd_w == -np.inf)


@pytest.mark.parametrize(
    "factory, kwargs, name",
    [
        (optim.gd, {"beta": 0.9}, "beta"),
        (optim.momentum, {"betas": 0.9}, "betas"),
        (optim.momentum, {"momentum": 0.9}, "momentum"),
        (optim.adam, {"beta": 0.9}, "beta"),
        (optim.adam, {"betas": (0.9, 0.999)}, "betas"),
        (optim.adam, {"weight_decay": 0.1}, "weight_decay"),
    ],
)
def test_an_unknown_option_is_a_type_error(factory, kwargs, name):
    with pytest.raises(TypeError, match=f"unknown option '{name}'"):
        factory(0.1, **kwargs)


@pytest.mark.parametrize("factory", [optim.momentum, optim.adam])
def test_options_are_keyword_only(factory):
    with pytest.raises(TypeError, match="keyword-only options"):
        factory(0.1, 0.9)


BAD_OPTIONS = [
    (optim.momentum, "beta", -0.1, ValueError, "[0, 1)"),
    (optim.momentum, "beta", 1.0, ValueError, "[0, 1)"),
    (optim.momentum, "beta", math.nan, ValueError, "nan"),
    (optim.momentum, "beta", math.inf, ValueError, "inf"),
    (optim.momentum, "beta", "0.9", TypeError, "str"),
    (optim.momentum, "beta", True, TypeError, "bool"),
    (optim.momentum, "nesterov", 1, TypeError, "True or False"),
    (optim.momentum, "nesterov", "yes", TypeError, "True or False"),
    (optim.adam, "beta1", 1.0, ValueError, "[0, 1)"),
    (optim.adam, "beta1", -0.5, ValueError, "-0.5"),
    (optim.adam, "beta1", math.nan, ValueError, "nan"),
    (optim.adam, "beta2", 1.0, ValueError, "[0, 1)"),
    (optim.adam, "beta2", 1.5, ValueError, "1.5"),
    (optim.adam, "beta2", None, TypeError, "NoneType"),
    (optim.adam, "eps", 0.0, ValueError, "> 0"),
    (optim.adam, "eps", -1e-8, ValueError, "-1e-08"),
    (optim.adam, "eps", math.nan, ValueError, "nan"),
    (optim.adam, "eps", math.inf, ValueError, "finite"),
    (optim.adam, "eps", "1e-8", TypeError, "str"),
]


@pytest.mark.parametrize("factory, option, value, exc, words", BAD_OPTIONS)
def test_a_bad_option_names_itself(factory, option, value, exc, words):
    with pytest.raises(exc) as info:
        factory(0.1, **{option: value})
    message = str(info.value)
    assert message.startswith(f"{option}: expected") and words in message


def test_edge_values_of_options_are_accepted():
    assert optim.momentum(0.1, beta=0.0).beta == 0.0
    assert optim.momentum(0.1, beta=np.float32(0.5), nesterov=np.bool_(True)).engine_spec() == (
        "momentum", 0.5, True, 0.0, 0.0, 0.0)
    assert optim.adam(0.1, beta1=0, beta2=0.0, eps=5e-324).engine_spec() == ("adam", 0.0, False, 0.0, 0.0, 5e-324)


@pytest.mark.parametrize("lr, exc", [(-0.1, ValueError), ((0.1, -1.0), ValueError), (math.nan, ValueError),
                                     ("0.1", TypeError), (None, TypeError)])
def test_rates_are_checked_as_schedules_check_them(make, lr, exc):
    with pytest.raises(exc, match="lr"):
        make(lr)


def test_a_callable_rate_is_checked_at_its_step(make, rng):
    opt = make(lambda t: 0.1 if t < 2 else -1.0)
    w, a, g_w, g_a = problem(rng)
    state = opt.init(w, a)
    for _ in range(2):
        state = opt.update(g_w, g_a, state)[2]
    with pytest.raises(ValueError, match="at step 2"):
        opt.update(g_w, g_a, state)


def test_lr_is_kept_as_a_schedule(make):
    schedule = sn.piecewise([10], [0.1, (0.01, 0.02)])
    assert make(schedule).lr is schedule
    assert isinstance(make(0.1).lr, sn.schedules.Schedule) and make((0.1, 0.2)).lr(5) == (0.1, 0.2)


def test_engine_spec_and_repr():
    assert optim.gd(0.1).engine_spec() == ("gd", 0.0, False, 0.0, 0.0, 0.0)
    assert optim.momentum(0.1).engine_spec() == ("momentum", 0.9, False, 0.0, 0.0, 0.0)
    assert optim.momentum(0.1, beta=0.5, nesterov=True).engine_spec() == ("momentum", 0.5, True, 0.0, 0.0, 0.0)
    assert optim.adam(0.1).engine_spec() == ("adam", 0.0, False, 0.9, 0.999, 1e-8)
    assert optim.adam(0.1, beta1=0.8, beta2=0.9, eps=1e-6).engine_spec() == ("adam", 0.0, False, 0.8, 0.9, 1e-6)
    assert repr(optim.gd((0.1, 0.2))) == "gd(lr=constant(lr_w=0.1, lr_a=0.2))"
    assert repr(optim.momentum(0.1, nesterov=True)) == (
        "momentum(lr=constant(lr_w=0.1, lr_a=0.1), beta=0.9, nesterov=True)")
    assert repr(optim.adam(0.1)) == "adam(lr=constant(lr_w=0.1, lr_a=0.1), beta1=0.9, beta2=0.999, eps=1e-08)"


def test_resolve():
    opt = optim.adam(0.1)
    assert optim.resolve(None, opt) is opt
    assert optim.resolve(optimizer=opt) is opt
    plain = optim.resolve(0.1, None)
    assert isinstance(plain, optim.GD) and plain.lr(0) == (0.1, 0.1)
    assert optim.resolve((0.1, 0.2)).lr(3) == (0.1, 0.2)
    for lr, optimizer in [(0.1, opt), (None, None)]:
        with pytest.raises(ValueError) as info:
            optim.resolve(lr, optimizer)
        assert "lr" in str(info.value) and "optimizer" in str(info.value)
    for bad in ["adam", object(), optim.adam, optim.AdamState]:
        with pytest.raises(TypeError, match="optimizer: expected"):
            optim.resolve(None, bad)
    with pytest.raises(ValueError, match="lr"):
        optim.resolve(-1.0, None)


def test_the_package_exposes_the_module():
    assert sn.optim is optim and "optim" in sn.__all__
