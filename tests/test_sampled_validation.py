"""Bad input to the sampled kernels: clear ValueError/TypeError on every backend, odd layouts accepted."""
import numpy as np
import pytest

import shortcutnet as sn
from sampled_cases import BACKENDS, backend_or_skip

MODEL = sn.Model(3, 4)
RNG = np.random.default_rng(0)
W, A = RNG.normal(size=4), RNG.normal(size=3)
W_STAR, A_STAR = RNG.normal(size=4), RNG.normal(size=3)
Z = RNG.normal(size=(10, 3, 4))
Y = RNG.normal(size=10)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return backend_or_skip(request.param)


@pytest.mark.parametrize(
    "Z_bad, error, words",
    [
        (Z.astype(np.complex128), TypeError, ["Z", "complex128"]),
        (Z > 0, TypeError, ["Z", "bool"]),
        (Z.astype(object), TypeError, ["Z", "object"]),
        (Z[:, :, :3], ValueError, ["Z", "(n, 3, 4) or (n, 12)", "(10, 3, 3)"]),
        (Z.reshape(10, 12, 1), ValueError, ["Z", "(10, 12, 1)"]),
        (Z[:0], ValueError, ["Z", "positive number of samples"]),
        (np.where(np.arange(120).reshape(10, 3, 4) == 17, np.nan, Z), ValueError, ["Z", "finite", "nan", "17"]),
        (np.where(np.arange(120).reshape(10, 3, 4) == 5, -np.inf, Z), ValueError, ["Z", "finite", "-inf"]),
    ],
)
def test_bad_batches(backend, Z_bad, error, words):
    for call in (
        lambda: sn.sampled_loss_grad(MODEL, W, A, Z_bad, Y, backend=backend),
        lambda: sn.predict(MODEL, W, A, Z_bad, backend=backend),
    ):
        with pytest.raises(error) as info:
            call()
        for word in words:
            assert word in str(info.value)


@pytest.mark.parametrize(
    "y_bad, error, words",
    [
        (Y[:9], ValueError, ["y", "(10,)", "(9,)"]),
        (Y[:, None], ValueError, ["y", "(10, 1)"]),
        (Y.astype(np.complex64), TypeError, ["y", "complex64"]),
        (np.where(np.arange(10) == 3, np.inf, Y), ValueError, ["y", "finite", "inf"]),
    ],
)
def test_bad_labels(backend, y_bad, error, words):
    with pytest.raises(error) as info:
        sn.sampled_loss_grad(MODEL, W, A, Z, y_bad, backend=backend)
    for word in words:
        assert word in str(info.value)


def test_undefined_direction(backend):
    with pytest.raises(ValueError, match="w: expected w \\+ s != 0"):
        sn.sampled_loss_grad(MODEL, -MODEL.s, A, Z, Y, backend=backend)
    with pytest.raises(ValueError, match="w_star"):
        sn.stochastic_loss_grad(MODEL, W, A, -MODEL.s, A_STAR, 10, 1, backend=backend)
    with pytest.raises(ValueError, match="w: expected shape \\(4,\\)"):
        sn.predict(MODEL, W[:3], A, Z, backend=backend)
    with pytest.raises(ValueError, match="a: expected finite"):
        sn.predict(MODEL, W, np.array([1.0, np.nan, 0.0]), Z, backend=backend)


def test_unnormalized_network_is_defined_at_zero_filter(backend):
    """Without normalization v = u = 0 is a valid (dead) network: f = 0, gradients from the labels."""
    model = sn.Model(3, 4, normalize=False)
    loss, grad_w, grad_a = sn.sampled_loss_grad(model, -model.s, A, Z, Y, backend=backend)
    assert loss == pytest.approx(0.5 * np.mean(Y**2), rel=1e-14)
    assert not grad_w.any() and not grad_a.any()
    assert not sn.predict(model, -model.s, A, Z, backend=backend).any()


@pytest.mark.parametrize("n, error, words", [(0, ValueError, ["n", "positive number of samples", "0"]),
                                             (-3, ValueError, ["n", "-3"]),
                                             (2.0, TypeError, ["n", "integer"]),
                                             (True, TypeError, ["n", "integer"])])
def test_bad_sample_counts(backend, n, error, words):
    for call in (
        lambda: sn.sample_inputs(MODEL, n, 1, backend=backend),
        lambda: sn.stochastic_loss_grad(MODEL, W, A, W_STAR, A_STAR, n, 1, backend=backend),
    ):
        with pytest.raises(error) as info:
            call()
        for word in words:
            assert word in str(info.value)


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2**64, ValueError), (1.5, TypeError),
                                         (False, TypeError), ("7", TypeError), (None, TypeError)])
def test_bad_seeds(backend, seed, error):
    with pytest.raises(error, match="seed"):
        sn.sample_inputs(MODEL, 3, seed, backend=backend)
    with pytest.raises(error, match="seed"):
        sn.stochastic_loss_grad(MODEL, W, A, W_STAR, A_STAR, 3, seed, backend=backend)


def test_extreme_seeds_work(backend):
    for seed in (0, 2**64 - 1, np.uint64(2**64 - 1), np.int32(5)):
        assert sn.sample_inputs(MODEL, 2, seed, backend=backend).shape == (2, 3, 4)


@pytest.mark.parametrize("threads, error", [(0, ValueError), (-2, ValueError), (1.0, TypeError), ("2", TypeError)])
def test_bad_threads(backend, threads, error):
    calls = (
        lambda: sn.sample_inputs(MODEL, 3, 1, threads=threads, backend=backend),
        lambda: sn.predict(MODEL, W, A, Z, threads=threads, backend=backend),
        lambda: sn.sampled_loss_grad(MODEL, W, A, Z, Y, threads=threads, backend=backend),
        lambda: sn.stochastic_loss_grad(MODEL, W, A, W_STAR, A_STAR, 3, 1, threads=threads, backend=backend),
    )
    for call in calls:
        with pytest.raises(error, match="threads"):
            call()


@pytest.mark.parametrize("dtype", [np.float16, np.complex64, "int8", object, "float32x"])
def test_bad_dtypes(backend, dtype):
    with pytest.raises(TypeError, match="dtype"):
        sn.sample_inputs(MODEL, 3, 1, dtype=dtype, backend=backend)
    with pytest.raises(TypeError, match="dtype"):
        sn.stochastic_loss_grad(MODEL, W, A, W_STAR, A_STAR, 3, 1, dtype=dtype, backend=backend)


def test_wrong_model_and_backend():
    with pytest.raises(TypeError, match="model"):
        sn.sampled_loss_grad((3, 4), W, A, Z, Y)
    with pytest.raises(ValueError, match="backend"):
        sn.predict(MODEL, W, A, Z, backend="fortran")
    with pytest.raises(ValueError, match="Z: expected shape \\(n, 13\\)"):
        # overlapping models take raw inputs only: a (n, k, p) array is not a batch of them
        sn.predict(sn.Model(3, 5, stride=4), np.zeros(5), np.ones(3), np.ones((2, 3, 5)))


def test_odd_layouts_and_dtypes_are_converted(backend):
    """Read-only, non-contiguous, Fortran-ordered and integer batches give the plain result."""
    want = sn.sampled_loss_grad(MODEL, W, A, Z, Y, backend=backend)
    read_only = Z.copy()
    read_only.setflags(write=False)
    y_read_only = Y.copy()
    y_read_only.setflags(write=False)
    strided = np.zeros((20, 3, 8))
    strided[::2, :, ::2] = Z
    for Z_odd, y_odd in ((read_only, y_read_only), (strided[::2, :, ::2], Y), (np.asfortranarray(Z), Y[::-1][::-1])):
        got = sn.sampled_loss_grad(MODEL, W, A, Z_odd, y_odd, backend=backend)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(sn.predict(MODEL, W, A, Z_odd, backend=backend), sn.predict(MODEL, W, A, Z, backend=backend))
    # Integers become float64 (exactly, below 2^53); float32 stays float32 and y follows Z's dtype.
    Z_int = np.arange(120).reshape(10, 3, 4) % 7 - 3
    got = sn.sampled_loss_grad(MODEL, W, A, Z_int, Y, backend=backend)
    want = sn.sampled_loss_grad(MODEL, W, A, Z_int.astype(np.float64), Y, backend=backend)
    assert got[0] == want[0]
    assert sn.predict(MODEL, W, A, Z_int, backend=backend).dtype == np.float64
    assert sn.predict(MODEL, W, A, Z.astype(np.float32), backend=backend).dtype == np.float32
    got = sn.sampled_loss_grad(MODEL, W, A, Z.astype(np.float32), Y, backend=backend)
    want = sn.sampled_loss_grad(MODEL, W, A, Z.astype(np.float32), Y.astype(np.float32), backend=backend)
    assert got[0] == want[0]
    # Nested lists are arrays too.
    assert sn.sampled_loss_grad(MODEL, W.tolist(), A.tolist(), Z.tolist(), Y.tolist(), backend=backend)[0] == pytest.approx(
        sn.sampled_loss_grad(MODEL, W, A, Z, Y, backend=backend)[0], rel=1e-15)


def test_huge_finite_values_are_not_mistaken_for_non_finite(backend):
    """The finiteness check sums the batch first; an overflowing sum of finite values is no error."""
    model = sn.Model(1, 2)
    Z = np.full((3, 1, 2), 3e38, dtype=np.float32)
    f = sn.predict(model, np.zeros(2), np.ones(1), Z, backend=backend)
    assert f.dtype == np.float32 and np.all(np.isinf(f))
    Z[1, 0, 1] = np.nan
    with pytest.raises(ValueError, match="Z: expected finite values, got nan at flat index 3"):
        sn.predict(model, np.zeros(2), np.ones(1), Z, backend=backend)
