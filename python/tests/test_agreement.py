"""correlate / convolve agree with SPEC §1's scipy oracle on random requests.

Every dtype, method, padding form and mode, stride, dilation and channel axis; requests
whose kernel does not fit must raise ValueError, and integer requests named to an FFT method
must be refused, never rounded.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import strideconv
from reference import (magnitude_bound, random_array, scipy_convolve, scipy_correlate,
                       winograd_takes)

INT_DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
              np.uint64]
FLOAT_DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
DTYPES = INT_DTYPES + FLOAT_DTYPES
PAD_MODES = ["constant", "reflect", "symmetric", "edge", "wrap", "zeros", "replicate", "circular"]
METHODS = strideconv.methods()
FFT_METHODS = {"fft", "fft_full"}


def axis_values(draw, rank, lo, hi):
    """An int for every axis, or a tuple with one per axis."""
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return tuple(draw(st.integers(lo, hi)) for _ in range(rank))


@st.composite
def signal_requests(draw, channels=False):
    rank = draw(st.integers(1, 2 if channels else 3))
    max_n = {1: 12, 2: 8, 3: 5}[rank]
    x_shape = [draw(st.integers(1, max_n)) for _ in range(rank)]
    k_shape = [draw(st.integers(1, 4)) for _ in range(rank)]
    kw = {
        "stride": axis_values(draw, rank, 1, 3),
        "dilation": axis_values(draw, rank, 1, 2),
        "pad_mode": draw(st.sampled_from(PAD_MODES)),
    }
    form = draw(st.sampled_from(["valid", "same", "full", "int", "ints", "pairs"]))
    if form in ("valid", "same", "full"):
        kw["padding"] = form
    elif form == "int":
        kw["padding"] = draw(st.integers(0, 3))
    elif form == "ints":
        kw["padding"] = tuple(draw(st.integers(0, 3)) for _ in range(rank))
    else:
        kw["padding"] = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(rank))
    if kw["pad_mode"] == "constant" and draw(st.booleans()):
        kw["cval"] = draw(st.integers(-3, 3))
    if channels:
        c = draw(st.integers(1, 4))
        axis = draw(st.integers(0, rank))
        x_shape.insert(axis, c)
        if draw(st.booleans()):
            k_shape.insert(axis, c)
        kw["channel_axis"] = axis - (rank + 1) if draw(st.booleans()) else axis
    dtype = draw(st.sampled_from(DTYPES))
    method = draw(st.sampled_from(["auto"] + METHODS))
    seed = draw(st.integers(0, 2**32 - 1))
    return x_shape, k_shape, dtype, method, kw, seed


def fits(x_shape, k_shape, kw) -> bool:
    """Does the dilated kernel fit the padded input along every convolved axis?"""
    axis = kw.get("channel_axis")
    xs, ks = list(x_shape), list(k_shape)
    if axis is not None:
        axis %= len(xs)
        del xs[axis]
        if len(ks) == len(x_shape):
            del ks[axis]
    rank = len(xs)
    dil = kw.get("dilation", 1)
    dil = (dil,) * rank if isinstance(dil, int) else dil
    pad = kw.get("padding", "valid")
    for a in range(rank):
        fe = dil[a] * (ks[a] - 1) + 1
        if pad in ("same", "full"):
            continue
        if pad == "valid":
            pads = 0
        elif isinstance(pad, int):
            pads = 2 * pad
        else:
            p = pad[a]
            pads = 2 * p if isinstance(p, int) else sum(p)
        if fe > xs[a] + pads:
            return False
    return True


def kernel_spatial(x_shape, k_shape, kw):
    """The kernel's convolved axes (without the channel axis, when it has one)."""
    ks = list(k_shape)
    axis = kw.get("channel_axis")
    if axis is not None and len(ks) == len(x_shape):
        del ks[axis % len(x_shape)]
    return ks


def check(op, oracle, request):
    x_shape, k_shape, dtype, method, kw, seed = request
    rng = np.random.default_rng(seed)
    x = random_array(rng, x_shape, dtype)
    k = random_array(rng, k_shape, dtype)
    if not fits(x_shape, k_shape, kw):
        with pytest.raises(ValueError, match="k shape"):
            op(x, k, method=method, **kw)
        return
    integer = np.dtype(dtype).kind in "biu"
    if method == "winograd" and not winograd_takes(
        dtype, kernel_spatial(x_shape, k_shape, kw), kw.get("stride", 1), kw.get("dilation", 1)
    ):
        with pytest.raises(ValueError, match="winograd"):
            op(x, k, method=method, **kw)
        return
    if integer and method in FFT_METHODS:
        with pytest.raises(ValueError, match="method"):
            op(x, k, method=method, **kw)
        return
    got = op(x, k, method=method, **kw)
    want = oracle(x, k, **kw)
    assert got.shape == want.shape
    if integer:
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
        return
    assert got.dtype == np.dtype(dtype)
    bound = magnitude_bound(x, k, **kw)
    rtol = 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11
    assert np.all(np.abs(got - want) <= rtol * (bound + 1)), (got, want)


@given(signal_requests())
def test_correlate_matches_scipy(request):
    check(strideconv.correlate, scipy_correlate, request)


@given(signal_requests())
def test_convolve_matches_scipy(request):
    check(strideconv.convolve, scipy_convolve, request)


@given(signal_requests(channels=True))
def test_channel_axis_matches_scipy(request):
    check(strideconv.correlate, scipy_correlate, request)


@given(signal_requests(channels=True))
def test_convolve_channel_axis_matches_scipy(request):
    check(strideconv.convolve, scipy_convolve, request)


CASES = [
    ((7, 7), (3, 3), {"stride": 2}),
    ((11,), (4,), {"stride": 3, "padding": "same"}),
    ((6, 9), (2, 3), {"stride": (2, 1), "padding": "full", "dilation": (1, 2)}),
    ((5, 6, 7), (2, 3, 2), {"stride": 2, "padding": ((1, 0), 2, (0, 3)), "pad_mode": "reflect"}),
    ((9, 8), (4, 4), {"stride": 3, "padding": 2, "pad_mode": "wrap"}),
    ((8, 8, 3), (3, 3, 3), {"stride": 2, "channel_axis": -1, "padding": "same"}),
    ((3, 8, 8), (3, 3), {"stride": 2, "channel_axis": 0, "pad_mode": "edge", "padding": 1}),
    # Stride 1 with 3×3 kernels: winograd's problems.
    ((9, 10), (3, 3), {"padding": 1, "pad_mode": "symmetric"}),
    ((7, 8, 2), (3, 3, 2), {"channel_axis": -1, "padding": "same"}),
    ((4, 7, 6), (1, 3, 3), {"padding": ((0, 0), 1, (2, 0))}),
]


@pytest.mark.parametrize("method", ["auto"] + METHODS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("op", ["correlate", "convolve"])
def test_every_method_and_dtype(op, case, dtype, method):
    x_shape, k_shape, kw = CASES[case]
    oracle = scipy_correlate if op == "correlate" else scipy_convolve
    check(getattr(strideconv, op), oracle, (x_shape, k_shape, dtype, method, kw, case))


def test_same_and_full_are_scipys_modes_then_strided():
    rng = np.random.default_rng(1)
    import scipy.signal

    for n, f, s in [(10, 4, 3), (9, 4, 2), (7, 2, 2), (5, 5, 1), (12, 6, 4)]:
        x, k = rng.normal(size=n), rng.normal(size=f)
        for mode in ("same", "full"):
            want = scipy.signal.correlate(x, k, mode=mode)[::s]
            np.testing.assert_allclose(strideconv.correlate(x, k, stride=s, padding=mode), want,
                                       atol=1e-12)
            want = scipy.signal.convolve(x, k, mode=mode)[::s]
            np.testing.assert_allclose(strideconv.convolve(x, k, stride=s, padding=mode), want,
                                       atol=1e-12)
        assert strideconv.correlate(x, k, stride=s, padding="same").shape == (-(-n // s),)


def test_mixed_dtypes_follow_numpy_promotion():
    x = np.arange(10, dtype=np.int16)
    k = np.ones(3, dtype=np.float32)
    assert strideconv.correlate(x, k).dtype == np.result_type(x, k) == np.float32
    x32 = np.arange(10, dtype=np.float32)
    assert strideconv.correlate(x32, np.ones(3)).dtype == np.float64
    assert strideconv.correlate(x32, np.ones(3, np.complex64)).dtype == np.complex64
    assert strideconv.correlate(np.arange(10, dtype=np.int8), [True, False]).dtype == np.int64
    # int64 with uint64: numpy would go to float64; integers stay exact here.
    big = np.array([2**63 - 1, 1, 2], dtype=np.uint64)
    got = strideconv.correlate(big, np.array([1, -1], dtype=np.int64))
    assert got.dtype == np.int64
    assert got.tolist() == [2**63 - 2, -1]


def test_float16_computes_in_float32_and_returns_float16():
    x = np.linspace(0, 1, 9, dtype=np.float16)
    got = strideconv.correlate(x, np.ones(3, np.float16), stride=2)
    assert got.dtype == np.float16
    want = scipy_correlate(x.astype(np.float32), np.ones(3, np.float32), stride=2)
    np.testing.assert_allclose(got, want, rtol=1e-3)


def test_complex_correlate_conjugates_the_kernel_and_convolve_does_not():
    x = np.array([1 + 2j, 3 - 1j, 0.5j, 2])
    k = np.array([1j, 2 - 1j])
    np.testing.assert_allclose(strideconv.correlate(x, k), np.correlate(x, k, mode="valid"))
    np.testing.assert_allclose(strideconv.convolve(x, k), np.convolve(x, k, mode="valid"))


def test_out_dtype_for_floats():
    x = np.arange(8.0)
    got = strideconv.correlate(x, [1.0, 1.0], out_dtype=np.float32)
    assert got.dtype == np.float32
    assert strideconv.correlate(x, [1.0, 1.0], out_dtype=np.complex128).dtype == np.complex128
    with pytest.raises(TypeError, match="out_dtype"):
        strideconv.correlate(x * 1j, [1.0, 1.0], out_dtype=np.float64)


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_every_kernel_isa_agrees(isa):
    """STRIDECONV_ISA narrows the SIMD kernels; every instruction set gives the same results."""
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np, strideconv as sc\n"
        "rng = np.random.default_rng(0)\n"
        "x, k = rng.normal(size=(40, 37)), rng.normal(size=(5, 4))\n"
        "out = [sc.correlate(x.astype(t), k.astype(t), stride=s, method=m)\n"
        "       for t in (np.float32, np.float64) for s in (1, 2, 3)\n"
        "       for m in ('direct', 'im2col', 'fft', 'auto')]\n"
        "xd, kd = rng.normal(size=(2, 6, 29, 31)), rng.normal(size=(6, 1, 3, 3))\n"
        "out += [sc.conv2d(xd.astype(t), kd.astype(t), stride=s, padding=1, groups=6,\n"
        "                  padding_mode=p, method=m)\n"
        "        for t in (np.float32, np.float64) for s in (1, 2, 3)\n"
        "        for p in ('zeros', 'reflect') for m in ('direct', 'naive')]\n"
        "np.savez(__import__('sys').argv[1], *out)\n"
        "print(sc.build_info()['kernel_isa'])\n"
    )
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"strideconv-isa-{isa}-{os.getpid()}.npz")
    env = dict(os.environ, STRIDECONV_ISA=isa)
    done = subprocess.run([sys.executable, "-c", script, path], env=env, capture_output=True,
                          text=True, check=True)
    order = ["scalar", "avx2", "avx512"]
    assert order.index(done.stdout.strip()) <= order.index(isa)  # narrowed, never widened
    with np.load(path) as got:
        rng = np.random.default_rng(0)
        x, k = rng.normal(size=(40, 37)), rng.normal(size=(5, 4))
        i = 0
        for t in (np.float32, np.float64):
            for s in (1, 2, 3):
                for _ in range(4):
                    want = scipy_correlate(x.astype(t), k.astype(t), stride=s)
                    tol = 1e-4 if t is np.float32 else 1e-11
                    np.testing.assert_allclose(got[f"arr_{i}"], want, rtol=tol, atol=tol * 20)
                    i += 1
        # Depthwise layers (direct's own plane-by-plane path) against the naive loop.
        for t in (np.float32, np.float64):
            tol = 1e-4 if t is np.float32 else 1e-11
            for _ in range(3 * 2):
                np.testing.assert_allclose(got[f"arr_{i}"], got[f"arr_{i + 1}"], rtol=tol,
                                           atol=tol * 20)
                i += 2
        assert i == len(got.files)
    os.remove(path)
