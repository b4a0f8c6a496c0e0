"""Where a gradient-descent run ended: global optimum, spurious local optimum, unconverged or diverged.

The rule (docs/model.md, "Critical points") is implemented in the compiled engine (``cpp/shortcutnet/trials.hpp``,
``classify``); :func:`classify` mirrors it for runs driven from Python (user schedules, SGD, the
Numba and NumPy backends), vectorized over a leading batch axis.

- ``"diverged"``: a non-finite value, or the loss, ``|w|`` or ``|a|`` above ``divergence``;
- ``"global"``: ``phi <= global_phi`` and ``|a - a*| <= global_a_err`` (un-normalized model:
  ``|rho a - rho* a*|``, since only the products ``rho a`` are identifiable);
- ``"spurious"`` (normalized, non-overlapping model): ``phi > pi/2``, ``|a - a_sp| <= spurious_a_err``
  and ``|L - L(a_sp, pi)| <= spurious_loss_gap * max(1, L(a_sp, pi))``.  Not a tight tolerance on
  ``pi - phi``: the minimum is degenerate in phi (``g(phi) ~ (pi - phi)^3/3``), so phi approaches
  pi slowly while a has long settled;
- otherwise ``"unconverged"``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from ._validation import describe

# Index = the int8 code used by the engines.
OUTCOMES = ("unconverged", "global", "spurious", "diverged")
UNCONVERGED, GLOBAL, SPURIOUS, DIVERGED = range(4)


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Thresholds of the outcome rule (see the module docstring).

    The defaults separate the two basins cleanly for population GD.  Measured (plain CNN, k = 20,
    p = 10, lr = 0.1, 3000 steps, 300 runs): on the global side ``phi <= 1.1e-16`` and
    ``|a - a*| <= 2.5e-5`` once ``L <= 1e-10`` (after 345-429 steps); on the spurious side
    ``|a - a_sp| <= 2e-7`` while ``pi - phi`` is still between 1.4e-3 and 7.6e-3.
    """

    global_phi: float = 1e-3
    global_a_err: float = 1e-3
    spurious_a_err: float = 1e-3
    spurious_loss_gap: float = 1e-4
    divergence: float = 1e12

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"thresholds.{field.name}: expected a positive number, got {describe(value)}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"thresholds.{field.name}: expected a finite number > 0, got {value!r}")
            object.__setattr__(self, field.name, float(value))

    def as_tuple(self) -> tuple:
        """The order the engines take them in."""
        return (self.global_phi, self.global_a_err, self.spurious_a_err, self.spurious_loss_gap, self.divergence)


def as_thresholds(thresholds) -> Thresholds:
    """None (the defaults), a Thresholds, or a mapping of some of its fields."""
    if thresholds is None:
        return Thresholds()
    if isinstance(thresholds, Thresholds):
        return thresholds
    if isinstance(thresholds, Mapping):
        names = {f.name for f in dataclasses.fields(Thresholds)}
        unknown = sorted(set(thresholds) - names)
        if unknown:
            raise ValueError(f"thresholds: unknown fields {unknown}, expected some of {sorted(names)}")
        return Thresholds(**thresholds)
    raise TypeError(f"thresholds: expected None, a shortcutnet.Thresholds or a dict, got {describe(thresholds)}")


def pow2_scales(x):
    """Per row of x (last axis): 2^(1-e) for max|x_i| = m 2^e, m in [1/2, 1) (1 for a zero row), the
    exact rescaling of the compiled core's safe_norm (cpp/shortcutnet/population.hpp)."""
    largest = np.max(np.abs(x), axis=-1)
    _, e = np.frexp(largest)
    return np.where(largest > 0.0, np.ldexp(1.0, np.minimum(1 - e, 1023)), 1.0)


def norms(x):
    """|x| over the last axis without overflow or underflow of the squares, for any finite scale."""
    x = np.asarray(x, dtype=np.float64)
    scale = pow2_scales(x)
    y = scale[..., None] * x
    return np.sqrt((y * y).sum(-1)) / scale


def spurious_loss(a_sp, a_star):
    """L(a_sp, phi = pi) of the normalized model, over the last axis."""
    diff = a_sp - a_star
    return (diff.sum(-1) ** 2 + (math.pi - 1.0) * (diff * diff).sum(-1) + 2.0 * math.pi * (a_sp * a_star).sum(-1)) / (
        4.0 * math.pi
    )


def classify(model, w, a, w_star, a_star, loss, phi, thresholds=None) -> np.ndarray:
    """Outcome codes (int8, indices into OUTCOMES) for final states with a leading batch axis.

    w (B, p), a (B, k), w_star (B, p), a_star (B, k), loss (B,), phi (B,).
    """
    return classify_raw(model.s, model.stride, model.normalize, w, a, w_star, a_star, loss, phi, thresholds)


def classify_raw(s, stride, normalize, w, a, w_star, a_star, loss, phi, thresholds=None) -> np.ndarray:
    """:func:`classify` on the model's raw data (shortcut vector, stride, normalization)."""
    th = as_thresholds(thresholds)
    w, a, w_star, a_star = (np.asarray(x, dtype=np.float64) for x in (w, a, w_star, a_star))
    loss = np.asarray(loss, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    a_sp_err = loss_sp = None
    with np.errstate(all="ignore"):
        w_norm = norms(w)
        a_norm = norms(a)
        if normalize:
            a_err = norms(a - a_star)
        else:
            rho = norms(w + s)[..., None]
            rho_star = norms(w_star + s)[..., None]
            a_err = norms(rho * a - rho_star * a_star)
        if normalize and stride >= np.shape(s)[0]:
            k = a_star.shape[-1]
            a_sp = ((math.pi / (math.pi - 1.0 + k)) * a_star.sum(-1, keepdims=True) - a_star) / (math.pi - 1.0)
            loss_sp = spurious_loss(a_sp, a_star)
            a_sp_err = norms(a - a_sp)
    return classify_observables(loss, phi, w_norm, a_norm, a_err, a_sp_err, loss_sp, th)


def classify_observables(loss, phi, w_norm, a_norm, a_err, a_sp_err=None, loss_sp=None, thresholds=None) -> np.ndarray:
    """The outcome rule on the quantities it reads, for engines that have them without (w, a).

    ``a_err`` is ``|a - a*|`` (normalized model) or ``|rho a - rho* a*|`` (un-normalized);
    ``a_sp_err = |a - a_sp|`` and ``loss_sp = L(a_sp, pi)`` where the spurious optimum applies
    (normalized, non-overlapping model), else None.  All broadcast against ``loss``.
    """
    th = as_thresholds(thresholds)
    loss, phi, w_norm, a_norm, a_err = (np.asarray(x, dtype=np.float64) for x in (loss, phi, w_norm, a_norm, a_err))
    with np.errstate(all="ignore"):
        finite = np.isfinite(loss) & np.isfinite(phi) & np.isfinite(w_norm) & np.isfinite(a_norm)
        diverged = ~finite | (loss > th.divergence) | (w_norm > th.divergence) | (a_norm > th.divergence)
        is_global = (phi <= th.global_phi) & (a_err <= th.global_a_err)
        if a_sp_err is not None:
            is_spurious = (
                (phi > 0.5 * math.pi)
                & (np.asarray(a_sp_err) <= th.spurious_a_err)
                & (np.abs(loss - loss_sp) <= th.spurious_loss_gap * np.maximum(1.0, loss_sp))
            )
        else:
            is_spurious = np.zeros_like(is_global)
    code = np.full(np.shape(loss), UNCONVERGED, dtype=np.int8)
    code[np.broadcast_to(is_spurious, code.shape)] = SPURIOUS
    code[np.broadcast_to(is_global, code.shape)] = GLOBAL
    code[np.broadcast_to(diverged, code.shape)] = DIVERGED
    return code


def names(codes) -> np.ndarray:
    """Outcome codes to their names, as a NumPy string array."""
    return np.asarray(OUTCOMES)[np.asarray(codes, dtype=np.intp)]
