"""Sampled gradients converge to the exact population gradient (docs/model.md, "Closed forms under Gaussian input" and "Losses on a finite batch").

The tolerance is not a hand-picked constant: the per-sample gradients of the same draws give the
standard error of their mean, and the sampled gradient must lie within a few standard errors of
the population gradient at every n, so that its error shrinks like 1/sqrt(n).
"""
import numpy as np
import pytest

import shortcutnet as sn
from sampled_cases import BACKENDS, backend_or_skip, direction, make_model, raw_patches

Z_LIMIT = 4.5  # per coordinate; with about 12 coordinates and fixed seeds a false alarm is ~1e-4


def per_sample_terms(model, w, a, w_star, a_star, X):
    """(n, 1 + p + k): each sample's loss, dL/dw and dL/da; their mean is the sampled result."""
    P = raw_patches(model, X)
    v, norm_u = direction(model, w)
    v_star, _ = direction(model, w_star)
    h = P @ v
    y = np.maximum(P @ v_star, 0.0) @ a_star
    r = np.maximum(h, 0.0) @ a - y
    G = np.einsum("nk,nkp->np", r[:, None] * a[None, :] * (h > 0), P)
    grad_w = (G - np.outer(G @ v, v)) / norm_u if model.normalize else G
    grad_a = r[:, None] * np.maximum(h, 0.0)
    return np.column_stack([0.5 * r * r, grad_w, grad_a])


@pytest.mark.parametrize("case", ["resnet", "cnn-unnormalized-p16", "overlapping"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_sampled_gradient_converges_to_population(backend, case):
    backend_or_skip(backend)
    rng = np.random.default_rng(41)
    model = make_model(case)
    p = model.p
    w = 0.5 * rng.normal(size=p)
    a = rng.normal(size=model.k)
    w_star = rng.normal(size=p)
    a_star = rng.normal(size=model.k)
    loss = sn.population_loss(model, w, a, w_star, a_star, backend="numpy")
    grad_w, grad_a = sn.population_grad(model, w, a, w_star, a_star, backend="numpy")
    exact = np.concatenate([[loss], grad_w, grad_a])
    errors, standard_errors = [], []
    for n in (1_000, 16_000):
        got = sn.stochastic_loss_grad(model, w, a, w_star, a_star, n, 1000 + n, backend=backend)
        got = np.concatenate([[got[0]], got[1], got[2]])
        X = sn.sample_inputs(model, n, 1000 + n, backend="numpy")
        terms = per_sample_terms(model, w, a, w_star, a_star, X)
        np.testing.assert_allclose(got, terms.mean(axis=0), rtol=1e-9, atol=1e-12 * np.abs(terms).mean())
        se = terms.std(axis=0, ddof=1) / np.sqrt(n)
        live = se > 0  # a coordinate with no variance (a zero gradient entry) must be exact
        z = np.abs(got - exact)[live] / se[live]
        assert np.all(z < Z_LIMIT), f"n={n}: |error|/standard error = {np.round(z, 2)}"
        assert np.allclose(got[~live], exact[~live], atol=1e-12)
        errors.append(np.linalg.norm(got - exact))
        standard_errors.append(np.linalg.norm(se))
    # 16x the samples: the standard error falls by 4 (within the noise of its own estimate).
    assert 3.0 < standard_errors[0] / standard_errors[1] < 5.3
    assert errors[1] < Z_LIMIT * standard_errors[1]
