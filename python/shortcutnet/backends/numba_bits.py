"""The bits of a float as an integer and back, as ``@njit``-callable intrinsics.

The generator's transforms (numba_sampled) split a uniform into exponent and mantissa the way
cpp/shortcutnet/philox.hpp does, through the bits of a float.  Numba has no scalar bit cast; an
array view makes one but costs a call and reference counting, and in a loop over lanes keeps LLVM
from vectorizing it.  These are single LLVM bitcasts: free, and invisible to the vectorizer.
"""
from __future__ import annotations

from numba import types
from numba.extending import intrinsic

_PAIRS = {types.float32: types.int32, types.int32: types.float32,
          types.float64: types.int64, types.int64: types.float64}


def _bitcast(typingctx, x):
    target = _PAIRS.get(x)
    if target is None:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(target))

    return target(x), codegen


@intrinsic
def float_bits(typingctx, x):
    """The bits of a float32 (float64) as an int32 (int64)."""
    return _bitcast(typingctx, x) if x in (types.float32, types.float64) else None


@intrinsic
def bits_float(typingctx, x):
    """The float32 (float64) whose bits are the int32 (int64) x."""
    return _bitcast(typingctx, x) if x in (types.int32, types.int64) else None
