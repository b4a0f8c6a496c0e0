"""Argument checks shared by every public function.

Each error names the argument, what was expected and what was given, so that a user can fix the
call without reading the source.
"""
from __future__ import annotations

import numbers
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"


def as_int(name: str, value, *, minimum: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {describe(value)}")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def as_float_array(name: str, x, *, dtype=np.float64, ndim: int | None = None, shape=None) -> np.ndarray:
    """Convert x to a C-contiguous array of a float dtype, rejecting what cannot be meant as reals.

    Integers and Python floats are converted; complex, boolean, object and string data are
    refused (TypeError), as are wrong shapes and non-finite values (ValueError).
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name}: expected an array of real numbers, got {describe(x)}") from exc
    kind = arr.dtype.kind
    if kind not in "fiu":
        raise TypeError(f"{name}: expected real floating-point numbers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        expected = f"shape {shape_text(shape)}" if shape is not None else f"a {ndim}-D array"
        raise ValueError(f"{name}: expected {expected}, got a {arr.ndim}-D array of shape {arr.shape}")
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {shape_text(shape)}, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr.ravel()))[0]
        raise ValueError(f"{name}: expected finite values, got {arr.ravel()[bad]} at flat index {bad}")
    return arr


def shape_text(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def as_dtype(name: str, dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name}: expected numpy.float32 or numpy.float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected numpy.float32 or numpy.float64, got {dt}")
    return dt


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)!r}, got {value!r}")
