"""shortcutnet: exact and fast gradient descent on two-layer convolutional networks with and
without an identity shortcut, after Liu, Chen, Zhou, Du, Zhou, Zhao, "Towards Understanding the
Importance of Shortcut Connections in Residual Networks", NeurIPS 2019.
"""
from __future__ import annotations

import importlib

from ._version import __version__
from .backends import BackendWarning
from .model import Model
from .population import (
    angle,
    is_spurious_minimum,
    objective,
    population_grad,
    population_loss,
    population_loss_grad,
    spurious_optimum,
)


def backends() -> list:
    """Available kernel backends, fastest first, e.g. ``["cpp", "numba", "numpy"]``."""
    # The subpackage shares this function's name, so fetch it by its full module path.
    return importlib.import_module(".backends", __name__).available()


def build_info() -> dict:
    """What the compiled core was built with (compiler, OpenMP, SIMD levels); ``{}`` without it."""
    try:
        from . import _core
    except ImportError as exc:
        return {"available": False, "error": str(exc)}
    info = dict(_core.build_info())
    info["available"] = True
    return info


__all__ = [
    "__version__",
    "BackendWarning",
    "Model",
    "angle",
    "backends",
    "build_info",
    "is_spurious_minimum",
    "objective",
    "population_grad",
    "population_loss",
    "population_loss_grad",
    "spurious_optimum",
]

# Training: initializations, step-size schedules, gradient descent and its outcomes.
from .init import init_first_layer, init_second_layer  # noqa: E402
from .outcomes import OUTCOMES, Thresholds  # noqa: E402
from .schedules import constant, make_schedule, piecewise  # noqa: E402
from .train import History, TrainResult, TrialsResult, run_trials, train  # noqa: E402

__all__ += [
    "OUTCOMES",
    "History",
    "Thresholds",
    "TrainResult",
    "TrialsResult",
    "constant",
    "init_first_layer",
    "init_second_layer",
    "make_schedule",
    "piecewise",
    "run_trials",
    "train",
]
