"""What is measured: the seed grid, the CNN layers, the bandwidth-bound cases.

Plain data only; `run.py` turns these into measurements. The `quick` selections keep the
same shapes as the full run, fewer of them.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Preset:
    """One of the seed's three comparisons (SPEC §6): channels (0 = plain 2-D) and stride."""

    name: str
    channels: int
    stride: int


PRESETS = [
    Preset("seed-2d", 0, 2),
    Preset("seed-3d-c5-s2", 5, 2),
    Preset("seed-3d-c10-s5", 10, 5),
]


@dataclasses.dataclass(frozen=True)
class SeedCell:
    """One cell of the seed grid: an n×n(×c) input, f×f(×c) kernel, stride, dtype, threads."""

    preset: Preset
    n: int
    f: int
    dtype: str
    threads: int

    @property
    def out_side(self) -> int:
        return (self.n - self.f) // self.preset.stride + 1

    @property
    def flops(self) -> float:
        """2 flops per multiply-add of the direct definition."""
        return 2.0 * self.out_side**2 * self.f**2 * max(self.preset.channels, 1)

    @property
    def min_bytes(self) -> float:
        """Bytes that must cross memory at least once: input, kernel, output."""
        c = max(self.preset.channels, 1)
        itemsize = np.dtype(self.dtype).itemsize
        return itemsize * (self.n**2 * c + self.f**2 * c + self.out_side**2)


def kernel_sizes(n: int, quick: bool) -> list[int]:
    """Kernel sizes f for input size n: small fixed sizes plus n/4, n/2 and n-1."""
    sizes = [3, 9, 33, n // 2] if quick else [3, 5, 9, 17, 33, 65, n // 4, n // 2, n - 1]
    return sorted({f for f in sizes if f <= n})


def seed_cells(quick: bool) -> list[SeedCell]:
    """The seed grid: float64 on 2 and 1 threads; float32 on 2 threads at n = 512.

    --quick keeps n <= 512, four kernel sizes, 1 thread only at n = 256 and float32 only
    for seed-2d.
    """
    cells = []
    sizes = [256, 512] if quick else [256, 512, 1024]
    for n in sizes:  # smallest first: a run-time cap then cuts the largest cells
        for preset in PRESETS:
            for f in kernel_sizes(n, quick):
                cells.append(SeedCell(preset, n, f, "float64", 2))
                if not quick or n == 256:
                    cells.append(SeedCell(preset, n, f, "float64", 1))
                if n == 512 and (not quick or preset.channels == 0):
                    cells.append(SeedCell(preset, n, f, "float32", 2))
    return cells


@dataclasses.dataclass(frozen=True)
class Layer:
    """A CNN layer (torch.nn.functional.conv2d semantics), square spatial size."""

    name: str
    c_in: int
    c_out: int
    size: int  # input height = width
    kernel: int
    stride: int
    padding: int
    groups: int = 1

    @property
    def out_size(self) -> int:
        return (self.size + 2 * self.padding - self.kernel) // self.stride + 1

    def flops(self, batch: int) -> float:
        """2 flops per multiply-add of the direct definition."""
        macs_per_output = self.c_in // self.groups * self.kernel**2
        return 2.0 * batch * self.c_out * self.out_size**2 * macs_per_output

    def min_bytes(self, batch: int, itemsize: int) -> float:
        """Input, weights and output, each read or written once."""
        weights = self.c_out * self.c_in // self.groups * self.kernel**2
        return itemsize * (
            batch * self.c_in * self.size**2 + weights + batch * self.c_out * self.out_size**2
        )


LAYERS = [
    Layer("stem 7×7/2 3→64 @224", 3, 64, 224, 7, 2, 3),
    Layer("3×3/1 64→64 @56", 64, 64, 56, 3, 1, 1),
    Layer("3×3/1 128→128 @28", 128, 128, 28, 3, 1, 1),
    Layer("3×3/1 256→256 @14", 256, 256, 14, 3, 1, 1),
    Layer("3×3/2 64→128 @56", 64, 128, 56, 3, 2, 1),
    Layer("1×1/1 64→256 @56", 64, 256, 56, 1, 1, 0),
    Layer("1×1/1 256→64 @56", 256, 64, 56, 1, 1, 0),
    Layer("1×1/2 64→128 @56", 64, 128, 56, 1, 2, 0),
    Layer("dw 3×3/2 64 @112", 64, 64, 112, 3, 2, 1, groups=64),
    Layer("dw 3×3/2 256 @28", 256, 256, 28, 3, 2, 1, groups=256),
]

QUICK_LAYERS = {LAYERS[0].name, LAYERS[1].name, LAYERS[4].name, LAYERS[5].name, LAYERS[8].name}


def layer_cells(quick: bool) -> list[tuple[Layer, int, str]]:
    """(layer, batch, dtype) combinations: batch 1 and 8, float32 and float64."""
    layers = [layer for layer in LAYERS if not quick or layer.name in QUICK_LAYERS]
    batches = [1] if quick else [1, 8]
    return [(l, b, d) for d in ("float32", "float64") for b in batches for l in layers]


@dataclasses.dataclass(frozen=True)
class StreamCell:
    """A bandwidth-bound case: one channel, 3×3 kernel, large n."""

    n: int
    stride: int
    dtype: str
    threads: int

    @property
    def out_side(self) -> int:
        return (self.n - 3) // self.stride + 1

    @property
    def flops(self) -> float:
        return 2.0 * 9 * self.out_side**2

    @property
    def min_bytes(self) -> float:
        return np.dtype(self.dtype).itemsize * (self.n**2 + self.out_side**2)


def stream_cells(quick: bool) -> list[StreamCell]:
    """One channel, 3×3, n = 4096 (and 8192 in the full run), stride 1 and 2."""
    sizes = [4096] if quick else [4096, 8192]
    threads = [2] if quick else [2, 1]
    return [
        StreamCell(n, s, d, t)
        for n in sizes
        for s in (1, 2)
        for d in ("float32", "float64")
        for t in threads
    ]
