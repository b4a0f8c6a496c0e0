"""What the tests of the installed package share: the source tree, and skips that CI turns into failures.

CI runs these tests against a freshly installed wheel with SHORTCUTNET_REQUIRE_WHEEL=1, where every
condition below must hold; a developer's run from a checkout skips what its install lacks.
"""
from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def unavailable(reason: str):
    """Skip the test, or fail it where CI requires a complete installed wheel."""
    if os.environ.get("SHORTCUTNET_REQUIRE_WHEEL") == "1":
        pytest.fail(f"SHORTCUTNET_REQUIRE_WHEEL=1 but {reason}")
    pytest.skip(reason)


def cmake_dir() -> str:
    import shortcutnet as sn

    try:
        return sn.get_cmake_dir()
    except ImportError as exc:
        unavailable(f"the package has no installed CMake package ({exc})")
