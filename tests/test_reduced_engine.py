"""The reduced engine through run_trials and train (docs/reduced.md): where "auto" takes it, where
"reduced" is refused, its outcomes against the full engine on many trials, and its memory at
B = 10^7 trials."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import shortcutnet as sn
from train_problems import available


def paper_batch(model, B, seed):
    """The paper's set-up: a ResNet from w0 = 0, a CNN from a random unit w0, a0 in the ball."""
    rng = np.random.default_rng(seed)
    a_star = rng.standard_normal(model.k)
    w_star = rng.standard_normal(model.p) * (np.sqrt(0.25 / model.p) if model.has_shortcut else 1.0)
    w0 = sn.init_first_layer(model, "zero" if model.has_shortcut else "sphere", rng, size=B)
    a0 = sn.init_second_layer(model, a_star, rng, size=B)
    return w_star, a_star, w0, a0


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_auto_takes_the_reduced_engine_wherever_it_is_exact(backend):
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    model = sn.Model(6, 4)
    w_star, a_star, w0, a0 = paper_batch(model, 3, 0)
    run = lambda m, **kw: sn.run_trials(m, w_star, a_star, w0, a0, steps=20, backend=backend, **kw).engine  # noqa: E731
    assert run(model, lr=0.1) == "reduced"
    assert run(model, optimizer=sn.optim.momentum(0.1, nesterov=True)) == "reduced"
    assert run(sn.Model(6, 4, normalize=False), lr=0.01) == "reduced"
    assert run(model, optimizer=sn.optim.adam(0.01)) == "full"
    assert run(model, lr=0.1, gradient="sampled", batch_size=8, seed=1) == "full"
    assert run(model, lr=0.1, engine="full") == "full"
    overlapping = sn.Model(6, 4, stride=2)
    assert sn.run_trials(overlapping, np.ones(4) * 0.1, a_star, np.zeros((3, 4)), a0, steps=5, lr=0.1,
                         backend=backend).engine == "full"
    assert sn.train(model, w_star, a_star, w0[0], a0[0], steps=20, lr=0.1, backend=backend).engine == "reduced"


def test_the_reduced_engine_is_refused_where_it_does_not_apply():
    model = sn.Model(6, 4)
    w_star, a_star, w0, a0 = paper_batch(model, 2, 1)
    with pytest.raises(ValueError, match="engine: the reduced .* gd and momentum .* got optimizer 'adam'"):
        sn.run_trials(model, w_star, a_star, w0, a0, steps=5, optimizer=sn.optim.adam(0.1), engine="reduced")
    with pytest.raises(ValueError, match="engine: the reduced .* population gradient, got gradient='sampled'"):
        sn.train(model, w_star, a_star, w0[0], a0[0], steps=5, lr=0.1, gradient="sampled", batch_size=4,
                 engine="reduced")
    with pytest.raises(ValueError, match=r"engine: the reduced .*\(stride >= p\), got stride=2 < p=4"):
        sn.run_trials(sn.Model(6, 4, stride=2), w_star, a_star, w0, a0, steps=5, lr=0.1, engine="reduced")
    with pytest.raises(ValueError, match="engine: expected one of"):
        sn.run_trials(model, w_star, a_star, w0, a0, steps=5, lr=0.1, engine="fast")
    with pytest.raises(TypeError, match="engine: expected one of"):
        sn.run_trials(model, w_star, a_star, w0, a0, steps=5, lr=0.1, engine=1)


@pytest.mark.parametrize("shortcut", [True, False], ids=["resnet", "cnn"])
def test_outcomes_agree_with_the_full_engine_on_many_trials(shortcut):
    # The paper's size and step; the CNN ends at both optima.  Where the engines part, it is at a
    # threshold of the outcome rule or of tol, to rounding.
    if not available("cpp"):
        pytest.skip("cpp backend not available")
    model = sn.Model(20, 10, shortcut=shortcut)
    B = 100_000
    w_star, a_star, w0, a0 = paper_batch(model, B, 7)
    kw = dict(steps=1500, lr=0.1, tol=1e-10, backend="cpp")
    full = sn.run_trials(model, w_star, a_star, w0, a0, engine="full", **kw)
    reduced = sn.run_trials(model, w_star, a_star, w0, a0, engine="reduced", **kw)
    same = full.outcome_code == reduced.outcome_code
    assert same.mean() >= 0.999
    if not shortcut:
        assert 0.05 < reduced.rate("spurious") < 0.6  # both optima are reached
    th = sn.Thresholds()
    for b in np.flatnonzero(~same):
        near = [abs(full.phi[b] / th.global_phi - 1) < 1e-6, abs(full.loss[b] / kw["tol"] - 1) < 1e-6]
        assert any(near), (b, full.outcome[b], reduced.outcome[b], full.phi[b], full.loss[b])
    # Where both stop on the loss, they stop at the same step, or one step apart at the tolerance.
    both = (full.steps_to_tol >= 0) & (reduced.steps_to_tol >= 0)
    assert np.abs(full.steps_to_tol[both] - reduced.steps_to_tol[both]).max() <= 1
    assert (full.steps_to_tol[both] == reduced.steps_to_tol[both]).mean() >= 0.999


MEMORY_SCRIPT = r"""
import json, resource, sys
import numpy as np
import shortcutnet as sn
B = int(sys.argv[1])
model = sn.Model(2, 2)
w0 = np.zeros((B, 2))
a0 = np.full((B, 2), 0.1)
def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
def peak_rss_bytes():
    # VmHWM belongs to this process's address space; ru_maxrss would also count the parent's
    # peak, which Linux carries over exec when the child was started by vfork.
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
sn.run_trials(model, np.array([0.1, -0.2]), np.array([1.0, -0.5]), w0[:10], a0[:10], steps=3, lr=0.1)  # warm up
before = rss_bytes()
res = sn.run_trials(model, np.array([0.1, -0.2]), np.array([1.0, -0.5]), w0, a0, steps=3, lr=0.1, threads=2)
peak = peak_rss_bytes()
results = sum(getattr(res, name).nbytes for name in ("outcome", "outcome_code", "phi", "loss", "steps_to_tol",
                                                      "steps", "w", "a"))
print(json.dumps({"before": before, "peak": peak, "results": results, "engine": res.engine,
                  "global": res.summary()["global"]}))
"""


def test_ten_million_trials_fit_in_the_results_and_a_small_constant():
    if not available("cpp"):
        pytest.skip("cpp backend not available")
    with open("/proc/self/maps") as maps:
        if "libasan" in maps.read():
            pytest.skip("AddressSanitizer's shadow memory and quarantine are not the engine's memory")
    B = 10_000_000
    env = dict(os.environ, SHORTCUTNET_BACKEND="cpp")
    done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(B)], capture_output=True, text=True, timeout=600,
                          env=env, check=True)
    m = json.loads(done.stdout)
    assert m["engine"] == "reduced"
    # The engine's own memory (the results' train_loss included) and Python's: a small constant.
    small = B * 8 + 64 * 2**20
    assert m["peak"] - m["before"] <= m["results"] + small, m
