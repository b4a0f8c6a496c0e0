"""The experiments of docs/model.md, "The paper's claim and the experiments", each returning a tidy table (a list of row dicts).

Every row carries its configuration, seed, kernel backend and package version.
"""
from ._common import PROCESSES, metadata, rows_to_columns, wilson_interval
from .convergence import convergence_time, fit_slopes
from .gd_vs_flow import gd_vs_flow
from .hypotheses import hypotheses
from .optimizers import compare_optimizers
from .phi_instability import phi_instability
from .sample_complexity import sample_complexity, sample_grid
from .scaling import convergence_scaling
from .sgd import sgd_vs_gd
from .step_phase import divergence_boundary, step_size_phase
from .step_sizes import a_step_limit, scaled_lr
from .success import success_rate, success_vs_angle, success_vs_stride
from .success_limit import fit_limit, success_limit
from .tables import Table
from .trajectory import trajectory

__all__ = [
    "PROCESSES",
    "Table",
    "a_step_limit",
    "compare_optimizers",
    "convergence_scaling",
    "convergence_time",
    "divergence_boundary",
    "fit_limit",
    "fit_slopes",
    "gd_vs_flow",
    "hypotheses",
    "metadata",
    "phi_instability",
    "rows_to_columns",
    "sample_complexity",
    "sample_grid",
    "scaled_lr",
    "sgd_vs_gd",
    "step_size_phase",
    "success_limit",
    "success_rate",
    "success_vs_angle",
    "success_vs_stride",
    "trajectory",
    "wilson_interval",
]
