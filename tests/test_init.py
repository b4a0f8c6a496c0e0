import math

import numpy as np
import pytest
from scipy import stats

import shortcutnet as sn


def test_zero_and_sphere_shapes():
    model = sn.Model(7, 5)
    assert np.array_equal(sn.init_first_layer(model, "zero"), np.zeros(5))
    assert sn.init_first_layer(model, "zero", size=3).shape == (3, 5)
    w0 = sn.init_first_layer(model, "sphere", 0, size=50)
    assert w0.shape == (50, 5)
    np.testing.assert_allclose(np.linalg.norm(w0, axis=1), 1.0, rtol=1e-15)


def test_reproducible_from_seed_or_generator():
    model = sn.Model(6, 4, shortcut=False)
    a_star = np.arange(6.0)
    first = sn.init_first_layer(model, "sphere", 3), sn.init_second_layer(model, a_star, 3)
    again = sn.init_first_layer(model, "sphere", np.random.default_rng(3)), sn.init_second_layer(
        model, a_star, np.random.default_rng(3)
    )
    for x, y in zip(first, again):
        assert np.array_equal(x, y)


def test_sphere_directions_are_uniform():
    # Each coordinate of a uniform unit vector in R^p has mean 0 and variance 1/p.
    p, n = 5, 20000
    w0 = sn.init_first_layer(sn.Model(3, p, shortcut=False), "sphere", 11, size=n)
    se = math.sqrt(1.0 / p / n)
    assert np.all(np.abs(w0.mean(axis=0)) < 5 * se)
    np.testing.assert_allclose((w0**2).mean(axis=0), 1.0 / p, atol=5 * math.sqrt(2.0 / p**2 / n))


def test_second_layer_uniform_in_the_ball():
    k, n = 6, 5000
    model = sn.Model(k, 3)
    a_star = np.array([1.0, -0.5, 2.0, 0.3, 0.7, -1.1])
    radius = abs(a_star.sum()) / math.sqrt(k)
    a0 = sn.init_second_layer(model, a_star, 5, size=n)
    r = np.linalg.norm(a0, axis=1)
    assert r.max() <= radius
    # Uniform in volume: (r/R)^k ~ U(0, 1); the directions are uniform (zero mean).
    assert stats.kstest((r / radius) ** k, "uniform").pvalue > 1e-3
    directions = a0 / r[:, None]
    assert np.all(np.abs(directions.mean(axis=0)) < 5 * math.sqrt(1.0 / k / n))


def test_second_layer_batched_teachers():
    model = sn.Model(4, 3)
    a_star = np.random.default_rng(0).normal(size=(10, 4))
    a0 = sn.init_second_layer(model, a_star, 1)
    assert a0.shape == (10, 4)
    assert np.all(np.linalg.norm(a0, axis=1) <= np.abs(a_star.sum(1)) / 2.0)


def test_errors():
    resnet, cnn = sn.Model(4, 3), sn.Model(4, 3, shortcut=False)
    with pytest.raises(ValueError, match="kind"):
        sn.init_first_layer(resnet, "gaussian", 0)
    with pytest.raises(ValueError, match="shortcut"):
        sn.init_first_layer(cnn, "zero")
    with pytest.raises(TypeError, match="rng"):
        sn.init_first_layer(cnn, "sphere", None)
    with pytest.raises(TypeError, match="rng"):
        sn.init_second_layer(cnn, np.ones(4), "seed")
    with pytest.raises(ValueError, match="a_star"):
        sn.init_second_layer(cnn, np.ones(5), 0)
    with pytest.raises(ValueError, match="size"):
        sn.init_second_layer(cnn, np.ones((3, 4)), 0, size=2)
    with pytest.raises(ValueError, match="size"):
        sn.init_first_layer(cnn, "sphere", 0, size=0)
    with pytest.raises(TypeError, match="model"):
        sn.init_first_layer("cnn", "sphere", 0)
