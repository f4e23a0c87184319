//! The depthwise row kernel: one channel's output rows straight from its input rows, no
//! phase-split copy.
//!
//! A depthwise layer has one small plane per channel, so the per-plane set-up of the general
//! row path (a padded copy, a phase split, a tap list) costs more than the plane's
//! arithmetic. Here each tap reads `B` outputs' inputs directly from the input row, `S`
//! apart (a stride-2 read is two vector loads and one permute, which the compiler emits for
//! the fixed-size gather below), and two output rows are computed together (two independent
//! accumulators; four were no faster on 28² planes and slower on 112² ones, where fewer rows
//! per group also make the prefetch of the group after next arrive in time).

use super::{isa, mac, Isa};
use crate::Scalar;

/// Output rows computed together.
const R: usize = 2;

/// Where a plane's padded rows are: row `r` is `main[offs[r] + shift..]`, or, when `offs[r]`
/// has [`Rows::EXTRA`] set, `extra[offs[r] − EXTRA..]` (a row of the constant, or a row
/// copied because too little of `main` follows it). One offset table serves every channel
/// of a block; `shift` selects the channel's plane.
pub(crate) struct Rows<'a, T> {
    pub main: &'a [T],
    pub extra: &'a [T],
    pub offs: &'a [usize],
    pub shift: usize,
}

impl<'a, T> Rows<'a, T> {
    /// Tag of offsets into `extra`.
    pub const EXTRA: usize = 1 << (usize::BITS - 1);

    /// Number of padded rows.
    pub fn len(&self) -> usize {
        self.offs.len()
    }

    /// Padded row `r`, to the end of the memory it lies in.
    #[inline(always)]
    pub fn get(&self, r: usize) -> &'a [T] {
        let o = self.offs[r];
        if o & Self::EXTRA != 0 {
            &self.extra[o & !Self::EXTRA..]
        } else {
            &self.main[o + self.shift..]
        }
    }
}

/// One plane's interior: the outputs whose windows lie inside the input columns.
pub(crate) struct Interior<'a, T> {
    /// The padded rows, each at least [`Interior::row_need`] elements long.
    pub rows: Rows<'a, T>,
    /// The kernel, `kh × kw`, row-major.
    pub k: &'a [T],
    pub kh: usize,
    pub kw: usize,
    /// Padded rows between output rows, and between kernel rows.
    pub sh: usize,
    pub dh: usize,
    /// Input columns between outputs, and between kernel columns.
    pub sw: usize,
    pub dw: usize,
    /// Input column of the first interior output's first tap.
    pub first: usize,
    /// Number of interior outputs per row.
    pub cols: usize,
}

/// Outputs computed per accumulator: 64 bytes of `T`.
fn block<T>() -> usize {
    (64 / std::mem::size_of::<T>()).clamp(1, 16)
}

impl<T> Interior<'_, T> {
    /// Elements every row slice must hold: the last block reads up to `B - 1` outputs past
    /// the interior's end (those lanes are dropped), and a block reads `sw·B` elements.
    pub fn row_need(sw: usize, dw: usize, kw: usize, first: usize, cols: usize) -> usize {
        let b = block::<T>();
        first + sw * cols.next_multiple_of(b) + (kw - 1) * dw
    }
}

/// `out[oy·pitch + j] = Σ_{ky,kx} k[ky, kx] · row(oy·sh + ky·dh)[first + j·sw + kx·dw]` for
/// `oy < oh`, `j < cols`. Rows are written in order and may spill past `cols` into `out`:
/// whatever lies after an output row's interior must be written after this call.
pub(crate) fn interior<T: Scalar>(p: &Interior<'_, T>, out: &mut [T], pitch: usize, oh: usize) {
    if oh == 0 || p.cols == 0 {
        return;
    }
    assert_eq!(p.k.len(), p.kh * p.kw);
    assert!(out.len() >= (oh - 1) * pitch + p.cols);
    macro_rules! go {
        ($b:literal, $s:literal) => {
            match isa() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa()` returns Avx512 only when avx512f, avx512vl and fma were
                // detected on this CPU.
                Isa::Avx512 => unsafe { wide::avx512::<T, $b, $s>(p, out, pitch, oh) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa()` returns Avx2 only when avx2 and fma were detected.
                Isa::Avx2 => unsafe { wide::avx2::<T, $b, $s>(p, out, pitch, oh) },
                _ => body::<T, $b, $s, false>(p, out, pitch, oh),
            }
        };
    }
    match (block::<T>(), p.sw) {
        (16, 1) => go!(16, 1),
        (16, 2) => go!(16, 2),
        (16, _) => go!(16, 0),
        (8, 1) => go!(8, 1),
        (8, 2) => go!(8, 2),
        (8, _) => go!(8, 0),
        (_, 1) => go!(4, 1),
        (_, 2) => go!(4, 2),
        _ => go!(4, 0),
    }
}

/// `S` is the column stride when it is 1 or 2, else 0 (read `p.sw` at run time).
#[inline(always)]
fn body<T: Scalar, const B: usize, const S: usize, const FMA: bool>(
    p: &Interior<'_, T>,
    out: &mut [T],
    pitch: usize,
    oh: usize,
) {
    let sw = if S == 0 { p.sw } else { S };
    let need = Interior::<T>::row_need(p.sw, p.dw, p.kw, p.first, p.cols);
    let mut oy = 0;
    while oy < oh {
        // Rows past the end repeat the last one; their sums are not stored.
        let mut ys = [0; R];
        for (r, y) in ys.iter_mut().enumerate() {
            *y = (oy + r).min(oh - 1);
        }
        // Ask for the rows of the group after next: large planes come from memory, and the
        // hardware prefetcher does not follow several short rows at once.
        let ahead = (oy + 2 * R) * p.sh;
        for i in ahead..(ahead + R * p.sh).min(p.rows.len()) {
            let row = p.rows.get(i);
            prefetch(&row[..need.min(row.len())]);
        }
        let mut j0 = 0;
        while j0 < p.cols {
            let mut acc = [[T::zero(); B]; R];
            for ky in 0..p.kh {
                let at_row = |r: usize| {
                    let row = p.rows.get(ys[r] * p.sh + ky * p.dh);
                    // What makes the unchecked reads of `load` sound.
                    assert!(row.len() >= need, "row too short");
                    row
                };
                let mut src: [&[T]; R] = [&[]; R];
                for (r, s) in src.iter_mut().enumerate() {
                    *s = at_row(r);
                }
                for kx in 0..p.kw {
                    let w = p.k[ky * p.kw + kx];
                    let at = p.first + j0 * sw + kx * p.dw;
                    for (a, row) in acc.iter_mut().zip(&src) {
                        let xv = load::<T, B, S>(row, at, sw);
                        for j in 0..B {
                            a[j] = mac::<T, FMA>(a[j], w, xv[j]);
                        }
                    }
                }
            }
            let m = B.min(p.cols - j0);
            for (r, a) in acc.iter().enumerate().take(oh - oy) {
                let dst = &mut out[(oy + r) * pitch + j0..];
                // Whole vectors where the lanes past the row's interior land on outputs
                // written later: the edges around it (the caller's), or, when the row is one
                // block, the next row (this group's later rows, or the next group's).
                if dst.len() >= B && (j0 == 0 || B - m <= pitch - p.cols) {
                    dst[..B].copy_from_slice(a);
                } else {
                    dst[..m].copy_from_slice(&a[..m]);
                }
            }
            j0 += B;
        }
        oy += R;
    }
}

/// `B` elements of `row` from `at`, `sw` apart (`S` is `sw` when not 0).
///
/// Unchecked: `body` asserted that the row holds [`Interior::row_need`] elements, which
/// covers `at + sw·B` for every block and tap of the interior.
#[inline(always)]
fn load<T: Scalar, const B: usize, const S: usize>(row: &[T], at: usize, sw: usize) -> [T; B] {
    let mut v = [T::zero(); B];
    debug_assert!(at + sw * B <= row.len());
    if S == 0 {
        for (j, y) in v.iter_mut().enumerate() {
            // SAFETY: within the row, see above.
            *y = unsafe { *row.get_unchecked(at + j * sw) };
        }
    } else {
        // A window of known length, so the strided reads become shuffles.
        // SAFETY: within the row, see above.
        let src = unsafe { row.get_unchecked(at..at + S * B) };
        for (j, y) in v.iter_mut().enumerate() {
            *y = src[j * S];
        }
    }
    v
}

#[cfg(target_arch = "x86_64")]
mod wide {
    use super::{body, Interior};
    use crate::Scalar;

    /// # Safety
    /// The CPU must support AVX-512 F and VL, and FMA.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn avx512<T: Scalar, const B: usize, const S: usize>(
        p: &Interior<'_, T>,
        out: &mut [T],
        pitch: usize,
        oh: usize,
    ) {
        body::<T, B, S, true>(p, out, pitch, oh)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2<T: Scalar, const B: usize, const S: usize>(
        p: &Interior<'_, T>,
        out: &mut [T],
        pitch: usize,
        oh: usize,
    ) {
        body::<T, B, S, true>(p, out, pitch, oh)
    }
}

/// Hint that `data` will be read soon (every cache line of it), into L1.
#[inline(always)]
pub(super) fn prefetch<T>(data: &[T]) {
    prefetch_to::<T, false>(data);
}

/// Hint that `data` will be read soon, into L2 only: requests for lines from memory that
/// leave L1's few miss buffers free, so more of them are in flight at once.
#[inline(always)]
pub(crate) fn prefetch_l2<T>(data: &[T]) {
    prefetch_to::<T, true>(data);
}

#[inline(always)]
fn prefetch_to<T, const L2: bool>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};
        let (start, bytes) = (data.as_ptr() as usize, std::mem::size_of_val(data));
        for line in (start..start + bytes).step_by(64) {
            // SAFETY: a prefetch never faults and has no effect on the program's state; the
            // addresses are within `data` anyway.
            unsafe {
                if L2 {
                    _mm_prefetch::<_MM_HINT_T1>(line as *const i8)
                } else {
                    _mm_prefetch::<_MM_HINT_T0>(line as *const i8)
                }
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}
