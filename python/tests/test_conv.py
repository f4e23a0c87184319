"""conv1d / conv2d / conv3d follow torch.nn.functional semantics.

The oracle is `reference.torch_reference`, the definition in plain numpy; PyTorch and JAX
are extra oracles when installed (skipped cleanly otherwise: CI does not need them).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import strideconv
from reference import random_array, tf_same, torch_reference, winograd_takes

CONV = {1: strideconv.conv1d, 2: strideconv.conv2d, 3: strideconv.conv3d}
LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}
FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
DTYPES = [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_, np.complex64,
          np.complex128]
PADDING_MODES = ["zeros", "reflect", "replicate", "circular"]


def to_last(a):
    return np.moveaxis(a, 1, -1)


def assert_close(got, want, dtype):
    if np.dtype(dtype).kind in "biu":
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
    else:
        assert got.dtype == np.dtype(dtype)
        tol = 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * (1 + np.abs(want).max()))


@st.composite
def conv_requests(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    cin_g = draw(st.integers(1, 2))
    cout_g = draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    max_len = {1: 10, 2: 7, 3: 5}[rank]
    spatial = [draw(st.integers(2, max_len)) for _ in range(rank)]
    kernel = [draw(st.integers(1, min(3, s))) for s in spatial]
    kw = {
        "stride": draw(st.integers(1, 3)) if draw(st.booleans()) else
        tuple(draw(st.integers(1, 3)) for _ in range(rank)),
        "dilation": draw(st.sampled_from([1, 1, 2])),
        "groups": groups,
        "padding_mode": draw(st.sampled_from(PADDING_MODES)),
    }
    dilation = kw["dilation"]
    form = draw(st.sampled_from(["int", "tuple", "valid", "same"]))
    # Reflect padding needs pad < length, as in PyTorch; keep pads small.
    max_pad = min(spatial) - 1
    if form == "int":
        kw["padding"] = draw(st.integers(0, max_pad))
    elif form == "tuple":
        kw["padding"] = tuple(draw(st.integers(0, max_pad)) for _ in range(rank))
    else:
        kw["padding"] = form
    # Keep the dilated kernel inside the padded input.
    for a in range(rank):
        while dilation * (kernel[a] - 1) + 1 > spatial[a] and kernel[a] > 1:
            kernel[a] -= 1
    x_shape = (n, groups * cin_g, *spatial)
    w_shape = (groups * cout_g, cin_g, *kernel)
    dtype = draw(st.sampled_from(DTYPES))
    bias = draw(st.booleans())
    layout = draw(st.sampled_from(["first", "last"]))
    method = draw(st.sampled_from(["auto"] + [m for m in strideconv.methods()]))
    seed = draw(st.integers(0, 2**32 - 1))
    return rank, x_shape, w_shape, dtype, bias, layout, method, kw, seed


@given(conv_requests())
def test_conv_matches_torch_semantics(request):
    rank, x_shape, w_shape, dtype, with_bias, layout, method, kw, seed = request
    rng = np.random.default_rng(seed)
    x = random_array(rng, x_shape, dtype)
    w = random_array(rng, w_shape, dtype)
    b = random_array(rng, (w_shape[0],), dtype) if with_bias else None
    want = torch_reference(x, w, b, **kw)
    if np.dtype(dtype).kind in "biu" and method in ("fft", "fft_full"):
        with pytest.raises(ValueError, match="method"):
            CONV[rank](x, w, b, method=method, **kw)
        return
    if method == "winograd" and not winograd_takes(
        dtype, w_shape[2:], kw.get("stride", 1), kw.get("dilation", 1)
    ):
        with pytest.raises(ValueError, match="winograd"):
            CONV[rank](x, w, b, method=method, **kw)
        return
    if layout == "last":
        got = CONV[rank](to_last(x), w, b, layout=LAST[rank], method=method, **kw)
        got = np.moveaxis(got, -1, 1)
    else:
        got = CONV[rank](x, w, b, method=method, **kw)
    assert got.shape == want.shape
    assert_close(got, want, dtype)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("n,f,s,d", [(7, 3, 2, 1), (8, 3, 2, 1), (8, 4, 3, 1), (5, 2, 2, 2), (4, 3, 5, 1)])
def test_same_padding_follows_the_tensorflow_rule(rank, n, f, s, d):
    x = np.random.default_rng(0).normal(size=(1, 2) + (n,) * rank)
    w = np.random.default_rng(1).normal(size=(3, 2) + (f,) * rank)
    got = CONV[rank](x, w, stride=s, dilation=d, padding="same")
    assert got.shape[2:] == (-(-n // s),) * rank
    before, after = tf_same(n, f, s, d)
    assert after - before in (0, 1)  # the odd element at the end
    want = torch_reference(x, w, stride=s, dilation=d, padding=((before, after),) * rank)
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_unbatched_input_like_pytorch():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 9, 9))
    w = rng.normal(size=(4, 2, 3, 3))
    b = rng.normal(size=4)
    got = strideconv.conv2d(x, w, b, stride=2, padding=1)
    want = strideconv.conv2d(x[None], w, b, stride=2, padding=1)[0]
    assert got.shape == (4, 5, 5)
    np.testing.assert_allclose(got, want)
    got_last = strideconv.conv2d(np.moveaxis(x, 0, -1), w, b, stride=2, padding=1, layout="NHWC")
    np.testing.assert_allclose(np.moveaxis(got_last, -1, 0), want)


def test_complex_weights_are_not_conjugated():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 2, 6)) + 1j * rng.normal(size=(1, 2, 6))
    w = rng.normal(size=(3, 2, 3)) + 1j * rng.normal(size=(3, 2, 3))
    want = torch_reference(x, w)
    # (winograd computes 2-D and 3-D kernels only.)
    for method in ["auto"] + [m for m in strideconv.methods() if m != "winograd"]:
        np.testing.assert_allclose(strideconv.conv1d(x, w, method=method), want, atol=1e-10)


def test_integer_bias_is_exact():
    x = np.full((1, 1, 3), 2**40, dtype=np.int64)
    w = np.full((1, 1, 2), 2**20, dtype=np.int64)
    b = np.array([1], dtype=np.int64)
    got = strideconv.conv1d(x, w, b)
    assert got.tolist() == [[[2 * 2**60 + 1, 2 * 2**60 + 1]]]


def test_layout_strings_are_checked_per_rank():
    x = np.ones((1, 2, 5, 5))
    w = np.ones((1, 2, 3, 3))
    for good in ("NCHW", "NHWC"):
        strideconv.conv2d(x if good == "NCHW" else to_last(x), w, layout=good)
    with pytest.raises(ValueError, match="layout"):
        strideconv.conv2d(x, w, layout="NWC")


# --- extra oracles, when installed --------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_against_pytorch(rank, padding_mode):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(rank)
    x = rng.normal(size=(2, 4) + (6,) * rank)
    w = rng.normal(size=(6, 2) + (3,) * rank)
    b = rng.normal(size=6)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    for stride, padding, dilation in [(1, 1, 1), (2, 2, 1), (1, "same", 2), (3, 0, 1)]:
        if padding_mode != "zeros":
            if padding == "same":
                continue
            xt = F.pad(torch.from_numpy(x), (padding,) * (2 * rank), mode=padding_mode)
            want = conv(xt, torch.from_numpy(w), torch.from_numpy(b), stride=stride,
                        dilation=dilation, groups=2)
        else:
            want = conv(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                        stride=stride, padding=padding, dilation=dilation, groups=2)
        got = CONV[rank](x, w, b, stride=stride, padding=padding, dilation=dilation, groups=2,
                         padding_mode=padding_mode)
        np.testing.assert_allclose(got, want.numpy(), atol=1e-10)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_same_against_jax(rank, stride):
    pytest.importorskip("jax")
    from jax import lax

    rng = np.random.default_rng(stride)
    x = rng.normal(size=(1, 3) + (7,) * rank).astype(np.float32)
    w = rng.normal(size=(4, 3) + (4,) * rank).astype(np.float32)
    want = lax.conv_general_dilated(x, w, (stride,) * rank, "SAME")
    got = CONV[rank](x, w, stride=stride, padding="same")
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-4)


def test_winograd_layers_match_torch_semantics():
    """Stride-1 3×3 layers under method="winograd": channels first and last, padding modes,
    groups, a 3-D layer with a one-deep kernel, float32 and complex128."""
    rng = np.random.default_rng(7)
    cases = [
        (np.float32, (2, 6, 11, 9), (5, 6, 3, 3), {"padding": 1}),
        (np.float64, (1, 4, 8, 13), (8, 2, 3, 3), {"padding": "same", "groups": 2,
                                                    "padding_mode": "reflect"}),
        (np.complex128, (1, 3, 7, 6), (2, 3, 3, 3), {"padding": (2, 0)}),
    ]
    for dtype, xs, ws, kw in cases:
        x, w = random_array(rng, xs, dtype), random_array(rng, ws, dtype)
        want = torch_reference(x, w, **kw)
        assert_close(strideconv.conv2d(x, w, method="winograd", **kw), want, dtype)
        last = strideconv.conv2d(to_last(x), w, method="winograd", layout="NHWC", **kw)
        assert_close(np.moveaxis(last, -1, 1), want, dtype)
    x, w = rng.normal(size=(1, 3, 4, 6, 7)), rng.normal(size=(4, 3, 1, 3, 3))
    assert_close(strideconv.conv3d(x, w, padding=(0, 1, 1), method="winograd"),
                 torch_reference(x, w, padding=(0, 1, 1)), np.float64)
    with pytest.raises(ValueError, match="winograd computes stride 1"):
        strideconv.conv2d(x[:, :, 0], w[:, :, 0], stride=2, method="winograd")
    with pytest.raises(ValueError, match="integers"):
        strideconv.conv2d(np.ones((1, 1, 5, 5), np.int64), np.ones((1, 1, 3, 3), np.int64),
                          method="winograd")

