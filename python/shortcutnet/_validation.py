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


def as_float_array(name: str, x, *, dtype=np.float64, ndim: int | None = None, shape=None,
                   finite: bool = True) -> np.ndarray:
    """Convert x to a C-contiguous array of a float dtype, rejecting what cannot be meant as reals.

    Integers and Python floats are converted; complex, boolean, object and string data are
    refused (TypeError), as are wrong shapes and, unless finite is False (the caller checks
    them itself), non-finite values (ValueError).
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
    if finite and not np.isfinite(arr).all():
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


SEED_LIMIT = 2**64


def as_seed(name: str, value) -> int:
    """A seed of the counter-based generator: an integer in [0, 2^64)."""
    value = as_int(name, value)
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name}: expected an integer in [0, 2**64), got {value}")
    return value


def as_threads(name: str, value) -> int:
    """None (the default thread count, passed on as 0) or an integer >= 1."""
    if value is None:
        return 0
    return as_int(name, value, minimum=1)


def as_sample_count(name: str, value, row_length: int | None = None) -> int:
    """A positive sample count; with ``row_length``, one whose batch of float64 rows is addressable."""
    value = as_int(name, value)
    if value <= 0:
        raise ValueError(f"{name}: expected a positive number of samples, got {value}")
    if row_length is not None and value * row_length * 8 >= 2**63:
        raise ValueError(f"{name}: expected n * d * 8 bytes to fit in 64 bits, got n={value}, d={row_length}")
    return value


def as_sample_array(name: str, x, shapes, *, dtype=None, check_finite: bool = True) -> np.ndarray:
    """A batch of samples as a C-contiguous float32 or float64 array of one of ``shapes``.

    ``shapes`` lists the accepted shapes, with None for the sample axis.  float32 and float64
    are kept; integer data becomes float64 (exact up to 2^53); complex, boolean, object and
    string data raise TypeError.  With ``dtype`` given the data is converted to it instead.
    Read-only and non-contiguous arrays are accepted (a contiguous copy is made only when needed).
    """
    arr = x if isinstance(x, np.ndarray) else None
    if arr is None:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name}: expected an array of real numbers, got {describe(x)}") from exc
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected float32 or float64 numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and np.dtype(arr.dtype.type) not in FLOAT_DTYPES:
        # float16 and long double: no kernel reads them; the nearest supported width is used.
        arr = arr.astype(np.float32 if arr.dtype.itemsize < 4 else np.float64)
    if not any(_shape_matches(arr.shape, shape) for shape in shapes):
        expected = " or ".join(shape_text(tuple("n" if s is None else s for s in shape)) for shape in shapes)
        raise ValueError(f"{name}: expected shape {expected}, got shape {arr.shape}")
    # np.dtype(type) is the native byte order: byte-swapped input is converted, not passed on.
    target = np.dtype(dtype) if dtype is not None else np.dtype(arr.dtype.type if arr.dtype.kind == "f" else np.float64)
    arr = np.ascontiguousarray(arr, dtype=target)
    if check_finite:
        require_finite(name, arr)
    return arr


def _shape_matches(shape, pattern) -> bool:
    return len(shape) == len(pattern) and all(p is None or p == s for s, p in zip(shape, pattern))


def require_finite(name: str, arr: np.ndarray) -> None:
    """ValueError naming the first non-finite entry.  A finite sum proves every entry finite
    (an inf or nan would propagate), so the entry-wise scan runs only when the sum is not."""
    with np.errstate(over="ignore", invalid="ignore"):  # huge finite entries may overflow the sum
        total = np.add.reduce(arr, axis=None) if arr.size else 0.0
    if np.isfinite(total):
        return
    bad = np.flatnonzero(~np.isfinite(arr.ravel()))
    if bad.size:
        raise ValueError(f"{name}: expected finite values, got {arr.ravel()[bad[0]]} at flat index {bad[0]}")
