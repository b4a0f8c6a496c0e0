"""train(gradient="sampled"): SGD on fresh Gaussian batches from the fused kernel
``shortcutnet.kernels.stochastic_loss_grad``; the tests that run SGD skip while that module is absent."""
import numpy as np
import pytest

import shortcutnet as sn
from train_problems import problem


def kernels():
    return pytest.importorskip("shortcutnet.kernels", reason="shortcutnet.kernels (the sampled kernels) not built")


def test_sampled_needs_a_batch_size():
    model = sn.Model(6, 3)
    w_star, a_star, w0, a0 = problem(model, 0)
    with pytest.raises(ValueError, match="batch_size"):
        sn.train(model, w_star, a_star, w0, a0, steps=5, lr=0.1, gradient="sampled")
    with pytest.raises(ValueError, match="batch_size"):
        sn.train(model, w_star, a_star, w0, a0, steps=5, lr=0.1, gradient="sampled", batch_size=0)
    with pytest.raises(ValueError, match="seed"):
        sn.train(model, w_star, a_star, w0, a0, steps=5, lr=0.1, seed=3)


def test_sgd_is_reproducible_and_seeded():
    kernels()
    model = sn.Model(8, 4)
    w_star, a_star, w0, a0 = problem(model, 1)
    kw = dict(steps=40, lr=0.1, gradient="sampled", batch_size=64)
    first = sn.train(model, w_star, a_star, w0, a0, seed=5, **kw)
    again = sn.train(model, w_star, a_star, w0, a0, seed=5, **kw)
    other = sn.train(model, w_star, a_star, w0, a0, seed=6, **kw)
    assert np.array_equal(first.w, again.w) and np.array_equal(first.a, again.a)
    assert not np.array_equal(first.a, other.a)
    assert first.seed == 5


def test_first_sgd_step_uses_the_kernel_with_the_step_seed():
    k = kernels()
    from shortcutnet.seeds import step_seed

    model = sn.Model(8, 4)
    w_star, a_star, w0, a0 = problem(model, 2)
    res = sn.train(model, w_star, a_star, w0, a0, steps=1, lr=(0.1, 0.2), gradient="sampled", batch_size=32, seed=9)
    _, grad_w, grad_a = k.stochastic_loss_grad(model, w0, a0, w_star, a_star, 32, step_seed(9, 0))
    np.testing.assert_allclose(res.w, w0 - 0.1 * np.asarray(grad_w), rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.a, a0 - 0.2 * np.asarray(grad_a), rtol=0, atol=1e-15)
    # The recorded loss is the exact population loss.
    assert res.history["loss"][0] == pytest.approx(sn.population_loss(model, w0, a0, w_star, a_star), rel=1e-14)


def test_large_batches_follow_population_gd():
    # The SGD step's noise has variance ~ 1/batch_size; with 20000 samples per step the run ends
    # where population GD ends (ResNet from w0 = 0: the global optimum), to within the noise.
    kernels()
    model = sn.Model(8, 4)
    w_star, a_star, w0, a0 = problem(model, 3)
    exact = sn.train(model, w_star, a_star, w0, a0, steps=300, lr=0.1, tol=0.0)
    noisy = sn.train(model, w_star, a_star, w0, a0, steps=300, lr=0.1, tol=0.0, gradient="sampled",
                     batch_size=20000, seed=1)
    assert exact.outcome == "global"
    assert noisy.phi < 0.05
    np.testing.assert_allclose(noisy.a, exact.a, atol=0.05 * np.linalg.norm(a_star))
