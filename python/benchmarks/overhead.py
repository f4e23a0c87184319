"""Per-call time of small requests: what the Python layer and the binding add.

    python python/benchmarks/overhead.py
"""

import timeit

import numpy as np

import strideconv

X = np.array([[2, 3, 7, 4, 6, 2, 9], [6, 6, 9, 8, 7, 4, 3], [3, 4, 8, 3, 8, 9, 7],
              [7, 8, 3, 6, 6, 3, 4], [4, 2, 1, 8, 3, 4, 6], [3, 2, 4, 1, 9, 8, 3],
              [0, 1, 3, 9, 2, 1, 4]])
K = np.array([[3, 4, 4], [1, 0, 2], [-1, 0, 3]])


def per_call(f, number=20_000, repeat=50):
    """Microseconds per call: the best of many short windows, which filters out the time
    other processes take from a shared machine."""
    f()
    return min(timeit.repeat(f, number=number, repeat=repeat)) / number * 1e6


def main():
    xf, kf = X.astype(np.float64), K.astype(np.float64)
    p = strideconv.plan((7, 7), (3, 3), np.int64, stride=2)
    pf = strideconv.plan((7, 7), (3, 3), np.float64, stride=2)
    rows = [
        ("correlate(x, k, stride=2), int64", lambda: strideconv.correlate(X, K, stride=2)),
        ("correlate(x, k, stride=2), float64", lambda: strideconv.correlate(xf, kf, stride=2)),
        ("plan call, int64", lambda: p(X, K)),
        ("plan call, float64", lambda: pf(xf, kf)),
        ("numpy.correlate, 1-D (for scale)", lambda: np.correlate(X[0], K[0])),
    ]
    for label, f in rows:
        print(f"{label:40s} {per_call(f):6.2f} us")


if __name__ == "__main__":
    main()
