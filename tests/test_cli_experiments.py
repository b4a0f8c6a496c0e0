"""``shortcutnet reproduce`` end to end on tiny settings, and the figures it writes."""
import json
import os

import pytest

from shortcutnet.cli import build_parser, main
from shortcutnet.experiments import reproduce as R

TINY = {
    "trajectory": dict(k=6, p=4, steps=200, cnn_runs=2),
    "success": dict(ks=(4,), ps=(3, 4), trials=4, steps=300),
    "convergence": dict(ks=(3, 6), ps=(3, 4), eps=(1e-2, 1e-4), trials=2, steps=2000),
    "angle": dict(angles_deg=(0, 90, 180), k=5, p=4, trials=4, steps=300),
    "stride": dict(strides=(4, 2), k=4, p=4, trials=3, steps=200),
    "sgd": dict(batch_sizes=(1, 64, None), lrs=(0.1, 0.05), k=4, p=3, trials=3, steps=(300, 500)),
    "sample_complexity": dict(k=4, p=3, points=3, trials=3, steps=500),
    "optimizers": dict(k=4, p=3, trials=4, steps=1000),
    "success_limit": dict(ks=(5, 200), ps=(5, 20), trials=200, check_trials=5),
    "hypotheses": dict(k=5, p=3, w0_norms=(0.0, 1.0), a0_scales=(1.0, 2.0), trials=4, steps=1000),
    "step_phase": dict(k=5, p=3, lrs_w=(0.1, 1.0), lrs_a=(0.1, 2.0), trials=3, steps=400),
    "scaling": dict(ks=(5, 200), ps=(3, 5), eps=(1e-2, 1e-4), trials=2),
    "gd_vs_flow": dict(k=4, p=3, lrs=(0.1, 0.05), eps=(1e-3,), trials=1, t_max=40.0),
    "phi_instability": dict(ks=(5,), fractions=(0.25, 0.9), p=3, trials=2, steps=300),
}


@pytest.fixture
def tiny_settings(monkeypatch):
    quick = {name: {**R.SETTINGS["quick"][name], **values} for name, values in TINY.items()}
    monkeypatch.setitem(R.SETTINGS, "quick", quick)


def test_reproduce_writes_tables_and_figures(tmp_path, tiny_settings, capsys):
    out = tmp_path / "results"
    assert main(["reproduce", "--quick", "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for heading in ("Success rate", "Convergence time", "teacher's angle", "patch stride", "Online SGD",
                    "n_train samples", "Optimizers", "success probability", "limit as k grows", "hypotheses",
                    "divergence sets in", "up to k = 10^4", "gradient flow", "phi instability", "Seconds"):
        assert heading in printed
    names = set(os.listdir(out))
    stems = ["trajectory", "success_rate", "convergence_time", "success_vs_angle", "success_vs_stride", "sgd_vs_gd",
             "sample_complexity", "optimizers", "success_limit", "hypotheses", "step_phase", "convergence_scaling",
             "gd_vs_flow", "phi_instability"]
    for stem in stems:
        assert f"{stem}.csv" in names
        for ext in ("png", "svg"):
            assert (out / f"{stem}.{ext}").stat().st_size > 5000, f"{stem}.{ext} looks empty"
    assert (out / "success_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = json.loads((out / "run.json").read_text())
    assert run["quick"] is True and run["settings"]["success"]["trials"] == 4 and "version" in run
    header, *rows = (out / "success_rate.csv").read_text().splitlines()
    assert len(rows) == 4 and "backend" in header and "ci_low" in header
    jsonl = [json.loads(line) for line in (out / "success_rate.jsonl").read_text().splitlines()]
    assert [r["architecture"] for r in jsonl] == ["resnet", "cnn", "resnet", "cnn"]
    # one row per bar: (lr, batch size, architecture), (n_train, architecture), (optimizer, architecture)
    for stem, bars in (("sgd_vs_gd", 2 * 3 * 2), ("sample_complexity", 3 * 2), ("optimizers", 4 * 2)):
        header, *rows = (out / f"{stem}.csv").read_text().splitlines()
        assert len(rows) == bars and {"rate", "ci_low", "ci_high", "median_steps"} <= set(header.split(","))
    assert run["settings"]["sgd"]["trials"] == 3 and run["seconds"]["optimizers"] >= 0


def test_help_explains_every_option(capsys):
    parser = build_parser()
    for command in ("reproduce", "sweep"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        text = capsys.readouterr().out
        for option in ("--out", "--scheduler", "--workers", "--no-progress"):
            assert option in text
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--help"])
    assert "--quick" in capsys.readouterr().out


def test_unknown_settings_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="settings"):
        R.reproduce(str(tmp_path), quick=True, settings={"nope": {}}, executor=None, progress=False)
