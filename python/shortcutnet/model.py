"""The network's architecture: sizes, shortcut vector, normalization, patch stride (docs/model.md, "The network")."""
from __future__ import annotations

import math

import numpy as np

from ._validation import as_float_array, as_int, describe

_MAX_INDEX = 2**63 - 1


class Model:
    """Two-layer convolutional network f(Z) = sum_j a_j relu(<Z_j, v>), v = (w + s)/|w + s|.

    Parameters
    ----------
    k, p:
        Number of patches and pixels per patch (length of the second and first layer).
    shortcut:
        ``True`` for the identity shortcut ``s = 1/sqrt(p) * ones`` (ResNet), ``False`` for the
        plain CNN (``s = 0``), or any fixed vector of shape ``(p,)``.
    normalize:
        Normalize the effective filter, ``v = u/|u|`` (the population view of batch normalization).
    stride:
        Patch stride of the convolution over a raw input of length ``d = (k - 1) * stride + p``;
        ``None`` means ``p`` (non-overlapping patches, the case of the theory).
    """

    __slots__ = ("_k", "_p", "_s", "_normalize", "_stride", "_has_shortcut")

    def __init__(self, k: int, p: int, shortcut=True, normalize: bool = True, stride: int | None = None):
        self._k = as_int("k", k, minimum=1)
        self._p = as_int("p", p, minimum=1)
        self._stride = self._p if stride is None else as_int("stride", stride, minimum=1)
        if self.d > _MAX_INDEX:
            # The kernels index the raw input with 64-bit integers.
            raise ValueError(
                f"stride: expected an input length d = (k - 1) * stride + p <= 2**63 - 1, "
                f"got d = {self.d} (k={self._k}, p={self._p}, stride={self._stride})"
            )
        if isinstance(shortcut, (bool, np.bool_)):
            s = np.full(self._p, 1.0 / math.sqrt(self._p)) if shortcut else np.zeros(self._p)
        elif isinstance(shortcut, (np.ndarray, list, tuple)):
            s = as_float_array("shortcut", shortcut, ndim=1, shape=(self._p,))
        else:
            raise TypeError(f"shortcut: expected True, False or an array of shape ({self._p},), got {describe(shortcut)}")
        s = np.array(s, dtype=np.float64)
        s.setflags(write=False)
        self._s = s
        self._has_shortcut = bool(np.any(s != 0.0))
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize: expected True or False, got {describe(normalize)}")
        self._normalize = bool(normalize)

    k = property(lambda self: self._k, doc="Number of patches (length of the second layer a).")
    p = property(lambda self: self._p, doc="Pixels per patch (length of the filter w).")
    s = property(lambda self: self._s, doc="The fixed shortcut vector, shape (p,), read-only.")
    normalize = property(lambda self: self._normalize, doc="Whether the filter is normalized, v = u/|u|.")
    stride = property(lambda self: self._stride, doc="Patch stride over the raw input.")
    has_shortcut = property(lambda self: self._has_shortcut, doc="Whether s is non-zero.")

    @property
    def d(self) -> int:
        """Length of a raw input vector."""
        return (self._k - 1) * self._stride + self._p

    @property
    def overlapping(self) -> bool:
        return self._stride < self._p

    def __repr__(self) -> str:
        if not self._has_shortcut:
            sc = "False"
        elif np.allclose(self._s, 1.0 / math.sqrt(self._p), rtol=0, atol=0):
            sc = "True"
        else:
            sc = "<custom>"
        return (
            f"Model(k={self._k}, p={self._p}, shortcut={sc}, normalize={self._normalize}, "
            f"stride={self._stride})"
        )

    def __eq__(self, other) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return (
            (self._k, self._p, self._normalize, self._stride) == (other._k, other._p, other._normalize, other._stride)
            and np.array_equal(self._s, other._s)
        )

    def __hash__(self) -> int:
        return hash((self._k, self._p, self._normalize, self._stride, self._s.tobytes()))

    def __reduce__(self):
        return (_rebuild_model, (self._k, self._p, self._s.copy(), self._normalize, self._stride))


def _rebuild_model(k, p, s, normalize, stride):
    return Model(k, p, shortcut=s, normalize=normalize, stride=stride)


def check_model(model) -> Model:
    if not isinstance(model, Model):
        raise TypeError(f"model: expected a shortcutnet.Model, got {describe(model)}")
    return model
