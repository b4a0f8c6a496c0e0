"""Side-by-side timing of the sampled kernels against the usual ways of computing the same thing.

``shortcutnet bench [--quick]`` prints, for each group, the median time of every contender, its
ratio to the fastest one and, for the materialized groups, the fraction of the machine's read
bandwidth it reaches (the time of a plain sum over the same bytes divided by its own time).

Groups (the pytest-benchmark suite in ``benchmarks/`` times the same callables):

- ``materialized-f32``, ``materialized-f64``: loss and gradients on a stored batch Z
  (n = 32768, k = 16, p = 64): every backend, a NumPy pipeline (einsum forward, hand-written
  backward), PyTorch autograd and JAX ``jit(value_and_grad)`` when installed, and the read
  bandwidth references ``np.sum`` and ``torch.ones(N).sum()`` over the same number of bytes.
- ``small-batch``: the same with n = 256, where call overhead dominates.
- ``fused-f32``: draw a fresh batch (n = 2^17) and take the gradient: every backend's fused
  kernel against NumPy (``standard_normal`` + the NumPy pipeline) and PyTorch (``randn`` + autograd),
  with the peers' generators timed alone for reference.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

from .kernels import predict, sample_inputs, sampled_loss_grad, stochastic_loss_grad
from .model import Model


# --------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    """A teacher-student problem and, unless fused, a stored labelled batch."""

    model: Model
    w: np.ndarray
    a: np.ndarray
    w_star: np.ndarray
    a_star: np.ndarray
    n: int
    dtype: np.dtype
    seed: int
    Z: Optional[np.ndarray] = None
    y: Optional[np.ndarray] = None

    @property
    def nbytes(self) -> int:
        return self.n * self.model.d * self.dtype.itemsize


def make_workload(n: int, k: int = 16, p: int = 64, dtype=np.float32, *, materialize: bool = True,
                  seed: int = 2019) -> Workload:
    rng = np.random.default_rng(seed)
    model = Model(k, p)
    w = 0.3 * rng.normal(size=p)
    a = rng.normal(size=k)
    w_star = rng.normal(size=p)
    a_star = rng.normal(size=k)
    work = Workload(model, w, a, w_star, a_star, n, np.dtype(dtype), seed)
    if materialize:
        work.Z = sample_inputs(model, n, seed, dtype=dtype)
        work.y = predict(model, w_star, a_star, work.Z)
    return work


# --------------------------------------------------------------------------- contenders
def backend_step(work: Workload, backend: str) -> Callable:
    return lambda: sampled_loss_grad(work.model, work.w, work.a, work.Z, work.y, backend=backend)


def backend_fused_step(work: Workload, backend: str) -> Callable:
    return lambda: stochastic_loss_grad(
        work.model, work.w, work.a, work.w_star, work.a_star, work.n, work.seed, dtype=work.dtype, backend=backend
    )


def numpy_loss_grad(s, w, a, Z, y):
    """What one would write in NumPy: einsum forward, backward by hand, in Z's dtype."""
    n = Z.shape[0]
    u = w + s
    norm_u = float(np.sqrt(u @ u))
    v = (u / norm_u).astype(Z.dtype)
    h = np.einsum("nkp,p->nk", Z, v, optimize=True)
    relu = np.maximum(h, 0)
    r = relu @ a.astype(Z.dtype) - y
    loss = 0.5 * float(r @ r) / n
    grad_a = relu.T @ r / n
    G = np.einsum("nk,nkp->p", (r[:, None] * a.astype(Z.dtype)) * (h > 0), Z, optimize=True) / n
    grad_w = (G - (v @ G) * v) / norm_u
    return loss, grad_w, grad_a


def numpy_step(work: Workload) -> Callable:
    s, Z = work.model.s, work.Z
    return lambda: numpy_loss_grad(s, work.w, work.a, Z, work.y)


def numpy_fused_step(work: Workload) -> Callable:
    s = work.model.s
    draw = numpy_generator(work)

    def step():
        Z = draw()
        u_star = work.w_star + s
        v_star = (u_star / np.linalg.norm(u_star)).astype(work.dtype)
        y = np.maximum(np.einsum("nkp,p->nk", Z, v_star, optimize=True), 0) @ work.a_star.astype(work.dtype)
        return numpy_loss_grad(s, work.w, work.a, Z, y)

    return step


def numpy_generator(work: Workload) -> Callable:
    """Only the draw of the fused peers' batch: the part of their time no gradient code can save."""
    model = work.model

    def draw():
        return np.random.default_rng(work.seed).standard_normal((work.n, model.k, model.p), dtype=work.dtype)

    return draw


def torch_generator(work: Workload) -> Optional[Callable]:
    torch = _torch()
    if torch is None:
        return None
    dt = torch.float32 if work.dtype == np.float32 else torch.float64
    generator = torch.Generator()

    def draw():
        generator.manual_seed(work.seed)
        return torch.randn(work.n, work.model.k, work.model.p, generator=generator, dtype=dt)

    return draw


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_loss_grad(torch, Z, y, w, a, s):
    """The sampled loss of MODEL.md section 3 and its gradients by PyTorch autograd."""
    w.grad = None
    a.grad = None
    u = w + s
    f = torch.relu(Z @ (u / torch.linalg.vector_norm(u))) @ a
    loss = 0.5 * torch.mean((f - y) ** 2)
    loss.backward()
    return float(loss.detach()), w.grad, a.grad


def torch_step(work: Workload) -> Optional[Callable]:
    torch = _torch()
    if torch is None:
        return None
    dt = torch.float32 if work.dtype == np.float32 else torch.float64
    Z = torch.from_numpy(work.Z)
    y = torch.from_numpy(work.y)
    s = torch.tensor(np.array(work.model.s), dtype=dt)
    w = torch.tensor(work.w, dtype=dt, requires_grad=True)
    a = torch.tensor(work.a, dtype=dt, requires_grad=True)

    def step():
        return _torch_loss_grad(torch, Z, y, w, a, s)

    return step


def torch_fused_step(work: Workload) -> Optional[Callable]:
    torch = _torch()
    if torch is None:
        return None
    dt = torch.float32 if work.dtype == np.float32 else torch.float64
    s = torch.tensor(np.array(work.model.s), dtype=dt)
    w = torch.tensor(work.w, dtype=dt, requires_grad=True)
    a = torch.tensor(work.a, dtype=dt, requires_grad=True)
    u_star = torch.tensor(work.w_star, dtype=dt) + s
    v_star = u_star / torch.linalg.vector_norm(u_star)
    a_star = torch.tensor(work.a_star, dtype=dt)
    draw = torch_generator(work)

    def step():
        Z = draw()
        with torch.no_grad():
            y = torch.relu(Z @ v_star) @ a_star
        return _torch_loss_grad(torch, Z, y, w, a, s)

    return step


def jax_step(work: Workload) -> Optional[Callable]:
    """``jax.jit(jax.value_and_grad(loss))``; float64 needs JAX's x64 mode, switched on here."""
    try:
        import jax
    except ImportError:
        return None
    if work.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def loss(w, a, Z, y, s):
        u = w + s
        f = jax.nn.relu(Z @ (u / jnp.linalg.norm(u))) @ a
        return 0.5 * jnp.mean((f - y) ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    dt = work.dtype
    args = [jax.device_put(np.asarray(x, dtype=dt)) for x in (work.w, work.a, work.Z, work.y, work.model.s)]
    return lambda: jax.block_until_ready(value_and_grad(*args))


def read_numpy(work: Workload) -> Callable:
    """np.sum over the batch: one streaming read of the same bytes, the bandwidth reference."""
    Z = work.Z
    return lambda: Z.sum()


def read_torch(work: Workload) -> Optional[Callable]:
    torch = _torch()
    if torch is None:
        return None
    ones = torch.ones(work.Z.size, dtype=torch.float32 if work.dtype == np.float32 else torch.float64)
    return lambda: ones.sum()


# --------------------------------------------------------------------------- timing and the table
def median_time(fn: Callable, repeats: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls (JIT, caches)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def contenders(work: Workload, group: str) -> Dict[str, Optional[Callable]]:
    """Name -> callable (None when its library is missing) for one group."""
    from .backends import available

    names = available()
    if group.startswith("fused"):
        out = {f"shortcutnet[{b}] fused": backend_fused_step(work, b) for b in names}
        out["numpy standard_normal + gradient"] = numpy_fused_step(work)
        out["torch randn + autograd"] = torch_fused_step(work)
        out["generator alone: numpy standard_normal"] = numpy_generator(work)
        out["generator alone: torch randn"] = torch_generator(work)
        return out
    out = {f"shortcutnet[{b}]": backend_step(work, b) for b in names}
    out["numpy einsum pipeline"] = numpy_step(work)
    out["torch autograd"] = torch_step(work)
    out["jax jit(value_and_grad)"] = jax_step(work)
    out["read bandwidth: np.sum"] = read_numpy(work)
    out["read bandwidth: torch.ones(N).sum()"] = read_torch(work)
    return out


def is_slow_reference(group: str, name: str) -> bool:
    """The NumPy backend's fused kernel is the readable specification, seconds per call: timed once."""
    return group.startswith("fused") and "[numpy]" in name


def is_bandwidth_reference(name: str) -> bool:
    return name.startswith("read bandwidth")


def is_reference(name: str) -> bool:
    """Rows that time part of the work (a plain read, a peer's generator), not a contender."""
    return is_bandwidth_reference(name) or name.startswith("generator alone")


GROUPS = {
    # name: (n, dtype, materialized)
    "materialized-f32": (32768, np.float32, True),
    "materialized-f64": (32768, np.float64, True),
    "small-batch-f64": (256, np.float64, True),
    "fused-f32": (2**17, np.float32, False),
}
QUICK_N = {"materialized-f32": 4096, "materialized-f64": 4096, "small-batch-f64": 256, "fused-f32": 2**13}


def run_group(group: str, *, quick: bool = False, repeats: Optional[int] = None, skip=()) -> List[dict]:
    n, dtype, materialized = GROUPS[group]
    if quick:
        n = QUICK_N[group]
    repeats = repeats or (3 if quick else 7)
    work = make_workload(n, dtype=dtype, materialize=materialized)
    rows = []
    for name, fn in contenders(work, group).items():
        if fn is None or any(word in name for word in skip):
            continue
        if is_slow_reference(group, name):
            seconds = median_time(fn, repeats=1, warmup=0)
        else:
            seconds = median_time(fn, repeats=repeats)
        rows.append({"group": group, "name": name, "seconds": seconds})
    peers = [row["seconds"] for row in rows if not is_reference(row["name"])]
    fastest = min(peers)
    bandwidth = min((row["seconds"] for row in rows if is_bandwidth_reference(row["name"])), default=None)
    for row in rows:
        row["ratio"] = row["seconds"] / fastest
        row["bandwidth_percent"] = None if bandwidth is None else 100.0 * bandwidth / row["seconds"]
        row["n"] = n
    return rows


def format_table(rows: List[dict]) -> str:
    lines = []
    group = None
    for row in rows:
        if row["group"] != group:
            group = row["group"]
            lines.append("")
            lines.append(f"{group} (n = {row['n']})")
            lines.append(f"  {'contender':40s} {'median ms':>10s} {'x fastest':>10s} {'% read bw':>10s}")
        bw = "-" if row["bandwidth_percent"] is None else f"{row['bandwidth_percent']:.0f}%"
        ratio = "-" if is_bandwidth_reference(row["name"]) else f"{row['ratio']:.2f}"
        lines.append(f"  {row['name']:40s} {1e3 * row['seconds']:10.2f} {ratio:>10s} {bw:>10s}")
    return "\n".join(lines)


def main(quick: bool = False, groups=None, print_fn=print) -> List[dict]:
    from . import build_info

    import numba

    info = build_info()
    core = f"SIMD {info.get('simd_in_use')}, {info.get('max_threads')} OpenMP threads" if info.get("available") else "not built"
    print_fn(f"shortcutnet bench{' --quick' if quick else ''}: median of repeated calls after a warm-up; "
             f"compiled core: {core}; Numba threads: {numba.get_num_threads()}")
    rows = []
    for group in groups or GROUPS:
        group_rows = run_group(group, quick=quick)
        rows += group_rows
        print_fn(format_table(group_rows))
    return rows


if __name__ == "__main__":  # pragma: no cover
    main()
