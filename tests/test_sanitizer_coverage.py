"""The sanitizer run's plugin fails the run when a training-engine test skips for a reason that the
sanitizer build causes (the compiled backend missing), and lets known reasons pass."""
from types import SimpleNamespace

import pytest

import sanitizer_coverage as plugin


def report(path, reason, skipped=True):
    return SimpleNamespace(skipped=skipped, fspath=path, nodeid=f"{path}::test_x", longrepr=(path, 1, reason))


@pytest.mark.parametrize("path,reason,fails", [
    ("tests/test_training_engine.py", "Skipped: the compiled backend is not available", True),
    ("tests/test_fuzz_training.py", "Skipped: no module named shortcutnet._core", True),
    ("tests/test_engine_backends.py", "Skipped: PyTorch (the optimizers' oracle) is not installed", False),
    ("tests/test_training_engine.py", "Skipped: the population gradient is float64 only", False),
    ("tests/test_sweep.py", "Skipped: anything", False),
])
def test_a_skipped_engine_test_fails_the_sanitizer_run(monkeypatch, path, reason, fails):
    monkeypatch.setattr(plugin, "_skipped", [])
    plugin.pytest_runtest_logreport(report(path, reason))
    plugin.pytest_runtest_logreport(report(path, reason, skipped=False))
    session = SimpleNamespace(exitstatus=pytest.ExitCode.OK)
    plugin.pytest_sessionfinish(session, pytest.ExitCode.OK)
    assert (session.exitstatus == pytest.ExitCode.TESTS_FAILED) == fails
    assert len(plugin._skipped) == int(fails)
