"""Optimizers against their oracles: torch.optim, the spec's expressions on scalars (bit for bit),
and the textbook bias-corrected form of Adam (docs/training.md section 3)."""
import math

import numpy as np
import pytest

import shortcutnet as sn

STEPS = 200
K, P = 4, 6

# (name, our optimizer from lr, torch optimizer from (param groups, lr of group 0)).
CONFIGS = {
    "gd": (lambda lr: sn.optim.gd(lr), lambda torch, groups: torch.optim.SGD(groups, lr=0.0)),
    "momentum": (
        lambda lr: sn.optim.momentum(lr, beta=0.9),
        lambda torch, groups: torch.optim.SGD(groups, lr=0.0, momentum=0.9, dampening=0.0, foreach=False),
    ),
    "nesterov": (
        lambda lr: sn.optim.momentum(lr, beta=0.6, nesterov=True),
        lambda torch, groups: torch.optim.SGD(groups, lr=0.0, momentum=0.6, dampening=0.0, nesterov=True,
                                              foreach=False),
    ),
    "adam": (
        lambda lr: sn.optim.adam(lr),
        lambda torch, groups: torch.optim.Adam(groups, lr=0.0, foreach=False),
    ),
    "adam-options": (
        lambda lr: sn.optim.adam(lr, beta1=0.5, beta2=0.99, eps=1e-3),
        lambda torch, groups: torch.optim.Adam(groups, lr=0.0, betas=(0.5, 0.99), eps=1e-3, foreach=False),
    ),
}

RATES = {
    "number": 0.03,
    "per-layer": (0.03, 0.007),
    "piecewise": sn.piecewise([40, 120], [(0.05, 0.01), 0.02, (0.001, 0.03)]),
    "callable": lambda t: (0.04 / (1.0 + 0.05 * t), 0.01),
}


def gradient_sequence(rng, steps=STEPS):
    """Gradients whose scale changes from step to step (so that Adam's normalization matters),
    with exact zeros now and then."""
    scale = np.exp(rng.uniform(-3.0, 3.0, size=(steps, 1)))
    g_w = rng.normal(size=(steps, P)) * scale
    g_a = rng.normal(size=(steps, K)) * scale
    g_w[rng.random(g_w.shape) < 0.05] = 0.0
    g_a[rng.random(g_a.shape) < 0.05] = 0.0
    return g_w, g_a


def run_ours(opt, w0, a0, g_w, g_a):
    """The trajectory (steps + 1, ...) of w and a, parameters updated as x + upd."""
    state = opt.init(w0, a0)
    ws, as_ = [w0], [a0]
    for gw, ga in zip(g_w, g_a):
        upd_w, upd_a, state = opt.update(gw, ga, state)
        ws.append(ws[-1] + upd_w)
        as_.append(as_[-1] + upd_a)
    return np.array(ws), np.array(as_)


# --------------------------------------------------------------------------- torch.optim
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch.optim is the oracle of these tests; install torch to run them")


def run_torch(torch, make, schedule, w0, a0, g_w, g_a):
    tw = torch.tensor(w0, dtype=torch.float64)
    ta = torch.tensor(a0, dtype=torch.float64)
    opt = make(torch, [{"params": [tw]}, {"params": [ta]}])
    ws, as_ = [w0], [a0]
    with torch.no_grad():
        for t, (gw, ga) in enumerate(zip(g_w, g_a)):
            opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = schedule(t)
            tw.grad = torch.tensor(gw, dtype=torch.float64)
            ta.grad = torch.tensor(ga, dtype=torch.float64)
            opt.step()
            ws.append(tw.numpy().copy())
            as_.append(ta.numpy().copy())
    return np.array(ws), np.array(as_)


@pytest.mark.parametrize("rates", list(RATES), ids=list(RATES))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_against_torch_optim(torch, name, rates, rng, measured):
    ours, make_torch = CONFIGS[name]
    opt = ours(RATES[rates])
    w0, a0 = rng.normal(size=P), rng.normal(size=K)
    g_w, g_a = gradient_sequence(rng)
    ws, as_ = run_ours(opt, w0, a0, g_w, g_a)
    tws, tas = run_torch(torch, make_torch, opt.lr, w0, a0, g_w, g_a)
    for mine, theirs in [(ws, tws), (as_, tas)]:
        # Relative to the size of the parameters, step by step.
        scale = np.max(np.abs(theirs), axis=1, keepdims=True)
        err = float(np.max(np.abs(mine - theirs) / scale))
        measured.worst(f"optim vs torch.optim ({name}), relative", err)
        assert err <= 1e-12, f"{name} with {rates} rates: relative difference {err:.3g} from torch.optim"
    # The parameters moved: the comparison is not between two standing still.
    assert np.max(np.abs(ws[-1] - w0)) > 1e-3


# --------------------------------------------------------------------------- the spec, on scalars
def spec_scalar_run(name, schedule, x0, g, layer):
    """docs/training.md section 3 on Python floats, one coordinate at a time: x = x - lr d."""
    x0 = [float(v) for v in x0]
    out = [list(x0)]
    state = [dict(b=0.0, m=0.0, v=0.0) for _ in x0]
    p1 = p2 = 1.0
    for t in range(g.shape[0]):
        lr = schedule(t)[layer]
        x = list(out[-1])
        if name.startswith("adam"):
            beta1, beta2, eps = (0.9, 0.999, 1e-8) if name == "adam" else (0.5, 0.99, 1e-3)
            p1, p2 = beta1 * p1, beta2 * p2
            c1, r2 = 1 - p1, 1 / math.sqrt(1 - p2)
        for i, s in enumerate(state):
            gi = float(g[t, i])
            if name == "gd":
                x[i] = x[i] - lr * gi
            elif name in ("momentum", "nesterov"):
                beta = 0.9 if name == "momentum" else 0.6
                s["b"] = gi if t == 0 else beta * s["b"] + gi
                d = gi + beta * s["b"] if name == "nesterov" else s["b"]
                x[i] = x[i] - lr * d
            else:
                s["m"] = beta1 * s["m"] + (1 - beta1) * gi
                s["v"] = beta2 * s["v"] + (1 - beta2) * (gi * gi)
                x[i] = x[i] - (lr / c1) * (s["m"] / (math.sqrt(s["v"]) * r2 + eps))
        out.append(x)
    return np.array(out)


@pytest.mark.parametrize("rates", ["per-layer", "piecewise"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_bit_for_bit_the_spec(name, rates, rng):
    """The expressions of the spec, evaluated left to right in float64, give the same bits."""
    opt = CONFIGS[name][0](RATES[rates])
    w0, a0 = rng.normal(size=P), rng.normal(size=K)
    g_w, g_a = gradient_sequence(rng, steps=80)
    ws, as_ = run_ours(opt, w0, a0, g_w, g_a)
    np.testing.assert_array_equal(ws, spec_scalar_run(name, opt.lr, w0, g_w, 0))
    np.testing.assert_array_equal(as_, spec_scalar_run(name, opt.lr, a0, g_a, 1))


# --------------------------------------------------------------------------- textbook Adam
@pytest.mark.parametrize("beta1, beta2, eps", [(0.9, 0.999, 1e-8), (0.0, 0.5, 1e-6), (0.99, 0.9999, 1e-12)])
def test_adam_matches_the_textbook_form(beta1, beta2, eps, rng, measured):
    """x = x - lr (m / (1 - beta1^(t+1))) / (sqrt(v / (1 - beta2^(t+1))) + eps), powers by **."""
    lr = (0.02, 0.05)
    g_w, g_a = gradient_sequence(rng)
    w0, a0 = rng.normal(size=P), rng.normal(size=K)
    ws, as_ = run_ours(sn.optim.adam(lr, beta1=beta1, beta2=beta2, eps=eps), w0, a0, g_w, g_a)
    for x0, g, rate, mine in [(w0, g_w, lr[0], ws), (a0, g_a, lr[1], as_)]:
        x, m, v = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
        for t in range(STEPS):
            m = beta1 * m + (1 - beta1) * g[t]
            v = beta2 * v + (1 - beta2) * g[t] ** 2
            m_hat, v_hat = m / (1 - beta1 ** (t + 1)), v / (1 - beta2 ** (t + 1))
            x = x - rate * m_hat / (np.sqrt(v_hat) + eps)
            err = np.max(np.abs(mine[t + 1] - x)) / np.max(np.abs(x))
            measured.worst("optim adam vs textbook form, relative", err)
            assert err <= 1e-12, f"step {t}: relative difference {err:.3g}"


def test_momentum_with_beta_zero_is_gd(rng):
    g_w, g_a = gradient_sequence(rng, steps=30)
    w0, a0 = rng.normal(size=P), rng.normal(size=K)
    plain = run_ours(sn.optim.gd((0.1, 0.03)), w0, a0, g_w, g_a)
    for nesterov in (False, True):
        heavy = run_ours(sn.optim.momentum((0.1, 0.03), beta=0.0, nesterov=nesterov), w0, a0, g_w, g_a)
        np.testing.assert_array_equal(heavy[0], plain[0])
        np.testing.assert_array_equal(heavy[1], plain[1])
