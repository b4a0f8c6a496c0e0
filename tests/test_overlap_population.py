"""The exact population loss with overlapping patches (stride < p) against Monte Carlo estimates.

The estimate is built here from scratch (raw Gaussian input, sliding windows, NumPy), so it shares
no code with the closed form; the tolerance is 5 standard errors from the sample variance.
"""
import numpy as np
import pytest

import shortcutnet as sn


def monte_carlo_loss(model, w, a, w_star, a_star, n, rng):
    x = rng.standard_normal((n, model.d))
    windows = np.lib.stride_tricks.sliding_window_view(x, model.p, axis=1)[:, :: model.stride]  # (n, k, p)
    u, u_star = w + model.s, w_star + model.s
    v = u / np.linalg.norm(u) if model.normalize else u
    v_star = u_star / np.linalg.norm(u_star) if model.normalize else u_star
    f = np.maximum(windows @ v, 0) @ a
    y = np.maximum(windows @ v_star, 0) @ a_star
    per_sample = 0.5 * (f - y) ** 2
    return per_sample.mean(), per_sample.std(ddof=1) / np.sqrt(n)


@pytest.mark.parametrize("k,p,stride", [(4, 5, 1), (6, 4, 2), (3, 6, 4), (5, 3, 3)])
@pytest.mark.parametrize("shortcut", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
def test_overlapping_population_loss_matches_monte_carlo(k, p, stride, shortcut, normalize, backend=None):
    rng = np.random.default_rng(k * 100 + p * 10 + stride)
    model = sn.Model(k, p, shortcut=shortcut, stride=stride, normalize=normalize)
    w, w_star = rng.normal(size=p) * 0.7, rng.normal(size=p) * 0.7
    a, a_star = rng.normal(size=k), rng.normal(size=k)
    estimate, stderr = monte_carlo_loss(model, w, a, w_star, a_star, 200_000, rng)
    for name in sn.backends():
        exact = sn.population_loss(model, w, a, w_star, a_star, backend=name)
        assert abs(exact - estimate) < 5 * stderr, (name, exact, estimate, stderr)


def test_monte_carlo_check_detects_a_wrong_stride():
    """The check has power: the non-overlapping formula misses the overlap correlations."""
    rng = np.random.default_rng(5)
    k, p = 6, 4
    overlapping = sn.Model(k, p, stride=1)
    w, w_star = rng.normal(size=p), rng.normal(size=p)
    a, a_star = rng.normal(size=k), rng.normal(size=k)
    estimate, stderr = monte_carlo_loss(overlapping, w, a, w_star, a_star, 200_000, rng)
    wrong = sn.population_loss(sn.Model(k, p), w, a, w_star, a_star)
    assert abs(wrong - estimate) > 5 * stderr
