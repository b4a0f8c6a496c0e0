"""The reduced engine's angle and loss at a state against mpmath, at angles across (0, pi): pi - g(phi)
comes from two formulas, a series below pi/8 and the direct one above (docs/reduced.md section 5),
and both must keep a few ulps of relative accuracy, the series down to phi -> 0."""
import math

import mpmath
import numpy as np
import pytest

import shortcutnet as sn
from configs import rotated
from mp_reference import mp_loss_grad_w

# Both sides of pi/8 (where the formulas meet), of pi/4 and pi/2 (where the angle's reduction
# changes), tiny angles and angles near pi.
ANGLES = [1e-12, 1e-8, 1e-5, 1e-3, 0.1, 0.3, math.pi / 8 * (1 - 1e-9), math.pi / 8 * (1 + 1e-9), 0.5,
          math.pi / 4 * (1 - 1e-9), math.pi / 4 * (1 + 1e-9), 1.0, math.pi / 2 - 1e-7, math.pi / 2 + 1e-7, 2.0,
          2.8, math.pi - 1e-3, math.pi - 1e-7]


@pytest.mark.parametrize("same_a", [True, False], ids=["a=a*", "a!=a*"])
def test_the_reduced_loss_matches_mpmath_at_every_angle(same_a, rng, measured):
    if "cpp" not in sn.backends():
        pytest.skip("the compiled backend is not available")
    k, p = 4, 4
    model = sn.Model(k, p, shortcut=False)  # u = w exactly, so mpmath sees the engine's filter
    for phi in ANGLES:
        w_star = rng.normal(size=p)
        w0 = rotated(rng, w_star, phi, scale=1.7)
        if same_a:
            # The loss is (pi - g) (a . a*)/(2 pi) alone, so its error is that of pi - g.  With
            # a* = 2 (1, 1, 1, 1) the a-space's basis and coordinates are exact (a* = A0 f1, f1 =
            # a*/4), so that a = a* also holds in coordinates, not only to rounding.
            a_star = np.full(k, 2.0)
            a0 = a_star.copy()
        else:
            a_star = rng.normal(size=k) + 0.5
            a0 = a_star + 0.3 * rng.normal(size=k)
        run = sn.train(model, w_star, a_star, w0, a0, steps=1, lr=0.01, tol=0.0, engine="reduced", backend="cpp")
        assert run.engine == "reduced"
        ref_loss, _, ref_phi = mp_loss_grad_w(model.s, w0, a0, w_star, a_star)
        assert abs(float(ref_phi) / phi - 1.0) < 1e-4  # the configuration has the intended angle
        loss = run.history["loss"][0]
        err = float(abs(mpmath.mpf(float(loss)) / ref_loss - 1))
        label = "a=a*" if same_a else "a!=a*"
        measured.worst(f"reduced engine: loss relative error vs mpmath ({label})", err)
        # Measured: 1.6e-15 at most (the direct formula's terms cancel up to 14-fold above pi/8).
        assert err <= 5e-15, (phi, err)
        # The set-up's y0 keeps the angle's relative accuracy however small it is (measured: 3e-16).
        err_phi = measured.worst("reduced engine: phi at the start, relative error vs mpmath",
                                 float(abs(mpmath.mpf(float(run.history["phi"][0])) / ref_phi - 1)))
        assert err_phi <= 1e-15, (phi, err_phi)


def test_the_reduced_loss_is_continuous_where_pi_minus_g_changes_formula(rng):
    """Across pi/8, where pi - g changes formula, the loss moves by its derivative, not by a jump."""
    if "cpp" not in sn.backends():
        pytest.skip("the compiled backend is not available")
    k, p = 3, 3
    model = sn.Model(k, p, shortcut=False)
    w_star = rng.normal(size=p)
    a_star = rng.normal(size=k) + 0.5
    losses = []
    for phi in math.pi / 8 + np.array([-1e-12, 1e-12]):
        w0 = rotated(np.random.default_rng(0), w_star, phi)
        run = sn.train(model, w_star, a_star, w0, a_star.copy(), steps=1, lr=0.01, tol=0.0, engine="reduced",
                       backend="cpp")
        losses.append(run.history["loss"][0])
    # dP/dphi = (pi - phi) sin phi ~ 1 at pi/8: the two losses differ by about 2e-12 (a . a*)/(2 pi).
    assert abs(losses[1] - losses[0]) < 1e-13 + 4e-12 * abs(a_star @ a_star)
