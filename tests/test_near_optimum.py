"""Accuracy near the global optimum (phi -> 0) and of the angle near 0 and pi, against mpmath.

The reference is computed in 50 digits from the exact float64 inputs.  The filters are built so
that w + s is exact in float64 (Sterbenz: u - s is exact when u is within a factor 2 of s), so
the reference and the code see the same effective filter u."""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import shortcutnet as sn
from configs import rotated
from mp_reference import mp_angle, mp_loss_grad_w

PHIS = [1e-4, 1e-7, 1e-10]


def exact_filters(rng, s, phi):
    """w, w_star with angle(w + s, w_star + s) ~ phi and w + s, w_star + s exact in float64."""
    base = s if np.any(s) else rng.normal(size=s.shape)
    u_star = base * (1.0 + 0.3 * rng.uniform(-1.0, 1.0, size=s.shape))
    u = rotated(rng, u_star, phi)
    w, w_star = u - s, u_star - s
    assert np.array_equal(w + s, u) and np.array_equal(w_star + s, u_star)
    return w, w_star


@pytest.mark.parametrize("phi", PHIS)
@pytest.mark.parametrize("shortcut", [True, False, "custom"])
@pytest.mark.parametrize("same_a", [True, False], ids=["a=a*", "a!=a*"])
def test_loss_and_gradient_near_the_optimum_match_mpmath(phi, shortcut, same_a, backend, rng, measured):
    k, p = 5, 4
    if shortcut == "custom":
        shortcut = rng.normal(size=p)
    model = sn.Model(k, p, shortcut=shortcut)
    w, w_star = exact_filters(rng, model.s, phi)
    a_star = rng.normal(size=k)
    a = a_star.copy() if same_a else a_star + 1e-3 * rng.normal(size=k)
    loss, grad_w, _ = sn.population_loss_grad(model, w, a, w_star, a_star, backend=backend)
    ref_loss, ref_grad_w, ref_phi = mp_loss_grad_w(model.s, w, a, w_star, a_star)
    assert abs(float(ref_phi) / phi - 1.0) < 1e-4  # the configuration has the intended angle
    assert loss >= 0.0
    err_loss = measured.worst(f"near optimum: loss relative error vs mpmath (phi={phi:g})", abs(mpmath.mpf(loss) / ref_loss - 1))
    ref_norm = mpmath.sqrt(mpmath.fsum(t * t for t in ref_grad_w))
    gap = mpmath.sqrt(mpmath.fsum((mpmath.mpf(float(x)) - y) ** 2 for x, y in zip(grad_w, ref_grad_w)))
    err_grad = measured.worst(f"near optimum: grad_w relative error vs mpmath (phi={phi:g})", gap / ref_norm)
    # A few ulps (measured: 6e-16 and 3e-16); a plain projection or an unsummed series fails here.
    assert err_loss <= 2e-15
    assert err_grad <= 2e-15


ANGLES = [0.3, 1e-3, 1e-8, 1e-12, 1e-15]


@pytest.mark.parametrize("scale", [1.0, 1e-150, 1e150, 1e-300, 1e300])
def test_angle_near_zero_and_pi_matches_mpmath(scale, backend, rng, measured):
    for p in (2, 3, 8):
        for phi in ANGLES:
            u_star = rng.normal(size=p)
            u = rotated(rng, u_star, phi, scale=rng.uniform(0.5, 2.0))
            x, y = scale * u_star, scale * u
            assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
            ref = mp_angle(x, y)
            near_zero = sn.angle(x, y, backend=backend)
            err = measured.worst("angle near 0: relative error vs mpmath", abs(mpmath.mpf(near_zero) / ref - 1))
            assert err <= 2e-15, (scale, p, phi, near_zero, ref)  # measured 5.5e-16
            # Opposite direction: the angle is pi - ref; a float near pi is good to ~ulp(pi) = 4.4e-16
            # (measured 2.2e-16).
            near_pi = sn.angle(x, -y, backend=backend)
            err = measured.worst("angle near pi: absolute error vs mpmath", abs(mpmath.mpf(near_pi) - (mpmath.pi - ref)))
            assert err <= 4.5e-16, (scale, p, phi, near_pi)


@pytest.mark.parametrize("scale", [1e-150, 1e150, 1e-300, 1e300])
def test_angle_is_scale_invariant(scale, backend, rng):
    for _ in range(20):
        u, v = rng.normal(size=4), rng.normal(size=4)
        # Powers of two scale exactly; the angle must not change at all.
        two = 2.0 ** round(math.log2(scale))
        assert sn.angle(two * u, two * v, backend=backend) == sn.angle(u, v, backend=backend)
        assert sn.angle(two * u, v, backend=backend) == sn.angle(u, v, backend=backend)


def test_angle_of_subnormal_vectors(backend):
    tiny = 5e-324
    assert sn.angle([tiny, 0.0], [0.0, tiny], backend=backend) == pytest.approx(math.pi / 2, rel=1e-15)
    assert sn.angle([tiny, tiny], [-tiny, -tiny], backend=backend) == pytest.approx(math.pi, rel=1e-15)
    assert sn.angle([tiny, 0.0], [1e308, 0.0], backend=backend) == 0.0


def test_loss_is_never_negative(backend, rng):
    from configs import MODEL_CASES, random_config, with_angle

    for case in MODEL_CASES:
        for phi in (None, 1e-9, 1e-14, 0.0):
            model, w, a, w_star, a_star = random_config(rng, case)
            if phi is not None:
                w = with_angle(rng, model, w_star, phi)
                a = a_star.copy()
            assert sn.population_loss(model, w, a, w_star, a_star, backend=backend) >= 0.0


@pytest.mark.parametrize("phi", [None, 1e-3, 1e-6])
def test_every_model_matches_the_mpmath_kappa_sum(phi, backend, rng, measured):
    """All closed forms against one independent 50-digit formula, near the optimum too.

    Non-overlapping forms: relative error <= 2e-15 (measured 6e-16).  Overlapping patches: that
    form cancels near the optimum, so its error is bounded absolutely, by 4e-16 of the terms'
    scale (|a|_1 |e| + |a*|_1 |e*|)^2 / 2 (measured 9e-17), and its relative error is recorded
    for the report."""
    from configs import MODEL_CASES, random_config

    from mp_reference import mp_kappa_sum_loss

    for case in MODEL_CASES:
        model, w, a, w_star, a_star = random_config(rng, case)
        if phi is not None:
            w, w_star = exact_filters(rng, model.s, phi)
            a = a_star.copy()
        loss = sn.population_loss(model, w, a, w_star, a_star, backend=backend)
        ref = mp_kappa_sum_loss(model.s, w, a, w_star, a_star, model.stride, model.normalize)
        rel = float(abs(mpmath.mpf(loss) / ref - 1))
        if model.overlapping:
            u, u_star = w + model.s, w_star + model.s
            ne = 1.0 if model.normalize else np.linalg.norm(u)
            ne_star = 1.0 if model.normalize else np.linalg.norm(u_star)
            scale = 0.5 * (np.abs(a).sum() * ne + np.abs(a_star).sum() * ne_star) ** 2
            measured.worst(f"kappa-sum mpmath: overlapping loss relative error (phi={phi})", rel)
            err = measured.worst("kappa-sum mpmath: overlapping loss absolute error / scale", float(abs(mpmath.mpf(loss) - ref)) / scale)
            assert err <= 4e-16, (model, loss, ref)
        else:
            measured.worst("kappa-sum mpmath: non-overlapping loss relative error", rel)
            assert rel <= 2e-15, (model, loss, ref)
