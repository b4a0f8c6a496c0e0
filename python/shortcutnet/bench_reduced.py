"""The reduced engine's benchmark (docs/reduced.md): ns per trial-step of exact population GD in the
reduced engine, the full-dimensional engine and JAX (jit + vmap + lax.scan of the same GD), at
sizes from the paper's k = 20, p = 10 to k = 1000, p = 200.  Used by ``shortcutnet bench`` and
``benchmarks/test_bench_reduced.py``.

Problem: the paper's ResNet from w0 = 0, one teacher shared by the trials, tol = 0 so that every
trial makes every step; lr_w = 0.1 and lr_a = min(0.1, 2 pi/(k + pi - 1)), half the a-step's
stability limit.  The slower contenders run fewer trials or steps and are normalized per
trial-step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

SIZES = ((20, 10), (100, 50), (1000, 200))
REDUCED, FULL, JAX = "reduced engine", "full engine", "jax jit(vmap(lax.scan))"
GROUP = "reduced-f64"


@dataclass(frozen=True)
class Work:
    """What a contender runs: trials and steps, normalized per trial-step."""

    run: Callable[[], object]
    trial_steps: int


@dataclass(frozen=True)
class Sizes:
    reduced: tuple  # (trials, steps)
    full: tuple
    jax: tuple


FULL_SIZES = Sizes(reduced=(20000, 3000), full=(2000, 300), jax=(2000, 300))
QUICK_SIZES = Sizes(reduced=(4000, 500), full=(400, 100), jax=(400, 100))


def rates(k: int) -> tuple:
    """(lr_w, lr_a): the a-step at half its stability limit 4 pi/(k + pi - 1) where 0.1 is too large."""
    return 0.1, min(0.1, 2.0 * math.pi / (k + math.pi - 1.0))


def problem(k: int, p: int, trials: int, seed: int = 0):
    from .init import init_second_layer
    from .model import Model

    model = Model(k, p)
    rng = np.random.default_rng(seed)
    a_star = rng.standard_normal(k)
    w_star = rng.standard_normal(p) * math.sqrt(0.25 / p)
    w0 = np.zeros((trials, p))
    a0 = init_second_layer(model, a_star, rng, size=trials)
    return model, w_star, a_star, w0, a0


def engine_work(k: int, p: int, trials: int, steps: int, engine: str) -> Work:
    from .train import run_trials

    model, w_star, a_star, w0, a0 = problem(k, p, trials)

    def run():
        out = run_trials(model, w_star, a_star, w0, a0, steps=steps, lr=rates(k), tol=0.0, engine=engine)
        if int(out.steps.sum()) != trials * steps or out.engine != engine:
            raise RuntimeError(f"{engine} engine: expected every trial to make {steps} steps")
        return out

    return Work(run, trials * steps)


def jax_population_gd(jax, lr_w: float, lr_a: float, teacher_axis=None):
    """Exact population GD of the normalized model (docs/model.md, "Closed forms under Gaussian
    input") for one trial in JAX, scanned over steps, vmapped over trials and jitted; teacher_axis 0
    when every trial has its own teacher, None for one shared teacher."""
    jnp = jax.numpy

    def loss_grad(w, a, w_star, a_star, s):
        u, u_star = w + s, w_star + s
        rho, rho_star = jnp.linalg.norm(u), jnp.linalg.norm(u_star)
        v, v_star = u / rho, u_star / rho_star
        c = v @ v_star
        perp = v_star - c * v
        phi = jnp.arctan2(jnp.linalg.norm(perp), c)
        g = (math.pi - phi) * jnp.cos(phi) + jnp.sin(phi)
        a_dot = a @ a_star
        diff = a - a_star
        loss = (diff.sum() ** 2 + (math.pi - 1) * diff @ diff + 2 * (math.pi - g) * a_dot) / (4 * math.pi)
        grad_a = (diff.sum() + (math.pi - 1) * a - (g - 1) * a_star) / (2 * math.pi)
        grad_w = -(a_dot * (math.pi - phi) / (2 * math.pi * rho)) * perp
        return loss, grad_w, grad_a

    def run(w, a, w_star, a_star, s, steps):
        def step(carry, _):
            w, a = carry
            loss, grad_w, grad_a = loss_grad(w, a, w_star, a_star, s)
            return (w - lr_w * grad_w, a - lr_a * grad_a), loss

        (w, a), losses = jax.lax.scan(step, (w, a), None, length=steps)
        return w, a, losses[-1]

    return jax.jit(jax.vmap(run, in_axes=(0, 0, teacher_axis, teacher_axis, None, None)), static_argnums=5)


def jax_work(k: int, p: int, trials: int, steps: int) -> Optional[Work]:
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    model, w_star, a_star, w0, a0 = problem(k, p, trials)
    fn = jax_population_gd(jax, *rates(k))
    args = [jnp.asarray(np.asarray(x, dtype=np.float64)) for x in (w0, a0, w_star, a_star, model.s)]
    fn(*args, steps)[0].block_until_ready()  # compiled once, outside the timing
    return Work(lambda: fn(*args, steps)[0].block_until_ready(), trials * steps)


def contender(name: str, k: int, p: int, sizes: Sizes) -> Optional[Work]:
    if name == REDUCED:
        return engine_work(k, p, *sizes.reduced, "reduced")
    if name == FULL:
        return engine_work(k, p, *sizes.full, "full")
    if name == JAX:
        return jax_work(k, p, *sizes.jax)
    raise ValueError(f"name: expected one of {[REDUCED, FULL, JAX]}, got {name!r}")


def best_ns_per_trial_step(work: Work, repeats: int) -> float:
    from .bench import best_time

    return best_time(work.run, repeats=repeats) / work.trial_steps * 1e9


def run_group(*, quick: bool = False, repeats: Optional[int] = None, sizes=SIZES) -> List[dict]:
    """One row per (size, contender): ns per trial-step and its ratio to the reduced engine at the
    same size and at the first size (flat cost: near 1)."""
    work_sizes = QUICK_SIZES if quick else FULL_SIZES
    repeats = repeats or (3 if quick else 5)
    rows = []
    for k, p in sizes:
        for name in (REDUCED, FULL, JAX):
            work = contender(name, k, p, work_sizes)
            if work is None:
                continue
            rows.append({"group": GROUP, "k": k, "p": p, "name": name,
                         "ns_per_unit": best_ns_per_trial_step(work, repeats), "unit": "trial-step"})
    reduced = {(r["k"], r["p"]): r["ns_per_unit"] for r in rows if r["name"] == REDUCED}
    first = reduced.get(sizes[0])
    for row in rows:
        here = reduced.get((row["k"], row["p"]))
        row["times_reduced"] = None if here is None else row["ns_per_unit"] / here
        row["of_first_size"] = (row["ns_per_unit"] / first) if row["name"] == REDUCED and first else None
    return rows


def format_table(rows: List[dict], quick: bool = False) -> str:
    s = QUICK_SIZES if quick else FULL_SIZES
    lines = ["", f"{GROUP}: exact population GD, ResNet from w0 = 0, tol 0; reduced {s.reduced[0]} trials x "
                 f"{s.reduced[1]} steps, full and JAX {s.full[0]} x {s.full[1]}; lr_a = min(0.1, 2 pi/(k + pi - 1))",
             f"  {'k':>5s} {'p':>4s}  {'contender':26s} {'ns/trial-step':>13s} {'x reduced':>10s} "
             f"{'x reduced at first size':>24s}"]
    for row in rows:
        times = "-" if row["times_reduced"] is None else f"{row['times_reduced']:.1f}"
        flat = "-" if row["of_first_size"] is None else f"{row['of_first_size']:.2f}"
        lines.append(f"  {row['k']:5d} {row['p']:4d}  {row['name']:26s} {row['ns_per_unit']:13.2f} {times:>10s} "
                     f"{flat:>24s}")
    return "\n".join(lines)


def plot_cost(rows: List[dict], stem) -> list:
    """ns per trial-step against k + p for each contender (log-log): the reduced engine's is flat."""
    from .plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, style in ((REDUCED, "o-"), (FULL, "s-"), (JAX, "^-")):
        sel = [r for r in rows if r["name"] == name]
        if sel:
            ax.plot([r["k"] + r["p"] for r in sel], [r["ns_per_unit"] for r in sel], style, label=name)
    for r in rows:
        if r["name"] == REDUCED:
            ax.annotate(f"k={r['k']}, p={r['p']}", (r["k"] + r["p"], r["ns_per_unit"]), textcoords="offset points",
                        xytext=(0, -14), ha="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("k + p")
    ax.set_ylabel("ns per trial-step (wall clock, all threads)")
    ax.set_title("Exact population GD: cost per trial-step", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, stem)
