"""Every memory layout gives the result of the same values in a plain C-contiguous array."""

from __future__ import annotations

import numpy as np
import pytest

import strideconv

DTYPES = [np.float64, np.float32, np.int16, np.int64, np.uint32, np.bool_, np.complex128]


def base(dtype, shape=(9, 11)):
    rng = np.random.default_rng(0)
    a = rng.integers(-4, 5, shape)
    if np.dtype(dtype).kind == "b":
        a = a > 0
    elif np.dtype(dtype).kind == "u":
        a = np.abs(a)
    return a.astype(dtype)


def misaligned(a):
    """The same values in a buffer that starts one byte off."""
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    out = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    return out


def odd_strides(a):
    """The values as one field of a structured array: strides that are not whole elements."""
    rec = np.zeros(a.shape, dtype=[("pad", "u1"), ("v", a.dtype)])
    rec["v"] = a
    return rec["v"]


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


LAYOUTS = {
    "c": lambda a: np.ascontiguousarray(a),
    "fortran": lambda a: np.asfortranarray(a),
    "transposed": lambda a: np.ascontiguousarray(a.T).T,
    "strided": lambda a: np.repeat(np.repeat(a, 2, axis=0), 3, axis=1)[::2, ::3],
    "negative": lambda a: np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])[
        (slice(None, None, -1),) * a.ndim
    ],
    "negative-row": lambda a: np.ascontiguousarray(a[::-1])[::-1],
    "read-only": read_only,
    "byteswapped": lambda a: a.astype(a.dtype.newbyteorder("S")),
    "misaligned": misaligned,
    "record-field": odd_strides,
    "list": lambda a: a.tolist(),
    "matrix-subclass": lambda a: np.asmatrix(a),
}


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_correlate_any_layout(layout, dtype):
    x = base(dtype)
    k = base(dtype, (3, 4))
    want = strideconv.correlate(x, k, stride=(2, 3), padding=1, pad_mode="reflect")
    xl, kl = LAYOUTS[layout](x), LAYOUTS[layout](k)
    if layout == "list" and np.dtype(dtype).kind not in "b":
        # A list loses the dtype; numpy reads it back as int64 or float64 or complex128.
        want = strideconv.correlate(np.asarray(xl), np.asarray(kl), stride=(2, 3), padding=1,
                                    pad_mode="reflect")
    got = strideconv.correlate(xl, kl, stride=(2, 3), padding=1, pad_mode="reflect")
    assert type(got) is np.ndarray
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_views_are_read_in_place_and_inputs_untouched():
    x = base(np.float64, (20, 20))
    view = x[::-2, 1::3]
    before = x.copy()
    got = strideconv.correlate(view, np.ones((2, 2)), method="naive")
    np.testing.assert_array_equal(got, strideconv.correlate(view.copy(), np.ones((2, 2))))
    np.testing.assert_array_equal(x, before)
    assert got.flags.owndata or got.base is not None
    assert got.flags.c_contiguous and got.flags.writeable


def test_broadcast_zero_strides():
    x = np.broadcast_to(np.arange(7.0), (5, 7))
    got = strideconv.correlate(x, np.ones((2, 3)))
    np.testing.assert_array_equal(got, strideconv.correlate(np.ascontiguousarray(x), np.ones((2, 3))))


@pytest.mark.parametrize("layout", ["fortran", "negative", "byteswapped", "misaligned", "read-only"])
def test_conv2d_any_layout(layout):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 8, 8))
    w = rng.normal(size=(4, 3, 3, 3))
    b = rng.normal(size=4)
    want = strideconv.conv2d(x, w, b, stride=2, padding=1)
    make = LAYOUTS[layout]
    got = strideconv.conv2d(make(x), make(w), make(b), stride=2, padding=1)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # channels-last view of a channels-first buffer: a permuted, non-contiguous input
    got_last = strideconv.conv2d(np.moveaxis(make(x), 1, -1), w, b, stride=2, padding=1,
                                 layout="NHWC")
    np.testing.assert_allclose(np.moveaxis(got_last, -1, 1), want, rtol=1e-12)
