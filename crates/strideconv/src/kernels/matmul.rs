//! The AVX-512 matrix product behind `im2col` for `f32` and `f64`.
//!
//! `im2col` multiplies the kernel matrix (output channels × reduction) by a gathered panel
//! (reduction × output positions) whose rows are contiguous, into output rows that are
//! contiguous too. The `gemm` crate packs both operands again on every call and reached
//! about 65% of this machine's float32 FMA peak on those products; this product is written
//! for that one shape of problem and reads both operands where they are:
//!
//! - the micro-kernel keeps an `MR × NV` tile of sums (8 output channels × 3 vectors of
//!   positions) in 24 registers; per reduction step it does three vector loads from the
//!   panel row, eight broadcasts from the eight weight rows and 24 fused multiply-adds:
//!   enough independent sums to cover the FMA latency on both pipes;
//! - the reduction is cut into blocks of `kc` steps, so the panel's `kc × NV` vectors a
//!   tile reads stay in L1 while every strip of eight weight rows passes over them;
//! - partial tiles read and store with lane masks (and rows past `m` are not stored), so any
//!   `m` and `n` work without padding; a last block of one or two vectors runs a narrower
//!   tile instead of wasting lanes;
//! - weights whose rows are not contiguous are packed into strips first; a panel whose rows
//!   lie far apart (a 1×1 layer's input, multiplied in place) is multiplied a wide block of
//!   columns at a time, the next block's lines prefetched into L2 meanwhile, so its reads
//!   hit L2 instead of memory in more streams than the hardware prefetcher follows;
//! - a panel whose rows all start the same distance past a cache line (a numpy array's
//!   data start 16 bytes past one) has the columns before its first line multiplied on
//!   their own, so that the rest loads whole lines ([`lead_columns`]);
//! - when the caller says the destination is far larger than the caches (a batch of 1×1
//!   outputs), final sums that fill a whole cache line are written with non-temporal
//!   stores, so no store first reads its line from memory.
//!
//! Measured against the `gemm` crate, 2 threads, one image (Rust loop): 3×3 64→64 @56 float32
//! 669 → 594 µs, float64 1184 → 1107 µs; 1×1 256→64 @56 float32 243 → 223 µs; the 7×7 stem
//! 625 → 575 µs; 1×1 64→256 @56 batch 8 float64 6.34 → 6.11 ms. 3×3 256→256 @14 and 1×1
//! layers of one image stay about even (within 5%, either way).
//!
//! The same micro-kernel runs `im2col`'s implicit product ([`gathered`]): panel row `kk` is
//! then wherever a table of tap offsets says (a shifted run of an input plane), and the
//! columns are positions of a grid wider than the output's rows, stored in pieces (a vector
//! that crosses the end of a grid row is two masked stores, its lanes past the row's end
//! none). Those rows overlap, so the reduction is not blocked there. Where the grid's extra
//! columns are a large share of it (narrow outputs), [`gathered`] runs the channels-in-lanes
//! product of [`super::broadcast`] instead, which computes real outputs only.
//!
//! Other element types, other strides and other CPUs keep the `gemm` crate.

use std::any::TypeId;
use std::sync::OnceLock;

use ndarray::{ArrayView2, ArrayViewMut2, ArrayViewMut4};

use crate::Scalar;

/// Rows of the weight strips and of the micro-kernel's tile.
const MR: usize = 8;
/// Vectors of positions in the micro-kernel's tile.
const NV: usize = 3;
/// Bytes of the panel one tile reads (`kc` rows of `NV` vectors): half of L1, the weights and
/// the output tile take the rest (24 to 48 KiB measured the same; unblocked was 2% slower).
const BLOCK_BYTES: usize = 24 << 10;

/// Bytes of sums an implicit product keeps in flight (one block of positions, every output
/// channel): well inside L2, next to the input planes the block reads.
const OUT_BLOCK_BYTES: usize = 128 << 10;
/// Multiple of `kc` a tap-table product takes as one reduction block.
const TAP_BLOCKS: usize = 16;
/// Panel row strides (bytes) above which the panel's rows count as far apart: it is read a
/// wide block at a time, each block prefetched while the one before is multiplied.
const FAR_STRIDE_BYTES: usize = 8 << 10;
/// Tiles (of `NV` vectors) per wide block.
const WIDE_BLOCKS: usize = 10;
/// Multiple of `kc` a panel of far-apart rows takes as one reduction block.
const FAR_BLOCKS: usize = 2;

/// Whether [`matmul`] multiplies `T` when the strides suit it (f32 or f64, AVX-512).
pub(crate) fn available<T: Scalar>() -> bool {
    super::avx512_float::<T>()
}

/// Whether [`matmul`] multiplies `T` with these strides: `f32` or `f64` on an AVX-512 CPU,
/// unit column strides for the destination and the right-hand side, a reduction.
pub(super) fn applies<T: Scalar>(dst_cs: isize, rhs_cs: isize, k: usize) -> bool {
    available::<T>() && dst_cs == 1 && rhs_cs == 1 && k > 0
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`. The caller checked the shapes
/// chain and that [`applies`] holds. With `stream`, the final sums go to memory past the
/// caches where they fill whole cache lines (see [`avx512::run`]): for products whose
/// destination is much larger than the caches, which nothing will read soon.
pub(super) fn matmul<T: Scalar>(
    mut dst: ArrayViewMut2<'_, T>,
    lhs: ArrayView2<'_, T>,
    rhs: ArrayView2<'_, T>,
    accumulate: bool,
    stream: bool,
) {
    let (m, k) = lhs.dim();
    let n = rhs.ncols();
    assert!(
        applies::<T>(dst.strides()[1], rhs.strides()[1], k),
        "matmul: unsupported"
    );
    assert_eq!((rhs.nrows(), dst.dim()), (k, (m, n)), "matmul: shapes");
    if m == 0 || n == 0 {
        return;
    }
    // Weights are read in place when their rows are contiguous (the micro-kernel then
    // broadcasts from MR row streams); otherwise they are packed into strips of MR rows,
    // each `k × MR`.
    let (lhs_rs, lhs_cs) = (lhs.strides()[0], lhs.strides()[1]);
    let packed: Vec<T> = if lhs_cs == 1 {
        Vec::new()
    } else {
        let strips = m.div_ceil(MR);
        let mut packed = vec![T::zero(); strips * k * MR];
        for (i, row) in lhs.outer_iter().enumerate() {
            let base = (i / MR) * k * MR + i % MR;
            for (kk, &v) in row.iter().enumerate() {
                packed[base + kk * MR] = v;
            }
        }
        packed
    };
    // Weight (i, kk) is at `a + i·a_rs + kk·a_cs` in place; packed, strip s starts at
    // `s·k·MR` and (r, kk) within it at `r + kk·MR`.
    let a = if lhs_cs == 1 {
        Weights::InPlace(lhs.as_ptr(), lhs_rs)
    } else {
        Weights::Packed(packed.as_ptr())
    };
    let (rhs_rs, dst_rs) = (rhs.strides()[0], dst.strides()[0]);
    let ops = Operands {
        weights: a,
        b: rhs.as_ptr(),
        b_rs: rhs_rs,
        taps: std::ptr::null(),
        c: dst.as_mut_ptr(),
        c_rs: dst_rs,
        cols: Cols::Dense,
        stream,
    };
    // Columns before the panel's first cache line, multiplied on their own so that every
    // vector the rest reads is one whole line instead of two halves (see [`lead_columns`]).
    let lead = lead_columns::<T>(rhs.as_ptr(), rhs_rs, k, n);
    if lead > 0 {
        let rest = Operands {
            b: ops.b.wrapping_add(lead),
            c: ops.c.wrapping_add(lead),
            ..ops
        };
        // SAFETY: as below, for columns 0..lead and lead..n of the same operands: the
        // first product reads and writes columns j < lead, the second (its operands moved
        // `lead` columns on) columns lead ≤ j < n, each within the views' k×n and m×n.
        unsafe {
            dispatch::<T>((m, lead, k), ops, accumulate);
            dispatch::<T>((m, n - lead, k), rest, accumulate);
        }
        return;
    }
    // SAFETY: `rhs.as_ptr()` is element [0, 0] of a k×n view with unit column stride and row
    // stride `rhs_rs`, so `b + kk·rhs_rs + j` is valid for kk < k, j < n; likewise `c` for
    // the m×n destination, which nothing else accesses while its `&mut` view lives, and the
    // weights: in place `lhs + i·lhs_rs + kk` for i < m, kk < k, or `packed`, which holds
    // `⌈m/MR⌉·k·MR` elements and lives to the end of this function.
    unsafe { dispatch::<T>((m, n, k), ops, accumulate) };
}

/// Columns of a dense panel (row `kk` at `b + kk·b_rs`, `n` columns, `k` rows) before the
/// first that starts a cache line in every row, when the panel's rows start off a line and
/// all at the same offset (its row stride a whole number of lines), and there are columns
/// beyond them; else 0.
///
/// A numpy array's data start 16 bytes past a line (its allocator's header), and a 1×1
/// layer's product reads that input in place: every vector load then spans two lines. Cut
/// after these columns, the rest of the product loads whole lines (measured from Python, 1×1
/// 64→256 @56 float32, one image: inputs 16, 32 or 48 bytes off a line 6–10% slower than
/// on one, before this cut).
pub(crate) fn lead_columns<T>(b: *const T, b_rs: isize, k: usize, n: usize) -> usize {
    let size = std::mem::size_of::<T>();
    let off = b as usize % 64;
    let rows_alike = k <= 1 || (b_rs.unsigned_abs() * size).is_multiple_of(64);
    if size == 0 || off == 0 || !off.is_multiple_of(size) || !rows_alike {
        return 0;
    }
    let lead = (64 - off) / size;
    if lead < n {
        lead
    } else {
        0
    }
}

/// The product of an implicit im2col: `out[o, z, y, x] = Σ_kk lhs[o, kk] · src[taps[kk] + p]`
/// for the position `p = (z·rows + y)·pitch + x` of a grid of rows `pitch` apart, `rows` per
/// depth slice. Stride-1 windows of a plane laid out on that grid are then contiguous runs,
/// so no panel is gathered: panel row `kk` is `src + taps[kk]` itself. The positions of the
/// grid outside the output (`x ≥ W`, `y ≥ H`) are computed and dropped.
///
/// Runs on up to `threads` threads ([`crate::team`]), cutting the positions into runs
/// of whole vectors, or the output channels into strips when there are too few positions.
///
/// # Panics
/// If [`available`] is false for `T`, the shapes do not chain, `out`'s last axis is not
/// contiguous, the grid is narrower than the output or one vector, or a tap reads past the
/// end of `src`: every `taps[kk] + p` with `p < (D - 1)·rows·pitch + (H - 1)·pitch + W` (for
/// `out` of shape `(m, D, H, W)`) must index `src`.
///
/// `packed` carries weights packed for one micro-kernel from one image of a batch to the
/// next: every call given the same `packed` must be given the same `lhs`.
pub(crate) fn gathered<T: Scalar>(
    out: ArrayViewMut4<'_, T>,
    lhs: ArrayView2<'_, T>,
    src: &[T],
    taps: &[usize],
    grid: (usize, usize),
    threads: usize,
    packed: Option<&Packed<T>>,
) {
    gathered_by(
        out,
        lhs,
        src,
        taps,
        Walk::grid(grid),
        threads,
        Route::Cheaper,
        packed,
    );
}

/// Where an implicit product reads: output position `(z, y, x)` at grid position
/// `z·slice + y·pitch + x·step` (plus each tap's offset).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walk {
    pub pitch: usize,
    pub slice: usize,
    pub step: usize,
}

impl Walk {
    /// A grid of rows `pitch` apart, `rows` per depth slice, positions one apart.
    fn grid((pitch, rows): (usize, usize)) -> Walk {
        Walk {
            pitch,
            slice: rows * pitch,
            step: 1,
        }
    }

    /// Grid positions from the first output's to one past the last's, for outputs `shape`
    /// (none empty).
    fn span(self, [od, oh, ow]: [usize; 3]) -> usize {
        (od - 1) * self.slice + (oh - 1) * self.pitch + (ow - 1) * self.step + 1
    }
}

/// [`gathered`] with output positions `walk.step` (1 or 2) grid positions apart, by the
/// channels-in-lanes product: a stride-2 layer's windows read from its padded input as it
/// is, with no copy split by stride phase. Panics as [`gathered`] does, and for another step.
pub(crate) fn gathered_strided<T: Scalar>(
    out: ArrayViewMut4<'_, T>,
    lhs: ArrayView2<'_, T>,
    src: &[T],
    taps: &[usize],
    walk: Walk,
    threads: usize,
    packed: Option<&Packed<T>>,
) {
    assert!(
        matches!(walk.step, 1 | 2),
        "matmul: position step {}",
        walk.step
    );
    gathered_by(out, lhs, src, taps, walk, threads, Route::Channels, packed);
}

/// Whether [`gathered`] would take the channels-in-lanes product for `m` output channels
/// over outputs `shape` on a grid of rows `pitch` apart, `rows` per slice.
pub(crate) fn prefers_channels<T>(m: usize, shape: [usize; 3], grid: (usize, usize)) -> bool {
    shape.iter().all(|&e| e > 0) && channels_in_lanes::<T>(m, shape, Walk::grid(grid).span(shape))
}

/// Weights packed once for the images of a batch (see [`gathered`]).
pub(crate) struct Packed<T>(OnceLock<Vec<T>>);

impl<T> Packed<T> {
    /// Nothing packed yet.
    pub(crate) fn new() -> Self {
        Packed(OnceLock::new())
    }
}

/// Which micro-kernel [`gathered_by`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The one [`channels_in_lanes`] expects to do less work.
    Cheaper,
    /// Positions in lanes, over the whole grid.
    #[cfg_attr(not(test), allow(dead_code))]
    Grid,
    /// Channels in lanes ([`super::broadcast`]), whatever the tile width.
    #[cfg_attr(not(test), allow(dead_code))]
    Channels,
}

/// [`gathered`] by the micro-kernel `route` names.
#[allow(clippy::too_many_arguments)]
fn gathered_by<T: Scalar>(
    mut out: ArrayViewMut4<'_, T>,
    lhs: ArrayView2<'_, T>,
    src: &[T],
    taps: &[usize],
    walk: Walk,
    threads: usize,
    route: Route,
    packed: Option<&Packed<T>>,
) {
    let Walk { pitch, slice, step } = walk;
    let (m, [od, oh, ow]) = (
        out.shape()[0],
        [out.shape()[1], out.shape()[2], out.shape()[3]],
    );
    let k = taps.len();
    assert!(available::<T>(), "matmul: unsupported");
    assert_eq!(lhs.dim(), (m, k), "matmul: shapes");
    assert!(
        out.strides()[3] == 1 || ow <= 1,
        "matmul: output rows not contiguous"
    );
    let lanes = 64 / std::mem::size_of::<T>();
    // The positions-in-lanes product computes every grid position from an output's first to
    // its last, so it needs a grid of whole rows, at least one vector wide; the channels
    // product reads output positions only, wherever the walk puts them (any pitch, slice
    // and step: `gathered_strided` walks rows of a plain copy two rows apart).
    let rows = slice / pitch.max(1);
    assert!(
        route == Route::Channels
            || (step == 1 && pitch >= ow.max(lanes) && rows >= oh && slice == rows * pitch),
        "matmul: grid {pitch}×{rows}, step {step}"
    );
    if m == 0 || od * oh * ow == 0 || k == 0 {
        assert!(
            k > 0 || m == 0 || od * oh * ow == 0,
            "matmul: empty reduction"
        );
        return;
    }
    let span = walk.span([od, oh, ow]);
    let last = taps.iter().max().copied().unwrap_or(0);
    assert!(
        last.checked_add(span).is_some_and(|end| end <= src.len()),
        "matmul: taps read past the source"
    );
    let offsets: Vec<isize> = taps.iter().map(|&t| t as isize).collect();
    let strides = out.strides();
    let (c_rs, row_stride, slice_stride) = (strides[0], strides[2], strides[1]);
    let grid = |first: usize| Grid {
        first,
        pitch,
        rows,
        width: ow,
        height: oh,
        row_stride,
        slice_stride,
    };
    let (lhs_rs, lhs_cs) = (lhs.strides()[0], lhs.strides()[1]);
    let lhs = if lhs_cs == 1 {
        ndarray::CowArray::from(lhs)
    } else {
        ndarray::CowArray::from(lhs.as_standard_layout().into_owned())
    };
    let lhs_rs = if lhs_cs == 1 { lhs_rs } else { k as isize };
    let broadcast = match route {
        Route::Cheaper => channels_in_lanes::<T>(m, [od, oh, ow], span),
        Route::Grid => false,
        Route::Channels => true,
    };
    #[cfg(target_arch = "x86_64")]
    if broadcast {
        let problem = super::broadcast::Problem {
            m,
            k,
            lhs: lhs.as_ptr(),
            lhs_rs,
            src: src.as_ptr(),
            taps: offsets.as_ptr(),
            out: out.as_mut_ptr(),
            c_rs,
            slice_stride,
            row_stride,
            pitch,
            slice,
            step,
            shape: [od, oh, ow],
        };
        // `T` is exactly f32 or f64 (`available`), so one of the downcasts finds it.
        let shared = packed.map(|p| &p.0 as &dyn std::any::Any);
        // SAFETY: the weights are `m × k` with unit column stride (`lhs_rs` apart); every
        // output position's grid position `p < span` and `taps[kk] + p` indexes `src`
        // (checked above); the output's positions are distinct elements of `out`, which
        // nothing else accesses while its `&mut` view lives; `T` is f32 or f64 on an
        // AVX-512 CPU (`available`), so the casts reinterpret it as itself; `packed` was
        // filled, if at all, by this same code from the same weights (the caller's promise).
        unsafe {
            if TypeId::of::<T>() == TypeId::of::<f32>() {
                let shared = shared.and_then(|p| p.downcast_ref::<OnceLock<Vec<f32>>>());
                super::broadcast::run::<f32>(problem.cast(), threads, shared);
            } else {
                let shared = shared.and_then(|p| p.downcast_ref::<OnceLock<Vec<f64>>>());
                super::broadcast::run::<f64>(problem.cast(), threads, shared);
            }
        }
        return;
    }
    let tile = NV * lanes;
    // Threads take runs of positions (each then reads only its share of the input), cut at
    // whole vectors so they differ by one vector at most; channel strips only when there
    // are too few positions. Splitting channels when tiles split unevenly was much slower
    // (3×3 64→128 @56 stride 2: 330 → 519 µs): every thread then streams the whole input.
    let vectors = span.div_ceil(lanes);
    let by_positions = threads <= 1 || vectors >= 4 * NV * threads || m < 2 * MR;
    let parts = if by_positions {
        threads.min(vectors).max(1)
    } else {
        threads.min(m.div_ceil(MR))
    };
    let (dst, panel) = (Shared(out.as_mut_ptr()), Shared(src.as_ptr().cast_mut()));
    let one = |p0: usize, p1: usize, i0: usize, i1: usize| {
        if p0 >= p1 || i0 >= i1 {
            return;
        }
        let ops = Operands {
            weights: Weights::InPlace(lhs.as_ptr().wrapping_offset(i0 as isize * lhs_rs), lhs_rs),
            b: panel.get().cast_const().wrapping_add(p0),
            b_rs: 0,
            taps: offsets.as_ptr(),
            c: dst.get().wrapping_offset(i0 as isize * c_rs),
            c_rs,
            cols: Cols::Grid(grid(p0)),
            stream: false,
        };
        // SAFETY: rows i0..i1 of `lhs` are in place with unit column stride; panel row kk of
        // columns p0..p1 reads `src[taps[kk] + p]` for p < span (checked above); the
        // destination elements written are the output positions of columns p0..p1 and rows
        // i0..i1 of `out`, which no other part writes (parts are disjoint in positions or
        // in channels, and the grid maps distinct positions to distinct elements), and which
        // nothing else accesses while `out`'s `&mut` view lives.
        unsafe { dispatch::<T>((i1 - i0, p1 - p0, k), ops, false) };
    };
    let run_part = |part: usize| {
        let (p0, p1, i0, i1) = if by_positions {
            let per = vectors.div_ceil(parts) * lanes;
            (part * per, ((part + 1) * per).min(span), 0, m)
        } else {
            let per = m.div_ceil(MR).div_ceil(parts) * MR;
            (0, span, part * per, ((part + 1) * per).min(m))
        };
        // Positions a block at a time, so the block's sums stay in L2 across the reduction's
        // `kc` steps instead of streaming the whole output from memory once per step.
        let block = (OUT_BLOCK_BYTES / ((i1 - i0).max(1) * std::mem::size_of::<T>()))
            .next_multiple_of(tile)
            .max(tile);
        let mut q0 = p0;
        while q0 < p1 {
            let q1 = (q0 + block).min(p1);
            one(q0, q1, i0, i1);
            q0 = q1;
        }
    };
    crate::team::for_each(threads, parts, run_part);
}

/// Narrowest tile of positions worth the channels-in-lanes product (its sums then fill
/// fewer than 12 registers, too few to cover the fused multiply-add's latency).
const MIN_BROADCAST_WIDTH: usize = 6;

/// Whether `gathered` takes the channels-in-lanes product ([`super::broadcast`]) for `m`
/// output channels over outputs `shape` on a grid `span` positions long: where its tiles are
/// wide enough and it computes no more lanes than the positions-in-lanes product (all its
/// lanes are outputs but for a last strip of fewer channels; the grid's are not). Both cost
/// about the same per lane: 3×3 64→64 @56 (3.5% of the grid wasted) measured 5% faster
/// with channels in lanes, 256→256 @14 (14%) 7–10%.
fn channels_in_lanes<T>(m: usize, [od, oh, ow]: [usize; 3], span: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let lanes = 64 / std::mem::size_of::<T>();
        let strip = super::broadcast::strip_width::<T>();
        let width = ow.div_ceil(ow.div_ceil(super::broadcast::XR));
        let ours = m.div_ceil(strip) * strip * od * oh * ow;
        let grid = m.div_ceil(MR) * MR * span.div_ceil(lanes) * lanes;
        width >= MIN_BROADCAST_WIDTH && ours <= grid
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, od, oh, ow, span);
        false
    }
}

/// A pointer that parts of one product on several threads write through, each to its own
/// elements.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);

impl<T> Shared<T> {
    /// The pointer (a method, so closures capture the `Send` wrapper, not its field).
    fn get(self) -> *mut T {
        self.0
    }
}
// SAFETY: see `gathered`: the parts write disjoint elements.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

/// [`avx512::run`] for `T`, which must be f32 or f64 on an AVX-512 CPU ([`available`]).
///
/// # Safety
/// As [`avx512::run`].
unsafe fn dispatch<T: Scalar>(
    (m, n, k): (usize, usize, usize),
    ops: Operands<T>,
    accumulate: bool,
) {
    assert!(available::<T>(), "matmul: unsupported");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `available` saw AVX-512 (F, VL, FMA) and `T` is exactly f32 or f64 (the casts
    // reinterpret a type as itself); the operands are valid as the caller promised.
    unsafe {
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            avx512::run::<f32>((m, n, k), ops.cast(), accumulate);
        } else {
            avx512::run::<f64>((m, n, k), ops.cast(), accumulate);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ((m, n, k), ops, accumulate);
}

/// A product's operands: the weights; the right-hand side, whose row `kk` starts at
/// `b + kk·b_rs`, or at `b + taps[kk]` when `taps` is not null; the destination, row `i` at
/// `c + i·c_rs`, its columns placed as `cols` says, its final sums streamed past the caches
/// when `stream` (dense columns only).
#[derive(Clone, Copy)]
struct Operands<T> {
    weights: Weights<T>,
    b: *const T,
    b_rs: isize,
    taps: *const isize,
    c: *mut T,
    c_rs: isize,
    cols: Cols,
    stream: bool,
}

impl<T> Operands<T> {
    fn cast<U>(self) -> Operands<U> {
        Operands {
            weights: self.weights.cast(),
            b: self.b.cast(),
            b_rs: self.b_rs,
            taps: self.taps,
            c: self.c.cast(),
            c_rs: self.c_rs,
            cols: self.cols,
            stream: self.stream,
        }
    }
}

/// Where the product's columns go within a destination row.
#[derive(Clone, Copy, Debug)]
enum Cols {
    /// Column `j` is element `j`.
    Dense,
    /// Column `j` is position `first + j` of a grid (see [`gathered`]); positions outside
    /// the output are computed but not stored.
    Grid(Grid),
}

/// A grid of positions laid over an output block `(D, H, W)`: rows of `pitch` positions,
/// `rows` of them per depth slice; position `(z·rows + y)·pitch + x` is output `(z, y, x)`
/// when `y < height` and `x < width`, else nothing.
#[derive(Clone, Copy, Debug)]
struct Grid {
    first: usize,
    pitch: usize,
    rows: usize,
    width: usize,
    height: usize,
    /// Destination strides (elements) of `y` and `z`; `x` has stride 1.
    row_stride: isize,
    slice_stride: isize,
}

/// Where the weights are: in place (first element, row stride; unit column stride), or
/// packed in strips.
#[derive(Clone, Copy)]
enum Weights<T> {
    InPlace(*const T, isize),
    Packed(*const T),
}

impl<T> Weights<T> {
    fn cast<U>(self) -> Weights<U> {
        match self {
            Weights::InPlace(p, rs) => Weights::InPlace(p.cast(), rs),
            Weights::Packed(p) => Weights::Packed(p.cast()),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};

    use super::super::lanes::{within, Lanes};
    use super::{
        Cols, Operands, Weights, BLOCK_BYTES, FAR_BLOCKS, FAR_STRIDE_BYTES, MR, NV, TAP_BLOCKS,
        WIDE_BLOCKS,
    };

    /// Per vector of a tile, up to two destination pieces: the lanes they hold (a mask) and
    /// the offset, from the tile's row, of the element lane 0 would go to. Dense columns are
    /// one piece per vector; a grid vector that crosses the end of a grid row is two.
    type Pieces = [[(u32, isize); 2]; NV];

    /// The pieces of a tile whose `count` columns start at column `j`.
    #[inline(always)]
    fn pieces(cols: Cols, j: usize, count: usize, lanes: usize) -> Pieces {
        let mut out = [[(0u32, 0isize); 2]; NV];
        for (v, slot) in out.iter_mut().enumerate() {
            let (a0, a1) = (v * lanes, count.min((v + 1) * lanes));
            if a0 >= a1 {
                break;
            }
            match cols {
                Cols::Dense => {
                    slot[0] = (within(0, (a1 - a0) as isize, lanes), (j + a0) as isize);
                }
                Cols::Grid(g) => {
                    // Lane l of this vector is grid position p0 + l.
                    let (p0, p1) = (g.first + j + a0, g.first + j + a1);
                    let mut used = 0;
                    let mut row = p0 / g.pitch;
                    while row * g.pitch < p1 {
                        let (lo, hi) = (p0.max(row * g.pitch), p1.min(row * g.pitch + g.width));
                        let (z, y) = (row / g.rows, row % g.rows);
                        if hi > lo && y < g.height {
                            let mask = within(p0 as isize - lo as isize, (hi - lo) as isize, lanes);
                            let at = z as isize * g.slice_stride
                                + y as isize * g.row_stride
                                + p0 as isize
                                - (row * g.pitch) as isize;
                            slot[used] = (mask, at);
                            used += 1;
                        }
                        row += 1;
                    }
                }
            }
        }
        out
    }

    /// # Safety
    /// As stated where [`super::dispatch`] is called: AVX-512 present; `b` (through `b_rs` or
    /// `taps`), `c` (through `cols`) and the weights valid for k×n, m×n and m×k elements (or
    /// packed in strips); a grid's pitch at least one vector.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn run<T: Lanes + Default>(
        (m, n, k): (usize, usize, usize),
        ops: Operands<T>,
        accumulate: bool,
    ) {
        let Operands {
            weights,
            b,
            b_rs,
            taps,
            c,
            c_rs,
            cols,
            stream,
        } = ops;
        let tabled = !taps.is_null();
        let stream = stream && !tabled;
        let nr = NV * T::N;
        let kc = (BLOCK_BYTES / (nr * std::mem::size_of::<T>())).max(1);
        // Tap-table panels are windows of the same few input rows, shifted: a tile's rows
        // share most of their cache lines, so the whole reduction fits where `kc` gathered
        // rows would, and unblocked it spares the sums' reloads (3×3 64→64 @56, one thread:
        // 1104 µs blocked, 963 µs not; 256→256 @14: 1273, 1050 µs).
        let kc = if tabled { kc * TAP_BLOCKS } else { kc };
        // Panels whose rows lie far apart (a 1×1 layer multiplies its input in place, one
        // channel's whole plane per row) are read a wide block of columns at a time, and
        // the next block's lines are prefetched into L2 a share at a time between the tiles
        // of this one: read as they are, a few lines from each of `kc` distant rows per
        // tile, they came from memory in more streams than the hardware prefetcher follows
        // (1×1 256→64 @56, batch 8: 3.8 ms in place, 2.4 ms with each block copied first;
        // later, with 256 rows per block: copied 5.30 ms, copied and prefetched 5.10 ms,
        // prefetched and read in place 4.85 ms).
        let far = !tabled && b_rs.unsigned_abs() * std::mem::size_of::<T>() > FAR_STRIDE_BYTES;
        // Such a panel takes twice the rows per block: a 1×1 layer of 256 input channels is
        // then one block, its sums written once (and streamed, if asked) instead of
        // written, read back and written again.
        let kc = if far { kc * FAR_BLOCKS } else { kc };
        let strips = m.div_ceil(MR);
        // Per strip: its first weight, each row's offset from it (rows past `m` repeat the
        // last row; their sums are not stored), and the step between reduction elements.
        let strip = |s: usize| -> (*const T, [isize; MR], isize) {
            let rows = MR.min(m - s * MR);
            match weights {
                Weights::InPlace(p, rs) => (
                    p.wrapping_offset((s * MR) as isize * rs),
                    std::array::from_fn(|r| r.min(rows - 1) as isize * rs),
                    1,
                ),
                Weights::Packed(p) => (
                    p.wrapping_add(s * k * MR),
                    std::array::from_fn(|r| r as isize),
                    MR as isize,
                ),
            }
        };
        let wide = if far { WIDE_BLOCKS * nr } else { n };
        let line = 64 / std::mem::size_of::<T>();
        let mut k0 = 0;
        while k0 < k {
            let kl = kc.min(k - k0);
            let add = accumulate || k0 > 0;
            // Only a reduction of one block streams its sums: partial sums are read back by
            // the next block, and streaming the last block's (lines just read) measured
            // slower (1×1 256→64 @56 batch 8 float64: 13.9 → 14–17 ms).
            let streamed = stream && !add && kl == k;
            let mut w0 = 0;
            while w0 < n {
                let wcols = wide.min(n - w0);
                let (src, src_rs) = if tabled {
                    (b.wrapping_add(w0), 0)
                } else {
                    (b.wrapping_offset(k0 as isize * b_rs).wrapping_add(w0), b_rs)
                };
                let tab = taps.wrapping_add(k0);
                // Far-apart rows: the next block's `kl` row pieces (`next` columns each, and
                // one line more, as a piece need not start on a line) are prefetched `lines /
                // calls` lines per tile.
                let next = if far { wide.min(n - w0 - wcols) } else { 0 };
                let per_row = next.div_ceil(line) + 1;
                let lines = kl * per_row;
                let calls = wcols.div_ceil(nr) * strips;
                let mut call = 0;
                let mut j0 = 0;
                while j0 < wcols {
                    let count = nr.min(wcols - j0);
                    // `kl` panel rows of `count` values from `src + j0`; lanes at or past
                    // `count` are masked off.
                    let nv = count.div_ceil(T::N);
                    let masks: [u32; NV] =
                        std::array::from_fn(|v| within((v * T::N) as isize, count as isize, T::N));
                    let put = if tabled {
                        pieces(cols, w0 + j0, count, T::N)
                    } else {
                        [[(0, 0); 2]; NV]
                    };
                    let bp = src.wrapping_add(j0);
                    for s in 0..strips {
                        if next > 0 {
                            let (l0, l1) = (call * lines / calls, (call + 1) * lines / calls);
                            for l in l0..l1 {
                                // Row k0 + kk, column w0 + wcols + … < n: within the panel.
                                let (kk, at) = (l / per_row, (l % per_row * line).min(next - 1));
                                let p = b
                                    .wrapping_offset((k0 + kk) as isize * b_rs)
                                    .wrapping_add(w0 + wcols + at);
                                _mm_prefetch::<_MM_HINT_T1>(p.cast());
                            }
                            call += 1;
                        }
                        let rows = MR.min(m - s * MR);
                        let (a0, offs, step) = strip(s);
                        let a = (a0.wrapping_offset(k0 as isize * step), offs, step);
                        // Dense tiles store at their columns; grid tiles through `put`.
                        let at = c.wrapping_offset((s * MR) as isize * c_rs);
                        let at = if tabled { at } else { at.wrapping_add(w0 + j0) };
                        let bs = (bp, src_rs, tab, masks);
                        // SAFETY: the strip's weights for steps k0 .. k0 + kl are valid (rows
                        // clamped below `m`); the tile's rows s·MR .. + rows < m, and the
                        // destination elements its pieces name (columns w0 + j0 .. + count
                        // ≤ n); panel rows k0 .. k0 + kl < k, columns below w0 + j0 + count
                        // ≤ n (the masks).
                        unsafe {
                            if tabled {
                                widths::<T, true, false>(nv, kl, a, bs, at, c_rs, put, rows, add)
                            } else if streamed {
                                widths::<T, false, true>(nv, kl, a, bs, at, c_rs, put, rows, add)
                            } else {
                                widths::<T, false, false>(nv, kl, a, bs, at, c_rs, put, rows, add)
                            }
                        }
                    }
                    j0 += nr;
                }
                w0 += wcols;
            }
            k0 += kl;
        }
        if stream {
            // Non-temporal stores are weakly ordered: the fence orders them before whatever
            // this thread does next (ending its part of a team's work, after which the
            // caller reads the output).
            std::arch::x86_64::_mm_sfence();
        }
    }

    /// [`tile`] for a tile `nv` vectors wide (the last block of a row may be one or two).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn widths<T: Lanes, const TAB: bool, const NT: bool>(
        nv: usize,
        kl: usize,
        a: (*const T, [isize; MR], isize),
        bs: (*const T, isize, *const isize, [u32; NV]),
        c: *mut T,
        c_rs: isize,
        put: Pieces,
        rows: usize,
        add: bool,
    ) {
        // SAFETY: as for `tile`, which the caller promised.
        unsafe {
            match nv {
                1 => tile::<T, 1, TAB, NT>(kl, a, bs, c, c_rs, put, rows, add),
                2 => tile::<T, 2, TAB, NT>(kl, a, bs, c, c_rs, put, rows, add),
                _ => tile::<T, NV, TAB, NT>(kl, a, bs, c, c_rs, put, rows, add),
            }
        }
    }

    /// One tile of `rows` rows (at most `MR`) and the columns in `masks` (at most `W·N`):
    /// `c[r, j] (+)= Σ_kk a[offs[r] + kk·step] · b[row(kk) + j]`. With `TAB`, panel row `kk`
    /// starts at `b + tab[kk]` and sums go where `put` says; else row `kk` starts at
    /// `b + kk·b_rs`, column `j` is `c[r·c_rs + j]`, and with `NT` every whole vector of sums
    /// that starts on a cache line is written with a non-temporal store.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<T: Lanes, const W: usize, const TAB: bool, const NT: bool>(
        kl: usize,
        (a, offs, step): (*const T, [isize; MR], isize),
        (b, b_rs, tab, masks): (*const T, isize, *const isize, [u32; NV]),
        c: *mut T,
        c_rs: isize,
        put: Pieces,
        rows: usize,
        add: bool,
    ) {
        let n = T::N;
        let full = within(0, n as isize, n);
        // SAFETY (whole body): `a + offs[r] + kk·step` is a weight for r < MR, kk < kl; the
        // lanes in `masks` of panel row kk are panel values for kk < kl (and `tab` holds kl
        // offsets when `TAB`); only the pieces in `put` of rows below `rows` of `c` are read
        // or written.
        unsafe {
            let mut acc = [[T::zero(); W]; MR];
            for kk in 0..kl {
                let bp = if TAB {
                    b.offset(*tab.add(kk))
                } else {
                    b.offset(kk as isize * b_rs)
                };
                let bv: [T::V; W] = std::array::from_fn(|v| {
                    T::load::<true>(T::zero(), masks[v], bp, (v * n) as isize)
                });
                let ap = a.offset(kk as isize * step);
                for (r, row) in acc.iter_mut().enumerate() {
                    let w = T::splat(*ap.offset(offs[r]));
                    for v in 0..W {
                        row[v] = T::fma(w, bv[v], row[v]);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate().take(rows) {
                let cr = c.offset(r as isize * c_rs);
                for (v, &sum) in row.iter().enumerate() {
                    if !TAB {
                        let mask = masks[v];
                        if mask == 0 {
                            break;
                        }
                        let at = cr.add(v * n);
                        let sum = if add {
                            T::add(sum, T::load::<true>(sum, mask, at, 0))
                        } else {
                            sum
                        };
                        // A whole vector on a cache line fills it: written past the caches,
                        // the line is not first read from memory.
                        if NT && mask == full && (at as usize).is_multiple_of(64) {
                            T::stream(at, sum);
                        } else {
                            T::store(at, mask, sum);
                        }
                        continue;
                    }
                    for &(mask, off) in &put[v] {
                        if mask == 0 {
                            break;
                        }
                        let at = cr.wrapping_offset(off);
                        let sum = if add {
                            T::add(sum, T::load::<true>(sum, mask, at, 0))
                        } else {
                            sum
                        };
                        T::store(at, mask, sum);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{s, Array2, Array4};

    use super::*;

    /// `gathered` against its definition, by each micro-kernel and by the one it picks:
    /// random grids (rows past the output's height and columns past its width, vectors
    /// crossing grid rows), tap tables, channel counts below, between and above strips of
    /// either kernel, output rows of any width (tiles of 1 to 14 positions), one and two
    /// threads, a destination wider than the output whose extra elements must stay
    /// untouched. Small integers, so every sum is exact.
    fn check<T: Scalar + From<i8>>(seed: u64) {
        if !available::<T>() {
            return;
        }
        let mut state = seed;
        let mut next = |below: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % below
        };
        let lanes = 64 / std::mem::size_of::<T>();
        for case in 0..60 {
            let m = 1 + next(80);
            let (od, oh, ow) = (1 + next(3), 1 + next(7), 1 + next(45));
            let pitch = ow.max(lanes) + next(4);
            let rows = oh + next(3);
            let k = 1 + next(30);
            let span = (od - 1) * rows * pitch + (oh - 1) * pitch + ow;
            let taps: Vec<usize> = (0..k).map(|_| next(3 * pitch)).collect();
            let len = taps.iter().max().unwrap() + span + next(3);
            let src: Vec<T> = (0..len).map(|i| T::from((i % 7) as i8 - 3)).collect();
            let lhs = Array2::from_shape_fn((m, k), |(i, j)| T::from(((i * 5 + j) % 9) as i8 - 4));
            let want = Array4::from_shape_fn((m, od, oh, ow), |(o, z, y, x)| {
                let p = (z * rows + y) * pitch + x;
                (0..k).fold(T::zero(), |acc, kk| acc + lhs[(o, kk)] * src[taps[kk] + p])
            });
            for (threads, route) in [1, 2]
                .into_iter()
                .flat_map(|t| [Route::Cheaper, Route::Grid, Route::Channels].map(|r| (t, r)))
            {
                let sentinel = T::from(100);
                let mut out = Array4::from_elem((m, od, oh, ow + 3), sentinel);
                gathered_by(
                    out.slice_mut(s![.., .., .., ..ow]),
                    lhs.view(),
                    &src,
                    &taps,
                    Walk::grid((pitch, rows)),
                    threads,
                    route,
                    None,
                );
                assert_eq!(
                    out.slice(s![.., .., .., ..ow]),
                    want,
                    "case {case}: m {m}, out {od}×{oh}×{ow}, grid {rows}×{pitch}, k {k}, \
                     threads {threads}, {route:?}"
                );
                assert!(out
                    .slice(s![.., .., .., ow..])
                    .iter()
                    .all(|&v| v == sentinel));
            }
            // Positions two grid positions apart (a stride-2 layer read from its unsplit
            // input), by the channels product, the only one that walks that way.
            let walk = Walk {
                pitch: 2 * ow + next(4),
                slice: (2 * ow + 4) * (oh + next(3)),
                step: 2,
            };
            let span = (od - 1) * walk.slice + (oh - 1) * walk.pitch + 2 * (ow - 1) + 1;
            let len = taps.iter().max().unwrap() + span + next(3);
            let src2: Vec<T> = (0..len).map(|i| T::from((i % 5) as i8 - 2)).collect();
            let want2 = Array4::from_shape_fn((m, od, oh, ow), |(o, z, y, x)| {
                let p = z * walk.slice + y * walk.pitch + 2 * x;
                (0..k).fold(T::zero(), |acc, kk| acc + lhs[(o, kk)] * src2[taps[kk] + p])
            });
            for threads in [1, 2] {
                let mut out = Array4::from_elem((m, od, oh, ow), T::from(100));
                gathered_strided(
                    out.view_mut(),
                    lhs.view(),
                    &src2,
                    &taps,
                    walk,
                    threads,
                    None,
                );
                assert_eq!(
                    out, want2,
                    "case {case}: step 2, {walk:?}, threads {threads}"
                );
            }
            // Weights packed by one call and used by the next, as for the images of a batch.
            let packed = Packed::new();
            for round in 0..2 {
                let mut out = Array4::from_elem((m, od, oh, ow), T::from(100));
                let (src, route) = (&src, Route::Channels);
                gathered_by(
                    out.view_mut(),
                    lhs.view(),
                    src,
                    &taps,
                    Walk::grid((pitch, rows)),
                    1,
                    route,
                    Some(&packed),
                );
                assert_eq!(out, want, "case {case}: packed weights, round {round}");
            }
        }
    }

    #[test]
    fn gathered_products_match_their_definition() {
        check::<f32>(11);
        check::<f64>(12);
    }

    #[test]
    fn taps_past_the_source_panic() {
        if !available::<f32>() {
            return;
        }
        // One element short: the last position (31) reads index 10 + 31, past 41 elements.
        let caught = std::panic::catch_unwind(|| {
            let lhs = Array2::<f32>::zeros((2, 1));
            let mut out = Array4::<f32>::zeros((2, 1, 2, 16));
            let src = vec![0f32; 10 + 31];
            gathered(out.view_mut(), lhs.view(), &src, &[10], (16, 2), 1, None);
        });
        let message = caught.expect_err("a short source must panic");
        let text = message.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(text.contains("taps read past the source"), "{text}");
    }
}
