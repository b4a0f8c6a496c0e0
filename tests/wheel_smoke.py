"""Smoke test of an installed shortcutnet: the compiled core loads and computes, at the SIMD level
named by SHORTCUTNET_SIMD (the best one when unset).

Run as ``python wheel_smoke.py`` from any folder, or ``python wheel_smoke.py --every-level`` to run
it once per SIMD level the CPU supports; exits non-zero with a message on any failure.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np


def main() -> int:
    import shortcutnet as sn
    from shortcutnet import _core

    requested = os.environ.get("SHORTCUTNET_SIMD") or None
    info = sn.build_info()
    assert info["available"], info
    assert sn.backends()[0] == "cpp", sn.backends()
    if requested is not None:
        assert info["simd_in_use"] == requested, (requested, info)
        # The engine calls its lowest level "baseline" (x86-64 without extensions).
        engine_level = "baseline" if requested == "scalar" else requested
        assert _core.engine_simd() == engine_level, (requested, _core.engine_simd())

    rng = np.random.default_rng(5)
    model = sn.Model(6, 4)
    w_star, a_star = rng.normal(size=4), rng.normal(size=6)
    w, a = 0.3 * rng.normal(size=4), rng.normal(size=6)
    # The compiled closed form against the NumPy reference (rounding only).
    loss = sn.population_loss(model, w, a, w_star, a_star)
    grads = sn.population_grad(model, w, a, w_star, a_star)
    assert np.isclose(loss, sn.population_loss(model, w, a, w_star, a_star, backend="numpy"), rtol=1e-12, atol=0)
    for got, want in zip(grads, sn.population_grad(model, w, a, w_star, a_star, backend="numpy")):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)

    # The fused stochastic gradient: the same bits for any thread count, the reference to rounding.
    one = sn.stochastic_loss_grad(model, w, a, w_star, a_star, 5000, 9, threads=1)
    two = sn.stochastic_loss_grad(model, w, a, w_star, a_star, 5000, 9, threads=2)
    ref = sn.stochastic_loss_grad(model, w, a, w_star, a_star, 5000, 9, backend="numpy")
    for x, y, z in zip(one, two, ref):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(x, z, rtol=1e-10, atol=1e-14)

    # The engine (OpenMP across trials): trial b of run_trials is train with trial_seed(seed, b).
    B = 8
    w0, a0 = np.zeros((B, 4)), 0.1 * rng.normal(size=(B, 6))
    out = sn.run_trials(model, w_star, a_star, w0, a0, steps=300, lr=0.1, gradient="sampled", batch_size=16,
                        seed=3, threads=2)
    single = sn.train(model, w_star, a_star, w0[5], a0[5], steps=300, lr=0.1, gradient="sampled", batch_size=16,
                      seed=sn.trial_seed(3, 5))
    np.testing.assert_array_equal(out.w[5], single.w)
    np.testing.assert_array_equal(out.a[5], single.a)
    print(f"shortcutnet {sn.__version__} smoke test passed: simd {info['simd_in_use']}, "
          f"engine {_core.engine_simd()}, openmp {info['openmp']}, outcomes {out.summary()}")
    return 0


def every_level() -> int:
    """The smoke test in a fresh interpreter at each supported SIMD level (the level is read once)."""
    import shortcutnet as sn

    levels = sn.build_info()["simd_supported"]
    for level in levels:
        env = {**os.environ, "SHORTCUTNET_SIMD": level}
        done = subprocess.run([sys.executable, os.path.abspath(__file__)], env=env)
        if done.returncode != 0:
            print(f"smoke test failed at SHORTCUTNET_SIMD={level}", file=sys.stderr)
            return done.returncode
    print(f"smoke test passed at every SIMD level: {', '.join(levels)}")
    return 0


if __name__ == "__main__":
    sys.exit(every_level() if sys.argv[1:] == ["--every-level"] else main())
