"""Model: the shortcut vector, patch geometry, equality and pickling (docs/model.md, "The network")."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import shortcutnet as sn


def test_default_shortcut_is_the_normalized_ones_vector():
    model = sn.Model(5, 4)
    np.testing.assert_array_equal(model.s, np.full(4, 0.5))
    assert model.has_shortcut and model.normalize
    assert model.stride == 4 and model.d == 20 and not model.overlapping


def test_plain_cnn_and_custom_shortcut(rng):
    cnn = sn.Model(3, 2, shortcut=False)
    np.testing.assert_array_equal(cnn.s, np.zeros(2))
    assert not cnn.has_shortcut
    s = rng.normal(size=3)
    custom = sn.Model(3, 3, shortcut=s)
    np.testing.assert_array_equal(custom.s, s)
    s[0] = 100.0  # the model keeps its own copy
    assert custom.s[0] != 100.0
    assert sn.Model(3, 3, shortcut=[1, 2, 3]).s.dtype == np.float64


def test_shortcut_is_read_only():
    model = sn.Model(3, 2)
    with pytest.raises(ValueError):
        model.s[0] = 1.0


@pytest.mark.parametrize("k,p,stride,d,overlapping", [(4, 3, 1, 6, True), (4, 3, 2, 9, True), (4, 3, 3, 12, False), (4, 3, 5, 18, False), (1, 3, 1, 3, True)])
def test_patch_geometry(k, p, stride, d, overlapping):
    model = sn.Model(k, p, stride=stride)
    assert model.d == d and model.overlapping is overlapping


def test_equality_hash_and_pickle(rng):
    s = rng.normal(size=3)
    models = [sn.Model(4, 3), sn.Model(4, 3, shortcut=False), sn.Model(4, 3, shortcut=s), sn.Model(4, 3, normalize=False), sn.Model(4, 3, stride=1)]
    for i, m in enumerate(models):
        clone = pickle.loads(pickle.dumps(m))
        assert clone == m and hash(clone) == hash(m) and repr(clone) == repr(m)
        np.testing.assert_array_equal(clone.s, m.s)
        for other in models[i + 1 :]:
            assert m != other
    assert sn.Model(4, 3) == sn.Model(4, 3, shortcut=True, normalize=True, stride=3)
    assert repr(sn.Model(4, 3)) == "Model(k=4, p=3, shortcut=True, normalize=True, stride=3)"
    assert "shortcut=<custom>" in repr(models[2])
