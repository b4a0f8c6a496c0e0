"""Every experiment function's table converts to a pandas DataFrame (pandas optional), and whole
tables are written as Parquet where pyarrow is installed (``--format parquet``)."""
from __future__ import annotations

import math
import sys

import pytest

from shortcutnet import experiments as E
from shortcutnet.cli import main
from shortcutnet.experiments.tables import Table, columns_of, write_table

TINY = dict(seed=1, executor=None)

def _convergence():
    return E.convergence_time((3, 5), (3,), eps=(1e-2,), trials=2, steps=2000, **TINY)


TABLES = {
    "success_rate": lambda: E.success_rate((4,), (3,), trials=3, steps=200, **TINY),
    "success_vs_angle": lambda: E.success_vs_angle((0, 120), k=4, p=3, trials=3, steps=200, **TINY),
    "success_vs_stride": lambda: E.success_vs_stride((3, 2), k=4, p=3, trials=3, steps=200, **TINY),
    "sgd_vs_gd": lambda: E.sgd_vs_gd((4, None), lrs=(0.1,), k=4, p=3, trials=3, steps=200, **TINY),
    "sample_complexity": lambda: E.sample_complexity((7, 20), k=4, p=3, trials=3, steps=200, **TINY),
    "compare_optimizers": lambda: E.compare_optimizers(("gd", "adam"), k=4, p=3, trials=3, steps=200, **TINY),
    "convergence_time.rows": lambda: _convergence()["rows"],
    "convergence_time.slopes": lambda: _convergence()["slopes"],
    "trajectory.rows": lambda: E.trajectory(4, 3, steps=20, cnn_runs=2, seed=1)["rows"],
    "trajectory.runs": lambda: E.trajectory(4, 3, steps=20, cnn_runs=2, seed=1)["runs"],
}


def _same(x, y):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return y is None or (isinstance(y, float) and math.isnan(y))
    return x == y


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_experiment_table_converts_to_pandas(name):
    pd = pytest.importorskip("pandas", reason="pandas is optional and not installed here")
    rows = TABLES[name]()
    assert isinstance(rows, Table) and isinstance(rows, list) and len(rows) > 0
    frame = rows.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == columns_of(rows) and len(frame) == len(rows)
    for i, row in enumerate(rows):
        for key, value in row.items():
            got = frame[key].iloc[i]
            assert _same(value, got.item() if hasattr(got, "item") else got), (key, value, got)


def test_to_pandas_without_pandas_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        Table([{"a": 1}]).to_pandas()


def test_ragged_rows_become_missing_values():
    pytest.importorskip("pandas", reason="pandas is optional and not installed here")
    frame = Table([{"a": 1, "b": "x"}, {"a": 2, "c": 0.5}]).to_pandas()
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame["b"].isna().tolist() == [False, True] and frame["c"].isna().tolist() == [True, False]


def test_parquet_round_trip(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed: Parquet output is optional")
    rows = [{"k": 4, "rate": 0.5, "architecture": "resnet", "eps": None}, {"k": 5, "rate": 1.0, "note": "x"}]
    path = write_table(rows, tmp_path / "t", "parquet")
    assert path.endswith("t.parquet")
    back = pq.read_table(path).to_pylist()
    assert back == [{"k": 4, "rate": 0.5, "architecture": "resnet", "eps": None, "note": None},
                    {"k": 5, "rate": 1.0, "architecture": None, "eps": None, "note": "x"}]


def test_unknown_table_format_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"table_format: expected one of \['csv', 'parquet'\], got 'xlsx'"):
        write_table([{"a": 1}], tmp_path / "t", "xlsx")


SWEEP = """
experiment = "success_rate"
seed = 2
[fixed]
k = 4
p = 3
trials = 3
steps = 200
lr = 0.1
[grid]
angle_deg = [0, 90]
"""


def test_sweep_writes_parquet(tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed: Parquet output is optional")
    config = tmp_path / "grid.toml"
    config.write_text(SWEEP)
    out = tmp_path / "out"
    args = ["sweep", str(config), "--out", str(out), "--workers", "1", "--no-progress", "--format", "parquet"]
    assert main(args) == 0
    table = pq.read_table(out / "table.parquet").to_pylist()
    assert [row["angle_deg"] for row in table] == [0, 0, 90, 90] and not (out / "table.csv").exists()
    assert "table.parquet" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_parquet_without_pyarrow_fails_before_any_work(tmp_path, monkeypatch, capsys, command):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    config = tmp_path / "grid.toml"
    config.write_text(SWEEP)
    out = tmp_path / "out"
    args = [str(config)] if command == "sweep" else ["--quick"]
    assert main([command, *args, "--out", str(out), "--workers", "1", "--no-progress", "--format", "parquet"]) == 2
    assert "pip install pyarrow" in capsys.readouterr().err
    assert not out.exists()
