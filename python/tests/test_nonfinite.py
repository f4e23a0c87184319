"""NaN and Inf stay in their windows (SPEC §3), whatever method="auto" picks."""

from __future__ import annotations

import numpy as np
import pytest

import strideconv


def windows_with_nan(shape_out, nan_index, f, stride):
    """Output positions whose window contains nan_index (valid correlation)."""
    hit = np.zeros(shape_out, dtype=bool)
    for o in np.ndindex(*shape_out):
        hit[o] = all(o[a] * stride <= nan_index[a] < o[a] * stride + f for a in range(len(o)))
    return hit


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("n,f,stride", [(256, 31, 1), (300, 25, 2), (96, 9, 3)])
def test_nan_stays_in_its_windows_under_auto(dtype, n, f, stride):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, n)).astype(dtype)
    k = rng.normal(size=(f, f)).astype(dtype)
    plan = strideconv.plan(x.shape, k.shape, dtype, stride=stride)
    at = (n // 3, n // 2)
    x[at] = np.nan
    got = strideconv.correlate(x, k, stride=stride)
    hit = windows_with_nan(got.shape, at, f, stride)
    assert np.isnan(got[hit]).all()
    assert np.isfinite(got[~hit]).all(), f"NaN spread beyond its windows ({plan.method} planned)"
    # and the plan, whatever it chose for finite data, behaves the same
    np.testing.assert_array_equal(np.isnan(plan(x, k)), hit)


def test_auto_may_choose_fft_for_finite_data_but_not_spread_nan():
    """A large kernel makes FFT the cheapest; NaN input still stays local."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 400))
    k = rng.normal(size=(41, 41))
    plan = strideconv.plan(x.shape, k.shape, np.float64, stride=2)
    x[10, 10] = np.inf
    got = plan(x, k)
    hit = windows_with_nan(got.shape, (10, 10), 41, 2)
    assert (~np.isfinite(got[hit])).all()
    assert np.isfinite(got[~hit]).all()


def test_inf_minus_inf_is_nan_only_in_its_window():
    x = np.array([1.0, np.inf, np.inf, 2.0, 3.0, 4.0])
    # A named FFT method may spread non-finite values (the user asked for it); auto never does.
    # (winograd computes 2-D and 3-D kernels only, and may turn Inf − Inf into NaN.)
    skip = ("fft", "fft_full", "winograd")
    for method in ["auto"] + [m for m in strideconv.methods() if m not in skip]:
        got = strideconv.correlate(x, np.array([1.0, -1.0]), method=method)
        assert got[0] == -np.inf and np.isnan(got[1]) and got[2] == np.inf, method
        assert got[3:].tolist() == [-1.0, -1.0], method


def test_nan_in_the_kernel_under_an_fft_plan():
    """The plan checks its FFT result, so a NaN in the kernel is caught too."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 400))
    k = rng.normal(size=(41, 41))
    plan = strideconv.plan(x.shape, k.shape, np.float64, stride=2)
    assert plan.method in ("fft", "fft_full"), plan.method
    k[3, 4] = np.nan
    assert np.isnan(plan(x, k)).all()  # every window meets the kernel's NaN
    np.testing.assert_array_equal(np.isnan(strideconv.correlate(x, k, stride=2)), True)


def test_nan_that_no_window_reads_changes_nothing():
    """Row 401 lies past the last window: the FFT result stands, bit for bit."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(402, 402))
    k = rng.normal(size=(41, 41))
    plan = strideconv.plan(x.shape, k.shape, np.float64, stride=2)
    assert plan.method in ("fft", "fft_full"), plan.method
    clean = plan(x, k)
    x[401, 5] = np.nan
    np.testing.assert_array_equal(plan(x, k), clean)


def test_overflow_in_an_fft_plan_is_recomputed_exactly():
    """Finite data whose transform overflows: the exact method's result is returned."""
    x = np.zeros((400, 400))
    x[200, 200] = 1e308
    k = np.full((41, 41), 1.5)
    plan = strideconv.plan(x.shape, k.shape, np.float64, stride=2)
    want = strideconv.correlate(x, k, stride=2, method="direct")
    np.testing.assert_array_equal(plan(x, k), want)
