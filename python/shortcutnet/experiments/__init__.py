"""The experiments of docs/model.md, "The paper's claim and the experiments", each returning a tidy table (a list of row dicts).

Every row carries its configuration, seed, kernel backend and package version.
"""
from ._common import PROCESSES, metadata, rows_to_columns, wilson_interval
from .convergence import convergence_time, fit_slopes
from .optimizers import compare_optimizers
from .sample_complexity import sample_complexity, sample_grid
from .sgd import sgd_vs_gd
from .success import success_rate, success_vs_angle, success_vs_stride
from .tables import Table
from .trajectory import trajectory

__all__ = [
    "PROCESSES",
    "Table",
    "compare_optimizers",
    "convergence_time",
    "fit_slopes",
    "metadata",
    "rows_to_columns",
    "sample_complexity",
    "sample_grid",
    "sgd_vs_gd",
    "success_rate",
    "success_vs_angle",
    "success_vs_stride",
    "trajectory",
    "wilson_interval",
]
