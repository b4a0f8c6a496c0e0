"""shortcutnet bench's timing of a group: contenders called in turn, ratios within a round."""
import pytest

from shortcutnet import bench


class DriftingMachine:
    """A fake clock for perf_counter: a call's duration is its base cost times a slowdown that
    changes with the machine's phase (how many calls were made so far), the way a shared host's
    memory bandwidth drifts during a run."""

    def __init__(self, slow_calls, factor):
        self.now, self.calls, self.slow_calls, self.factor = 0.0, 0, slow_calls, factor
        self.order = []

    def perf_counter(self):
        return self.now

    def contender(self, name, cost):
        def call():
            slowdown = self.factor if self.calls < self.slow_calls else 1.0
            self.calls += 1
            self.now += cost * slowdown
            self.order.append(name)
        return call


def test_rounds_call_every_contender_in_turn_in_a_rotating_order(monkeypatch):
    machine = DriftingMachine(0, 1.0)
    monkeypatch.setattr(bench.time, "perf_counter", machine.perf_counter)
    fns = {name: machine.contender(name, 1.0) for name in "abc"}
    times = bench.interleaved_times(fns, rounds=3, warmup=1, settle=0.0)
    assert machine.order == list("abc") + list("abc") + list("bca") + list("cab")
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_ratios_are_taken_within_rounds(monkeypatch):
    # The first 9 calls (the warm-up and the first round and a half) run 3x slower.  Timed one
    # contender after the other, the kernel would see only slow calls and the read only fast ones
    # (a third of the bandwidth it reaches); round by round every ratio is the true one.
    machine = DriftingMachine(slow_calls=9, factor=3.0)
    monkeypatch.setattr(bench.time, "perf_counter", machine.perf_counter)
    monkeypatch.setattr(bench.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(bench, "make_workload", lambda *args, **kwargs: None)
    costs = {"shortcutnet[cpp]": 2.0, "shortcutnet[numba]": 4.0, "read bandwidth: np.sum": 1.0,
             "read bandwidth: torch.ones(N).sum()": 1.5}
    monkeypatch.setattr(bench, "contenders",
                        lambda work, group: {name: machine.contender(name, c) for name, c in costs.items()})
    rows = {row["name"]: row for row in bench.run_group("materialized-f32", repeats=5)}
    assert rows["shortcutnet[cpp]"]["bandwidth_percent"] == pytest.approx(50.0)
    assert rows["shortcutnet[numba]"]["bandwidth_percent"] == pytest.approx(25.0)
    assert rows["shortcutnet[numba]"]["ratio"] == pytest.approx(2.0)
    assert rows["shortcutnet[cpp]"]["ratio"] == pytest.approx(1.0)
    assert rows["shortcutnet[cpp]"]["seconds"] == pytest.approx(2.0)


def test_a_contender_timed_once_is_set_against_the_medians():
    assert bench.median_ratio([6.0], [1.0, 2.0, 3.0]) == pytest.approx(3.0)
    assert bench.median_ratio([2.0, 9.0, 4.0], [1.0, 3.0, 1.0]) == pytest.approx(3.0)


def test_short_contenders_are_called_once_untimed_at_the_start_of_each_turn(monkeypatch):
    machine = DriftingMachine(0, 1.0)
    monkeypatch.setattr(bench.time, "perf_counter", machine.perf_counter)
    sleeps = []
    monkeypatch.setattr(bench.time, "sleep", sleeps.append)
    fns = {"short": machine.contender("short", 0.001), "long": machine.contender("long", 1.0)}
    times = bench.interleaved_times(fns, rounds=2, warmup=1, settle=0.5)
    assert machine.order == ["short", "long"] + ["short", "short", "long"] + ["long", "short", "short"]
    assert sleeps == [0.5] * 4
    assert times == {"short": [pytest.approx(0.001)] * 2, "long": [pytest.approx(1.0)] * 2}
