"""strideconv as the harness calls it, or a clear 'not available' when it is not built."""

from __future__ import annotations

import importlib
import itertools

try:
    strideconv = importlib.import_module("strideconv")
    IMPORT_ERROR = ""
except Exception as exc:  # noqa: BLE001 - not built yet, or a broken build
    strideconv = None
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"


def available() -> bool:
    return strideconv is not None


def version() -> str:
    if strideconv is None:
        return f"not importable ({IMPORT_ERROR})"
    text = str(getattr(strideconv, "__version__", "unknown version"))
    build_info = getattr(strideconv, "build_info", None)
    if callable(build_info):
        info = build_info()
        profile, threads = info.get("profile", "?"), info.get("default_threads", "?")
        lto = info.get("lto", "?")
        text += f" ({profile} build, LTO {lto}, {threads} default threads)"
    return text


def slow_build() -> str:
    """Why the installed strideconv is not the build to measure, or '' when it is.

    A debug build, or a release build without link-time optimisation (what `.ci/run` installs
    to compile faster), computes the same results but slower: its numbers would understate
    strideconv.
    """
    build_info = getattr(strideconv, "build_info", None)
    if not callable(build_info):
        return ""
    info = build_info()
    if info.get("profile") == "debug":
        return "the installed strideconv is a debug build"
    if str(info.get("lto", "")).lower() in ("off", "false", "no"):
        return (
            "the installed strideconv was built without link-time optimisation (as `.ci/run` "
            "builds it); reinstall the release build: pip install --force-reinstall ./python"
        )
    return ""


def correlate_call(x, k, stride: int, threads: int, method: str = "auto"):
    """A zero-argument call of strideconv.correlate on a seed-style case.

    Calls alternate between `k` (first, the checked one) and `-k`, which costs the same: an
    FFT plan keeps the spectra of the last kernel it saw, and the peers, which transform the
    kernel on every call, are timed against calls that never reuse them.
    """
    channel_axis = -1 if x.ndim == 3 else None
    kernels = itertools.cycle((k, -k))
    return lambda: strideconv.correlate(
        x, next(kernels), stride=stride, channel_axis=channel_axis, method=method,
        threads=threads,
    )


def chosen_method(x, k, stride: int, threads: int) -> str:
    """The method `auto` picks for this case, from strideconv.plan; '?' if unavailable."""
    channel_axis = -1 if x.ndim == 3 else None
    try:
        plan = strideconv.plan(
            x.shape, k.shape, x.dtype, stride=stride, channel_axis=channel_axis, threads=threads
        )
        return str(plan.method)
    except Exception:  # noqa: BLE001 - the plan API is a nicety for the report
        return "?"


def layer_call(x, w, stride: int, padding: int, groups: int):
    """A zero-argument call of strideconv.conv2d on a CNN layer (all cores)."""
    return lambda: strideconv.conv2d(x, w, None, stride=stride, padding=padding, groups=groups)


def layer_method(x, w, stride: int, padding: int, groups: int) -> str:
    """The method `auto` picks for a CNN layer, from strideconv.plan; '?' if unavailable."""
    try:
        plan = strideconv.plan(
            x.shape,
            w.shape,
            x.dtype,
            op="conv2d",
            stride=stride,
            padding=padding,
            groups=groups,
        )
        return str(plan.method)
    except Exception:  # noqa: BLE001
        return "?"
