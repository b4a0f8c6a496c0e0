"""The materialized kernel takes short patches (p below one 64-byte lane group: 16 float32 or
8 float64 entries) several rows at a time, one row per vector lane.  Each lane must run the very
sums of the per-row pass, so the batch gives the bits of the fused kernel at every
instruction-set level, for every shape of the last, partly filled group of rows.  The fused
kernel passes its rows one at a time where 4 does not divide d = (k - 1) stride + p (its buffer
holds whole Philox blocks per row): those shapes (d = 1, 21, 66, 14 here) pin the lanes to the
per-row pass; where 4 divides d it takes the lanes too, and the shapes check the two agree."""
from __future__ import annotations

import numpy as np
import pytest

_core = pytest.importorskip("shortcutnet._core", reason="the compiled core is not built")
from shortcutnet.backends import compiled  # noqa: E402

LEVELS = _core.build_info()["simd_supported"]
SHAPES = [(1, 1, 1), (3, 7, 7), (5, 8, 2), (20, 10, 10), (4, 15, 17), (6, 3, 1), (2, 5, 9)]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k, p, stride", SHAPES)
@pytest.mark.parametrize("n", [1, 7, 517])
def test_rows_in_lanes_give_the_bits_of_one_row_at_a_time(monkeypatch, level, dtype, k, p, stride, n):
    monkeypatch.setenv("SHORTCUTNET_SIMD", level)
    rng = np.random.default_rng(k * 1000 + p * 10 + stride)
    s, w, a, w_star, a_star = (rng.normal(size=m) for m in (p, p, k, p, k))
    d = (k - 1) * stride + p
    seed, name = 12345 + n, np.dtype(dtype).name
    X = compiled.sample_inputs(n, d, seed, name, 0)
    for normalize in (True, False):
        y = compiled.predict(s, w_star, a_star, X, k, p, stride, normalize, 0)
        mat = compiled.sampled_loss_grad(s, w, a, X, y, k, p, stride, normalize, 1)
        fused = compiled.stochastic_loss_grad(s, w, a, w_star, a_star, n, k, p, stride, normalize, seed, name, 1)
        assert mat[0] == fused[0]
        np.testing.assert_array_equal(mat[1], fused[1])
        np.testing.assert_array_equal(mat[2], fused[2])
