"""Property-based fuzzing of the population functions on every backend.

Valid inputs must agree with the NumPy reference; invalid ones must raise ValueError or TypeError
(never crash, never return garbage).
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shortcutnet as sn

BACKENDS = ["cpp", "numba"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
anything = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def configurations(draw):
    k = draw(st.integers(1, 8))
    p = draw(st.integers(1, 8))
    stride = draw(st.one_of(st.none(), st.integers(1, p + 2)))
    shortcut = draw(st.one_of(st.booleans(), hnp.arrays(np.float64, p, elements=finite)))
    normalize = draw(st.booleans())
    model = sn.Model(k, p, shortcut=shortcut, normalize=normalize, stride=stride)
    w = draw(hnp.arrays(np.float64, p, elements=finite))
    a = draw(hnp.arrays(np.float64, k, elements=finite))
    w_star = draw(hnp.arrays(np.float64, p, elements=finite))
    a_star = draw(hnp.arrays(np.float64, k, elements=finite))
    return model, w, a, w_star, a_star


def _scale(*arrays):
    return max(1.0, max(float(np.abs(x).max(initial=0.0)) for x in arrays))


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(configurations())
def test_valid_inputs_match_the_reference(backend, config):
    model, w, a, w_star, a_star = config
    u, u_star = w + model.s, w_star + model.s
    # Directions with a tiny norm relative to their entries are dominated by rounding in w + s.
    assume(np.linalg.norm(u) > 1e-6 * _scale(w, model.s) and np.linalg.norm(u_star) > 1e-6 * _scale(w_star, model.s))
    ref_loss, ref_gw, ref_ga = sn.population_loss_grad(model, w, a, w_star, a_star, backend="numpy")
    loss, gw, ga = sn.population_loss_grad(model, w, a, w_star, a_star, backend=backend)
    assert loss >= 0.0 and math.isfinite(loss)
    # Loss terms are of size |a|^2 (times |u|^2 un-normalized): compare on that scale.
    size = _scale(a, a_star) ** 2 * (1.0 if model.normalize else _scale(u, u_star) ** 2)
    assert abs(loss - ref_loss) <= 1e-9 * size
    np.testing.assert_allclose(ga, ref_ga, rtol=0, atol=1e-9 * size)
    grad_scale = size / (np.linalg.norm(u) if model.normalize else _scale(u, u_star))
    np.testing.assert_allclose(gw, ref_gw, rtol=0, atol=1e-9 * grad_scale)


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.lists(anything, min_size=0, max_size=9),
    st.sampled_from(["w", "a", "w_star", "a_star"]),
)
def test_invalid_vectors_raise(backend, k, p, values, which):
    model = sn.Model(k, p)
    args = {"w": np.zeros(p), "a": np.ones(k), "w_star": np.ones(p), "a_star": np.ones(k)}
    bad = np.array(values, dtype=np.float64)
    expected_len = p if which.startswith("w") else k
    assume(bad.shape[0] != expected_len or not np.isfinite(bad).all())
    args[which] = bad
    with pytest.raises(ValueError, match=which):
        sn.population_loss(model, args["w"], args["a"], args["w_star"], args["a_star"], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(st.one_of(st.text(max_size=3), st.booleans(), st.complex_numbers(), st.none(), st.dictionaries(st.text(), st.integers())))
def test_non_numeric_parameters_raise(backend, garbage):
    model = sn.Model(3, 2)
    with pytest.raises((TypeError, ValueError), match="w"):
        sn.population_loss(model, garbage, np.ones(3), np.ones(2), np.ones(3), backend=backend)


@pytest.mark.parametrize("backend", BACKENDS + ["numpy"])
@FUZZ
@given(hnp.arrays(np.float64, st.integers(1, 12), elements=finite), hnp.arrays(np.float64, st.integers(1, 12), elements=finite))
def test_angle_is_in_range_or_refuses(backend, u, v):
    if u.shape != v.shape or not u.any() or not v.any():
        with pytest.raises(ValueError):
            sn.angle(u, v, backend=backend)
        return
    phi = sn.angle(u, v, backend=backend)
    assert 0.0 <= phi <= math.pi
    assert sn.angle(v, u, backend=backend) == pytest.approx(phi, abs=1e-12)
    assert sn.angle(u, -v, backend=backend) == pytest.approx(math.pi - phi, abs=1e-12)
