"""Hostile configuration files: each a clear one-line error before any work starts, never a traceback;
and every generated configuration either runs or is refused so."""
import contextlib
import io
import json
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shortcutnet.cli import main
from shortcutnet.experiments import sweep as S
from shortcutnet.experiments.sweep_checks import DEFAULT_MAX_CELLS, rule_of

BASE = {"k": 3, "p": 2, "trials": 2, "steps": 5, "lr": 0.1}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def to_toml(config: dict) -> str:
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for section, table in config.items():
        if isinstance(table, dict):
            lines.append(f"[{toml_key(section)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def sweep(tmp_path, text, *extra, name="grid.toml"):
    """Exit status, stdout and stderr of ``shortcutnet sweep`` on a file holding ``text``."""
    path = tmp_path / name
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress",
                       *extra])
    return status, out.getvalue(), err.getvalue()


def assert_refused(tmp_path, text, *fragments, extra=()):
    status, out, err = sweep(tmp_path, text, *extra)
    assert status == 2 and out == ""
    assert err.startswith("shortcutnet sweep: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "out").exists()  # refused before any work
    return err


#: tiny valid cells of the experiments whose parameters are not BASE's
BASES = {"trajectory": {"k": 3, "p": 2, "steps": 5, "lr": 0.1},
         "cnn_success_limit": {"k": 3, "p": 2, "trials": 2, "max_steps": 20, "check_trials": 1},
         "hypotheses": {"k": 3, "p": 2, "trials": 2, "steps": 5},
         "step_size_phase": {"k": 3, "p": 2, "trials": 2, "steps": 5, "lr_w": 0.1, "lr_a": 0.1},
         "convergence_scaling": {"k": 3, "p": 2, "trials": 2, "steps": 5, "eps": [1e-3]},
         "gd_vs_flow": {"k": 3, "p": 2, "trials": 1, "lrs": [0.1], "eps": [1e-3], "t_max": 1.0, "t_fixed": 0.5},
         "phi_instability": {"k": 3, "p": 2, "trials": 2, "steps": 5, "fraction": 0.5}}


def config_text(fixed=None, grid=None, experiment="success_rate", **top):
    """A configuration of tiny cells; the parameters in ``grid`` leave [fixed]."""
    base = BASES.get(experiment, BASE)
    fixed = {name: value for name, value in {**base, **(fixed or {})}.items() if name not in (grid or {})}
    return to_toml({"experiment": experiment, **top, "fixed": fixed, "grid": grid or {}})


HOSTILE = [
    ("not toml", "experiment = [", ["not valid TOML"]),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\xff", ["not valid TOML", "UTF-8"]),
    ("empty", "", ["experiment: expected one of"]),
    ("unknown experiment", 'experiment = "succes_rate"', ["got 'succes_rate'", "did you mean 'success_rate'?"]),
    ("experiment of a wrong type", "experiment = 3", ["experiment: expected one of", "got 3"]),
    ("unknown top-level key", config_text(sede=1), ["unknown top-level key 'sede'", "did you mean 'seed'?"]),
    ("unknown parameter", config_text({"trails": 4}), ["unknown parameter 'trails'", "did you mean 'trials'?"]),
    ("far from any parameter", config_text({"zzz": 1}), ["unknown parameter 'zzz'", "expected some of"]),
    ("missing parameter", to_toml({"experiment": "success_rate", "fixed": {"k": 3, "p": 2, "trials": 2}}),
     ["missing parameters ['steps', 'lr']"]),
    ("string for an integer", config_text({"trials": "5"}), ["fixed.trials", "expected an integer >= 1",
                                                             "a string '5'"]),
    ("float for an integer", config_text({"steps": 5.5}), ["fixed.steps", "expected an integer", "5.5"]),
    ("boolean for a number", config_text({"lr": True}), ["fixed.lr", "got a boolean True"]),
    ("zero size", config_text({"k": 0}), ["fixed.k", "expected an integer >= 1, got 0"]),
    ("negative size", config_text({"trials": -4}), ["fixed.trials", "got -4"]),
    ("negative in a grid", config_text(grid={"p": [2, -1]}),
     ["grid.p value -1", "expected an integer >= 1"]),
    ("zero step size", config_text({"lr": 0.0}), ["fixed.lr", "expected a finite number > 0"]),
    ("infinite step size", config_text({"lr": math.inf}), ["fixed.lr", "inf"]),
    ("nan tolerance", config_text({"tol": math.nan}), ["fixed.tol", "nan"]),
    ("unknown architecture", config_text({"architectures": ["resnet", "cnnn"]}),
     ["fixed.architectures", "did you mean 'cnn'?"]),
    ("no architectures", config_text({"architectures": []}), ["fixed.architectures", "non-empty list"]),
    ("stride above p", config_text({"stride": 3}), ["stride: expected at most p = 2", "got 3"]),
    ("angle for p = 1", config_text({"p": 1, "angle_deg": 30}), ["angle_deg", "needs p >= 2"]),
    ("negative angle", config_text({"angle_deg": -10}), ["fixed.angle_deg", "[0, 180]", "-10"]),
    ("seed", config_text(seed=-1), ["seed: expected a non-negative integer"]),
    ("a section that is not a table", 'experiment = "success_rate"\nfixed = 3', ["fixed: expected a table"]),
    ("a grid value that is not a list", config_text(grid={"angle_deg": 30}), ["grid.angle_deg",
                                                                              "non-empty list"]),
    ("an empty grid list", config_text(grid={"angle_deg": []}), ["grid.angle_deg", "non-empty list"]),
    ("a cell twice", config_text(grid={"angle_deg": [30, 60, 30]}), ["grid.angle_deg", "30 is given twice"]),
    ("in both sections", 'experiment = "success_rate"\n[fixed]\nk = 3\n[grid]\nk = [3]',
     ["in both [fixed] and [grid]"]),
    ("optimizer", config_text({"optimizer": "adma"}, experiment="compare_optimizers"),
     ["fixed.optimizer", "did you mean 'adam'?"]),
    ("beta of 1", config_text({"optimizer": "momentum", "beta": 1.0}, experiment="compare_optimizers"),
     ["fixed.beta", "[0, 1)"]),
    ("eps not a list", config_text({"eps": 1e-3}, experiment="convergence_time"), ["fixed.eps", "list"]),
    ("negative batch", config_text({"batch_size": -1}, experiment="sgd_vs_gd"), ["fixed.batch_size", ">= 0"]),
    ("zero training set", config_text({"n_train": 0}, experiment="sample_complexity"), ["fixed.n_train"]),
    ("steps beyond the engine's counter", config_text({"steps": 2**70}), ["fixed.steps", "64-bit", str(2**70)]),
    ("huge step size", config_text({"lr": 1e200}), ["fixed.lr", "at most 1e+100"]),
    ("cnn_runs below 0", config_text({"cnn_runs": -1}, experiment="trajectory"), ["fixed.cnn_runs", ">= 0"]),
    ("negative_start not a boolean", config_text({"negative_start": "yes"}, experiment="trajectory"),
     ["fixed.negative_start", "true or false", "'yes'"]),
    ("k below 3 for the success limit", config_text({"k": 2}, experiment="cnn_success_limit"),
     ["fixed.k", "expected an integer >= 3, got 2"]),
    ("p of 1 for the success limit", config_text(grid={"p": [2, 1]}, experiment="cnn_success_limit"),
     ["grid.p value 1", "expected an integer >= 2"]),
    ("check runs of a tiny step size", config_text({"lr": 1e-12}, experiment="cnn_success_limit"),
     ["lr: the check runs", "check_trials = 0"]),
    ("check_trials below 0", config_text({"check_trials": -1}, experiment="cnn_success_limit"),
     ["fixed.check_trials", ">= 0"]),
    ("max_steps of 0", config_text({"max_steps": 0}, experiment="cnn_success_limit"), ["fixed.max_steps"]),
    ("negative w0 norm", config_text({"w0_norm": -1.0}, experiment="hypotheses"), ["fixed.w0_norm", "[0, 1e+100]", "-1.0"]),
    ("overflowing w0 norm", config_text({"w0_norm": 1e200}, experiment="hypotheses"), ["fixed.w0_norm"]),
    ("zero a0 scale", config_text({"a0_scale": 0.0}, experiment="hypotheses"), ["fixed.a0_scale", "> 0"]),
    ("huge second-layer step", config_text({"lr_a": 1e300}, experiment="step_size_phase"),
     ["fixed.lr_a", "at most 1e+100"]),
    ("scaling eps not a list", config_text({"eps": 1e-3}, experiment="convergence_scaling"), ["fixed.eps", "list"]),
    ("flow lrs not a list", config_text({"lrs": 0.1}, experiment="gd_vs_flow"), ["fixed.lrs", "list"]),
    ("a negative flow step size", config_text({"lrs": [0.1, -0.1]}, experiment="gd_vs_flow"), ["fixed.lrs"]),
    ("no GD step to t_fixed", config_text({"lrs": [0.1, 2.0]}, experiment="gd_vs_flow"),
     ["lrs: expected step sizes below 2 t_fixed", "got lr = 2.0"]),
    ("ages of GD steps to t_max", config_text({"lrs": [1e-9], "t_max": 10.0}, experiment="gd_vs_flow"),
     ["lrs: lr = 1e-09 takes", "GD steps"]),
    ("flow time too long", config_text({"t_max": 1e7}, experiment="gd_vs_flow"), ["fixed.t_max", "at most 1e+06"]),
    ("eps that name the same column", config_text({"eps": [1e-4, 1.2e-4]}, experiment="gd_vs_flow"),
     ["eps: expected values distinct at one significant digit"]),
    ("architecture", config_text({"architecture": "resnets"}, experiment="gd_vs_flow"),
     ["fixed.architecture", "did you mean 'resnet'?"]),
    ("fraction of 1", config_text({"fraction": 1.0}, experiment="phi_instability"),
     ["fixed.fraction", "(0, 1)", "1.0"]),
]


@pytest.mark.parametrize("name,text,fragments", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_configuration_is_refused_before_any_work(tmp_path, name, text, fragments):
    assert_refused(tmp_path, text, *fragments)


def test_a_missing_file_is_refused(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot read the configuration file" in err and err.count("\n") == 1


def test_a_grid_too_large_is_refused_with_its_size_and_time(tmp_path):
    grid = {"k": list(range(1, 101)), "p": list(range(2, 102)), "angle_deg": list(range(100))}
    text = config_text({"trials": 1000, "steps": 5000}, grid=grid)
    err = assert_refused(tmp_path, text, "the grid has 1,000,000 cells", f"limit of {DEFAULT_MAX_CELLS:,}",
                         "--max-cells 1000000")
    assert re.search(r"about [\d.]+ (years|days) on \d+ core", err), err


def test_a_grid_of_astronomical_size_is_refused_at_once(tmp_path):
    grid = {name: list(range(1, 1001)) for name in ("k", "p", "trials", "steps")}
    grid["angle_deg"] = [i / 10 for i in range(1000)]
    text = config_text(grid=grid)
    err = assert_refused(tmp_path, text, f"the grid has {1000 ** 5:,} cells")
    assert "years" in err


@pytest.mark.parametrize("fixed", [{"k": 2**40}, {"trials": 2**50}, {"batch_size": 2**30, "trials": 64}],
                         ids=["k", "trials", "batch"])
def test_a_cell_too_large_for_memory_is_refused(tmp_path, fixed):
    experiment = "sgd_vs_gd" if "batch_size" in fixed else "success_rate"
    text = config_text({"batch_size": 0, **fixed} if experiment == "sgd_vs_gd" else fixed, experiment=experiment)
    assert_refused(tmp_path, text, "GiB of memory, more than this machine's", "give smaller sizes")


def test_max_cells_raises_the_cap(tmp_path):
    text = config_text(grid={"angle_deg": [0, 30, 60, 90, 120]})
    assert_refused(tmp_path, text, "the grid has 5 cells", "limit of 4", "--max-cells 5", extra=("--max-cells", "4"))
    status, out, err = sweep(tmp_path, text, "--max-cells", "5")
    assert status == 0 and "10 rows" in out


def test_max_cells_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "x.toml", "--max-cells", "0"])
    assert "--max-cells: expected an integer >= 1" in capsys.readouterr().err


# ---- generated configurations: every one runs or is refused cleanly ---------------------------------

VALID = {
    "k": st.integers(1, 3), "p": st.integers(1, 3), "trials": st.integers(1, 2), "steps": st.integers(1, 6),
    "lr": st.floats(0.01, 0.5), "n_train": st.integers(1, 5), "batch_size": st.integers(0, 3),
    "stride": st.integers(1, 3), "tol": st.floats(1e-8, 1e-2), "angle_deg": st.floats(0, 180),
    "beta": st.floats(0.0, 0.99), "beta1": st.floats(0.0, 0.99), "beta2": st.floats(0.0, 0.999),
    "optimizer": st.sampled_from(["gd", "momentum", "nesterov", "adam"]),
    "architectures": st.sampled_from([["resnet"], ["cnn"], ["resnet", "cnn"]]),
    "architecture": st.sampled_from(["resnet", "cnn"]),
    "cnn_runs": st.integers(0, 3), "negative_start": st.booleans(),
    # a check run takes at least 5000 steps whatever max_steps: one at most
    "max_steps": st.integers(1, 50), "check_trials": st.integers(0, 1),
    "w0_norm": st.floats(0.0, 3.0), "a0_scale": st.floats(0.1, 3.0),
    "lr_w": st.floats(0.01, 0.5), "lr_a": st.floats(0.01, 0.5),
    # short flows (each records 40001 times); t_fixed/lr >= 0.6 rounds to at least one GD step
    "lrs": st.lists(st.floats(0.05, 0.5), min_size=1, max_size=2), "t_max": st.floats(0.1, 2.0),
    "t_fixed": st.floats(0.3, 1.0), "fraction": st.floats(0.05, 0.95),
}
#: sizes of an experiment that differ from VALID's (the order-parameter draws need k >= 3, p >= 2)
VALID_IN = {"cnn_success_limit": {"k": st.integers(3, 4), "p": st.integers(2, 3)}}
#: experiments whose eps is a list of losses to reach (one number elsewhere)
EPS_LISTS = {"convergence_time", "convergence_scaling", "gd_vs_flow"}
# no huge integers: a valid but huge number of steps would run for ages (sizes too large for memory
# are tested on their own)
HOSTILE_VALUES = st.one_of(st.integers(-3, 0), st.floats(allow_nan=True),
                           st.booleans(), st.text(max_size=4), st.lists(st.integers(-1, 2), max_size=2),
                           st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


@st.composite
def configurations(draw):
    """A configuration of tiny cells, valid or with one fault of a kind drawn first (so that both
    kinds are common: hypothesis would otherwise favour the first options of each choice)."""
    fault = draw(st.sampled_from(["none", "none", "none", "none", "none", "value", "value", "missing", "unknown",
                                  "experiment", "top-level", "seed"]))
    experiment = draw(st.sampled_from(sorted(S.EXPERIMENTS)))
    optional = sorted(S.OPTIONAL[experiment])
    names = list(S.REQUIRED[experiment])
    names += draw(st.lists(st.sampled_from(optional), max_size=2, unique=True)) if optional else []
    spoiled = draw(st.sampled_from(names))

    def value(name):
        if fault == "value" and name == spoiled:
            return draw(HOSTILE_VALUES)
        if name == "eps":
            single = st.floats(1e-6, 1e-1)
            return draw(st.lists(single, min_size=1, max_size=2)) if experiment in EPS_LISTS else draw(single)
        return draw(VALID_IN.get(experiment, {}).get(name, VALID[name]))

    fixed, grid = {}, {}
    for name in names:
        if fault == "missing" and name == spoiled:
            continue
        if draw(st.booleans()) and draw(st.booleans()):
            grid[name] = draw(st.lists(st.just(None).map(lambda _: value(name)), min_size=1, max_size=2,
                                       unique_by=lambda v: json.dumps(v)))
        else:
            fixed[name] = value(name)
    if fault == "unknown":
        fixed[draw(st.sampled_from(["trails", "learning_rate", "K", "zzz", "batch"]))] = 1
    config = {"experiment": experiment, "seed": draw(st.integers(0, 2**40)), "fixed": fixed, "grid": grid}
    if fault == "experiment":
        config["experiment"] = draw(st.one_of(st.sampled_from(["succes_rate", "", "SGD_vs_GD"]), HOSTILE_VALUES))
    if fault == "seed":
        config["seed"] = draw(HOSTILE_VALUES)
    if fault == "top-level":
        config[draw(st.sampled_from(["sede", "grids", "experiments"]))] = 1
    return config


def rows_of_cell(cell: dict) -> int:
    """Rows one cell returns, read off its cell function."""
    experiment = cell["experiment"]
    if experiment in ("convergence_time", "convergence_scaling"):
        return len(cell["eps"])  # one per loss to reach
    if experiment == "gd_vs_flow":
        return len(cell["lrs"])  # one per step size
    if experiment == "trajectory":
        return 1 + cell.get("cnn_runs", 4)  # the ResNet's run and the CNN's
    if experiment in ("cnn_success_limit", "hypotheses", "phi_instability"):
        return 1
    return len(cell.get("architectures", ["resnet", "cnn"]))  # one per architecture


def expected_rows(config: dict) -> int:
    """Rows of a sweep that runs, summed over its cells."""
    return sum(rows_of_cell(cell) for cell in S.cells(config))


def test_every_parameter_has_a_rule_and_a_valid_strategy():
    for experiment in S.EXPERIMENTS:
        for name in S.ALLOWED[experiment]:
            assert rule_of(experiment, name) is not None, (experiment, name)
            assert name in VALID or name == "eps", (experiment, name)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(configurations())
def test_every_configuration_runs_or_is_refused_cleanly(tmp_path_factory, config):
    folder = tmp_path_factory.mktemp("generated")
    try:
        text = to_toml(config)
    except TypeError:
        return  # not expressible in TOML (a None)
    status, out, err = sweep(folder, text)
    if status == 2:
        assert err.startswith("shortcutnet sweep: ") and err.count("\n") == 1, err
        assert not (folder / "out").exists()
        return
    assert status == 0, err
    checked = S.check_config(config)
    n_rows = expected_rows(checked)
    assert f"{n_rows} rows" in out
    assert len((folder / "out" / "table.csv").read_text().splitlines()) == n_rows + 1


def test_the_generator_makes_both_kinds(tmp_path_factory):
    # the property above is only worth something if both branches are taken often
    outcomes = []

    @settings(max_examples=80, deadline=None, database=None)
    @given(configurations())
    def classify(config):
        try:
            S.check_config(config)
            outcomes.append("runs")
        except (ValueError, TypeError):
            outcomes.append("refused")

    classify()
    counts = {kind: sum(1 for o in outcomes if o == kind) for kind in ("runs", "refused")}
    assert counts["runs"] >= 10 and counts["refused"] >= 10, counts
