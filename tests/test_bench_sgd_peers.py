"""The SGD peers of ``shortcutnet bench`` compute what they claim: one step of the batched PyTorch
update and of the JAX update on a given batch equals lr times the sampled gradient of every trial,
and the per-unit table's ratios are the row figures divided as documented."""
import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet import bench

TRIALS, N = 3, 32


@pytest.fixture(scope="module")
def problem():
    """Three trials of the benchmark's problem and a stored batch of N inputs per trial."""
    work = bench.make_trials_workload(TRIALS)
    Z = np.stack([sn.sample_inputs(work.model, N, seed=b) for b in range(TRIALS)])
    expected = []
    for b in range(TRIALS):
        y = sn.teacher_labels(work.model, work.w_star[b], work.a_star[b], Z[b])
        loss, grad_w, grad_a = sn.sampled_loss_grad(work.model, work.w0[b], work.a0[b], Z[b], y, backend="numpy")
        expected.append((loss, grad_w, grad_a))
    return work, Z, expected


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_torch_update_is_a_sgd_step_per_trial(problem):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    work, Z, expected = problem
    f64 = torch.float64
    s = torch.tensor(np.array(work.model.s), dtype=f64)
    w = torch.tensor(work.w0, dtype=f64, requires_grad=True)
    a = torch.tensor(work.a0, dtype=f64, requires_grad=True)
    v_star = torch.tensor(_unit(work.w_star + work.model.s), dtype=f64)
    optimizer = torch.optim.SGD([w, a], lr=bench.SGD_LR)
    loss = bench.torch_sgd_update(torch, torch.tensor(Z), w, a, s, v_star, torch.tensor(work.a_star), optimizer)
    np.testing.assert_allclose(float(loss.detach()), sum(e[0] for e in expected), rtol=1e-12)
    for b, (_, grad_w, grad_a) in enumerate(expected):
        np.testing.assert_allclose(w.detach().numpy()[b], work.w0[b] - bench.SGD_LR * grad_w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(a.detach().numpy()[b], work.a0[b] - bench.SGD_LR * grad_a, rtol=1e-12, atol=1e-14)


def test_jax_update_is_a_sgd_step(problem):
    jax = pytest.importorskip("jax", reason="JAX is not installed (an optional peer)")
    work, Z, expected = problem
    update = jax.jit(bench.jax_sgd_update(jax))
    f32 = np.float32
    v_star = _unit(work.w_star + work.model.s)
    for b, (_, grad_w, grad_a) in enumerate(expected):
        w, a = update(work.w0[b].astype(f32), work.a0[b].astype(f32), Z[b].astype(f32), v_star[b].astype(f32),
                      work.a_star[b].astype(f32), np.asarray(work.model.s, dtype=f32))
        # float32 arithmetic on a float32 copy of the batch: the step's error is ~1e-6 of the gradient
        for new, old, grad in ((w, work.w0[b], grad_w), (a, work.a0[b], grad_a)):
            recovered = (old.astype(f32) - np.asarray(new, dtype=np.float64)) / bench.SGD_LR
            np.testing.assert_allclose(recovered, grad, rtol=0, atol=1e-4 * np.abs(grad).max() + 1e-6)


def test_per_unit_ratios_follow_the_comparisons():
    tiny = bench.TrialsSizes(trials=4, steps=2, long_n=64, short_calls=2, train_steps=3, empirical_trials=2,
                             empirical_steps=3, population_steps=5)
    rows = {row["name"]: row for group in bench.PER_UNIT_GROUPS
            for row in bench.run_per_unit_group(group, repeats=1, sizes=tiny)}
    for name, comparison in bench.COMPARISONS.items():
        if name not in rows:
            continue
        row, reference = rows[name], rows[comparison.reference]["ns_per_unit"]
        assert row["ratio"] == pytest.approx(row["ns_per_unit"] / (comparison.per * reference))
        if comparison.times is not None:
            bound = comparison.times * comparison.per * reference + comparison.plus_ns
            assert row["of_target"] == pytest.approx(row["ns_per_unit"] / bound)
    engine = bench.COMPARISONS[bench.ENGINE]
    assert (engine.reference, engine.per, engine.times, engine.plus_ns) == (bench.KERNEL_LONG, 32 * 20 * 10, 1.3, 500.0)
    table = bench.format_per_unit_table(list(rows.values()))
    assert all(name in table for name in rows)
