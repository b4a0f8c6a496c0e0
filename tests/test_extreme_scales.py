"""Inputs of any finite scale.  The normalized model depends on w only through the direction of
u = w + s, so every public function must give the same bits when u is multiplied by 2^e, however
small or large 2^e is (|u| from 1e-300 to 1e300), with dL/dw scaling like 1/|u|: powers of two
make every step exact once the code rescales its squares.

The un-normalized model's loss scales like |u|^2 and so over- or underflows beyond |u| ~ 1e+-154;
it is tested only inside that range."""
from __future__ import annotations

import numpy as np
import pytest

import shortcutnet as sn
from configs import draw_parameters
from shortcutnet.train import REDUCED_EXPONENT

# |u| ~ 1e-300, 1e-200, 1e-150, 1e-54, 1e54, 1e150, 1e200, 1e300
EXPONENTS = [-996, -664, -498, -180, 180, 498, 664, 996]
# Within the reduced engine's range (train.REDUCED_EXPONENT), where engine="auto" takes it.
REDUCED_EXPONENTS = [e for e in EXPONENTS if abs(e) < REDUCED_EXPONENT]
# The outcome rule must not call such filters diverged.
WIDE = dict(divergence=1e308)
# Trials that fill every lane of the compiled engine's two runners (their common step runs only
# when no lane is empty).
LANES_FULL = 36


def scaled_model(model, c):
    """The model with its shortcut scaled by c (exactly: a power of two), so that c w + c s = c u."""
    return sn.Model(model.k, model.p, shortcut=c * model.s, normalize=model.normalize, stride=model.stride)


def resnet(k, p, stride=None):
    rng = np.random.default_rng(k * 100 + p)
    return sn.Model(k, p, shortcut=rng.normal(size=p) / np.sqrt(p), stride=stride)


@pytest.mark.parametrize("stride", [None, 1, 2], ids=["stride=p", "stride=1", "stride=2"])
def test_normalized_model_is_exactly_scale_invariant(stride, backend, rng):
    model = sn.Model(4, 3, shortcut=False, stride=stride)
    for _ in range(5):
        w, a, w_star, a_star = draw_parameters(rng, model)
        loss, grad_w, grad_a = sn.population_loss_grad(model, w, a, w_star, a_star, backend=backend)
        for e in EXPONENTS:
            c = 2.0**e
            scaled = sn.population_loss_grad(model, c * w, a, w_star / c, a_star, backend=backend)
            # dL/dw scales like 1/|u|; powers of two make every step exact.
            assert scaled[0] == loss
            np.testing.assert_array_equal(scaled[1] * c, grad_w)
            np.testing.assert_array_equal(scaled[2], grad_a)
            assert sn.population_loss(model, c * w, a, w_star / c, a_star, backend=backend) == loss


@pytest.mark.parametrize("stride", [None, 1, 2], ids=["stride=p", "stride=1", "stride=2"])
def test_unnormalized_model_scales_like_u_squared(stride, backend, rng):
    model = sn.Model(4, 3, shortcut=False, normalize=False, stride=stride)
    w, a, w_star, a_star = draw_parameters(rng, model)
    loss, grad_w, grad_a = sn.population_loss_grad(model, w, a, w_star, a_star, backend=backend)
    for e in (-450, -100, 100, 450):  # |u| ~ 1e+-135
        c = 2.0**e
        scaled = sn.population_loss_grad(model, c * w, a, c * w_star, a_star, backend=backend)
        np.testing.assert_allclose(scaled[0] / c**2, loss, rtol=1e-14)
        np.testing.assert_allclose(scaled[1] / c, grad_w, rtol=1e-14, atol=1e-14 * np.abs(grad_w).max())
        np.testing.assert_allclose(scaled[2] / c**2, grad_a, rtol=1e-14, atol=1e-14 * np.abs(grad_a).max())


def test_angle_is_scale_invariant(backend, rng):
    for p in (1, 3, 17):
        u, v = rng.normal(size=p), rng.normal(size=p)
        phi = sn.angle(u, v, backend=backend)
        for e in EXPONENTS:
            assert sn.angle(2.0**e * u, v, backend=backend) == phi
            assert sn.angle(u, 2.0**-e * v, backend=backend) == phi


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("stride", [None, 2], ids=["stride=p", "stride=2"])
def test_sampled_kernels_are_exactly_scale_invariant(stride, dtype, backend, rng):
    """predict, teacher_labels, sampled_loss_grad and stochastic_loss_grad of the normalized model,
    CNN and ResNet, with the filter and the teacher at every scale."""
    for model in (sn.Model(5, 4, shortcut=False, stride=stride), resnet(5, 4, stride)):
        w, a, w_star, a_star = draw_parameters(rng, model)
        Z = sn.sample_inputs(model, 300, 5, dtype=dtype)
        y = sn.teacher_labels(model, w_star, a_star, Z, backend=backend)
        f = sn.predict(model, w, a, Z, backend=backend)
        loss, grad_w, grad_a = sn.sampled_loss_grad(model, w, a, Z, y, backend=backend)
        fused = sn.stochastic_loss_grad(model, w, a, w_star, a_star, 300, 5, dtype=dtype, backend=backend)
        for e in EXPONENTS:
            c = 2.0**e
            big = scaled_model(model, c)
            np.testing.assert_array_equal(sn.predict(big, c * w, a, Z, backend=backend), f)
            np.testing.assert_array_equal(sn.teacher_labels(big, c * w_star, a_star, Z, backend=backend), y)
            scaled = sn.sampled_loss_grad(big, c * w, a, Z, y, backend=backend)
            assert scaled[0] == loss
            np.testing.assert_array_equal(scaled[1] * c, grad_w)
            np.testing.assert_array_equal(scaled[2], grad_a)
            scaled = sn.stochastic_loss_grad(big, c * w, a, c * w_star, a_star, 300, 5, dtype=dtype, backend=backend)
            assert scaled[0] == fused[0]
            np.testing.assert_array_equal(scaled[1] * c, fused[1])
            np.testing.assert_array_equal(scaled[2], fused[2])


def test_tiny_filter_is_a_direction(backend, rng):
    """|w + s| = 1e-170 is a direction (its squares underflow, its entries do not): accepted, and
    the loss is the one at scale 1."""
    model = sn.Model(6, 4, shortcut=False)
    w, a, w_star, a_star = draw_parameters(rng, model)
    Z = sn.sample_inputs(model, 100, 1)
    y = sn.teacher_labels(model, w_star, a_star, Z)
    c = 2.0**-565
    tiny = c * w
    assert np.linalg.norm(tiny) == 0.0 and np.any(tiny)
    assert sn.sampled_loss_grad(model, tiny, a, Z, y, backend=backend)[0] == sn.sampled_loss_grad(
        model, w, a, Z, y, backend=backend)[0]
    np.testing.assert_array_equal(sn.predict(model, tiny, a, Z, backend=backend), sn.predict(model, w, a, Z, backend=backend))
    assert sn.stochastic_loss_grad(model, tiny, a, c * w_star, a_star, 100, 1, backend=backend)[0] == \
        sn.stochastic_loss_grad(model, w, a, w_star, a_star, 100, 1, backend=backend)[0]
    res = sn.run_trials(model, w_star, a_star, tiny[None], a[None], steps=1, lr=0.0, tol=0.0, backend=backend)
    assert res.loss[0] == sn.population_loss(model, w, a, w_star, a_star, backend=backend)


def _trials(model, rng, batch):
    w_star = rng.normal(size=(batch, model.p)) / np.sqrt(model.p)
    a_star = rng.normal(size=(batch, model.k))
    w0 = rng.normal(size=(batch, model.p)) / np.sqrt(model.p)
    a0 = rng.normal(size=(batch, model.k)) * 0.3
    return w_star, a_star, w0, a0


@pytest.mark.parametrize("engine", ["full", "reduced"])
@pytest.mark.parametrize("make", [lambda: sn.Model(7, 5, shortcut=False), lambda: resnet(7, 5)], ids=["cnn", "resnet"])
def test_engines_are_scale_invariant(make, engine, backend, rng):
    """run_trials and train at every scale of u and u* (the compiled lanes rescale too; the reduced
    engine within its range): the loss of the start exactly; with the second layer alone learning
    the same trajectory bit for bit, and w kept at its scaled value."""
    model = make()
    w_star, a_star, w0, a0 = _trials(model, rng, LANES_FULL)
    kw = dict(steps=60, lr=(0.0, 0.2), tol=0.0, thresholds=WIDE, backend=backend, engine=engine)
    ref = sn.run_trials(model, w_star, a_star, w0, a0, **kw)
    start = sn.run_trials(model, w_star, a_star, w0, a0, steps=1, lr=0.0, tol=0.0, thresholds=WIDE, backend=backend,
                          engine=engine)
    for e in EXPONENTS if engine == "full" else REDUCED_EXPONENTS:
        c = 2.0**e
        big = scaled_model(model, c)
        out = sn.run_trials(big, c * w_star, a_star, c * w0, a0, **kw)
        np.testing.assert_array_equal(out.loss, ref.loss)
        np.testing.assert_array_equal(out.a, ref.a)
        np.testing.assert_array_equal(out.phi, ref.phi)
        np.testing.assert_array_equal(out.w, c * w0)
        np.testing.assert_array_equal(out.outcome, ref.outcome)
        first = sn.run_trials(big, c * w_star, a_star, c * w0, a0, steps=1, lr=0.0, tol=0.0, thresholds=WIDE,
                              backend=backend, engine=engine)
        np.testing.assert_array_equal(first.loss, start.loss)
        one = sn.train(big, c * w_star[0], a_star[0], c * w0[0], a0[0], record_every=10, **kw)
        assert one.loss == ref.loss[0] and np.array_equal(one.a, ref.a[0])
        assert np.all(np.isfinite(one.history["loss"]))


@pytest.mark.parametrize("e", EXPONENTS)
def test_full_steps_at_extreme_scales_match_train(e, backend, rng):
    """Both layers learning from a filter of norm 2^e: the trials of run_trials are train's runs bit
    for bit (on the compiled backend the lanes against the one-trial path), and nothing is NaN."""
    model = resnet(6, 4)
    c = 2.0**e
    big = scaled_model(model, c)
    w_star, a_star, w0, a0 = _trials(model, rng, LANES_FULL)
    kw = dict(steps=25, lr=(0.05, 0.1), tol=0.0, thresholds=WIDE, backend=backend)
    out = sn.run_trials(big, c * w_star, a_star, c * w0, a0, **kw)
    assert np.all(np.isfinite(out.loss)) and np.all(np.isfinite(out.a))
    for b in range(3):
        one = sn.train(big, c * w_star[b], a_star[b], c * w0[b], a0[b], **kw)
        assert one.steps == out.steps[b] and one.loss == out.loss[b] and one.phi == out.phi[b]
        np.testing.assert_array_equal(one.w, out.w[b])
        np.testing.assert_array_equal(one.a, out.a[b])


@pytest.mark.parametrize("engine, exponents", [("full", (-498, 498)), ("reduced", (-180, 180))])
def test_gradient_steps_scale_exactly_where_the_rates_can(engine, exponents, backend, rng):
    """At |u| ~ 1e+-150 (the reduced engine: 1e+-54), gradient descent with lr_w scaled by c^2 is
    the unscaled run scaled by c (dL/dw ~ 1/|u|), step for step."""
    model = sn.Model(7, 5, shortcut=False)
    w_star, a_star, w0, a0 = _trials(model, rng, 4)
    ref = sn.run_trials(model, w_star, a_star, w0, a0, steps=200, lr=(0.1, 0.1), tol=0.0, thresholds=WIDE,
                        backend=backend, engine=engine)
    for e in exponents:
        c = 2.0**e
        out = sn.run_trials(model, c * w_star, a_star, c * w0, a0, steps=200, lr=(0.1 * c * c, 0.1), tol=0.0,
                            thresholds=WIDE, backend=backend, engine=engine)
        np.testing.assert_array_equal(out.w, c * ref.w)
        np.testing.assert_array_equal(out.a, ref.a)
        np.testing.assert_array_equal(out.loss, ref.loss)


@pytest.mark.parametrize("e", [e for e in EXPONENTS if abs(e) > REDUCED_EXPONENT])
def test_auto_takes_the_full_engine_beyond_the_reduced_range(e, rng):
    """Beyond 2^+-REDUCED_EXPONENT engine="auto" runs the full engine and says so; "reduced" is
    refused with the reason."""
    model = resnet(6, 4)
    c = 2.0**e
    big = scaled_model(model, c)
    w_star, a_star, w0, a0 = _trials(model, rng, 3)
    kw = dict(steps=5, lr=0.05, tol=0.0, thresholds=WIDE)
    assert sn.run_trials(model, w_star, a_star, w0, a0, **kw).engine == "reduced"
    assert sn.run_trials(big, c * w_star, a_star, c * w0, a0, **kw).engine == "full"
    assert sn.train(big, c * w_star[0], a_star[0], c * w0[0], a0[0], **kw).engine == "full"
    with pytest.raises(ValueError, match=r"engine: .*w0 \+ s within 2\^-400"):
        sn.run_trials(big, c * w_star, a_star, c * w0, a0, engine="reduced", **kw)
    # A second layer beyond the range, with filters of scale 1.
    assert sn.run_trials(model, w_star, a_star, w0, 2.0**450 * a0, **kw).engine == "full"
