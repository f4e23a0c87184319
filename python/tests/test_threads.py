"""Several Python threads computing at once, on shared plans and one-shot calls."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

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


MULTI = [
    # Large enough that each call spreads over its threads (method, stride).
    ("direct", 1),
    ("fft", 2),
    ("im2col", 2),
]


def test_multi_threaded_calls_from_many_threads():
    """Calls on 2 threads each, from 6 Python threads at once: the thread team takes one
    caller's job at a time and the others run on their own thread; every result is right."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(192, 192))
    k = rng.normal(size=(9, 9))
    want = {s: strideconv.correlate(x, k, stride=s, method="naive", threads=1) for _, s in MULTI}

    def work(i):
        method, s = MULTI[i % len(MULTI)]
        got = strideconv.correlate(x, k, stride=s, method=method, threads=2)
        return np.allclose(got, want[s], rtol=1e-9, atol=1e-9)

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(work, range(48)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Python warns about forking any process with threads (ours, or another library's); the child
# here uses only numpy and strideconv, and a hang would fail the guard below.
@pytest.mark.filterwarnings("ignore:os.fork")
@pytest.mark.filterwarnings("ignore:This process")
def test_multi_threaded_calls_after_fork():
    """A forked child (which has none of its parent's worker threads) computes on 2 threads."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(160, 160))
    k = rng.normal(size=(7, 7))
    want = strideconv.correlate(x, k, method="naive", threads=1)
    # The parent's team exists before the fork.
    assert np.allclose(strideconv.correlate(x, k, method="direct", threads=2), want)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        ok = False
        try:
            ok = all(
                np.allclose(strideconv.correlate(x, k, method=m, threads=2), want)
                for m in ("direct", "fft", "im2col")
            )
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not finish within 60 s")
        time.sleep(0.01)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
