"""Counter-based seeds of the training engine (docs/training.md, section 1).

Every seed a trial uses is one Philox4x32-10 block of a counter that names what it is for, under
the key ``(seed mod 2^32, seed >> 32)``, the generator that draws the Gaussian inputs; the first
two output words joined, ``word64(x0, x1) = x0 + 2^32 x1``, are the derived seed. Tags in the last
counter word keep the uses apart:

- ``trial_seed(s, b) = word64(philox(s, b mod 2^32, b >> 32, 0, TAG_TRIAL << 16))``
- ``step_seed(s, t) = word64(philox(s, t mod 2^32, t >> 32, 0, TAG_STEP << 16))``
- ``epoch_keys(s, e, n)[i] = word64(philox(s, i mod 2^32, i >> 32, e mod 2^32,
  (TAG_EPOCH << 16) + ((e >> 32) mod 2^16)))``
- ``epoch_order(s, e, n)``: the indices ``0..n-1`` sorted by ``(epoch_keys[i], i)``, a stable
  argsort of the keys.

Being functions of (seed, index) alone, they can be computed in any order, in parallel, by any
backend, with the same result.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._validation import as_int, as_seed, describe
from .backends.reference_sampled import MASK32, philox4x32

TAG_TRIAL = 0x7472  # "tr"
TAG_STEP = 0x7374  # "st"
TAG_EPOCH = 0x6570  # "ep"

_INDEX_LIMIT = 2**64


def as_indices(name: str, value):
    """(uint64 array, is_scalar) for an index or an integer array of indices, each in [0, 2^64)."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_)):
        index = as_int(name, value, minimum=0)
        if index >= _INDEX_LIMIT:
            raise ValueError(f"{name}: expected an integer in [0, 2**64), got {index}")
        return np.uint64(index), True
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer or an integer array, got {describe(value)}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected an integer or an integer array, got {describe(value)}") from exc
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer or an integer array, got {describe(value)}")
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise ValueError(f"{name}: expected integers >= 0, got {arr.min()}")
    return arr.astype(np.uint64), False


def _word64(seed: int, c0, c1, c2, c3) -> np.ndarray:
    x0, x1, _, _ = philox4x32(c0, c1, c2, c3, seed & MASK32, seed >> 32)
    return x0 | (x1 << np.uint64(32))


def _tagged(name: str, seed, index, tag: int):
    seed = as_seed("seed", seed)
    index, scalar = as_indices(name, index)
    mask, shift = np.uint64(MASK32), np.uint64(32)
    words = _word64(seed, index & mask, index >> shift, np.uint64(0), np.uint64(tag << 16))
    return int(words) if scalar else words


def trial_seed(seed, b):
    """The seed of trial ``b`` of ``run_trials(seed=seed)``: an int for an int ``b``, else a uint64 array."""
    return _tagged("b", seed, b, TAG_TRIAL)


def step_seed(seed, t):
    """The seed of the batch drawn at step ``t`` by the ``"sampled"`` gradient of a trial with this seed."""
    return _tagged("t", seed, t, TAG_STEP)


def epoch_keys(seed, epoch, n) -> np.ndarray:
    """The sort keys (uint64, shape (n,)) of the ``n`` training samples in epoch ``epoch``."""
    seed = as_seed("seed", seed)
    epoch = as_seed("epoch", epoch)
    n = as_int("n", n, minimum=0)
    i = np.arange(n, dtype=np.uint64)
    mask, shift = np.uint64(MASK32), np.uint64(32)
    c3 = (TAG_EPOCH << 16) + ((epoch >> 32) & 0xFFFF)
    return _word64(seed, i & mask, i >> shift, np.uint64(epoch & MASK32), np.uint64(c3))


def epoch_order(seed, epoch, n) -> np.ndarray:
    """The order (int64, a permutation of 0..n-1) in which epoch ``epoch`` visits the training set."""
    return np.argsort(epoch_keys(seed, epoch, n), kind="stable").astype(np.int64, copy=False)
