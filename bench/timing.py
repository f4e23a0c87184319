"""Timing and checking helpers shared by every benchmark family.

Every measurement follows one recipe: call once (warm-up) and check that result against the
reference; then time repeated calls and keep the best per-call time. Nothing is cached
between calls: each call recomputes from its inputs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass
class Measurement:
    """The outcome of timing one implementation on one case."""

    seconds: float | None = None  # best time per call
    note: str = ""  # why there is no time (skipped, failed, wrong result)

    @property
    def ok(self) -> bool:
        return self.seconds is not None


class WrongResult(Exception):
    """An implementation disagreed with the reference."""


def check_close(result, reference: np.ndarray, rtol: float) -> None:
    """Raise WrongResult unless result matches reference in shape and to rtol of its scale.

    The tolerance is relative to the largest reference magnitude: FFT-based results carry
    an error proportional to the norms of the operands, not to each output element.
    """
    result = np.asarray(result)
    if result.shape != reference.shape:
        raise WrongResult(f"shape {result.shape} != reference {reference.shape}")
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    error = float(np.max(np.abs(result.astype(np.float64) - reference))) if result.size else 0.0
    if not error <= rtol * max(scale, 1e-300):
        raise WrongResult(f"max error {error:.3g} > {rtol:.0e} x scale {scale:.3g}")


def repeats_for(first_seconds: float, budget: float) -> tuple[int, int]:
    """(calls per repeat, repeats) for a call that took `first_seconds`.

    At least 3 repeats (1 if a single call is longer than `budget`); each repeat loops
    enough calls to last about 20 ms, so short calls are not dominated by timer resolution.
    """
    if first_seconds >= budget:
        return 1, 1
    loops = max(1, int(0.02 / max(first_seconds, 1e-9)))
    repeats = max(3, min(7, int(budget / max(first_seconds * loops, 1e-9))))
    return loops, repeats


def time_repeat(call: Callable[[], object], loops: int) -> float:
    """Seconds per call of one repeat: `loops` calls in a row."""
    start = time.perf_counter()
    for _ in range(loops):
        call()
    return (time.perf_counter() - start) / loops


def best_time(call: Callable[[], object], first_seconds: float, budget: float) -> float:
    """Best seconds per call of `call`, given that one call took `first_seconds`."""
    loops, repeats = repeats_for(first_seconds, budget)
    return min([first_seconds] + [time_repeat(call, loops) for _ in range(repeats)])


def warm_up(call: Callable[[], object], reference: np.ndarray | None, rtol: float, budget: float):
    """Call once and check the result against `reference` (if given); call once more,
    untimed, when the first was cheap, so lazy initialisation (thread pools, JIT, FFT plans)
    stays out of the timed calls. Returns the seconds of the last call."""
    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    if reference is not None:
        check_close(result, reference, rtol)
    if first < budget:
        start = time.perf_counter()
        call()
        first = time.perf_counter() - start
    return first


def failure(exc: Exception) -> Measurement:
    """The note of an implementation that raised or disagreed with the reference."""
    if isinstance(exc, WrongResult):
        return Measurement(note=f"WRONG: {exc}")
    return Measurement(note=f"failed: {type(exc).__name__}: {str(exc)[:80]}")


def measure(
    call: Callable[[], object],
    reference: np.ndarray | None,
    rtol: float,
    budget: float = 0.5,
) -> Measurement:
    """Warm up `call`, check it against `reference` (if given), then time it.

    Exceptions from the implementation become a note instead of a time, so one failing
    peer never stops the run.
    """
    try:
        first = warm_up(call, reference, rtol, budget)
        return Measurement(best_time(call, first, budget))
    except Exception as exc:  # noqa: BLE001 - any peer failure is reported, not raised
        return failure(exc)


# Pause before each interleaved repeat: the thread pools of the implementation timed just
# before (OpenMP, onnxruntime's, XLA's, ours) spin for a while after their last call, and on
# a 2-core machine they took the cores from the next one (first interleaved run without it:
# strideconv's 7×7 stem 1.59 ms against 1.19 ms timed alone). Then one untimed call, so that
# each repeat starts with its own data in cache and its threads awake, as the later repeats
# of a sequential timing do (in the first full run with the pause alone, batch-8 layers read
# slower for every implementation than in the sequential run before: the stem 10.8 → 12.3
# ms for torch, 9.0 → 11.6 ms for strideconv).
SETTLE_SECONDS = 0.05


def measure_together(
    calls: dict[str, Callable[[], object]],
    reference: np.ndarray | None,
    rtol: float,
    budget: float = 0.5,
    settle: float = SETTLE_SECONDS,
) -> dict[str, Measurement]:
    """`measure` for several implementations of one case, their repeats interleaved.

    Each is warmed up and checked first; then round r times repeat r of every
    implementation in turn (each its own number of calls per repeat and of repeats, each
    repeat after a pause of `settle` seconds and one untimed call), so a slow spell of a
    shared machine falls on all of them instead of on whichever was being timed.
    """
    results: dict[str, Measurement] = {}
    timing: dict[str, tuple[int, int]] = {}
    best: dict[str, float] = {}
    for name, call in calls.items():
        try:
            first = warm_up(call, reference, rtol, budget)
        except Exception as exc:  # noqa: BLE001
            results[name] = failure(exc)
            continue
        timing[name] = repeats_for(first, budget)
        best[name] = first
    rounds = max((repeats for _, repeats in timing.values()), default=0)
    for r in range(rounds):
        for name, (loops, repeats) in timing.items():
            if r >= repeats or name in results:
                continue
            time.sleep(settle)
            try:
                calls[name]()
                best[name] = min(best[name], time_repeat(calls[name], loops))
            except Exception as exc:  # noqa: BLE001
                results[name] = failure(exc)
    return {
        name: results[name] if name in results else Measurement(best[name]) for name in calls
    }
