"""The counter-based Gaussian generator: Philox known answers, distribution, cross-backend identity."""
import math

import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet.backends import numba_sampled, reference_sampled
from sampled_cases import BACKENDS, DTYPES, backend_or_skip

# Random123's published known-answer vectors for Philox4x32-10: (counter, key, output).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_reference_philox_known_answers(counter, key, expected):
    words = reference_sampled.philox4x32(*(np.array([c], dtype=np.uint64) for c in counter), *key)
    assert tuple(int(x[0]) for x in words) == expected


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_numba_philox_known_answers(counter, key, expected):
    # The same counter in every lane, with other counters around it: lanes must not mix.
    lanes = np.arange(4 * numba_sampled.LANES, dtype=np.uint64).reshape(4, numba_sampled.LANES)
    lanes[:, 5] = counter
    words = np.empty(lanes.shape, dtype=np.uint32)
    numba_sampled.philox_lanes(lanes, *(np.uint64(k) for k in key), words)
    assert tuple(int(x) for x in words[:, 5]) == expected


def test_reference_follows_the_construction():
    """Entry (i, j) is Box-Muller of Philox block j // 4 of row i, written out for a few entries."""
    seed = 0x0123456789ABCDEF
    X = reference_sampled.sample_inputs(3, 11, seed, np.float64)
    for i, j in [(0, 0), (1, 5), (2, 10), (2, 3)]:
        b = j // 4
        x = reference_sampled.philox4x32(*(np.array([c], dtype=np.uint64) for c in (b, 0, i, 0)),
                                         seed & 0xFFFFFFFF, seed >> 32)
        u = [(int(word[0]) + 0.5) * 2.0**-32 for word in x]
        pair = (j % 4) // 2
        r = math.sqrt(-2.0 * math.log(u[2 * pair]))
        angle = 2.0 * math.pi * u[2 * pair + 1]
        want = r * (math.cos(angle) if j % 2 == 0 else math.sin(angle))
        assert abs(X[i, j] - want) <= 8 * np.finfo(np.float64).eps * r


def box_muller_in_float64(n, d, seed, dtype):
    """The construction with libm's log, cos and sin in float64 (no reduction tricks): the batch
    to within a few ulps of the dtype, independently of how the backends compute it, and the
    Box-Muller radius of each entry."""
    rows = np.arange(n, dtype=np.uint64)
    blocks = np.arange((d + 3) // 4, dtype=np.uint64)
    b, i = np.meshgrid(blocks, rows)
    words = reference_sampled.philox4x32(b & 0xFFFFFFFF, b >> np.uint64(32), i, np.zeros_like(i),
                                         seed & 0xFFFFFFFF, seed >> 32)
    if np.dtype(dtype) == np.float32:
        u = [((x >> np.uint64(8)).astype(np.float64) + 0.5) * 2.0**-24 for x in words]
        for q in (0, 2):  # the radius's uniform keeps all 32 bits in the tail, u < 2^-9
            u[q] = np.where(words[q] < 2**23, (words[q].astype(np.float64) + 0.5) * 2.0**-32, u[q])
    else:
        u = [(x.astype(np.float64) + 0.5) * 2.0**-32 for x in words]
    z, radius = [], []
    for first, second in ((u[0], u[1]), (u[2], u[3])):
        r = np.sqrt(-2.0 * np.log(first))
        z += [r * np.cos(2.0 * np.pi * second), r * np.sin(2.0 * np.pi * second)]
        radius += [r, r]
    return tuple(np.stack(x, axis=-1).reshape(n, -1)[:, :d] for x in (z, radius))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
# d = 17: rows share the generator's lanes; d = 283: rows longer than the lanes, whose last
# Philox block is partly used.
@pytest.mark.parametrize("model", [sn.Model(7, 5, stride=2), sn.Model(3, 95, stride=94)], ids=["d17", "d283"])
def test_backends_draw_the_construction(backend, dtype, model):
    backend_or_skip(backend)
    seed = 2**64 - 12345
    X = sn.sample_inputs(model, 333, seed, dtype=dtype, backend=backend)
    want, radius = box_muller_in_float64(333, model.d, seed, dtype)
    assert X.shape == (333, model.d) and X.dtype == np.dtype(dtype)
    # A few ulps of the dtype relative to the Box-Muller radius, plus the final rounding (and, in
    # float64, the error of 2 pi u' in the float64 formula itself: 2^-52 2 pi r).
    eps = np.finfo(dtype).eps
    bound = (4 * eps + 8 * np.finfo(np.float64).eps) * radius + np.abs(want) * (eps / 2)
    err = np.abs(X.astype(np.float64) - want)
    assert np.all(err <= bound), f"worst error {np.max(err / bound):.3g} x the bound"


# (n, d): one entry; rows sharing the lanes (d < 256), a whole lane group, long rows with a partial
# last Philox block; row counts across a block of 256.
SHAPES = [(1, 1), (9, 3), (300, 17), (257, 64), (5, 256), (3, 283), (2, 1031)]
SEEDS = [0, 11, 2**32 + 7, 2**63 + 12345, 2**64 - 1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_backend_draws_the_same_bits(dtype):
    """A seed names the same batch, bit for bit, on every backend, for every dtype and shape."""
    uint = np.uint32 if np.dtype(dtype) == np.float32 else np.uint64
    present = [b for b in BACKENDS if b in sn.backends()]
    assert "numpy" in present
    for n, d in SHAPES:
        model = sn.Model(1, d)
        for seed in SEEDS:
            draws = {b: sn.sample_inputs(model, n, seed, dtype=dtype, backend=b).reshape(n, d) for b in present}
            ref = draws["numpy"].view(uint)
            for b, X in draws.items():
                assert X.dtype == np.dtype(dtype)
                mismatches = np.count_nonzero(X.view(uint) != ref)
                assert mismatches == 0, f"{b}: {mismatches} of {X.size} entries differ (n={n}, d={d}, seed={seed})"


@pytest.mark.parametrize("backend", BACKENDS)
def test_entries_do_not_depend_on_the_batch_shape(backend):
    backend_or_skip(backend)
    small = sn.sample_inputs(sn.Model(2, 5), 5, 99, backend=backend).reshape(5, 10)
    large = sn.sample_inputs(sn.Model(13, 1), 40, 99, backend=backend).reshape(40, 13)
    np.testing.assert_array_equal(small, large[:5, :10])


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeds_use_all_64_bits(backend):
    backend_or_skip(backend)
    model = sn.Model(4, 4)
    draws = [sn.sample_inputs(model, 2, seed, backend=backend) for seed in (1, 2**32 + 1, 2**63 + 1)]
    assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], draws[2])
    np.testing.assert_array_equal(draws[0], sn.sample_inputs(model, 2, 1, backend=backend))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_distribution(backend, dtype):
    """Moments, neighbour correlations and a Kolmogorov-Smirnov test on 2^18 draws.

    Each moment is compared with its exact value within 5 standard errors of its estimator
    (Var z = 1, Var z^2 = 2, Var z^3 = 15, Var z^4 = 96 for z ~ N(0, 1), over N draws).
    """
    stats = pytest.importorskip("scipy.stats")
    backend_or_skip(backend)
    X = sn.sample_inputs(sn.Model(64, 16), 256, 2024, dtype=dtype, backend=backend).reshape(256, 1024)
    z = X.astype(np.float64).ravel()
    N = z.size
    assert abs(z.mean()) < 5 * math.sqrt(1 / N)
    assert abs(np.mean(z**2) - 1) < 5 * math.sqrt(2 / N)
    assert abs(np.mean(z**3)) < 5 * math.sqrt(15 / N)
    assert abs(np.mean(z**4) - 3) < 5 * math.sqrt(96 / N)
    # Within a row (both halves of a Box-Muller pair included) and across rows.
    for lag_a, lag_b in ((X[:, :-1], X[:, 1:]), (X[:-1], X[1:]), (X[:, :-4], X[:, 4:])):
        corr = np.mean(lag_a.astype(np.float64) * lag_b)
        assert abs(corr) < 5 / math.sqrt(lag_a.size), corr
    assert stats.kstest(z, "norm").pvalue > 1e-4
    assert stats.kstest(X[:, 1].astype(np.float64), "norm").pvalue > 1e-4  # one coordinate alone


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_words_reach_the_tail(dtype):
    """The smallest radius words give |z| up to sqrt(66 ln 2) = 6.76 in both dtypes (a 25-bit float32
    uniform would stop at 5.89), the same bits in NumPy and Numba, and the formula's values."""
    first = np.array([0, 1, 2**23 - 1, 2**23, 2**23 + 255, 2**32 - 1] + [7] * (numba_sampled.LANES - 6), dtype=np.uint64)
    second = np.zeros_like(first)  # angle 2 pi u' with u' the smallest uniform: cos close to 1
    z_ref = reference_sampled.normals_of_words(first, second, first, second, dtype)
    z_cos, z_sin = np.empty(first.shape[0], dtype), np.empty(first.shape[0], dtype)
    transform = numba_sampled.box_muller_lanes_f32 if np.dtype(dtype) == np.float32 else numba_sampled.box_muller_lanes_f64
    transform(first.astype(np.uint32), second.astype(np.uint32), z_cos, z_sin)
    np.testing.assert_array_equal(z_cos.astype(dtype).view(np.uint8), z_ref[0].astype(dtype).view(np.uint8))
    np.testing.assert_array_equal(z_sin.astype(dtype).view(np.uint8), z_ref[1].astype(dtype).view(np.uint8))
    x = first.astype(np.float64)
    if np.dtype(dtype) == np.float32:
        u = np.where(first < 2**23, (x + 0.5) * 2.0**-32, (np.floor(x / 256) + 0.5) * 2.0**-24)
        angle = 2 * np.pi * 0.5 * 2.0**-24
    else:
        u = (x + 0.5) * 2.0**-32
        angle = 2 * np.pi * 0.5 * 2.0**-32
    want = np.sqrt(-2 * np.log(u)) * np.cos(angle)
    np.testing.assert_allclose(z_ref[0].astype(np.float64), want, rtol=8 * np.finfo(dtype).eps)
    assert z_ref[0][0] > 6.76
