"""Tables (lists of row dicts): as pandas DataFrames, written as CSV, JSON Lines or Parquet, printed."""
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


#: File formats a whole table can be written in (``shortcutnet reproduce/sweep --format``).
TABLE_FORMATS = ("csv", "parquet")


class Table(list):
    """The table an experiment returns: a list of row dicts (one per cell, bar or step), with
    :meth:`Table.to_pandas` for notebooks (pandas is optional: only that method needs it)."""

    __slots__ = ()

    def to_pandas(self):
        """The rows as a ``pandas.DataFrame``, one column per key (in first-seen order; a row
        without a key has a missing value there)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("Table.to_pandas needs pandas, which is not installed: pip install pandas") from exc
        return pd.DataFrame.from_records(list(self), columns=columns_of(self))


def write_table(rows: Sequence[dict], stem, table_format: str = "csv") -> str:
    """Write ``rows`` to ``stem`` + ``.csv`` or ``.parquet`` and return the path."""
    if table_format not in TABLE_FORMATS:
        raise ValueError(f"table_format: expected one of {list(TABLE_FORMATS)}, got {table_format!r}")
    stem = os.fspath(stem)
    if table_format == "parquet":
        return write_parquet(rows, stem + ".parquet")
    return write_csv(rows, stem + ".csv")


def require_parquet():
    """The pyarrow module, or an ImportError that says how to install it."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:
        raise ImportError("writing Parquet needs pyarrow, which is not installed: pip install pyarrow") from exc
    return pyarrow


def write_parquet(rows: Sequence[dict], path) -> str:
    """Write ``rows`` as a Parquet file (needs pyarrow); a row without a key is a null there."""
    pa = require_parquet()
    path = os.fspath(path)
    names = columns_of(rows)
    pa.parquet.write_table(pa.table({name: [row.get(name) for row in rows] for name in names}), path)
    return path


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
