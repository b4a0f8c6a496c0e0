"""A Dask cluster that fails during a sweep, with the scheduler and workers started here as separate
processes (``dask scheduler``, ``dask worker``) on the loopback address.

A worker killed mid-sweep (kill -9 of the worker and its nanny): the sweep ends with exactly the
table of an uninterrupted local run, no cell twice. The scheduler killed: a one-line error that
says how to resume, and the resumed run completes from the store.
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from sweep_cases import SLOW, assert_whole_and_unique, environment, reference_csv, start, wait_for_cells, write_config

pytest.importorskip("distributed", reason="Dask distributed is not installed (optional extra: pip install "
                                          "'shortcutnet[dask]')")
psutil = pytest.importorskip("psutil", reason="psutil (a dependency of Dask distributed) is not installed")

from shortcutnet.cli import main  # noqa: E402

CELLS = 6


def _dask(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dask", *args], env=environment(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, **kwargs)


def _end(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def cluster(folder, workers: int):
    """(scheduler address, scheduler process, worker processes): a cluster of separate processes."""
    scheduler_file = folder / "scheduler.json"
    scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                      str(scheduler_file))
    procs = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert time.monotonic() < deadline and scheduler.poll() is None, "the Dask scheduler did not start"
            time.sleep(0.05)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for _ in range(workers):
            procs.append(_dask("worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                               "--death-timeout", "20"))
        yield address, scheduler, procs[1:]
    finally:
        for proc in procs:
            _end(proc)


def kill_worker_and_nanny(nanny: subprocess.Popen) -> int:
    """kill -9 of the nanny (the ``dask worker`` process) and the worker process it started."""
    parent = psutil.Process(nanny.pid)
    family = parent.children(recursive=True)
    assert family, "the nanny has not started its worker process yet"
    for proc in [*family, parent]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    nanny.wait()
    return len(family)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    config = write_config(folder, SLOW)
    return config, reference_csv(config, folder)


def test_a_worker_killed_mid_sweep_changes_nothing(tmp_path, reference):
    config, table = reference
    out = tmp_path / "out"
    with cluster(tmp_path, workers=2) as (address, _, workers):
        sweep = start(config, out, "--scheduler", address)
        try:
            wait_for_cells(out, 1, sweep, timeout=120)
            wait_for_family = time.monotonic() + 30
            while not psutil.Process(workers[0].pid).children() and time.monotonic() < wait_for_family:
                time.sleep(0.05)
            kill_worker_and_nanny(workers[0])
            assert sweep.poll() is None and len((out / "results.jsonl").read_text().splitlines()) < CELLS, \
                "the sweep ended before the worker was killed: nothing was tested"
            _, err = sweep.communicate(timeout=120)
        finally:
            _end(sweep)
    assert sweep.returncode == 0, err
    assert_whole_and_unique(out, CELLS)  # every cell once
    assert (out / "table.csv").read_text() == table


def test_a_lost_scheduler_says_how_to_resume_and_the_resumed_run_completes(tmp_path, reference, capsys):
    config, table = reference
    out = tmp_path / "out"
    with cluster(tmp_path, workers=1) as (address, scheduler, _):
        sweep = start(config, out, "--scheduler", address)
        try:
            wait_for_cells(out, 1, sweep, timeout=120)
            scheduler.send_signal(signal.SIGKILL)
            _, err = sweep.communicate(timeout=60)
        finally:
            _end(sweep)
    assert sweep.returncode == 1
    assert "Traceback" not in err, err
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"shortcutnet sweep: lost the Dask scheduler at {address}")
    assert "rerun the same command" in message and "without --scheduler" in message
    saved = len((out / "results.jsonl").read_text().splitlines())
    assert 1 <= saved < CELLS and f"{saved} finished cell(s) are saved" in message
    assert main(["sweep", str(config), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    assert "took over" not in capsys.readouterr().err  # the first sweep released its folder on the way out
    assert_whole_and_unique(out, CELLS)
    assert (out / "table.csv").read_text() == table


def test_an_unreachable_scheduler_is_one_line(tmp_path, monkeypatch, capsys):
    from shortcutnet import cli_experiments

    monkeypatch.setattr(cli_experiments, "SCHEDULER_TIMEOUT", 1)
    config = write_config(tmp_path, SLOW)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    assert main(["sweep", str(config), "--out", str(tmp_path / "out"), "--scheduler", address, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"shortcutnet sweep: cannot reach the Dask scheduler at {address}")
    assert "leave out --scheduler" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "results.jsonl").exists()
