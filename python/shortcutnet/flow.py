"""The gradient flow of the population loss, the continuous-time limit of gradient descent
(docs/reduced.md section 6).

``dw/dt = -grad_w L``, ``da/dt = -lr_ratio grad_a L`` is integrated in the order-parameter
coordinates of the reduced engine (five ODEs: x, y and the three coordinates of a) by
``scipy.integrate.solve_ivp`` with DOP853; the end of stage I (docs/model.md, "The paper's claim and the experiments") is found by
event detection on ``a.a*``.  Gradient descent with rates ``(eta, lr_ratio * eta)`` after n steps
approaches the flow at ``t = n eta`` with an error O(eta).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Optional

import numpy as np

from ._validation import as_float_array, describe
from .backends import reference_reduced as _reduced
from .model import Model, check_model
from .population import check_direction
from .train import History

COLUMNS = ("t", "loss", "phi", "a_dot_astar", "a_err", "w_norm")
# solve_ivp raises the relative tolerance to 100 machine epsilons (with a warning) below this.
MIN_RTOL = 100 * np.finfo(np.float64).eps


@dataclasses.dataclass(frozen=True, repr=False)
class FlowResult:
    """A gradient-flow trajectory (like scipy's OptimizeResult).

    Attributes: ``w``, ``a`` the parameters at ``t_max``; ``loss`` and ``phi`` there; ``history``
    (columns t, loss, phi, a_dot_astar, a_err, w_norm) at the requested times, or at the solver's
    steps when none were requested; ``stage1_end`` the first time from which ``a.a* > 0`` (the end
    of stage I: 0.0 when ``a0.a* > 0`` already, None when ``a.a*`` never becomes positive before
    ``t_max``); ``nfev`` the number of evaluations of the right-hand side.
    """

    w: np.ndarray
    a: np.ndarray
    loss: float
    phi: float
    t_max: float
    history: History
    stage1_end: Optional[float]
    nfev: int

    def __repr__(self):
        stage = "None" if self.stage1_end is None else f"{self.stage1_end:.6g}"
        return (f"FlowResult(t_max={self.t_max:.6g}, loss={self.loss:.6g}, phi={self.phi:.6g}, stage1_end={stage}, "
                f"w=<array {self.w.shape}>, a=<array {self.a.shape}>, history=<{self.history.n_records} records>)")


def _number(name, value, *, minimum, strict, maximum=math.inf):
    """A finite real number > minimum (strict) or >= minimum, below maximum."""
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
    expected = f"a finite number {bound}" + (f" and < {maximum:g}" if math.isfinite(maximum) else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected {expected}, got {describe(value)}")
    value = float(value)
    if not (math.isfinite(value) and (value > minimum if strict else value >= minimum) and value < maximum):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return value


def _times(times, t_max):
    if times is None:
        return None
    times = as_float_array("times", times, ndim=1)
    if times.shape[0] == 0:
        raise ValueError("times: expected at least one time, got an empty array")
    if times[0] < 0.0 or times[-1] > t_max:
        raise ValueError(f"times: expected times in [0, t_max = {t_max!r}], got times from {times.min()!r} to "
                         f"{times.max()!r}")
    if np.any(np.diff(times) < 0.0):
        bad = int(np.flatnonzero(np.diff(times) < 0.0)[0])
        raise ValueError(f"times: expected non-decreasing times, got times[{bad}] = {times[bad]!r} > "
                         f"times[{bad + 1}] = {times[bad + 1]!r}")
    return times


def _kernel():
    """The step's loss and gradient in coordinates for one state: the Numba kernel (fast to call
    from the solver), or the NumPy reference where Numba does not load."""
    try:
        from .backends import numba_reduced
    except ImportError:
        numba_reduced = None
    if numba_reduced is not None:
        return numba_reduced.loss_grad

    def loss_grad(normalize, c, x, y, al0, al1, al2):
        out = _reduced.loss_grad(normalize, c[0:1], c[None, 6:9], c[None, 9:12], np.array([x]), np.array([y]),
                                 np.array([[al0, al1, al2]]))
        return out[0][0], out[1][0], out[2][0], out[3][0], *out[4][0]

    return loss_grad


def gradient_flow(model: Model, w_star, a_star, w0, a0, *, t_max, lr_ratio=1.0, times=None, rtol=1e-10,
                  atol=1e-14) -> FlowResult:
    """Integrate the gradient flow of the population loss from (w0, a0) up to time t_max.

    ``dw/dt = -grad_w L``, ``da/dt = -lr_ratio * grad_a L`` (gradient descent with rates
    ``(eta, lr_ratio * eta)`` in the limit eta -> 0, time ``t = steps * eta``), on the
    non-overlapping model (stride >= p), normalized or not, any shortcut vector.
    times: the times of the history (non-decreasing, in [0, t_max]); None records the solver's
    steps.  rtol, atol: the tolerances of ``scipy.integrate.solve_ivp`` (DOP853) on the
    coordinates (x, y, alpha), whose scale is that of |w + s| and |a|.
    """
    from scipy.integrate import solve_ivp

    check_model(model)
    if model.stride < model.p:
        raise ValueError(f"model: gradient_flow runs on non-overlapping patches (stride >= p), got stride = "
                         f"{model.stride} < p = {model.p}")
    p, k = model.p, model.k
    w_star = as_float_array("w_star", w_star, ndim=1, shape=(p,))
    a_star = as_float_array("a_star", a_star, ndim=1, shape=(k,))
    w0 = as_float_array("w0", w0, ndim=1, shape=(p,))
    a0 = as_float_array("a0", a0, ndim=1, shape=(k,))
    check_direction("w0", w0, model)
    check_direction("w_star", w_star, model)
    t_max = _number("t_max", t_max, minimum=0.0, strict=True)
    lr_ratio = _number("lr_ratio", lr_ratio, minimum=0.0, strict=False)
    rtol = _number("rtol", rtol, minimum=MIN_RTOL, strict=False, maximum=1.0)
    atol = _number("atol", atol, minimum=0.0, strict=True)
    times = _times(times, t_max)

    normalize = model.normalize
    co = _reduced.Coordinates(model.s, w0[None], a0[None], w_star[None], a_star[None])
    const = np.concatenate([co.rho_star, co.x0, co.y0, co.omega1, co.omega2, co.omega_perp_sq, co.A[0], co.C[0],
                            co.alpha0[0]])
    kernel = _kernel()

    def rhs(t, z):
        _, _, gx, gy, g0, g1, g2 = kernel(normalize, const, z[0], z[1], z[2], z[3], z[4])
        return np.array([-gx, -gy, -lr_ratio * g0, -lr_ratio * g1, -lr_ratio * g2])

    def stage1(t, z):
        return co.A[0, 0] * z[2]  # a.a* = A.alpha, A = (|a*|, 0, 0)

    stage1.direction = 1.0
    z0 = np.concatenate([co.x0, co.y0, co.alpha0[0]])
    # Stage I is empty when a0.a* > 0 already, and never ends when a* = 0 (a.a* = 0 for ever).
    detect = stage1(0.0, z0) <= 0.0 and co.A[0, 0] > 0.0
    with np.errstate(all="ignore"):  # a failing integration is reported below, not warned about
        sol = solve_ivp(rhs, (0.0, t_max), z0, method="DOP853", rtol=rtol, atol=atol, dense_output=times is not None,
                        events=stage1 if detect else None)
    if sol.status < 0:
        raise RuntimeError(f"gradient_flow: the integration stopped at t = {sol.t[-1]!r} before t_max = {t_max!r}: "
                           f"{sol.message}")
    if detect:
        stage1_end = float(sol.t_events[0][0]) if sol.t_events[0].size else None
    else:
        stage1_end = 0.0 if stage1(0.0, z0) > 0.0 else None

    if times is None:
        t_rec, z_rec = sol.t, sol.y
    else:
        t_rec, z_rec = times, sol.sol(times)
    x, y, alpha = z_rec[0], z_rec[1], z_rec[2:5].T
    loss, phi, a_dot, a_err = _reduced.observables(normalize, co.rho_star, co.A, co.C, x, y, alpha)
    w_norm = np.sqrt(co.w_norm_sq(x, y, np.zeros(x.shape[0], dtype=np.intp)))
    history = History(np.column_stack([t_rec, loss, phi, a_dot, a_err, w_norm]), COLUMNS)

    z_end = sol.y[:, -1]
    x_end, y_end, alpha_end = z_end[0:1], z_end[1:2], z_end[None, 2:5]
    w, a = co.rebuild(w0[None], a0[None], x_end, y_end, alpha_end)
    loss_end, phi_end = _reduced.observables(normalize, co.rho_star, co.A, co.C, x_end, y_end, alpha_end)[:2]
    w, a = w[0], a[0]
    w.setflags(write=False)
    a.setflags(write=False)
    return FlowResult(w=w, a=a, loss=float(loss_end[0]), phi=float(phi_end[0]), t_max=t_max, history=history,
                      stage1_end=stage1_end, nfev=int(sol.nfev))
