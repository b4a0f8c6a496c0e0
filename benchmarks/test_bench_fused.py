"""(c) Fresh Gaussian batch + gradient, float32, n = 2^17, k = 16, p = 64: the fused kernels
against generating the batch (NumPy standard_normal, torch.randn) and differentiating it, and
against the peers' generators alone (the floor of their pipelines)."""
import pytest

from shortcutnet import bench


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_backend_fused(benchmark, timed, needs_backend, fused, backend):
    needs_backend(backend)
    work, refs = fused
    benchmark.group = "fused-f32"
    if backend == "numpy":  # the readable specification, seconds per call: one cold round
        timed(bench.backend_fused_step(work, backend), refs, rounds=1, warmup=0)
    else:
        timed(bench.backend_fused_step(work, backend), refs, rounds=5)


def test_numpy_generate_and_gradient(benchmark, timed, fused):
    work, refs = fused
    benchmark.group = "fused-f32"
    timed(bench.numpy_fused_step(work), refs, rounds=3)


def test_torch_randn_and_autograd(benchmark, timed, fused):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    work, refs = fused
    benchmark.group = "fused-f32"
    timed(bench.torch_fused_step(work), refs, rounds=3)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_generator_alone(benchmark, timed, fused, library):
    if library == "torch":
        pytest.importorskip("torch", reason="PyTorch is not installed")
    work, refs = fused
    benchmark.group = "fused-f32"
    draw = bench.numpy_generator(work) if library == "numpy" else bench.torch_generator(work)
    timed(draw, refs, rounds=3)
