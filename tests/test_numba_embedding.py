"""The Numba kernels called from a user's own @njit loop (examples/numba_embedding.py) give the
same steps as the public API called from Python."""
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import shortcutnet as sn

pytest.importorskip("numba")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "numba_embedding.py"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    # A copy, so that the example's on-disk cache (its loop compiled with this package's kernels
    # in it) is made fresh for each run, never left in the source tree for a later version.
    copy = tmp_path_factory.mktemp("example") / EXAMPLE.name
    shutil.copy2(EXAMPLE, copy)
    spec = importlib.util.spec_from_file_location("numba_embedding", copy)
    module = importlib.util.module_from_spec(spec)
    # Registered like an imported module: Numba's on-disk cache finds the module by its name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def python_loop(model, w_star, a_star, w, a, *, batch, steps, lr, seed, dtype, backend):
    losses = []
    for t in range(steps):
        loss, grad_w, grad_a = sn.stochastic_loss_grad(model, w, a, w_star, a_star, batch, seed + t, dtype=dtype, backend=backend)
        losses.append(loss)
        w, a = w - lr * grad_w, a - lr * grad_a
    return w, a, np.array(losses)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_njit_loop_equals_public_api(example, dtype):
    rng = np.random.default_rng(3)
    model = sn.Model(5, 4, stride=3)
    w_star, a_star = rng.normal(size=4), rng.normal(size=5)
    w0, a0 = np.zeros(4), 0.1 * rng.normal(size=5)
    kwargs = dict(batch=300, steps=25, lr=0.05, seed=2**33 + 1, dtype=dtype)
    compiled = example.run(model, w_star, a_star, w0, a0, **kwargs)
    # Same kernels, same order of operations: bitwise equal to the Numba backend.
    by_numba = python_loop(model, w_star, a_star, w0, a0, backend="numba", **kwargs)
    for got, want in zip(compiled, by_numba):
        np.testing.assert_array_equal(got, want)
    assert compiled[2][-1] < compiled[2][0]  # it does learn
    # And to rounding the NumPy reference.
    by_numpy = python_loop(model, w_star, a_star, w0, a0, backend="numpy", **kwargs)
    for got, want in zip(compiled, by_numpy):
        np.testing.assert_allclose(got, want, rtol=1e-9 if dtype == np.float64 else 1e-4, atol=1e-12)


@pytest.mark.parametrize("single", [False, True])
def test_serial_twins_equal_parallel_kernels(single):
    from shortcutnet.backends import numba_sampled as ks

    rng = np.random.default_rng(8)
    model = sn.Model(6, 5, stride=4)
    s = np.array(model.s)
    w, a, w_star, a_star = rng.normal(size=5), rng.normal(size=6), rng.normal(size=5), rng.normal(size=6)
    n, seed, dtype = 1500, 12, np.float32 if single else np.float64
    X = np.empty((n, model.d), dtype=dtype)
    X_serial = np.empty_like(X)
    ks.sample_inputs_into(X, seed, single)
    ks.sample_inputs_serial_into(X_serial, seed, single)
    np.testing.assert_array_equal(X, X_serial)
    y = sn.teacher_labels(model, w_star, a_star, X, backend="numba")
    outs = []
    for kernel in (ks.sampled_loss_grad_into, ks.sampled_loss_grad_serial_into):
        grads = np.empty(5), np.empty(6)
        outs.append((kernel(s, w, a, X, y, 6, 5, 4, True, *grads), *grads))
    for kernel in (ks.stochastic_loss_grad_into, ks.stochastic_loss_grad_serial_into):
        grads = np.empty(5), np.empty(6)
        outs.append((kernel(s, w, a, w_star, a_star, n, 6, 5, 4, True, seed, single, *grads), *grads))
    for one, other in ((outs[0], outs[1]), (outs[2], outs[3]), (outs[0], outs[2])):
        for x, z in zip(one, other):
            np.testing.assert_array_equal(x, z)
