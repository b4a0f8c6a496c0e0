"""Optimizers as data (docs/training.md, section 3): gd, momentum (heavy ball or Nesterov), adam.

Each optimizer is a small immutable object holding its step size and options, with two pure
functions over plain data, after optax and JAX's example optimizers::

    state = opt.init(w, a)
    upd_w, upd_a, state = opt.update(grad_w, grad_a, state)   # new parameters: w + upd_w, a + upd_a

The conventions are torch.optim's (dampening 0, no weight decay), so torch.optim is their oracle.
Step ``t`` is ``state.count``; its rates are ``(lr_w, lr_a) = opt.lr(t)``, one per layer, with ``lr``
anything :func:`shortcutnet.make_schedule` accepts. Per layer, with gradient ``g``:

- ``gd``:        ``upd = -(lr * g)``
- ``momentum``:  ``b = g`` at ``t = 0``, else ``b = beta * b + g``;
                 ``d = g + beta * b`` (Nesterov) or ``d = b``; ``upd = -(lr * d)``
- ``adam``:      ``m = beta1 * m + (1 - beta1) * g``, ``v = beta2 * v + (1 - beta2) * (g * g)``,
                 ``P1 = beta1 * P1``, ``P2 = beta2 * P2`` (both 1 at init), ``c1 = 1 - P1``,
                 ``r2 = 1 / sqrt(1 - P2)``, ``upd = -((lr / c1) * (m / (sqrt(v) * r2 + eps)))``

Every expression is evaluated as written, left to right, in float64, so that the compiled engines
(``cpp/shortcutnet/optimizers.hpp``) give the same bits; ``w + upd`` is bitwise ``w - lr * d``.
``opt.engine_spec()`` is the tuple ``(kind, beta, nesterov, beta1, beta2, eps)`` they take.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._validation import as_float_array, as_int, describe
from .schedules import Schedule, make_schedule

__all__ = ["AdamState", "GDState", "MomentumState", "Optimizer", "adam", "gd", "momentum", "resolve"]


# --------------------------------------------------------------------------- state
class GDState(NamedTuple):
    count: int
    shape_w: tuple
    shape_a: tuple


class MomentumState(NamedTuple):
    count: int
    buf_w: np.ndarray
    buf_a: np.ndarray


class AdamState(NamedTuple):
    count: int
    m_w: np.ndarray
    m_a: np.ndarray
    v_w: np.ndarray
    v_a: np.ndarray
    power1: float
    power2: float


def _frozen(x: np.ndarray) -> np.ndarray:
    """State arrays are read-only, so a state can be kept and reused without copying."""
    x.setflags(write=False)
    return x


def _zeros_like(x: np.ndarray) -> np.ndarray:
    return _frozen(np.zeros_like(x))


# --------------------------------------------------------------------------- option checks
def _rate_in_unit_interval(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a number in [0, 1), got {describe(value)}")
    value = float(value)
    if not 0.0 <= value < 1.0:  # also refuses nan
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return value


def _positive_finite(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a finite number > 0, got {describe(value)}")
    value = float(value)
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return value


def _flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {describe(value)}")
    return bool(value)


def _keyword_options(factory):
    """Refuse unknown or positional options with an error that lists the accepted ones."""
    signature = inspect.signature(factory)
    options = [p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]

    @functools.wraps(factory)
    def checked(*args, **kwargs):
        unknown = sorted(set(kwargs) - set(signature.parameters))
        if unknown:
            accepted = f"expected one of {options}" if options else "it takes no options"
            raise TypeError(f"{factory.__name__}: unknown option {unknown[0]!r}; {accepted}, got {unknown}")
        if len(args) > 1:
            expected = f"lr and the keyword-only options {options}" if options else "lr only"
            raise TypeError(f"{factory.__name__}: expected {expected}, got {len(args)} positional arguments")
        return factory(*args, **kwargs)

    return checked


# --------------------------------------------------------------------------- optimizers
class Optimizer:
    """Base of the optimizers: ``init(w, a) -> state``, ``update(grad_w, grad_a, state)``."""

    kind = ""
    State: type = tuple

    def init(self, w, a):
        raise NotImplementedError

    def update(self, grad_w, grad_a, state):
        raise NotImplementedError

    def engine_spec(self) -> tuple:
        """``(kind, beta, nesterov, beta1, beta2, eps)`` for the compiled engines (unused: 0.0 / False)."""
        raise NotImplementedError

    def _set_lr(self, lr):
        object.__setattr__(self, "lr", make_schedule(lr))

    def _count(self, state) -> int:
        """The step of a state of this optimizer's kind."""
        if not isinstance(state, self.State):
            raise TypeError(
                f"state: expected the {self.State.__name__} of {self.kind}(...).init, got {describe(state)}"
            )
        return as_int("state.count", state.count, minimum=0)


def _gradients(grad_w, grad_a, shape_w, shape_a):
    """The gradients as float64 arrays of the parameters' shapes."""
    shape_w, shape_a = tuple(shape_w), tuple(shape_a)
    return (as_float_array("grad_w", grad_w, ndim=len(shape_w), shape=shape_w),
            as_float_array("grad_a", grad_a, ndim=len(shape_a), shape=shape_a))


def _parameters(w, a):
    return as_float_array("w", w), as_float_array("a", a)


# Updates of huge but finite gradients may overflow to inf: that is the engine's divergence to
# detect, not an error here.
_ARITHMETIC = dict(over="ignore", invalid="ignore")


@dataclass(frozen=True, repr=False)
class GD(Optimizer):
    """Gradient descent: ``upd = -(lr * g)``."""

    lr: Schedule

    kind = "gd"
    State = GDState

    def __post_init__(self):
        self._set_lr(self.lr)

    def init(self, w, a) -> GDState:
        w, a = _parameters(w, a)
        return GDState(0, w.shape, a.shape)

    def update(self, grad_w, grad_a, state):
        count = self._count(state)
        g_w, g_a = _gradients(grad_w, grad_a, state.shape_w, state.shape_a)
        lr_w, lr_a = self.lr(count)
        with np.errstate(**_ARITHMETIC):
            return -(lr_w * g_w), -(lr_a * g_a), GDState(count + 1, state.shape_w, state.shape_a)

    def engine_spec(self):
        return ("gd", 0.0, False, 0.0, 0.0, 0.0)

    def __repr__(self):
        return f"gd(lr={self.lr!r})"


@dataclass(frozen=True, repr=False)
class Momentum(Optimizer):
    """Heavy-ball or Nesterov momentum (torch.optim.SGD, dampening 0).

    ``b = g`` at step 0, else ``b = beta * b + g``; ``d = g + beta * b`` if nesterov else ``b``;
    ``upd = -(lr * d)``.
    """

    lr: Schedule
    beta: float = 0.9
    nesterov: bool = False

    kind = "momentum"
    State = MomentumState

    def __post_init__(self):
        self._set_lr(self.lr)
        object.__setattr__(self, "beta", _rate_in_unit_interval("beta", self.beta))
        object.__setattr__(self, "nesterov", _flag("nesterov", self.nesterov))

    def init(self, w, a) -> MomentumState:
        w, a = _parameters(w, a)
        return MomentumState(0, _zeros_like(w), _zeros_like(a))

    def _layer(self, g, b, count, lr):
        beta = self.beta
        b = g.copy() if count == 0 else beta * b + g
        d = g + beta * b if self.nesterov else b
        return -(lr * d), _frozen(b)

    def update(self, grad_w, grad_a, state):
        count = self._count(state)
        g_w, g_a = _gradients(grad_w, grad_a, np.shape(state.buf_w), np.shape(state.buf_a))
        lr_w, lr_a = self.lr(count)
        with np.errstate(**_ARITHMETIC):
            upd_w, b_w = self._layer(g_w, state.buf_w, count, lr_w)
            upd_a, b_a = self._layer(g_a, state.buf_a, count, lr_a)
        return upd_w, upd_a, MomentumState(count + 1, b_w, b_a)

    def engine_spec(self):
        return ("momentum", self.beta, self.nesterov, 0.0, 0.0, 0.0)

    def __repr__(self):
        return f"momentum(lr={self.lr!r}, beta={self.beta!r}, nesterov={self.nesterov!r})"


@dataclass(frozen=True, repr=False)
class Adam(Optimizer):
    """Adam (torch.optim.Adam, no weight decay, no amsgrad), bias correction by running powers.

    ``m = beta1 * m + (1 - beta1) * g``, ``v = beta2 * v + (1 - beta2) * (g * g)``,
    ``P1 = beta1 * P1``, ``P2 = beta2 * P2``, ``c1 = 1 - P1``, ``r2 = 1 / sqrt(1 - P2)``,
    ``upd = -((lr / c1) * (m / (sqrt(v) * r2 + eps)))``.
    """

    lr: Schedule
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    kind = "adam"
    State = AdamState

    def __post_init__(self):
        self._set_lr(self.lr)
        object.__setattr__(self, "beta1", _rate_in_unit_interval("beta1", self.beta1))
        object.__setattr__(self, "beta2", _rate_in_unit_interval("beta2", self.beta2))
        object.__setattr__(self, "eps", _positive_finite("eps", self.eps))

    def init(self, w, a) -> AdamState:
        w, a = _parameters(w, a)
        return AdamState(0, _zeros_like(w), _zeros_like(a), _zeros_like(w), _zeros_like(a), 1.0, 1.0)

    def _layer(self, g, m, v, lr, c1, r2):
        beta1, beta2 = self.beta1, self.beta2
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * (g * g)
        return -((lr / c1) * (m / (np.sqrt(v) * r2 + self.eps))), _frozen(m), _frozen(v)

    def update(self, grad_w, grad_a, state):
        count = self._count(state)
        g_w, g_a = _gradients(grad_w, grad_a, np.shape(state.m_w), np.shape(state.m_a))
        lr_w, lr_a = self.lr(count)
        power1 = self.beta1 * float(state.power1)
        power2 = self.beta2 * float(state.power2)
        c1 = 1.0 - power1
        r2 = 1.0 / math.sqrt(1.0 - power2)
        with np.errstate(**_ARITHMETIC):
            upd_w, m_w, v_w = self._layer(g_w, state.m_w, state.v_w, lr_w, c1, r2)
            upd_a, m_a, v_a = self._layer(g_a, state.m_a, state.v_a, lr_a, c1, r2)
        return upd_w, upd_a, AdamState(count + 1, m_w, m_a, v_w, v_a, power1, power2)

    def engine_spec(self):
        return ("adam", 0.0, False, self.beta1, self.beta2, self.eps)

    def __repr__(self):
        return f"adam(lr={self.lr!r}, beta1={self.beta1!r}, beta2={self.beta2!r}, eps={self.eps!r})"


# --------------------------------------------------------------------------- constructors
@_keyword_options
def gd(lr) -> GD:
    """Gradient descent, ``x = x - lr(t) g``."""
    return GD(lr)


@_keyword_options
def momentum(lr, *, beta=0.9, nesterov=False) -> Momentum:
    """torch.optim.SGD(momentum=beta, dampening=0, nesterov=nesterov); beta in [0, 1)."""
    return Momentum(lr, beta, nesterov)


@_keyword_options
def adam(lr, *, beta1=0.9, beta2=0.999, eps=1e-8) -> Adam:
    """torch.optim.Adam(betas=(beta1, beta2), eps=eps); beta1, beta2 in [0, 1), eps > 0."""
    return Adam(lr, beta1, beta2, eps)


def resolve(lr=None, optimizer=None) -> Optimizer:
    """The optimizer of a training call: exactly one of ``lr`` (meaning ``gd(lr)``) and ``optimizer``."""
    if (lr is None) == (optimizer is None):
        given = "both" if lr is not None else "neither"
        raise ValueError(
            f"lr, optimizer: expected exactly one of lr (plain gradient descent) and optimizer "
            f"(e.g. sn.optim.adam(lr)), got {given}"
        )
    if optimizer is None:
        return gd(lr)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer: expected sn.optim.gd(...), sn.optim.momentum(...) or sn.optim.adam(...), "
            f"got {describe(optimizer)}"
        )
    return optimizer
