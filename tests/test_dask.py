"""Experiments and sweeps on a Dask distributed cluster (a local one started here)."""
import pytest

distributed = pytest.importorskip(
    "distributed", reason="Dask distributed is not installed (optional extra: pip install 'shortcutnet[dask]')"
)

from shortcutnet import experiments as E  # noqa: E402
from shortcutnet.cli import main  # noqa: E402
from shortcutnet.experiments import sweep as S  # noqa: E402
from shortcutnet.experiments.tables import write_csv  # noqa: E402

CONFIG = """
experiment = "success_rate"
seed = 4
[fixed]
trials = 5
steps = 300
lr = 0.1
[grid]
k = [3, 6]
p = [4]
"""


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as c:
        yield c


def test_success_rate_on_dask_equals_sequential(cluster):
    with distributed.Client(cluster) as client:
        on_dask = E.success_rate((3, 5), (4,), trials=5, steps=300, executor=client.get_executor())
    assert on_dask == E.success_rate((3, 5), (4,), trials=5, steps=300, executor=None)


def test_sweep_cli_with_scheduler_address(cluster, tmp_path, capsys):
    config = tmp_path / "grid.toml"
    config.write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["sweep", str(config), "--out", str(out), "--scheduler", cluster.scheduler_address,
                 "--no-progress"]) == 0
    assert "4 rows" in capsys.readouterr().out
    reference = S.run_sweep(S.load_config(config), tmp_path / "ref", executor=None, progress=False)
    rows = S.run_sweep(S.load_config(config), out, executor=None, progress=False)  # all cells done: a pure read
    assert rows == reference
    write_csv(reference, tmp_path / "reference.csv")
    assert (out / "table.csv").read_text() == (tmp_path / "reference.csv").read_text()
