"""Side-by-side timing of the sampled kernels against the usual ways of computing the same thing.

``shortcutnet bench [--quick]`` prints, for each group, the median time of every contender, its
ratio to the fastest one and, for the materialized groups, the fraction of the machine's read
bandwidth it reaches (the time of a plain sum over the same bytes divided by its own time).
The contenders of a group are called in turn, round after round, and both ratios are medians
of the ratios within a round, so a drift of the machine's clock or bandwidth during the run
(common on shared cloud hosts) does not favour whichever contender ran in a fast phase.

Groups (the pytest-benchmark suite in ``benchmarks/`` times the same callables):

- ``materialized-f32``, ``materialized-f64``: loss and gradients on a stored batch Z
  (n = 32768, k = 16, p = 64): every backend, a NumPy pipeline (einsum forward, hand-written
  backward), PyTorch autograd and JAX ``jit(value_and_grad)`` when installed, and the read
  bandwidth references ``np.sum`` and ``torch.ones(N).sum()`` over the same number of bytes.
- ``small-batch``: the same with n = 256, where call overhead dominates.
- ``fused-f32``: draw a fresh batch (n = 2^17) and take the gradient: every backend's fused
  kernel against NumPy (``standard_normal`` + the NumPy pipeline) and PyTorch (``randn`` + autograd),
  with the peers' generators timed alone for reference.

Per-unit groups, on B = 1000 independent trials (k = 20, p = 10, batch 32, lr 0.1, plain CNN from
the experiments' random teachers and initializations, tol = 0 so every trial makes every step),
each row in ns per unit of work (the best of repeated calls: other load only adds time) and,
where a performance target is set, as a fraction of it (<= 1 meets it):

- ``sgd-f32``: online SGD, ``run_trials(gradient="sampled", dtype=np.float32)`` on all threads
  and on one, against the fused kernel's own cost per entry (a batch of 2^17 and a loop of batches
  of 32); ``train`` on one trial against the one-thread engine; PyTorch (``randn``, autograd,
  ``torch.optim.SGD``, batched over trials) and JAX (``jit(vmap(lax.scan))``) when installed.
- ``empirical-f32``: full-batch GD on a fixed training set of 4096 rows against
  ``sampled_loss_grad`` on the same stored batch.
- ``optimizers-f64``: exact population GD, momentum and Adam in the full engine.
"""
from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

from . import bench_reduced
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
    """The sampled loss of docs/model.md, "Losses on a finite batch" and its gradients by PyTorch autograd."""
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


# Idle time before each contender's turn in interleaved_times: long enough for the worker threads
# of the previous contender's runtime (OpenMP, Numba, PyTorch, OpenBLAS), which spin for a while
# after their work is done, to go to sleep instead of competing for the cores with the next one.
SETTLE_SECONDS = 0.02
# A contender whose warm-up call took less than this gets one untimed call again at the start of
# each turn: after the idle time its threads are asleep and its data may have left the caches,
# costs that a short call would otherwise count and back-to-back use does not pay.
REWARM_SECONDS = 0.1


def interleaved_times(fns: Dict[str, Callable], rounds: int = 7, warmup: int = 1,
                      settle: float = SETTLE_SECONDS) -> Dict[str, List[float]]:
    """Wall times in seconds of every callable over ``rounds`` rounds, each round giving every one
    a turn (in an order rotated by one place per round) after ``warmup`` untimed calls of each.
    A turn is ``settle`` idle seconds, an untimed call for contenders shorter than REWARM_SECONDS,
    and the timed call.

    A cloud host's memory bandwidth and clock drift by up to 2x over seconds; timed one after the
    other, two contenders can fall into different phases of that drift.  Round by round, every
    round holds one time of each under the same conditions, so ratios taken within a round
    compare like with like."""
    names = list(fns)
    warm_seconds = {name: 0.0 for name in names}
    for _ in range(warmup):
        for name in names:
            start = time.perf_counter()
            fns[name]()
            warm_seconds[name] = time.perf_counter() - start
    rewarm = {name: warmup > 0 and warm_seconds[name] < REWARM_SECONDS for name in names}
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            if settle > 0:
                time.sleep(settle)
            if rewarm[name]:
                fns[name]()
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median_ratio(numerator: List[float], denominator: List[float]) -> float:
    """The median over rounds of numerator / denominator; a single time (a contender timed once,
    outside the rounds) is set against the median of the other side."""
    if len(numerator) == len(denominator):
        return statistics.median(a / b for a, b in zip(numerator, denominator))
    return statistics.median(numerator) / statistics.median(denominator)


def percent_of_read(times: List[float], read_times: List[List[float]]) -> float:
    """The fraction of the read bandwidth, in percent, reached by a contender with these times:
    per round, the faster of the plain reads stands for the bandwidth of that moment."""
    bandwidth = [min(round_times) for round_times in zip(*read_times)]
    return 100.0 / median_ratio(times, bandwidth)


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


# The paper's size: rows of k = 20 patches of p = 10; the fused ones as many entries as the long rows'.
PAPER_K, PAPER_P = 20, 10
PAPER_FUSED_N = 2**17 * 16 * 64 // (PAPER_K * PAPER_P)
GROUPS = {
    # name: (n, dtype, materialized, k, p)
    "materialized-f32": (32768, np.float32, True, 16, 64),
    "materialized-f64": (32768, np.float64, True, 16, 64),
    "materialized-paper-f32": (200000, np.float32, True, PAPER_K, PAPER_P),
    "small-batch-f64": (256, np.float64, True, 16, 64),
    "fused-f32": (2**17, np.float32, False, 16, 64),
    "fused-f64": (2**17, np.float64, False, 16, 64),
    "fused-paper-f32": (PAPER_FUSED_N, np.float32, False, PAPER_K, PAPER_P),
}
QUICK_N = {"materialized-f32": 4096, "materialized-f64": 4096, "materialized-paper-f32": 20000,
           "small-batch-f64": 256, "fused-f32": 2**13, "fused-f64": 2**13, "fused-paper-f32": PAPER_FUSED_N // 16}


def run_group(group: str, *, quick: bool = False, repeats: Optional[int] = None, skip=()) -> List[dict]:
    n, dtype, materialized, k, p = GROUPS[group]
    if quick:
        n = QUICK_N[group]
    repeats = repeats or (3 if quick else 7)
    work = make_workload(n, k, p, dtype=dtype, materialize=materialized)
    fns = {name: fn for name, fn in contenders(work, group).items()
           if fn is not None and not any(word in name for word in skip)}
    times = interleaved_times({name: fn for name, fn in fns.items() if not is_slow_reference(group, name)},
                              rounds=repeats)
    for name, fn in fns.items():
        if is_slow_reference(group, name):
            times[name] = [median_time(fn, repeats=1, warmup=0)]
    # Each contender against one peer round by round; the fastest is the one with the least ratio.
    peers = [name for name in fns if not is_reference(name)]
    to_first = {name: median_ratio(times[name], times[peers[0]]) for name in fns}
    fastest = min(to_first[name] for name in peers)
    reads = [times[name] for name in fns if is_bandwidth_reference(name)]
    rows = []
    for name in fns:
        rows.append({"group": group, "name": name, "seconds": statistics.median(times[name]),
                     "ratio": to_first[name] / fastest,
                     "bandwidth_percent": percent_of_read(times[name], reads) if reads else None,
                     "n": n, "k": k, "p": p})
    return rows


def format_table(rows: List[dict]) -> str:
    lines = []
    group = None
    for row in rows:
        if row["group"] != group:
            group = row["group"]
            lines.append("")
            lines.append(f"{group} (n = {row['n']}, k = {row['k']}, p = {row['p']})")
            lines.append(f"  {'contender':40s} {'median ms':>10s} {'x fastest':>10s} {'% read bw':>10s}")
        bw = "-" if row["bandwidth_percent"] is None else f"{row['bandwidth_percent']:.0f}%"
        ratio = "-" if is_bandwidth_reference(row["name"]) else f"{row['ratio']:.2f}"
        lines.append(f"  {row['name']:40s} {1e3 * row['seconds']:10.2f} {ratio:>10s} {bw:>10s}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- per-unit groups: many trials
TRIALS_K, TRIALS_P, SGD_BATCH, SGD_LR, N_TRAIN = 20, 10, 32, 0.1, 4096


@dataclass(frozen=True)
class TrialsSizes:
    """How much work each row of the per-unit groups does (full run and ``--quick``)."""

    trials: int = 1000            # B, for the engine, the peers and the population optimizers
    steps: int = 20               # SGD steps of run_trials and of the peers
    long_n: int = 2**17           # the fused kernel's long batch
    short_calls: int = 1000       # calls of the fused kernel on one batch of SGD_BATCH
    train_steps: int = 200        # steps of the single-trial train row
    empirical_trials: int = 16    # each holds a training set of N_TRAIN rows
    empirical_steps: int = 40
    population_steps: int = 3000


TRIALS_FULL = TrialsSizes()
TRIALS_QUICK = TrialsSizes(trials=100, steps=5, long_n=2**13, short_calls=100, train_steps=50,
                           empirical_trials=4, empirical_steps=10, population_steps=300)


@dataclass
class TrialsWorkload:
    """B teacher-student problems with their initializations, (B, p) and (B, k) arrays."""

    model: Model
    w_star: np.ndarray
    a_star: np.ndarray
    w0: np.ndarray
    a0: np.ndarray

    @property
    def trials(self) -> int:
        return self.w0.shape[0]

    def first(self, trials: int) -> "TrialsWorkload":
        return TrialsWorkload(self.model, self.w_star[:trials], self.a_star[:trials], self.w0[:trials],
                              self.a0[:trials])


def make_trials_workload(trials: int, *, architecture: str = "cnn", k: int = TRIALS_K, p: int = TRIALS_P,
                         seed: int = 0) -> TrialsWorkload:
    """The experiments' random teachers and initializations (``experiments._common.draw_trials``)."""
    from .experiments._common import cell_rng, draw_trials, make_model

    a_star, u_star, a0, w0_sphere = draw_trials(k, p, trials, cell_rng(seed, k, p, 0))
    model = make_model(architecture, k, p)
    w0 = np.zeros_like(w0_sphere) if architecture == "resnet" else w0_sphere
    return TrialsWorkload(model, u_star - model.s, a_star, w0, a0)


@dataclass
class PerUnit:
    """A contender timed per unit of work: ``fn()`` does ``units`` of ``unit``.  ``baseline()``,
    when given, does the same setup with almost none of the work; its time is subtracted."""

    fn: Callable
    units: int
    unit: str
    baseline: Optional[Callable] = None


@dataclass(frozen=True)
class Comparison:
    """A row against a reference row: ratio = row / (per x reference), where ``per`` reference
    units make one unit of the row.  The performance target, when set, is
    row <= times x per x reference + plus_ns, reported as row / that bound (<= 1 meets it)."""

    reference: str
    per: int = 1
    times: Optional[float] = None
    plus_ns: float = 0.0

    def ratio(self, ns: float, reference_ns: float) -> float:
        return ns / (self.per * reference_ns)

    def of_target(self, ns: float, reference_ns: float) -> Optional[float]:
        if self.times is None:
            return None
        return ns / (self.times * self.per * reference_ns + self.plus_ns)

    def target_text(self) -> str:
        if self.times is None:
            return ""
        plus = f" + {self.plus_ns / 1e3:g} us" if self.plus_ns else ""
        return f"<= {self.times:g} x{plus}"

    def versus_text(self) -> str:
        return f"{self.per} x {self.reference}" if self.per != 1 else self.reference


def best_time(fn: Callable, repeats: int = 7, warmup: int = 1) -> float:
    """Shortest wall time of ``fn()`` in seconds: other load on the machine only adds time, so the
    best of several calls is the steadiest estimate of a long call's own cost."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ns_per_unit(contender: PerUnit, repeats: int = 7, warmup: int = 1) -> float:
    """ns per unit of work, from the best of ``repeats`` calls (and of the baseline's)."""
    seconds = best_time(contender.fn, repeats=repeats, warmup=warmup)
    if contender.baseline is not None:
        seconds -= best_time(contender.baseline, repeats=repeats, warmup=warmup)
    return 1e9 * seconds / contender.units


def _all_steps(out, expected: int):
    """A per-trial-step figure is only honest if every trial made every step."""
    made = int(np.sum(out.steps))
    if made != expected:
        raise RuntimeError(f"run_trials made {made} trial-steps, expected {expected} (tol = 0 should prevent stops)")
    return out


def engine_sgd(work: TrialsWorkload, steps: int, threads: Optional[int] = None) -> PerUnit:
    """Online SGD of every trial in the engine: a fresh batch of 32 float32 inputs per trial-step."""
    from .train import run_trials

    def run():
        out = run_trials(work.model, work.w_star, work.a_star, work.w0, work.a0, steps=steps, lr=SGD_LR,
                         gradient="sampled", batch_size=SGD_BATCH, seed=0, dtype=np.float32, tol=0.0,
                         threads=threads)
        return _all_steps(out, work.trials * steps)

    return PerUnit(run, work.trials * steps, "trial-step")


def fused_kernel(work: TrialsWorkload, n: int, calls: int = 1, threads: Optional[int] = None) -> PerUnit:
    """The fused kernel on trial 0's problem, ``calls`` times on a batch of ``n``: ns per entry."""
    model = work.model
    w, a, w_star, a_star = work.w0[0], work.a0[0], work.w_star[0], work.a_star[0]

    def run():
        for seed in range(calls):
            stochastic_loss_grad(model, w, a, w_star, a_star, n, seed, dtype=np.float32, threads=threads)

    return PerUnit(run, calls * n * model.k * model.p, "entry")


def train_sgd(work: TrialsWorkload, steps: int) -> PerUnit:
    """``train`` on trial 0 alone (its trajectory recorded at every step): us per step."""
    from .train import train

    def run():
        res = train(work.model, work.w_star[0], work.a_star[0], work.w0[0], work.a0[0], steps=steps, lr=SGD_LR,
                    gradient="sampled", batch_size=SGD_BATCH, seed=0, dtype=np.float32, tol=0.0)
        if res.steps != steps:
            raise RuntimeError(f"train made {res.steps} steps, expected {steps}")

    return PerUnit(run, steps, "step")


def engine_empirical(work: TrialsWorkload, steps: int) -> PerUnit:
    """Full-batch GD on each trial's fixed training set of N_TRAIN float32 rows; the time of a
    one-step run (drawing the sets) is subtracted, so the figure is the cost of a step alone."""
    from .train import run_trials

    def run_for(n_steps):
        def run():
            out = run_trials(work.model, work.w_star, work.a_star, work.w0, work.a0, steps=n_steps, lr=SGD_LR,
                             gradient="empirical", n_train=N_TRAIN, seed=0, dtype=np.float32, tol=0.0)
            return _all_steps(out, work.trials * n_steps)

        return run

    return PerUnit(run_for(steps), work.trials * (steps - 1), "trial-step", baseline=run_for(1))


def materialized_kernel(work: TrialsWorkload, n: int = N_TRAIN) -> PerUnit:
    """``sampled_loss_grad`` on a stored float32 batch of n rows: the empirical step's bytes."""
    from .kernels import teacher_labels

    model = work.model
    Z = sample_inputs(model, n, 0, dtype=np.float32)
    y = teacher_labels(model, work.w_star[0], work.a_star[0], Z)
    w, a = work.w0[0], work.a0[0]
    return PerUnit(lambda: sampled_loss_grad(model, w, a, Z, y), 1, "step")


def engine_population(work: TrialsWorkload, steps: int, optimizer: str, engine: str = "full") -> PerUnit:
    """Exact population GD, momentum or Adam in the engine (float64): ns per trial-step."""
    from . import optim
    from .train import run_trials

    opt = {"gd": lambda: optim.gd(0.1), "momentum": lambda: optim.momentum(0.1),
           "adam": lambda: optim.adam(0.01)}[optimizer]()

    def run():
        out = run_trials(work.model, work.w_star, work.a_star, work.w0, work.a0, steps=steps, optimizer=opt,
                         tol=0.0, engine=engine)
        return _all_steps(out, work.trials * steps)

    return PerUnit(run, work.trials * steps, "trial-step")


def torch_sgd_update(torch, Z, w, a, s, v_star, a_star, optimizer):
    """One batched SGD step on Z (B, n, k, p): teacher labels, the loss of docs/model.md, "Losses on a finite batch"
    (mean over the batch of each trial, summed over trials so each trial gets its own gradient),
    autograd and ``optimizer.step()`` on w (B, p) and a (B, k)."""
    B, n, k, p = Z.shape
    rows = Z.reshape(B, n * k, p)
    with torch.no_grad():
        y = (torch.relu(rows @ v_star.unsqueeze(2)).reshape(B, n, k) @ a_star.unsqueeze(2)).squeeze(2)
    optimizer.zero_grad(set_to_none=True)
    u = w + s
    v = u / torch.linalg.vector_norm(u, dim=1, keepdim=True)
    f = (torch.relu(rows @ v.unsqueeze(2)).reshape(B, n, k) @ a.unsqueeze(2)).squeeze(2)
    loss = (0.5 * ((f - y) ** 2).mean(dim=1)).sum()
    loss.backward()
    optimizer.step()
    return loss


def torch_sgd(work: TrialsWorkload, steps: int) -> Optional[PerUnit]:
    """PyTorch, batched over trials, float32, its default thread count: per step ``torch.randn``
    of (B, 32, k, p), labels, autograd and ``torch.optim.SGD``."""
    torch = _torch()
    if torch is None:
        return None
    f32 = torch.float32
    s = torch.tensor(np.array(work.model.s), dtype=f32)
    u_star = torch.tensor(work.w_star, dtype=f32) + s
    v_star = u_star / torch.linalg.vector_norm(u_star, dim=1, keepdim=True)
    a_star = torch.tensor(work.a_star, dtype=f32)
    shape = (work.trials, SGD_BATCH, work.model.k, work.model.p)
    generator = torch.Generator()

    def run():
        generator.manual_seed(0)
        w = torch.tensor(work.w0, dtype=f32, requires_grad=True)
        a = torch.tensor(work.a0, dtype=f32, requires_grad=True)
        optimizer = torch.optim.SGD([w, a], lr=SGD_LR)
        for _ in range(steps):
            Z = torch.randn(shape, generator=generator, dtype=f32)
            torch_sgd_update(torch, Z, w, a, s, v_star, a_star, optimizer)
        return w, a

    return PerUnit(run, work.trials * steps, "trial-step")


def jax_sgd_update(jax):
    """One trial's SGD step on its batch Z (n, k, p), as a JAX function of (w, a, Z, v*, a*, s)."""
    jnp = jax.numpy

    def loss(w, a, Z, y, s):
        u = w + s
        f = jax.nn.relu(Z @ (u / jnp.linalg.norm(u))) @ a
        return 0.5 * jnp.mean((f - y) ** 2)

    grad = jax.grad(loss, argnums=(0, 1))

    def update(w, a, Z, v_star, a_star, s):
        y = jax.nn.relu(Z @ v_star) @ a_star
        grad_w, grad_a = grad(w, a, Z, y, s)
        return w - SGD_LR * grad_w, a - SGD_LR * grad_a

    return update


def jax_sgd(work: TrialsWorkload, steps: int) -> Optional[PerUnit]:
    """JAX, float32: ``jit(vmap(trial))`` where a trial is a ``lax.scan`` over steps, each drawing
    its batch with ``jax.random.normal`` from a key split off the trial's key."""
    try:
        import jax
    except ImportError:
        return None
    jnp = jax.numpy
    update = jax_sgd_update(jax)
    k, p = work.model.k, work.model.p

    def trial(w, a, v_star, a_star, key, s):
        def step(carry, _):
            w, a, key = carry
            key, sub = jax.random.split(key)
            Z = jax.random.normal(sub, (SGD_BATCH, k, p), dtype=jnp.float32)
            w, a = update(w, a, Z, v_star, a_star, s)
            return (w, a, key), None

        (w, a, _), _ = jax.lax.scan(step, (w, a, key), None, length=steps)
        return w, a

    run_all = jax.jit(jax.vmap(trial, in_axes=(0, 0, 0, 0, 0, None)))
    u_star = work.w_star + work.model.s
    v_star = u_star / np.linalg.norm(u_star, axis=1, keepdims=True)
    args = [jnp.asarray(np.asarray(x, dtype=np.float32)) for x in (work.w0, work.a0, v_star, work.a_star)]
    keys = jax.random.split(jax.random.key(0), work.trials)
    s = jnp.asarray(np.asarray(work.model.s, dtype=np.float32))
    return PerUnit(lambda: jax.block_until_ready(run_all(*args, keys, s)), work.trials * steps, "trial-step")


# Row names of the per-unit groups, shared with benchmarks/test_bench_sgd.py.
KERNEL_LONG = "fused kernel, long batch"
KERNEL_LONG_1 = "fused kernel, long batch, 1 thread"
KERNEL_SHORT = "fused kernel, batches of 32 in a loop"
ENGINE = "run_trials sampled"
ENGINE_1 = "run_trials sampled, 1 thread"
TRAIN = "train sampled, one trial"
TORCH = "torch randn + autograd + optim.SGD"
JAX = "jax jit(vmap(lax.scan))"
MATERIALIZED = "sampled_loss_grad, stored batch"
EMPIRICAL = "run_trials empirical, full batch"
POPULATION = {name: f"run_trials population {name}" for name in ("gd", "momentum", "adam")}


# Each row's reference and its performance target: the engine's trial-step against the fused
# kernel's cost of the same SGD_BATCH x k x p entries, train against the one-thread engine.
_KERNEL_BOUND = dict(per=SGD_BATCH * TRIALS_K * TRIALS_P, times=1.3, plus_ns=500.0)
COMPARISONS = {
    KERNEL_SHORT: Comparison(KERNEL_LONG),
    ENGINE: Comparison(KERNEL_LONG, **_KERNEL_BOUND),
    ENGINE_1: Comparison(KERNEL_LONG_1, **_KERNEL_BOUND),
    TRAIN: Comparison(ENGINE_1, times=2.0, plus_ns=2000.0),
    TORCH: Comparison(ENGINE),
    JAX: Comparison(ENGINE),
    EMPIRICAL: Comparison(MATERIALIZED, times=1.3),
    POPULATION["momentum"]: Comparison(POPULATION["gd"], times=1.1),
    POPULATION["adam"]: Comparison(POPULATION["gd"], times=1.1),
}


PER_UNIT_GROUPS = {
    "sgd-f32": (KERNEL_LONG, KERNEL_LONG_1, KERNEL_SHORT, ENGINE, ENGINE_1, TRAIN, TORCH, JAX),
    "empirical-f32": (MATERIALIZED, EMPIRICAL),
    "optimizers-f64": tuple(POPULATION.values()),
}


def per_unit_contender(name: str, work: TrialsWorkload, sizes: TrialsSizes) -> Optional[PerUnit]:
    """The row ``name`` of a per-unit group (None when its library is missing)."""
    population = {row: optimizer for optimizer, row in POPULATION.items()}
    if name in population:
        return engine_population(work, sizes.population_steps, population[name])
    makers = {
        KERNEL_LONG: lambda: fused_kernel(work, sizes.long_n),
        KERNEL_LONG_1: lambda: fused_kernel(work, sizes.long_n, threads=1),
        KERNEL_SHORT: lambda: fused_kernel(work, SGD_BATCH, calls=sizes.short_calls),
        ENGINE: lambda: engine_sgd(work, sizes.steps),
        ENGINE_1: lambda: engine_sgd(work, sizes.steps, threads=1),
        TRAIN: lambda: train_sgd(work, sizes.train_steps),
        TORCH: lambda: torch_sgd(work, sizes.steps),
        JAX: lambda: jax_sgd(work, sizes.steps),
        MATERIALIZED: lambda: materialized_kernel(work),
        EMPIRICAL: lambda: engine_empirical(work.first(sizes.empirical_trials), sizes.empirical_steps),
    }
    if name not in makers:
        raise ValueError(f"name: expected a row of {list(PER_UNIT_GROUPS)}, got {name!r}")
    return makers[name]()


def per_unit_title(group: str, sizes: TrialsSizes) -> str:
    k, p = TRIALS_K, TRIALS_P
    if group == "sgd-f32":
        return (f"sgd-f32: B = {sizes.trials} trials, k = {k}, p = {p}, batch {SGD_BATCH}, lr {SGD_LR}, "
                f"{sizes.steps} steps, plain CNN; long batch n = {sizes.long_n}")
    if group == "empirical-f32":
        return (f"empirical-f32: B = {sizes.empirical_trials} trials, n_train = {N_TRAIN}, "
                f"{sizes.empirical_steps} steps (a one-step run subtracted), k = {k}, p = {p}")
    return (f"optimizers-f64: population gradient, full engine, B = {sizes.trials} trials, "
            f"{sizes.population_steps} steps")


def run_per_unit_group(group: str, *, quick: bool = False, repeats: Optional[int] = None,
                       sizes: Optional[TrialsSizes] = None) -> List[dict]:
    sizes = sizes or (TRIALS_QUICK if quick else TRIALS_FULL)
    repeats = repeats or (3 if quick else 5)
    work = make_trials_workload(sizes.trials)
    rows = []
    for name in PER_UNIT_GROUPS[group]:
        contender = per_unit_contender(name, work, sizes)
        if contender is None:
            continue
        ns = ns_per_unit(contender, repeats=repeats)
        rows.append({"group": group, "title": per_unit_title(group, sizes), "name": name, "ns_per_unit": ns,
                     "unit": contender.unit})
    measured = {row["name"]: row["ns_per_unit"] for row in rows}
    for row in rows:
        comparison = COMPARISONS.get(row["name"])
        reference = None if comparison is None else measured.get(comparison.reference)
        row["versus"] = None if reference is None else comparison.versus_text()
        row["ratio"] = None if reference is None else comparison.ratio(row["ns_per_unit"], reference)
        row["of_target"] = None if reference is None else comparison.of_target(row["ns_per_unit"], reference)
        row["target"] = "" if reference is None else comparison.target_text()
    return rows


def format_per_unit_table(rows: List[dict]) -> str:
    lines = []
    group = None
    for row in rows:
        if row["group"] != group:
            group = row["group"]
            lines += ["", row["title"],
                      f"  {'contender':38s} {'ns/unit':>10s} {'unit':11s} {'ratio':>7s}  {'of target':>9s} "
                      f"{'target':16s} versus"]
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        of_target = "-" if row["of_target"] is None else f"{row['of_target']:.2f}"
        lines.append(f"  {row['name']:38s} {row['ns_per_unit']:10.2f} {row['unit']:11s} {ratio:>7s}  "
                     f"{of_target:>9s} {row['target']:16s} {row['versus'] or ''}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the machine
def cpu_model(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """The CPU's marketing name, with its family and model numbers where Linux gives them (a
    virtual machine often reports a generic name): /proc/cpuinfo, else ``lscpu``, else ``platform``."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # the first processor's block is enough
            continue
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or fields.get("Model name") or fields.get("Processor")
    if not name:
        name = _lscpu_model()
    if not name:
        name = platform.processor() or platform.machine() or "unknown CPU"
    numbers = [f"{label} {fields[key]}" for key, label in (("cpu family", "family"), ("model", "model"))
               if re.fullmatch(r"\d+", fields.get(key, ""))]
    return f"{name} ({', '.join(numbers)})" if numbers else name


def _lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            return value.strip()
    return ""


def machine_info() -> Dict[str, str]:
    """What a timing depends on beyond the code: the CPU and the instruction set the compiled
    kernels run (``build_info()["simd_in_use"]``, "not built" without the core)."""
    from . import build_info

    info = build_info()
    simd = str(info.get("simd_in_use")) if info.get("available") else "not built"
    return {"cpu_model": cpu_model(), "simd_in_use": simd}


def machine_line() -> str:
    info = machine_info()
    return f"CPU: {info['cpu_model']}; SIMD in use: {info['simd_in_use']}"


def main(quick: bool = False, groups=None, print_fn=print, figure_dir=None) -> List[dict]:
    from . import build_info

    import numba

    info = build_info()
    core = f"SIMD {info.get('simd_in_use')}, {info.get('max_threads')} OpenMP threads" if info.get("available") else "not built"
    torch = _torch()
    torch_threads = f"; PyTorch threads: {torch.get_num_threads()} (its default)" if torch is not None else ""
    print_fn(f"shortcutnet bench{' --quick' if quick else ''}: median of rounds that call every contender "
             f"in turn, ratios within a round (per-unit groups: best of repeated calls), after a warm-up; "
             f"compiled core: {core}; Numba threads: {numba.get_num_threads()}{torch_threads}")
    print_fn(machine_line())
    rows = []
    for group in groups or (*GROUPS, *PER_UNIT_GROUPS, bench_reduced.GROUP):
        if group == bench_reduced.GROUP:
            group_rows = bench_reduced.run_group(quick=quick)
            print_fn(bench_reduced.format_table(group_rows, quick=quick))
            if figure_dir is not None:
                paths = bench_reduced.plot_cost(group_rows, os.path.join(figure_dir, "reduced_engine_cost"))
                print_fn(f"  figure: {', '.join(paths)}")
        elif group in PER_UNIT_GROUPS:
            group_rows = run_per_unit_group(group, quick=quick)
            print_fn(format_per_unit_table(group_rows))
        else:
            group_rows = run_group(group, quick=quick)
            print_fn(format_table(group_rows))
        rows += group_rows
    return rows


if __name__ == "__main__":  # pragma: no cover
    main()
