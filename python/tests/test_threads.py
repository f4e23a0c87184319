"""Several Python threads computing at once, on shared plans and one-shot calls."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import strideconv


def test_shared_plans_from_many_threads():
    rng = np.random.default_rng(0)
    plans = {
        "f64": strideconv.plan((64, 64), (5, 5), np.float64, stride=2, padding="same"),
        "i64": strideconv.plan((40, 40), (3, 3), np.int64, stride=3),
        "conv": strideconv.plan((2, 3, 16, 16), (4, 3, 3, 3), np.float32, op="conv2d", stride=2,
                                padding=1),
    }
    inputs = {
        "f64": [(rng.normal(size=(64, 64)), rng.normal(size=(5, 5))) for _ in range(8)],
        "i64": [(rng.integers(-9, 9, (40, 40)), rng.integers(-9, 9, (3, 3))) for _ in range(8)],
        "conv": [(rng.normal(size=(2, 3, 16, 16)).astype(np.float32),
                  rng.normal(size=(4, 3, 3, 3)).astype(np.float32)) for _ in range(8)],
    }
    expected = {
        "f64": [strideconv.correlate(x, k, stride=2, padding="same", threads=1)
                for x, k in inputs["f64"]],
        "i64": [strideconv.correlate(x, k, stride=3, threads=1) for x, k in inputs["i64"]],
        "conv": [strideconv.conv2d(x, w, stride=2, padding=1) for x, w in inputs["conv"]],
    }

    def work(seed):
        local = np.random.default_rng(seed)
        for _ in range(30):
            name = ["f64", "i64", "conv"][local.integers(3)]
            i = local.integers(8)
            got = plans[name](*inputs[name][i])
            if name == "i64":
                np.testing.assert_array_equal(got, expected[name][i])
            else:
                np.testing.assert_allclose(got, expected[name][i], rtol=1e-5, atol=1e-5)
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, range(16)))


def test_one_shot_calls_from_many_threads():
    rng = np.random.default_rng(1)
    cases = [(rng.normal(size=(50, 50)), rng.normal(size=(4, 4)), s) for s in (1, 2, 3)]
    want = [strideconv.correlate(x, k, stride=s, method="naive") for x, k, s in cases]

    def work(i):
        x, k, s = cases[i % 3]
        return np.allclose(strideconv.correlate(x, k, stride=s), want[i % 3])

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(work, range(60)))


def test_the_gil_is_released_while_computing():
    """A pure-Python thread keeps running while a long convolution computes."""
    x = np.random.default_rng(2).normal(size=(700, 700))
    k = np.ones((21, 21))
    ticks = 0
    done = threading.Event()

    def count():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0)

    t = threading.Thread(target=count)
    t.start()
    try:
        start = time.perf_counter()
        strideconv.correlate(x, k, method="naive", threads=1)
        elapsed = time.perf_counter() - start
    finally:
        done.set()
        t.join()
    assert elapsed > 0.02, "too quick to tell"
    assert ticks > 100, f"the counting thread ran only {ticks} times in {elapsed:.3f} s"
