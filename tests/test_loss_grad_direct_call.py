"""sampled_loss_grad calls the compiled kernel at once when its arguments need no conversion (the
small-batch path); it must give the checked path's bits and leave every error message unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet import kernels

pytestmark = pytest.mark.skipif("cpp" not in sn.backends(), reason="the compiled core is not built")


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    model = sn.Model(5, 8)
    Z = rng.normal(size=(300, 5, 8))
    y = rng.normal(size=300)
    return model, rng.normal(size=8), rng.normal(size=5), Z, y


def _skip_python_checks(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the checked path ran")

    monkeypatch.setattr(kernels, "_as_batch", refuse)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("as_rows", [False, True])
def test_direct_call_gives_the_checked_paths_bits(monkeypatch, problem, dtype, as_rows):
    model, w, a, Z, y = problem
    Z, y = Z.astype(dtype), y.astype(dtype)
    if as_rows:
        Z = Z.reshape(len(Z), model.d)
    checked = sn.sampled_loss_grad(model, list(w), a, Z, y, threads=1)  # a list takes the checked path
    _skip_python_checks(monkeypatch)
    for threads in (None, 1, 2):
        direct = sn.sampled_loss_grad(model, w, a, Z, y, threads=threads)
        assert type(direct[0]) is float and direct[0] == checked[0]
        np.testing.assert_array_equal(direct[1], checked[1])
        np.testing.assert_array_equal(direct[2], checked[2])


def test_errors_name_the_public_arguments(problem):
    model, w, a, Z, y = problem
    bad = Z.copy()
    bad[3, 1, 2] = np.nan
    with pytest.raises(ValueError, match="^Z: expected finite values"):
        sn.sampled_loss_grad(model, w, a, bad, y)
    with pytest.raises(ValueError, match="w"):
        sn.sampled_loss_grad(model, -model.s, a, Z, y)
    with pytest.raises(ValueError, match="threads"):
        sn.sampled_loss_grad(model, w, a, Z, y, threads=0)
    with pytest.raises(TypeError, match="threads"):
        sn.sampled_loss_grad(model, w, a, Z, y, threads=1.0)
    with pytest.raises(TypeError, match="w"):
        sn.sampled_loss_grad(model, w.astype(complex), a, Z, y)


def test_converted_arguments_take_the_checked_path(problem):
    model, w, a, Z, y = problem
    reference = sn.sampled_loss_grad(model, w, a, Z, y)
    got = sn.sampled_loss_grad(model, w, a, np.asfortranarray(Z), y)  # copied to C order
    assert got[0] == reference[0]
    np.testing.assert_array_equal(got[1], reference[1])
    got = sn.sampled_loss_grad(model, w, a, Z.astype(np.float32), y)  # y converted to float32
    expected = sn.sampled_loss_grad(model, w, a, Z.astype(np.float32), y.astype(np.float32))
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])


def test_other_backends_are_not_bypassed(monkeypatch, problem):
    model, w, a, Z, y = problem
    monkeypatch.setenv("SHORTCUTNET_BACKEND", "numpy")
    _skip_python_checks(monkeypatch)
    with pytest.raises(AssertionError, match="checked path"):
        sn.sampled_loss_grad(model, w, a, Z, y)
