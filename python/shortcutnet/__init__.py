"""shortcutnet: exact and fast gradient descent on two-layer convolutional networks with and
without an identity shortcut, after Liu, Chen, Zhou, Du, Zhou, Zhao, "Towards Understanding the
Importance of Shortcut Connections in Residual Networks", NeurIPS 2019.
"""
from __future__ import annotations

import importlib

from . import optim, seeds
from ._version import __version__
from .backends import BackendWarning
from .cpp_package import get_cmake_dir, get_include
from .init import init_first_layer, init_second_layer
from .kernels import predict, sample_inputs, sampled_loss_grad, stochastic_loss_grad, teacher_labels
from .model import Model
from .outcomes import OUTCOMES, Thresholds
from .population import (
    angle,
    is_spurious_minimum,
    objective,
    population_grad,
    population_loss,
    population_loss_grad,
    spurious_optimum,
)
from .schedules import constant, make_schedule, piecewise
from .seeds import trial_seed
from .train import History, TrainResult, TrialsResult, run_trials, train
from .flow import FlowResult, gradient_flow


def backends() -> list:
    """Available kernel backends, fastest first, e.g. ``["cpp", "numba", "numpy"]``."""
    # The subpackage shares this function's name, so fetch it by its full module path.
    return importlib.import_module(".backends", __name__).available()


def build_info() -> dict:
    """What the compiled core was built with: compiler, OpenMP, SIMD levels supported and in use.

    ``{"available": False, "error": ...}`` when the compiled core cannot be imported.
    """
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
    "FlowResult",
    "History",
    "Model",
    "OUTCOMES",
    "Thresholds",
    "TrainResult",
    "TrialsResult",
    "angle",
    "backends",
    "build_info",
    "constant",
    "get_cmake_dir",
    "get_include",
    "gradient_flow",
    "init_first_layer",
    "init_second_layer",
    "is_spurious_minimum",
    "make_schedule",
    "objective",
    "optim",
    "piecewise",
    "population_grad",
    "population_loss",
    "population_loss_grad",
    "predict",
    "run_trials",
    "sample_inputs",
    "sampled_loss_grad",
    "spurious_optimum",
    "stochastic_loss_grad",
    "teacher_labels",
    "train",
    "trial_seed",
]
