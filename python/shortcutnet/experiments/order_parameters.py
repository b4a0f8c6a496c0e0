"""Plain-CNN trials drawn directly in the order-parameter coordinates of docs/reduced.md, at a cost
that does not grow with k or p, and run by the reduced engine's step loop.

Population GD on the non-overlapping model only sees a trial through its coordinates (the angle
of u0 to u*, and a*, 1, a0 in an orthonormal basis of span(a*, 1, a0)). For the paper's random
CNN trials their joint law is known in closed form, by rotation invariance:

- u-plane: w0 uniform on the unit sphere of R^p, independent of the teacher direction, so
  ``(1 + cos phi0)/2 ~ Beta((p - 1)/2, (p - 1)/2)``; ``x0 = cos phi0``, ``y0 = sin phi0``, and w0 = u0
  lies in the plane (s = 0).
- a-space: a* ~ N(0, I_k) gives ``m = 1.a*/sqrt(k) ~ N(0, 1)`` and ``|a*|^2 = m^2 + chi^2_{k-1}``
  independently; then ``A = (|a*|, 0, 0)``, ``C = (c1, c2, 0)`` with ``c1 = sqrt(k) m/|a*|`` and
  ``c2 = sqrt(k - c1^2)``. a0 is uniform in the ball of radius ``|1.a*|/sqrt(k) = |m|``:
  ``a0 = |m| U^(1/k) theta`` with theta uniform on the sphere, independent of (f1, f2), so its
  coordinates are ``|m| U^(1/k) (g1, g2, chi_{k-2}) / sqrt(g1^2 + g2^2 + chi^2_{k-2})``.

Drawing a trial this way costs a few random numbers instead of k + p, and running it costs a few
numbers per step: what makes 10^6 trials per cell at k = 10^4, p = 10^3 affordable. The same
coordinates are realized as vectors (``embed``: p = 2 and the k-vectors built from three fixed
orthonormal directions), so any trial can be rerun through ``run_trials`` as a check.
"""
from __future__ import annotations

import math

import numpy as np

from ..backends import numba_reduced as _nr

#: coordinates of a drawn batch: x0, y0 (B,), a_norm = |a*| (B,), c1, c2 (B,), alpha0 (B, 3)
FIELDS = ("x0", "y0", "a_norm", "c1", "c2", "alpha0")


def draw_cnn(k: int, p: int, n: int, rng: np.random.Generator) -> dict:
    """The coordinates of n plain-CNN trials (w0 on the sphere, a* ~ N(0, I), a0 in the ball)."""
    if k < 3 or p < 2:
        raise ValueError(f"k, p: expected k >= 3 and p >= 2 (a three-dimensional a-space and a u-plane), "
                         f"got k = {k}, p = {p}")
    cos_phi = 2.0 * rng.beta((p - 1) / 2.0, (p - 1) / 2.0, size=n) - 1.0
    m = rng.standard_normal(n)
    a_norm = np.sqrt(m * m + rng.chisquare(k - 1, size=n))
    c1 = math.sqrt(k) * m / a_norm
    c2 = np.sqrt(np.maximum(k - c1 * c1, 0.0))
    g = rng.standard_normal((n, 2))
    rest = np.sqrt(rng.chisquare(k - 2, size=n))
    direction = np.column_stack([g, rest])
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    radius = np.abs(m) * rng.random(n) ** (1.0 / k)
    return {"x0": cos_phi, "y0": np.sqrt(np.maximum(1.0 - cos_phi * cos_phi, 0.0)), "a_norm": a_norm, "c1": c1,
            "c2": c2, "alpha0": direction * radius[:, None]}


def _orthonormal_directions(k: int) -> np.ndarray:
    """1/sqrt(k) and two fixed unit vectors orthogonal to it and to each other, as rows (3, k)."""
    q = np.zeros((3, k))
    q[0] = 1.0 / math.sqrt(k)
    q[1, 0], q[1, 1] = 1.0 / math.sqrt(2.0), -1.0 / math.sqrt(2.0)
    q[2, 0], q[2, 1], q[2, 2] = 1.0 / math.sqrt(6.0), 1.0 / math.sqrt(6.0), -2.0 / math.sqrt(6.0)
    return q


def embed(coords: dict, k: int):
    """Vectors with the given coordinates: (model, w_star (2,), a_star (B, k), w0 (B, 2), a0 (B, k)).

    The model is the plain CNN with k patches of p = 2 pixels: p enters the dynamics only through
    the law of phi0, already drawn. a* and a0 lie in span(1, q2, q3) for two fixed unit vectors
    q2, q3 orthogonal to 1, with |a*|, 1.a* and a0's coordinates as drawn.
    """
    from ..model import Model

    q = _orthonormal_directions(k)
    c1, a_norm = coords["c1"], coords["a_norm"]
    along = c1 / math.sqrt(k)  # f1 = along q1 + across q2
    across = np.sqrt(np.maximum(1.0 - along * along, 0.0))
    f1 = along[:, None] * q[0] + across[:, None] * q[1]
    f2 = (math.sqrt(k) * q[0] - c1[:, None] * f1) / coords["c2"][:, None]
    alpha0 = coords["alpha0"]
    a_star = a_norm[:, None] * f1
    a0 = alpha0[:, 0:1] * f1 + alpha0[:, 1:2] * f2 + alpha0[:, 2:3] * q[2]
    w0 = np.column_stack([coords["x0"], coords["y0"]])
    return Model(k, 2, shortcut=False), np.array([1.0, 0.0]), a_star, w0, a0


def _constants(coords: dict) -> np.ndarray:
    """The constants of the Numba reduced engine (numba_reduced's layout) of the drawn trials."""
    n = coords["x0"].shape[0]
    const = np.zeros((n, _nr.N_CONST))
    const[:, _nr.RHO_STAR] = 1.0
    const[:, _nr.X0] = const[:, _nr.OMEGA1] = coords["x0"]
    const[:, _nr.Y0] = const[:, _nr.OMEGA2] = coords["y0"]
    const[:, _nr.A_] = coords["a_norm"]
    const[:, _nr.C_] = coords["c1"]
    const[:, _nr.C_ + 1] = coords["c2"]
    const[:, _nr.ALPHA0:_nr.ALPHA0 + 3] = coords["alpha0"]
    return const


#: decided_basin's codes
UNDECIDED, GLOBAL_BASIN, SPURIOUS_BASIN, DIVERGED = 0, 1, 2, 3


def run_until_decided(coords: dict, *, lr: float, max_steps: int, decide_phi: float = math.pi / 4,
                      first_check: int = 20, divergence: float = 1e12) -> dict:
    """Gradient descent (rate ``lr`` on both layers, normalized model) on the drawn trials, each
    until its basin is decided: ``phi < decide_phi`` with ``a.a* > 0`` (global) or
    ``phi > pi - decide_phi`` with ``a.a* < 0`` (spurious), checked after ``first_check`` steps and
    then at intervals growing by a quarter; a trial still undecided after ``max_steps`` is reported so.
    The step loop is the Numba reduced engine's (``numba_reduced.advance_range``).

    Returns ``{"basin": int8 codes (UNDECIDED, GLOBAL_BASIN, SPURIOUS_BASIN, DIVERGED), "steps":
    steps run, "phi", "a_dot": a.a*, "u_norm_sq": |u|^2 at the decision}``.
    """
    const = _constants(coords)
    n = const.shape[0]
    state_f = np.zeros((n, _nr.N_STATE))
    state_f[:, _nr.X] = const[:, _nr.X0]
    state_f[:, _nr.Y] = const[:, _nr.Y0]
    state_f[:, _nr.ALPHA:_nr.ALPHA + 3] = const[:, _nr.ALPHA0:_nr.ALPHA0 + 3]
    state_i = np.zeros((n, 4), dtype=np.int64)
    state_i[:, _nr.STEPS_TO_TOL] = -1
    rates = np.array([[float(lr), float(lr)]])
    history = np.empty((0, 7))
    basin = np.zeros(n, dtype=np.int8)
    last, interval = -1, int(first_check)
    with np.errstate(all="ignore"):
        while True:
            last = min(last + interval, int(max_steps))
            # tol = 0: no trial stops by its loss; each stops when decided (below) or after max_steps
            _nr.advance_range(True, const, state_f, state_i, rates, 0, int(max_steps), 0.0, float(divergence), False,
                              0.0, False, last, history, 1, False, 0, n)
            open_ = np.flatnonzero(basin == UNDECIDED)
            x, y = state_f[open_, _nr.X], state_f[open_, _nr.Y]
            phi = np.arctan2(np.abs(y), x)
            a_dot = const[open_, _nr.A_] * state_f[open_, _nr.ALPHA]
            stopped = state_i[open_, _nr.DONE] == 1
            finite = np.isfinite(x) & np.isfinite(y) & np.all(np.isfinite(state_f[open_, _nr.ALPHA:_nr.ALPHA + 3]), 1)
            # stopped early without reaching tol = 0: the divergence rule of the engine stopped it
            early = (state_i[open_, _nr.STEP] < max_steps) & (state_i[open_, _nr.STEPS_TO_TOL] < 0)
            diverged = stopped & (early | ~finite)
            code = np.where(diverged, DIVERGED,
                            np.where((phi < decide_phi) & (a_dot > 0), GLOBAL_BASIN,
                                     np.where((phi > math.pi - decide_phi) & (a_dot < 0), SPURIOUS_BASIN,
                                              UNDECIDED))).astype(np.int8)
            basin[open_] = code
            state_i[open_[code != UNDECIDED], _nr.DONE] = 1
            if last >= max_steps or not np.any(basin == UNDECIDED):
                break
            interval = max(1, interval + interval // 4)
        x, y = state_f[:, _nr.X], state_f[:, _nr.Y]
        return {"basin": basin, "steps": state_i[:, _nr.STEP].copy(), "phi": np.arctan2(np.abs(y), x),
                "a_dot": const[:, _nr.A_] * state_f[:, _nr.ALPHA], "u_norm_sq": x * x + y * y}
