"""Type stubs of the compiled module ``strideconv._core`` (the PyO3 glue).

The public API is ``strideconv`` (``__init__.py``); these functions take every argument
positionally, in the order of the public signatures.
"""

from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__version__: str

class Plan:
    """A planned convolution for one pair of shapes and one dtype."""

    def __call__(
        self, x: ArrayLike, k: ArrayLike, bias: Optional[ArrayLike] = None
    ) -> NDArray[Any]: ...
    @property
    def method(self) -> str: ...
    @property
    def op(self) -> str: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def x_shape(self) -> tuple[int, ...]: ...
    @property
    def k_shape(self) -> tuple[int, ...]: ...
    @property
    def out_shape(self) -> tuple[int, ...]: ...
    def explain(self) -> str: ...

def signal(
    x: ArrayLike,
    k: ArrayLike,
    convolve: bool,
    stride: Any,
    padding: Any,
    pad_mode: Any,
    cval: Any,
    dilation: Any,
    channel_axis: Any,
    method: Any,
    out_dtype: DTypeLike,
    threads: Any,
) -> NDArray[Any]: ...
def batched(
    rank: int,
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike],
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: Any,
    layout: Any,
    method: Any,
    threads: Any,
) -> NDArray[Any]: ...
def plan_signal(
    x_shape: Any,
    k_shape: Any,
    dtype: DTypeLike,
    convolve: bool,
    stride: Any,
    padding: Any,
    pad_mode: Any,
    cval: Any,
    dilation: Any,
    channel_axis: Any,
    method: Any,
    out_dtype: DTypeLike,
    threads: Any,
    planning: Any,
) -> Plan: ...
def plan_batched(
    rank: int,
    x_shape: Any,
    k_shape: Any,
    dtype: DTypeLike,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: Any,
    layout: Any,
    method: Any,
    threads: Any,
    planning: Any,
) -> Plan: ...
def methods() -> list[str]: ...
def build_info() -> dict[str, Any]: ...
