"""The engine's atan2 and pi - g(phi) (cpp/shortcutnet/angle_math.hpp, population.hpp) against
long double and mpmath: within a couple of ulps over the whole domain, near 0 and near pi too."""
import math

import mpmath
import numpy as np
import pytest

import shortcutnet as sn

core = pytest.importorskip("shortcutnet._core", reason="the compiled backend is not built")
if "cpp" not in sn.backends():
    pytest.skip("the compiled backend is not available", allow_module_level=True)

LONG = np.finfo(np.longdouble).nmant >= 63  # x87 extended: 11 more bits than double


def sides(rng, n):
    """(y >= 0, x) covering every regime of the reduction, tiny angles and angles near pi."""
    parts = []
    parts.append((rng.random(n), rng.uniform(-1.0, 1.0, n)))
    angle = rng.uniform(0.0, math.pi, n)
    parts.append((np.sin(angle), np.cos(angle)))
    tiny = np.exp2(-rng.uniform(0.0, 60.0, n)) * rng.random(n)
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    parts.append((tiny, sign * rng.uniform(0.5, 1.5, n)))      # near 0 and near pi
    parts.append((rng.uniform(0.5, 1.5, n), sign * tiny))      # near pi/2
    scale = np.exp2(rng.uniform(-500.0, 500.0, n))
    parts.append((scale * rng.random(n), scale * rng.uniform(-1.0, 1.0, n)))
    y = np.concatenate([p[0] for p in parts])
    x = np.concatenate([p[1] for p in parts])
    return y, x


def ulps(got, exact):
    exact64 = exact.astype(np.float64)
    return np.abs(got.astype(np.longdouble) - exact) / np.spacing(np.abs(exact64))


@pytest.mark.skipif(not LONG, reason="needs an extended-precision long double as the reference")
def test_atan2_within_1_6_ulps_on_millions_of_points():
    y, x = sides(np.random.default_rng(0), 400_000)
    phi, _ = core._angle_math(y, x)
    exact = np.arctan2(y.astype(np.longdouble), x.astype(np.longdouble))
    err = ulps(phi, exact)
    print(f"rational_atan2: worst {err.max():.3f} ulp over {y.size} points")
    assert err.max() <= 1.6, (err.max(), y[err.argmax()], x[err.argmax()])


def test_atan2_special_points():
    y = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, np.inf, 0.0])
    x = np.array([1.0, -1.0, 0.0, 1.0, -1.0, -0.0, 1.0, np.inf])
    phi, _ = core._angle_math(y, x)
    np.testing.assert_array_equal(phi, np.arctan2(y, x))
    phi, _ = core._angle_math(np.array([np.nan, 1.0]), np.array([1.0, np.nan]))
    assert np.isnan(phi).all()


def test_atan2_against_mpmath():
    mpmath.mp.dps = 40
    y, x = sides(np.random.default_rng(1), 400)
    phi, _ = core._angle_math(y, x)
    worst = max(float(abs(mpmath.mpf(float(p)) - mpmath.atan2(float(b), float(a)))) / math.ulp(float(p))
                for b, a, p in zip(y, x, phi))
    assert worst <= 1.6, worst


def exact_pi_minus_g(y, x):
    phi = mpmath.atan2(y, x)
    return mpmath.pi - (mpmath.pi - phi) * mpmath.cos(phi) - mpmath.sin(phi)


def test_pi_minus_g_against_mpmath_near_0_and_pi():
    mpmath.mp.dps = 60
    rng = np.random.default_rng(2)
    angles = np.concatenate([np.exp(rng.uniform(math.log(1e-12), math.log(math.pi), 1500)),
                             math.pi - np.exp(rng.uniform(math.log(1e-12), math.log(1.0), 500)),
                             rng.uniform(0.45, 0.55, 200)])
    r = np.exp2(rng.uniform(-20, 20, angles.size))
    y, x = r * np.sin(angles), r * np.cos(angles)
    _, pmg = core._angle_math(y, x)
    rel = [float(abs(mpmath.mpf(float(g)) / exact_pi_minus_g(float(b), float(a)) - 1)) for b, a, g in zip(y, x, pmg)]
    print(f"pi - g(phi): worst relative error {max(rel):.3g} over {len(rel)} points")
    assert max(rel) <= 4 * 2.0**-52, max(rel)


@pytest.mark.skipif(not LONG, reason="needs an extended-precision long double as the reference")
def test_pi_minus_g_on_millions_of_points():
    # Away from 0 the long double formula keeps more than double precision (pi - g >= 0.02 here).
    rng = np.random.default_rng(3)
    angle = rng.uniform(0.3, math.pi, 1_000_000)
    y, x = np.sin(angle), np.cos(angle)
    _, pmg = core._angle_math(y, x)
    yl, xl = y.astype(np.longdouble), x.astype(np.longdouble)
    phi = np.arctan2(yl, xl)
    r = np.hypot(yl, xl)
    pi = np.longdouble(mpmath.nstr(mpmath.pi, 25))  # pi to long double precision
    exact = pi - (pi - phi) * (xl / r) - yl / r
    err = np.abs(pmg - exact) / exact
    print(f"pi - g(phi): worst relative error {err.max():.3g} over {y.size} points")
    assert err.max() <= 4 * 2.0**-52, err.max()


def test_angle_math_refuses_negative_y():
    with pytest.raises(ValueError, match="y: expected non-negative"):
        core._angle_math(np.array([-1.0]), np.array([1.0]))
