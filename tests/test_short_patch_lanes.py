"""The sampled kernels take short patches (p below one 64-byte lane group: 16 float32 or 8 float64
entries) several rows at a time, one row per vector lane, the fused kernel its teacher's forward
pass in the same lanes.  Each lane must run the sums of docs/model.md in their documented order:
an in-order NumPy replay of that order (in T, then float64) pins the bits of the stored kernel, and
the fused kernel must give the stored kernel's bits on the same rows and the labels predict()
stores, at every instruction-set level and for every shape of the last, partly filled group of
rows (d = 1, 21, 66, 14 here are rows the generator pads to whole Philox blocks)."""
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


def documented_order(X, y, s, w, a, k, p, stride, dtype):
    """The un-normalized model's (loss, grad_w, grad_a) on rows X with labels y, each sum in the
    order of docs/model.md: h_ij = ((x_0 v_0 + x_1 v_1) + ...) in T, f_i and r_i in float64,
    g_i = sum_j a_j 1[h_ij > 0] patch_ij in T over j in order, the rows' terms added in row order
    into a block's float64 sums, the blocks (256 rows) in order."""
    T = np.dtype(dtype).type
    v, aT = (w + s).astype(T), a.astype(T)
    n = X.shape[0]
    patches = [X[:, j * stride : j * stride + p] for j in range(k)]
    h = []
    for x in patches:
        hj = x[:, 0] * v[0]
        for t in range(1, p):
            hj = hj + x[:, t] * v[t]
        h.append(hj)
    f = np.zeros(n)
    for j in range(k):
        f = f + a[j] * np.maximum(h[j].astype(np.float64), 0.0)
    r = f - y.astype(np.float64)
    g = np.zeros((n, p), dtype=T)
    for j in range(k):
        c = np.where(h[j] > 0, aT[j], T(0))
        g = g + c[:, None] * patches[j]
    terms = np.column_stack(
        [r * r] + [r * np.maximum(hj.astype(np.float64), 0.0) for hj in h] + [r[:, None] * g.astype(np.float64)]
    )
    total = np.zeros(terms.shape[1])
    for b in range(0, n, 256):
        total = total + np.add.accumulate(terms[b : b + 256], axis=0)[-1]
    inv_n = 1.0 / n
    return 0.5 * total[0] * inv_n, total[1 + k :] * inv_n, total[1 : 1 + k] * inv_n


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k, p, stride", SHAPES)
@pytest.mark.parametrize("n", [1, 7, 517])
def test_rows_in_lanes_sum_in_the_documented_order(monkeypatch, level, dtype, k, p, stride, n):
    if p >= 64 // np.dtype(dtype).itemsize:
        pytest.skip("a whole lane group per patch: the lane-group sums of dot_lanes, not in-order sums")
    monkeypatch.setenv("SHORTCUTNET_SIMD", level)
    rng = np.random.default_rng(k * 1000 + p * 10 + stride + 1)
    s, w, a, w_star, a_star = (rng.normal(size=m) for m in (p, p, k, p, k))
    d = (k - 1) * stride + p
    seed, name = 777 + n, np.dtype(dtype).name
    X = compiled.sample_inputs(n, d, seed, name, 0)
    y = compiled.predict(s, w_star, a_star, X, k, p, stride, False, 0)
    loss, grad_w, grad_a = compiled.sampled_loss_grad(s, w, a, X, y, k, p, stride, False, 2)
    want = documented_order(X, y, s, w, a, k, p, stride, dtype)
    assert loss == want[0]
    np.testing.assert_array_equal(grad_w, want[1])
    np.testing.assert_array_equal(grad_a, want[2])
