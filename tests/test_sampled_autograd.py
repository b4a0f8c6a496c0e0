"""Sampled loss and gradient against PyTorch autograd of the same network (an independent oracle)."""
import numpy as np
import pytest

import shortcutnet as sn
from sampled_cases import BACKENDS, DTYPES, MODEL_CASES, assert_matches_loop, backend_or_skip, loop_loss_grad, make_model, make_parameters

torch = pytest.importorskip("torch", reason="PyTorch (the autograd oracle) is not installed")


def autograd_loss_grad(model, w, a, X, y):
    """The network written with torch operations in float64; gradients by reverse mode."""
    X = torch.as_tensor(np.asarray(X, dtype=np.float64)).reshape(X.shape[0], model.d)
    y = torch.as_tensor(np.asarray(y, dtype=np.float64))
    s = torch.tensor(np.array(model.s))  # model.s is read-only
    w = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    a = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    u = w + s
    v = u / torch.linalg.vector_norm(u) if model.normalize else u
    patches = X.unfold(1, model.p, model.stride)[:, : model.k, :]  # (n, k, p)
    f = torch.relu(patches @ v) @ a
    loss = 0.5 * torch.mean((f - y) ** 2)
    loss.backward()
    return float(loss.detach()), w.grad.numpy(), a.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(MODEL_CASES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_torch_autograd(backend, case, dtype):
    backend_or_skip(backend)
    rng = np.random.default_rng(17)
    model = make_model(case)
    w, a, w_star, a_star = make_parameters(model, rng)
    X = rng.normal(size=(64, model.d)).astype(dtype)
    y = sn.teacher_labels(model, w_star, a_star, X, backend="numpy")
    oracle = dict(zip(("loss", "grad_w", "grad_a"), autograd_loss_grad(model, w, a, X, y)))
    scales = loop_loss_grad(model, w, a, X, y)  # only its error scales are used
    oracle.update({key: value for key, value in scales.items() if key.startswith("scale")})
    assert_matches_loop(sn.sampled_loss_grad(model, w, a, X, y, backend=backend), oracle, dtype)
