"""Integers are exact, never wrapped and never rounded through floats (SPEC §3)."""

from __future__ import annotations

import numpy as np
import pytest

import strideconv
from reference import exact_correlate

SEED_X = np.array([[2, 3, 7, 4, 6, 2, 9], [6, 6, 9, 8, 7, 4, 3], [3, 4, 8, 3, 8, 9, 7],
                   [7, 8, 3, 6, 6, 3, 4], [4, 2, 1, 8, 3, 4, 6], [3, 2, 4, 1, 9, 8, 3],
                   [0, 1, 3, 9, 2, 1, 4]])
SEED_K = np.array([[3, 4, 4], [1, 0, 2], [-1, 0, 3]])
SEED_OUT = [[91, 100, 88], [69, 91, 117], [44, 72, 74]]
EXACT_METHODS = [m for m in strideconv.methods() if m not in ("fft", "fft_full", "winograd")]


@pytest.mark.parametrize("method", ["auto"] + EXACT_METHODS)
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint64, np.float32,
                                   np.float64, np.complex64])
def test_seed_example(method, dtype):
    k = SEED_K if np.dtype(dtype).kind != "u" else SEED_K + 1
    want = SEED_OUT if np.dtype(dtype).kind != "u" else exact_correlate(SEED_X, k, 2).tolist()
    got = strideconv.correlate(SEED_X.astype(dtype), k.astype(dtype), stride=2, method=method)
    assert got.tolist() == want
    if np.dtype(dtype).kind in "iu":
        assert got.dtype == np.int64


@pytest.mark.parametrize("method", ["auto"] + EXACT_METHODS)
def test_exact_beyond_2_53(method):
    rng = np.random.default_rng(7)
    x = rng.integers(-(2**40), 2**40, (9, 9), dtype=np.int64)
    k = rng.integers(-(2**19), 2**19, (3, 3), dtype=np.int64)
    got = strideconv.correlate(x, k, stride=2, method=method)
    want = exact_correlate(x, k, 2)
    assert np.abs(want).max() > 2**53  # floats could not hold these
    assert got.tolist() == want.tolist()
    # and float64 would have rounded: the result is not a float round-trip
    as_float = strideconv.correlate(x.astype(np.float64), k.astype(np.float64), stride=2,
                                    method="naive")
    assert as_float.astype(object).tolist() != want.tolist()


def test_uint64_values_above_int64():
    x = np.array([2**64 - 1, 2**63, 5], dtype=np.uint64)
    k = np.array([1, -1], dtype=np.int8)  # mixed: computed exactly, not via float64
    assert strideconv.correlate(x, k).tolist() == [2**63 - 1, 2**63 - 5]
    with pytest.raises(OverflowError, match="int64"):
        strideconv.correlate(x, np.array([1, 0], dtype=np.uint8))
    got = strideconv.correlate(x, np.array([1, 0], dtype=np.uint8), out_dtype=np.uint64)
    assert got.dtype == np.uint64 and got.tolist() == [2**64 - 1, 2**63]


def test_overflow_error_instead_of_wrapping():
    x = np.full((4, 4), np.iinfo(np.int64).max, dtype=np.int64)
    with pytest.raises(OverflowError, match="out_dtype=int64"):
        strideconv.correlate(x, np.ones((2, 2), dtype=np.int64))
    with pytest.raises(OverflowError, match="out_dtype=int8"):
        strideconv.correlate(np.full(4, 100, np.int8), np.ones(2, np.int8), out_dtype=np.int8)
    with pytest.raises(OverflowError, match="uint8"):
        strideconv.correlate(np.arange(4), [1, -2], out_dtype="uint8")
    with pytest.raises(OverflowError):
        strideconv.conv1d(np.full((1, 1, 3), 2**62, np.int64), np.full((1, 1, 2), 2, np.int64))
    with pytest.raises(OverflowError):  # the bias can push a result out of range
        strideconv.conv1d(np.full((1, 1, 2), 2**62, np.int64), np.ones((1, 1, 1), np.int64),
                          np.array([2**62], np.int64))


def test_accumulator_bound_is_an_overflow_error():
    # |x| * sum|k| beyond the 128-bit accumulator: refused before computing.
    x = np.full(4, np.iinfo(np.int64).max, dtype=np.int64)
    k = np.full(2, np.iinfo(np.int64).min, dtype=np.int64)
    with pytest.raises(OverflowError):
        strideconv.correlate(x, k)


@pytest.mark.parametrize("out_dtype", [np.int8, np.int16, np.int32, np.uint16, np.uint64, "i4"])
def test_out_dtype_integer(out_dtype):
    got = strideconv.correlate(SEED_X, SEED_K, stride=2, out_dtype=out_dtype)
    assert got.dtype == np.dtype(out_dtype)
    assert got.tolist() == SEED_OUT


def test_out_dtype_other_byte_order():
    got = strideconv.correlate(SEED_X, SEED_K, stride=2, out_dtype=">i8")
    assert got.dtype == np.dtype(">i8")
    assert got.tolist() == SEED_OUT


def test_bool_inputs_count_exactly():
    x = np.array([True, True, False, True, True, True])
    got = strideconv.correlate(x, np.array([True, True, True]))
    assert got.dtype == np.int64
    assert got.tolist() == [2, 2, 2, 3]


def test_integer_padding_value_must_be_exact():
    got = strideconv.correlate(np.arange(3), [1, 1], padding=1, cval=2**40)
    assert got.tolist() == [2**40, 1, 3, 2 + 2**40]
    with pytest.raises(ValueError, match="cval"):
        strideconv.correlate(np.arange(3), [1, 1], padding=1, cval=0.5)
