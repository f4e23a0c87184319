"""Reference results the tests compare strideconv against.

* `scipy_correlate` / `scipy_convolve`: SPEC §1's oracle, built on scipy.signal.
* `torch_reference`: torch.nn.functional.conv*d semantics written out in plain numpy.
* `exact_correlate`: Python integers, for exactness beyond 2**53.

The oracles compute in wide types (int64, float64, complex128) whatever the inputs, so that
they neither wrap nor round where strideconv does not.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.signal

NUMPY_MODE = {
    "constant": "constant",
    "zeros": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "edge": "edge",
    "replicate": "edge",
    "wrap": "wrap",
    "circular": "wrap",
}


def random_array(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    if dtype.kind == "u":
        return rng.integers(0, 6, shape).astype(dtype)
    if dtype.kind == "i":
        return rng.integers(-5, 6, shape).astype(dtype)
    if dtype.kind == "f":
        return rng.uniform(-1, 1, shape).astype(dtype)
    return (rng.uniform(-1, 1, shape) + 1j * rng.uniform(-1, 1, shape)).astype(dtype)


def wide(a: np.ndarray) -> np.ndarray:
    """The oracle's compute type for `a`."""
    a = np.asarray(a)
    if a.dtype.kind in "biu":
        return a.astype(np.int64)
    if a.dtype.kind == "c":
        return a.astype(np.complex128)
    return a.astype(np.float64)


def dilate(k: np.ndarray, dilation, axes) -> np.ndarray:
    """`k` with dilation-1 zeros between taps along `axes`."""
    k = np.asarray(k)
    if isinstance(dilation, int):
        dilation = [dilation] * len(axes)
    shape = list(k.shape)
    for a, d in zip(axes, dilation):
        shape[a] = d * (k.shape[a] - 1) + 1
    out = np.zeros(shape, dtype=k.dtype)
    index = tuple(
        slice(None, None, dilation[axes.index(a)]) if a in axes else slice(None) for a in range(k.ndim)
    )
    out[index] = k
    return out


def per_axis(v, rank):
    return [v] * rank if isinstance(v, int) else list(v)


def winograd_takes(dtype, kernel, stride=1, dilation=1) -> bool:
    """Whether method="winograd" computes a request (the rest it refuses with ValueError):
    float or complex, stride 1 and dilation 1 on every axis, a 3×3 kernel (1×3×3 in 3-D).
    `kernel` is the kernel's spatial shape."""
    rank = len(kernel)
    return (
        np.dtype(dtype).kind in "fc"
        and all(s == 1 for s in per_axis(stride, rank))
        and all(d == 1 for d in per_axis(dilation, rank))
        and tuple(kernel) in ((3, 3), (1, 3, 3))
    )


def pad_pairs(padding, rank):
    if isinstance(padding, int):
        return [(padding, padding)] * rank
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def _signal_oracle(scipy_fn, x, k, stride, padding, pad_mode, cval, dilation, channel_axis):
    x, k = wide(x), wide(k)
    if x.dtype != k.dtype:
        common = np.result_type(x, k)
        x, k = x.astype(common), k.astype(common)
    if channel_axis is not None:
        channel_axis %= x.ndim
        if k.ndim == x.ndim - 1:
            k = np.repeat(np.expand_dims(k, channel_axis), x.shape[channel_axis], axis=channel_axis)
        x = np.moveaxis(x, channel_axis, -1)
        k = np.moveaxis(k, channel_axis, -1)
        if scipy_fn is scipy.signal.convolve:
            # Only convolved axes are flipped; channels pair up as they are.
            k = k[..., ::-1]
    rank = x.ndim - (channel_axis is not None)
    axes = list(range(rank))
    kd = dilate(k, per_axis(dilation, rank), axes)
    steps = tuple(slice(None, None, s) for s in per_axis(stride, rank))
    if isinstance(padding, str):
        if padding == "valid":
            pairs = [(0, 0)] * rank
        elif padding == "full":
            pairs = [(kd.shape[a] - 1, kd.shape[a] - 1) for a in axes]
        else:
            pairs = [(kd.shape[a] // 2, (kd.shape[a] - 1) // 2) for a in axes]
        plain = channel_axis is None and NUMPY_MODE[pad_mode] == "constant" and cval == 0
        if padding != "valid" and plain:
            # scipy's own mode: the result, then every s-th element from index 0.
            return scipy_fn(x, kd, mode=padding, method="direct")[steps]
    else:
        pairs = pad_pairs(padding, rank)
    if channel_axis is not None:
        pairs = list(pairs) + [(0, 0)]
    mode = NUMPY_MODE[pad_mode]
    extra = {"constant_values": cval} if mode == "constant" else {}
    xp = np.pad(x, pairs, mode=mode, **extra)
    out = scipy_fn(xp, kd, mode="valid", method="direct")
    if channel_axis is not None:
        out = out[..., 0]
    return out[steps]


def scipy_correlate(x, k, stride=1, padding="valid", pad_mode="constant", cval=0, dilation=1,
                    channel_axis=None):
    """SPEC §1: scipy.signal.correlate(numpy.pad(x, P, mode=M), k_dilated, 'valid')[::s]."""
    return _signal_oracle(scipy.signal.correlate, x, k, stride, padding, pad_mode, cval, dilation,
                          channel_axis)


def scipy_convolve(x, k, stride=1, padding="valid", pad_mode="constant", cval=0, dilation=1,
                   channel_axis=None):
    """The same with scipy.signal.convolve."""
    return _signal_oracle(scipy.signal.convolve, x, k, stride, padding, pad_mode, cval, dilation,
                          channel_axis)


def magnitude_bound(x, k, **kw):
    """|x| correlated with |k|: bounds every partial sum, for float tolerances."""
    kw = dict(kw)
    kw["cval"] = abs(kw.get("cval", 0))
    return np.abs(scipy_correlate(np.abs(wide(x)), np.abs(wide(k)), **kw))


def tf_same(n, f, s, d):
    """TensorFlow/JAX SAME padding (before, after) for one axis."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (f - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def torch_reference(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros"):
    """torch.nn.functional.conv{1,2,3}d on channels-first numpy arrays, by definition."""
    x, w = wide(x), wide(w)
    common = np.result_type(x, w)
    x, w = x.astype(common), w.astype(common)
    rank = x.ndim - 2
    s, d = per_axis(stride, rank), per_axis(dilation, rank)
    kernel = w.shape[2:]
    if padding == "valid":
        pairs = [(0, 0)] * rank
    elif padding == "same":
        pairs = [tf_same(x.shape[2 + a], kernel[a], s[a], d[a]) for a in range(rank)]
    else:
        pairs = pad_pairs(padding, rank)
    mode = NUMPY_MODE[padding_mode]
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pairs), mode=mode)
    out_sp = [(xp.shape[2 + a] - d[a] * (kernel[a] - 1) - 1) // s[a] + 1 for a in range(rank)]
    n, c_in = x.shape[:2]
    c_out = w.shape[0]
    cin_g, cout_g = c_in // groups, c_out // groups
    out = np.zeros((n, c_out, *out_sp), dtype=common)
    for g in range(groups):
        xg = xp[:, g * cin_g:(g + 1) * cin_g]
        for t in itertools.product(*(range(f) for f in kernel)):
            window = tuple(
                slice(t[a] * d[a], t[a] * d[a] + (out_sp[a] - 1) * s[a] + 1, s[a]) for a in range(rank)
            )
            xs = xg[(slice(None), slice(None)) + window]
            wt = w[(slice(g * cout_g, (g + 1) * cout_g), slice(None)) + t]
            out[:, g * cout_g:(g + 1) * cout_g] += np.tensordot(xs, wt, axes=([1], [1])).transpose(
                0, rank + 1, *range(1, rank + 1)
            )
    if bias is not None:
        out += wide(bias).astype(common).reshape((1, c_out) + (1,) * rank)
    return out


def exact_correlate(x, k, stride=1):
    """Correlation in Python integers (object arrays): exact at any size."""
    x = np.asarray(x, dtype=object)
    k = np.asarray(k, dtype=object)
    rank = x.ndim
    s = per_axis(stride, rank)
    out_sp = [(x.shape[a] - k.shape[a]) // s[a] + 1 for a in range(rank)]
    out = np.empty(out_sp, dtype=object)
    for o in itertools.product(*(range(n) for n in out_sp)):
        window = tuple(slice(o[a] * s[a], o[a] * s[a] + k.shape[a]) for a in range(rank))
        out[o] = sum(int(a) * int(b) for a, b in zip(x[window].ravel(), k.ravel()))
    return out
