"""Measured machine limits: FMA peak (GFLOP/s) and streaming-copy bandwidth (GB/s).

The FMA peak comes from `peaks.c` (16 independent accumulator vectors per thread), built
with gcc when it exists. Without gcc, the FMA peak is reported as unknown (a numpy matmul
is not an FMA peak: it runs OpenBLAS kernels that may not use the widest vectors), and the
copy bandwidth falls back to timing `numpy.copyto` on a large array.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import subprocess
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PEAKS_SOURCE = os.path.join(HERE, "peaks.c")
COPY_MIB = 512  # per array: 1 GiB moved per pass (read 512 MiB + write 512 MiB)


@dataclasses.dataclass
class Peaks:
    """Measured limits, keyed by thread count (1 and 2)."""

    fma_gflops: dict  # {("float32"|"float64", threads): GFLOP/s}
    copy_gbs: dict  # {threads: GB/s, bytes read + bytes written}
    fma_source: str  # how the FMA peak was measured
    copy_source: str  # how the bandwidth was measured

    def flops(self, dtype: str, threads: int) -> float | None:
        """FMA peak in GFLOP/s for a dtype name and thread count, or None if unknown."""
        return self.fma_gflops.get((dtype, threads))

    def bandwidth(self, threads: int) -> float | None:
        """Copy bandwidth in GB/s for a thread count, or None if unknown."""
        return self.copy_gbs.get(threads)


def best_of(first: Peaks, second: Peaks) -> Peaks:
    """The higher of two measurements of each limit (noise only ever lowers a peak)."""
    fma = {
        key: max(first.fma_gflops.get(key, 0.0), value) for key, value in second.fma_gflops.items()
    }
    copy = {key: max(first.copy_gbs.get(key, 0.0), value) for key, value in second.copy_gbs.items()}
    return Peaks(
        fma or first.fma_gflops, copy or first.copy_gbs, first.fma_source, first.copy_source
    )


def build_peaks_binary() -> str | None:
    """Compile peaks.c into a temporary directory; return the binary's path or None."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    out_dir = os.path.join(tempfile.gettempdir(), "strideconv-bench")
    os.makedirs(out_dir, exist_ok=True)
    binary = os.path.join(out_dir, "peaks")
    for flags in (["-march=native"], ["-mavx512f", "-mfma"], ["-mavx2", "-mfma"]):
        cmd = [gcc, "-O3", *flags, "-fopenmp", "-o", binary, PEAKS_SOURCE]
        if subprocess.run(cmd, capture_output=True, check=False).returncode == 0:
            return binary
    return None


def _run_peaks(binary: str, *args: str) -> list[str]:
    """Run the peaks binary with arguments; return its output split into words."""
    out = subprocess.run([binary, *args], capture_output=True, text=True, check=True)
    return out.stdout.split()


def numpy_copy_bandwidth(mib: int = COPY_MIB) -> float:
    """GB/s of numpy.copyto on a `mib` MiB float64 array (read + write bytes), best of 5."""
    src = np.ones(mib * 1024 * 1024 // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9


def measure_peaks() -> Peaks:
    """Measure FMA peaks (float32/float64, 1 and 2 threads) and copy bandwidth."""
    binary = build_peaks_binary()
    fma: dict = {}
    copy: dict = {}
    if binary is not None:
        isa = "?"
        for dtype, tag in (("float32", "f32"), ("float64", "f64")):
            for threads in (1, 2):
                value, isa = _run_peaks(binary, "fma", tag, str(threads))
                fma[(dtype, threads)] = float(value)
        for threads in (1, 2):
            copy[threads] = float(_run_peaks(binary, "copy", str(threads), str(COPY_MIB))[0])
        fma_source = f"peaks.c FMA loop ({isa}, 16 accumulators, gcc -O3)"
        copy_source = f"peaks.c parallel copy of {COPY_MIB} MiB (read+write bytes counted)"
    else:
        fma_source = "unknown (no gcc to build peaks.c)"
        copy[1] = numpy_copy_bandwidth()
        copy_source = f"numpy.copyto of {COPY_MIB} MiB, 1 thread (read+write bytes counted)"
    return Peaks(fma, copy, fma_source, copy_source)


def blas_description() -> str:
    """Which BLAS library, kernel architecture and thread count numpy and scipy use."""
    try:
        import threadpoolctl
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    parts = []
    for info in threadpoolctl.threadpool_info():
        if info.get("user_api") != "blas":
            continue
        # The wheel that ships the library: numpy.libs/ or scipy.libs/ in its path.
        owner = os.path.basename(os.path.dirname(info.get("filepath", ""))).replace(".libs", "")
        parts.append(
            f"{owner}: {info.get('internal_api')} {info.get('version')}, "
            f"kernel architecture {info.get('architecture')}, {info.get('num_threads')} threads"
        )
    return "; ".join(parts) or "none found"


def cpu_description() -> str:
    """The CPU model name and core count, from /proc/cpuinfo where available."""
    name = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def busy_cpu_seconds() -> float | None:
    """CPU seconds spent busy by the whole machine since boot (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds used by this process and its finished children (the peaks binary)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OtherLoad:
    """How many CPUs other processes kept busy, on average, between start() and cores()."""

    def __init__(self) -> None:
        self.machine = busy_cpu_seconds()
        self.own = own_cpu_seconds()
        self.wall = time.perf_counter()

    def cores(self) -> float | None:
        machine = busy_cpu_seconds()
        if machine is None or self.machine is None:
            return None
        others = (machine - self.machine) - (own_cpu_seconds() - self.own)
        return max(others, 0.0) / (time.perf_counter() - self.wall)
