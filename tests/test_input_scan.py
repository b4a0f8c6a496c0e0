"""run_trials checks its (B, .) inputs in one pass of the backend's scan_rows: every backend must
answer what the NumPy reference answers (exactly: maxima and comparisons have no rounding), and
run_trials must refuse what the scan finds by the argument's name."""
from __future__ import annotations

import math

import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet.backends import get as get_backend
from shortcutnet.backends.reference import scan_rows as reference_scan
from train_problems import BACKENDS, available


def arrays():
    rng = np.random.default_rng(3)
    for B, m in [(1, 1), (5, 3), (40, 17), (9, 8), (3, 64), (70000, 2)]:
        x = rng.normal(size=(B, m)) * np.exp2(rng.integers(-300, 300, size=(B, 1)))
        s = rng.normal(size=m)
        yield x, s
        if B > 3:
            zero = x.copy()
            zero[3] = -s
            zero[B - 1] = -s
            yield zero, s
        tiny = np.full((B, m), 2.0**-1074)
        yield tiny, None
        yield np.full((B, m), 1e308), s
        yield np.full((B, m), 1.7e308), np.full(m, 1e308)  # x + s overflows: its extent is inf


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_scans_as_the_reference(backend):
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    scan = get_backend(backend).scan_rows
    for x, s in arrays():
        for shift in (None, s):
            want = reference_scan(x, shift, rows_per_pass=7)
            assert tuple(scan(x, shift)) == want
            assert tuple(reference_scan(x, shift)) == want  # the passes do not change the answer


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_the_first_non_finite_entry_is_found(backend, bad):
    if not available(backend):
        pytest.skip(f"{backend} backend not available")
    scan = get_backend(backend).scan_rows
    x = np.ones((50, 11))
    for index in (0, 10, 11 * 7 + 3, 549):
        y = x.copy()
        y.ravel()[index] = bad
        y.ravel()[min(index + 13, 549)] = bad  # a later one is not reported
        assert scan(y, None)[0] == index
        assert scan(y, -np.ones(11))[0] == index


def test_run_trials_names_what_the_scan_finds():
    model = sn.Model(4, 3)
    rng = np.random.default_rng(0)
    w_star, a_star = rng.normal(size=3), rng.normal(size=4)
    w0, a0 = np.zeros((6, 3)), rng.normal(size=(6, 4))
    for name, index in (("w0", 7), ("a0", 13), ("w_star", 1), ("a_star", 2)):
        args = dict(w0=w0.copy(), a0=a0.copy(), w_star=w_star.copy(), a_star=a_star.copy())
        args[name].ravel()[index] = math.nan
        with pytest.raises(ValueError, match=rf"{name}: expected finite values, got nan at flat index {index}"):
            sn.run_trials(model, args["w_star"], args["a_star"], args["w0"], args["a0"], steps=2, lr=0.1)
    bad_w0 = w0.copy()
    bad_w0[4] = -model.s
    with pytest.raises(ValueError, match=r"w0: expected w0 \+ s != 0 .* in trial 4"):
        sn.run_trials(model, w_star, a_star, bad_w0, a0, steps=2, lr=0.1)
    with pytest.raises(ValueError, match=r"w_star: expected w_star \+ s != 0 .* in trial 0"):
        sn.run_trials(model, -model.s, a_star, w0, a0, steps=2, lr=0.1)


def _blocks_with_faults():
    """A (70000, 2) array: three of the compiled scan's blocks of rows, with zero rows in the
    first and last, and the same array with non-finite entries in the second and third."""
    rng = np.random.default_rng(5)
    s = rng.normal(size=2)
    x = rng.normal(size=(70000, 2))
    x[[40000, 69999]] = -s
    bad = x.copy()
    bad[[50000, 68000], 1] = math.nan
    return x, bad, s


def test_compiled_scan_gives_one_answer_for_any_threads():
    if not available("cpp"):
        pytest.skip("cpp backend not available")
    scan = get_backend("cpp").scan_rows
    x, bad, s = _blocks_with_faults()
    for y in (x, bad, x[:40000]):
        for shift in (None, s):
            want = reference_scan(y, shift)
            for threads in (1, 2, 3, 8):
                got = scan(y, shift, threads=threads)
                assert (got[0], got[1]) == want[:2]
                if want[0] < 0:
                    assert tuple(got) == want
    assert scan(x, s)[1] == 40000 and scan(bad, None)[0] == 100001
    with pytest.raises(ValueError, match=r"threads: expected an integer >= 1, got 0"):
        scan(x, s, threads=0)


def _engine_binding_call(engine, s):
    """A call of the compiled engine binding `engine` on (w0, a0) for one step of gd, teachers of
    ones; keyword arguments go to the binding."""
    from shortcutnet import _core

    model = sn.Model(3, 2, shortcut=s)
    opt = sn.optim.gd(0.1)
    thresholds = sn.Thresholds().as_tuple()
    rates = np.full((1, 2), 0.1)

    def call(w0, a0, threads, **options):
        B = w0.shape[0]
        w_star, a_star = np.ones((B, 2)), np.ones((B, 3))
        if engine == "run_reduced":
            return _core.run_reduced(model.s, True, w0, a0, w_star, a_star, rates, 1, 0.0, thresholds,
                                     opt.engine_spec(), 0, threads, **options)
        return _core.run_engine(model.s, 1, True, w0, a0, w_star, a_star, rates, 1, 0.0, thresholds,
                                opt.engine_spec(), "population", 0, 0, np.zeros(B, dtype=np.uint64), "float64", 0,
                                threads, **options)

    return call


@pytest.mark.parametrize("engine", ["run_reduced", "run_engine"])
def test_engine_bindings_check_their_rows(engine):
    """The compiled engines' bindings refuse what run_trials' scan refuses, on any threads, so that
    a direct caller gets the same message."""
    if not available("cpp"):
        pytest.skip("cpp backend not available")
    x, bad, s = _blocks_with_faults()
    a0 = np.random.default_rng(1).normal(size=(x.shape[0], 3))
    call = _engine_binding_call(engine, s)
    for threads in (1, 2, 3):
        with pytest.raises(ValueError, match=r"w0: expected w0 \+ s != 0 .* in trial 40000$"):
            call(x, a0, threads)
        with pytest.raises(ValueError, match=r"w0: expected finite values, got nan at flat index 100001$"):
            call(bad, a0, threads)
        a_bad = a0.copy()
        a_bad[[30000, 60000], 2] = -math.inf
        with pytest.raises(ValueError, match=r"a0: expected finite values, got -inf at flat index 90002$"):
            call(x + 1.0, a_bad, threads)


@pytest.mark.parametrize("engine", ["run_reduced", "run_engine"])
def test_engine_bindings_skip_the_scan_their_caller_ran(engine):
    """scanned=True, as the cpp backend passes after run_trials' scan: the same results on rows that
    pass the scan, and the rows are not scanned again, so a faulty one runs (to non-finite results
    in its own trial only) instead of raising."""
    if not available("cpp"):
        pytest.skip("cpp backend not available")
    x, bad, s = _blocks_with_faults()
    good = x[:1000] + 1.0
    a0 = np.random.default_rng(1).normal(size=(good.shape[0], 3))
    call = _engine_binding_call(engine, s)
    checked, trusted = call(good, a0, 2), call(good, a0, 2, scanned=True)
    for want, got in zip(checked[:8], trusted[:8]):
        np.testing.assert_array_equal(got, want)
    faulty = good.copy()
    faulty[10, 1] = math.nan
    out = call(faulty, a0, 2, scanned=True)
    w, a = out[5], out[6]
    assert not np.isfinite(w[10]).all()
    rest = np.arange(good.shape[0]) != 10
    np.testing.assert_array_equal(w[rest], checked[5][rest])
    np.testing.assert_array_equal(a[rest], checked[6][rest])
