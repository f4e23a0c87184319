"""Malformed calls raise the exception SPEC §5 names, with a message naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

import strideconv as sc

X = np.ones((7, 7))
K = np.ones((3, 3))
XI = np.ones((7, 7), dtype=np.int64)
IMG = np.ones((1, 2, 6, 6))
W = np.ones((4, 2, 3, 3))

# (description, call, exception, text the message must contain)
CASES = [
    ("stride zero", lambda: sc.correlate(X, K, stride=0), ValueError, "stride=0"),
    ("stride negative", lambda: sc.correlate(X, K, stride=-2), ValueError, "stride=-2"),
    ("stride per-axis length", lambda: sc.correlate(X, K, stride=(1, 2, 3)), ValueError, "stride"),
    ("stride empty", lambda: sc.correlate(X, K, stride=()), ValueError, "stride=()"),
    ("stride float", lambda: sc.correlate(X, K, stride=1.5), TypeError, "stride=1.5"),
    ("stride string", lambda: sc.correlate(X, K, stride="2"), TypeError, "stride='2'"),
    ("stride bool", lambda: sc.correlate(X, K, stride=True), TypeError, "stride=True"),
    ("stride huge", lambda: sc.correlate(X, K, stride=10**30), ValueError, "stride"),
    ("dilation zero", lambda: sc.correlate(X, K, dilation=0), ValueError, "dilation=0"),
    ("dilation per-axis", lambda: sc.correlate(X, K, dilation=(1, 0)), ValueError, "dilation"),
    ("padding negative", lambda: sc.correlate(X, K, padding=-1), ValueError, "padding=-1"),
    ("padding negative pair", lambda: sc.correlate(X, K, padding=((1, -1), (0, 0))), ValueError,
     "padding"),
    ("padding unknown name", lambda: sc.correlate(X, K, padding="middle"), ValueError,
     "padding='middle'"),
    ("padding too many axes", lambda: sc.correlate(X, K, padding=(1, 2, 3)), ValueError,
     "padding=(1, 2, 3)"),
    ("padding triple", lambda: sc.correlate(X, K, padding=((1, 2, 3), (0, 0))), TypeError,
     "padding"),
    ("padding float", lambda: sc.correlate(X, K, padding=1.5), TypeError, "padding=1.5"),
    ("pad_mode ndimage name", lambda: sc.correlate(X, K, pad_mode="nearest"), ValueError,
     "scipy.ndimage"),
    ("pad_mode ndimage mirror", lambda: sc.correlate(X, K, pad_mode="mirror"), ValueError,
     "pad_mode='mirror'"),
    ("pad_mode unknown", lambda: sc.correlate(X, K, pad_mode="bogus"), ValueError,
     "pad_mode='bogus'"),
    ("pad_mode not a string", lambda: sc.correlate(X, K, pad_mode=3), TypeError, "pad_mode=3"),
    ("method unknown", lambda: sc.correlate(X, K, method="magic"), ValueError, "method='magic'"),
    ("method refuses the stride", lambda: sc.correlate(X, K, stride=2, method="winograd"),
     ValueError, "method='winograd'"),
    ("method fft on integers", lambda: sc.correlate(XI, XI[:3, :3], method="fft"), ValueError,
     "method='fft'"),
    ("method not a string", lambda: sc.correlate(X, K, method=None), TypeError, "method=None"),
    ("kernel larger than input", lambda: sc.correlate(np.ones(3), np.ones(5)), ValueError,
     "k shape (5,)"),
    ("dilated kernel too large", lambda: sc.correlate(np.ones(5), np.ones(3), dilation=3),
     ValueError, "k shape"),
    ("rank mismatch", lambda: sc.correlate(X, np.ones(3)), ValueError, "k shape (3,)"),
    ("four axes", lambda: sc.correlate(np.ones((2,) * 4), np.ones((1,) * 4)), ValueError,
     "x shape (2, 2, 2, 2)"),
    ("zero-d input", lambda: sc.correlate(np.float64(3), np.float64(1)), ValueError, "x shape ()"),
    ("empty axis", lambda: sc.correlate(np.ones(0), np.ones(1)), ValueError, "x shape (0,)"),
    ("empty kernel axis", lambda: sc.correlate(np.ones(4), np.ones(0)), ValueError, "k"),
    ("channel_axis out of range", lambda: sc.correlate(X, K, channel_axis=5), ValueError,
     "channel_axis=5"),
    ("channel_axis float", lambda: sc.correlate(X, K, channel_axis=1.0), TypeError,
     "channel_axis=1.0"),
    ("channel mismatch", lambda: sc.correlate(np.ones((5, 5, 3)), np.ones((2, 2, 2)),
                                              channel_axis=-1), ValueError, "k shape (2, 2, 2)"),
    ("object array", lambda: sc.correlate(np.array([1, "a"], dtype=object), np.ones(1)),
     TypeError, "x dtype object"),
    ("string kernel", lambda: sc.correlate(np.ones(3), np.array(["a"])), TypeError, "k dtype"),
    ("datetime input", lambda: sc.correlate(np.arange(3).astype("datetime64[D]"), np.ones(1)),
     TypeError, "x dtype"),
    ("long double", lambda: sc.correlate(np.ones(3, np.longdouble), np.ones(1)), TypeError,
     "x dtype"),
    ("ragged list", lambda: sc.correlate([[1, 2], [3]], [1]), ValueError, "x"),
    ("cval string", lambda: sc.correlate(X, K, padding=1, cval="a"), TypeError, "cval='a'"),
    ("cval complex", lambda: sc.correlate(X, K, padding=1, cval=1j), ValueError, "cval=1j"),
    ("cval fraction for integers", lambda: sc.correlate(XI, XI[:3, :3], padding=1, cval=0.5),
     ValueError, "cval=0.5"),
    ("out_dtype not a dtype", lambda: sc.correlate(X, K, out_dtype="foo"), TypeError,
     "out_dtype='foo'"),
    ("out_dtype float for integers", lambda: sc.correlate(XI, XI[:3, :3], out_dtype=np.float64),
     TypeError, "out_dtype"),
    ("out_dtype real for complex", lambda: sc.correlate(X * 1j, K, out_dtype=np.float64),
     TypeError, "out_dtype"),
    ("threads zero", lambda: sc.correlate(X, K, threads=0), ValueError, "threads=0"),
    ("threads negative", lambda: sc.correlate(X, K, threads=-2), ValueError, "threads=-2"),
    ("threads float", lambda: sc.correlate(X, K, threads=2.0), TypeError, "threads=2.0"),
    ("groups not dividing channels", lambda: sc.conv2d(IMG, np.ones((4, 1, 3, 3)), groups=4),
     ValueError, "groups=4"),
    ("groups not dividing outputs", lambda: sc.conv2d(IMG, np.ones((3, 1, 3, 3)), groups=2),
     ValueError, "groups=2"),
    ("groups zero", lambda: sc.conv2d(IMG, W, groups=0), ValueError, "groups=0"),
    ("weight channels", lambda: sc.conv2d(IMG, np.ones((4, 3, 3, 3))), ValueError,
     "weight shape (4, 3, 3, 3)"),
    ("weight rank", lambda: sc.conv2d(IMG, np.ones((4, 2, 3))), ValueError, "weight shape"),
    ("input rank", lambda: sc.conv2d(np.ones((1, 2, 3, 4, 4)), W), ValueError, "input shape"),
    ("conv kernel too large", lambda: sc.conv2d(IMG, np.ones((4, 2, 7, 7))), ValueError,
     "weight shape (4, 2, 7, 7)"),
    ("conv padding full", lambda: sc.conv2d(IMG, W, padding="full"), ValueError,
     "padding='full'"),
    ("padding_mode ndimage name", lambda: sc.conv2d(IMG, W, padding=1, padding_mode="nearest"),
     ValueError, "padding_mode='nearest'"),
    ("layout unknown", lambda: sc.conv2d(IMG, W, layout="NCWH"), ValueError, "layout='NCWH'"),
    ("layout of another rank", lambda: sc.conv1d(np.ones((1, 2, 6)), np.ones((3, 2, 3)),
                                                 layout="NHWC"), ValueError, "layout='NHWC'"),
    ("bias shape", lambda: sc.conv2d(IMG, W, np.ones(3)), ValueError, "bias shape (3,)"),
    ("bias dtype", lambda: sc.conv2d(IMG, W, np.array(["a"] * 4)), TypeError, "bias dtype"),
    ("plan op", lambda: sc.plan((7,), (3,), np.float64, op="conv4d"), ValueError, "op='conv4d'"),
    ("plan dtype", lambda: sc.plan((7,), (3,), object), TypeError, "dtype"),
    ("plan dtype string", lambda: sc.plan((7,), (3,), "not-a-dtype"), TypeError, "dtype"),
    ("plan unknown keyword", lambda: sc.plan((7,), (3,), np.float64, groups=2), TypeError,
     "groups"),
    ("plan negative shape", lambda: sc.plan((-1, 3), (3,), np.float64), ValueError, "x_shape"),
    ("plan call shape", lambda: sc.plan((7,), (3,), np.float64)(np.ones(8), np.ones(3)),
     ValueError, "x shape (8,)"),
    ("plan call dtype", lambda: sc.plan((7,), (3,), np.float32)(np.ones(7), np.ones(3)),
     TypeError, "x dtype float64"),
    ("plan integer call with floats", lambda: sc.plan((7,), (3,), np.int64)(np.ones(7),
                                                                           np.ones(3)),
     TypeError, "x dtype float64"),
    ("plan bias on correlate", lambda: sc.plan((7,), (3,), np.float64)(np.ones(7), np.ones(3),
                                                                       np.ones(1)),
     TypeError, "bias"),
    ("dilation wraps a word", lambda: sc.correlate(X, np.ones((5, 5)), dilation=2**62),
     ValueError, "dilation=[4611686018427387904]"),
    ("padding past a word", lambda: sc.correlate(X, K, dilation=2**62, padding="full"),
     ValueError, "padding=(9223372036854775808, 9223372036854775808)"),
    ("output not addressable", lambda: sc.correlate(X, K, padding=2**40), MemoryError,
     "output would have shape"),
    ("output refused", lambda: sc.correlate(X, K, padding=2**25), MemoryError,
     "the system refused 32.0 PiB"),
    ("output refused, conv2d", lambda: sc.conv2d(IMG, W, padding=2**25), MemoryError,
     "output would have shape (1, 4, 67108868, 67108868)"),
    ("padded copy refused", lambda: sc.correlate(X, K, padding=2**25, stride=2**24,
                                                 method="naive"), MemoryError,
     "padded copy of the input"),
    ("cval beside zeros", lambda: sc.correlate(X, K, padding=1, pad_mode="zeros", cval=100),
     ValueError, "invalid cval=100: pad_mode='zeros' pads with zeros"),
    ("x None", lambda: sc.correlate(None, K), TypeError, "invalid x=None"),
    ("k None", lambda: sc.correlate(X, None), TypeError, "invalid k=None"),
    ("weight None", lambda: sc.conv2d(IMG, None), TypeError, "invalid weight=None"),
    ("plan call input None", lambda: sc.plan((1, 2, 6, 6), (4, 2, 3, 3), np.float64,
                                              op="conv2d")(None, W), TypeError,
     "invalid input=None"),
    ("weight without output channels", lambda: sc.conv2d(IMG, np.ones((0, 2, 3, 3))),
     ValueError, "weight shape (0, 2, 3, 3)"),
    ("plan conv weight shape", lambda: sc.plan((1, 2, 6, 6), (4, 2, 3, 3), np.float64,
                                               op="conv2d")(IMG, np.ones((4, 2, 2, 2))),
     ValueError, "weight shape (4, 2, 2, 2)"),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("call,exc,text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_call(call, exc, text):
    with pytest.raises(exc) as info:
        call()
    assert type(info.value) is exc, repr(info.value)
    assert text in str(info.value), str(info.value)


def test_no_panic_reaches_python():
    """Internal errors would be RuntimeError; the extreme requests above never produce one."""
    for _, call, exc, _ in CASES:
        try:
            call()
        except exc:
            pass


def test_ndimage_message_explains_the_names():
    with pytest.raises(ValueError) as info:
        sc.correlate(X, K, padding=1, pad_mode="nearest")
    assert "numpy" in str(info.value) and "edge" in str(info.value)


@pytest.mark.parametrize("method", ["auto", *sc.methods()])
def test_huge_strides_and_paddings_are_computed(method):
    """Strides of 10^12 and paddings of 10^7 on a 10-element signal: every method that
    takes the problem answers at once (the row path and im2col once sized buffers by the
    stride and aborted the process; the FFT visited every phase)."""
    x, k = np.arange(10.0), np.array([1.0, 10.0, 100.0])
    cases = [
        (dict(stride=10**12), [210.0]),
        (dict(stride=10**11), [210.0]),
        (dict(padding=[(10**7, 0)], stride=10**7), [0.0, 210.0]),
    ]
    for kw, want in cases:
        try:
            got = sc.correlate(x, k, method=method, **kw)
        except ValueError as exc:  # a method that refuses the problem says so
            assert "cannot compute" in str(exc), (kw, exc)
            continue
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9, err_msg=str(kw))


@pytest.mark.parametrize("method", ["auto", *sc.methods()])
def test_an_empty_batch_gives_an_empty_result(method):
    out = sc.conv2d(np.ones((0, 2, 6, 6)), np.ones((4, 2, 3, 3)), method=method)
    assert out.shape == (0, 4, 4, 4) and out.dtype == np.float64
