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


def best_time(call: Callable[[], object], first_seconds: float, budget: float) -> float:
    """Best seconds per call of `call`, given that one call took `first_seconds`.

    Runs at least 3 repeats (1 if a single call is longer than `budget`); each repeat loops
    enough calls to last about 20 ms, so short calls are not dominated by timer resolution.
    """
    if first_seconds >= budget:
        start = time.perf_counter()
        call()
        return min(first_seconds, time.perf_counter() - start)
    loops = max(1, int(0.02 / max(first_seconds, 1e-9)))
    repeats = max(3, min(7, int(budget / max(first_seconds * loops, 1e-9))))
    best = first_seconds
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            call()
        best = min(best, (time.perf_counter() - start) / loops)
    return best


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
        start = time.perf_counter()
        result = call()
        first = time.perf_counter() - start
        if reference is not None:
            check_close(result, reference, rtol)
        # A second untimed warm-up call when the first was cheap: lazy initialisation
        # (thread pools, JIT, FFT plans) then stays out of the timed calls.
        if first < budget:
            start = time.perf_counter()
            call()
            first = time.perf_counter() - start
        return Measurement(best_time(call, first, budget))
    except WrongResult as exc:
        return Measurement(note=f"WRONG: {exc}")
    except Exception as exc:  # noqa: BLE001 - any peer failure is reported, not raised
        return Measurement(note=f"failed: {type(exc).__name__}: {str(exc)[:80]}")
