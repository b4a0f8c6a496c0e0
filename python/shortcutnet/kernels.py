"""Sampled (empirical) loss and gradient on batches of Gaussian inputs (docs/model.md, "Losses on a finite batch").

Inputs are given either as patches ``Z`` of shape (n, k, p) (non-overlapping patches,
``stride == p``) or as raw inputs ``X`` of shape (n, d) with ``d = (k - 1) * stride + p``.

Dtypes: float32 and float64 batches are used as they are; integer batches are converted to
float64; anything else is a TypeError.  Labels ``y`` are converted to the batch's dtype.
Parameters and gradients are always float64.  Sums over samples (loss, gradients) accumulate in
float64.  Within one sample the compiled kernels take the p-term dot products and the k-term sum
of active patches in the batch's dtype (a float32 batch costs a relative error near sqrt(p) 2^-24
and k 2^-24 that does not grow with n); the Numba and NumPy kernels compute them in float64.

The generator is counter-based (Philox4x32-10 + Box-Muller, see ``backends/reference_sampled``):
the value of entry j of sample i depends only on (seed, i, j), so a seed gives the same inputs on
every backend, for every number of threads and every batch size (the first rows of a larger batch
are the rows of a smaller one).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import backends
from ._validation import (
    as_dtype,
    as_float_array,
    as_sample_array,
    as_sample_count,
    as_seed,
    as_threads,
    require_finite,
)
from .model import Model, check_model
from .population import check_direction

Array = np.ndarray


def _batch_shapes(model: Model):
    shapes = [(None, model.d)]
    if model.stride == model.p:
        shapes.insert(0, (None, model.k, model.p))
    return shapes


def _as_batch(model: Model, Z) -> Array:
    """Validate a batch and return it as (n, d), C-contiguous, float32 or float64.

    Finiteness is checked after the kernel, from its output (see ``_require_finite_inputs``).
    """
    X = as_sample_array("Z", Z, _batch_shapes(model), check_finite=False)
    if X.shape[0] == 0:
        raise ValueError("Z: expected a positive number of samples, got 0")
    return X.reshape(X.shape[0], model.d)  # no copy: X is C-contiguous


def _run(kernel, args, *named_arrays):
    """kernel(*args); a backend that checks finiteness itself names its own arguments (X, y):
    such an error is reported again under the caller's names."""
    try:
        return kernel(*args)
    except ValueError:
        for name, arr in named_arrays:
            require_finite(name, arr)
        raise


def _require_finite_inputs(output, *named_arrays) -> None:
    """Every backend turns a non-finite input it reads into a non-finite loss or gradient (the
    relu does not hide a nan, and an infinite entry reaches the gradient), so the inputs are
    scanned only when the output is not finite: a finite result costs no extra pass over the
    batch.  Entries no patch reads (stride > p) are not checked."""
    if np.all(np.isfinite(output)):
        return
    for name, arr in named_arrays:
        require_finite(name, arr)


def _as_filter(model: Model, w, a, names=("w", "a")):
    w = as_float_array(names[0], w, ndim=1, shape=(model.p,))
    a = as_float_array(names[1], a, ndim=1, shape=(model.k,))
    if model.normalize:  # v = u/|u| needs u != 0; the un-normalized network is defined everywhere
        check_direction(names[0], w, model)
    return w, a


def sample_inputs(model: Model, n: int, seed: int, *, dtype=np.float64, threads: Optional[int] = None,
                  backend: Optional[str] = None) -> Array:
    """n standard Gaussian inputs for ``model``, reproducible from ``seed`` (an integer in [0, 2^64)).

    Returns patches Z of shape (n, k, p) when ``model.stride == p``, else raw inputs X (n, d).
    """
    check_model(model)
    n = as_sample_count("n", n, model.d)
    seed = as_seed("seed", seed)
    dt = as_dtype("dtype", dtype)
    threads = as_threads("threads", threads)
    X = backends.get(backend).sample_inputs(n, model.d, seed, dt, threads)
    if model.stride == model.p:
        return X.reshape(n, model.k, model.p)
    return X


def predict(model: Model, w, a, Z, *, backend: Optional[str] = None, threads: Optional[int] = None) -> Array:
    """Network outputs f(Z_i; w, a) = sum_j a_j relu(<Z_ij, v>) of a batch, shape (n,), in Z's dtype."""
    check_model(model)
    w, a = _as_filter(model, w, a)
    X = _as_batch(model, Z)
    threads = as_threads("threads", threads)
    # An entry of -inf can vanish behind the relu of every patch reading it, so unlike the
    # gradient (where it shows) the output alone cannot reveal it: scan the batch first.
    require_finite("Z", X)
    f = backends.get(backend).predict(model.s, w, a, X, model.k, model.p, model.stride, model.normalize, threads)
    return np.asarray(f)


def teacher_labels(model: Model, w_star, a_star, Z, *, backend: Optional[str] = None,
                   threads: Optional[int] = None) -> Array:
    """Labels y = f(Z; w*, a*) of the realizable teacher (same as ``predict`` with the teacher's weights)."""
    check_model(model)
    w_star, a_star = _as_filter(model, w_star, a_star, names=("w_star", "a_star"))
    X = _as_batch(model, Z)
    threads = as_threads("threads", threads)
    require_finite("Z", X)
    f = backends.get(backend).predict(model.s, w_star, a_star, X, model.k, model.p, model.stride, model.normalize, threads)
    return np.asarray(f)


def _loss_grad_direct(model, w, a, Z, y, backend, threads):
    """The compiled kernel called at once when every argument already has the type, dtype, layout
    and shape it needs (a training loop's case; the Python checks cost more than a small batch's
    arithmetic).  The core checks every argument again itself, so only the cost is skipped; None
    (and any error the core raises) sends the call through the full path, whose messages name the
    arguments as given here."""
    core = backends.compiled_if_selected(backend)
    if core is None or not isinstance(model, Model):
        return None
    if not (type(Z) is np.ndarray and type(y) is np.ndarray and type(w) is np.ndarray and type(a) is np.ndarray):
        return None
    if threads is None:
        threads = 0
    elif type(threads) is not int or threads < 1:
        return None
    k, p, d = model._k, model._p, model.d
    shape = Z.shape
    n = shape[0] if shape else 0
    # Layouts and byte orders the core converts; a batch dtype other than float32/float64 it refuses.
    shape_ok = shape == (n, d) or (shape == (n, k, p) and model._stride == p)
    if not (shape_ok and n >= 1 and y.shape == (n,) and w.shape == (p,) and a.shape == (k,)
            and w.dtype.char == "d" and a.dtype.char == "d"):
        return None
    try:
        loss, grad_w, grad_a = core.sampled_loss_grad(model._s, w, a, Z.reshape(n, d), y, k, p, model._stride,
                                                      model._normalize, threads)
    except (ValueError, TypeError):
        return None
    # A non-finite result here comes from finite inputs (the core scans them when it sees one).
    return float(loss), grad_w, grad_a


def sampled_loss_grad(model: Model, w, a, Z, y, *, backend: Optional[str] = None,
                      threads: Optional[int] = None) -> Tuple[float, Array, Array]:
    """Empirical loss (1/2n) sum_i (f(Z_i) - y_i)^2 and its gradients ``(loss, dL/dw, dL/da)``."""
    direct = _loss_grad_direct(model, w, a, Z, y, backend, threads)
    if direct is not None:
        return direct
    check_model(model)
    w, a = _as_filter(model, w, a)
    X = _as_batch(model, Z)
    y = as_sample_array("y", y, [(None,)], dtype=X.dtype, check_finite=False)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y: expected shape ({X.shape[0]},) (one label per sample of Z), got shape {y.shape}")
    threads = as_threads("threads", threads)
    loss, grad_w, grad_a = _run(
        backends.get(backend).sampled_loss_grad,
        (model.s, w, a, X, y, model.k, model.p, model.stride, model.normalize, threads),
        ("Z", X), ("y", y),
    )
    _require_finite_inputs(np.concatenate([[loss], grad_w, grad_a]), ("Z", X), ("y", y))
    return float(loss), np.asarray(grad_w), np.asarray(grad_a)


def stochastic_loss_grad(model: Model, w, a, w_star, a_star, n: int, seed: int, *, dtype=np.float64,
                         backend: Optional[str] = None, threads: Optional[int] = None) -> Tuple[float, Array, Array]:
    """Fused sampling and gradient: ``sampled_loss_grad`` on ``Z = sample_inputs(model, n, seed,
    dtype=dtype)`` labelled by the teacher (w*, a*), without storing Z.

    Same result as the materialized pipeline ``sampled_loss_grad(model, w, a, Z, teacher_labels(
    model, w_star, a_star, Z))`` (labels rounded to ``dtype`` as ``predict`` stores them); bitwise
    on the C++ and Numba backends, to rounding on the NumPy reference (which sums in chunks).
    """
    check_model(model)
    w, a = _as_filter(model, w, a)
    w_star, a_star = _as_filter(model, w_star, a_star, names=("w_star", "a_star"))
    n = as_sample_count("n", n, model.d)
    seed = as_seed("seed", seed)
    dt = as_dtype("dtype", dtype)
    threads = as_threads("threads", threads)
    loss, grad_w, grad_a = backends.get(backend).stochastic_loss_grad(
        model.s, w, a, w_star, a_star, n, model.k, model.p, model.stride, model.normalize, seed, dt, threads
    )
    return float(loss), np.asarray(grad_w), np.asarray(grad_a)
