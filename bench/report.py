"""Write BENCHMARKS.md from the measured rows: tables per family and the targets summary."""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np

import peers
from machine import Peaks
from timing import Measurement
from workloads import PRESETS

# ---------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    """A time with a unit that keeps three significant digits readable."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_cell(m: Measurement) -> str:
    """A table cell: the time, or a short reason why there is none."""
    if m.ok:
        return fmt_time(m.seconds)
    if m.note.startswith("skipped"):
        return "skip (" + m.note.split(":", 1)[1].strip() + ")"
    if m.note.startswith("WRONG"):
        return "**WRONG**"
    if m.note.startswith("failed"):
        return "**failed**"
    return "n/a"


def fmt_ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}×"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# ---------------------------------------------------------------------------------------
# Derived numbers
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Roofline:
    """Achieved throughput against the bound that applies (FMA peak or copy bandwidth)."""

    gflops: float  # achieved, direct-definition flops
    fraction: float  # achieved / bound
    bound: str  # "FMA" or "BW"


def roofline(
    flops: float, min_bytes: float, seconds: float, dtype: str, threads: int, peaks: Peaks
):
    """Where a time sits under the roofline min(FMA peak, intensity x copy bandwidth)."""
    peak, bandwidth = peaks.flops(dtype, threads), peaks.bandwidth(threads)
    gflops = flops / seconds / 1e9
    if peak is None or bandwidth is None:
        return Roofline(gflops, float("nan"), "?")
    memory_bound = flops / min_bytes * bandwidth
    if memory_bound < peak:
        return Roofline(gflops, gflops / memory_bound, "BW")
    return Roofline(gflops, gflops / peak, "FMA")


def fmt_roofline(r: Roofline | None) -> str:
    if r is None or np.isnan(r.fraction):
        return "—"
    return f"{100 * r.fraction:.0f}% {r.bound}"


def fastest_peer(row) -> tuple[str, float] | None:
    """(name, seconds) of the fastest peer that produced a checked time."""
    timed = [(m.seconds, name) for name, m in row.peers.items() if m.ok]
    if not timed:
        return None
    seconds, name = min(timed)
    return name, seconds


def speedup(peer: Measurement | None, mine: Measurement) -> float | None:
    """peer time / our time (> 1 means we are faster), or None if either is missing."""
    if peer is None or not peer.ok or not mine.ok:
        return None
    return peer.seconds / mine.seconds


def failure_notes(rows, label) -> list[str]:
    """Bullet lines for every failed or wrong measurement, so nothing is hidden, and one
    line per distinct reason a peer was not available (`n/a` cells)."""
    notes, unavailable = [], {}
    for row in rows:
        for name, m in [*row.peers.items(), ("strideconv", row.ours)]:
            if m.note.startswith(("WRONG", "failed")):
                notes.append(f"- {label(row)}, {name}: {m.note}")
            elif m.note and not m.note.startswith("skipped"):
                unavailable.setdefault(f"{name}: {m.note}", None)
    return notes + [f"- n/a = {reason}" for reason in unavailable]


# ---------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------


def cap_line(meta: dict) -> str:
    """The run-time caps and how many cells each family lost to them."""
    caps, not_run = meta["caps"], meta["not_run"]
    cut = ", ".join(f"{family} {count}" for family, count in not_run.items())
    return (
        f"- Run-time caps: seed grid {caps.seed:.0f} s, CNN {caps.cnn:.0f} s, bandwidth-bound "
        f"{caps.stream:.0f} s; cells not run because a cap was reached: {cut}."
    )


def fmt_cores(cores: float | None) -> str:
    return "an unknown number of" if cores is None else f"{cores:.2f}"


def load_warning(meta: dict) -> list[str]:
    """A loud note when other work shared the CPU: then the numbers are not trustworthy."""
    others = meta["other_cores"]
    if others is None or others < 0.2:
        return []
    return [
        (
            f"> **Warning: the machine was busy during this run: other processes kept "
            f"{others:.2f} of its {meta['cpus']} CPUs busy on average.** Times are noisy, and "
            "peers whose threads "
            "meet at barriers (torch's OpenMP) can be slowed many-fold when another process "
            "holds a core. Treat every ratio and verdict below as provisional; rerun on an idle "
            "machine."
        ),
        "",
    ]


def build_warning(meta: dict) -> list[str]:
    """A loud note when the strideconv measured is not its release build."""
    why = meta.get("slow_build", "")
    if not why:
        return []
    return [f"> **Warning: {why}.** strideconv's times below understate it.", ""]


def header_section(meta: dict, peaks: Peaks) -> list[str]:
    lines = [
        "# Benchmarks: strideconv against the peers",
        "",
        "Generated by `bench/run.py`; do not edit by hand. Produced by:",
        "",
        "```",
        meta["command"],
        "```",
        "",
        *load_warning(meta),
        *build_warning(meta),
        (
            f"- Date: {meta['date']}; commit `{meta['commit']}`; mode: {meta['mode']}; "
            f"wall time {meta['wall']:.0f} s."
        ),
        (
            f"- Machine: {meta['cpu']}. Load average at start {meta['load_start']}, "
            f"at end {meta['load_end']} (this run included); other processes used "
            f"{fmt_cores(meta['other_cores'])} CPUs on average during the run (/proc/stat)."
        ),
        f"- BLAS (threadpoolctl): {meta['blas']}.",
        f"- strideconv: {meta['strideconv']}. Peers: {meta['peers']}.",
        (
            f"- Method: every implementation runs once and is checked against a float64 reference "
            f"(tolerance {meta['rtol']} of the largest reference magnitude), runs once more "
            "untimed, then the best per-call time of 3-7 timed repeats (each ≥ 20 ms of calls) is "
            "kept; on CNN layers the implementations' repeats are interleaved (round r times "
            "repeat r of each in turn, each after a 50 ms pause and one untimed call), so a slow "
            "spell of the machine falls on all of them. On the seed grid and the bandwidth-bound "
            "cases the peers run one after another, then strideconv and the fastest peer are "
            "timed again with their repeats interleaved, and the ratio is of these two timings. "
            "All in one process, side by side. No result is cached between calls. After "
            "the window-view peer on 2 threads the run waits 0.25 s, until OpenBLAS's threads stop "
            "spinning (they slowed whatever was timed next, by up to 2.6×)."
        ),
        (
            "- % of bound: achieved GFLOP/s (2 flops per multiply-add of the direct definition) "
            "against the roofline min(FMA peak, intensity × copy bandwidth), where intensity is "
            "direct flops per byte of input + kernel + output; `FMA` marks compute-bound cases "
            "(fraction of the FMA peak), `BW` bandwidth-bound ones (fraction of copy bandwidth). "
            "FFT methods do fewer flops than the direct definition, so they can exceed 100%; "
            "so can cases whose data stay in cache (copy bandwidth is measured on 1 GiB)."
        ),
        "- Ratios are peer time / strideconv time: above 1× strideconv is faster.",
        cap_line(meta),
        "",
        "## Machine peaks (best of a measurement at the start and one at the end of this run)",
        "",
    ]
    rows = []
    for threads in (1, 2):
        f32, f64 = peaks.flops("float32", threads), peaks.flops("float64", threads)
        bw = peaks.bandwidth(threads)
        rows.append(
            [
                str(threads),
                "?" if f32 is None else f"{f32:.0f}",
                "?" if f64 is None else f"{f64:.0f}",
                "?" if bw is None else f"{bw:.1f}",
            ]
        )
    lines += table(["threads", "FMA float32 GFLOP/s", "FMA float64 GFLOP/s", "copy GB/s"], rows)
    lines += ["", f"FMA: {peaks.fma_source}. Copy: {peaks.copy_source}.", ""]
    return lines


def seed_label(row) -> str:
    c = row.case
    return f"{c.preset.name} n={c.n} f={c.f} {c.dtype} threads={c.threads}"


def seed_order(row) -> tuple:
    """Table order: preset (as SPEC §6 lists them), then n, then f."""
    c = row.case
    return ([p.name for p in PRESETS].index(c.preset.name), c.n, c.f)


def seed_section(rows, peaks: Peaks) -> list[str]:
    """One table per (dtype, threads) group of the seed grid."""
    lines = [
        "## Seed grid (SPEC §6 presets: valid, no padding)",
        "",
        (
            "`seed-2d`: n×n input, f×f kernel, stride 2. `seed-3d-c5-s2`: n×n×5 with f×f×5, "
            "stride 2. `seed-3d-c10-s5`: n×n×10 with f×f×10, stride 5 (channel axis summed). "
            "Peers limited to the same thread count (BLAS via threadpoolctl, scipy.fft workers, "
            "torch.set_num_threads). `skip` = over the per-call time or memory budget "
            "(estimated, not run). strideconv's timed calls alternate between k and −k: an "
            "FFT plan keeps the spectra of the last kernel it saw, and this way no call reuses "
            "them (the peers transform the kernel on every call too)."
        ),
        "",
    ]
    names = [name for name, _, _ in peers.ARRAY_PEERS]
    groups = sorted(
        {(r.case.dtype, r.case.threads) for r in rows}, key=lambda g: (g[0] != "float64", -g[1])
    )
    for dtype, threads in groups:
        lines += [f"### {dtype}, {threads} thread{'s' if threads > 1 else ''}", ""]
        body = []
        group = [r for r in rows if (r.case.dtype, r.case.threads) == (dtype, threads)]
        for row in sorted(group, key=seed_order):
            c, best = row.case, fastest_peer(row)
            r = (
                roofline(c.flops, c.min_bytes, row.ours.seconds, dtype, threads, peaks)
                if row.ours.ok
                else None
            )
            body.append(
                [c.preset.name, str(c.n), str(c.f), f"{c.out_side}²"]
                + [fmt_cell(row.peers[name]) for name in names]
                + [
                    f"**{fmt_cell(row.ours)}**",
                    row.method or "—",
                    best[0] if best else "—",
                    fmt_ratio(speedup(row.peers[best[0]], row.ours) if best else None),
                    "—" if r is None else f"{r.gflops:.1f}",
                    fmt_roofline(r),
                ]
            )
        header = [
            "preset",
            "n",
            "f",
            "out",
            *names,
            "strideconv",
            "auto chose",
            "fastest peer",
            "ratio",
            "GFLOP/s",
            "% of bound",
        ]
        lines += table(header, body) + [""]
    lines += failure_notes(rows, seed_label) + [""]
    return lines


def layer_label(row) -> str:
    layer, batch, dtype = row.case
    return f"{layer.name} batch={batch} {dtype}"


def layer_section(rows, peaks: Peaks) -> list[str]:
    """One table per dtype of the CNN layers."""
    lines = [
        "## CNN layers (NCHW, torch.nn.functional.conv2d semantics, 2 threads)",
        "",
        (
            "torch: `F.conv2d` on zero-copy `torch.from_numpy` tensors; onnxruntime: a one-node "
            "Conv model, 2 intra-op threads; jax: `lax.conv_general_dilated` under `jax.jit`, "
            "inputs already device arrays, `block_until_ready`; strideconv: `strideconv.conv2d`. "
            "Every call gets the same weights, as in inference: onnxruntime packs them once "
            "when its session is made; a strideconv plan that chose `winograd` keeps its "
            "transformed kernel and, on each call, compares the weights with the kept ones "
            "(that comparison is timed). Rates and % of peak count the direct definition's "
            "flops, so `winograd`, which does 2.25× fewer, can show more than 100%."
        ),
        "",
    ]
    names = [name for name, _ in peers.LAYER_PEERS]
    for dtype in ("float32", "float64"):
        group = [r for r in rows if r.case[2] == dtype]
        if not group:
            continue
        lines += [f"### {dtype}", ""]
        body = []
        for row in group:
            layer, batch, _ = row.case
            itemsize = np.dtype(dtype).itemsize
            r = (
                roofline(
                    layer.flops(batch),
                    layer.min_bytes(batch, itemsize),
                    row.ours.seconds,
                    dtype,
                    2,
                    peaks,
                )
                if row.ours.ok
                else None
            )
            body.append(
                [layer.name, str(batch)]
                + [fmt_cell(row.peers[name]) for name in names]
                + [f"**{fmt_cell(row.ours)}**", row.method or "—"]
                + [fmt_ratio(speedup(row.peers[name], row.ours)) for name in names]
                + ["—" if r is None else f"{r.gflops:.1f}", fmt_roofline(r)]
            )
        header = ["layer", "N", *names, "strideconv", "auto chose"]
        header += [f"{name}/ours" for name in names] + ["GFLOP/s", "% of bound"]
        lines += table(header, body) + [""]
    lines += failure_notes(rows, layer_label) + [""]
    return lines


def stream_label(row) -> str:
    c = row.case
    return f"n={c.n} s={c.stride} {c.dtype} threads={c.threads}"


def stream_section(rows, peaks: Peaks) -> list[str]:
    lines = [
        "## Bandwidth-bound: one channel, 3×3 kernel, large n",
        "",
        "GB/s counts the input read once and the output written once.",
        "",
    ]
    body = []
    for row in rows:
        c = row.case
        gbs = c.min_bytes / row.ours.seconds / 1e9 if row.ours.ok else None
        bw = peaks.bandwidth(c.threads)
        body.append(
            [str(c.n), str(c.stride), c.dtype, str(c.threads)]
            + [fmt_cell(row.peers[name]) for name in row.peers]
            + [f"**{fmt_cell(row.ours)}**", row.method or "—"]
            + [
                "—" if gbs is None else f"{gbs:.1f}",
                "—" if gbs is None or not bw else f"{100 * gbs / bw:.0f}%",
            ]
        )
    names = list(rows[0].peers) if rows else []
    header = [
        "n",
        "stride",
        "dtype",
        "threads",
        *names,
        "strideconv",
        "auto chose",
        "GB/s",
        "% of copy BW",
    ]
    lines += table(header, body) + [""] + failure_notes(rows, stream_label) + [""]
    return lines


def overhead_section(results) -> list[str]:
    lines = [
        "## Per-call overhead: the seed's 7×7 example (stride 2), from Python",
        "",
        "`timeit`, best of 7 runs of ≥ 1000 calls; result checked first.",
        "",
    ]
    body = [
        [label, fmt_cell(m) if not m.ok else f"{m.seconds * 1e6:.2f} µs"] for label, m in results
    ]
    lines += table(["call", "time per call"], body) + [""]
    lines += [f"- {label}: {m.note}" for label, m in results if not m.ok and m.note] + [""]
    return lines


# ---------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------


def verdict(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "**not measured**"}[met]


def seed_target(rows, threads: int) -> str:
    """Target 1 on the float64 seed cells with n >= 256 at a thread count."""
    cells = [
        r
        for r in rows
        if r.case.dtype == "float64" and r.case.threads == threads and r.case.n >= 256
    ]
    if not cells:
        return f"- threads={threads}: {verdict(None)} (no cells)."
    ratios, missing = [], 0
    for row in cells:
        best = fastest_peer(row)
        ratio = speedup(row.peers[best[0]], row.ours) if best else None
        if ratio is None:
            missing += 1
        else:
            ratios.append((ratio, seed_label(row)))
    if not ratios:
        return f"- threads={threads}: {verdict(None)} (strideconv not measured)."
    worst = min(ratios)
    median = statistics.median(r for r, _ in ratios)
    below = sum(r < 3 for r, _ in ratios)
    met = missing == 0 and below == 0 and median >= 8
    return (
        f"- threads={threads}: {verdict(met)}. {len(ratios)} cells: median {median:.2f}× "
        f"(target ≥ 8×), minimum {worst[0]:.2f}× at {worst[1]} (target ≥ 3×), "
        f"{below} cells below 3×" + (f", {missing} cells without a ratio" if missing else "") + "."
    )


def layer_target(rows) -> list[str]:
    """Target 2: float32 ≥ 1× torch and onnxruntime; float64 ≥ 2× torch, every layer."""
    lines = []
    for dtype, peer_names, need in (
        ("float32", ("torch", "onnxruntime"), 1.0),
        ("float64", ("torch",), 2.0),
    ):
        for name in peer_names:
            ratios = []
            for row in (r for r in rows if r.case[2] == dtype):
                ratio = speedup(row.peers.get(name), row.ours)
                if ratio is not None:
                    ratios.append((ratio, layer_label(row)))
            if not ratios:
                lines.append(f"- {dtype} vs {name}: {verdict(None)}.")
                continue
            worst = min(ratios)
            below = sum(r < need for r, _ in ratios)
            lines.append(
                f"- {dtype} vs {name} (≥ {need:g}× on every layer): {verdict(below == 0)}. "
                f"{len(ratios)} layers, median {statistics.median(r for r, _ in ratios):.2f}×, "
                f"worst {worst[0]:.2f}× at {worst[1]}, {below} below {need:g}×."
            )
    return lines


def roofline_target(layer_rows, stream_rows, peaks: Peaks) -> list[str]:
    """Target 3: compute-bound float32 layers ≥ 70% FMA; bandwidth-bound ≥ 60% copy BW."""
    lines = []
    fractions = []
    for row in layer_rows:
        layer, batch, dtype = row.case
        if dtype != "float32" or not row.ours.ok:
            continue
        r = roofline(
            layer.flops(batch), layer.min_bytes(batch, 4), row.ours.seconds, dtype, 2, peaks
        )
        if r.bound == "FMA":
            fractions.append((r.fraction, layer_label(row)))
    if fractions:
        worst = min(fractions)
        below = sum(f < 0.7 for f, _ in fractions)
        lines.append(
            f"- compute-bound float32 layers ≥ 70% of FMA peak: {verdict(below == 0)}. "
            f"{len(fractions)} layers, median {100 * statistics.median(f for f, _ in fractions):.0f}%, "
            f"worst {100 * worst[0]:.0f}% at {worst[1]}, {below} below 70%."
        )
    else:
        lines.append(f"- compute-bound float32 layers: {verdict(None)}.")
    shares = []
    for row in stream_rows:
        bw = peaks.bandwidth(row.case.threads)
        if row.ours.ok and bw:
            shares.append((row.case.min_bytes / row.ours.seconds / 1e9 / bw, stream_label(row)))
    if shares:
        worst = min(shares)
        below = sum(s < 0.6 for s, _ in shares)
        lines.append(
            f"- bandwidth-bound one-channel 3×3 cases ≥ 60% of copy bandwidth: {verdict(below == 0)}. "
            f"{len(shares)} cases, median {100 * statistics.median(s for s, _ in shares):.0f}%, "
            f"worst {100 * worst[0]:.0f}% at {worst[1]}, {below} below 60%."
        )
    else:
        lines.append(f"- bandwidth-bound cases: {verdict(None)}.")
    return lines


def overhead_target(results) -> str:
    """Target 6: the seed's example in at most 3 µs per call."""
    for label, m in results:
        if label.startswith("strideconv.correlate(x, k, stride=2)"):
            if not m.ok:
                return f"- {verdict(None)} ({m.note})."
            us = m.seconds * 1e6
            return f"- `{label}`: {us:.2f} µs per call (target ≤ 3 µs): {verdict(us <= 3.0)}."
    return f"- {verdict(None)} (strideconv not importable)."


TARGET_1 = (
    "**Target 1** (seed presets, n ≥ 256, float64: `auto` ≥ 3× the fastest peer on every "
    "cell, ≥ 8× at the median; same-thread-count peers):"
)
NOT_MEASURED = (
    "Targets 4 (auto vs the fastest forced method) and 5 (memory) are not measured by this harness."
)


def summary_section(
    seed_rows, layer_rows, stream_rows, overhead, peaks: Peaks, not_run: dict, busy: bool
) -> list[str]:
    lines = ["## Summary against the targets (PERFORMANCE.md)", ""]
    if busy:
        lines += ["*Provisional: measured on a busy machine (see the warning at the top).*", ""]
    lines += [TARGET_1, seed_target(seed_rows, 2), seed_target(seed_rows, 1), ""]
    lines += ["**Target 2** (CNN layers, 2 threads):", *layer_target(layer_rows), ""]
    lines += ["**Target 3** (roofline):", *roofline_target(layer_rows, stream_rows, peaks), ""]
    lines += ["**Target 6** (call overhead):", overhead_target(overhead), ""]
    lines += [NOT_MEASURED, ""]
    cut = {family: count for family, count in not_run.items() if count}
    if cut:
        lines += [f"Incomplete: cells not run (run-time cap reached): {cut}.", ""]
    return lines


def write_report(
    path: str, meta: dict, peaks: Peaks, seed_rows, layer_rows, stream_rows, overhead
) -> None:
    """Write the whole BENCHMARKS.md."""
    lines = header_section(meta, peaks)
    busy = bool(load_warning(meta))
    lines += summary_section(
        seed_rows, layer_rows, stream_rows, overhead, peaks, meta["not_run"], busy
    )
    if seed_rows:
        lines += seed_section(seed_rows, peaks)
    if layer_rows:
        lines += layer_section(layer_rows, peaks)
    if stream_rows:
        lines += stream_section(stream_rows, peaks)
    if overhead:
        lines += overhead_section(overhead)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines).rstrip() + "\n")
