"""(b) Small batches (n = 256, float64): per-call overhead of validation, dispatch and threads."""
import pytest

from shortcutnet import bench


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_backend(benchmark, timed, needs_backend, small_batch, backend):
    needs_backend(backend)
    work, refs = small_batch
    benchmark.group = "small-batch-f64"
    timed(bench.backend_step(work, backend), refs, rounds=200)


def test_numpy_pipeline(benchmark, timed, small_batch):
    work, refs = small_batch
    benchmark.group = "small-batch-f64"
    timed(bench.numpy_step(work), refs, rounds=200)


def test_torch_autograd(benchmark, timed, small_batch):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    work, refs = small_batch
    benchmark.group = "small-batch-f64"
    timed(bench.torch_step(work), refs, rounds=200)


def test_jax_jit_grad(benchmark, timed, small_batch):
    pytest.importorskip("jax", reason="JAX is not installed")
    work, refs = small_batch
    benchmark.group = "small-batch-f64"
    timed(bench.jax_step(work), refs, rounds=200)
