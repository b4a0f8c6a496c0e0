"""The training engines (full and reduced) give the same bits at every instruction-set level
(SHORTCUTNET_SIMD caps the level the CPU would get), for every optimizer and gradient source, and
the same bits as the one-trial path."""
import os
import subprocess
import sys

import numpy as np
import pytest

import shortcutnet as sn

if "cpp" not in sn.backends():
    pytest.skip("the compiled backend is not available", allow_module_level=True)
core = pytest.importorskip("shortcutnet._core", reason="the compiled backend is not built")

SCRIPT = r"""
import sys
import numpy as np
import shortcutnet as sn
from shortcutnet import _core
out = []
for shortcut in (False, True):
    model = sn.Model(7, 5, shortcut=shortcut)
    rng = np.random.default_rng(5)
    B = 37
    a_star = rng.standard_normal((B, 7))
    w_star = rng.standard_normal((B, 5))
    w0 = sn.init_first_layer(model, "sphere", rng, size=B)
    a0 = sn.init_second_layer(model, a_star, rng)
    # Both engines' lanes with every optimizer they run, every stochastic source one trial at a time
    # per thread.
    for engine in ("full", "reduced"):
        r = sn.run_trials(model, w_star, a_star, w0, a0, steps=400, lr=0.3, tol=1e-12, threads=2, backend="cpp",
                          engine=engine)
        out += [r.w, r.a, r.loss, r.phi, r.steps, r.steps_to_tol, r.outcome]
        schedule = sn.piecewise([50], [(0.1, 0.2), (0.05, 0.1)])
        for optimizer in (sn.optim.momentum(0.05, nesterov=True), sn.optim.momentum(schedule, beta=0.5)):
            r = sn.run_trials(model, w_star, a_star, w0, a0, steps=300, optimizer=optimizer, threads=2,
                              backend="cpp", engine=engine)
            out += [r.w, r.a, r.loss, r.phi, r.steps]
    r = sn.run_trials(model, w_star, a_star, w0, a0, steps=300, optimizer=sn.optim.adam(0.02), threads=2,
                      backend="cpp")
    out += [r.w, r.a, r.loss]
    for dtype in (np.float32, np.float64):
        for kw in (dict(gradient="sampled", batch_size=40), dict(gradient="empirical", n_train=200),
                   dict(gradient="empirical", n_train=200, batch_size=32)):
            r = sn.run_trials(model, w_star[:6], a_star[:6], w0[:6], a0[:6], steps=60, optimizer=sn.optim.adam(0.02),
                              seed=4, dtype=dtype, threads=2, backend="cpp", **kw)
            out += [r.w, r.a, r.loss, r.train_loss]
np.savez(sys.argv[1], *out)
print(_core.engine_simd())
"""


def run_at(level, path):
    env = dict(os.environ, SHORTCUTNET_SIMD=level)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    with np.load(path) as f:
        return done.stdout.strip(), [f[name] for name in f.files]


def test_every_simd_level_gives_the_same_bits(tmp_path):
    native = core.engine_simd()
    assert native in ("avx512", "avx2", "baseline")
    levels = ["baseline"] + [lv for lv in ("avx2", "avx512") if lv != "baseline" and native in (lv, "avx512")]
    results = {}
    for level in levels:
        used, arrays = run_at(level, tmp_path / f"{level}.npz")
        assert used == level
        results[level] = arrays
    for level in levels[1:]:
        for x, y in zip(results["baseline"], results[level]):
            np.testing.assert_array_equal(x, y)


def test_engine_and_sampled_kernels_read_the_same_level():
    """One reading of SHORTCUTNET_SIMD decides both: the same level, the same refusal."""
    script = "from shortcutnet import _core; print(_core.engine_simd(), _core.build_info()['simd_in_use'])"
    for level in ("scalar", "avx2"):
        env = dict(os.environ, SHORTCUTNET_SIMD=level)
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                             check=True).stdout.split()
        if level == "avx2" and "avx2" not in core.build_info()["simd_supported"]:
            assert out == ["baseline", "scalar"]
        else:
            assert out == [{"scalar": "baseline"}.get(level, level), level]
    env = dict(os.environ, SHORTCUTNET_SIMD="avx9000")
    bad = subprocess.run([sys.executable, "-c", "from shortcutnet import _core; _core.engine_simd()"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "SHORTCUTNET_SIMD: expected one of" in bad.stderr and "avx9000" in bad.stderr


def test_a_change_of_level_in_one_process_reaches_both(monkeypatch):
    """SHORTCUTNET_SIMD is read at every call by the engine and the sampled kernels alike, so a
    change in a running process moves both to the new level, and back."""
    monkeypatch.delenv("SHORTCUTNET_SIMD", raising=False)
    native = core.build_info()["simd_in_use"]
    for level in ["scalar"] + [lv for lv in core.build_info()["simd_supported"] if lv != "scalar"] + ["scalar"]:
        monkeypatch.setenv("SHORTCUTNET_SIMD", level)
        assert core.engine_simd() == {"scalar": "baseline"}.get(level, level)
        assert core.build_info()["simd_in_use"] == level
    monkeypatch.delenv("SHORTCUTNET_SIMD")
    assert core.build_info()["simd_in_use"] == native
    assert core.engine_simd() == {"scalar": "baseline"}.get(native, native)
