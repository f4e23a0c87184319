"""Measure each workload family: strideconv and every available peer, side by side.

Each `run_*` function returns rows of plain data for `report.py`. Inputs are random numbers
in [-1, 1) from a fixed seed; every implementation is checked against a float64 reference
before it is timed.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
import timeit

import numpy as np
import ours
import peers
import scipy.signal
from timing import SETTLE_SECONDS, Measurement, measure, measure_together
from workloads import Layer, SeedCell, StreamCell

#: Relative tolerance (of the largest reference magnitude) per dtype.
RTOL = {"float32": 2e-4, "float64": 1e-9}


@dataclasses.dataclass
class Settings:
    """How hard to try: seconds of repeats per measurement, and the skip limits."""

    budget: float  # seconds of timed repeats per measurement
    time_limit: float  # skip a peer whose estimated time per call exceeds this
    memory_limit: float  # skip a peer whose estimated extra memory exceeds this (bytes)
    caps: Caps  # seconds per family


@dataclasses.dataclass
class Caps:
    """Run-time caps in seconds per family; cells past a cap are not run (and reported)."""

    seed: float
    cnn: float
    stream: float


@dataclasses.dataclass
class Row:
    """One case: the peers' measurements, ours, and what auto chose."""

    case: object  # SeedCell, (Layer, batch, dtype) or StreamCell
    peers: dict  # column name -> Measurement
    ours: Measurement
    method: str = ""


def progress(message: str) -> None:
    """One line of progress on stderr (the report goes to BENCHMARKS.md)."""
    print(message, file=sys.stderr, flush=True)


def capped(cells: list, seconds: float, family: str):
    """Yield (index, cell) until `seconds` have passed; then say how many cells are cut."""
    deadline = time.monotonic() + seconds
    for index, cell in enumerate(cells, 1):
        if time.monotonic() > deadline:
            progress(
                f"[{family}] run-time cap of {seconds:.0f} s reached: "
                f"{len(cells) - index + 1} of {len(cells)} cells not run"
            )
            return
        yield index, cell


def random_array(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def not_available(reason: str) -> Measurement:
    return Measurement(note=reason)


# ---------------------------------------------------------------------------------------
# Seed grid
# ---------------------------------------------------------------------------------------


def seed_inputs(cell: SeedCell) -> tuple[np.ndarray, np.ndarray]:
    """float64 input and kernel for a cell, the same for every dtype and thread count."""
    rng = np.random.default_rng([cell.n, cell.f, cell.preset.channels])
    c = cell.preset.channels
    x_shape = (cell.n, cell.n, c) if c else (cell.n, cell.n)
    k_shape = (cell.f, cell.f, c) if c else (cell.f, cell.f)
    return random_array(rng, x_shape, "float64"), random_array(rng, k_shape, "float64")


def seed_reference(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    """float64 reference: scipy.signal.fftconvolve (flipped kernel), then every s-th output."""
    full = scipy.signal.fftconvolve(x, k[(slice(None, None, -1),) * k.ndim], mode="valid")
    return full[::stride, ::stride, 0] if x.ndim == 3 else full[::stride, ::stride]


def skip_reason(name: str, x: np.ndarray, k: np.ndarray, stride: int, settings: Settings) -> str:
    """Why an array peer is skipped on this case by the budget, or '' if it runs."""
    c = x.shape[2] if x.ndim == 3 else 1
    estimate = peers.estimate_array_peer(name, x.shape[0], k.shape[0], c, stride, x.dtype.itemsize)
    if estimate is None:
        return ""
    seconds, extra_bytes = estimate
    if extra_bytes > settings.memory_limit:
        return f"skipped: needs ~{extra_bytes / 2**30:.1f} GiB"
    if seconds > settings.time_limit:
        return f"skipped: est. {seconds:.0f} s/call"
    return ""


# Peers that call a multi-threaded BLAS (numpy's tensordot).
BLAS_PEERS = {"window view"}
# OpenBLAS's worker threads keep spinning for a while after each call (measured here:
# a 2-thread call of ours made within 100 ms of a 2-thread matrix product took 2.6× its
# time; from 150 ms on, none). Whatever is timed next waits this long first.
BLAS_SETTLE_SECONDS = 0.25


def settle_blas() -> None:
    """Wait until BLAS threads left spinning by the last call have gone to sleep."""
    time.sleep(BLAS_SETTLE_SECONDS)


def measure_array_case(
    case, names: list[str], x, k, stride: int, threads: int, reference, settings: Settings
) -> Row:
    """Time the named array peers and strideconv on x ⋆ k at `stride`, `threads` threads.

    The peers are timed one after another; then strideconv and the fastest of them are
    timed again together, their repeats interleaved (`measure_together`), and that peer's
    time is the one from these interleaved repeats: the ratio that decides a target compares
    two timings taken in the same moments of the machine, with as many repeats each.
    """
    rtol = RTOL[x.dtype.name]
    results, calls = {}, {}
    with peers.thread_limit(threads):
        for name, function, needs_torch in peers.ARRAY_PEERS:
            if name not in names:
                continue
            if needs_torch and peers.torch is None:
                results[name] = not_available("torch not installed")
            elif reason := skip_reason(name, x, k, stride, settings):
                results[name] = not_available(reason)
            else:
                calls[name] = functools.partial(function, x, k, stride)
                results[name] = measure(calls[name], reference, rtol, settings.budget)
                if name in BLAS_PEERS and threads > 1:
                    settle_blas()
        if not ours.available():
            return Row(case, results, not_available("strideconv not importable"))
        mine = "strideconv"
        together = {mine: ours.correlate_call(x, k, stride, threads)}
        timed = [name for name in calls if results[name].ok]
        settle = SETTLE_SECONDS
        if timed:
            fastest = min(timed, key=lambda name: results[name].seconds)
            together[fastest] = calls[fastest]
            if fastest in BLAS_PEERS and threads > 1:
                settle = BLAS_SETTLE_SECONDS
        measured = measure_together(together, reference, rtol, settings.budget, settle)
        for name, again in measured.items():
            if name != mine and again.ok:
                results[name] = again
    return Row(case, results, measured[mine], ours.chosen_method(x, k, stride, threads))


def measure_seed_cell(cell: SeedCell, x, k, reference, settings: Settings) -> Row:
    """Time every array peer and strideconv on one seed cell."""
    x, k = x.astype(cell.dtype), k.astype(cell.dtype)
    names = [name for name, _, _ in peers.ARRAY_PEERS]
    return measure_array_case(
        cell, names, x, k, cell.preset.stride, cell.threads, reference, settings
    )


def run_seed(cells: list[SeedCell], settings: Settings) -> list[Row]:
    """Every seed cell; inputs and the reference are shared by cells of the same shape."""
    rows = []
    shape_key, x, k, reference = None, None, None, None
    for index, cell in capped(cells, settings.caps.seed, "seed"):
        key = (cell.preset, cell.n, cell.f)
        if key != shape_key:
            shape_key = key
            x, k = seed_inputs(cell)
            reference = seed_reference(x, k, cell.preset.stride)
        progress(
            f"[seed {index}/{len(cells)}] {cell.preset.name} n={cell.n} f={cell.f} "
            f"{cell.dtype} threads={cell.threads}"
        )
        rows.append(measure_seed_cell(cell, x, k, reference, settings))
    return rows


# ---------------------------------------------------------------------------------------
# CNN layers
# ---------------------------------------------------------------------------------------


def layer_inputs(layer: Layer, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 input (N, C, H, W) and weight (C_out, C_in/groups, k, k) for a layer."""
    rng = np.random.default_rng([layer.c_in, layer.c_out, layer.size, layer.kernel, batch])
    x = random_array(rng, (batch, layer.c_in, layer.size, layer.size), "float64")
    w_shape = (layer.c_out, layer.c_in // layer.groups, layer.kernel, layer.kernel)
    return x, random_array(rng, w_shape, "float64")


def measure_layer(layer: Layer, batch: int, dtype: str, x, w, reference, settings) -> Row:
    """Time every CNN peer and strideconv.conv2d on one layer, 2 threads, their repeats
    interleaved (`measure_together`)."""
    x, w = x.astype(dtype), w.astype(dtype)
    args = (layer.stride, layer.padding, layer.groups)
    results, calls = {}, {}
    mine = "strideconv"
    with peers.thread_limit(2):
        for name, factory in peers.LAYER_PEERS:
            try:
                calls[name] = factory(x, w, *args)
            except peers.Unavailable as exc:
                results[name] = not_available(str(exc))
        if ours.available():
            calls[mine] = ours.layer_call(x, w, *args)
        results |= measure_together(calls, reference, RTOL[dtype], settings.budget)
    case = (layer, batch, dtype)
    peer_results = {name: results[name] for name, _ in peers.LAYER_PEERS}
    if mine not in results:
        return Row(case, peer_results, not_available("strideconv not importable"))
    return Row(case, peer_results, results[mine], ours.layer_method(x, w, *args))


def run_layers(cells: list[tuple[Layer, int, str]], settings: Settings) -> list[Row]:
    """Every (layer, batch, dtype); the float64 reference is shared by both dtypes."""
    rows, references = [], {}
    for index, (layer, batch, dtype) in capped(cells, settings.caps.cnn, "cnn"):
        progress(f"[cnn {index}/{len(cells)}] {layer.name} batch={batch} {dtype}")
        x, w = layer_inputs(layer, batch)
        key = (layer, batch)
        if key not in references:
            references[key] = peers.reference_layer(x, w, layer.stride, layer.padding, layer.groups)
        rows.append(measure_layer(layer, batch, dtype, x, w, references[key], settings))
    return rows


# ---------------------------------------------------------------------------------------
# Bandwidth-bound cases: one channel, 3×3, large n
# ---------------------------------------------------------------------------------------

STREAM_PEERS = ["shift-add", "torch"]


def run_stream(cells: list[StreamCell], settings: Settings) -> list[Row]:
    """Time strideconv (and shift-add, torch for context) on one-channel 3×3 cases."""
    rows = []
    for index, cell in capped(cells, settings.caps.stream, "stream"):
        progress(
            f"[stream {index}/{len(cells)}] n={cell.n} s={cell.stride} {cell.dtype} "
            f"threads={cell.threads}"
        )
        rng = np.random.default_rng([cell.n, cell.stride])
        x = random_array(rng, (cell.n, cell.n), cell.dtype)
        k = random_array(rng, (3, 3), cell.dtype)
        reference = peers.shift_add(x.astype(np.float64), k.astype(np.float64), cell.stride)
        rows.append(
            measure_array_case(
                cell, STREAM_PEERS, x, k, cell.stride, cell.threads, reference, settings
            )
        )
    return rows


# ---------------------------------------------------------------------------------------
# Per-call overhead: the seed's 7×7 example
# ---------------------------------------------------------------------------------------

SEED_X = np.array(
    [
        [2, 3, 7, 4, 6, 2, 9],
        [6, 6, 9, 8, 7, 4, 3],
        [3, 4, 8, 3, 8, 9, 7],
        [7, 8, 3, 6, 6, 3, 4],
        [4, 2, 1, 8, 3, 4, 6],
        [3, 2, 4, 1, 9, 8, 3],
        [0, 1, 3, 9, 2, 1, 4],
    ]
)
SEED_K = np.array([[3, 4, 4], [1, 0, 2], [-1, 0, 3]])
SEED_OUT = np.array([[91, 100, 88], [69, 91, 117], [44, 72, 74]])


def microseconds_per_call(call, expected) -> Measurement:
    """Check one call against `expected`, then the best of 7 timeit runs, in seconds."""
    try:
        result = np.asarray(call())
        if result.shape != expected.shape or not np.allclose(result, expected, rtol=0, atol=1e-9):
            return Measurement(note=f"WRONG: {result.tolist()}")
        timer = timeit.Timer(call)
        loops, _ = timer.autorange()
        loops = max(loops, 1000)
        return Measurement(min(timer.repeat(repeat=7, number=loops)) / loops)
    except Exception as exc:  # noqa: BLE001
        return Measurement(note=f"failed: {type(exc).__name__}: {str(exc)[:80]}")


def overhead_calls() -> list[tuple[str, object, np.ndarray]]:
    """(label, zero-argument call, expected result) for the seed's example."""
    x, k = SEED_X, SEED_K
    xf, kf = x.astype(np.float64), k.astype(np.float64)
    calls = []
    if ours.available():
        sc = ours.strideconv
        calls.append(
            (
                "strideconv.correlate(x, k, stride=2), int64",
                lambda: sc.correlate(x, k, stride=2),
                SEED_OUT,
            )
        )
        calls.append(
            ("strideconv.correlate, float64", lambda: sc.correlate(xf, kf, stride=2), SEED_OUT)
        )
        try:
            plan = sc.plan(xf.shape, kf.shape, xf.dtype, stride=2)
            calls.append(
                ("strideconv.plan(...) then p(x, k), float64", lambda: plan(xf, kf), SEED_OUT)
            )
        except Exception as exc:  # noqa: BLE001
            progress(f"plan unavailable for the overhead table: {exc}")
    for name, function, needs_torch in peers.ARRAY_PEERS:
        if needs_torch and peers.torch is None:
            continue
        calls.append((f"{name} (peer), float64", lambda f=function: f(xf, kf, 2), SEED_OUT))
    return calls


def run_overhead() -> list[tuple[str, Measurement]]:
    """Per-call time of the seed's 7×7 example through each path, on all cores."""
    progress("[overhead] the seed's 7×7 example")
    with peers.thread_limit(2):
        return [
            (label, microseconds_per_call(call, want)) for label, call, want in overhead_calls()
        ]
