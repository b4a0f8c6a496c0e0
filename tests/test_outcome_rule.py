"""The outcome rule pinned for every model variant: states built to reach each outcome (and to sit
just inside or outside each threshold), classified by the Python rule (``outcomes.classify``) and by
every backend's engines (the compiled full engine has its own copy of the rule, trials.hpp
``classify``, and the reduced engines one in coordinates), which must all give the outcome the state
was built for.

The engines classify a state when they run from it with step size 0 (one step that leaves it
where it is, tol 0 so that nothing stops early)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import shortcutnet as sn
from conftest import BACKENDS

VARIANTS = {
    "cnn": dict(k=6, p=4, shortcut=False),
    "resnet": dict(k=6, p=4),
    "gaps": dict(k=5, p=3, stride=4),
    "raw-cnn": dict(k=6, p=4, shortcut=False, normalize=False),
    "raw-resnet": dict(k=6, p=4, normalize=False),
    "overlapping": dict(k=6, p=4, stride=2),
    "overlapping-raw": dict(k=6, p=4, stride=1, normalize=False),
}


def spurious_layer(a_star):
    """a_sp solving (11^T + (pi - 1) I) a_sp = (11^T - I) a* (MODEL.md section 4), by a linear solve."""
    k = a_star.shape[0]
    ones = np.ones((k, k))
    return np.linalg.solve(ones + (math.pi - 1.0) * np.eye(k), (ones - np.eye(k)) @ a_star)


def rotate(rng, x, phi):
    """A vector at angle phi from x, of the same norm."""
    r = rng.normal(size=x.shape)
    x_hat = x / np.linalg.norm(x)
    r -= (r @ x_hat) * x_hat
    r -= (r @ x_hat) * x_hat
    return np.linalg.norm(x) * (math.cos(phi) * x_hat + math.sin(phi) * r / np.linalg.norm(r))


def unit(rng, n):
    x = rng.normal(size=n)
    return x / np.linalg.norm(x)


class States:
    """(w, a, w*, a*) states of one model, each with the outcome it was built for."""

    def __init__(self, model, rng):
        self.model, self.rng, self.rows = model, rng, []

    def teacher(self, scale=1.0):
        w_star = self.rng.normal(size=self.model.p) * 0.5
        return w_star, scale * self.rng.normal(size=self.model.k)

    def add(self, expected, u, a, w_star, a_star):
        """A student with filter direction u + ... given as u = w + s."""
        self.rows.append((u - self.model.s, a, w_star, a_star, expected))

    def arrays(self):
        w, a, w_star, a_star, expected = zip(*self.rows)
        return (np.array(w), np.array(a), np.array(w_star), np.array(a_star)), list(expected)


def build(model, rng):
    """States for the default thresholds."""
    st = States(model, rng)
    normalize, spurious_possible = model.normalize, model.normalize and model.stride >= model.p
    for _ in range(3):
        w_star, a_star = st.teacher()
        u_star = w_star + model.s
        rho_star = np.linalg.norm(u_star)
        d = unit(rng, model.k)
        c = 1.7  # |u| = c |u*|
        # Global: phi <= 1e-3 and |a - a*| <= 1e-3 (un-normalized: |rho a - rho* a*| <= 1e-3,
        # so the student a = a* rho*/rho is at the optimum although a != a*).
        a_opt = a_star if normalize else a_star * (rho_star / (c * rho_star))
        scale = 1.0 if normalize else c * rho_star
        st.add("global", c * u_star, a_opt + 0.5e-3 * d / scale, w_star, a_star)
        st.add("unconverged", c * u_star, a_opt + 1.5e-3 * d / scale, w_star, a_star)
        st.add("global", rotate(rng, c * u_star, 0.9e-3), a_opt, w_star, a_star)
        st.add("unconverged", rotate(rng, c * u_star, 1.1e-3), a_opt, w_star, a_star)
        if not normalize:
            # a = a* with |u| != |u*|: the products rho a, rho* a* differ, so not at the optimum.
            st.add("unconverged", c * u_star, a_star, w_star, a_star)
            # Only rho a is identifiable: |u| = |u*| / 2 with a = 2 a*.
            st.add("global", 0.5 * u_star, 2.0 * a_star, w_star, a_star)
        # Spurious: phi > pi/2, |a - a_sp| <= 1e-3 and the loss within 1e-4 max(1, L_sp) of L(a_sp, pi).
        a_sp = spurious_layer(a_star)
        kind = "spurious" if spurious_possible else "unconverged"
        st.add(kind, -c * u_star, a_sp, w_star, a_star)
        st.add(kind, -c * u_star, a_sp + 0.9e-3 * d, w_star, a_star)
        st.add("unconverged", -c * u_star, a_sp + 1.1e-3 * d, w_star, a_star)
        st.add(kind, rotate(rng, -c * u_star, 0.01), a_sp, w_star, a_star)  # g(pi - 0.01) ~ 3e-7
        st.add("unconverged", rotate(rng, -c * u_star, 1.0), a_sp, w_star, a_star)  # the loss gap too large
        # Anything else.
        st.add("unconverged", rng.normal(size=model.p), rng.normal(size=model.k), w_star, a_star)
        # Diverged: |w|, |a| or the loss above 1e12.
        st.add("diverged", 2e12 * unit(rng, model.p) + model.s, a_star, w_star, a_star)
        # (the un-normalized loss grows like |u|^2: diverged there)
        st.add("unconverged" if normalize else "diverged", 0.5e12 * unit(rng, model.p) + model.s, a_star, w_star,
               a_star)
        st.add("diverged", u_star, 3e12 * d, w_star, a_star)
        if normalize:
            st.add("diverged", u_star, 1e7 * d, w_star, a_star)  # L ~ 1e14 / (4 pi), |a| = 1e7
    return st


def gap_states(model, rng):
    """States that only the loss-gap test decides: a = a_sp at phi slightly below pi, with the
    threshold 0.8 or 1.25 times their gap relative to max(1, L_sp), for L_sp below and above 1."""
    cases = []
    for a_scale in (0.2, 5.0):
        st = States(model, rng)
        w_star, a_star = st.teacher(a_scale)
        u_star = w_star + model.s
        a_sp = spurious_layer(a_star)
        u = rotate(rng, -u_star, 1.0)
        loss = sn.population_loss(model, u - model.s, a_sp, w_star, a_star, backend="numpy")
        loss_sp = sn.population_loss(model, -u_star - model.s, a_sp, w_star, a_star, backend="numpy")
        relative = abs(loss - loss_sp) / max(1.0, loss_sp)
        assert (loss_sp < 1.0) == (a_scale < 1.0) and relative > 1e-6
        for factor, expected in ((1.25, "spurious"), (0.8, "unconverged")):
            one = States(model, rng)
            one.add(expected if model.normalize and model.stride >= model.p else "unconverged", u, a_sp, w_star, a_star)
            cases.append((one, dict(spurious_loss_gap=factor * relative)))
    # phi > pi/2 decides once the other two tests pass: a = a_sp, the gap threshold wide open.
    st = States(model, rng)
    w_star, a_star = st.teacher()
    a_sp = spurious_layer(a_star)
    spurious = "spurious" if model.normalize and model.stride >= model.p else "unconverged"
    st.add(spurious, rotate(rng, w_star + model.s, 0.5 * math.pi + 0.01), a_sp, w_star, a_star)
    st.add("unconverged", rotate(rng, w_star + model.s, 0.5 * math.pi - 0.01), a_sp, w_star, a_star)
    cases.append((st, dict(spurious_loss_gap=1e9)))
    # Other thresholds: divergence 1e3 for |w| and |a|; global_phi 0.1.
    st = States(model, rng)
    w_star, a_star = st.teacher()
    u_star = w_star + model.s
    st.add("diverged", 2e3 * unit(rng, model.p) + model.s, a_star, w_star, a_star)
    st.add("diverged", u_star, 2e3 * unit(rng, model.k), w_star, a_star)
    st.add("global", rotate(rng, u_star, 0.09), a_star, w_star, a_star)  # |u| = |u*|: rho a = rho* a*
    st.add("unconverged", rotate(rng, u_star, 0.11), a_star, w_star, a_star)
    cases.append((st, dict(divergence=1e3, global_phi=0.1)))
    return cases


def python_rule(model, arrays, thresholds=None):
    w, a, w_star, a_star = arrays
    loss = [sn.population_loss(model, *x, backend="numpy") for x in zip(w, a, w_star, a_star)]
    phi = [sn.angle(x + model.s, y + model.s, backend="numpy") for x, y in zip(w, w_star)]
    return list(sn.outcomes.names(sn.outcomes.classify(model, w, a, w_star, a_star, np.array(loss), np.array(phi),
                                                       thresholds)))


def engines(model):
    """The engines that run the model: the reduced one (its own copy of the rule, in coordinates)
    only on non-overlapping patches."""
    return ("full", "reduced") if model.stride >= model.p else ("full",)


def engine_rule(model, arrays, backend, engine, thresholds=None):
    w, a, w_star, a_star = arrays
    out = sn.run_trials(model, w_star, a_star, w, a, steps=1, lr=0.0, tol=0.0, backend=backend,
                        thresholds=thresholds, engine=engine)
    np.testing.assert_array_equal(out.w, w)  # the state was left where it is
    return list(out.outcome)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_copy_of_the_rule_gives_the_built_outcomes(variant, rng):
    model = sn.Model(**VARIANTS[variant])
    cases = [(build(model, rng), None)] + gap_states(model, rng)
    for states, thresholds in cases:
        arrays, expected = states.arrays()
        assert python_rule(model, arrays, thresholds) == expected, thresholds
        for backend in BACKENDS:
            if backend in sn.backends():
                for engine in engines(model):
                    assert engine_rule(model, arrays, backend, engine, thresholds) == expected, (backend, engine,
                                                                                                 thresholds)


def test_the_states_reach_every_outcome():
    reached = set()
    for variant in VARIANTS:
        model = sn.Model(**VARIANTS[variant])
        rng = np.random.default_rng(1)
        for states, _ in [(build(model, rng), None)] + gap_states(model, rng):
            reached |= set(states.arrays()[1])
    assert reached == set(sn.OUTCOMES)
