"""Below the full engine's rounding floor the reduced engine keeps resolving phi: an mpmath
run of the full-dimensional gradient descent (250 digits) decides which engine is right (docs/reduced.md
section 5)."""
import mpmath
import numpy as np
import pytest
from mpmath import mp

import shortcutnet as sn
from mp_reference import mp_dot, mp_vector


def mp_gradient_descent(model, w_star, a_star, w0, a0, steps, lr_w, lr_a):
    """Population GD of the normalized non-overlapping model in 250 digits (phi resolved down to
    about 1e-240); phi at every step."""
    with mp.workdps(250):
        s, w, a = mp_vector(model.s), mp_vector(w0), mp_vector(a0)
        w_s, a_s = mp_vector(w_star), mp_vector(a_star)
        u_s = [x + y for x, y in zip(w_s, s)]
        v_s = [x / mpmath.sqrt(mp_dot(u_s, u_s)) for x in u_s]
        phis = []
        for _ in range(steps + 1):
            u = [x + y for x, y in zip(w, s)]
            rho = mpmath.sqrt(mp_dot(u, u))
            v = [x / rho for x in u]
            c = mp_dot(v, v_s)
            perp = [x - c * y for x, y in zip(v_s, v)]
            phi = mpmath.atan2(mpmath.sqrt(mp_dot(perp, perp)), c)
            phis.append(phi)
            g = (mp.pi - phi) * mpmath.cos(phi) + mpmath.sin(phi)
            a_dot = mp_dot(a, a_s)
            total = mpmath.fsum(x - y for x, y in zip(a, a_s))
            grad_a = [(total + (mp.pi - 1) * x - (g - 1) * y) / (2 * mp.pi) for x, y in zip(a, a_s)]
            grad_w = [-a_dot * (mp.pi - phi) / (2 * mp.pi * rho) * x for x in perp]
            w = [x - lr_w * y for x, y in zip(w, grad_w)]
            a = [x - lr_a * y for x, y in zip(a, grad_a)]
        return np.array([float(x) for x in phis])


def test_mpmath_decides_between_the_engines_below_the_rounding_floor():
    if "cpp" not in sn.backends():
        pytest.skip("the compiled backend is not available")
    model = sn.Model(4, 3)
    rng = np.random.default_rng(2)
    a_star = rng.standard_normal(4) + 1.0
    w_star = 0.3 * rng.standard_normal(3)
    w0, a0 = np.zeros(3), sn.init_second_layer(model, a_star, rng)
    steps, lr = 400, (0.3, 0.5)
    exact = mp_gradient_descent(model, w_star, a_star, w0, a0, steps, *lr)
    runs = {engine: sn.train(model, w_star, a_star, w0, a0, steps=steps, lr=lr, tol=0.0, engine=engine,
                             backend="cpp").history["phi"] for engine in ("reduced", "full")}
    deep = exact < 1e-12
    assert deep.sum() >= 100 and exact[-1] < 1e-40  # the run goes far below the double floor
    resolved = exact > 1e-200
    relative = np.abs(runs["reduced"][resolved] - exact[resolved]) / exact[resolved]
    assert relative.max() < 1e-9
    # The full engine's angle stops at its rounding floor, orders of magnitude above the exact one.
    assert np.median(runs["full"][deep] / exact[deep]) > 1e3
