"""Read-only, strided, Fortran-ordered, list and integer inputs give the same answers, and no
function writes to its inputs."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn
from configs import MODEL_CASES, case_id, random_config


def layouts(x, rng):
    """The same values in other layouts and types."""
    read_only = x.copy()
    read_only.setflags(write=False)
    strided = np.repeat(x, 2)[::2]  # a[::2] of a longer array
    column = np.asfortranarray(np.column_stack([x, rng.normal(size=x.size)]))
    row_of_fortran = np.asfortranarray(np.vstack([x, rng.normal(size=x.size)]))[0]  # non-contiguous
    reversed_twice = x[::-1].copy()[::-1]  # negative stride
    return {
        "read-only": read_only,
        "strided": strided,
        "fortran column": column[:, 0],
        "fortran row": row_of_fortran,
        "negative stride": reversed_twice,
        "list": x.tolist(),
    }


@pytest.mark.parametrize("case", MODEL_CASES[::3], ids=case_id)
def test_layouts_give_the_same_answer(case, backend, rng):
    model, *params = random_config(rng, case)
    expected = sn.population_loss_grad(model, *params, backend=backend)
    for position in range(4):
        for label, variant in layouts(params[position], rng).items():
            args = list(params)
            args[position] = variant
            loss, grad_w, grad_a = sn.population_loss_grad(model, *args, backend=backend)
            assert loss == expected[0], (position, label)
            np.testing.assert_array_equal(grad_w, expected[1], err_msg=f"{position} {label}")
            np.testing.assert_array_equal(grad_a, expected[2], err_msg=f"{position} {label}")
            if position == 3:
                assert np.array_equal(sn.spurious_optimum(model, variant, backend=backend),
                                      sn.spurious_optimum(model, params[3], backend=backend))
    u, v = params[0] + model.s, params[2] + model.s
    for label, variant in layouts(u, rng).items():
        assert sn.angle(variant, v, backend=backend) == sn.angle(u, v, backend=backend), label


def test_integer_and_float32_inputs_are_converted(backend):
    model = sn.Model(3, 2, shortcut=False)
    w, a, w_star, a_star = np.array([1, 2]), np.array([1, -1, 2]), np.array([2, 1]), np.array([0, 1, 1])
    as_float = [x.astype(np.float64) for x in (w, a, w_star, a_star)]
    expected = sn.population_loss(model, *as_float, backend=backend)
    assert sn.population_loss(model, w, a, w_star, a_star, backend=backend) == expected
    halves = [x.astype(np.float32) for x in as_float]  # small integers are exact in float32
    assert sn.population_loss(model, *halves, backend=backend) == expected
    assert sn.angle(np.array([1, 0]), np.array([0, 3]), backend=backend) == pytest.approx(np.pi / 2, rel=1e-15)


def test_inputs_are_not_modified(backend, rng):
    for case in MODEL_CASES:
        model, *params = random_config(rng, case)
        copies = [x.copy() for x in params]
        s = model.s.copy()
        sn.population_loss_grad(model, *params, backend=backend)
        sn.angle(params[0], params[2], backend=backend)
        sn.spurious_optimum(model, params[3], backend=backend)
        for x, y in zip(params, copies):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(model.s, s)


def test_results_are_fresh_arrays(backend, rng):
    model, *params = random_config(rng, MODEL_CASES[0])
    _, g1, a1 = sn.population_loss_grad(model, *params, backend=backend)
    _, g2, a2 = sn.population_loss_grad(model, *params, backend=backend)
    assert not np.shares_memory(g1, g2) and not np.shares_memory(a1, a2)
    assert g1.dtype == np.float64 and g1.shape == (model.p,) and a1.shape == (model.k,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_byte_swapped_batches_give_the_native_results(backend, dtype):
    model = sn.Model(4, 3)
    rng = np.random.default_rng(3)
    w, a, w_star, a_star = rng.normal(size=3), rng.normal(size=4), rng.normal(size=3), rng.normal(size=4)
    Z = sn.sample_inputs(model, 64, 1, dtype=dtype)
    y = sn.teacher_labels(model, w_star, a_star, Z)
    swapped = np.dtype(dtype).newbyteorder()
    native = sn.sampled_loss_grad(model, w, a, Z, y, backend=backend)
    other = sn.sampled_loss_grad(model, w.astype(">f8"), a, Z.astype(swapped), y.astype(swapped), backend=backend)
    assert native[0] == other[0]
    assert np.array_equal(native[1], other[1]) and np.array_equal(native[2], other[2])
    assert np.array_equal(sn.predict(model, w, a, Z.astype(swapped), backend=backend), sn.predict(model, w, a, Z, backend=backend))
