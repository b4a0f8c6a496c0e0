"""Sweeps shared by the fault tests: configurations, the command line in a subprocess, reference tables."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from shortcutnet.experiments import sweep as S
from shortcutnet.experiments.tables import write_csv

#: cells of a few tenths of a second each (the CNN's failed runs take every step): long enough to
#: interrupt a sweep between two cells
SLOW = """
experiment = "success_rate"
seed = 3
[fixed]
k = 20
p = 10
trials = 600
steps = 4000
lr = 0.1
[grid]
angle_deg = [0, 45, 90, 135, 180, 30]
"""

#: cells of a few milliseconds
TINY = """
experiment = "success_rate"
seed = 5
[fixed]
k = 4
p = 3
trials = 3
steps = 60
lr = 0.1
[grid]
angle_deg = [0, 60, 120, 180]
"""

ROOT = Path(__file__).resolve().parent.parent


def write_config(folder: Path, text: str, name: str = "grid.toml") -> Path:
    path = Path(folder) / name
    path.write_text(text)
    return path


def command(config: Path, out: Path, *extra: str) -> list:
    return [sys.executable, "-m", "shortcutnet.cli", "sweep", str(config), "--out", str(out), "--no-progress",
            *extra]


def environment() -> dict:
    """The test process's environment with this source tree importable (for subprocesses)."""
    env = dict(os.environ)
    import shortcutnet

    package_parent = str(Path(shortcutnet.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def start(config: Path, out: Path, *extra: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(command(config, out, *extra), env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def record_lines(out: Path) -> list:
    path = Path(out) / "results.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def wait_for_cells(out: Path, n: int, proc: subprocess.Popen = None, timeout: float = 60.0) -> None:
    """Until ``out`` holds ``n`` finished cells (or ``proc`` ends, or the time is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(record_lines(out)) >= n:
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"no {n} finished cells in {out} after {timeout} s")


def reference_csv(config: Path, folder: Path) -> str:
    """The table of an uninterrupted sequential run, as the command line writes it."""
    rows = S.run_sweep(S.load_config(config), Path(folder) / "reference", executor=None, progress=False)
    return Path(write_csv(rows, Path(folder) / "reference.csv")).read_text()


def assert_whole_and_unique(out: Path, n_cells: int) -> None:
    """``out`` holds ``n_cells`` records, each a whole line of JSON, none twice."""
    records = [json.loads(line) for line in record_lines(out)]
    assert len(records) == n_cells
    assert len({r["key"] for r in records}) == n_cells
