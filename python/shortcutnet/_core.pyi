"""Type hints of the compiled core (src/*.cpp)."""
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

_F64 = npt.NDArray[np.float64]
_Real = npt.NDArray[Union[np.float32, np.float64]]
_DType = Union[str, type, np.dtype]

def build_info() -> dict[str, Any]: ...
def population_loss_grad(
    s: npt.ArrayLike, w: npt.ArrayLike, a: npt.ArrayLike, w_star: npt.ArrayLike, a_star: npt.ArrayLike,
    stride: int, normalize: bool, want_grad: bool = True,
) -> Union[float, Tuple[float, _F64, _F64]]: ...
def angle(u: npt.ArrayLike, v: npt.ArrayLike) -> float: ...
def spurious_second_layer(a_star: npt.ArrayLike) -> _F64: ...
def predict(
    s: npt.ArrayLike, w: npt.ArrayLike, a: npt.ArrayLike, X: _Real, k: int, p: int, stride: int,
    normalize: bool, threads: int = 0,
) -> _Real: ...
def sampled_loss_grad(
    s: npt.ArrayLike, w: npt.ArrayLike, a: npt.ArrayLike, X: _Real, y: _Real, k: int, p: int, stride: int,
    normalize: bool, threads: int = 0,
) -> Tuple[float, _F64, _F64]: ...
def sample_inputs(n: int, d: int, seed: int, dtype: _DType, threads: int = 0) -> _Real: ...
def stochastic_loss_grad(
    s: npt.ArrayLike, w: npt.ArrayLike, a: npt.ArrayLike, w_star: npt.ArrayLike, a_star: npt.ArrayLike,
    n: int, k: int, p: int, stride: int, normalize: bool, seed: int, dtype: _DType, threads: int = 0,
) -> Tuple[float, _F64, _F64]: ...
def philox4x32(counter: Tuple[int, int, int, int], key: Tuple[int, int]) -> Tuple[int, int, int, int]: ...
def run_engine(
    s: npt.ArrayLike, stride: int, normalize: bool, w0: npt.ArrayLike, a0: npt.ArrayLike, w_star: npt.ArrayLike,
    a_star: npt.ArrayLike, rates: Union[npt.ArrayLike, Callable[[int], npt.ArrayLike]], steps: int, tol: float,
    thresholds: Tuple[float, ...],
    optimizer: Tuple[str, float, bool, float, float, float], gradient: str, batch_size: int, n_train: int,
    seeds: npt.ArrayLike, dtype: str, record_every: int, threads: int, scanned: bool = False,
) -> Tuple[npt.NDArray[np.int8], _F64, _F64, npt.NDArray[np.int64], npt.NDArray[np.int64], _F64, _F64, _F64,
           Union[_F64, None]]: ...
def run_reduced(
    s: npt.ArrayLike, normalize: bool, w0: npt.ArrayLike, a0: npt.ArrayLike, w_star: npt.ArrayLike,
    a_star: npt.ArrayLike, rates: Union[npt.ArrayLike, Callable[[int], npt.ArrayLike]], steps: int, tol: float,
    thresholds: Tuple[float, ...], optimizer: Tuple[str, float, bool, float, float, float], record_every: int,
    threads: int, scanned: bool = False,
) -> Tuple[npt.NDArray[np.int8], _F64, _F64, npt.NDArray[np.int64], npt.NDArray[np.int64], _F64, _F64, _F64,
           Union[_F64, None]]: ...
def scan_rows(
    x: npt.ArrayLike, s: Optional[npt.ArrayLike] = None, threads: int = 1
) -> Tuple[int, int, float, float]: ...
def default_threads() -> int: ...
def engine_simd() -> str: ...
def _angle_math(y: npt.ArrayLike, x: npt.ArrayLike) -> Tuple[_F64, _F64]: ...
