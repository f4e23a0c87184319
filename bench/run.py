"""Side-by-side benchmarks of strideconv against the peers; writes BENCHMARKS.md.

Usage (from the repository root; on this machine unset the OpenBLAS overrides first):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/run.py            # full, ~23 min on 2 cores
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/run.py --quick    # < 3 min

Families: machine peaks, the seed grid (SPEC §6 presets), CNN layers, bandwidth-bound
one-channel cases, and the per-call overhead of the seed's 7×7 example. Missing peers
(torch, onnxruntime, jax) are skipped and named in the report and on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import families
import machine
import ours
import peers
import report
import workloads

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
FAMILIES = ("seed", "cnn", "stream", "overhead")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a small subset (< 3 minutes)")
    parser.add_argument(
        "--only",
        default=",".join(FAMILIES),
        help=f"comma-separated families to run (default: all of {','.join(FAMILIES)})",
    )
    parser.add_argument(
        "--out",
        default=os.path.join(REPO, "BENCHMARKS.md"),
        help="report path (default: BENCHMARKS.md at the repository root)",
    )
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown families {sorted(unknown)}; choose from {FAMILIES}")
    return args


def settings_for(quick: bool) -> families.Settings:
    """Repeat budget, skip limits and run-time caps: tighter in --quick mode."""
    if quick:
        caps = families.Caps(seed=90, cnn=40, stream=20)
        return families.Settings(0.15, time_limit=0.5, memory_limit=0.5 * 2**30, caps=caps)
    caps = families.Caps(seed=1200, cnn=300, stream=240)
    return families.Settings(0.4, time_limit=3.0, memory_limit=2 * 2**30, caps=caps)


def command_line() -> str:
    """The command that reproduces this run, with the environment it ran under."""
    words = ["python3", "bench/run.py", *sys.argv[1:]]
    set_overrides = [
        f"{name}={os.environ[name]}" for name in OPENBLAS_OVERRIDES if name in os.environ
    ]
    prefix = set_overrides if set_overrides else ["env", *(f"-u {n}" for n in OPENBLAS_OVERRIDES)]
    return " ".join(prefix + [shlex.join(words)])


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def load_average() -> tuple[float, ...]:
    """The 1-, 5- and 15-minute load averages, or () where the OS does not tell."""
    try:
        return os.getloadavg()
    except OSError:
        return ()


def fmt_load(load: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.2f}" for v in load) or "unknown"


def describe_peers() -> str:
    """Peers and their versions; missing ones named as such."""
    parts = [f"numpy {np.__version__}", f"scipy {families.scipy.__version__}"]
    for name, version in peers.available_peers().items():
        parts.append(f"{name} {version}" if version else f"{name} MISSING (skipped)")
    return ", ".join(parts)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_start = load_average()
    other_load = machine.OtherLoad()
    for name in OPENBLAS_OVERRIDES:
        if name in os.environ:
            families.progress(
                f"warning: {name}={os.environ[name]} is set; numpy may run slower kernels"
            )
    families.progress(f"strideconv: {ours.version()}")
    slow_build = ours.slow_build() if ours.available() else ""
    if slow_build:
        families.progress(f"warning: {slow_build}")
    families.progress(f"peers: {describe_peers()}")

    families.progress("[peaks] FMA loop and streaming copy")
    peaks = machine.measure_peaks()
    settings = settings_for(args.quick)

    seed_cells = workloads.seed_cells(args.quick) if "seed" in args.only else []
    layer_cells = workloads.layer_cells(args.quick) if "cnn" in args.only else []
    stream_cells = workloads.stream_cells(args.quick) if "stream" in args.only else []
    seed_rows = families.run_seed(seed_cells, settings)
    layer_rows = families.run_layers(layer_cells, settings)
    stream_rows = families.run_stream(stream_cells, settings)
    overhead = families.run_overhead() if "overhead" in args.only else []
    load_end = load_average()
    families.progress("[peaks] again, at the end")
    peaks = machine.best_of(peaks, machine.measure_peaks())

    meta = {
        "command": command_line(),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "commit": git_commit(),
        "mode": ("quick" if args.quick else "full")
        + ("" if len(args.only) == len(FAMILIES) else f" (only {', '.join(args.only)})"),
        "wall": time.perf_counter() - started,
        "cpu": machine.cpu_description(),
        "load_start": fmt_load(load_start),
        "load_end": fmt_load(load_end),
        "other_cores": other_load.cores(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "blas": machine.blas_description(),
        "strideconv": ours.version(),
        "slow_build": slow_build,
        "peers": describe_peers(),
        "not_run": {
            "seed": len(seed_cells) - len(seed_rows),
            "cnn": len(layer_cells) - len(layer_rows),
            "stream": len(stream_cells) - len(stream_rows),
        },
        "caps": settings.caps,
        "rtol": ", ".join(f"{d} {t:g}" for d, t in families.RTOL.items()),
    }
    report.write_report(args.out, meta, peaks, seed_rows, layer_rows, stream_rows, overhead)
    families.progress(f"wrote {args.out} in {meta['wall']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
