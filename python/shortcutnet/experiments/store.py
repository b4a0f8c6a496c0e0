"""Append-only JSON Lines store of finished sweep cells: each record is flushed and fsynced.

A sweep interrupted at any point (Ctrl-C, kill -9, power loss) loses at most the cells that were
running; a truncated or corrupt line left by the interruption is dropped when the store is opened
again, and the cells it held are simply run again.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Dict


class ResultStore:
    """Finished cells keyed by their configuration hash, backed by one JSON Lines file."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.records: Dict[str, dict] = {}
        self._load()

    def _load(self) -> None:
        if not os.path.exists(self.path):
            return
        with open(self.path, "rb") as fh:
            data = fh.read()
        good, dropped = [], 0
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = record["key"]
            except (ValueError, KeyError, TypeError):
                dropped += 1
                continue
            if key in self.records:
                continue  # a cell written twice (two runs at once) counts once
            self.records[key] = record
            good.append(line)
        clean = b"".join(line + b"\n" for line in good)
        if clean != data:
            if dropped:
                print(f"{self.path}: dropped {dropped} incomplete line(s) left by an interrupted run",
                      file=sys.stderr)
            tmp = self.path + ".tmp"
            with open(tmp, "wb") as fh:
                fh.write(clean)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, record: dict) -> None:
        """Write one finished cell as a single line, durably, before anything else happens."""
        line = (json.dumps(record, allow_nan=True) + "\n").encode()  # keeps column order
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write call: the line lands whole or not at all in practice
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records[record["key"]] = record
