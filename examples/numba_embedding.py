"""Online SGD compiled end to end: your own ``@njit`` loop calling shortcutnet's Numba kernels.

Each step draws a fresh Gaussian batch from the counter-based generator (seed + step), labels it
with the teacher and takes a gradient step, all without returning to Python.  The kernels are
plain Numba dispatchers (``shortcutnet.backends.numba_sampled``), so they compile into your code
like any other ``@njit`` function.  This loop uses the serial flavour, which may be cached; the
``*_into`` flavour runs each batch on Numba's thread pool instead (same bits), but a function
calling it must not be compiled with ``cache=True`` (Numba crashes reloading it).

Caching: ``cache=True`` stores the compiled loop next to this file, kernels included.  Numba's
cache of YOUR function does not notice a new version of shortcutnet, so delete this folder's
``__pycache__`` after upgrading the package (or compile without ``cache=True``).

Run:  python examples/numba_embedding.py
"""
from __future__ import annotations

import numpy as np
from numba import njit

import shortcutnet as sn
from shortcutnet.backends import numba_sampled as ks


@njit(cache=True)
def sgd(s, w0, a0, w_star, a_star, k, p, stride, normalize, batch, steps, lr_w, lr_a, seed, single):
    """``steps`` SGD steps on fresh batches (seed + t for step t); returns (w, a, losses)."""
    w = w0.copy()
    a = a0.copy()
    grad_w = np.empty_like(w)
    grad_a = np.empty_like(a)
    losses = np.empty(steps)
    for t in range(steps):
        losses[t] = ks.stochastic_loss_grad_serial_into(
            s, w, a, w_star, a_star, batch, k, p, stride, normalize, seed + t, single, grad_w, grad_a
        )
        w -= lr_w * grad_w
        a -= lr_a * grad_a
    return w, a, losses


def run(model, w_star, a_star, w0, a0, *, batch, steps, lr, seed, dtype=np.float64):
    """The compiled loop on a ``Model``: the same steps as ``sn.stochastic_loss_grad`` in Python."""
    return sgd(
        np.array(model.s), np.asarray(w0, float), np.asarray(a0, float), np.asarray(w_star, float),
        np.asarray(a_star, float), model.k, model.p, model.stride, model.normalize,
        batch, steps, lr, lr, seed, np.dtype(dtype) == np.float32,
    )


def main() -> None:
    rng = np.random.default_rng(0)
    model = sn.Model(k=8, p=6)
    direction = rng.normal(size=model.p)
    w_star = direction / np.linalg.norm(direction) - model.s
    a_star = rng.normal(size=model.k)
    w0, a0 = np.zeros(model.p), np.zeros(model.k)
    w, a, losses = run(model, w_star, a_star, w0, a0, batch=256, steps=2000, lr=0.1, seed=1)
    for t in (0, 10, 100, 1000, 1999):
        print(f"step {t:5d}   batch loss {losses[t]:.3e}")
    phi = sn.angle(w + model.s, w_star + model.s)
    print(f"final angle phi = {phi:.3e}, |a - a*| = {np.linalg.norm(a - a_star):.3e}, "
          f"population loss = {sn.population_loss(model, w, a, w_star, a_star):.3e}")


if __name__ == "__main__":
    main()
