"""The API reference of the documentation (docs/api.md) lists every public name: each entry of
``shortcutnet.__all__``, ``shortcutnet.optim.__all__`` and ``shortcutnet.experiments.__all__``."""
from __future__ import annotations

import importlib
import re
import types

import pytest

from installed_package import ROOT

API_PAGE = ROOT / "docs" / "api.md"


def _listed(module: str) -> set:
    """Names listed in the autosummary tables under ``.. currentmodule:: module``."""
    text = API_PAGE.read_text()
    names, current = set(), None
    for line in text.splitlines():
        match = re.match(r"\.\. currentmodule:: (\S+)", line.strip())
        if match:
            current = match.group(1)
        elif current == module and re.fullmatch(r" {3}[A-Za-z_][A-Za-z0-9_]*", line):
            names.add(line.strip())
    return names


@pytest.mark.parametrize("module", ["shortcutnet", "shortcutnet.optim", "shortcutnet.experiments"])
def test_api_page_lists_every_public_name(module):
    if not API_PAGE.is_file():
        pytest.skip(f"the documentation sources are not next to the tests ({API_PAGE})")
    namespace = importlib.import_module(module)
    public = set(namespace.__all__) - {"__version__"}
    # A public subpackage (sn.optim) has a section of its own.
    subpackages = {name for name in public if isinstance(getattr(namespace, name), types.ModuleType)}
    for name in subpackages:
        assert f".. automodule:: {module}.{name}" in API_PAGE.read_text(), name
    public -= subpackages
    listed = _listed(module)
    assert public - listed == set(), f"missing from docs/api.md: {sorted(public - listed)}"
    assert listed - public == set(), f"docs/api.md lists names that are not public: {sorted(listed - public)}"
