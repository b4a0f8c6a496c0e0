"""pytest plugin of the sanitizer run (``scripts/sanitize.sh`` loads it with ``-p``): the tests of the
compiled training engine (optimizers, stochastic gradients, every engine) must run there, not skip.

A skip in those files fails the run, unless its reason is one that also holds outside the sanitizer
run: the PyTorch oracle is not installed in the sanitizer's environment, and some parameter
combinations do not exist (the population gradient has no float32).
"""
from __future__ import annotations

import os

import pytest

ENGINE_TESTS = {"test_training_engine.py", "test_engine_backends.py", "test_engine_simd.py", "test_run_trials.py",
                "test_train_sgd.py", "test_optim_contract.py", "test_fuzz_training.py"}
ALLOWED_REASONS = ("torch", "PyTorch", "float64 only")

_skipped: list = []


def _reason(report) -> str:
    longrepr = report.longrepr
    return str(longrepr[-1]) if isinstance(longrepr, tuple) else str(longrepr)


def _check(report) -> None:
    if report.skipped and os.path.basename(str(report.fspath)) in ENGINE_TESTS:
        reason = _reason(report)
        if not any(word in reason for word in ALLOWED_REASONS):
            _skipped.append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report):
    _check(report)  # a module skipped as a whole (the compiled backend missing)


def pytest_runtest_logreport(report):
    _check(report)


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.section("training-engine tests skipped in the sanitizer run")
        for line in _skipped:
            terminalreporter.write_line(line)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _skipped and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
