"""The training engine (docs/training.md) on the NumPy and Numba backends: ``run_engine`` for every
gradient source x optimizer x batch dtype against a per-trial loop over the public kernels, the two
backends against each other, thread-count invariance, the epochs of mini-batches, the history,
torch.optim as the optimizers' oracle, and the old population-GD engines."""
import functools
import math

import numpy as np
import pytest

import seeds_spec


import shortcutnet as sn  # noqa: E402
from shortcutnet.backends import get as get_backend  # noqa: E402
from ctrl_c import CtrlC  # noqa: E402
from train_problems import available, problem  # noqa: E402

ENGINE_BACKENDS = ("numba", "numpy")
THRESHOLDS = sn.Thresholds()
MODEL = sn.Model(5, 4, shortcut=True)
B = 2
STEPS = 80
TOL = 1e-10
# Per-layer rates changing twice; the table is shorter than the run, so its last row repeats.
SCHEDULE = sn.piecewise([25, 50], [(0.1, 0.15), (0.06, 0.09), (0.03, 0.05)])
ADAM_RATE_SCALE = 0.2

OPTIMIZERS = {  # (kind, beta, nesterov, beta1, beta2, eps), as the engines take them
    "gd": ("gd", 0.9, False, 0.9, 0.999, 1e-8),
    "momentum": ("momentum", 0.9, False, 0.9, 0.999, 1e-8),
    "nesterov": ("momentum", 0.8, True, 0.9, 0.999, 1e-8),
    "adam": ("adam", 0.9, False, 0.85, 0.99, 1e-8),
}
SOURCES = {  # (gradient, batch_size, n_train); n_train = 40 in batches of 9: the fifth batch has 4 rows
    "population": ("population", 0, 0),
    "sampled": ("sampled", 24, 0),
    "full-batch": ("empirical", 0, 40),
    "mini-batch": ("empirical", 9, 40),
}
DTYPES = {"float64": np.float64, "float32": np.float32}
CASES = [(opt, src, dt) for opt in OPTIMIZERS for src in SOURCES for dt in DTYPES
         if not (src == "population" and dt == "float32")]  # the population gradient has no batch dtype

# float64: different summation orders of the same sums.  float32 batches: a backend may round an
# input or a label to the other neighbouring float32 (their float64 values differ by rounding),
# which moves that sample's share of a step's gradient by 2^-24 relative; summed over the run's
# steps this stays below 1e-6 of the parameters' scale, and 1e-5 leaves a margin.
RTOL = {"float64": 1e-12, "float32": 1e-5}
# The population loss is a sum of O(1) terms that cancel near the optimum: its rounding is
# absolute, a few hundred ulps of 1.
LOSS_ATOL = 1e-13


def engine(backend):
    if not available(backend):
        pytest.skip(f"backend {backend!r} is not available here")
    return get_backend(backend).run_engine


def rates_for(opt_name, steps=STEPS):
    rates = SCHEDULE.table(steps)
    return rates * ADAM_RATE_SCALE if OPTIMIZERS[opt_name][0] == "adam" else rates


def trial_seeds(seed, size):
    return np.array([seeds_spec.trial_seed(seed, b) for b in range(size)], dtype=np.uint64)


def teachers(model, seed, size):
    w_star, a_star, w0, a0 = problem(model, seed, size=size)
    return tuple(np.ascontiguousarray(x, dtype=np.float64) for x in (w0, a0, w_star, a_star))


def run(backend, opt_name, src_name, dt_name, *, model=MODEL, size=B, steps=STEPS, rates=None, record_every=0,
        threads=None, seed=11, thresholds=THRESHOLDS):
    w0, a0, w_star, a_star = teachers(model, seed, size)
    gradient, batch_size, n_train = SOURCES[src_name]
    seeds = trial_seeds(seed, size) if gradient != "population" else np.zeros(size, dtype=np.uint64)
    rates = rates_for(opt_name, steps) if rates is None else rates
    return engine(backend)(model.s, model.stride, model.normalize, w0, a0, w_star, a_star, rates, steps, TOL,
                           thresholds.as_tuple(), OPTIMIZERS[opt_name], gradient, batch_size, n_train, seeds,
                           DTYPES[dt_name], record_every, threads)


@functools.lru_cache(maxsize=None)
def reference_run(opt_name, src_name, dt_name):
    return run("numpy", opt_name, src_name, dt_name)


# --------------------------------------------------------------------------- the oracle: one trial, public kernels
def loop_trial(model, w0, a0, w_star, a_star, rates, steps, opt, gradient, batch_size, n_train, sigma, dtype,
               record_every=0):
    """docs/training.md section 4 for one trial, with the public kernels and section 3 written per layer."""
    kind, beta, nesterov, beta1, beta2, eps = opt
    s = model.s
    w, a = w0.copy(), a0.copy()
    first = {"w": np.zeros_like(w), "a": np.zeros_like(a)}
    second = {"w": np.zeros_like(w), "a": np.zeros_like(a)}
    powers = [1.0, 1.0]
    if gradient == "empirical":
        Z = sn.sample_inputs(model, n_train, sigma, dtype=dtype, backend="numpy")
        y = sn.teacher_labels(model, w_star, a_star, Z, backend="numpy")
    rows, steps_to_tol, t = [], -1, 0

    def record(t, loss, train_loss):
        rows.append((t, loss, sn.angle(w + s, w_star + s, backend="numpy"), a @ a_star, np.linalg.norm(a - a_star),
                     np.linalg.norm(w), train_loss))

    def update(name, x, g, lr):
        if kind == "gd":
            return x - lr * g
        if kind == "momentum":
            first[name] = g.copy() if t == 0 else beta * first[name] + g
            return x - lr * (g + beta * first[name] if nesterov else first[name])
        first[name] = beta1 * first[name] + (1 - beta1) * g
        second[name] = beta2 * second[name] + (1 - beta2) * (g * g)
        c1, r2 = 1 - powers[0], 1 / math.sqrt(1 - powers[1])
        return x - (lr / c1) * (first[name] / (np.sqrt(second[name]) * r2 + eps))

    while True:
        loss = sn.population_loss(model, w, a, w_star, a_star, backend="numpy")
        train_loss = math.nan
        if gradient == "population":
            grad_w, grad_a = sn.population_grad(model, w, a, w_star, a_star, backend="numpy")
        elif gradient == "sampled":
            train_loss, grad_w, grad_a = sn.stochastic_loss_grad(model, w, a, w_star, a_star, batch_size,
                                                                 seeds_spec.step_seed(sigma, t), dtype=dtype,
                                                                 backend="numpy")
        elif batch_size == 0:
            train_loss, grad_w, grad_a = sn.sampled_loss_grad(model, w, a, Z, y, backend="numpy")
        else:
            n_batches = math.ceil(n_train / batch_size)
            epoch, j = divmod(t, n_batches)
            batch = seeds_spec.epoch_order(sigma, epoch, n_train)[j * batch_size: (j + 1) * batch_size]
            train_loss, grad_w, grad_a = sn.sampled_loss_grad(model, w, a, Z[batch], y[batch], backend="numpy")
        last_train_loss = train_loss
        diverged = not (loss <= THRESHOLDS.divergence)
        converged = not diverged and loss <= TOL
        if converged:
            steps_to_tol = t
        done = diverged or converged or t == steps
        if record_every and (done or t % record_every == 0):
            record(t, loss, train_loss)
        if done:
            break
        lr_w, lr_a = rates[min(t, len(rates) - 1)]
        if kind == "adam":
            powers = [beta1 * powers[0], beta2 * powers[1]]
        w, a = update("w", w, grad_w, lr_w), update("a", a, grad_a, lr_a)
        t += 1
        assert w @ w <= THRESHOLDS.divergence**2 and a @ a <= THRESHOLDS.divergence**2  # these runs stay bounded
    return dict(w=w, a=a, loss=loss, steps=t, steps_to_tol=steps_to_tol, train_loss=last_train_loss,
                phi=sn.angle(w + s, w_star + s, backend="numpy"), history=np.array(rows))


def assert_train_loss(got, want, rtol):
    """A training loss (1/2n) sum r_i^2 with r = f - y, f and y of order one: the rounding of r is
    absolute (a few ulps of 1), so that of the loss is about sqrt(2 loss) times it."""
    want = np.asarray(want, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_array_less(np.abs(got[ok] - want[ok]), rtol * want[ok] + 1e-14 * np.sqrt(2 * want[ok]) + 1e-300)


def assert_close(name, got, want, rtol):
    want = np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("opt_name, src_name, dt_name", CASES)
def test_reference_engine_follows_the_loop_over_public_kernels(opt_name, src_name, dt_name):
    code, phi, loss, steps_to_tol, steps, w, a, train_loss, history = reference_run(opt_name, src_name, dt_name)
    w0, a0, w_star, a_star = teachers(MODEL, 11, B)
    gradient, batch_size, n_train = SOURCES[src_name]
    sigmas = trial_seeds(11, B)
    for b in range(B):
        want = loop_trial(MODEL, w0[b], a0[b], w_star[b], a_star[b], rates_for(opt_name), STEPS, OPTIMIZERS[opt_name],
                          gradient, batch_size, n_train, int(sigmas[b]), DTYPES[dt_name])
        assert (steps[b], steps_to_tol[b]) == (want["steps"], want["steps_to_tol"])
        # The stochastic sources call the same kernels with the same arguments; the population
        # closed forms differ from the vectorized ones by rounding.
        assert_close("w", w[b], want["w"], 1e-12)
        assert_close("a", a[b], want["a"], 1e-12)
        assert_close("phi", phi[b], want["phi"], 1e-12)
        np.testing.assert_allclose(loss[b], want["loss"], rtol=1e-9, atol=LOSS_ATOL)
        assert_train_loss(train_loss[b:b + 1], [want["train_loss"]], 1e-12)
        assert code[b] == sn.outcomes.classify(MODEL, w[b][None], a[b][None], w_star[b][None], a_star[b][None],
                                               np.array([loss[b]]), np.array([phi[b]]), THRESHOLDS)[0]
    assert history is None
    assert code.dtype == np.int8 and steps.dtype == np.int64 and steps_to_tol.dtype == np.int64


@pytest.mark.parametrize("opt_name, src_name, dt_name", CASES)
def test_numba_engine_equals_the_reference(opt_name, src_name, dt_name):
    got = run("numba", opt_name, src_name, dt_name)
    want = reference_run(opt_name, src_name, dt_name)
    code, phi, loss, steps_to_tol, steps, w, a, train_loss, history = got
    rtol = RTOL[dt_name]
    np.testing.assert_array_equal(code, want[0])
    np.testing.assert_array_equal(steps_to_tol, want[3])
    np.testing.assert_array_equal(steps, want[4])
    assert_close("phi", phi, want[1], rtol)
    np.testing.assert_allclose(loss, want[2], rtol=1e-9, atol=LOSS_ATOL if dt_name == "float64" else rtol)
    assert_close("w", w, want[5], rtol)
    assert_close("a", a, want[6], rtol)
    assert_train_loss(train_loss, want[7], rtol)
    assert history is None
    assert code.dtype == np.int8 and steps.dtype == np.int64 and w.shape == (B, MODEL.p) and a.shape == (B, MODEL.k)


@pytest.mark.parametrize("model", [sn.Model(4, 6, shortcut=False, normalize=False), sn.Model(4, 5, stride=3)],
                         ids=["cnn-unnormalized", "overlapping"])
@pytest.mark.parametrize("src_name", ["population", "sampled", "mini-batch"])
def test_backends_agree_on_other_models(model, src_name):
    engine("numba")
    rates = np.array([[0.02, 0.03]]) if not model.normalize else None
    outs = [run(b, "nesterov", src_name, "float64", model=model, rates=rates, steps=60) for b in ENGINE_BACKENDS]
    for i in (0, 3, 4):
        np.testing.assert_array_equal(outs[0][i], outs[1][i])
    for i in (1, 5, 6):
        assert_close(str(i), outs[0][i], outs[1][i], 1e-11)
    np.testing.assert_allclose(outs[0][2], outs[1][2], rtol=1e-9, atol=LOSS_ATOL)
    assert_train_loss(outs[0][7], outs[1][7], 1e-11)


@pytest.mark.parametrize("src_name, dt_name", [("population", "float64"), ("sampled", "float32"),
                                               ("full-batch", "float64"), ("mini-batch", "float32")])
def test_numba_results_do_not_depend_on_the_thread_count(src_name, dt_name):
    engine("numba")
    one, two, three = (run("numba", "adam", src_name, dt_name, size=7, steps=40, threads=t) for t in (1, 2, 3))
    for other in (two, three):
        for i in range(8):
            np.testing.assert_array_equal(one[i], other[i], err_msg=str(i))


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
@pytest.mark.parametrize("dt_name", DTYPES)
def test_empirical_full_batch_step_zero_is_one_gd_step_on_the_training_set(backend, dt_name):
    steps_run = 1
    code, phi, loss, _, steps, w, a, train_loss, history = run(backend, "gd", "full-batch", dt_name, size=1,
                                                               steps=steps_run, record_every=1)
    w0, a0, w_star, a_star = teachers(MODEL, 11, 1)
    sigma = int(trial_seeds(11, 1)[0])
    Z = sn.sample_inputs(MODEL, 40, sigma, dtype=DTYPES[dt_name], backend=backend)
    y = sn.teacher_labels(MODEL, w_star[0], a_star[0], Z, backend=backend)
    train0, grad_w, grad_a = sn.sampled_loss_grad(MODEL, w0[0], a0[0], Z, y, backend=backend)
    lr_w, lr_a = rates_for("gd")[0]
    assert steps[0] == 1
    # The engine's step is this kernel call and this update, to the last bit.
    np.testing.assert_array_equal(w[0], w0[0] - lr_w * grad_w)
    np.testing.assert_array_equal(a[0], a0[0] - lr_a * grad_a)
    assert history[0, 6] == train0
    assert train_loss[0] == sn.sampled_loss_grad(MODEL, w[0], a[0], Z, y, backend=backend)[0]  # the last step's


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
def test_mini_batches_visit_every_training_sample_once_per_epoch(backend):
    """With zero rates the parameters stay put, so a step's training loss is the mean loss of its
    batch: the batches of an epoch, weighted by their sizes, give the full-batch loss exactly when
    they partition the training set; and each epoch draws another partition."""
    n_train, m = 40, 9
    n_batches = math.ceil(n_train / m)
    epochs = 3
    steps_run = epochs * n_batches
    zero = np.zeros((1, 2))
    mini = run(backend, "gd", "mini-batch", "float64", size=1, steps=steps_run, rates=zero, record_every=1)
    full = run(backend, "gd", "full-batch", "float64", size=1, steps=1, rates=zero, record_every=1)
    per_step = mini[8][:steps_run, 6]
    sizes = np.array([m] * (n_batches - 1) + [n_train - m * (n_batches - 1)], dtype=np.float64)
    for e in range(epochs):
        batches = per_step[e * n_batches: (e + 1) * n_batches]
        np.testing.assert_allclose((sizes * batches).sum() / n_train, full[8][0, 6], rtol=1e-13)
    assert not np.array_equal(per_step[:n_batches], per_step[n_batches: 2 * n_batches])
    # A training sample's loss, summed over the epochs' batches: each sample is counted once per epoch.
    w0, a0, w_star, a_star = teachers(MODEL, 11, 1)
    sigma = int(trial_seeds(11, 1)[0])
    Z = sn.sample_inputs(MODEL, n_train, sigma, backend="numpy")
    y = sn.teacher_labels(MODEL, w_star[0], a_star[0], Z, backend="numpy")
    for e in range(epochs):
        order = seeds_spec.epoch_order(sigma, e, n_train)
        assert sorted(order.tolist()) == list(range(n_train))
        for j in range(n_batches):
            rows = order[j * m: (j + 1) * m]
            want = sn.sampled_loss_grad(MODEL, w0[0], a0[0], Z[rows], y[rows], backend="numpy")[0]
            np.testing.assert_allclose(per_step[e * n_batches + j], want, rtol=1e-13)


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
@pytest.mark.parametrize("src_name", ["population", "sampled", "mini-batch"])
def test_history_columns_and_training_loss(backend, src_name):
    every = 7
    code, phi, loss, steps_to_tol, steps, w, a, train_loss, history = run(backend, "momentum", src_name, "float64",
                                                                          size=1, record_every=every)
    n = int(steps[0])
    expected_steps = sorted(set(range(0, n + 1, every)) | {n})
    assert history.dtype == np.float64 and history.shape == (len(expected_steps), 7)
    np.testing.assert_array_equal(history[:, 0], expected_steps)
    w0, a0, w_star, a_star = teachers(MODEL, 11, 1)
    last = history[-1]
    assert last[1] == loss[0] and last[2] == phi[0]
    np.testing.assert_allclose(last[3], a[0] @ a_star[0], rtol=1e-14)
    np.testing.assert_allclose(last[4], np.linalg.norm(a[0] - a_star[0]), rtol=1e-14)
    np.testing.assert_allclose(last[5], np.linalg.norm(w[0]), rtol=1e-14)
    np.testing.assert_allclose(history[0, 1], sn.population_loss(MODEL, w0[0], a0[0], w_star[0], a_star[0]), rtol=1e-12)
    if src_name == "population":
        assert np.all(np.isnan(history[:, 6])) and np.isnan(train_loss[0])
    else:
        assert np.all(np.isfinite(history[:, 6]) & (history[:, 6] >= 0)) and last[6] == train_loss[0]
    gradient, batch_size, n_train = SOURCES[src_name]
    want = loop_trial(MODEL, w0[0], a0[0], w_star[0], a_star[0], rates_for("momentum"), STEPS,
                      OPTIMIZERS["momentum"], gradient, batch_size, n_train, int(trial_seeds(11, 1)[0]), np.float64,
                      record_every=every)["history"]
    assert want.shape == history.shape
    np.testing.assert_allclose(history[:, 1], want[:, 1], rtol=1e-9, atol=LOSS_ATOL)
    np.testing.assert_allclose(history[:, [0, 2, 3, 4, 5]], want[:, [0, 2, 3, 4, 5]], rtol=0, atol=1e-11)
    assert_train_loss(history[:, 6], want[:, 6], 1e-11)


@pytest.mark.parametrize("src_name", ["population", "sampled"])
def test_a_run_away_filter_stops_the_trial_with_a_last_record(src_name):
    """|w| above the divergence threshold ends the run right after the update (section 4): the
    normalized loss ignores |w|, which large rates inflate."""
    th = sn.Thresholds(divergence=3.0)
    rates = np.array([[400.0, 0.01]])
    outs = {b: run(b, "gd", src_name, "float64", size=1, steps=50, rates=rates, record_every=1, thresholds=th)
            for b in ENGINE_BACKENDS if available(b)}
    for code, phi, loss, _, steps, w, a, train_loss, history in outs.values():
        n = int(steps[0])
        assert 1 <= n < 50 and code[0] == sn.outcomes.DIVERGED
        assert np.linalg.norm(w[0]) > 3.0 and loss[0] <= 3.0
        np.testing.assert_array_equal(history[:, 0], np.arange(n + 1))
        assert np.isnan(history[-1, 6]) and history[-1, 1] == loss[0]
        w0, a0, w_star, a_star = teachers(MODEL, 11, 1)
        np.testing.assert_allclose(loss[0], sn.population_loss(MODEL, w[0], a[0], w_star[0], a_star[0]),
                                   rtol=1e-12, atol=LOSS_ATOL)
        if src_name == "sampled":  # the last training loss is the one of the last step evaluated
            assert train_loss[0] == history[-2, 6]
    if len(outs) == 2:
        first, second = outs.values()
        np.testing.assert_array_equal(first[4], second[4])
        assert_close("history", first[8], second[8], 1e-12)


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
@pytest.mark.parametrize("opt_name", ["momentum", "nesterov", "adam"])
def test_optimizers_follow_torch_optim(backend, opt_name):
    torch = pytest.importorskip("torch", reason="PyTorch (the optimizers' oracle) is not installed")
    steps_run = 40
    rates = rates_for(opt_name, steps_run)
    out = run(backend, opt_name, "population", "float64", size=1, steps=steps_run)
    w0, a0, w_star, a_star = teachers(MODEL, 11, 1)
    w = torch.tensor(w0[0], requires_grad=True)
    a = torch.tensor(a0[0], requires_grad=True)
    kind, beta, nesterov, beta1, beta2, eps = OPTIMIZERS[opt_name]
    groups = [{"params": [w], "lr": rates[0, 0]}, {"params": [a], "lr": rates[0, 1]}]
    if kind == "momentum":
        opt = torch.optim.SGD(groups, lr=rates[0, 0], momentum=beta, nesterov=nesterov, dampening=0.0)
    else:
        opt = torch.optim.Adam(groups, lr=rates[0, 0], betas=(beta1, beta2), eps=eps)
    for t in range(steps_run):
        grad_w, grad_a = sn.population_grad(MODEL, w.detach().numpy(), a.detach().numpy(), w_star[0], a_star[0])
        w.grad, a.grad = torch.from_numpy(grad_w), torch.from_numpy(grad_a)
        row = rates[min(t, len(rates) - 1)]
        opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = float(row[0]), float(row[1])
        opt.step()
    assert out[4][0] == steps_run
    # torch rounds its own way (lerp, addcdiv); over 40 steps rounding stays far below 1e-10.
    assert_close("w", out[5][0], w.detach().numpy(), 1e-10)
    assert_close("a", out[6][0], a.detach().numpy(), 1e-10)


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
def test_bad_engine_arguments_are_named(backend):
    w0, a0, w_star, a_star = teachers(MODEL, 11, 2)
    args = [MODEL.s, MODEL.stride, MODEL.normalize, w0, a0, w_star, a_star, rates_for("gd"), 10, TOL,
            THRESHOLDS.as_tuple(), OPTIMIZERS["gd"], "population", 0, 0, np.zeros(2, dtype=np.uint64), np.float64, 0,
            None]
    for index, value, name in ((11, ("sgd", 0.9, False, 0.9, 0.999, 1e-8), "optimizer"), (12, "exact", "gradient"),
                               (17, 5, "record_every"), (16, np.int32, "dtype")):
        bad = list(args)
        bad[index] = value
        if name == "dtype":
            bad[12:15] = ["sampled", 8, 0]
        with pytest.raises(ValueError, match=name):
            engine(backend)(*bad)


def test_numba_seed_words_follow_the_specification():
    numba_engine = pytest.importorskip("shortcutnet.backends.numba_engine")
    for seed in (0, 1, 2**64 - 1, 0x0123456789ABCDEF):
        for t in (0, 1, 2**32 - 1, 2**32 + 5, 2**62 + 3):
            assert int(numba_engine.step_seed(np.uint64(seed), t)) == seeds_spec.step_seed(seed, t)
        for e in (0, 7, 2**32 + 1, 2**47 + 2**32 * 3):
            keys = numba_engine.epoch_keys(np.uint64(seed), e, 9)
            np.testing.assert_array_equal(keys, seeds_spec.epoch_keys(seed, e, 9))
            np.testing.assert_array_equal(numba_engine.epoch_order(np.uint64(seed), e, 9),
                                          seeds_spec.epoch_order(seed, e, 9))


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
@pytest.mark.parametrize("src_name", ["sampled", "mini-batch"])
def test_chunks_and_waves_do_not_change_results(backend, src_name, monkeypatch):
    """One step per chunk (and, for Numba, training sets in waves of one trial per thread) keeps
    every trial's state across the pauses: optimizer moments, epoch order, history."""
    engine(backend)
    kw = dict(steps=30, threads=2)
    whole = [run(backend, "adam", src_name, "float64", size=5, **kw),
             run(backend, "adam", src_name, "float64", size=1, record_every=4, **kw)]
    if backend == "numba":
        from shortcutnet.backends import numba_engine as module

        monkeypatch.setattr(module, "WORK_PER_CHUNK", 1)
        monkeypatch.setattr(module, "TRAINING_SET_BYTES", 1)
    else:
        from shortcutnet.backends import reference_engine as module

        monkeypatch.setattr(module, "TRIAL_STEPS_PER_CHUNK", 1)
    pieces = [run(backend, "adam", src_name, "float64", size=5, **kw),
              run(backend, "adam", src_name, "float64", size=1, record_every=4, **kw)]
    for one, other in zip(whole, pieces):
        for i in range(9):
            np.testing.assert_array_equal(one[i], other[i], err_msg=str(i))


@pytest.mark.parametrize("backend", ENGINE_BACKENDS)
def test_ctrl_c_stops_a_long_stochastic_run(backend):
    model = sn.Model(20, 10, shortcut=False)
    w0, a0, w_star, a_star = teachers(model, 1, 100)
    seeds = trial_seeds(1, 100)
    args = [model.s, model.stride, model.normalize, w0, a0, w_star, a_star, np.array([[1e-7, 1e-7]]), 2, 0.0,
            THRESHOLDS.as_tuple(), OPTIMIZERS["momentum"], "sampled", 256, 0, seeds, np.float64, 0, None]
    engine(backend)(*args)  # compiled before timing
    args[8] = 100_000  # tol 0 and tiny rates: nothing stops early; uninterrupted this takes many minutes
    with CtrlC(after=0.3) as ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            engine(backend)(*args)
    assert ctrl_c.latency < 1.0
