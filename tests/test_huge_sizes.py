"""Sizes past 32 (and 64) bits: the kernels work or refuse, they never wrap around."""
import numpy as np
import pytest

import shortcutnet as sn

MODEL = sn.Model(16, 64)
W, A = np.zeros(64), np.ones(16)


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_a_batch_whose_byte_count_overflows_64_bits_is_refused(backend):
    with pytest.raises((ValueError, MemoryError)):
        sn.stochastic_loss_grad(MODEL, W, A, W, A, 2**62, 0, backend=backend)
    with pytest.raises((ValueError, MemoryError)):
        sn.sample_inputs(MODEL, 2**58, 0, backend=backend)


def test_the_compiled_core_names_the_overflowing_count():
    with pytest.raises(ValueError, match="n"):
        sn.stochastic_loss_grad(MODEL, W, A, W, A, 2**62, 0, backend="cpp")


def test_a_fused_batch_of_more_than_2_to_the_31_entries_is_summed_whole():
    # 2^31 / (k p) + 1 rows: element offsets past 2^31 in one call.  The kernel must finish and
    # its mean loss must be the population loss up to the sampling error of that many rows.
    rng = np.random.default_rng(0)
    w, a = rng.normal(size=64) * 0.3, rng.normal(size=16)
    w_star, a_star = rng.normal(size=64) * 0.3, rng.normal(size=16)
    n = 2**31 // (16 * 64) + 1
    loss, grad_w, grad_a = sn.stochastic_loss_grad(MODEL, w, a, w_star, a_star, n, 3, dtype=np.float32,
                                                   backend="cpp")
    # Standard error of the mean loss from a materialized batch of the same distribution.
    Z = sn.sample_inputs(MODEL, 20000, 4)
    r = sn.predict(MODEL, w, a, Z) - sn.teacher_labels(MODEL, w_star, a_star, Z)
    stderr = np.std(0.5 * r * r) / np.sqrt(n)
    exact = sn.population_loss(MODEL, w, a, w_star, a_star)
    assert abs(loss - exact) < 6 * stderr
    assert np.isfinite(grad_w).all() and np.isfinite(grad_a).all()
