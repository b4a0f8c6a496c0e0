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


def error_bounds(model, w, a, Z, y, unit):
    """Bounds on the error of predict, the loss, grad_w and grad_a of a kernel whose dot products
    and active-patch sums round to ``unit`` (float32 batches on the compiled backend: 2^-24) and
    whose float64 rest rounds to 2^-53, from the sums each output is made of:
    |dh_ij| <= (p + 2) unit sum_t |x_ijt v_t| (v rounded to the batch dtype, p products and sums),
    |df_i| <= sum_j |a_j| |dh_ij|, and each patch whose pre-activation is within its error of 0 may
    take either side of the relu.  Returned with a factor 2 (the second-order terms)."""
    n = Z.shape[0]
    X = np.ascontiguousarray(Z, dtype=np.float64).reshape(n, model.d)
    P = np.lib.stride_tricks.sliding_window_view(X, model.p, axis=1)[:, :: model.stride][:, : model.k]
    u = w + model.s
    v = u / np.linalg.norm(u) if model.normalize else u
    h = P @ v
    # v and a rounded to the batch dtype, and each product and sum in it, may also lose up to its
    # smallest subnormal.
    tiny = 2.0**-149 if unit == 2.0**-24 else 2.0**-1074
    dh = ((model.p + 2) * unit * (np.abs(P) @ np.abs(v)) + 8 * 2.0**-53 * np.abs(h)
          + tiny * (np.abs(P).sum(-1) + 2 * model.p))
    relu = np.maximum(h, 0.0)
    r = relu @ a - y.astype(np.float64)
    dr = dh @ np.abs(a) + 4 * 2.0**-53 * (np.abs(relu) @ np.abs(a) + np.abs(y))
    either_side = np.abs(h) <= dh
    # The sums over samples: in blocks of 256 in order, then over the blocks (or pairwise).
    rounding = (min(n, 256) + n / 256 + 8) * 2.0**-53
    loss = 0.5 * np.mean(r * r) * rounding + np.mean(np.abs(r) * dr + dr * dr)
    grad_a = np.mean(dr[:, None] * (relu + dh) + np.abs(r)[:, None] * dh, axis=0) + rounding * np.mean(
        np.abs(r)[:, None] * relu, axis=0)
    weight = np.abs(a)[None, :, None] * np.abs(P)  # |a_j x_ijt|
    g_abs = weight.sum(axis=1)
    g_either = (weight * either_side[:, :, None]).sum(axis=1)
    dG = np.mean(dr[:, None] * g_abs + np.abs(r)[:, None] * ((model.k + 2) * unit * g_abs + g_either
                                                             + tiny * (np.abs(P).sum(axis=1) + 2 * model.k)), axis=0)
    dG += rounding * np.mean(np.abs(r)[:, None] * g_abs, axis=0)
    if model.normalize:  # (G - (v.G) v)/|u|: an orthogonal projection, then a division
        G = np.mean(r[:, None] * (((h > 0) * a)[:, :, None] * P).sum(axis=1), axis=0)
        # (1-norms bound the 2-norms and do not underflow)
        grad_w = (np.abs(dG).sum() + 8 * 2.0**-53 * np.abs(G).sum()) / np.linalg.norm(u) * np.ones(model.p)
    else:
        grad_w = dG
    f = dr + 4 * 2.0**-53 * np.abs(relu @ a)
    # Each of the n (k + p) float64 operations may also lose half a subnormal step.
    floor = 16 * n * (model.k + model.p + 2) * 2.0**-1074
    return 2 * f + floor, 2 * loss + floor, 2 * grad_w + floor, 2 * grad_a + floor


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(batches())
def test_sampled_kernels_match_the_reference(backend, batch):
    """Within the rounding each side's sums allow, no more: a kernel that drops a term, a patch or
    the gradient fails wherever that term is larger than the rounding of the sums it is made of."""
    model, w, a, Z, y = batch
    unit = 2.0**-24 if Z.dtype == np.float32 else 2.0**-53
    f_b, loss_b, grad_w_b, grad_a_b = (x + y_ for x, y_ in zip(error_bounds(model, w, a, Z, y, unit),
                                                                  error_bounds(model, w, a, Z, y, 2.0**-53)))
    f_ref = sn.predict(model, w, a, Z, backend="numpy")
    f = sn.predict(model, w, a, Z, backend=backend)
    assert f.dtype == Z.dtype and f.shape == (Z.shape[0],)
    stored = np.abs(f_ref.astype(np.float64)) * np.finfo(Z.dtype).eps  # each output rounded to the dtype
    assert np.all(np.abs(f.astype(np.float64) - f_ref) <= f_b + stored)
    ref = sn.sampled_loss_grad(model, w, a, Z, y, backend="numpy")
    got = sn.sampled_loss_grad(model, w, a, Z, y, backend=backend)
    assert abs(got[0] - ref[0]) <= loss_b
    assert np.all(np.abs(got[2] - ref[2]) <= grad_a_b)
    assert np.all(np.abs(got[1] - ref[1]) <= grad_w_b)


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
