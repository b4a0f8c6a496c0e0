"""The step sizes of the large-k experiments and the two stability limits they respect (MODEL.md section 6).

- The a-step: the largest eigenvalue of the Hessian of L in a is (k + pi - 1)/(2 pi) (along the
  all-ones vector), so gradient descent on a diverges unless ``lr_a < 4 pi/(k + pi - 1)``
  (:func:`a_step_limit`; 0.1 diverges beyond k = 123).
- The phi-step near the optimum: there phi is multiplied each step by about
  ``1 - lr_w a.a*/(2 |u|^2)``, below -1 when ``|u|^2 < lr_w a.a*/4`` (:func:`phi_unstable`); phi
  then grows from rounding until |u| (which normalized GD only increases) is large enough.

:func:`scaled_lr` is the rule of the large-k experiments: one step size for both layers,
``min(0.1, pi/(k + pi - 1))``, i.e. a quarter of the a-step's limit once that is below 0.4
(k >= 30) and the step size 0.1 of the paper-scale experiments below. A quarter keeps the
a-step's worst mode contracting by 1/2 per step (no oscillation) and keeps the phi-step stable at
the optimum for both starts of the paper (|u0| = 1) whenever ``|a*|^2 < 4 (k + pi - 1)/pi``, about
1.27 k: most teachers a* ~ N(0, I_k) at large k, since |a*|^2/k concentrates at 1. One rate for
both layers makes gradient descent approach the gradient flow with ``lr_ratio = 1`` as k grows.
The price: the slow modes of a contract by ``lr (pi - 1)/(2 pi)`` per step, so the steps to reach a
given loss grow like k (the flow time ``steps * lr`` does not).
"""
from __future__ import annotations

import math

import numpy as np

#: the step size of the paper-scale experiments (k = 20), kept wherever it is stable with margin
BASE_LR = 0.1
#: the fraction of the a-step's limit used by :func:`scaled_lr`
LIMIT_FRACTION = 0.25


def a_step_limit(k) -> float:
    """The largest stable step size of the second layer, ``4 pi/(k + pi - 1)``."""
    return 4.0 * math.pi / (float(k) + math.pi - 1.0)


def scaled_lr(k, *, cap: float = BASE_LR, fraction: float = LIMIT_FRACTION) -> float:
    """``min(cap, fraction * 4 pi/(k + pi - 1))``: the step size of both layers at k patches."""
    return min(float(cap), float(fraction) * a_step_limit(k))


def phi_unstable(u_norm_sq, a_dot_astar, lr_w):
    """True where ``|u|^2 < lr_w a.a*/4``: phi is not stable at the optimum (MODEL.md section 6)."""
    return np.asarray(u_norm_sq, dtype=np.float64) < float(lr_w) * np.asarray(a_dot_astar, dtype=np.float64) / 4.0
