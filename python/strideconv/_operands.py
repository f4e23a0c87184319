"""Turning whatever the user passed into arrays the compiled core reads in place.

The core reads numpy arrays of bool, int8..int64, uint8..uint64, float32, float64,
complex64 and complex128 in native byte order, aligned, with any strides (negative ones
too). Such arrays never come here: ``_core`` checks them itself and passes them on without a
copy. Everything else comes here once per call and leaves as such arrays, copied only when
it has to be (a conversion, a byte swap, a misaligned buffer).
"""

from __future__ import annotations

import numpy as np

# Numbers the core computes with; float16 is computed in float32.
_NUMERIC_KINDS = "biufc"
_INTEGER_KINDS = "biu"


def _as_array(obj: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(obj)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"invalid {name}: cannot be read as a numeric array ({exc})") from None
    dtype = arr.dtype
    if dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"invalid {name} dtype {dtype}: expected bool, integer, float or complex numbers"
        )
    if (dtype.kind == "f" and dtype.itemsize > 8) or (dtype.kind == "c" and dtype.itemsize > 16):
        raise TypeError(
            f"invalid {name} dtype {dtype}: extended precision is not supported; "
            f"convert to float64 or complex128"
        )
    return arr


def _readable(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself if the core can read it in place, else a native, aligned copy."""
    dtype = arr.dtype
    if (
        dtype.isnative
        and arr.flags.aligned
        and all(s % dtype.itemsize == 0 for s in arr.strides)
    ):
        return arr
    return arr.astype(dtype.newbyteorder("="), order="K")


def normalize(
    objs: tuple[object, ...], names: tuple[str, ...], target: np.dtype | None
) -> tuple[tuple[np.ndarray | None, ...], np.dtype | None]:
    """Make the operands of one call readable by the core.

    Parameters
    ----------
    objs : tuple
        The operands (``x, k`` or ``input, weight, bias``); ``None`` for an absent bias.
    names : tuple of str
        Their names, for error messages.
    target : numpy.dtype or None
        A plan's compute dtype, or None to promote as numpy does.

    Returns
    -------
    arrays : tuple
        The operands as arrays sharing one dtype, or all of integer or bool dtypes (exact
        integer arithmetic needs no common type).
    default_out : numpy.dtype or None
        The output dtype when it is not the compute dtype (float16 computes in float32).
    """
    for o, n in zip(objs, names):
        # An absent bias is None; every other operand must be given.
        if o is None and n != "bias":
            raise TypeError(f"invalid {n}=None: expected an array")
    arrays = [None if o is None else _as_array(o, n) for o, n in zip(objs, names)]
    present = [(a, n) for a, n in zip(arrays, names) if a is not None]
    all_integer = all(a.dtype.kind in _INTEGER_KINDS for a, _ in present)
    default_out = None
    common: np.dtype | None
    if target is None:
        if all_integer:
            common = None
        else:
            common = np.result_type(*(a for a, _ in present))
            if common == np.float16:
                common, default_out = np.dtype(np.float32), common
    elif target.kind in _INTEGER_KINDS:
        for a, n in present:
            if a.dtype.kind not in _INTEGER_KINDS:
                raise TypeError(
                    f"invalid {n} dtype {a.dtype}: the plan computes exact integers; "
                    f"pass integer or bool arrays"
                )
        common = None
    else:
        for a, n in present:
            if not np.can_cast(a.dtype, target, "safe"):
                raise TypeError(
                    f"invalid {n} dtype {a.dtype}: the plan computes in {target} and "
                    f"{a.dtype} does not convert to it safely; make a plan for {a.dtype}"
                )
        common = target
    out = tuple(
        None
        if a is None
        else _readable(a if common is None or a.dtype == common else a.astype(common))
        for a in arrays
    )
    return out, default_out
