"""Which implementation runs a kernel: the compiled C++ core, the Numba fallback or the NumPy reference.

Every backend is a module exposing the same low-level functions over validated, C-contiguous
arrays.  ``None`` selects the fastest available one; the environment variable
``SHORTCUTNET_BACKEND`` changes that default.
"""
from __future__ import annotations

import importlib
import os
import warnings

from .._validation import describe

NAMES = ("cpp", "numba", "numpy")
_MODULES = {"cpp": ".compiled", "numba": ".numba_backend", "numpy": ".reference"}
_loaded: dict = {}
_failed: dict = {}
ENV_VAR = "SHORTCUTNET_BACKEND"


class BackendWarning(RuntimeWarning):
    """A faster backend could not be loaded; a slower one is used instead."""


def _load(name: str):
    if name in _loaded:
        return _loaded[name]
    if name in _failed:
        return None
    try:
        module = importlib.import_module(_MODULES[name], __name__)
    except ImportError as exc:
        _failed[name] = exc
        if name == "cpp":
            warnings.warn(
                f"shortcutnet: the compiled core could not be imported ({exc}); "
                "falling back to the Numba backend. Reinstall with a C++ compiler available to get it.",
                BackendWarning,
                stacklevel=4,
            )
        return None
    _loaded[name] = module
    return module


def available() -> list:
    """Names of the backends that load on this machine, fastest first."""
    return [name for name in NAMES if _load(name) is not None]


def compiled_if_selected(backend):
    """The compiled backend module when ``backend`` (a name or None) selects it and it is already
    loaded, else None: a check cheap enough for every call of a kernel on a small batch."""
    if backend is None:
        backend = os.environ.get(ENV_VAR) or "cpp"
    return _loaded.get("cpp") if backend == "cpp" else None


def get(backend=None):
    """The backend module for ``backend`` (a name or None for the default)."""
    if backend is None:
        backend = os.environ.get(ENV_VAR) or None
        source = f"the environment variable {ENV_VAR}"
    else:
        source = "backend"
    if backend is None:
        for name in NAMES:
            module = _load(name)
            if module is not None:
                return module
        raise RuntimeError("shortcutnet: no backend could be loaded")  # numpy always loads
    if not isinstance(backend, str):
        raise TypeError(f"backend: expected one of {list(NAMES)} or None, got {describe(backend)}")
    if backend not in NAMES:
        raise ValueError(f"{source}: expected one of {list(NAMES)} or None, got {backend!r}")
    module = _load(backend)
    if module is None:
        raise ValueError(f"{source}: the {backend!r} backend is not available here ({_failed.get(backend)})")
    return module
