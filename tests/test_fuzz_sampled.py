"""Property-based fuzzing of the sampled kernels and the trainers on every backend.

Valid inputs agree with the NumPy reference; invalid ones raise ValueError or TypeError.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shortcutnet as sn

BACKENDS = ["cpp", "numba"]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(min_value=-50, max_value=50, allow_nan=False, allow_infinity=False)


@st.composite
def batches(draw):
    k = draw(st.integers(1, 5))
    p = draw(st.integers(1, 6))
    stride = draw(st.integers(1, p + 2))
    model = sn.Model(k, p, shortcut=draw(st.booleans()), normalize=draw(st.booleans()), stride=stride)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n = draw(st.integers(1, 300))
    layout = draw(st.sampled_from(["rows", "patches", "strided"]))
    if layout == "patches" and stride == p:
        shape = (n, k, p)
    else:
        shape = (n, model.d)
    Z = draw(hnp.arrays(dtype, shape, elements=st.floats(-4, 4, width=32)))
    if layout == "strided":
        Z = np.repeat(Z, 2, axis=0)[::2]  # a non-contiguous view with the same values
    w = draw(hnp.arrays(np.float64, p, elements=finite))
    a = draw(hnp.arrays(np.float64, k, elements=finite))
    y = draw(hnp.arrays(dtype, n, elements=st.floats(-10, 10, width=32)))
    assume(np.linalg.norm(w + model.s) > 1e-3)
    return model, w, a, Z, y


def _scale(model, w, a, Z):
    u = w + model.s
    size = 1.0 if model.normalize else float(np.abs(u).sum())
    return max(1.0, float(np.abs(a).sum()) * size * max(1.0, float(np.abs(Z).max(initial=0.0))) * model.p)


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(batches())
def test_sampled_kernels_match_the_reference(backend, batch):
    model, w, a, Z, y = batch
    eps = 1e-4 if Z.dtype == np.float32 else 1e-11
    scale = _scale(model, w, a, Z)
    f_ref = sn.predict(model, w, a, Z, backend="numpy")
    f = sn.predict(model, w, a, Z, backend=backend)
    assert f.dtype == Z.dtype and f.shape == (Z.shape[0],)
    np.testing.assert_allclose(f, f_ref, rtol=0, atol=eps * scale)
    ref = sn.sampled_loss_grad(model, w, a, Z, y, backend="numpy")
    got = sn.sampled_loss_grad(model, w, a, Z, y, backend=backend)
    resid = scale + float(np.abs(y).max())
    assert got[0] == pytest.approx(ref[0], rel=eps * 10, abs=eps * resid * resid)
    np.testing.assert_allclose(got[2], ref[2], rtol=0, atol=eps * resid * resid)
    grad_scale = resid * resid * (1.0 / np.linalg.norm(w + model.s) if model.normalize else 1.0) * 10
    np.testing.assert_allclose(got[1], ref[1], rtol=0, atol=eps * grad_scale)


@pytest.mark.parametrize("backend", BACKENDS + ["numpy"])
@FUZZ
@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.lists(st.integers(0, 6), min_size=1, max_size=4),
    st.sampled_from([np.float32, np.float64, np.int64, np.complex128, np.bool_]),
    st.sampled_from([None, np.nan, np.inf, -np.inf]),
)
def test_bad_batches_raise(backend, k, p, shape, dtype, poison):
    model = sn.Model(k, p)
    Z = np.ones(tuple(shape), dtype=dtype)
    valid_shape = tuple(shape) in {(shape[0], k, p), (shape[0], model.d)} and shape[0] > 0
    valid_dtype = np.dtype(dtype).kind in "fi"
    if poison is not None and np.dtype(dtype).kind == "f" and Z.size:
        Z.flat[Z.size // 2] = poison
    assume(not (valid_shape and valid_dtype and (poison is None or np.dtype(dtype).kind != "f")))
    with pytest.raises((ValueError, TypeError), match="Z"):
        sn.predict(model, np.zeros(p), np.ones(k), Z, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS + ["numpy"])
@FUZZ
@given(st.one_of(st.integers(-5, 0), st.floats(allow_nan=True), st.text(max_size=2), st.none()),
       st.sampled_from(["n", "seed", "threads"]))
def test_bad_counts_and_seeds_raise(backend, value, which):
    model = sn.Model(3, 2)
    kwargs = {"n": 16, "seed": 0, "threads": None}
    if which == "seed" and isinstance(value, int) and value == 0:
        value = -1
    if which == "threads" and value is None:
        value = 0
    kwargs[which] = value
    with pytest.raises((ValueError, TypeError), match=which):
        sn.stochastic_loss_grad(model, np.zeros(2), np.ones(3), np.zeros(2), np.ones(3), kwargs["n"], kwargs["seed"],
                                backend=backend, threads=kwargs["threads"])


@pytest.mark.parametrize("backend", BACKENDS + ["numpy"])
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 40), st.floats(0.0, 2.0), st.integers(0, 2**32))
def test_run_trials_match_the_reference(backend, k, p, steps, lr, seed):
    model = sn.Model(k, p, shortcut=bool(seed % 2))
    rng = np.random.default_rng(seed)
    B = 3
    w_star = rng.normal(size=(B, p))
    a_star = rng.normal(size=(B, k))
    w0 = rng.normal(size=(B, p))
    a0 = rng.normal(size=(B, k))
    ref = sn.run_trials(model, w_star, a_star, w0, a0, steps=steps, lr=lr, backend="numpy")
    got = sn.run_trials(model, w_star, a_star, w0, a0, steps=steps, lr=lr, backend=backend)
    assert list(got.outcome) == list(ref.outcome)
    finite_rows = np.isfinite(ref.loss)
    np.testing.assert_allclose(got.loss[finite_rows], ref.loss[finite_rows], rtol=1e-7, atol=1e-12)
