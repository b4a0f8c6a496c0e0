"""Numba's on-disk cache of the backend's kernels, kept fresh across all of their sources.

Numba stamps a cached function with the contents of its own file only, but the backend's kernels
compile in the kernels of its other files (the engine those of ``numba_sampled`` and
``numba_population``), so an edit or upgrade of one file would leave stale machine code cached for
the others.  The locators here stamp every function of the backend with a digest of all of its
``numba_*.py`` files.  Importing this module installs them (before any kernel is compiled or
loaded); the cache lives where Numba would put it otherwise.
"""
from __future__ import annotations

import functools
import hashlib
import os

from numba.core import caching

_HERE = os.path.dirname(os.path.abspath(__file__))


def backend_sources():
    """The backend's Numba sources, in a fixed order."""
    return sorted(os.path.join(_HERE, name) for name in os.listdir(_HERE)
                  if name.startswith("numba_") and name.endswith(".py"))


def source_stamp(paths) -> str:
    """A digest of the contents of the files (re-read only when one's size or time changes)."""
    return _stamp(tuple((path, os.stat(path).st_mtime_ns, os.stat(path).st_size) for path in paths))


@functools.lru_cache(maxsize=None)
def _stamp(stats) -> str:
    digest = hashlib.sha256()
    for path, _, _ in stats:
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


class _BackendStamp:
    """The stamp of every backend source, for the functions of the backend's files only."""

    def get_source_stamp(self):
        return source_stamp(backend_sources())

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != _HERE:
            return None
        return super().from_function(py_func, py_file)


def _numba_class(name):
    """A class of numba.core.caching by its name (public in recent Numba, underscored in older ones)."""
    return getattr(caching, name, None) or getattr(caching, "_" + name)


class BackendUserProvidedLocator(_BackendStamp, _numba_class("UserProvidedCacheLocator")):
    """NUMBA_CACHE_DIR, when set."""


class BackendInTreeLocator(_BackendStamp, _numba_class("InTreeCacheLocator")):
    """The package's __pycache__, when writable."""


class BackendUserWideLocator(_BackendStamp, _numba_class("UserWideCacheLocator")):
    """The user's cache folder otherwise."""


LOCATORS = (BackendUserProvidedLocator, BackendInTreeLocator, BackendUserWideLocator)


def install() -> bool:
    """Put the backend's locators first in Numba's list; False where this Numba has no such list
    (its own per-file stamps then apply)."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if not isinstance(classes, list):
        return False
    if classes[:len(LOCATORS)] != list(LOCATORS):
        classes[:0] = LOCATORS
    return True


INSTALLED = install()
