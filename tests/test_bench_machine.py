"""`shortcutnet bench` and the benchmarks' JSON name the CPU and the SIMD level the timings came from."""
from __future__ import annotations

import importlib.util
import pathlib
import subprocess

import pytest

import shortcutnet as sn
from shortcutnet import bench

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
model name\t: Intel(R) Xeon(R) Platinum 8592+
flags\t\t: fpu avx2 avx512f

processor\t: 1
model name\t: Some Other Core
"""


def test_cpu_model_from_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    assert bench.cpu_model(str(path)) == "Intel(R) Xeon(R) Platinum 8592+ (family 6, model 207)"


def test_cpu_model_from_an_arm_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("Processor\t: AArch64 Processor rev 1 (aarch64)\nBogoMIPS\t: 48.00\n")
    assert bench.cpu_model(str(path)) == "AArch64 Processor rev 1 (aarch64)"


def test_cpu_model_falls_back_to_lscpu_then_platform(tmp_path, monkeypatch):
    missing = str(tmp_path / "none")

    def lscpu(args, **kwargs):
        assert args == ["lscpu"]
        return subprocess.CompletedProcess(args, 0, stdout="Architecture: x86_64\nModel name:  Test CPU 9000\n")

    monkeypatch.setattr(bench.subprocess, "run", lscpu)
    assert bench.cpu_model(missing) == "Test CPU 9000"

    def no_lscpu(args, **kwargs):
        raise FileNotFoundError("lscpu")

    monkeypatch.setattr(bench.subprocess, "run", no_lscpu)
    monkeypatch.setattr(bench.platform, "processor", lambda: "")
    monkeypatch.setattr(bench.platform, "machine", lambda: "riscv64")
    assert bench.cpu_model(missing) == "riscv64"


def test_machine_info_names_the_level_in_use(monkeypatch):
    info = sn.build_info()
    if not info.get("available"):
        assert bench.machine_info()["simd_in_use"] == "not built"
        return
    for level in info["simd_supported"]:
        monkeypatch.setenv("SHORTCUTNET_SIMD", level)
        assert bench.machine_info()["simd_in_use"] == level
    assert bench.machine_info()["cpu_model"] == bench.cpu_model()


def test_bench_prints_the_machine_above_its_tables(monkeypatch):
    row = {"group": "small-batch-f64", "name": "shortcutnet[cpp]", "seconds": 1e-5, "ratio": 1.0,
           "bandwidth_percent": 50.0, "n": 256, "k": 16, "p": 64}
    monkeypatch.setattr(bench, "run_group", lambda group, quick=False: [dict(row, group=group)])
    lines = []
    bench.main(quick=True, groups=["small-batch-f64"], print_fn=lines.append)
    text = "\n".join(lines)
    assert text.index(bench.machine_line()) < text.index("small-batch-f64 (n = 256, k = 16, p = 64)")
    assert f"SIMD in use: {bench.machine_info()['simd_in_use']}" in text


def test_benchmark_json_records_the_machine():
    pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed")
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "conftest.py"
    spec = importlib.util.spec_from_file_location("bench_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    machine_info = {"node": "host"}
    module.pytest_benchmark_update_machine_info(None, machine_info)
    assert machine_info == {"node": "host", **bench.machine_info()}
