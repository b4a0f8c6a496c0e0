"""Two sweeps on one output folder: the second refuses at once, the first is unharmed; a lock left by
a process that no longer exists is taken over with a note."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from sweep_cases import SLOW, TINY, assert_whole_and_unique, reference_csv, start, wait_for_cells, write_config

from shortcutnet.cli import main
from shortcutnet.experiments import folder_lock
from shortcutnet.experiments.errors import FolderInUse
from shortcutnet.experiments.folder_lock import LOCK_NAME, FolderLock


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_sweep_refuses_at_once_and_the_first_is_unharmed(tmp_path, capsys):
    config = write_config(tmp_path, SLOW)
    out = tmp_path / "out"
    first = start(config, out, "--workers", "1")
    try:
        wait_for_cells(out, 1, first)
        began = time.monotonic()
        status = main(["sweep", str(config), "--out", str(out), "--workers", "1", "--no-progress"])
        refused_after = time.monotonic() - began
        assert first.poll() is None, "the first sweep ended before the second started: nothing was tested"
    finally:
        _, first_err = first.communicate(timeout=120)
    err = capsys.readouterr().err
    assert status == 1
    assert f"is in use by process {first.pid} since " in err and "another --out" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert refused_after < 5  # at once: no cell was run
    assert first.returncode == 0, first_err
    assert_whole_and_unique(out, 6)
    assert (out / "table.csv").read_text() == reference_csv(config, tmp_path)
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_the_lock_is_held_for_the_whole_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with FolderLock(out) as held:
        assert held.note is None
        holder = json.loads((out / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(FolderInUse, match=f"in use by process {os.getpid()} since"):
            FolderLock(out).acquire()
    with FolderLock(out):  # free again once released
        pass


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path, capsys):
    config = write_config(tmp_path, TINY)
    out = tmp_path / "out"
    out.mkdir()
    pid = dead_pid()
    (out / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": time.time() - 60}))
    assert main(["sweep", str(config), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"took over the lock left by process {pid} since " in err and "no longer runs" in err
    assert (out / "table.csv").read_text() == reference_csv(config, tmp_path)


def test_the_lock_of_a_killed_sweep_is_stale(tmp_path, capsys):
    config = write_config(tmp_path, SLOW)
    out = tmp_path / "out"
    first = start(config, out, "--workers", "1")
    try:
        wait_for_cells(out, 1, first)
        first.kill()
    finally:
        first.communicate()
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == first.pid  # left behind by kill -9
    with FolderLock(out) as lock:
        assert f"process {first.pid} since" in lock.note


@pytest.mark.parametrize("alive", [False, True])
def test_without_flock_a_live_process_id_still_holds_the_folder(tmp_path, monkeypatch, alive):
    # file systems without flock: the process id in the lock file decides
    monkeypatch.setattr(folder_lock, "fcntl", None)
    out = tmp_path / "out"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) if alive else None
    try:
        pid = sleeper.pid if alive else dead_pid()
        (out / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": time.time()}))
        if alive:
            with pytest.raises(FolderInUse, match=f"in use by process {pid}"):
                FolderLock(out).acquire()
        else:
            with FolderLock(out) as lock:
                assert f"process {pid}" in lock.note
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()
