"""Backend listing, the SHORTCUTNET_BACKEND default, and the fallback when the compiled core is missing."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import shortcutnet as sn

selection = importlib.import_module("shortcutnet.backends")


def test_backends_lists_all_three_fastest_first():
    assert sn.backends() == ["cpp", "numba", "numpy"]


@pytest.mark.parametrize("name", ["cpp", "numba", "numpy"])
def test_environment_variable_sets_the_default(name, monkeypatch):
    monkeypatch.setenv("SHORTCUTNET_BACKEND", name)
    assert selection.get(None).NAME == name
    # An explicit argument still wins over the environment.
    assert selection.get("numpy").NAME == "numpy"


def test_default_without_environment_variable_is_the_fastest(monkeypatch):
    monkeypatch.delenv("SHORTCUTNET_BACKEND", raising=False)
    assert selection.get(None).NAME == "cpp"
    monkeypatch.setenv("SHORTCUTNET_BACKEND", "")
    assert selection.get(None).NAME == "cpp"


def test_invalid_environment_variable_is_named(monkeypatch):
    monkeypatch.setenv("SHORTCUTNET_BACKEND", "gpu")
    model = sn.Model(3, 2)
    with pytest.raises(ValueError, match=r"^the environment variable SHORTCUTNET_BACKEND: expected one of .*, got 'gpu'"):
        sn.population_loss(model, np.zeros(2), np.ones(3), np.ones(2), np.ones(3))


# Runs in a fresh interpreter in which the compiled core cannot be imported.
NO_CORE = textwrap.dedent(
    """
    import sys, warnings
    sys.modules["shortcutnet._core"] = None  # makes "from . import _core" raise ImportError
    warnings.simplefilter("always")  # count every emission, not only the first per location
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import numpy as np
        import shortcutnet as sn
        model = sn.Model(4, 3)
        names = sn.backends()
        losses = [sn.population_loss(model, np.zeros(3), np.ones(4), np.ones(3), np.ones(4)) for _ in range(3)]
        names_again = sn.backends()
        ref = sn.population_loss(model, np.zeros(3), np.ones(4), np.ones(3), np.ones(4), backend="numpy")
        try:
            sn.population_loss(model, np.zeros(3), np.ones(4), np.ones(3), np.ones(4), backend="cpp")
            explicit = "no error"
        except ValueError as exc:
            explicit = str(exc)
    ours = [w for w in caught if issubclass(w.category, sn.BackendWarning)]
    print(len(ours))
    print(names, names_again)
    print(abs(losses[0] - ref) <= 1e-12 * ref, all(x == losses[0] for x in losses))
    print(explicit)
    print(sn.build_info()["available"])
    """
)


def test_missing_compiled_core_falls_back_to_numba_with_one_warning():
    env = {k: v for k, v in os.environ.items() if k != "SHORTCUTNET_BACKEND"}
    out = subprocess.run([sys.executable, "-c", NO_CORE], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    count, names, same, explicit, available = out.stdout.strip().splitlines()
    assert count == "1"
    assert names == "['numba', 'numpy'] ['numba', 'numpy']"
    assert same == "True True"
    assert explicit.startswith("backend: the 'cpp' backend is not available here")
    assert available == "False"
