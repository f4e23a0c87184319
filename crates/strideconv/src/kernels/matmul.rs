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
//!   lie far apart (a 1×1 layer's input, multiplied in place) is copied a wide block at a
//!   time, which keeps its reads sequential.
//!
//! Measured against the `gemm` crate, 2 threads, one image (Rust loop): 3×3 64→64 @56 float32
//! 669 → 594 µs, float64 1184 → 1107 µs; 1×1 256→64 @56 float32 243 → 223 µs; the 7×7 stem
//! 625 → 575 µs; 1×1 64→256 @56 batch 8 float64 6.34 → 6.11 ms. 3×3 256→256 @14 and 1×1
//! layers of one image stay about even (within 5%, either way).
//!
//! Other element types, other strides and other CPUs keep the `gemm` crate.

use std::any::TypeId;

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::Scalar;

/// Rows of the weight strips and of the micro-kernel's tile.
const MR: usize = 8;
/// Vectors of positions in the micro-kernel's tile.
const NV: usize = 3;
/// Bytes of the panel one tile reads (`kc` rows of `NV` vectors): half of L1, the weights and
/// the output tile take the rest (24 to 48 KiB measured the same; unblocked was 2% slower).
const BLOCK_BYTES: usize = 24 << 10;

/// Panel row strides (bytes) above which the panel is copied a wide block at a time.
const PACK_STRIDE_BYTES: usize = 8 << 10;
/// Tiles (of `NV` vectors) per copied wide block.
const WIDE_BLOCKS: usize = 10;

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
/// chain and that [`applies`] holds.
pub(super) fn matmul<T: Scalar>(
    mut dst: ArrayViewMut2<'_, T>,
    lhs: ArrayView2<'_, T>,
    rhs: ArrayView2<'_, T>,
    accumulate: bool,
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
    #[cfg(target_arch = "x86_64")]
    {
        let (b, c) = (rhs.as_ptr(), dst.as_mut_ptr());
        // SAFETY: `applies` saw AVX-512 (F, VL, FMA) and `T` is exactly f32 or f64 (the casts
        // reinterpret a type as itself). `b` is element [0, 0] of a k×n view with unit column
        // stride and row stride `rhs_rs`, so `b + kk·rhs_rs + j` is valid for kk < k, j < n;
        // likewise `c` for the m×n destination, which nothing else accesses while its `&mut`
        // view lives, and the weights: in place `lhs + i·lhs_rs + kk` for i < m, kk < k, or
        // `packed`, which holds `⌈m/MR⌉·k·MR` elements and lives to the end of this block.
        unsafe {
            if TypeId::of::<T>() == TypeId::of::<f32>() {
                avx512::run::<f32>(
                    (m, n, k),
                    a.cast(),
                    (b.cast(), rhs_rs),
                    (c.cast(), dst_rs),
                    accumulate,
                );
            } else {
                avx512::run::<f64>(
                    (m, n, k),
                    a.cast(),
                    (b.cast(), rhs_rs),
                    (c.cast(), dst_rs),
                    accumulate,
                );
            }
        }
    }
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
    use super::super::lanes::{within, Lanes};
    use super::{Weights, BLOCK_BYTES, MR, NV, PACK_STRIDE_BYTES, WIDE_BLOCKS};

    /// # Safety
    /// As stated where [`super::matmul`] calls it: AVX-512 present; `b`, `c` and the weights
    /// valid for k×n, m×n and m×k elements at their strides (or packed in strips).
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn run<T: Lanes + Default>(
        (m, n, k): (usize, usize, usize),
        weights: Weights<T>,
        (b, b_rs): (*const T, isize),
        (c, c_rs): (*mut T, isize),
        accumulate: bool,
    ) {
        let nr = NV * T::N;
        let kc = (BLOCK_BYTES / (nr * std::mem::size_of::<T>())).max(1);
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
        // Panels whose rows lie far apart (a 1×1 layer multiplies its input in place, one
        // channel's whole plane per row) are copied a wide block at a time: long sequential
        // row reads, which the hardware prefetcher follows, instead of a few lines from each
        // of `kc` distant rows per tile (1×1 256→64 @56, batch 8: 3.8 ms in place, 2.4 ms
        // copied). Gathered im2col panels are read where they are.
        let pack = b_rs.unsigned_abs() * std::mem::size_of::<T>() > PACK_STRIDE_BYTES;
        let wide = if pack { WIDE_BLOCKS * nr } else { n };
        let mut copy = if pack {
            vec![T::default(); kc * wide]
        } else {
            Vec::new()
        };
        let mut k0 = 0;
        while k0 < k {
            let kl = kc.min(k - k0);
            let add = accumulate || k0 > 0;
            let mut w0 = 0;
            while w0 < n {
                let wcols = wide.min(n - w0);
                let (src, src_rs) = if pack {
                    for kk in 0..kl {
                        // SAFETY: panel row k0 + kk < k, columns w0 .. w0 + wcols ≤ n; the
                        // copy holds kc·wide elements.
                        unsafe {
                            let row = b.offset((k0 + kk) as isize * b_rs).add(w0);
                            std::ptr::copy_nonoverlapping(
                                row,
                                copy.as_mut_ptr().add(kk * wcols),
                                wcols,
                            );
                        }
                    }
                    (copy.as_ptr(), wcols as isize)
                } else {
                    (b.wrapping_offset(k0 as isize * b_rs).wrapping_add(w0), b_rs)
                };
                let mut j0 = 0;
                while j0 < wcols {
                    let cols = nr.min(wcols - j0);
                    // `kl` panel rows of `cols` values from `src + j0`; lanes at or past `cols`
                    // are masked off.
                    let nv = cols.div_ceil(T::N);
                    let masks: [u32; NV] =
                        std::array::from_fn(|v| within((v * T::N) as isize, cols as isize, T::N));
                    let bp = src.wrapping_add(j0);
                    for s in 0..strips {
                        let rows = MR.min(m - s * MR);
                        let (a0, offs, step) = strip(s);
                        let a = (a0.wrapping_offset(k0 as isize * step), offs, step);
                        let at = c
                            .wrapping_offset((s * MR) as isize * c_rs)
                            .wrapping_add(w0 + j0);
                        let bs = (bp, src_rs, masks);
                        // SAFETY: the strip's weights for steps k0 .. k0 + kl are valid (rows
                        // clamped below `m`); the tile's rows s·MR .. + rows < m and columns
                        // w0 + j0 .. + cols ≤ n of `c`; panel rows k0 .. k0 + kl < k (or the
                        // copy's kl rows), columns below w0 + j0 + cols ≤ n (the masks).
                        unsafe {
                            match nv {
                                1 => tile::<T, 1>(kl, a, bs, at, c_rs, rows, add),
                                2 => tile::<T, 2>(kl, a, bs, at, c_rs, rows, add),
                                _ => tile::<T, NV>(kl, a, bs, at, c_rs, rows, add),
                            }
                        }
                    }
                    j0 += nr;
                }
                w0 += wcols;
            }
            k0 += kl;
        }
    }

    /// One tile of `rows` rows (at most `MR`) and the columns in `masks` (at most `W·N`):
    /// `c[r, j] (+)= Σ_kk a[offs[r] + kk·step] · b[kk·b_rs + j]`.
    #[inline(always)]
    unsafe fn tile<T: Lanes, const W: usize>(
        kl: usize,
        (a, offs, step): (*const T, [isize; MR], isize),
        (b, b_rs, masks): (*const T, isize, [u32; NV]),
        c: *mut T,
        c_rs: isize,
        rows: usize,
        add: bool,
    ) {
        let n = T::N;
        // SAFETY (whole body): `a + offs[r] + kk·step` is a weight for r < MR, kk < kl; the
        // lanes in `masks` of `b + kk·b_rs` are panel values for kk < kl; only those lanes
        // (the tile's columns) of rows below `rows` of `c` are read or written.
        unsafe {
            let mut acc = [[T::zero(); W]; MR];
            for kk in 0..kl {
                let bp = b.offset(kk as isize * b_rs);
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
                    T::store(at, mask, sum);
                }
            }
        }
    }
}
