"""(a) Loss and gradients on a stored batch, n = 32768, k = 16, p = 64, float32 and float64."""
import pytest

from conftest import run
from shortcutnet import bench

BACKENDS = ["cpp", "numba", "numpy"]
DTYPES = ["float32", "float64"]


def _backend_available(name):
    import shortcutnet as sn

    if name not in sn.backends():
        pytest.skip(f"backend {name!r} is not available")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend(benchmark, materialized, backend, dtype):
    _backend_available(backend)
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    run(benchmark, bench.backend_step(work, backend), refs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_pipeline(benchmark, materialized, dtype):
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    run(benchmark, bench.numpy_step(work), refs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_autograd(benchmark, materialized, dtype):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    run(benchmark, bench.torch_step(work), refs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_jax_jit_grad(benchmark, materialized, dtype):
    pytest.importorskip("jax", reason="JAX is not installed")
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    run(benchmark, bench.jax_step(work), refs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_bandwidth_numpy_sum(benchmark, materialized, dtype):
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    run(benchmark, bench.read_numpy(work), refs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_bandwidth_torch_sum(benchmark, materialized, dtype):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    work, refs = materialized[dtype]
    benchmark.group = f"materialized-{dtype}"
    run(benchmark, bench.read_torch(work), refs)
