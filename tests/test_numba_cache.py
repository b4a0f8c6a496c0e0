"""Numba's on-disk cache stays fresh when any backend source changes: the engine compiles in the
generator of ``numba_sampled``, so after an edit (or an upgrade) of that file alone the engine's
cached code must be compiled again, not loaded."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

numba_cache = pytest.importorskip("shortcutnet.backends.numba_cache", reason="the Numba backend needs numba")

import shortcutnet as sn  # noqa: E402

PACKAGE = Path(sn.__file__).resolve().parent

# Online SGD through the Numba engine: its batches come from numba_sampled's generator.
SCRIPT = r"""
import json, numpy as np, shortcutnet as sn
model = sn.Model(4, 3)
rng = np.random.default_rng(0)
w_star, a_star = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
w0, a0 = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
out = sn.run_trials(model, w_star, a_star, w0, a0, steps=3, lr=0.05, gradient="sampled", batch_size=8, seed=1,
                    backend="numba", threads=1)
print(json.dumps(out.loss.tolist()))
"""


def run(root: Path):
    env = dict(os.environ, PYTHONPATH=str(root), NUMBA_CACHE_DIR="")
    env.pop("NUMBA_CACHE_DIR")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=900,
                          check=True, cwd=root)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_backend_function_is_stamped_with_all_sources():
    from shortcutnet.backends import numba_engine

    assert numba_cache.INSTALLED
    locator = numba_engine.advance_range._cache._impl._locator
    assert isinstance(locator, numba_cache.LOCATORS)
    assert locator.get_source_stamp() == numba_cache.source_stamp(numba_cache.backend_sources())
    assert {Path(p).name for p in numba_cache.backend_sources()} >= {
        "numba_engine.py", "numba_sampled.py", "numba_population.py", "numba_reduced.py"}


def test_stamp_follows_the_contents_of_every_file(tmp_path):
    paths = []
    for name in ("numba_a.py", "numba_b.py"):
        (tmp_path / name).write_text("x = 1\n")
        paths.append(str(tmp_path / name))
    before = numba_cache.source_stamp(paths)
    (tmp_path / "numba_b.py").write_text("x = 2\n")
    assert numba_cache.source_stamp(paths) != before


@pytest.mark.slow
def test_an_edit_of_the_generator_alone_recompiles_the_engine(tmp_path):
    root = tmp_path / "site"
    shutil.copytree(PACKAGE, root / "shortcutnet", ignore=shutil.ignore_patterns("__pycache__"))
    first = run(root)
    assert run(root) == first  # loaded from the cache this time
    sampled = root / "shortcutnet" / "backends" / "numba_sampled.py"
    text = sampled.read_text()
    old = "_W0 = np.uint64(0x9E3779B9)"
    assert text.count(old) == 1
    sampled.write_text(text.replace(old, "_W0 = np.uint64(0x9E3779BB)"))  # another key schedule
    assert run(root) != first
