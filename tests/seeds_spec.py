"""The seed words of docs/training.md section 1, written from the table there with the reference
Philox (the generator's), one counter at a time: the oracle of every engine's seeds.
"""
from __future__ import annotations

import numpy as np

from shortcutnet.backends.reference_sampled import philox4x32

TAG_TRIAL = 0x7472
TAG_STEP = 0x7374
TAG_EPOCH = 0x6570
M32 = (1 << 32) - 1


def philox(seed, c0, c1, c2, c3):
    words = philox4x32(*(np.array([c], dtype=np.uint64) for c in (c0, c1, c2, c3)), seed & M32, seed >> 32)
    return [int(x[0]) for x in words]


def word64(x):
    return x[0] + (x[1] << 32)


def trial_seed(seed, b):
    return word64(philox(int(seed), b & M32, b >> 32, 0, TAG_TRIAL << 16))


def step_seed(seed, t):
    return word64(philox(int(seed), t & M32, t >> 32, 0, TAG_STEP << 16))


def epoch_keys(seed, e, n):
    i = np.arange(n, dtype=np.uint64)
    seed = int(seed)
    x = philox4x32(i & np.uint64(M32), i >> np.uint64(32), np.full(n, e & M32, dtype=np.uint64),
                   np.full(n, (TAG_EPOCH << 16) + ((e >> 32) & 0xFFFF), dtype=np.uint64), seed & M32, seed >> 32)
    return x[0] + (x[1] << np.uint64(32))


def epoch_order(seed, e, n):
    return np.argsort(epoch_keys(seed, e, n), kind="stable").astype(np.int64)
