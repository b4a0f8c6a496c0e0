"""Sweeps: configuration checks, the JSON Lines store, resume after kill -9, the CLI end to end."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from shortcutnet.cli import main
from shortcutnet.experiments import sweep as S
from shortcutnet._version import __version__
from shortcutnet.experiments.store import ResultStore, cell_key

CONFIG = """
experiment = "success_rate"
seed = 2
[fixed]
k = 20
p = 10
trials = {trials}
steps = {steps}
lr = 0.1
[grid]
angle_deg = [0, 30, 60, 90, 120, 150, 180, 45]
"""


def write_config(tmp_path, trials=6, steps=300, text=None):
    path = tmp_path / "grid.toml"
    path.write_text(text if text is not None else CONFIG.format(trials=trials, steps=steps))
    return path


def lines(path):
    return path.read_text().splitlines()


def test_cells_and_keys(tmp_path):
    config = S.load_config(write_config(tmp_path))
    cells = S.cells(config)
    assert [c["angle_deg"] for c in cells] == [0, 30, 60, 90, 120, 150, 180, 45]
    assert len({c["key"] for c in cells}) == 8
    # the key is a function of the configuration only, not of dict order
    reordered = dict(reversed(list(cells[0].items())))
    assert S.cell_key(reordered) == cells[0]["key"]
    assert S.cell_key({**cells[0], "seed": 3}) != cells[0]["key"]


@pytest.mark.parametrize("text,match", [
    ('experiment = "nope"', "experiment"),
    ('experiment = "success_rate"\n[fixed]\nk = 3\np = 3\ntrials = 2\nsteps = 5', r"missing parameters \['lr'\]"),
    ('experiment = "success_rate"\n[fixed]\nk = 3\np = 3\ntrials = 2\nsteps = 5\nlr = 0.1\nbatch = 3', "unknown"),
    ('experiment = "success_rate"\n[grid]\nk = 3', "non-empty list"),
    ('experiment = "success_rate"\nseed = -1', "seed"),
    ("experiment = [", "not valid TOML"),
])
def test_bad_configs_are_rejected(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        S.load_config(write_config(tmp_path, text=text))


def test_cli_reports_bad_config(tmp_path, capsys):
    assert main(["sweep", str(write_config(tmp_path, text="experiment = 1")), "--out", str(tmp_path / "o")]) == 2
    assert "experiment" in capsys.readouterr().err


def record(name, value):
    """A finished cell as run_sweep stores it (the store adds the format and digest)."""
    config = {"experiment": "success_rate", "name": name}
    key = cell_key(config)
    return {"key": key, "config": config, "rows": [{"value": value, "cell": key}], "version": __version__}


def test_store_drops_a_truncated_last_line(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    store = ResultStore(path)
    a, b, c = record("a", 1), record("b", 2), record("c", 3)
    store.append(a)
    store.append(b)
    whole = lines(path)
    with open(path, "ab") as fh:
        fh.write(b'{"key": "c", "rows": [')  # what kill -9 in the middle of a write could leave
    reopened = ResultStore(path)
    assert sorted(reopened.records) == sorted([a["key"], b["key"]])
    assert lines(path) == whole
    assert "skipped 1 incomplete line" in capsys.readouterr().err
    reopened.append(c)
    assert sorted(ResultStore(path).records) == sorted([a["key"], b["key"], c["key"]])


def test_sweep_end_to_end_and_rerun_is_a_no_op(tmp_path, capsys):
    config = write_config(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(config), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "angle_deg" in printed and "16 rows" in printed
    first = (out / "results.jsonl").read_text()
    table = (out / "table.csv").read_text()
    assert len(first.splitlines()) == 8
    assert main(["sweep", str(config), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    assert (out / "results.jsonl").read_text() == first  # nothing rerun, nothing appended
    assert (out / "table.csv").read_text() == table


def test_resume_after_kill_matches_an_uninterrupted_sweep(tmp_path):
    config = write_config(tmp_path, trials=150, steps=4000)
    out = tmp_path / "interrupted"
    results = out / "results.jsonl"
    command = [sys.executable, "-m", "shortcutnet.cli", "sweep", str(config), "--out", str(out),
               "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and len(lines(results)) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the sweep finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done_before = len(lines(results))
    assert 2 <= done_before < 8
    assert subprocess.run(command, capture_output=True).returncode == 0
    resumed = [json.loads(line) for line in lines(results)]
    assert len(resumed) == 8 and len({r["key"] for r in resumed}) == 8  # no duplicates
    reference = S.run_sweep(S.load_config(config), tmp_path / "uninterrupted", executor=None, progress=False)
    assert (out / "table.csv").read_text() == _csv(reference, tmp_path)


def test_ctrl_c_saves_finished_cells_and_says_how_to_resume(tmp_path):
    config = write_config(tmp_path, trials=150, steps=4000)
    out = tmp_path / "out"
    results = out / "results.jsonl"
    command = [sys.executable, "-m", "shortcutnet.cli", "sweep", str(config), "--out", str(out),
               "--workers", "1", "--no-progress"]
    # SIGINT at its default in the child: a test run started in the background of a shell inherits
    # it ignored, and the sweep would then (rightly) not hear Ctrl-C.
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and len(lines(results)) >= 1:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "rerun the same command to resume" in err
    saved = [json.loads(line) for line in lines(results)]  # every line whole
    assert 1 <= len(saved) < 8


def _csv(rows, tmp_path):
    from shortcutnet.experiments.tables import write_csv

    path = tmp_path / "reference.csv"
    write_csv(rows, path)
    return path.read_text()


def test_convergence_time_sweep(tmp_path):
    text = ('experiment = "convergence_time"\n[fixed]\np = 3\ntrials = 3\nsteps = 2000\nlr = 0.1\n'
            'eps = [1e-2, 1e-5]\n[grid]\nk = [3, 6]\n')
    rows = S.run_sweep(S.load_config(write_config(tmp_path, text=text)), tmp_path / "o", executor=None,
                       progress=False)
    assert [(r["k"], r["eps"]) for r in rows] == [(3, 1e-2), (3, 1e-5), (6, 1e-2), (6, 1e-5)]
    assert all(r["reached"] == 3 for r in rows)


NEW_EXPERIMENTS = {
    "sgd_vs_gd": ('experiment = "sgd_vs_gd"\n[fixed]\nk = 4\np = 3\ntrials = 4\nsteps = 300\n'
                  '[grid]\nlr = [0.1, 0.05]\nbatch_size = [0, 4, 32]\n', 6, "batch_size"),
    "sample_complexity": ('experiment = "sample_complexity"\n[fixed]\nk = 4\np = 3\ntrials = 4\nsteps = 800\nlr = 0.1\n'
                          '[grid]\nn_train = [7, 40, 300]\n', 3, "n_train"),
    "compare_optimizers": ('experiment = "compare_optimizers"\nseed = 1\n[fixed]\nk = 4\np = 3\ntrials = 4\n'
                           'steps = 1500\nbeta = 0.9\n[grid]\noptimizer = ["gd", "momentum", "nesterov", "adam"]\n'
                           'lr = [0.01, 0.05]\n', 8, "optimizer"),
}


@pytest.mark.parametrize("name", sorted(NEW_EXPERIMENTS))
def test_new_experiments_sweep_and_resume(tmp_path, name):
    text, n_cells, column = NEW_EXPERIMENTS[name]
    config = S.load_config(write_config(tmp_path, text=text))
    out = tmp_path / "out"
    rows = S.run_sweep(config, out, executor=None, progress=False)
    assert len(rows) == 2 * n_cells  # one row per architecture and cell
    assert all(0.0 <= r["ci_low"] <= r["rate"] <= r["ci_high"] <= 1.0 for r in rows)
    assert all(column in r and r["cell"] for r in rows)
    results = out / "results.jsonl"
    assert len(lines(results)) == n_cells
    # an interrupted run: the last cells are lost, the rerun runs only those
    kept = lines(results)[: n_cells // 2]
    results.write_text("".join(line + "\n" for line in kept))
    resumed = S.run_sweep(config, out, executor=None, progress=False)
    assert resumed == rows
    assert lines(results)[: n_cells // 2] == kept and len(lines(results)) == n_cells
    assert S.run_sweep(config, out, executor=None, progress=False) == rows  # nothing left to run
    assert len(lines(results)) == n_cells


def test_optimizer_sweep_takes_each_optimizers_own_parameters(tmp_path):
    text = NEW_EXPERIMENTS["compare_optimizers"][0]
    rows = S.run_sweep(S.load_config(write_config(tmp_path, text=text)), tmp_path / "o", executor=None,
                       progress=False)
    beta = {r["optimizer"]: r["beta"] for r in rows}
    assert beta == {"gd": None, "momentum": 0.9, "nesterov": 0.9, "adam": None}
    assert {r["beta2"] for r in rows if r["optimizer"] == "adam"} == {0.999}


@pytest.mark.parametrize("text,match", [
    ('experiment = "sgd_vs_gd"\n[fixed]\nk = 3\np = 3\ntrials = 2\nsteps = 5\nlr = 0.1', r"missing parameters \['batch_size'\]"),
    ('experiment = "sample_complexity"\n[fixed]\nk = 3\np = 3\ntrials = 2\nsteps = 5\nlr = 0.1\nn_train = 9\nbatch_size = 3',
     "unknown parameter .batch_size."),
    ('experiment = "compare_optimizers"\n[fixed]\nk = 3\np = 3\ntrials = 2\nsteps = 5\nlr = 0.1', r"missing parameters \['optimizer'\]"),
])
def test_bad_configs_of_new_experiments_are_rejected(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        S.load_config(write_config(tmp_path, text=text))
