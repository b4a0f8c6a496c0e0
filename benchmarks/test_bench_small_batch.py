"""(b) Small batches (n = 256, float64): per-call overhead of validation, dispatch and threads."""
import pytest

from conftest import run
from shortcutnet import bench


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_backend(benchmark, small_batch, backend):
    import shortcutnet as sn

    if backend not in sn.backends():
        pytest.skip(f"backend {backend!r} is not available")
    work, refs = small_batch
    benchmark.group = "small-batch-f64"
    run(benchmark, bench.backend_step(work, backend), refs, rounds=200)


def test_numpy_pipeline(benchmark, small_batch):
    work, refs = small_batch
    benchmark.group = "small-batch-f64"
    run(benchmark, bench.numpy_step(work), refs, rounds=200)


def test_torch_autograd(benchmark, small_batch):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    work, refs = small_batch
    benchmark.group = "small-batch-f64"
    run(benchmark, bench.torch_step(work), refs, rounds=200)


def test_jax_jit_grad(benchmark, small_batch):
    pytest.importorskip("jax", reason="JAX is not installed")
    work, refs = small_batch
    benchmark.group = "small-batch-f64"
    run(benchmark, bench.jax_step(work), refs, rounds=200)
