"""Closed-form population loss and gradient against Monte Carlo means of the sampled formulas.

Each of the 1 + p + k quantities must lie within Z_SCORE standard errors of its sample mean, the
standard error estimated from the per-sample values.  A two-sided 5-sigma test fails by chance
with probability 5.7e-7 per quantity, about 1e-4 over all the quantities below (and the seeds are
fixed, so a pass is reproducible).
"""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn
from configs import make_model, draw_parameters
from sampled_numpy import monte_carlo

Z_SCORE = 5.0
N_SAMPLES = 1_000_000

MC_CASES = [
    (6, 4, "on", True, None),
    (5, 3, "off", True, None),
    (4, 4, "custom", False, None),
    (5, 4, "on", True, 2),  # overlapping: patches x[j*2 : j*2 + 4] of a raw x of length d = 12
    (4, 3, "custom", False, 1),
    (3, 3, "off", True, 4),  # gaps between patches
]


@pytest.mark.parametrize("case", MC_CASES, ids=lambda c: f"k{c[0]}-p{c[1]}-{c[2]}-{'norm' if c[3] else 'raw'}-stride{c[4] or c[1]}")
def test_closed_form_matches_monte_carlo(case, rng, measured):
    model = make_model(rng, *case)
    w, a, w_star, a_star = draw_parameters(rng, model)
    loss, grad_w, grad_a = sn.population_loss_grad(model, w, a, w_star, a_star)
    exact = np.concatenate([[loss], grad_w, grad_a])
    mean, stderr = monte_carlo(model, w, a, w_star, a_star, N_SAMPLES, rng)
    assert np.all(stderr > 0)
    z = np.abs(mean - exact) / stderr
    measured.worst("Monte Carlo |z| (n = 1e6)", z.max())
    assert z.max() <= Z_SCORE, {"z": z, "exact": exact, "mean": mean, "stderr": stderr}
    # The test has power: the standard errors are small against the quantities tested.
    assert np.max(stderr) <= 0.01 * np.max(np.abs(exact))
