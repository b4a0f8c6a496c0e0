"""Writing tables (lists of row dicts) as CSV and JSON Lines, and printing them."""
from __future__ import annotations

import csv
import json
import math
import os
from typing import Iterable, Optional, Sequence


def columns_of(rows: Sequence[dict]) -> list:
    names: list = []
    for row in rows:
        names.extend(name for name in row if name not in names)
    return names


def write_csv(rows: Sequence[dict], path) -> str:
    """Write ``rows`` to ``path`` through a temporary file: a failed write (a full disk) leaves the
    previous table, or none, never half of one."""
    path = os.fspath(path)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns_of(rows), restval="")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_jsonl(rows: Iterable[dict], path) -> str:
    path = os.fspath(path)
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=False) + "\n")
    return path


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value == int(value) and abs(value) < 1e6:
            return str(int(value)) if abs(value) >= 1 or value == 0 else f"{value:.3g}"
        return f"{value:.3g}"
    return str(value)


def format_table(rows: Sequence[dict], columns: Optional[Sequence[str]] = None) -> str:
    """A plain-text table of ``rows`` (only the given columns that some row has)."""
    if not rows:
        return "(no rows)"
    names = [c for c in (columns or columns_of(rows)) if any(c in row for row in rows)]
    body = [[_cell(row.get(name)) for name in names] for row in rows]
    widths = [max(len(name), *(len(line[i]) for line in body)) for i, name in enumerate(names)]
    lines = ["  ".join(name.rjust(w) for name, w in zip(names, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in body]
    return "\n".join(lines)
