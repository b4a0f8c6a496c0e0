"""scipy.optimize on sn.objective, and what the compiled core reports about its build."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn

optimize = pytest.importorskip("scipy.optimize", reason="SciPy is not installed")


@pytest.mark.parametrize("normalize", [True, False])
def test_objective_gradient_matches_check_grad(normalize, backend, rng):
    model = sn.Model(5, 4, normalize=normalize)
    w_star, a_star = rng.normal(size=4) / 2, rng.normal(size=5)
    fun, jac = sn.objective(model, w_star, a_star, backend=backend)
    theta = np.concatenate([rng.normal(size=4) / 2, rng.normal(size=5)])
    # check_grad uses a one-sided difference with step 1.5e-8: error ~ 1e-8 * |second derivative|.
    err = optimize.check_grad(fun, jac, theta)
    assert err <= 1e-6 * max(1.0, np.linalg.norm(jac(theta)))
    assert fun(theta) == sn.population_loss(model, theta[:4], theta[4:], w_star, a_star, backend=backend)


def test_lbfgs_from_the_resnet_start_reaches_the_global_optimum(backend, rng):
    k, p = 6, 4
    model = sn.Model(k, p)
    w_star = rng.normal(size=p) * np.sqrt(0.25 / p)  # teacher near the shortcut direction
    a_star = rng.normal(size=k)
    fun, jac = sn.objective(model, w_star, a_star, backend=backend)
    theta0 = np.zeros(p + k)  # w = 0 (the ResNet start), a = 0
    res = optimize.minimize(fun, theta0, jac=jac, method="L-BFGS-B", options=dict(ftol=0.0, gtol=1e-14, maxiter=2000))
    assert res.fun < 1e-10, res
    w, a = res.x[:p], res.x[p:]
    assert sn.angle(w + model.s, w_star + model.s) < 1e-4
    assert np.linalg.norm(a - a_star) < 1e-4 * np.linalg.norm(a_star)


def test_build_info_reports_compiler_openmp_and_simd():
    info = sn.build_info()
    if not info.get("available"):
        pytest.skip("the compiled core is not built")
    assert isinstance(info["compiler"], str) and info["compiler"].strip()
    assert isinstance(info["openmp"], bool)
    assert isinstance(info["simd_supported"], list)
    assert info["simd_supported"][0] == "scalar"
    assert set(info["simd_supported"]) <= {"scalar", "avx2", "avx512"}
    assert isinstance(info["max_threads"], int) and info["max_threads"] >= 1
