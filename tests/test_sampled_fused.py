"""Fused sampling + gradient equals the materialized pipeline; results do not depend on threads."""
import numpy as np
import pytest

import shortcutnet as sn
from sampled_cases import BACKENDS, DTYPES, RTOL, assert_within, backend_or_skip, loop_loss_grad, make_model, make_parameters


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["resnet", "overlapping", "gapped", "cnn-unnormalized-p16"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_equals_materialized(backend, case, dtype):
    backend_or_skip(backend)
    rng = np.random.default_rng(23)
    model = make_model(case)
    w, a, w_star, a_star = make_parameters(model, rng)
    n, seed = 700, 2**40 + 7
    fused = sn.stochastic_loss_grad(model, w, a, w_star, a_star, n, seed, dtype=dtype, backend=backend)
    Z = sn.sample_inputs(model, n, seed, dtype=dtype, backend=backend)
    y = sn.teacher_labels(model, w_star, a_star, Z, backend=backend)
    materialized = sn.sampled_loss_grad(model, w, a, Z, y, backend=backend)
    if backend != "numpy":  # same blocks, same rows, same rounded labels: the same bits
        assert fused[0] == materialized[0]
        np.testing.assert_array_equal(fused[1], materialized[1])
        np.testing.assert_array_equal(fused[2], materialized[2])
    ref = loop_loss_grad(model, w, a, Z, y)
    rtol = RTOL[np.dtype(dtype)]
    assert_within("loss", fused[0], materialized[0], ref["scale_loss"], rtol)
    assert_within("grad_w", fused[1], materialized[1], ref["scale_w"], rtol)
    assert_within("grad_a", fused[2], materialized[2], ref["scale_a"], rtol)
    # The fused labels are the teacher's: at the teacher, loss and gradients vanish up to rounding.
    at_teacher = sn.stochastic_loss_grad(model, w_star, a_star, w_star, a_star, n, seed, dtype=dtype, backend=backend)
    y_exact = loop_loss_grad(model, w_star, a_star, Z, np.zeros(n))["f"]
    zero = loop_loss_grad(model, w_star, a_star, Z, y_exact)
    scale_f = np.mean(zero["scale_f"])
    assert 0.0 <= at_teacher[0] <= (rtol * scale_f) ** 2
    assert_within("grad_w at the teacher", at_teacher[1], 0.0, rtol * scale_f * zero["scale_a"].max(), 1.0)
    assert_within("grad_a at the teacher", at_teacher[2], 0.0, rtol * scale_f * zero["scale_a"].max(), 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, p", [(16, 64), (20, 10)])
def test_batch_larger_than_the_cache_equals_fused(k, p, dtype):
    """A stored batch of more than 16 MiB is read in the order the memory streams best (rows read
    ahead one cache line at a time, or short patches' rows copied in groups); the same bits."""
    backend_or_skip("cpp")
    model = sn.Model(k, p)
    w, a, w_star, a_star = make_parameters(model, np.random.default_rng(5))
    n = (16 << 20) // (model.d * np.dtype(dtype).itemsize) + 13  # a last, partial lane group
    seed = 99
    fused = sn.stochastic_loss_grad(model, w, a, w_star, a_star, n, seed, dtype=dtype, backend="cpp")
    Z = sn.sample_inputs(model, n, seed, dtype=dtype, backend="cpp")
    y = sn.teacher_labels(model, w_star, a_star, Z, backend="cpp")
    materialized = sn.sampled_loss_grad(model, w, a, Z, y, backend="cpp")
    assert fused[0] == materialized[0]
    np.testing.assert_array_equal(fused[1], materialized[1])
    np.testing.assert_array_equal(fused[2], materialized[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_backends_agree(dtype):
    rng = np.random.default_rng(29)
    model = make_model("resnet")
    w, a, w_star, a_star = make_parameters(model, rng)
    Z = sn.sample_inputs(model, 900, 5, dtype=dtype, backend="numpy")
    ref = loop_loss_grad(model, w, a, Z, sn.teacher_labels(model, w_star, a_star, Z, backend="numpy"))
    assert "numpy" in sn.backends()
    for backend in sn.backends():  # the NumPy reference too: against the per-sample loop
        got = sn.stochastic_loss_grad(model, w, a, w_star, a_star, 900, 5, dtype=dtype, backend=backend)
        rtol = RTOL[np.dtype(dtype)]
        assert_within(f"{backend} loss", got[0], ref["loss"], ref["scale_loss"], rtol)
        assert_within(f"{backend} grad_w", got[1], ref["grad_w"], ref["scale_w"], rtol)
        assert_within(f"{backend} grad_a", got[2], ref["grad_a"], ref["scale_a"], rtol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_results_identical_for_any_thread_count(backend, dtype):
    """Bitwise: the reductions are over fixed blocks of samples, added in a fixed order."""
    backend_or_skip(backend)
    rng = np.random.default_rng(31)
    model = make_model("overlapping")
    w, a, w_star, a_star = make_parameters(model, rng)
    n, seed = 5003, 77  # many blocks, the last one partial
    runs = {}
    for threads in (1, 2, 3):
        Z = sn.sample_inputs(model, n, seed, dtype=dtype, backend=backend, threads=threads)
        y = sn.teacher_labels(model, w_star, a_star, Z, backend=backend, threads=threads)
        runs[threads] = (
            Z, y,
            sn.predict(model, w, a, Z, backend=backend, threads=threads),
            *sn.sampled_loss_grad(model, w, a, Z, y, backend=backend, threads=threads),
            *sn.stochastic_loss_grad(model, w, a, w_star, a_star, n, seed, dtype=dtype, backend=backend, threads=threads),
        )
    for threads in (2, 3):
        for one, other in zip(runs[1], runs[threads]):
            np.testing.assert_array_equal(one, other)


def test_numba_thread_count_is_restored():
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    model = make_model("resnet")
    sn.sample_inputs(model, 10, 1, backend="numba", threads=1)
    assert numba.get_num_threads() == before
