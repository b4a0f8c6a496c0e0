"""The generator's tails on 10^9 draws: the frequency of |z| > t against the normal tail
P(|z| > t) = erfc(t / sqrt 2), for each dtype.  Too long for the default run (marker ``tails``,
deselected in pyproject.toml); run it with ``python -m pytest -m tails tests/test_generator_tails.py``.

At t = 6 about 2 hits are expected, so only an excess can show there; a tail cut at 5.9 (what a
float32 uniform of 25 bits would give) is below the sampling error of 10^9 draws, and
tests/test_philox.py checks the extreme words directly.
"""
import math

import numpy as np
import pytest

import shortcutnet as sn

pytestmark = pytest.mark.tails

DRAWS = 10**9
THRESHOLDS = (4.0, 5.0, 6.0)
CHUNK_ROWS, ROW = 4096, 4096  # 2^24 entries per batch


def tail_counts(dtype):
    """Counts of |z| > t for each threshold over whole batches of at least DRAWS entries."""
    backend = "cpp" if "cpp" in sn.backends() else "numba"
    model = sn.Model(ROW, 1)
    batches = -(-DRAWS // (CHUNK_ROWS * ROW))
    counts = np.zeros(len(THRESHOLDS), dtype=np.int64)
    for b in range(batches):
        X = sn.sample_inputs(model, CHUNK_ROWS, 2**40 + b, dtype=dtype, backend=backend)
        big = np.abs(X[np.abs(X) > THRESHOLDS[0]]).astype(np.float64)
        counts += [np.count_nonzero(big > t) for t in THRESHOLDS]
    return counts, batches * CHUNK_ROWS * ROW


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tail_frequencies_match_the_normal(dtype):
    counts, n = tail_counts(dtype)
    for t, seen in zip(THRESHOLDS, counts):
        expected = n * math.erfc(t / math.sqrt(2.0))
        # The two entries of a Box-Muller pair exceed t together only when r > t sqrt 2, far rarer,
        # so the count is Poisson to first order: 5 standard deviations, one hit of slack.
        print(f"{np.dtype(dtype).name} |z| > {t}: {seen} seen, {expected:.1f} expected in {n} draws")
        assert abs(seen - expected) <= 5.0 * math.sqrt(expected) + 1.0, (t, seen, expected)
