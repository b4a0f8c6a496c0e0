"""PyTorch autograd as an independent oracle for the sampled gradient formulas (docs/model.md, "Losses on a finite batch"),
and through them for the closed-form population gradient (section 2)."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn
from configs import draw_parameters, make_model
from sampled_numpy import draw_patches, per_sample

torch = pytest.importorskip("torch", reason="PyTorch (the autograd oracle) is not installed")

CASES = [
    (5, 4, "on", True, None),
    (4, 3, "off", True, None),
    (4, 4, "custom", False, None),
    (4, 5, "on", True, 2),
    (3, 4, "custom", False, 1),
]
Z_SCORE = 5.0  # two-sided, 5.7e-7 false-alarm rate per quantity


def case_id(c):
    return f"k{c[0]}-p{c[1]}-{c[2]}-{'norm' if c[3] else 'raw'}-stride{c[4] or c[1]}"


def torch_sum_loss(model, w, a, w_star, a_star, Z):
    """sum_i (f(Z_i; w, a) - f(Z_i; w*, a*))^2 / 2, differentiable in w and a."""
    s = torch.from_numpy(model.s.copy())
    u, u_star = w + s, torch.from_numpy(w_star) + s
    if model.normalize:
        v, v_star = u / torch.linalg.vector_norm(u), u_star / torch.linalg.vector_norm(u_star)
    else:
        v, v_star = u, u_star
    Z = torch.from_numpy(np.ascontiguousarray(Z))
    f = torch.relu(Z @ v) @ a
    y = torch.relu(Z @ v_star) @ torch.from_numpy(a_star)
    return 0.5 * ((f - y) ** 2).sum()


def autograd(model, w, a, w_star, a_star, Z_chunks, n):
    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    a_t = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    loss = 0.0
    for Z in Z_chunks:
        chunk_loss = torch_sum_loss(model, w_t, a_t, w_star, a_star, Z) / n
        chunk_loss.backward()
        loss += chunk_loss.item()
    return loss, w_t.grad.numpy(), a_t.grad.numpy()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_autograd_matches_sampled_formulas(case, rng, measured):
    model = make_model(rng, *case)
    w, a, w_star, a_star = draw_parameters(rng, model)
    Z = draw_patches(rng, model, 2000)
    loss, grad_w, grad_a = autograd(model, w, a, w_star, a_star, [Z], len(Z))
    ref_loss, ref_w, ref_a = (x.mean(axis=0) for x in per_sample(model, w, a, w_star, a_star, Z))
    for label, x, y in (("loss", loss, ref_loss), ("grad_w", grad_w, ref_w), ("grad_a", grad_a, ref_a)):
        gap = np.max(np.abs(x - y)) / np.max(np.abs(y))
        measured.worst(f"autograd vs sampled formulas: {label} relative gap", gap)
        assert gap <= 1e-12, (label, x, y)


@pytest.mark.parametrize("case", CASES[::2], ids=case_id)
def test_autograd_converges_to_the_population_gradient(case, rng, measured):
    n, chunk = 300_000, 100_000
    model = make_model(rng, *case)
    w, a, w_star, a_star = draw_parameters(rng, model)
    chunks = [draw_patches(rng, model, chunk) for _ in range(n // chunk)]
    loss, grad_w, grad_a = autograd(model, w, a, w_star, a_star, chunks, n)
    # Standard errors from the per-sample values of the same samples (their mean is what
    # autograd differentiates, as the test above shows).
    values = np.concatenate([np.column_stack(per_sample(model, w, a, w_star, a_star, Z)) for Z in chunks])
    stderr = values.std(axis=0, ddof=1) / np.sqrt(n)
    exact = np.concatenate([[x] if np.ndim(x) == 0 else x for x in sn.population_loss_grad(model, w, a, w_star, a_star)])
    z = np.abs(np.concatenate([[loss], grad_w, grad_a]) - exact) / stderr
    measured.worst("autograd (n = 3e5) vs closed form |z|", z.max())
    assert z.max() <= Z_SCORE, z
