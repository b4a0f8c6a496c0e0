"""The training engine on the compiled backend: every optimizer and gradient source gives, for trial
b of run_trials, exactly what train gives with that trial's seed; the steps are the kernel calls of
docs/training.md to the last bit; results do not depend on the thread count."""
import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet import seeds
from train_problems import problem

if "cpp" not in sn.backends():
    pytest.skip("the compiled backend is not available", allow_module_level=True)

OPTIMIZERS = {
    "gd": sn.optim.gd((0.1, 0.12)),
    "momentum": sn.optim.momentum(0.02, beta=0.9),
    "nesterov": sn.optim.momentum(sn.piecewise([30], [0.02, (0.01, 0.03)]), beta=0.8, nesterov=True),
    "adam": sn.optim.adam((0.01, 0.02), beta1=0.85, beta2=0.99, eps=1e-7),
}
SOURCES = {
    "population": dict(),
    "sampled": dict(gradient="sampled", batch_size=24),
    "empirical": dict(gradient="empirical", n_train=300),
    "minibatch": dict(gradient="empirical", n_train=300, batch_size=64),
}


def source_kwargs(source, dtype):
    kw = dict(SOURCES[source])
    if source != "population":
        kw["dtype"] = dtype
    return kw


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("shortcut", [True, False])
def test_run_trials_equals_train_bitwise(shortcut, opt, source, dtype):
    if source == "population" and dtype == np.float32:
        pytest.skip("the population gradient is float64 only")
    model = sn.Model(8, 4, shortcut=shortcut)
    w_star, a_star, w0, a0 = problem(model, 3, size=5)
    kw = source_kwargs(source, dtype)
    seed = None if source == "population" else 17
    out = sn.run_trials(model, w_star, a_star, w0, a0, steps=120, optimizer=OPTIMIZERS[opt], seed=seed, **kw)
    for b in range(5):
        trial_seed = None if seed is None else sn.trial_seed(seed, b)
        res = sn.train(model, w_star[b], a_star[b], w0[b], a0[b], steps=120, optimizer=OPTIMIZERS[opt],
                       seed=trial_seed, record_every=7, **kw)
        assert (res.outcome, res.steps, res.steps_to_tol) == (out.outcome[b], out.steps[b], out.steps_to_tol[b])
        assert np.array_equal(res.w, out.w[b]) and np.array_equal(res.a, out.a[b])
        assert res.loss == out.loss[b] and res.phi == out.phi[b]
        if source == "population":
            assert out.train_loss is None and res.train_loss is None and "train_loss" not in res.history
        else:
            assert res.train_loss == out.train_loss[b] and res.seed == out.seeds[b]
            assert res.history["train_loss"][-1] == res.train_loss


def test_seed_array_names_each_trial():
    model = sn.Model(6, 3)
    w_star, a_star, w0, a0 = problem(model, 4, size=4)
    kw = dict(steps=60, lr=0.1, gradient="sampled", batch_size=16)
    by_int = sn.run_trials(model, w_star, a_star, w0, a0, seed=5, **kw)
    by_array = sn.run_trials(model, w_star, a_star, w0, a0, seed=np.asarray(seeds.trial_seed(5, np.arange(4))), **kw)
    reordered = sn.run_trials(model, w_star[::-1], a_star[::-1], w0[::-1], a0[::-1], seed=by_int.seeds[::-1].copy(),
                              **kw)
    assert np.array_equal(by_int.seeds, by_array.seeds)
    assert np.array_equal(by_int.w, by_array.w)
    assert np.array_equal(by_int.w, reordered.w[::-1])


@pytest.mark.parametrize("source", list(SOURCES))
def test_thread_count_does_not_change_results(source):
    model = sn.Model(10, 5, shortcut=False)
    w_star, a_star, w0, a0 = problem(model, 9, size=13)
    seed = None if source == "population" else 2
    runs = [sn.run_trials(model, w_star, a_star, w0, a0, steps=150, optimizer=OPTIMIZERS["adam"], seed=seed,
                          threads=t, **source_kwargs(source, np.float32)) for t in (1, 2, 3)]
    for other in runs[1:]:
        for field in ("outcome_code", "phi", "loss", "steps_to_tol", "steps", "w", "a"):
            assert np.array_equal(getattr(runs[0], field), getattr(other, field)), field
        if source != "population":
            assert np.array_equal(runs[0].train_loss, other.train_loss)


@pytest.mark.parametrize("source", ["sampled", "empirical"])
def test_one_trial_gives_the_same_bits_on_any_number_of_threads(source):
    # One trial uses the threads inside each step's sums (blocks of 256 samples, fixed order).
    model = sn.Model(8, 4)
    w_star, a_star, w0, a0 = problem(model, 1)
    kw = dict(steps=5, lr=0.1, gradient=source, seed=3)
    kw.update(batch_size=3000) if source == "sampled" else kw.update(n_train=3000)
    one, two = (sn.train(model, w_star, a_star, w0, a0, threads=t, **kw) for t in (1, 2))
    assert np.array_equal(one.w, two.w) and np.array_equal(one.a, two.a) and one.train_loss == two.train_loss


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd_step_is_the_fused_kernel_on_the_step_seed(dtype):
    model = sn.Model(8, 4)
    w_star, a_star, w0, a0 = problem(model, 2)
    res = sn.train(model, w_star, a_star, w0, a0, steps=2, lr=(0.1, 0.2), gradient="sampled", batch_size=32, seed=9,
                   dtype=dtype)
    w, a = w0, a0
    for t in range(2):
        loss, grad_w, grad_a = sn.stochastic_loss_grad(model, w, a, w_star, a_star, 32, seeds.step_seed(9, t),
                                                       dtype=dtype, backend="cpp")
        assert res.history["train_loss"][t] == loss
        w, a = w - 0.1 * grad_w, a - 0.2 * grad_a
    assert np.array_equal(res.w, w) and np.array_equal(res.a, a)
    assert res.history["loss"][0] == sn.population_loss(model, w0, a0, w_star, a_star, backend="cpp")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size", [None, 64, 100])
def test_empirical_steps_are_the_materialized_kernel_on_the_training_set(dtype, batch_size):
    model = sn.Model(8, 4, shortcut=False)
    w_star, a_star, w0, a0 = problem(model, 5)
    n_train, steps, seed = 300, 9, 21
    res = sn.train(model, w_star, a_star, w0, a0, steps=steps, lr=0.1, gradient="empirical", n_train=n_train,
                   batch_size=batch_size, seed=seed, dtype=dtype, tol=0.0)
    Z = sn.sample_inputs(model, n_train, seed, dtype=dtype)
    y = sn.teacher_labels(model, w_star, a_star, Z)
    w, a = w0, a0
    per_epoch = 1 if batch_size is None else -(-n_train // batch_size)
    for t in range(steps):
        if batch_size is None:
            rows = np.arange(n_train)
        else:
            order = seeds.epoch_order(seed, t // per_epoch, n_train)
            j = t % per_epoch
            rows = order[j * batch_size:(j + 1) * batch_size]
        loss, grad_w, grad_a = sn.sampled_loss_grad(model, w, a, Z[rows], y[rows], backend="cpp")
        assert res.history["train_loss"][t] == loss
        w, a = w - 0.1 * grad_w, a - 0.1 * grad_a
    assert np.array_equal(res.w, w) and np.array_equal(res.a, a)


@pytest.mark.parametrize("opt", ["momentum", "nesterov", "adam"])
@pytest.mark.parametrize("model", [sn.Model(9, 4), sn.Model(9, 4, normalize=False), sn.Model(6, 4, stride=2)],
                         ids=["normalized", "unnormalized", "overlapping"])
def test_population_training_follows_the_update_rule(model, opt):
    """train(optimizer=...) against a plain loop of the rule over sn.population_grad."""
    w_star, a_star, w0, a0 = problem(model, 6)
    if not model.normalize:
        w_star, a_star = 0.5 * w_star, 0.5 * a_star
    optimizer = OPTIMIZERS[opt]
    res = sn.train(model, w_star, a_star, w0, a0, steps=80, optimizer=optimizer, tol=0.0)
    w, a = w0.copy(), a0.copy()
    kind, beta, nesterov, beta1, beta2, eps = optimizer.engine_spec()
    state = [np.zeros_like(w), np.zeros_like(a), np.zeros_like(w), np.zeros_like(a)]
    p1 = p2 = 1.0
    for t in range(80):
        lrs = optimizer.lr(t)
        grads = sn.population_grad(model, w, a, w_star, a_star)
        new = []
        if kind == "adam":
            p1, p2 = beta1 * p1, beta2 * p2
        for i, (x, g, lr) in enumerate(zip((w, a), grads, lrs)):
            if kind == "momentum":
                state[i] = g if t == 0 else beta * state[i] + g
                new.append(x - lr * (g + beta * state[i] if nesterov else state[i]))
            else:
                state[i] = beta1 * state[i] + (1 - beta1) * g
                state[i + 2] = beta2 * state[i + 2] + (1 - beta2) * g * g
                m_hat, v_hat = state[i] / (1 - p1), state[i + 2] / (1 - p2)
                new.append(x - lr * m_hat / (np.sqrt(v_hat) + eps))
        w, a = new
    np.testing.assert_allclose(res.w, w, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(res.a, a, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("gradient", ["sampled", "empirical"])
def test_stochastic_steps_approach_the_population_step(gradient):
    """One step from the same start over R seeds: the step's deviation from population GD has mean 0
    and a variance proportional to 1/n (the gradient is a mean of n independent terms).  Both are
    checked against their sampling error; nothing else is assumed."""
    model = sn.Model(6, 4)
    w_star, a_star, w0, a0 = problem(model, 8)
    R, lr = 400, 0.5
    exact = sn.train(model, w_star, a_star, w0, a0, steps=1, lr=lr, tol=0.0)
    base = np.concatenate([exact.w, exact.a])
    spread = {}
    for n in (64, 1024):
        size = dict(batch_size=n) if gradient == "sampled" else dict(n_train=n)
        out = sn.run_trials(model, w_star, a_star, np.tile(w0, (R, 1)), np.tile(a0, (R, 1)), steps=1, lr=lr,
                            gradient=gradient, seed=n, tol=0.0, **size)
        dev = np.concatenate([out.w, out.a], axis=1) - base
        se = dev.std(axis=0, ddof=1) / np.sqrt(R)
        assert np.all(np.abs(dev.mean(axis=0)) <= 5 * se + 1e-300), (n, dev.mean(axis=0) / se)
        sq = (dev ** 2).sum(axis=1)
        spread[n] = (sq.mean(), sq.std(ddof=1) / np.sqrt(R))
    (m1, s1), (m2, s2) = spread[64], spread[1024]
    ratio = m1 / m2
    ratio_se = ratio * np.hypot(s1 / m1, s2 / m2)
    assert abs(ratio - 16.0) <= 5 * ratio_se, (ratio, ratio_se)


def test_training_loss_of_the_teacher_is_zero():
    # The teacher is realizable: at (w*, a*) every sample's residual vanishes.
    model = sn.Model(6, 3)
    w_star, a_star, _, _ = problem(model, 1)
    for kw in (dict(gradient="sampled", batch_size=50), dict(gradient="empirical", n_train=80)):
        res = sn.train(model, w_star, a_star, w_star, a_star, steps=3, lr=0.1, seed=1, tol=0.0, **kw)
        assert res.train_loss == 0.0 and np.array_equal(res.w, w_star)
