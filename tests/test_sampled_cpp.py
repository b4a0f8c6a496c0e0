"""The compiled sampled kernels (_core and the cpp backend adaptors) against plain NumPy formulas.

docs/model.md, "Losses on a finite batch" for the loss and gradients; the generator follows the Philox4x32-10 + Box-Muller
specification (entry j of row i from counter (j // 4, i) and key = seed).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

_core = pytest.importorskip("shortcutnet._core", reason="the compiled core is not built")
from shortcutnet.backends import compiled  # noqa: E402

LEVELS = _core.build_info()["simd_supported"]
MASK = np.uint64(0xFFFFFFFF)


# --------------------------------------------------------------------------- NumPy references
def philox_numpy(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on uint64 arrays holding 32-bit words (products of two words fit in 64 bits)."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in (c0, c1, c2, c3))
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        p0 = c0 * np.uint64(0xD2511F53)
        p1 = c2 * np.uint64(0xCD9E8D57)
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & MASK, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & MASK
        k0 = (k0 + np.uint64(0x9E3779B9)) & MASK
        k1 = (k1 + np.uint64(0xBB67AE85)) & MASK
    return c0, c1, c2, c3


def gaussian_numpy(n, d, seed, dtype):
    """The generator's batch in float64 (before rounding to dtype) and the radius r of each entry."""
    blocks = (d + 3) // 4
    b = np.tile(np.arange(blocks, dtype=np.uint64), n)
    i = np.repeat(np.arange(n, dtype=np.uint64), blocks)
    x = philox_numpy(b & MASK, b >> np.uint64(32), i & MASK, i >> np.uint64(32), seed & 0xFFFFFFFF, seed >> 32)
    if np.dtype(dtype) == np.float32:
        u = [((w >> np.uint64(8)).astype(np.float64) + 0.5) * 2.0**-24 for w in x]
        for q in (0, 2):  # the radius's uniform keeps all 32 bits in the tail, u < 2^-9
            u[q] = np.where(x[q] < 2**23, (x[q].astype(np.float64) + 0.5) * 2.0**-32, u[q])
    else:
        u = [(w.astype(np.float64) + 0.5) * 2.0**-32 for w in x]
    r01 = np.sqrt(-2.0 * np.log(u[0]))
    r23 = np.sqrt(-2.0 * np.log(u[2]))
    z = np.stack([r01 * np.cos(2 * np.pi * u[1]), r01 * np.sin(2 * np.pi * u[1]),
                  r23 * np.cos(2 * np.pi * u[3]), r23 * np.sin(2 * np.pi * u[3])], axis=1)
    r = np.stack([r01, r01, r23, r23], axis=1)
    return z.reshape(n, 4 * blocks)[:, :d], r.reshape(n, 4 * blocks)[:, :d]


def patches(X, k, p, stride):
    return X.astype(np.float64)[:, np.arange(k)[:, None] * stride + np.arange(p)[None, :]]


def direction(s, w, normalize):
    u = w + s
    return (u / np.linalg.norm(u) if normalize else u), np.linalg.norm(u)


def predict_numpy(s, w, a, X, k, p, stride, normalize):
    v, _ = direction(s, w, normalize)
    return np.maximum(patches(X, k, p, stride) @ v, 0.0) @ a


def loss_grad_numpy(s, w, a, X, y, k, p, stride, normalize):
    v, norm_u = direction(s, w, normalize)
    Z = patches(X, k, p, stride)
    h = Z @ v
    r = np.maximum(h, 0.0) @ a - y.astype(np.float64)
    n = len(r)
    G = np.einsum("i,ij,ijt->t", r, a * (h > 0), Z) / n
    grad_a = r @ np.maximum(h, 0.0) / n
    grad_w = (G - (v @ G) * v) / norm_u if normalize else G
    return 0.5 * np.mean(r**2), grad_w, grad_a


def network(rng, k, p, shortcut=True):
    s = np.full(p, 1 / math.sqrt(p)) if shortcut else np.zeros(p)
    return s, rng.normal(size=p), rng.normal(size=k)


@pytest.fixture
def rng():
    return np.random.default_rng(20191208)


# --------------------------------------------------------------------------- the generator
def test_philox_known_answers():
    # Random123's published known-answer vectors for Philox4x32-10.
    assert _core.philox4x32((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    ones = 0xFFFFFFFF
    assert _core.philox4x32((ones,) * 4, (ones, ones)) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
    assert _core.philox4x32((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)) == (
        0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)


def test_philox_numpy_reference_matches_core():
    words = philox_numpy([0x243F6A88], [0x85A308D3], [0x13198A2E], [0x03707344], 0xA4093822, 0x299F31D0)
    assert tuple(int(w[0]) for w in words) == (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype, ulps", [(np.float32, 4), (np.float64, 8)])
@pytest.mark.parametrize("seed", [0, 2**64 - 1])
@pytest.mark.parametrize("d", [301, 37, 6, 1])  # long rows, and short rows sharing Philox calls
def test_generator_follows_the_formula(monkeypatch, level, dtype, ulps, seed, d):
    monkeypatch.setenv("SHORTCUTNET_SIMD", level)
    n = 40  # d not a multiple of 4 or of the lane count: the last block is cut
    X = _core.sample_inputs(n, d, seed, np.dtype(dtype).name, 0)
    assert X.dtype == dtype and X.shape == (n, d)
    z, r = gaussian_numpy(n, d, seed, dtype)
    err = np.abs(X.astype(np.float64) - z) / (r * np.finfo(dtype).eps)
    assert err.max() <= ulps


def test_generator_entry_does_not_depend_on_batch_shape():
    big = _core.sample_inputs(300, 77, 99, "float64", 0)
    small = _core.sample_inputs(5, 13, 99, "float64", 0)
    np.testing.assert_array_equal(big[:5, :13], small)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_generator_moments(dtype):
    stats = pytest.importorskip("scipy.stats", reason="scipy is needed for the Kolmogorov-Smirnov test")
    n, d = 1000, 1000
    X = _core.sample_inputs(n, d, 2024, dtype, 0).astype(np.float64)
    z = X.ravel()
    N = z.size
    # Bounds are 5 standard errors of each statistic under N(0, 1): mean 1/sqrt(N), variance
    # sqrt(2/N), neighbour correlation 1/sqrt(N), fourth moment sqrt(96/N).
    assert abs(z.mean()) < 5 / math.sqrt(N)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2 / N)
    assert abs(np.mean(z[:-1] * z[1:])) < 5 / math.sqrt(N)
    assert abs(np.mean(X[:-1] * X[1:])) < 5 / math.sqrt(N)  # same column, consecutive rows
    assert abs(np.mean(z**4) - 3.0) < 5 * math.sqrt(96 / N)
    assert stats.kstest(z[: 200_000], "norm").pvalue > 1e-4


# --------------------------------------------------------------------------- kernels vs NumPy
CASES = [(6, 5, 5), (4, 7, 3), (5, 4, 6), (16, 64, 64), (3, 37, 37)]  # (k, p, stride)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shortcut", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("k, p, stride", CASES)
def test_kernels_match_numpy(rng, dtype, shortcut, normalize, k, p, stride):
    s, w, a = network(rng, k, p, shortcut)
    d = (k - 1) * stride + p
    n = 700
    X = rng.normal(size=(n, d)).astype(dtype)
    y = rng.normal(size=n).astype(dtype)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    f = compiled.predict(s, w, a, X, k, p, stride, normalize, 0)
    assert f.dtype == dtype and f.shape == (n,)
    f_ref = predict_numpy(s, w, a, X, k, p, stride, normalize)
    np.testing.assert_allclose(f, f_ref, rtol=rtol, atol=rtol * np.abs(f_ref).max())
    loss, grad_w, grad_a = compiled.sampled_loss_grad(s, w, a, X, y, k, p, stride, normalize, 0)
    loss_ref, grad_w_ref, grad_a_ref = loss_grad_numpy(s, w, a, X, y, k, p, stride, normalize)
    assert isinstance(loss, float) and grad_w.dtype == np.float64 and grad_a.dtype == np.float64
    assert loss == pytest.approx(loss_ref, rel=rtol)
    np.testing.assert_allclose(grad_w, grad_w_ref, rtol=rtol, atol=rtol * np.abs(grad_w_ref).max())
    np.testing.assert_allclose(grad_a, grad_a_ref, rtol=rtol, atol=rtol * np.abs(grad_a_ref).max())


# --------------------------------------------------------------------------- determinism
def _all_kernels(rng, dtype, k=5, p=9, stride=7, n=256 * 23 + 17):
    # n * d is large enough for three threads to get work (the kernels stay serial on tiny batches).
    s, w, a = network(rng, k, p)
    _, w_star, a_star = network(rng, k, p)
    d = (k - 1) * stride + p
    name = np.dtype(dtype).name

    def run(threads):
        X = compiled.sample_inputs(n, d, 77, name, threads)
        y = compiled.predict(s, w_star, a_star, X, k, p, stride, True, threads)
        mat = compiled.sampled_loss_grad(s, w, a, X, y, k, p, stride, True, threads)
        fused = compiled.stochastic_loss_grad(s, w, a, w_star, a_star, n, k, p, stride, True, 77, name, threads)
        return X, y, mat, fused

    return run


def _assert_same_bits(first, second):
    X1, y1, m1, f1 = first
    X2, y2, m2, f2 = second
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    for one, two in ((m1, m2), (f1, f2)):
        assert one[0] == two[0]
        np.testing.assert_array_equal(one[1], two[1])
        np.testing.assert_array_equal(one[2], two[2])


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identical_bits_for_any_thread_count(monkeypatch, rng, level, dtype):
    monkeypatch.setenv("SHORTCUTNET_SIMD", level)
    run = _all_kernels(rng, dtype)
    reference = run(1)
    for threads in (2, 3, 0):
        _assert_same_bits(reference, run(threads))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_simd_level_gives_the_same_bits(monkeypatch, rng, dtype):
    # No contraction and fixed summation orders: the instruction set changes speed, not results.
    run = _all_kernels(rng, dtype)
    results = {}
    for level in LEVELS:
        monkeypatch.setenv("SHORTCUTNET_SIMD", level)
        assert _core.build_info()["simd_in_use"] == level
        results[level] = run(2)
    for level in LEVELS[1:]:
        _assert_same_bits(results["scalar"], results[level])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("k, p, stride", CASES)
def test_fused_equals_materialized_bitwise(rng, dtype, normalize, k, p, stride):
    s, w, a = network(rng, k, p)
    _, w_star, a_star = network(rng, k, p)
    d = (k - 1) * stride + p
    n, seed, name = 600, 2**63 + 5, np.dtype(dtype).name
    X = compiled.sample_inputs(n, d, seed, name, 0)
    y = compiled.predict(s, w_star, a_star, X, k, p, stride, normalize, 0)
    mat = compiled.sampled_loss_grad(s, w, a, X, y, k, p, stride, normalize, 0)
    fused = compiled.stochastic_loss_grad(s, w, a, w_star, a_star, n, k, p, stride, normalize, seed, name, 0)
    assert mat[0] == fused[0]
    np.testing.assert_array_equal(mat[1], fused[1])
    np.testing.assert_array_equal(mat[2], fused[2])


def test_more_blocks_than_one_round_of_partial_sums(rng):
    # Above 1024 blocks of 256 rows the partial sums are reduced in rounds; the order must not change.
    k, p, n = 2, 1, 1024 * 256 + 300
    s, w, a = np.zeros(p), np.array([0.7]), np.array([1.0, -0.5])
    w_star, a_star = np.array([1.3]), np.array([0.25, 0.5])
    X = compiled.sample_inputs(n, k * p, 1, "float64", 0)
    y = compiled.predict(s, w_star, a_star, X, k, p, p, False, 0)
    mat = compiled.sampled_loss_grad(s, w, a, X, y, k, p, p, False, 1)
    fused = compiled.stochastic_loss_grad(s, w, a, w_star, a_star, n, k, p, p, False, 1, "float64", 2)
    assert mat[0] == fused[0]
    np.testing.assert_array_equal(mat[1], fused[1])
    expected = loss_grad_numpy(s, w, a, X, y, k, p, p, False)
    assert mat[0] == pytest.approx(expected[0], rel=1e-10)
    np.testing.assert_allclose(mat[1], expected[1], rtol=1e-10)
    np.testing.assert_allclose(mat[2], expected[2], rtol=1e-10)


def test_fused_is_the_teacher_student_loss(rng):
    k, p = 4, 6
    s, w, a = network(rng, k, p)
    _, w_star, a_star = network(rng, k, p)
    n, seed = 500, 3
    X, _ = gaussian_numpy(n, k * p, seed, np.float64)
    y = predict_numpy(s, w_star, a_star, X, k, p, p, True)
    expected = loss_grad_numpy(s, w, a, X, y, k, p, p, True)
    got = compiled.stochastic_loss_grad(s, w, a, w_star, a_star, n, k, p, p, True, seed, "float64", 0)
    assert got[0] == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(got[2], expected[2], rtol=1e-11, atol=1e-13)


# --------------------------------------------------------------------------- layouts
def test_read_only_and_non_contiguous_inputs(rng):
    k, p, stride = 3, 4, 4
    s, w, a = network(rng, k, p)
    big = rng.normal(size=(50, 2 * k * p))
    X = big[:, ::2]  # non-contiguous view
    y = rng.normal(size=100)[::2]
    for arr in (X, y, s, w, a):
        arr.flags.writeable = False
    expected = loss_grad_numpy(s, w, a, X, y, k, p, stride, True)
    got = compiled.sampled_loss_grad(s, w, a, X, y, k, p, stride, True, 0)
    assert got[0] == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-11, atol=1e-14)
    f = compiled.predict(s, w, a, np.asfortranarray(X), k, p, stride, True, 0)
    np.testing.assert_allclose(f, predict_numpy(s, w, a, X, k, p, stride, True), rtol=1e-12)


def test_small_batches_and_single_sample(rng):
    k, p = 2, 3
    s, w, a = network(rng, k, p)
    X = rng.normal(size=(1, k * p))
    y = np.array([0.25])
    expected = loss_grad_numpy(s, w, a, X, y, k, p, p, False)
    got = compiled.sampled_loss_grad(s, w, a, X, y, k, p, p, False, 4)
    assert got[0] == pytest.approx(expected[0], rel=1e-13)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- bad arguments
def _good(rng):
    k, p = 3, 4
    s, w, a = network(rng, k, p)
    X = rng.normal(size=(10, k * p))
    y = rng.normal(size=10)
    return dict(s=s, w=w, a=a, X=X, y=y, k=k, p=p, stride=p, normalize=True, threads=0)


@pytest.mark.parametrize("change, error, name", [
    (dict(y=np.zeros(9)), ValueError, "y"),
    (dict(y=np.zeros((10, 1))), ValueError, "y"),
    (dict(y=np.zeros(10, dtype=np.float32)), TypeError, "y"),
    (dict(X=np.zeros((10, 13))), ValueError, "X"),
    (dict(X=np.zeros(12)), ValueError, "X"),
    (dict(X=np.zeros((0, 12)), y=np.zeros(0)), ValueError, "X"),
    (dict(X=np.zeros((10, 12), dtype=np.int64)), TypeError, "X"),
    (dict(X=np.full((10, 12), np.nan)), ValueError, "X"),
    (dict(y=np.full(10, np.inf)), ValueError, "y"),
    (dict(w=np.zeros(5)), ValueError, "w"),
    (dict(a=np.zeros(2)), ValueError, "a"),
    (dict(s=np.zeros(3)), ValueError, "s"),
    (dict(w=np.array([1.0, np.nan, 0, 0])), ValueError, "w"),
    (dict(k=0), ValueError, "k"),
    (dict(p=-1), ValueError, "p"),
    (dict(stride=0), ValueError, "stride"),
    (dict(threads=-1), ValueError, "threads"),
    (dict(k=2**40, stride=2**40), ValueError, "stride"),
])
def test_bad_arguments_raise(rng, change, error, name):
    args = _good(rng)
    args.update(change)
    with pytest.raises(error, match=name):
        _core.sampled_loss_grad(**args)
    if "y" not in change:
        args.pop("y")
        with pytest.raises(error, match=name):
            _core.predict(**args)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_one_non_finite_entry_is_named(rng, value):
    args = _good(rng)
    args["X"][7, 5] = value
    with pytest.raises(ValueError, match="X: expected finite values, got .* at flat index 89"):
        _core.sampled_loss_grad(**args)


def test_overflowing_finite_batch_is_no_error():
    s, w, a = np.full(2, 1 / math.sqrt(2)), np.zeros(2), np.ones(1)
    X = np.full((3, 2), 3e38, dtype=np.float32)  # each dot product overflows float32
    f = _core.predict(s, w, a, X, 1, 2, 2, True, 0)
    assert f.dtype == np.float32 and np.all(np.isposinf(f))
    loss, _, _ = _core.sampled_loss_grad(s, w, a, X, np.zeros(3, dtype=np.float32), 1, 2, 2, True, 0)
    assert loss == np.inf


def test_undefined_direction_raises(rng):
    args = _good(rng)
    args["w"] = -args["s"]
    with pytest.raises(ValueError, match="w"):
        _core.sampled_loss_grad(**args)


@pytest.mark.parametrize("change, error, name", [
    (dict(n=0), ValueError, "n"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=2**64), ValueError, "seed"),
    (dict(seed=True), TypeError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(dtype="int32"), TypeError, "dtype"),
    (dict(threads=-2), ValueError, "threads"),
    (dict(w_star=np.zeros(2)), ValueError, "w_star"),
    (dict(a_star=np.array([1.0, np.inf, 0.0])), ValueError, "a_star"),
])
def test_bad_generator_arguments_raise(rng, change, error, name):
    k, p = 3, 4
    s, w, a = network(rng, k, p)
    _, w_star, a_star = network(rng, k, p)
    args = dict(s=s, w=w, a=a, w_star=w_star, a_star=a_star, n=10, k=k, p=p, stride=p, normalize=True,
                seed=1, dtype="float64", threads=0)
    args.update(change)
    with pytest.raises(error, match=name):
        _core.stochastic_loss_grad(**args)
    if not {"w_star", "a_star"} & set(change):
        with pytest.raises(error, match=name):
            _core.sample_inputs(args["n"], k * p, args["seed"], args["dtype"], args["threads"])


def test_unknown_simd_level_raises(monkeypatch, rng):
    monkeypatch.setenv("SHORTCUTNET_SIMD", "avx9000")
    with pytest.raises(ValueError, match="SHORTCUTNET_SIMD"):
        _core.sampled_loss_grad(**_good(rng))
