"""The C++, Numba and NumPy backends compute the same float64 numbers (to 1e-12 relative)."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn
from configs import MODEL_CASES, case_id, draw_parameters, make_model, with_angle
from conftest import BACKENDS

TOLERANCE = 1e-12
# Angles between w + s and w_star + s: random, and close to the optimum and to the spurious point.
PHIS = [None, 1e-3, 1e-8, 1e-13, np.pi - 1e-3, np.pi - 1e-8, np.pi - 1e-13]


def relative_gap(x, y, floor=0.0):
    x, y = np.atleast_1d(x), np.atleast_1d(y)
    return np.max(np.abs(x - y)) / max(np.max(np.abs(y)), floor, np.finfo(float).tiny)


def overlapping_scales(model, w, a, w_star, a_star):
    """Sizes of the terms the overlapping-patch formulas sum, for (loss, grad_w, grad_a).

    Those formulas cancel near the optimum (L ~ phi^2 and dL/dw ~ phi from terms of order one),
    so there they have an absolute accuracy of a few ulps of these scales, not a relative one.
    The non-overlapping closed forms have no such cancellation and keep full relative accuracy.
    """
    u, u_star = w + model.s, w_star + model.s
    ne = 1.0 if model.normalize else np.linalg.norm(u)
    ne_star = 1.0 if model.normalize else np.linalg.norm(u_star)
    total = np.abs(a).sum() * ne + np.abs(a_star).sum() * ne_star
    return 0.5 * total**2, total**2 / np.linalg.norm(u), total * max(ne, ne_star)


@pytest.mark.parametrize("case", MODEL_CASES, ids=case_id)
def test_backends_agree(case, rng, measured):
    for phi in PHIS:
        for _ in range(3):
            model = make_model(rng, *case)
            w, a, w_star, a_star = draw_parameters(rng, model)
            if phi is not None:
                w = with_angle(rng, model, w_star, phi, scale=rng.uniform(0.5, 2.0))
                if rng.random() < 0.5:
                    a = a_star.copy()
            ref = sn.population_loss_grad(model, w, a, w_star, a_star, backend="numpy")
            # Overlapping patches: relative to the value, or absolute to 1e-15 of the terms' scale.
            floors = [1e-3 * f for f in overlapping_scales(model, w, a, w_star, a_star)] if model.overlapping else [0.0] * 3
            for name in BACKENDS[:-1]:
                out = sn.population_loss_grad(model, w, a, w_star, a_star, backend=name)
                for label, x, y, floor in zip(("loss", "grad_w", "grad_a"), out, ref, floors):
                    kind = "overlapping" if model.overlapping else "non-overlapping"
                    gap = measured.worst(f"backends agree: {kind} {label} gap", relative_gap(x, y, floor))
                    assert gap <= TOLERANCE, (name, label, model, phi, x, y)


def test_angle_and_spurious_optimum_agree(rng, measured):
    for p in (1, 2, 5, 17):
        for phi in PHIS:
            u = rng.normal(size=p) * 10.0 ** rng.uniform(-5, 5)
            v = u.copy() * rng.uniform(0.1, 10) if p == 1 else rng.normal(size=p)
            if phi is not None and p > 1:
                v = np.cos(phi) * u / np.linalg.norm(u) + np.sin(phi) * np.linalg.svd(u[None, :])[2][1]
            ref = sn.angle(u, v, backend="numpy")
            for name in BACKENDS[:-1]:
                gap = measured.worst("backends agree: angle relative gap", relative_gap(sn.angle(u, v, backend=name), ref))
                assert gap <= TOLERANCE
    for k in (1, 2, 7, 50):
        model = sn.Model(k, 3)
        a_star = rng.normal(size=k)
        ref = sn.spurious_optimum(model, a_star, backend="numpy")
        for name in BACKENDS[:-1]:
            assert relative_gap(sn.spurious_optimum(model, a_star, backend=name), ref) <= TOLERANCE
