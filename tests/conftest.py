"""Fixtures shared by the test suite: a seeded generator, the backend parameter, and a record of
the accuracy figures the tests measure (printed at the end of the run)."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import shortcutnet as sn

BACKENDS = ["cpp", "numba", "numpy"]

_measured: dict = {}


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: reproducible, independent of test order."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param not in sn.backends():
        pytest.skip(f"backend {request.param!r} is not available here")
    return request.param


class Measured:
    """Keeps the worst value of each named figure over the whole run."""

    def worst(self, name: str, value: float) -> float:
        value = float(value)
        _measured[name] = max(_measured.get(name, value), value)
        return value


@pytest.fixture(scope="session")
def measured():
    return Measured()


def pytest_terminal_summary(terminalreporter):
    if _measured:
        terminalreporter.section("measured accuracy (worst over the run)")
        for name in sorted(_measured):
            terminalreporter.write_line(f"{name:<52s} {_measured[name]:.3e}")
