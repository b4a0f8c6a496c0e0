"""(c) Fresh Gaussian batch + gradient, float32, n = 2^17, k = 16, p = 64: the fused kernels
against generating the batch (NumPy standard_normal, torch.randn) and differentiating it."""
import pytest

from conftest import run
from shortcutnet import bench


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_backend_fused(benchmark, fused, backend):
    import shortcutnet as sn

    if backend not in sn.backends():
        pytest.skip(f"backend {backend!r} is not available")
    work, refs = fused
    benchmark.group = "fused-f32"
    # The NumPy backend is the readable specification (seconds per call): one round is enough.
    run(benchmark, bench.backend_fused_step(work, backend), refs, rounds=1 if backend == "numpy" else 5)


def test_numpy_generate_and_gradient(benchmark, fused):
    work, refs = fused
    benchmark.group = "fused-f32"
    run(benchmark, bench.numpy_fused_step(work), refs, rounds=3)


def test_torch_randn_and_autograd(benchmark, fused):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    work, refs = fused
    benchmark.group = "fused-f32"
    run(benchmark, bench.torch_fused_step(work), refs, rounds=3)
