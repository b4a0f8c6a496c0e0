import math

import numpy as np
import pytest

import shortcutnet as sn


def test_number_pair_and_constant():
    np.testing.assert_array_equal(sn.make_schedule(0.1).rates(3), [[0.1, 0.1]] * 3)
    np.testing.assert_array_equal(sn.make_schedule((0.2, 0.05)).rates(2), [[0.2, 0.05]] * 2)
    np.testing.assert_array_equal(sn.constant(0.3, 0.4).rates(1), [[0.3, 0.4]])
    assert sn.make_schedule(np.float32(0.5))(7) == (0.5, 0.5)


def test_piecewise_two_stages():
    schedule = sn.piecewise([3, 5], [(0.0, 0.1), 0.2, (0.3, 0.05)])
    expected = [[0.0, 0.1]] * 3 + [[0.2, 0.2]] * 2 + [[0.3, 0.05]] * 2
    np.testing.assert_array_equal(schedule.rates(7), expected)
    assert [schedule(t) for t in range(7)] == [tuple(r) for r in expected]


def test_callable_is_checked_per_step():
    schedule = sn.make_schedule(lambda t: (0.1 / (1 + t), 0.2))
    assert not schedule.tabulated
    np.testing.assert_allclose(schedule.rates(3), [[0.1, 0.2], [0.05, 0.2], [0.1 / 3, 0.2]])
    assert sn.make_schedule(lambda t: 0.5)(4) == (0.5, 0.5)


@pytest.mark.parametrize("lr", [-0.1, math.nan, math.inf, (0.1, -1.0), (0.1, math.nan)])
def test_bad_rates(lr):
    with pytest.raises(ValueError, match="rates"):
        sn.make_schedule(lr)


@pytest.mark.parametrize("lr", ["0.1", None, (0.1, 0.2, 0.3), [[0.1]], True, 1j])
def test_bad_types(lr):
    with pytest.raises(TypeError, match="lr"):
        sn.make_schedule(lr)


@pytest.mark.parametrize("value, error", [("fast", TypeError), (None, TypeError), (-1.0, ValueError),
                                          ((0.1, math.inf), ValueError), ((1, 2, 3), TypeError)])
def test_schedule_returning_garbage_names_the_step(value, error):
    schedule = sn.make_schedule(lambda t: 0.1 if t < 2 else value)
    with pytest.raises(error, match="step 2"):
        schedule.rates(5)


def test_schedule_raising_names_the_step():
    def bad(t):
        raise ValueError("no rate")

    with pytest.raises(ValueError, match="step 0"):
        sn.make_schedule(bad)(0)


def test_piecewise_errors():
    with pytest.raises(ValueError, match="increasing"):
        sn.piecewise([5, 3], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="values"):
        sn.piecewise([5], [0.1])
    with pytest.raises(ValueError, match="boundaries"):
        sn.piecewise([0], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"values\[1\]"):
        sn.piecewise([5], [0.1, -0.2])


def test_tables_are_cut_after_the_last_change():
    assert sn.make_schedule(0.1).table(10**9).shape == (1, 2)
    table = sn.piecewise([3, 5], [0.1, 0.2, (0.3, 0.4)]).table(10**9)
    np.testing.assert_array_equal(table, [[0.1, 0.1]] * 3 + [[0.2, 0.2]] * 2 + [[0.3, 0.4]])
    np.testing.assert_array_equal(sn.piecewise([3, 5], [0.1, 0.2, 0.3]).table(2), [[0.1, 0.1]] * 2)
    assert sn.make_schedule(lambda t: 0.1).table(4).shape == (4, 2)
