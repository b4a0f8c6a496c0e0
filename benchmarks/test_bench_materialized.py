"""(a) Loss and gradients on a stored batch, n = 32768, k = 16, p = 64, float32 and float64."""
import pytest

from shortcutnet import bench

BACKENDS = ["cpp", "numba", "numpy"]
DTYPES = ["float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend(benchmark, timed, needs_backend, materialized, backend, dtype):
    needs_backend(backend)
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    timed(bench.backend_step(work, backend), refs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_pipeline(benchmark, timed, materialized, dtype):
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    timed(bench.numpy_step(work), refs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_autograd(benchmark, timed, materialized, dtype):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    timed(bench.torch_step(work), refs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_jax_jit_grad(benchmark, timed, materialized, dtype):
    pytest.importorskip("jax", reason="JAX is not installed")
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    timed(bench.jax_step(work), refs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_bandwidth_numpy_sum(benchmark, timed, materialized, dtype):
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    timed(bench.read_numpy(work), refs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_bandwidth_torch_sum(benchmark, timed, materialized, dtype):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    timed(bench.read_torch(work), refs)
