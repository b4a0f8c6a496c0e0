"""Append-only JSON Lines store of finished sweep cells: each record is flushed and fsynced.

A sweep interrupted at any point (Ctrl-C, kill -9, power loss, a full disk) loses at most the
cells that were running: a write that fails is cut back to the last whole record, and a truncated
line left by a crash is dropped when the store is opened again; the cells it held are run again.

Every record carries the store's format number and a digest of its content. A line that is not a
whole record of this format (not JSON, a missing or mistyped field, a key that is not the hash of
its configuration, a digest that does not match: a line edited by hand or written by an older
version) is skipped with a warning that counts the lines by reason, and kept aside in
``results.jsonl.rejected``; its cell is run again. Records written by another version of the
package are refused as a whole, since their numbers may differ from this version's.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import sys
from typing import Dict, Optional

from .._version import __version__
from .errors import StoreRefused, WriteFailed

#: the record layout; records without it were written by earlier versions
FORMAT = 3


def cell_key(cell: dict) -> str:
    """Hash of a cell's configuration (independent of key order): the identity of a cell on resume."""
    body = {name: value for name, value in cell.items() if name not in ("key", "threads")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_digest(record: dict) -> str:
    """Digest of every field of a record but the digest itself: a damaged version field is damage,
    not the record of another version."""
    body = {name: value for name, value in record.items() if name != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _problem(record) -> Optional[str]:
    """Why ``record`` is not a whole record of this format, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    written = record.get("format")
    if written != FORMAT:
        if "format" not in record:
            return "written by an older version (no format field)"
        if type(written) is int and written < FORMAT:
            return f"written by an older version (format {written})"
        return "an unknown format"
    for name, kind in (("key", str), ("config", dict), ("rows", list), ("version", str), ("digest", str)):
        if name not in record:
            return f"missing field {name!r}"
        if not isinstance(record[name], kind):
            return f"field {name!r} of the wrong type"
    if record["digest"] != record_digest(record):
        return "content that does not match its digest (edited or corrupt)"
    if record["key"] != cell_key(record["config"]):
        return "a key that is not the hash of its configuration"
    if not record["rows"] or not all(isinstance(row, dict) and row.get("cell") == record["key"]
                                     for row in record["rows"]):
        return "rows that are not tables of its cell"
    return None


class ResultStore:
    """Finished cells keyed by their configuration hash, backed by one JSON Lines file."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.folder = os.path.dirname(os.path.abspath(self.path))
        self.records: Dict[str, dict] = {}
        self._load()

    def _load(self) -> None:
        if not os.path.exists(self.path):
            return
        with open(self.path, "rb") as fh:
            data = fh.read()
        pieces = data.split(b"\n")
        tail = pieces.pop()  # what follows the last newline: a line cut short by a crash, or b""
        good, rejected, reasons, versions = [], [], collections.Counter(), collections.Counter()
        for line in pieces:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                reason = "not JSON"
            else:
                reason = _problem(record)
                if reason is None and record["version"] != __version__:
                    versions[record["version"]] += 1
                    continue
            if reason is not None:
                reasons[reason] += 1
                rejected.append(line)
                continue
            if record["key"] in self.records:
                continue  # a cell written twice counts once
            self.records[record["key"]] = record
            good.append(line)
        if versions:
            written = ", ".join(f"{n} by {v}" for v, n in sorted(versions.items()))
            raise StoreRefused(f"{self.path}: cells written by another version of shortcutnet ({written}); this is "
                               f"{__version__}, whose numbers may differ: finish the sweep with that version, or "
                               "give another --out (or move the file away) to run every cell with this one")
        notes = []
        if tail.strip():
            notes.append("1 incomplete line left by an interrupted run")
        if rejected:
            notes.append(f"{len(rejected)} line(s) that are not whole records ("
                         + "; ".join(f"{n} {reason}" for reason, n in reasons.most_common())
                         + f"), kept in {self.path}.rejected")
        if notes:
            print(f"{self.path}: skipped {' and '.join(notes)}; their cells run again", file=sys.stderr)
        try:
            if rejected:
                with open(self.path + ".rejected", "ab") as fh:
                    fh.write(b"".join(line + b"\n" for line in rejected))
            clean = b"".join(line + b"\n" for line in good)
            if clean == data:
                return
            if clean == data[:len(clean)]:
                # only a cut tail to drop: truncating in place needs no free space
                with open(self.path, "r+b") as fh:
                    fh.truncate(len(clean))
                    os.fsync(fh.fileno())
                return
            tmp = self.path + ".tmp"
            try:
                with open(tmp, "wb") as fh:
                    fh.write(clean)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except OSError:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise
        except OSError as exc:
            raise WriteFailed(self.folder, exc, kept=len(self.records)) from exc

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, record: dict) -> None:
        """Write one finished cell as a single line, durably, before anything else happens.

        If the write fails (a full disk), whatever part of the line reached the file is cut off
        again and :class:`WriteFailed` is raised: the file holds whole records only.
        """
        record = {**record, "format": FORMAT}
        record["digest"] = record_digest(record)
        line = (json.dumps(record, allow_nan=True) + "\n").encode()  # keeps column order
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WriteFailed(self.folder, exc, kept=len(self.records)) from exc
        try:
            start = os.fstat(fd).st_size  # one writer: the folder lock keeps other sweeps out
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except OSError as exc:
                _cut_back(fd, start)
                raise WriteFailed(self.folder, exc, kept=len(self.records)) from exc
        finally:
            os.close(fd)
        self.records[record["key"]] = record


def _write_all(fd: int, data: bytes) -> None:
    # os.write may write part of the data when the disk is nearly full, and fail only on the rest
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _cut_back(fd: int, size: int) -> None:
    """Drop a partly written line; if even that fails, the next open drops it instead."""
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        pass
