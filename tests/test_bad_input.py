"""Bad input raises ValueError/TypeError naming the argument, what was expected and what was given,
on every backend; the compiled functions refuse it too, without crashing."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn


@pytest.fixture
def good():
    model = sn.Model(3, 2)
    return model, dict(w=np.zeros(2), a=np.ones(3), w_star=np.array([0.1, -0.2]), a_star=np.array([1.0, -1.0, 0.5]))


# (argument, bad value, exception, message pattern); patterns name the argument, expected and given.
BAD_PARAMETERS = [
    ("w", np.zeros(3), ValueError, r"^w: expected shape \(2,\), got shape \(3,\)"),
    ("a", np.ones(2), ValueError, r"^a: expected shape \(3,\), got shape \(2,\)"),
    ("w_star", np.zeros((1, 2)), ValueError, r"^w_star: expected shape \(2,\), got a 2-D array of shape \(1, 2\)"),
    ("a_star", np.ones((3, 1)), ValueError, r"^a_star: expected shape \(3,\), got a 2-D array"),
    ("w", 0.5, ValueError, r"^w: expected shape \(2,\), got a 0-D array"),
    ("w", [0.0, np.nan], ValueError, r"^w: expected finite values, got nan at flat index 1"),
    ("a", [1.0, np.inf, 0.0], ValueError, r"^a: expected finite values, got inf at flat index 1"),
    ("a_star", [1.0, 2.0, -np.inf], ValueError, r"^a_star: expected finite values, got -inf"),
    ("w_star", [np.nan, 0.0], ValueError, r"^w_star: expected finite values, got nan"),
    ("w", -sn.Model(3, 2).s, ValueError, r"^w: expected w \+ s != 0 .*, got w \+ s = 0"),
    ("w_star", -sn.Model(3, 2).s, ValueError, r"^w_star: expected w_star \+ s != 0 .*, got w_star \+ s = 0"),
    ("w", np.array([1 + 1j, 0.0]), TypeError, r"^w: expected real floating-point numbers, got dtype complex128"),
    ("a", np.array([True, False, True]), TypeError, r"^a: expected real floating-point numbers, got dtype bool"),
    ("a_star", np.array([1.0, None, 2.0], dtype=object), TypeError, r"^a_star: expected real .*, got dtype object"),
    ("w", "ab", TypeError, r"^w: expected real floating-point numbers, got dtype <U2"),
    ("w", ["0.1", "0.2"], TypeError, r"^w: expected real .*, got dtype <U3"),
    ("a", [[1.0], [2.0, 3.0]], TypeError, r"^a: expected an array of real numbers, got list"),
]


@pytest.mark.parametrize("name,value,error,pattern", BAD_PARAMETERS, ids=lambda x: x if isinstance(x, str) else None)
@pytest.mark.parametrize("function", [sn.population_loss, sn.population_grad, sn.population_loss_grad])
def test_bad_parameters(function, name, value, error, pattern, good, backend):
    model, args = good
    args[name] = value
    with pytest.raises(error, match=pattern):
        function(model, **args, backend=backend)


def test_direction_check_uses_the_model_shortcut(backend):
    for model in (sn.Model(3, 2, shortcut=False), sn.Model(3, 2, normalize=False), sn.Model(3, 2, stride=1)):
        with pytest.raises(ValueError, match=r"^w: expected w \+ s != 0"):
            sn.population_loss(model, -model.s, np.ones(3), np.ones(2), np.ones(3), backend=backend)


@pytest.mark.parametrize(
    "value,error,pattern",
    [
        ("cuda", ValueError, r"^backend: expected one of \['cpp', 'numba', 'numpy'\] or None, got 'cuda'"),
        ("CPP", ValueError, r"^backend: expected one of .*, got 'CPP'"),
        ("", ValueError, r"^backend: expected one of .*, got ''"),
        (3, TypeError, r"^backend: expected one of .* or None, got int 3"),
        (b"cpp", TypeError, r"^backend: expected one of .* or None, got bytes"),
    ],
)
def test_bad_backend(value, error, pattern, good):
    model, args = good
    for call in (
        lambda: sn.population_loss(model, **args, backend=value),
        lambda: sn.population_grad(model, **args, backend=value),
        lambda: sn.angle([1.0, 0.0], [0.0, 1.0], backend=value),
        lambda: sn.spurious_optimum(model, args["a_star"], backend=value),
        lambda: sn.objective(model, args["w_star"], args["a_star"], backend=value)[0](np.ones(5)),
    ):
        with pytest.raises(error, match=pattern):
            call()


@pytest.mark.parametrize("model", ["Model(3, 2)", None, (3, 2), object()])
def test_not_a_model(model, good, backend):
    _, args = good
    pattern = r"^model: expected a shortcutnet.Model, got "
    with pytest.raises(TypeError, match=pattern):
        sn.population_loss(model, **args, backend=backend)
    with pytest.raises(TypeError, match=pattern):
        sn.spurious_optimum(model, args["a_star"], backend=backend)
    with pytest.raises(TypeError, match=pattern):
        sn.is_spurious_minimum(model, args["a_star"])
    with pytest.raises(TypeError, match=pattern):
        sn.objective(model, args["w_star"], args["a_star"], backend=backend)


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        (dict(k=0, p=2), ValueError, r"^k: expected an integer >= 1, got 0"),
        (dict(k=2, p=-1), ValueError, r"^p: expected an integer >= 1, got -1"),
        (dict(k=2.5, p=2), TypeError, r"^k: expected an integer, got float 2.5"),
        (dict(k=2, p="3"), TypeError, r"^p: expected an integer, got str '3'"),
        (dict(k=True, p=2), TypeError, r"^k: expected an integer, got bool True"),
        (dict(k=2, p=3, shortcut=np.ones(2)), ValueError, r"^shortcut: expected shape \(3,\), got shape \(2,\)"),
        (dict(k=2, p=2, shortcut=[[1.0, 2.0]]), ValueError, r"^shortcut: expected shape \(2,\), got a 2-D array"),
        (dict(k=2, p=2, shortcut=[np.nan, 1.0]), ValueError, r"^shortcut: expected finite values, got nan"),
        (dict(k=2, p=2, shortcut="yes"), TypeError, r"^shortcut: expected True, False or an array of shape \(2,\), got str"),
        (dict(k=2, p=2, shortcut=1.0), TypeError, r"^shortcut: expected True, False or an array .*, got float 1.0"),
        (dict(k=2, p=2, stride=0), ValueError, r"^stride: expected an integer >= 1, got 0"),
        (dict(k=2, p=2, stride=1.5), TypeError, r"^stride: expected an integer, got float 1.5"),
        (dict(k=3, p=2, stride=2**70), ValueError, r"^stride: expected an input length d = .* <= 2\*\*63 - 1, got d = "),
        (dict(k=2**62, p=2, stride=4), ValueError, r"^stride: expected an input length d"),
        (dict(k=2, p=2, normalize="yes"), TypeError, r"^normalize: expected True or False, got str 'yes'"),
        (dict(k=2, p=2, normalize=1), TypeError, r"^normalize: expected True or False, got int 1"),
    ],
)
def test_bad_model_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        sn.Model(**kwargs)


@pytest.mark.parametrize(
    "u,v,error,pattern",
    [
        ([1.0, 0.0], [1.0, 0.0, 0.0], ValueError, r"^v: expected shape \(2,\), got shape \(3,\)"),
        ([[1.0, 0.0]], [1.0, 0.0], ValueError, r"^u: expected a 1-D array, got a 2-D array"),
        ([], [], ValueError, r"^u: expected a non-empty vector, got shape \(0,\)"),
        ([0.0, 0.0], [1.0, 0.0], ValueError, r"^u: expected a non-zero vector, got all zeros"),
        ([1.0, 0.0], [0.0, 0.0], ValueError, r"^v: expected a non-zero vector, got all zeros"),
        ([1.0, np.nan], [1.0, 0.0], ValueError, r"^u: expected finite values, got nan"),
        ([1.0, 0.0], [1.0, np.inf], ValueError, r"^v: expected finite values, got inf"),
        ([1 + 2j, 0.0], [1.0, 0.0], TypeError, r"^u: expected real floating-point numbers, got dtype complex128"),
        ([1.0, 0.0], ["a", "b"], TypeError, r"^v: expected real floating-point numbers, got dtype <U1"),
    ],
)
def test_bad_angle_arguments(u, v, error, pattern, backend):
    with pytest.raises(error, match=pattern):
        sn.angle(u, v, backend=backend)


def test_bad_spurious_optimum_arguments(backend):
    model = sn.Model(3, 2)
    with pytest.raises(ValueError, match=r"^a_star: expected shape \(3,\), got shape \(4,\)"):
        sn.spurious_optimum(model, np.ones(4), backend=backend)
    with pytest.raises(ValueError, match=r"^a_star: expected finite values, got nan"):
        sn.spurious_optimum(model, [1.0, np.nan, 0.0], backend=backend)
    with pytest.raises(TypeError, match=r"^a_star: expected real floating-point numbers, got dtype bool"):
        sn.spurious_optimum(model, [True, False, True], backend=backend)


def test_objective_rejects_bad_theta(good, backend):
    model, args = good
    fun, jac = sn.objective(model, args["w_star"], args["a_star"], backend=backend)
    with pytest.raises(ValueError, match=r"^theta: expected shape \(5,\), got shape \(4,\)"):
        fun(np.ones(4))
    with pytest.raises(ValueError, match=r"^theta: expected finite values, got nan"):
        jac(np.array([1.0, np.nan, 0.0, 0.0, 0.0]))


# ----------------------------------------------------------------------------- the compiled core
core = pytest.importorskip("shortcutnet._core", reason="the compiled core is not built")
S, W, A, WS, AS = np.full(2, 0.5**0.5), np.zeros(2), np.ones(3), np.array([0.1, -0.2]), np.array([1.0, -1.0, 0.5])


@pytest.mark.parametrize(
    "replace,pattern",
    [
        (dict(s=np.ones(3)), r"^s: expected shape \(2,\), got \(3,\)"),
        (dict(w=np.ones((2, 2))), r"^w: expected a non-empty 1-D array of shape \(p,\), got shape \(2, 2\)"),
        (dict(w=np.ones(0)), r"^w: expected a non-empty 1-D array"),
        (dict(a=np.ones((3, 1))), r"^a: expected a non-empty 1-D array of shape \(k,\), got shape \(3, 1\)"),
        (dict(w_star=np.ones(5)), r"^w_star: expected shape \(2,\), got \(5,\)"),
        (dict(a_star=np.ones(2)), r"^a_star: expected shape \(3,\), got \(2,\)"),
        (dict(a_star=np.float64(1.0)), r"^a_star: expected shape \(3,\), got \(\)"),
        (dict(w=np.array([np.nan, 0.0])), r"^w: expected finite values, got nan"),
        (dict(s=np.array([0.0, np.inf])), r"^s: expected finite values, got inf"),
        (dict(a=np.array([0.0, 1.0, -np.inf])), r"^a: expected finite values, got -inf"),
        (dict(w=-S), r"^w: expected w \+ s != 0 .*, got w \+ s = 0"),
        (dict(w_star=-S), r"^w_star: expected w_star \+ s != 0 .*, got w_star \+ s = 0"),
        (dict(stride=0), r"^stride: expected a positive integer, got 0"),
        (dict(stride=-3), r"^stride: expected a positive integer, got -3"),
    ],
)
@pytest.mark.parametrize("want_grad", [True, False])
def test_compiled_population_refuses_bad_input(replace, pattern, want_grad):
    args = dict(s=S, w=W, a=A, w_star=WS, a_star=AS, stride=2, normalize=True)
    args.update(replace)
    with pytest.raises(ValueError, match=pattern):
        core.population_loss_grad(**args, want_grad=want_grad)


@pytest.mark.parametrize(
    "u,v,pattern",
    [
        (np.ones(2), np.ones(3), r"^v: expected shape \(2,\), got \(3,\)"),
        (np.ones((2, 2)), np.ones(2), r"^u: expected a non-empty 1-D array, got shape \(2, 2\)"),
        (np.ones(0), np.ones(0), r"^u: expected a non-empty 1-D array, got shape \(0,\)"),
        (np.array([np.nan, 1.0]), np.ones(2), r"^u: expected finite values, got nan"),
        (np.zeros(2), np.ones(2), r"^u: expected a non-zero vector, got all zeros"),
        (np.ones(2), np.zeros(2), r"^v: expected a non-zero vector, got all zeros"),
    ],
)
def test_compiled_angle_refuses_bad_input(u, v, pattern):
    with pytest.raises(ValueError, match=pattern):
        core.angle(u, v)


def test_compiled_functions_refuse_wrong_types():
    with pytest.raises(TypeError):
        core.population_loss_grad(S, W, A, WS, AS, "2", True)
    with pytest.raises(TypeError):
        core.angle("ab", None)
    with pytest.raises(ValueError, match=r"^a_star: expected finite values"):
        core.spurious_second_layer(np.array([1.0, np.nan]))
