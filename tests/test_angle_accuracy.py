"""The O(p) accurate angle (exact products, then a second projection) against mpmath."""
import math

import mpmath
import numpy as np
import pytest

import shortcutnet as sn
from train_problems import BACKENDS, available

mpmath.mp.dps = 60


def exact_angle(x, y):
    xm = [mpmath.mpf(float(v)) for v in x]
    ym = [mpmath.mpf(float(v)) for v in y]
    xx = mpmath.fsum(v * v for v in xm)
    xy = mpmath.fsum(a * b for a, b in zip(xm, ym))
    perp = [b - xy / xx * a for a, b in zip(xm, ym)]
    return mpmath.atan2(mpmath.sqrt(mpmath.fsum(v * v for v in perp) * xx), xy)


def pairs(seed):
    """(x, y) at angles 1e-4 .. 1e-12 from each other, near 0 and near pi, in a few dimensions."""
    rng = np.random.default_rng(seed)
    for p in (3, 10, 31):
        for exponent in range(4, 13):
            x = rng.normal(size=p)
            e = rng.normal(size=p)
            e -= (e @ x) / (x @ x) * x
            e *= 10.0**-exponent * np.linalg.norm(x) / np.linalg.norm(e)
            y = 2.5 * (x + e)
            yield x, y
            yield x, -y


@pytest.mark.parametrize("backend", BACKENDS)
def test_angle_relative_accuracy_near_0_and_pi(backend):
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    worst = 0.0  # in units in the last place of the exact angle
    for x, y in pairs(0):
        exact = exact_angle(x, y)
        got = sn.angle(x, y, backend=backend)
        worst = max(worst, float(abs(mpmath.mpf(got) - exact)) / math.ulp(float(exact)))
    assert worst <= 4.0, worst


def test_backends_agree_near_convergence():
    rng = np.random.default_rng(1)
    for shortcut in (True, False):
        model = sn.Model(9, 6, shortcut=shortcut)
        for scale in (1e-4, 1e-8, 1e-12):
            w_star = rng.normal(size=6)
            a_star = rng.normal(size=9)
            for sign in (1.0, -1.0):
                u_star = w_star + model.s
                w = sign * u_star * 1.3 + scale * rng.normal(size=6) - model.s
                a = a_star + scale * rng.normal(size=9)
                results = [sn.population_loss_grad(model, w, a, w_star, a_star, backend=b)
                           for b in BACKENDS if available(b)]
                for other in results[1:]:
                    np.testing.assert_allclose(other[0], results[0][0], rtol=1e-12, atol=1e-300)
                    for g0, g1 in zip(results[0][1:], other[1:]):
                        np.testing.assert_allclose(g1, g0, rtol=1e-12, atol=1e-12 * np.abs(g0).max())
