"""Counter-based seeds (docs/training.md section 1) against a scalar Philox4x32-10 written here."""
import numpy as np
import pytest

import shortcutnet as sn
from shortcutnet import seeds

M32 = 0xFFFFFFFF


def philox_scalar(counter, key):
    """Philox4x32-10 (Salmon et al., SC 2011) on Python ints, one block at a time."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for rnd in range(10):
        if rnd:
            k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & M32, (p0 >> 32) ^ c3 ^ k1, p0 & M32
    return c0, c1, c2, c3


def word64_scalar(seed, counter):
    x = philox_scalar(counter, (seed & M32, seed >> 32))
    return x[0] + (x[1] << 32)


# Random123's published known-answer vectors for Philox4x32-10: (counter, key, output).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32,) * 4, (M32,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

SEEDS = [0, 1, 12345, 2**32 - 1, 2**32, 0x0123456789ABCDEF, 2**64 - 1]
INDICES = [0, 1, 2, 1000, 2**32 - 1, 2**32, 2**32 + 7, 2**63, 2**64 - 1]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_scalar_philox_known_answers(counter, key, expected):
    assert philox_scalar(counter, key) == expected


@pytest.mark.parametrize("seed", SEEDS)
def test_trial_and_step_seeds_follow_the_spec(seed):
    for i in INDICES:
        lo, hi = i & M32, i >> 32
        assert seeds.trial_seed(seed, i) == word64_scalar(seed, (lo, hi, 0, seeds.TAG_TRIAL << 16))
        assert seeds.step_seed(seed, i) == word64_scalar(seed, (lo, hi, 0, seeds.TAG_STEP << 16))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("epoch", [0, 1, 5, 2**32 - 1, 2**32 + 3, 2**47 + 2**33 + 9, 2**64 - 1])
def test_epoch_keys_follow_the_spec(seed, epoch):
    keys = seeds.epoch_keys(seed, epoch, 37)
    c3 = (seeds.TAG_EPOCH << 16) + ((epoch >> 32) % 2**16)
    want = [word64_scalar(seed, (i, 0, epoch & M32, c3)) for i in range(37)]
    assert keys.dtype == np.uint64 and keys.shape == (37,)
    assert [int(k) for k in keys] == want


def test_epoch_keys_past_32_bit_indices():
    # The sample index's high word goes to the second counter word: check it through a large n
    # without building it, by the defining formula at one index.
    seed, epoch, i = 99, 4, 2**32 + 5
    c3 = seeds.TAG_EPOCH << 16
    x = seeds._word64(seed, np.uint64(i & M32), np.uint64(i >> 32), np.uint64(epoch), np.uint64(c3))
    assert int(x) == word64_scalar(seed, (i & M32, i >> 32, epoch, c3))


def test_the_tag_constants():
    assert (seeds.TAG_TRIAL, seeds.TAG_STEP, seeds.TAG_EPOCH) == (0x7472, 0x7374, 0x6570)


@pytest.mark.parametrize("fn", [seeds.trial_seed, seeds.step_seed])
def test_arrays_give_the_scalars(fn):
    seed = 0xFEDCBA9876543210
    index = np.array([[0, 3], [2**32 + 1, 2**64 - 1]], dtype=np.uint64)
    out = fn(seed, index)
    assert out.dtype == np.uint64 and out.shape == (2, 2)
    assert [int(x) for x in out.ravel()] == [fn(seed, int(i)) for i in index.ravel()]
    # Signed integer arrays and lists are accepted too.
    assert np.array_equal(fn(seed, np.arange(5)), fn(seed, [0, 1, 2, 3, 4]))
    assert [int(x) for x in fn(seed, np.arange(5, dtype=np.int32))] == [fn(seed, i) for i in range(5)]
    assert fn(seed, np.int64(7)) == fn(seed, 7) and isinstance(fn(seed, np.int64(7)), int)


def test_seeds_are_distinct_across_trials_steps_and_epochs():
    seed = 2024
    trials = seeds.trial_seed(seed, np.arange(20000))
    steps = seeds.step_seed(seed, np.arange(20000))
    assert np.unique(trials).size == trials.size
    assert np.unique(steps).size == steps.size
    # The tags keep trial b and step b apart.
    assert np.intersect1d(trials, steps).size == 0
    # Different master seeds give different trial seeds.
    assert np.intersect1d(trials, seeds.trial_seed(seed + 1, np.arange(20000))).size == 0
    orders = {tuple(seeds.epoch_order(seed, e, 50)) for e in [0, 1, 2, 3, 2**32, 2**32 + 1]}
    assert len(orders) == 6
    assert not np.array_equal(seeds.epoch_order(seed, 0, 50), seeds.epoch_order(seed + 1, 0, 50))
    keys = np.concatenate([seeds.epoch_keys(seed, e, 5000) for e in range(4)])
    assert np.unique(keys).size == keys.size


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000])
def test_epoch_order_is_the_stable_sort_of_the_keys(n):
    seed, epoch = 31337, 12
    order = seeds.epoch_order(seed, epoch, n)
    assert order.dtype == np.int64 and order.shape == (n,)
    assert np.array_equal(np.sort(order), np.arange(n))
    keys = [int(k) for k in seeds.epoch_keys(seed, epoch, n)]
    assert list(order) == sorted(range(n), key=lambda i: (keys[i], i))


def test_epoch_order_depends_on_the_training_set_size_only_through_the_keys():
    # The key of sample i does not depend on n: a larger set keeps the smaller set's relative order.
    small = seeds.epoch_order(5, 3, 100)
    large = seeds.epoch_order(5, 3, 300)
    assert np.array_equal(large[large < 100], small)


def test_trial_seed_is_exported():
    assert sn.trial_seed is seeds.trial_seed and "trial_seed" in sn.__all__
    assert sn.seeds is seeds


@pytest.mark.parametrize(
    "call, exc, words",
    [
        (lambda: seeds.trial_seed(-1, 0), ValueError, ["seed", "2**64", "-1"]),
        (lambda: seeds.trial_seed(2**64, 0), ValueError, ["seed", "2**64"]),
        (lambda: seeds.trial_seed(1.5, 0), TypeError, ["seed", "integer", "float"]),
        (lambda: seeds.trial_seed(True, 0), TypeError, ["seed", "integer", "bool"]),
        (lambda: seeds.trial_seed(1, -1), ValueError, ["b", ">= 0", "-1"]),
        (lambda: seeds.trial_seed(1, 2**64), ValueError, ["b", "2**64"]),
        (lambda: seeds.trial_seed(1, np.array([0, -3])), ValueError, ["b", ">= 0", "-3"]),
        (lambda: seeds.trial_seed(1, np.array([0.0, 1.0])), TypeError, ["b", "integer", "float64"]),
        (lambda: seeds.trial_seed(1, "3"), TypeError, ["b", "integer", "str"]),
        (lambda: seeds.trial_seed(1, False), TypeError, ["b", "integer", "bool"]),
        (lambda: seeds.step_seed(1, -2), ValueError, ["t", ">= 0", "-2"]),
        (lambda: seeds.step_seed(None, 2), TypeError, ["seed", "integer", "NoneType"]),
        (lambda: seeds.epoch_keys(1, -1, 3), ValueError, ["epoch", "-1"]),
        (lambda: seeds.epoch_keys(1, 0, -3), ValueError, ["n", ">= 0", "-3"]),
        (lambda: seeds.epoch_order(1, 0, 2.0), TypeError, ["n", "integer", "float"]),
        (lambda: seeds.epoch_order(-5, 0, 2), ValueError, ["seed", "-5"]),
    ],
)
def test_bad_input_is_named(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word in str(info.value)
