"""The normalized model depends on w only through the direction of u = w + s, so its loss and
(scaled) gradient must not change when u is multiplied by 2^e, however small or large 2^e is.

The un-normalized model's loss scales like |u|^2 and so over- or underflows beyond
|u| ~ 1e+-154; it is tested only inside that range."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn
from configs import draw_parameters

EXPONENTS = [-990, -500, -180, 180, 500, 990]  # |u| from 1e-298 to 1e298


@pytest.mark.parametrize("stride", [None, 1, 2], ids=["stride=p", "stride=1", "stride=2"])
def test_normalized_model_is_exactly_scale_invariant(stride, backend, rng):
    model = sn.Model(4, 3, shortcut=False, stride=stride)
    for _ in range(5):
        w, a, w_star, a_star = draw_parameters(rng, model)
        loss, grad_w, grad_a = sn.population_loss_grad(model, w, a, w_star, a_star, backend=backend)
        for e in EXPONENTS:
            c = 2.0**e
            scaled = sn.population_loss_grad(model, c * w, a, w_star / c, a_star, backend=backend)
            # dL/dw scales like 1/|u|; powers of two make every step exact.
            assert scaled[0] == loss
            np.testing.assert_array_equal(scaled[1] * c, grad_w)
            np.testing.assert_array_equal(scaled[2], grad_a)


@pytest.mark.parametrize("stride", [None, 1], ids=["stride=p", "stride=1"])
def test_unnormalized_model_scales_like_u_squared(stride, backend, rng):
    model = sn.Model(4, 3, shortcut=False, normalize=False, stride=stride)
    w, a, w_star, a_star = draw_parameters(rng, model)
    loss, grad_w, grad_a = sn.population_loss_grad(model, w, a, w_star, a_star, backend=backend)
    for e in (-450, -100, 100, 450):  # |u| ~ 1e+-135
        c = 2.0**e
        scaled = sn.population_loss_grad(model, c * w, a, c * w_star, a_star, backend=backend)
        np.testing.assert_allclose(scaled[0] / c**2, loss, rtol=1e-14)
        np.testing.assert_allclose(scaled[1] / c, grad_w, rtol=1e-14, atol=1e-14 * np.abs(grad_w).max())
        np.testing.assert_allclose(scaled[2] / c**2, grad_a, rtol=1e-14, atol=1e-14 * np.abs(grad_a).max())
