"""Closed-form gradients (docs/model.md, "Closed forms under Gaussian input") against finite differences of the closed-form loss."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn
from configs import MODEL_CASES, case_id, random_config

# Richardson-extrapolated central difference: truncation error O(h^4) ~ 1e-13 and rounding error
# ~ eps * L / h ~ 1e-13 at h = 1e-3 for parameters of order one; 1e-7 leaves a wide margin.
STEP = 1e-3
TOLERANCE = 1e-7


def richardson_gradient(f, x, h=STEP):
    grad = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (8.0 * (f(x + e) - f(x - e)) - (f(x + 2 * e) - f(x - 2 * e))) / (12.0 * h)
    return grad


def relative_error(approx, exact):
    return np.max(np.abs(approx - exact)) / np.max(np.abs(exact))


@pytest.mark.parametrize("case", MODEL_CASES, ids=case_id)
def test_gradient_matches_finite_differences(case, backend, rng, measured):
    for _ in range(3):
        model, w, a, w_star, a_star = random_config(rng, case)
        grad_w, grad_a = sn.population_grad(model, w, a, w_star, a_star, backend=backend)
        fd_w = richardson_gradient(lambda x: sn.population_loss(model, x, a, w_star, a_star, backend=backend), w)
        fd_a = richardson_gradient(lambda x: sn.population_loss(model, w, x, w_star, a_star, backend=backend), a)
        err_w = measured.worst("finite differences: grad_w relative error", relative_error(fd_w, grad_w))
        err_a = measured.worst("finite differences: grad_a relative error", relative_error(fd_a, grad_a))
        assert err_w <= TOLERANCE, (model, grad_w, fd_w)
        assert err_a <= TOLERANCE, (model, grad_a, fd_a)


@pytest.mark.parametrize("case", MODEL_CASES, ids=case_id)
def test_loss_grad_in_one_call_matches_separate_calls(case, backend, rng):
    model, w, a, w_star, a_star = random_config(rng, case)
    loss, grad_w, grad_a = sn.population_loss_grad(model, w, a, w_star, a_star, backend=backend)
    assert loss == sn.population_loss(model, w, a, w_star, a_star, backend=backend)
    gw, ga = sn.population_grad(model, w, a, w_star, a_star, backend=backend)
    np.testing.assert_array_equal(gw, grad_w)
    np.testing.assert_array_equal(ga, grad_a)


def test_normalized_gradient_is_orthogonal_to_the_filter(backend, rng):
    # L depends on w only through the direction of w + s, so dL/dw is orthogonal to w + s.
    for case in MODEL_CASES:
        model, w, a, w_star, a_star = random_config(rng, case)
        if not model.normalize:
            continue
        grad_w, _ = sn.population_grad(model, w, a, w_star, a_star, backend=backend)
        u = w + model.s
        assert abs(grad_w @ u) <= 1e-14 * np.linalg.norm(grad_w) * np.linalg.norm(u)
