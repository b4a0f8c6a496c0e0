"""Sampled loss, gradient and predict on every backend against a per-sample loop (docs/model.md, "Losses on a finite batch")."""
import zlib

import numpy as np
import pytest

import shortcutnet as sn
from sampled_cases import (
    BACKENDS, DTYPES, MODEL_CASES, RTOL, assert_matches_loop, assert_within, backend_or_skip,
    loop_loss_grad, make_model, make_parameters,
)


def batch(model, n, dtype, rng):
    return rng.normal(size=(n, model.d)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(MODEL_CASES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_grad_matches_per_sample_loop(backend, case, dtype):
    backend_or_skip(backend)
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    model = make_model(case)
    w, a, w_star, a_star = make_parameters(model, rng)
    X = batch(model, 37, dtype, rng)
    y = (rng.normal(size=37)).astype(dtype)
    ref = loop_loss_grad(model, w, a, X, y)
    assert_matches_loop(sn.sampled_loss_grad(model, w, a, X, y, backend=backend), ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["resnet", "cnn-unnormalized-p16", "overlapping", "gapped"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_matches_per_sample_loop(backend, case, dtype):
    backend_or_skip(backend)
    rng = np.random.default_rng(7)
    model = make_model(case)
    w, a, _, _ = make_parameters(model, rng)
    X = batch(model, 29, dtype, rng)
    f = sn.predict(model, w, a, X, backend=backend)
    assert f.shape == (29,) and f.dtype == np.dtype(dtype)
    ref = loop_loss_grad(model, w, a, X, np.zeros(29))
    # The result is rounded to the batch's dtype once more at the end.
    assert_within("f", f, ref["f"], ref["scale_f"], RTOL[np.dtype(dtype)] + np.finfo(dtype).eps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_patch_and_raw_layouts_agree(backend):
    backend_or_skip(backend)
    rng = np.random.default_rng(3)
    model = make_model("resnet")
    w, a, _, _ = make_parameters(model, rng)
    Z = rng.normal(size=(20, model.k, model.p))
    y = rng.normal(size=20)
    by_patches = sn.sampled_loss_grad(model, w, a, Z, y, backend=backend)
    by_rows = sn.sampled_loss_grad(model, w, a, Z.reshape(20, model.d), y, backend=backend)
    assert by_patches[0] == by_rows[0]
    np.testing.assert_array_equal(by_patches[1], by_rows[1])
    np.testing.assert_array_equal(sn.predict(model, w, a, Z, backend=backend),
                                  sn.predict(model, w, a, Z.reshape(20, model.d), backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_teacher_has_zero_loss_and_gradient(backend):
    backend_or_skip(backend)
    rng = np.random.default_rng(11)
    model = make_model("overlapping")
    _, _, w_star, a_star = make_parameters(model, rng)
    X = rng.normal(size=(50, model.d))
    y = sn.teacher_labels(model, w_star, a_star, X, backend=backend)
    loss, grad_w, grad_a = sn.sampled_loss_grad(model, w_star, a_star, X, y, backend=backend)
    assert loss == 0.0
    assert not grad_w.any() and not grad_a.any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["resnet", "overlapping", "gapped", "cnn-unnormalized-p16"])
def test_backends_agree(case, dtype):
    """Every available backend, the NumPy reference included, against the per-sample loop on one
    batch (f64 ~1e-12 of the scale)."""
    rng = np.random.default_rng(5)
    model = make_model(case)
    w, a, _, _ = make_parameters(model, rng)
    X = batch(model, 600, dtype, rng)
    y = rng.normal(size=600).astype(dtype)
    ref = loop_loss_grad(model, w, a, X, y)
    assert "numpy" in sn.backends()
    for backend in sn.backends():
        got = sn.sampled_loss_grad(model, w, a, X, y, backend=backend)
        assert_matches_loop(got, ref, dtype)
