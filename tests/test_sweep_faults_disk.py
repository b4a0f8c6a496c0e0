"""A disk that fills up during a sweep: a one-line error naming the folder and the cause, a non-zero
exit, every finished cell kept and no half-written record; after space is freed the same command
ends with the table of an uninterrupted run.

Tested on a real full file system (a small tmpfs, where the test may mount one) and with the
failure injected at each place a sweep writes.
"""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sweep_cases import TINY, assert_whole_and_unique, command, environment, record_lines, reference_csv, write_config

from shortcutnet.cli import main
from shortcutnet.experiments import store, tables
from shortcutnet.experiments.store import ResultStore

CELLS = 4


class FullDisk:
    """Fails the writes to one file of the folder with ``OSError(code)`` once ``after`` lines have gone
    through; ``how`` is "write" (part of the line is written, then the rest fails), "fsync" (the
    line is written, making it durable fails) or "open"."""

    def __init__(self, monkeypatch, name: str, how: str, after: int, code: int = errno.ENOSPC):
        self.name, self.how, self.after, self.code = name, how, after, code
        self.fds, self.lines = set(), 0
        real_open, real_write, real_fsync, real_pwrite = os.open, os.write, os.fsync, os.pwrite

        def fail():
            raise OSError(self.code, os.strerror(self.code))

        def fake_open(path, flags, *args, **kwargs):
            if os.path.basename(os.fspath(path)) == self.name and self.how == "open" and self.lines >= self.after:
                fail()
            fd = real_open(path, flags, *args, **kwargs)
            if os.path.basename(os.fspath(path)) == self.name:
                self.fds.add(fd)
            return fd

        def fake_write(fd, data):
            if fd in self.fds and self.how == "write" and self.lines >= self.after:
                if len(data) > 1:
                    return real_write(fd, bytes(data[: len(data) // 2]))  # a short write, as on a full disk
                fail()
            if fd in self.fds:
                self.lines += 1
            return real_write(fd, data)

        def fake_fsync(fd):
            if fd in self.fds and self.how == "fsync" and self.lines > self.after:
                fail()
            return real_fsync(fd)

        def fake_pwrite(fd, data, offset):
            if fd in self.fds and self.lines >= self.after:
                fail()
            return real_pwrite(fd, data, offset)

        monkeypatch.setattr(os, "open", fake_open)
        monkeypatch.setattr(os, "write", fake_write)
        monkeypatch.setattr(os, "fsync", fake_fsync)
        monkeypatch.setattr(os, "pwrite", fake_pwrite)


def sweep(config, out, *extra):
    return main(["sweep", str(config), "--out", str(out), "--no-progress", *extra])


def assert_one_line_error(err: str, out: Path, cause: str = "no space left on device"):
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(out.resolve()) in err and cause in err and "rerun the same command" in err


def assert_whole_records_only(out: Path, n: int):
    lines = record_lines(out)
    assert len(lines) == n
    assert all(json.loads(line)["digest"] for line in lines)  # each line whole
    assert len(ResultStore(out / "results.jsonl")) == n  # and a valid record


@pytest.mark.parametrize("how,after,workers", [("write", 2, "1"), ("fsync", 2, "1"), ("write", 0, "1"),
                                               ("open", 3, "1"), ("write", 1, "2")])
def test_a_full_disk_while_saving_a_cell(tmp_path, monkeypatch, capsys, how, after, workers):
    config = write_config(tmp_path, TINY)
    out = tmp_path / "out"
    FullDisk(monkeypatch, "results.jsonl", how, after)
    assert sweep(config, out, "--workers", workers) == 1
    assert_one_line_error(capsys.readouterr().err, out)
    assert_whole_records_only(out, after)
    assert not (out / "table.csv").exists()
    monkeypatch.undo()  # space is freed
    assert sweep(config, out, "--workers", "1") == 0
    assert_whole_and_unique(out, CELLS)
    assert (out / "table.csv").read_text() == reference_csv(config, tmp_path)


def test_a_quota_while_saving_a_cell(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path, TINY)
    out = tmp_path / "out"
    FullDisk(monkeypatch, "results.jsonl", "write", 1, code=errno.EDQUOT)
    assert sweep(config, out, "--workers", "1") == 1
    assert_one_line_error(capsys.readouterr().err, out, "disk quota exceeded")
    assert_whole_records_only(out, 1)


def test_a_full_disk_while_taking_the_lock(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path, TINY)
    out = tmp_path / "out"
    FullDisk(monkeypatch, "sweep.lock", "write", 0)
    assert sweep(config, out, "--workers", "1") == 1
    assert_one_line_error(capsys.readouterr().err, out)
    assert record_lines(out) == []  # no work started
    monkeypatch.undo()
    assert sweep(config, out, "--workers", "1") == 0
    assert (out / "table.csv").read_text() == reference_csv(config, tmp_path)


def test_a_full_disk_while_writing_the_table(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path, TINY)
    out = tmp_path / "out"
    real_open = open

    def full_open(path, *args, **kwargs):
        if os.path.basename(os.fspath(path)).startswith("table.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(tables, "open", full_open, raising=False)
    assert sweep(config, out, "--workers", "1") == 1
    assert_one_line_error(capsys.readouterr().err, out)
    assert_whole_records_only(out, CELLS)  # every cell kept
    assert not (out / "table.csv").exists() and not (out / "table.csv.tmp").exists()
    monkeypatch.undo()
    assert sweep(config, out, "--workers", "1") == 0
    assert (out / "table.csv").read_text() == reference_csv(config, tmp_path)


def test_a_full_disk_while_cleaning_an_interrupted_store(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path, TINY)
    out = tmp_path / "out"
    assert sweep(config, out, "--workers", "1") == 0
    lines = record_lines(out)
    # a bad line in the middle: the store is rewritten without it, which needs space
    (out / "results.jsonl").write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    real_open = open

    def full_open(path, *args, **kwargs):
        if os.fspath(path).endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(store, "open", full_open, raising=False)
    assert sweep(config, out, "--workers", "1") == 1
    err = capsys.readouterr().err
    assert_one_line_error(err.splitlines()[-1] + "\n", out)
    assert not (out / "results.jsonl.tmp").exists()
    monkeypatch.undo()
    assert sweep(config, out, "--workers", "1") == 0
    assert_whole_and_unique(out, CELLS)
    assert (out / "table.csv").read_text() == reference_csv(config, tmp_path)


def _mount_tmpfs(where: Path, size: int):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root); the injected failures test the rest")
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the injected failures test the rest")


def test_a_real_full_disk(tmp_path):
    text = TINY.replace("angle_deg = [0, 60, 120, 180]", "angle_deg = [0, 20, 40, 60, 80, 100, 120, 140, 160, 180]")
    config = write_config(tmp_path, text)
    page = os.sysconf("SC_PAGE_SIZE")
    disk = tmp_path / "disk"
    # three pages: one for the lock, two for the records, fewer than the ten cells need
    _mount_tmpfs(disk, 3 * page)
    try:
        out = disk / "out"
        first = subprocess.run(command(config, out, "--workers", "1"), env=environment(), capture_output=True,
                               text=True, timeout=300)
        assert first.returncode == 1
        assert_one_line_error(first.stderr, out)
        kept = len(record_lines(out))
        assert 1 <= kept < 10
        assert_whole_records_only(out, kept)
        assert f"the {kept} cell(s) finished before are kept" in first.stderr
        subprocess.run(["mount", "-o", f"remount,size={256 * page}", str(disk)], check=True)  # space is freed
        second = subprocess.run(command(config, out, "--workers", "1"), env=environment(), capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 0, second.stderr
        assert_whole_and_unique(out, 10)
        assert (out / "table.csv").read_text() == reference_csv(config, tmp_path)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
