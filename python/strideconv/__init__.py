"""Strided convolution and cross-correlation of 1-D, 2-D and 3-D numpy arrays.

Every method people use to compute a strided convolution (and faster ones), exact integer
arithmetic, numpy's padding modes, and an automatic choice of method, in Rust.

Two styles of call:

* numpy/scipy style -- :func:`correlate` and :func:`convolve`: ``scipy.signal.correlate`` /
  ``scipy.signal.convolve`` plus ``stride``, padding modes, dilation and a channel axis.
* PyTorch style -- :func:`conv1d`, :func:`conv2d`, :func:`conv3d`:
  ``torch.nn.functional.conv*d`` semantics on numpy arrays (batch, channels, groups, bias).

For repeated calls on one shape, :func:`plan` chooses the method once.

Examples
--------
The question this library grew from: a 7x7 array, a 3x3 kernel, stride 2.

>>> import numpy as np
>>> import strideconv
>>> x = np.array([[2, 3, 7, 4, 6, 2, 9], [6, 6, 9, 8, 7, 4, 3], [3, 4, 8, 3, 8, 9, 7],
...               [7, 8, 3, 6, 6, 3, 4], [4, 2, 1, 8, 3, 4, 6], [3, 2, 4, 1, 9, 8, 3],
...               [0, 1, 3, 9, 2, 1, 4]])
>>> k = np.array([[3, 4, 4], [1, 0, 2], [-1, 0, 3]])
>>> strideconv.correlate(x, k, stride=2)
array([[ 91, 100,  88],
       [ 69,  91, 117],
       [ 44,  72,  74]])

Decisions where the specification is silent
-------------------------------------------
* ``float16`` is computed in float32 and returned as float16, as scipy returns it.
  ``longdouble``/``clongdouble`` raise TypeError rather than lose precision silently.
* Integer and bool operands of different types are computed exactly even where
  ``numpy.result_type`` would pick float64 (int64 with uint64); any other mix follows
  ``numpy.result_type``.
* ``out_dtype``: for integer inputs any integer dtype (OverflowError if a result does not
  fit); for float and complex results any float or complex dtype the result is cast to
  afterwards (complex to real is refused with TypeError).
* ``cval`` must be real; for integer inputs a whole number with ``|cval| <= 2**53``.
* ``conv*d`` accept unbatched input (``(C, H, W)`` for conv2d), as PyTorch does, and
  ``padding`` may also give a ``(before, after)`` pair per axis. ``padding_mode`` takes
  PyTorch's names and numpy's. Complex weights are not conjugated (PyTorch's convention).
* With ``channel_axis``, :func:`convolve` flips the kernel along the convolved axes only;
  channels pair up as they are (``x[..., c]`` with ``k[..., c]``).
* :func:`methods` lists the methods this build can run; a named method that cannot compute
  a request raises ValueError saying why, and never runs another method instead.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import _core
from ._core import Plan

__all__ = [
    "Plan",
    "__version__",
    "build_info",
    "conv1d",
    "conv2d",
    "conv3d",
    "convolve",
    "correlate",
    "methods",
    "plan",
]

__version__: str = _core.__version__

IntOrTuple = Union[int, Sequence[int]]
"""An int for every convolved axis, or one int per convolved axis."""
PaddingArg = Union[int, Sequence[Union[int, Tuple[int, int]]], str]
"""An int, one int or ``(before, after)`` pair per convolved axis, or a name."""


def correlate(
    x: ArrayLike,
    k: ArrayLike,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = "valid",
    pad_mode: str = "constant",
    cval: float = 0,
    dilation: IntOrTuple = 1,
    channel_axis: Optional[int] = None,
    method: str = "auto",
    out_dtype: DTypeLike = None,
    threads: Optional[int] = None,
) -> NDArray[Any]:
    """Strided cross-correlation of `x` with `k` (no kernel flip).

    ``out[o] = sum over t of xpad[o*stride + t*dilation] * conj(k[t])``, per convolved axis;
    the same as ``scipy.signal.correlate(numpy.pad(x, padding, mode=pad_mode), k,
    mode="valid")[::stride, ...]``, computed without the wasted outputs.

    Parameters
    ----------
    x : array_like
        The input: 1 to 3 convolved axes, plus `channel_axis` if given. Any memory layout
        and byte order; it is read in place when it can be.
    k : array_like
        The kernel, with as many axes as `x` (or, with `channel_axis`, one fewer: the same
        kernel for every channel).
    stride : int or sequence of int, optional
        Step between outputs, for every convolved axis or one per axis.
    padding : int, sequence, or {"valid", "same", "full"}, optional
        An int for every side of every axis; one int or ``(before, after)`` pair per
        convolved axis; or scipy's modes: ``"same"``/``"full"`` give scipy's
        ``mode="same"``/``"full"`` result, then every `stride`-th element from index 0.
    pad_mode : str, optional
        How padding is made, by numpy.pad's names: "constant" (value `cval`), "reflect",
        "symmetric", "edge", "wrap"; PyTorch's "zeros", "replicate", "circular" are aliases.
        scipy.ndimage's names are refused (its "reflect" is numpy's "symmetric").
    cval : float, optional
        The value of constant padding (a whole number for integer input).
    dilation : int or sequence of int, optional
        Spacing between kernel taps (``dilation - 1`` zeros between them).
    channel_axis : int, optional
        An axis of `x` that is summed over (no stride, no padding) and removed from the
        result: the input ``(n, n, c)`` with kernel ``(f, f, c)``.
    method : str, optional
        "auto" or one of :func:`methods`. A named method that cannot compute the request
        raises ValueError.
    out_dtype : dtype, optional
        Output dtype. Integer and bool inputs give exact int64 by default, or any integer
        dtype asked for (OverflowError when a result does not fit).
    threads : int, optional
        Worker threads; None uses every core, 1 runs on the calling thread.

    Returns
    -------
    numpy.ndarray
        A new array: float32 for float32 input, float64 for float64, complex for complex,
        int64 (or `out_dtype`) for integers and bools; mixed inputs follow numpy promotion.

    Raises
    ------
    ValueError
        Bad shapes or values: stride or dilation below 1, negative padding, a kernel larger
        than the padded input, an unknown mode or method. The message names the argument.
    TypeError
        Non-numeric arrays, arguments of the wrong type.
    OverflowError
        An integer result that does not fit the output dtype.

    See Also
    --------
    convolve : The same with the kernel flipped.
    conv2d : PyTorch-style batched, multi-channel correlation.
    plan : Choose the method once for repeated calls.

    Examples
    --------
    >>> import numpy as np
    >>> import strideconv
    >>> x = np.array([[2, 3, 7, 4, 6, 2, 9], [6, 6, 9, 8, 7, 4, 3], [3, 4, 8, 3, 8, 9, 7],
    ...               [7, 8, 3, 6, 6, 3, 4], [4, 2, 1, 8, 3, 4, 6], [3, 2, 4, 1, 9, 8, 3],
    ...               [0, 1, 3, 9, 2, 1, 4]])
    >>> k = np.array([[3, 4, 4], [1, 0, 2], [-1, 0, 3]])
    >>> strideconv.correlate(x, k, stride=2)
    array([[ 91, 100,  88],
           [ 69,  91, 117],
           [ 44,  72,  74]])

    scipy's "same" mode, then every second output:

    >>> strideconv.correlate([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 1.0], stride=2, padding="same")
    array([3., 9., 9.])

    Reflected padding and a dilated kernel:

    >>> strideconv.correlate(np.arange(6), [1, -1], padding=1, pad_mode="reflect", dilation=2)
    array([ 0, -2, -2, -2, -2,  0])

    A multi-channel image ``(n, n, c)`` with a kernel ``(f, f, c)``:

    >>> img = np.ones((4, 4, 3))
    >>> strideconv.correlate(img, np.ones((2, 2, 3)), stride=2, channel_axis=-1)
    array([[12., 12.],
           [12., 12.]])
    """
    return _core.signal(
        x, k, False, stride, padding, pad_mode, cval, dilation, channel_axis, method,
        out_dtype, threads,
    )


def convolve(
    x: ArrayLike,
    k: ArrayLike,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = "valid",
    pad_mode: str = "constant",
    cval: float = 0,
    dilation: IntOrTuple = 1,
    channel_axis: Optional[int] = None,
    method: str = "auto",
    out_dtype: DTypeLike = None,
    threads: Optional[int] = None,
) -> NDArray[Any]:
    """Strided convolution: :func:`correlate` with the kernel flipped along every convolved axis.

    ``scipy.signal.convolve`` plus stride: with ``padding="full"`` and stride 1 it is
    ``scipy.signal.convolve(x, k)``. Complex kernels are not conjugated.

    Parameters
    ----------
    x, k : array_like
        Input and kernel, as for :func:`correlate`.
    stride, padding, pad_mode, cval, dilation, channel_axis, method, out_dtype, threads
        As for :func:`correlate`.

    Returns
    -------
    numpy.ndarray
        A new array, of the dtype :func:`correlate` would give.

    Raises
    ------
    ValueError, TypeError, OverflowError
        As for :func:`correlate`.

    Examples
    --------
    >>> import strideconv
    >>> strideconv.convolve([1, 2, 3, 4], [1, 0, -1])
    array([2, 2])
    >>> strideconv.convolve([1, 2, 3], [1, 1], padding="full")
    array([1, 3, 5, 3])
    >>> strideconv.convolve([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0], stride=2, padding="same")
    array([ 1.,  7., 13.])
    """
    return _core.signal(
        x, k, True, stride, padding, pad_mode, cval, dilation, channel_axis, method,
        out_dtype, threads,
    )


_CONV_DOC = """{rank}-D correlation of a batch of multi-channel inputs, as ``torch.nn.functional.conv{rank}d``.

    No kernel flip and no conjugation (PyTorch's convention), on numpy arrays.

    Parameters
    ----------
    input : array_like
        ``(N, C_in, {spatial})``, or channels last ``(N, {spatial}, C_in)`` with
        ``layout="{last}"``. Without the batch axis, ``(C_in, {spatial})``, the result has no
        batch axis either, as in PyTorch.
    weight : array_like
        ``(C_out, C_in / groups, {kernel})``, whatever the layout.
    bias : array_like, optional
        ``(C_out,)``, added to every output of its channel (exactly, for integers).
    stride : int or tuple of int, optional
        Step between outputs.
    padding : int, tuple, "valid" or "same", optional
        Zeros (or `padding_mode`) added on both sides of each spatial axis: an int, one int
        per axis, or one ``(before, after)`` pair per axis. ``"same"`` keeps ``ceil(n /
        stride)`` outputs with TensorFlow/JAX's SAME rule: total padding ``max((out - 1) *
        stride + dilation * (f - 1) + 1 - n, 0)``, the odd element at the end (PyTorch's
        ``"same"`` when the stride is 1).
    dilation : int or tuple of int, optional
        Spacing between kernel taps.
    groups : int, optional
        Input and output channels are split into this many groups, each correlated with
        its own part of `weight`.
    padding_mode : str, optional
        "zeros", "reflect", "replicate" or "circular" (numpy.pad's names work too).
    layout : str, optional
        "{first}" (channels first, the default) or "{last}" (channels last), for input and
        output alike.
    method : str, optional
        "auto" or one of :func:`methods`.

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, {out})`` (or channels last), float32/float64/complex like the input,
        exact int64 for integer and bool inputs.

    Raises
    ------
    ValueError
        Shapes that do not fit (channels, groups, kernel larger than the padded input),
        bad values; the message names the argument.
    TypeError
        Non-numeric arrays, arguments of the wrong type.
    OverflowError
        An integer result that does not fit int64.

    Examples
    --------
{examples}
    """


def conv1d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    layout: str = "NCW",
    method: str = "auto",
) -> NDArray[Any]:
    return _core.batched(
        1, input, weight, bias, stride, padding, dilation, groups, padding_mode, layout,
        method, None,
    )


def conv2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    layout: str = "NCHW",
    method: str = "auto",
) -> NDArray[Any]:
    return _core.batched(
        2, input, weight, bias, stride, padding, dilation, groups, padding_mode, layout,
        method, None,
    )


def conv3d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    layout: str = "NCDHW",
    method: str = "auto",
) -> NDArray[Any]:
    return _core.batched(
        3, input, weight, bias, stride, padding, dilation, groups, padding_mode, layout,
        method, None,
    )


conv1d.__doc__ = _CONV_DOC.format(
    rank=1, spatial="W", kernel="kW", out="W_out", first="NCW", last="NWC",
    examples="""\
    >>> import numpy as np
    >>> import strideconv
    >>> x = np.arange(8.0).reshape(1, 1, 8)
    >>> w = np.array([[[1.0, 0.0, -1.0]]])
    >>> strideconv.conv1d(x, w, np.array([10.0]), stride=2, padding=1)
    array([[[9., 8., 8., 8.]]])""",
)
conv2d.__doc__ = _CONV_DOC.format(
    rank=2, spatial="H, W", kernel="kH, kW", out="H_out, W_out", first="NCHW", last="NHWC",
    examples="""\
    >>> import numpy as np
    >>> import strideconv
    >>> x = np.arange(2 * 5 * 5).reshape(1, 2, 5, 5)
    >>> w = np.ones((3, 2, 3, 3), dtype=np.int64)
    >>> strideconv.conv2d(x, w, stride=2).shape
    (1, 3, 2, 2)
    >>> strideconv.conv2d(x, w, stride=2, padding="same").shape
    (1, 3, 3, 3)

    Channels last, for input and output:

    >>> x_last = np.moveaxis(x, 1, -1)
    >>> y = strideconv.conv2d(x_last, w, stride=2, layout="NHWC")
    >>> y.shape
    (1, 2, 2, 3)
    >>> bool((np.moveaxis(y, -1, 1) == strideconv.conv2d(x, w, stride=2)).all())
    True""",
)
conv3d.__doc__ = _CONV_DOC.format(
    rank=3, spatial="D, H, W", kernel="kD, kH, kW", out="D_out, H_out, W_out", first="NCDHW",
    last="NDHWC",
    examples="""\
    >>> import numpy as np
    >>> import strideconv
    >>> x = np.ones((2, 4, 6, 6, 6), dtype=np.float32)
    >>> w = np.ones((8, 2, 3, 3, 3), dtype=np.float32)
    >>> y = strideconv.conv3d(x, w, groups=2, stride=3)
    >>> y.shape, y.dtype
    ((2, 8, 2, 2, 2), dtype('float32'))
    >>> float(y[0, 0, 0, 0, 0])
    54.0""",
)

_SIGNAL_OPTIONS = {
    "stride": 1,
    "padding": "valid",
    "pad_mode": "constant",
    "cval": 0,
    "dilation": 1,
    "channel_axis": None,
    "method": "auto",
    "out_dtype": None,
    "threads": None,
}
_BATCHED_OPTIONS = {
    "stride": 1,
    "padding": 0,
    "dilation": 1,
    "groups": 1,
    "padding_mode": "zeros",
    "layout": None,
    "method": "auto",
    "threads": None,
}
_RANKS = {"conv1d": 1, "conv2d": 2, "conv3d": 3}


def _options(op: str, given: dict, defaults: dict) -> list:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(
            f"plan(op={op!r}) got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"it accepts {', '.join(defaults)}"
        )
    return [given.get(name, default) for name, default in defaults.items()]


def plan(
    x_shape: IntOrTuple,
    k_shape: IntOrTuple,
    dtype: DTypeLike,
    *,
    op: Literal["correlate", "convolve", "conv1d", "conv2d", "conv3d"] = "correlate",
    planning: Literal["estimate", "measure"] = "estimate",
    **options: Any,
) -> Plan:
    """Plan a convolution once for fixed shapes and dtype; call the plan many times.

    Parameters
    ----------
    x_shape, k_shape : tuple of int
        Shapes of the input and the kernel (``input`` and ``weight`` for ``conv*d``).
    dtype : dtype
        The dtype the plan computes for. Integer and bool plans accept arrays of any
        integer or bool dtype; float and complex plans accept arrays that convert to `dtype`
        safely (TypeError otherwise).
    op : {"correlate", "convolve", "conv1d", "conv2d", "conv3d"}, optional
        Which function the plan computes.
    planning : {"estimate", "measure"}, optional
        How ``method="auto"`` decides: by the cost model (instant), or by timing the
        cheapest few candidates on data of the plan's shapes (takes a few of their run
        times; the choice is remembered for equal problems in this process).
    **options
        The keyword arguments of that function: `stride`, `padding`, `pad_mode`, `cval`,
        `dilation`, `channel_axis`, `method`, `out_dtype`, `threads` for correlate/convolve;
        `stride`, `padding`, `dilation`, `groups`, `padding_mode`, `layout`, `method`,
        `threads` for conv*d.

    Returns
    -------
    Plan
        Call it as ``p(x, k)`` (``p(input, weight, bias)`` for conv*d). ``p.method`` is the
        chosen method, ``p.explain()`` tells why; ``p.out_shape`` is the result's shape. A
        plan may be called from several threads at once.

    Raises
    ------
    ValueError, TypeError
        As the planned function would, for the same arguments.

    Examples
    --------
    >>> import numpy as np
    >>> import strideconv
    >>> p = strideconv.plan((7, 7), (3, 3), np.int64, stride=2)
    >>> p.out_shape, p.method in strideconv.methods()
    ((3, 3), True)
    >>> x = np.arange(49).reshape(7, 7)
    >>> p(x, np.ones((3, 3), dtype=np.int64))
    array([[ 72,  90, 108],
           [198, 216, 234],
           [324, 342, 360]])
    >>> "chosen" in p.explain()
    True

    A conv2d plan, channels last:

    >>> q = strideconv.plan((8, 16, 16, 3), (4, 3, 3, 3), np.float32, op="conv2d",
    ...                     stride=2, padding="same", layout="NHWC")
    >>> q.out_shape
    (8, 8, 8, 4)
    """
    if op in ("correlate", "convolve"):
        return _core.plan_signal(
            x_shape,
            k_shape,
            dtype,
            op == "convolve",
            *_options(op, options, _SIGNAL_OPTIONS),
            planning,
        )
    rank = _RANKS.get(op) if isinstance(op, str) else None
    if rank is None:
        raise ValueError(
            f"invalid op={op!r}: expected 'correlate', 'convolve', 'conv1d', 'conv2d' or 'conv3d'"
        )
    return _core.plan_batched(
        rank, x_shape, k_shape, dtype, *_options(op, options, _BATCHED_OPTIONS), planning
    )


def methods() -> list[str]:
    """Names of the methods this build can run (``method=`` also takes ``"auto"``).

    Returns
    -------
    list of str
        In the order reports list them.

    Examples
    --------
    >>> import strideconv
    >>> "naive" in strideconv.methods() and "fft" in strideconv.methods()
    True
    """
    return _core.methods()


def build_info() -> dict[str, Any]:
    """Facts about this build of the compiled core.

    Returns
    -------
    dict
        ``version``, ``profile`` ("release" or "debug"), ``lto`` (link-time optimisation of
        the build: "thin" for a release build as published, "off" for a faster-compiling
        build such as the CI's, which computes the same results more slowly), ``target``
        (architecture and OS),
        ``cpu_features`` (detected at run time), ``kernel_isa`` (the instruction set the SIMD
        kernels use: "avx512", "avx2" or "scalar"; the environment variable
        ``STRIDECONV_ISA`` can narrow it), ``default_threads`` and ``methods``.

    Examples
    --------
    >>> import strideconv
    >>> info = strideconv.build_info()
    >>> info["version"] == strideconv.__version__
    True
    >>> sorted(info)
    ['cpu_features', 'default_threads', 'kernel_isa', 'lto', 'methods', 'profile', 'target', 'version']
    """
    return _core.build_info()
