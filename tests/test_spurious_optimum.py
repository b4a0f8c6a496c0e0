"""The spurious critical point of docs/model.md, "Critical points": v = -v*, a = a_sp."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn


def teacher(rng, k, minimum):
    """a* for which the spurious point is (minimum=True) or is not a local minimum, with margin.

    Zero-mean a* gives (1^T a*)^2 ~ |a*|^2 < ((pi - 1 + k)/pi) |a*|^2; a* of one sign gives
    (1^T a*)^2 ~ k |a*|^2, above it for k >= 2.
    """
    while True:
        a_star = rng.normal(size=k) if minimum else 1.0 + 0.3 * rng.normal(size=k)
        ones = np.ones((k, k))
        a_sp = np.linalg.solve(ones + (np.pi - 1.0) * np.eye(k), (ones - np.eye(k)) @ a_star)
        # The requested side, away from the degenerate boundary a_sp.a* = 0.
        if (a_sp @ a_star < 0) == minimum and abs(a_sp @ a_star) > 0.05 * (a_star @ a_star):
            return a_star


def spurious_point(rng, model, a_star):
    w_star = rng.normal(size=model.p) / np.sqrt(model.p)
    c = rng.uniform(0.3, 3.0)
    w = -(w_star + model.s) * c - model.s  # v = -v*
    return w, w_star, sn.spurious_optimum(model, a_star)


@pytest.mark.parametrize("k", [1, 2, 5, 12])
def test_spurious_second_layer_solves_the_linear_system(k, backend, rng):
    a_star = rng.normal(size=k)
    a_sp = sn.spurious_optimum(sn.Model(k, 3), a_star, backend=backend)
    ones = np.ones((k, k))
    expected = np.linalg.solve(ones + (np.pi - 1.0) * np.eye(k), (ones - np.eye(k)) @ a_star)
    np.testing.assert_allclose(a_sp, expected, rtol=1e-13, atol=1e-14 * np.abs(a_star).max())


@pytest.mark.parametrize("minimum", [True, False], ids=["minimum", "saddle"])
@pytest.mark.parametrize("k,p,shortcut", [(5, 4, True), (12, 6, False), (3, 2, True), (8, 3, "custom")])
def test_spurious_point_is_critical_and_classified(k, p, shortcut, minimum, backend, rng, measured):
    if shortcut == "custom":
        shortcut = rng.normal(size=p)
    model = sn.Model(k, p, shortcut=shortcut)
    a_star = teacher(rng, k, minimum)
    w, w_star, a_sp = spurious_point(rng, model, a_star)
    assert sn.angle(w + model.s, w_star + model.s) > np.pi - 1e-14

    grad_w, grad_a = sn.population_grad(model, w, a_sp, w_star, a_star, backend=backend)
    norm = np.sqrt(grad_w @ grad_w + grad_a @ grad_a) / np.linalg.norm(a_star)
    measured.worst("spurious point: |grad| / |a*|", norm)
    assert norm <= 1e-12

    assert sn.is_spurious_minimum(model, a_star) is minimum
    assert bool(a_sp @ a_star < 0) is minimum
    # Loss along small perturbations: L - L(pi) = -g(phi) a.a*/(2 pi) + (quadratic in da) with
    # g(phi) ~ (pi - phi)^3 / 3, so moving w off v = -v* lowers the loss iff a_sp.a* > 0.
    loss0 = sn.population_loss(model, w, a_sp, w_star, a_star, backend=backend)
    u = w + model.s
    changes = []
    for _ in range(20):
        du = 0.05 * np.linalg.norm(u) * rng.normal(size=p) / np.sqrt(p)
        da = 1e-3 * rng.normal(size=k) * rng.integers(0, 2)
        changes.append(sn.population_loss(model, w + du, a_sp + da, w_star, a_star, backend=backend) - loss0)
    changes = np.array(changes)
    if minimum:
        assert np.all(changes > 0), changes
    else:
        assert np.any(changes < 0), changes
