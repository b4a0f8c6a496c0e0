"""Exact population loss and gradient on Gaussian input (docs/model.md, "Closed forms under Gaussian input" and "Critical points")."""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from . import backends
from ._validation import as_float_array
from .model import Model, check_model

Array = np.ndarray


def check_parameters(model: Model, w, a, w_star, a_star):
    """Validate and convert (w, a, w*, a*) for ``model``; the filter directions must be defined."""
    check_model(model)
    w = as_float_array("w", w, ndim=1, shape=(model.p,))
    a = as_float_array("a", a, ndim=1, shape=(model.k,))
    w_star = as_float_array("w_star", w_star, ndim=1, shape=(model.p,))
    a_star = as_float_array("a_star", a_star, ndim=1, shape=(model.k,))
    check_direction("w", w, model)
    check_direction("w_star", w_star, model)
    return w, a, w_star, a_star


def check_direction(name: str, w: Array, model: Model) -> None:
    if not np.any(w + model.s):
        raise ValueError(
            f"{name}: expected {name} + s != 0 (the filter direction is undefined), got {name} + s = 0"
        )


def angle(u, v, *, backend: Optional[str] = None) -> float:
    """The angle between u and v in [0, pi], computed by atan2 and accurate near 0 and pi.

    Relative error ~1e-16 near 0, absolute error ~ulp(pi) near pi, for vectors of any finite
    scale (they are rescaled by powers of two, exactly, before any product is formed).
    """
    u = as_float_array("u", u, ndim=1)
    v = as_float_array("v", v, ndim=1, shape=u.shape)
    if u.shape[0] == 0:
        raise ValueError("u: expected a non-empty vector, got shape (0,)")
    if not np.any(u):
        raise ValueError("u: expected a non-zero vector, got all zeros")
    if not np.any(v):
        raise ValueError("v: expected a non-zero vector, got all zeros")
    return float(backends.get(backend).angle(u, v))


def spurious_optimum(model: Model, a_star, *, backend: Optional[str] = None) -> Array:
    """Second layer a_sp of the spurious critical point at phi = pi (docs/model.md, "Critical points").

    ``a_sp = (11^T + (pi - 1) I)^(-1) (11^T - I) a*``; together with a filter pointing away from
    the teacher's (v = -v*), it is a local minimum exactly when ``a_sp . a* < 0``.
    """
    check_model(model)
    a_star = as_float_array("a_star", a_star, ndim=1, shape=(model.k,))
    return np.asarray(backends.get(backend).spurious_second_layer(a_star))


def is_spurious_minimum(model: Model, a_star) -> bool:
    """Whether the spurious critical point is a local minimum: (1^T a*)^2 < ((pi - 1 + k)/pi) |a*|^2."""
    check_model(model)
    a_star = as_float_array("a_star", a_star, ndim=1, shape=(model.k,))
    return bool(a_star.sum() ** 2 < (np.pi - 1.0 + model.k) / np.pi * float(a_star @ a_star))


def population_loss_grad(model: Model, w, a, w_star, a_star, *, backend: Optional[str] = None) -> Tuple[float, Array, Array]:
    """Population loss and its gradients ``(L, dL/dw, dL/da)`` in one call."""
    w, a, w_star, a_star = check_parameters(model, w, a, w_star, a_star)
    loss, grad_w, grad_a = backends.get(backend).population_loss_grad(
        model.s, w, a, w_star, a_star, model.stride, model.normalize, True
    )
    return float(loss), np.asarray(grad_w), np.asarray(grad_a)


def population_loss(model: Model, w, a, w_star, a_star, *, backend: Optional[str] = None) -> float:
    """Population loss L(w, a) = E_Z 1/2 (f(Z; w, a) - f(Z; w*, a*))^2 for standard Gaussian Z.

    Accuracy: for stride >= p the closed form has no cancellation and keeps full relative
    accuracy down to phi ~ 1e-10 and below.  The overlapping-patch form (stride < p) sums terms
    of order |a|^2 that cancel near the optimum, so there its absolute error is ~1e-16 |a|^2.
    Range: the normalized model depends only on the direction of w + s and works for any finite
    scale of it; the un-normalized loss scales like |w + s|^2 and over- or underflows beyond
    |w + s| ~ 1e+-150.
    """
    w, a, w_star, a_star = check_parameters(model, w, a, w_star, a_star)
    loss, _, _ = backends.get(backend).population_loss_grad(
        model.s, w, a, w_star, a_star, model.stride, model.normalize, False
    )
    return float(loss)


def population_grad(model: Model, w, a, w_star, a_star, *, backend: Optional[str] = None) -> Tuple[Array, Array]:
    """Gradients ``(dL/dw, dL/da)`` of the population loss."""
    _, grad_w, grad_a = population_loss_grad(model, w, a, w_star, a_star, backend=backend)
    return grad_w, grad_a


def objective(model: Model, w_star, a_star, *, backend: Optional[str] = None) -> Tuple[Callable, Callable]:
    """``(fun, jac)`` over the flat parameter vector ``theta = concatenate([w, a])``, for scipy.optimize.

    Example: ``scipy.optimize.minimize(*objective(model, w_star, a_star)[:1], theta0,
    jac=objective(...)[1])``, or simply ``fun, jac = objective(...)``.
    """
    check_model(model)
    w_star = as_float_array("w_star", w_star, ndim=1, shape=(model.p,))
    a_star = as_float_array("a_star", a_star, ndim=1, shape=(model.k,))
    p, k = model.p, model.k

    def split(theta):
        theta = as_float_array("theta", theta, ndim=1, shape=(p + k,))
        return theta[:p], theta[p:]

    def fun(theta) -> float:
        w, a = split(theta)
        return population_loss(model, w, a, w_star, a_star, backend=backend)

    def jac(theta) -> Array:
        w, a = split(theta)
        grad_w, grad_a = population_grad(model, w, a, w_star, a_star, backend=backend)
        return np.concatenate([grad_w, grad_a])

    return fun, jac
