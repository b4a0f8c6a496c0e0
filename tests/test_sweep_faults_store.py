"""Results read back: a store written by an older version or edited by hand is refused, or its bad
lines are skipped with a warning that counts them and their cells run again; never a crash, never
a silent wrong table."""
import contextlib
import io
import json
import re
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sweep_cases import TINY, write_config

from shortcutnet._version import __version__
from shortcutnet.cli import main
from shortcutnet.experiments import sweep as S
from shortcutnet.experiments.store import ResultStore, record_digest

CELLS = 4


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished sweep: its configuration, its store's lines and its rows."""
    folder = tmp_path_factory.mktemp("finished")
    config = S.load_config(write_config(folder, TINY))
    rows = S.run_sweep(config, folder / "out", executor=None, progress=False)
    return config, (folder / "out" / "results.jsonl").read_text().splitlines(), rows


def rerun(config, folder, lines):
    """Rows and warnings of a sweep resumed on a store holding ``lines``."""
    out = folder / "out"
    out.mkdir(exist_ok=True)
    (out / "results.jsonl").write_text("".join(line + "\n" for line in lines))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rows = S.run_sweep(config, out, executor=None, progress=False)
    return rows, err.getvalue()


def skipped(err: str) -> int:
    found = re.search(r"skipped (\d+) line\(s\) that are not whole records", err)
    return int(found.group(1)) if found else 0


def as_older_version(line: str) -> str:
    record = json.loads(line)
    del record["format"], record["digest"]  # what 0.1 wrote
    return json.dumps(record)


def test_a_store_of_an_older_version_is_run_again(tmp_path, finished):
    config, lines, rows = finished
    old = [as_older_version(line) for line in lines]
    again, err = rerun(config, tmp_path, old)
    assert again == rows
    assert skipped(err) == CELLS and f"{CELLS} written by an older version" in err
    assert (tmp_path / "out" / "results.jsonl.rejected").read_text().splitlines() == old  # nothing lost
    assert len(ResultStore(tmp_path / "out" / "results.jsonl")) == CELLS


def test_records_of_another_version_are_refused(tmp_path, finished, capsys):
    config, lines, _ = finished
    other = []
    for line in lines:
        record = json.loads(line)
        record["version"] = "0.0.9"
        record["digest"] = record_digest(record)
        other.append(json.dumps(record))
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text("".join(line + "\n" for line in other))
    config_path = write_config(tmp_path, TINY)
    assert main(["sweep", str(config_path), "--out", str(out), "--workers", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{CELLS} by 0.0.9" in err and f"this is {__version__}" in err and "another --out" in err
    assert (out / "results.jsonl").read_text().splitlines() == other  # untouched


def test_a_number_edited_by_hand_is_not_taken(tmp_path, finished):
    config, lines, rows = finished
    record = json.loads(lines[1])
    record["rows"][0]["rate"] = 0.999  # a plausible number: only the digest tells
    edited = [lines[0], json.dumps(record), *lines[2:]]
    again, err = rerun(config, tmp_path, edited)
    assert again == rows
    assert skipped(err) == 1 and "does not match its digest" in err


def edit(line: str, how: str) -> str:
    record = json.loads(line)
    if how == "not JSON":
        return line[: len(line) // 2] + "}}"
    if how == "JSON array":
        return json.dumps([record])
    if how.startswith("missing "):
        del record[how.split()[1]]
    elif how.startswith("mistyped "):
        record[how.split()[1]] = 42
    elif how == "rows of strings":
        record["rows"] = ["a"]
    elif how == "no rows":
        record["rows"] = []
    elif how == "key of another cell":
        record["key"] = "0" * 16
    elif how == "rows of another cell":
        record["rows"][0]["cell"] = "0" * 16
    if how not in ("missing digest", "mistyped digest"):
        record["digest"] = record_digest(record)  # an edit made with care: the digest agrees, the content not
    return json.dumps(record)


EDITS = ["not JSON", "JSON array", "missing key", "missing config", "missing rows", "missing version",
         "missing digest", "missing format", "mistyped key", "mistyped config", "mistyped rows", "mistyped version",
         "mistyped digest", "mistyped format", "rows of strings", "no rows", "key of another cell",
         "rows of another cell"]


@pytest.mark.parametrize("how", EDITS)
def test_a_bad_line_is_skipped_and_counted(tmp_path, finished, how):
    config, lines, rows = finished
    again, err = rerun(config, tmp_path, [lines[0], edit(lines[1], how), lines[2], "", lines[3]])
    assert again == rows
    assert skipped(err) == 1, err


def test_a_file_that_is_no_store_at_all(tmp_path, finished):
    config, _, rows = finished
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_bytes(b"k,p,rate\n3,2,0.5\n\x00\xff\xfe garbage\n{\"key\": 1}\n[]\nnull\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert S.run_sweep(config, out, executor=None, progress=False) == rows
    assert skipped(err.getvalue()) == 6


def test_a_cell_written_twice_counts_once(tmp_path, finished):
    config, lines, rows = finished
    again, err = rerun(config, tmp_path, lines + lines[:2])
    assert again == rows and err == ""
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == CELLS


def test_a_damaged_version_is_damage_not_another_version(tmp_path, finished):
    config, lines, rows = finished
    record = json.loads(lines[0])
    record["version"] = "#" + record["version"][1:]  # one character of the line, its digest left as it was
    again, err = rerun(config, tmp_path, [json.dumps(record)] + lines[1:])
    assert again == rows
    assert skipped(err) == 1, err


def test_a_store_of_an_older_format_is_run_again(tmp_path, finished):
    config, lines, rows = finished
    older = []
    for line in lines:
        record = json.loads(line)
        record["format"] = 2
        record["digest"] = record_digest(record)
        older.append(json.dumps(record))
    again, err = rerun(config, tmp_path, older)
    assert again == rows
    assert skipped(err) == CELLS and f"{CELLS} written by an older version (format 2)" in err


mutations = st.sampled_from(["cut", "char", "drop field", "retype field", "garbage", "swap rows"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, CELLS - 1), mutations, st.integers(0, 10**6)), min_size=1, max_size=4))
def test_any_damage_gives_the_true_table(tmp_path_factory, finished, damage):
    config, lines, rows = finished
    damaged = list(lines)
    for index, how, where in damage:
        line = damaged[index]
        if not line and how in ("cut", "char"):
            continue  # an earlier cut left nothing to cut or change
        if how == "cut":
            line = line[: where % len(line)]
        elif how == "char":
            i = where % len(line)
            line = line[:i] + "#x7"[where % 3] + line[i + 1:]
        elif how == "garbage":
            line = line + "\x00\ufffd}"
        else:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            names = sorted(record)
            name = names[where % len(names)]
            if how == "drop field":
                del record[name]
            elif how == "retype field":
                record[name] = [record[name]]
            elif how == "swap rows" and len(record.get("rows", [])) == 2:
                record["rows"] = record["rows"][::-1]
            line = json.dumps(record)
        damaged[index] = line
    folder = tmp_path_factory.mktemp("damaged")
    again, err = rerun(config, folder, damaged)
    assert again == rows  # whatever was damaged, the table is the true one
    changed = sum(1 for a, b in zip(lines, damaged) if a != b)
    assert skipped(err) + ("1 incomplete line" in err) <= changed
    shutil.rmtree(folder)
