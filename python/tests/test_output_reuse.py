"""Large outputs (over 32 MiB) freed by numpy are kept by the extension's allocator and
reused by the next call of the same size: results must not change, and an array still
alive must never be handed out again."""

import numpy as np

import strideconv


def test_reused_large_outputs_hold_each_calls_own_result():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2052, 2052))  # 2050² float64 output: 33.6 MB
    k = rng.standard_normal((3, 3))
    expected = strideconv.correlate(x, k, method="naive")
    assert expected.nbytes > 32 << 20
    first = strideconv.correlate(x, k)
    np.testing.assert_allclose(first, expected, rtol=1e-12, atol=1e-12)
    kept = first.copy()
    del first  # its block is kept ...
    second = strideconv.correlate(x, 2 * k)  # ... and reused here
    np.testing.assert_allclose(second, 2 * kept, rtol=1e-12, atol=1e-12)
    # While `second` lives, the next calls get other memory and leave it alone.
    third = strideconv.correlate(x, -k, method="shift_add")
    fourth = strideconv.correlate(x, 3 * k, method="fft")
    np.testing.assert_allclose(second, 2 * kept, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(third, -kept, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fourth, 3 * kept, rtol=1e-9, atol=1e-9)
    assert not np.shares_memory(second, third) and not np.shares_memory(third, fourth)
    # The blocks freed above are reused again, with the right result.
    del second, third, fourth
    again = strideconv.correlate(x, k, method="shift_add")
    np.testing.assert_allclose(again, kept, rtol=1e-12, atol=1e-12)
