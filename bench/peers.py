"""The peers: what a user would run instead of strideconv, each written from its description.

Two families:

* Single arrays (the seed's world): cross-correlate an (n, n) array with an (f, f) kernel,
  or a channel-last (n, n, c) array with an (f, f, c) kernel summed over the channels, at
  stride s, no padding. Each function takes (x, k, stride) and returns the (oh, ow) result.
* CNN layers (N, C, H, W) with torch.nn.functional semantics: each factory takes the layer's
  arrays and settings and returns a zero-argument callable, so that one-off setup (model
  building, JIT compilation, tensor wrapping) stays out of the timed calls.

torch, onnxruntime and jax are optional: `available_peers()` says which import, and the
harness skips the others and says so. Nothing here is needed by the strideconv package.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable

import numpy as np
import scipy.fft
import scipy.signal
from numpy.lib.stride_tricks import sliding_window_view

try:
    import threadpoolctl
except ImportError:  # the harness still runs; BLAS threads are then not limited
    threadpoolctl = None


def _optional(name: str):
    """Import a module by name, or return None if it is not installed or fails to import."""
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a broken install counts as missing
        return None


torch = _optional("torch")
onnxruntime = _optional("onnxruntime")
onnx = _optional("onnx")
jax = _optional("jax")
if jax is not None:
    jax.config.update("jax_enable_x64", True)  # float64 layers must stay float64
    import jax.numpy as jnp
    from jax import lax


def available_peers() -> dict:
    """Optional peer libraries: name -> version string, or None when missing."""
    return {
        "torch": getattr(torch, "__version__", None),
        "onnxruntime": getattr(onnxruntime, "__version__", None) if onnx is not None else None,
        "jax": getattr(jax, "__version__", None),
    }


@contextlib.contextmanager
def thread_limit(threads: int):
    """Run the peers with `threads` threads: BLAS (threadpoolctl), scipy.fft, torch."""
    with contextlib.ExitStack() as stack:
        if threadpoolctl is not None:
            stack.enter_context(threadpoolctl.threadpool_limits(threads, user_api="blas"))
        stack.enter_context(scipy.fft.set_workers(threads))
        if torch is not None:
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
            stack.callback(torch.set_num_threads, previous)
        yield


# ---------------------------------------------------------------------------------------
# Single-array peers. x is (n, n) or (n, n, c); k is (f, f) or (f, f, c).
# ---------------------------------------------------------------------------------------


def output_shape(x_shape, k_shape, stride: int) -> tuple:
    """Spatial output shape of a valid, strided correlation."""
    return tuple((n - f) // stride + 1 for n, f in zip(x_shape[:2], k_shape[:2]))


def window_view(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    """numpy window view: every strided window as a view, contracted with the kernel.

    `tensordot` has to copy the non-contiguous windows into a matrix first, which is the
    memory peak the seed noticed above n = 350.
    """
    windows = sliding_window_view(x, k.shape)[::stride, ::stride]
    if x.ndim == 3:
        windows = windows[:, :, 0]  # the channel axis is a full-length window: one position
    return np.tensordot(windows, k, axes=k.ndim)


def shift_add(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    """Shift-and-add over kernel taps ("special conv"), with strided slices.

    For each tap (i, j) add k[i, j] times the strided slice of x that tap meets; with
    channels, the slice (oh, ow, c) is contracted with the tap's channel vector.
    """
    oh, ow = output_shape(x.shape, k.shape, stride)
    out = np.zeros((oh, ow), dtype=np.result_type(x, k))
    scratch = np.empty_like(out)
    for i in range(k.shape[0]):
        for j in range(k.shape[1]):
            taps = x[i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride]
            if x.ndim == 3:
                np.matmul(taps, k[i, j], out=scratch)
            else:
                np.multiply(taps, k[i, j], out=scratch)
            out += scratch
    return out


def fft_full(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    """scipy.signal.fftconvolve with the flipped kernel, 'valid', then every s-th output."""
    flipped = k[(slice(None, None, -1),) * k.ndim]
    full = scipy.signal.fftconvolve(x, flipped, mode="valid")
    return full[::stride, ::stride, 0] if x.ndim == 3 else full[::stride, ::stride]


def scipy_correlate(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    """scipy.signal.correlate(x, k, 'valid', method='auto'), then every s-th output."""
    full = scipy.signal.correlate(x, k, mode="valid", method="auto")
    return full[::stride, ::stride, 0] if x.ndim == 3 else full[::stride, ::stride]


def polyphase_fft(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    """Polyphase FFT with scipy.fft: split x and k by offset modulo the stride.

    With t = stride * u + a, out[o] = sum over phases a of sum_u x[a::s][o + u] * k[a::s][u]:
    s^2 unstrided correlations of quarter-size (for s = 2) arrays, no wasted outputs. The
    phase spectra are summed (and, with channels, contracted over c) before one inverse FFT.
    """
    oh, ow = output_shape(x.shape, k.shape, stride)
    kh, kw = -(-k.shape[0] // stride), -(-k.shape[1] // stride)  # longest phase of k
    fft_shape = [scipy.fft.next_fast_len(o + t - 1, real=True) for o, t in ((oh, kh), (ow, kw))]
    total = None
    for a in range(stride):
        for b in range(stride):
            k_phase = k[a::stride, b::stride]
            if k_phase.size == 0:
                continue
            x_phase = x[a::stride, b::stride][: oh + kh - 1, : ow + kw - 1]
            # Zero-pad every kernel phase to (kh, kw) before flipping, so all phases share
            # one alignment: correlation = convolution with the flipped, padded phase.
            padded = np.zeros((kh, kw) + k.shape[2:], dtype=k.dtype)
            padded[: k_phase.shape[0], : k_phase.shape[1]] = k_phase
            x_spec = scipy.fft.rfft2(x_phase, fft_shape, axes=(0, 1))
            k_spec = scipy.fft.rfft2(padded[::-1, ::-1], fft_shape, axes=(0, 1))
            product = np.einsum("ijc,ijc->ij", x_spec, k_spec) if x.ndim == 3 else x_spec * k_spec
            total = product if total is None else total + product
    full = scipy.fft.irfft2(total, fft_shape, axes=(0, 1))
    return full[kh - 1 : kh - 1 + oh, kw - 1 : kw - 1 + ow]


def torch_conv(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    """torch.nn.functional.conv2d with stride s on the numpy arrays (zero-copy wrapping).

    A channel-last (n, n, c) array becomes a (1, c, n, n) view in torch's channels_last
    memory format, which oneDNN takes as it is.
    """
    x_t, k_t = torch.from_numpy(x), torch.from_numpy(k)
    if x.ndim == 3:
        x_t, k_t = x_t.permute(2, 0, 1), k_t.permute(2, 0, 1)
    else:
        x_t, k_t = x_t[None], k_t[None]
    with torch.inference_mode():
        out = torch.nn.functional.conv2d(x_t[None], k_t[None], stride=stride)
    return out[0, 0].numpy()


#: Single-array peers in report order: (column name, function, needs torch).
ARRAY_PEERS: list[tuple[str, Callable, bool]] = [
    ("window view", window_view, False),
    ("shift-add", shift_add, False),
    ("fftconvolve", fft_full, False),
    ("sp.correlate", scipy_correlate, False),
    ("polyphase FFT", polyphase_fft, False),
    ("torch", torch_conv, True),
]


def estimate_array_peer(name: str, n: int, f: int, c: int, stride: int, itemsize: int):
    """(seconds, bytes) a peer is expected to need at worst; None where it is always cheap.

    Rough rates measured on the development machine, generous on purpose: they only decide
    which hopeless cells to skip (a 2-D window copy at n = 1024 with f = n/2 needs tens of
    GB; shift-and-add there runs a quarter-million strided passes).
    """
    oh = (n - f) // stride + 1
    direct_macs = oh * oh * f * f * c
    if name == "window view":
        copy_bytes = direct_macs * itemsize
        return copy_bytes / 2e9 + direct_macs / 5e9, copy_bytes
    if name == "shift-add":
        return f * f * (2e-6 + oh * oh * c / 1e9), 0
    if name in ("fftconvolve", "sp.correlate"):
        # One full-size FFT correlation over every axis, channels included (2c - 1 long).
        points = (n + f - 1) ** 2 * (2 * c - 1)
        return 2e-9 * points * np.log2(points), 0
    if name == "torch":
        # Large kernels: oneDNN's direct path for float32 (~1e9 MAC/s at worst); float64
        # goes through an im2col buffer of all windows and runs near 1e8 MAC/s.
        if itemsize == 8:
            return direct_macs / 1e8, direct_macs * itemsize
        return direct_macs / 1e9, 0
    return None


# ---------------------------------------------------------------------------------------
# CNN-layer peers. x is (N, C_in, H, W); w is (C_out, C_in / groups, kh, kw).
# ---------------------------------------------------------------------------------------


class Unavailable(Exception):
    """A peer cannot run this case (library missing or dtype unsupported)."""


def torch_layer(x, w, stride: int, padding: int, groups: int) -> Callable:
    """torch.nn.functional.conv2d (oneDNN for float32; im2col + BLAS for float64)."""
    if torch is None:
        raise Unavailable("torch not installed")
    x_t, w_t = torch.from_numpy(x), torch.from_numpy(w)

    def call():
        with torch.inference_mode():
            return torch.nn.functional.conv2d(
                x_t, w_t, stride=stride, padding=padding, groups=groups
            ).numpy()

    return call


def onnx_conv_model(x, w, stride: int, padding: int, groups: int):
    """A one-node ONNX model: Y = Conv(X, W) with W stored as an initializer."""
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.FLOAT if x.dtype == np.float32 else TensorProto.DOUBLE
    node = helper.make_node(
        "Conv",
        inputs=["X", "W"],
        outputs=["Y"],
        kernel_shape=list(w.shape[2:]),
        strides=[stride, stride],
        pads=[padding] * 4,
        group=groups,
    )
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("X", elem, list(x.shape))],
        [helper.make_tensor_value_info("Y", elem, None)],
        initializer=[numpy_helper.from_array(w, name="W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString()


def onnxruntime_layer(x, w, stride: int, padding: int, groups: int, threads: int = 2):
    """onnxruntime's Conv (MLAS) on a one-node model, `threads` intra-op threads."""
    if onnxruntime is None or onnx is None:
        raise Unavailable("onnxruntime/onnx not installed")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(
            onnx_conv_model(x, w, stride, padding, groups),
            options,
            providers=["CPUExecutionProvider"],
        )
    except Exception as exc:
        if "NOT_IMPLEMENTED" in str(exc):
            raise Unavailable(f"onnxruntime has no CPU Conv kernel for {x.dtype}") from exc
        raise Unavailable(f"onnxruntime refuses the model: {str(exc)[:80]}") from exc
    feeds = {"X": x}
    return lambda: session.run(None, feeds)[0]


def jax_layer(x, w, stride: int, padding: int, groups: int) -> Callable:
    """jax.lax.conv_general_dilated, jit-compiled once; inputs already on the CPU device."""
    if jax is None:
        raise Unavailable("jax not installed")

    @jax.jit
    def conv(inp, weight):
        return lax.conv_general_dilated(
            inp,
            weight,
            window_strides=(stride, stride),
            padding=[(padding, padding), (padding, padding)],
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
            feature_group_count=groups,
        )

    x_j, w_j = jnp.asarray(x), jnp.asarray(w)
    return lambda: conv(x_j, w_j).block_until_ready()


#: CNN peers in report order: (column name, factory).
LAYER_PEERS: list[tuple[str, Callable]] = [
    ("torch", torch_layer),
    ("onnxruntime", onnxruntime_layer),
    ("jax", jax_layer),
]


def reference_layer(x, w, stride: int, padding: int, groups: int) -> np.ndarray:
    """Independent float64 reference of a CNN layer: one einsum per kernel tap and group."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    w = w.astype(np.float64)
    n, _, h, wd = x.shape
    c_out, c_group, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, c_out, oh, ow))
    out_group = c_out // groups
    for g in range(groups):
        xg = x[:, g * c_group : (g + 1) * c_group]
        wg = w[g * out_group : (g + 1) * out_group]
        for i in range(kh):
            for j in range(kw):
                taps = xg[
                    :,
                    :,
                    i : i + stride * (oh - 1) + 1 : stride,
                    j : j + stride * (ow - 1) + 1 : stride,
                ]
                out[:, g * out_group : (g + 1) * out_group] += np.einsum(
                    "nchw,oc->nohw", taps, wg[:, :, i, j]
                )
    return out
