//! The AVX-512 depthwise kernel for constant padding: masked loads instead of copies.
//!
//! A depthwise layer's planes are small (often 14 to 56 outputs a row), so any per-row set-up
//! (a padded copy, a phase split, scalar edge columns) costs more than the row's arithmetic.
//! With AVX-512 a load can be masked: lanes whose column falls in the padding are not read
//! and take the pad constant instead, so every output, edges included, is one vector
//! expression straight from the unpadded input rows. A stride-2 read is two masked loads and
//! one two-source permute that keeps the even lanes. Eight output rows are summed together
//! (eight independent accumulators), and each output block is stored with a lane mask, so
//! rows of any width are written exactly.
//!
//! Written with intrinsics because the masks are the point: the compiler does not turn the
//! portable kernels' bounds handling into masked loads.

use std::any::TypeId;
use std::ops::Range;

use crate::Scalar;

/// Consecutive channels' planes and kernels: `x` holds planes of `h × w`, `k` kernels of
/// `kh × kw`, each row-major and one after the other.
pub(crate) struct Masked<'a, T> {
    pub x: &'a [T],
    pub h: usize,
    pub w: usize,
    pub k: &'a [T],
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    /// Padding before the first row and column.
    pub top: usize,
    pub left: usize,
    pub cval: T,
}

/// Whether [`masked`] computes planes of `T` with column stride `sw` on this CPU.
pub(crate) fn supported<T: Scalar>(sw: usize) -> bool {
    super::avx512_float::<T>() && (1..=2).contains(&sw)
}

/// Whether [`masked`] loads each input row once for all the output rows it feeds (3×3 and
/// 5×5 kernels, undilated, stride 1 or 2 both ways), where other kernels load it once per
/// output row; the stride if so. One thread, float32, planes in L2: 3×3 256² stride 1 34.7 →
/// 16.0 µs, stride 2 11.9 → 8.1 µs; 5×5 256² stride 1 71 → 50 µs; depthwise 5×5/2 64 @112
/// (2 threads) 230 → 113 µs. The cost model prices taps by it ([`shared_gain`]).
pub(crate) fn shares(
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Option<usize> {
    let square = kernel == [3, 3] || kernel == [5, 5];
    (square && dilation == [1, 1] && stride[0] == stride[1] && stride[0] <= 2).then_some(stride[0])
}

/// How much cheaper a tap is where [`shares`] holds, for a `kernel`×`kernel` kernel (3 or 5)
/// at `stride` (1 or 2): one thread, planes in L2, float32 3×3 2.2× and 1.47×, float64 2.1×
/// and 1.3×, 4096² float32 from memory 1.5×; 5×5 1.4× and, depthwise, 2×.
pub(crate) fn shared_gain(kernel: usize, stride: usize) -> f64 {
    const GAIN: [[f64; 2]; 2] = [[2.0, 1.4], [1.4, 2.0]];
    GAIN[usize::from(kernel == 5)][stride - 1]
}

/// Output rows `ys` of every channel (`out`: one `ys.len() × ow` plane per channel,
/// row-major): `out[oy, ox] = Σ_{ky,kx} k[ky, kx] · xp[oy·sh + ky·dh, ox·sw + kx·dw]`, where
/// `xp` is the channel's plane padded with `cval` (`top` rows and `left` columns before it, as
/// many after as needed). The number of channels is `k.len() / (kh·kw)`.
///
/// Panics unless [`supported`] holds, or when `out` or `x` is too short.
pub(crate) fn masked<T: Scalar>(p: &Masked<'_, T>, out: &mut [T], ys: Range<usize>, ow: usize) {
    assert!(supported::<T>(p.sw), "masked kernel not available");
    let taps = p.kh * p.kw;
    assert!(
        taps > 0 && p.k.len().is_multiple_of(taps),
        "kernels of kh × kw"
    );
    let nc = p.k.len() / taps;
    assert!(p.x.len() >= nc * p.h * p.w, "planes too short");
    assert!(out.len() >= nc * ys.len() * ow, "output too short");
    if nc == 0 || ys.is_empty() || ow == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let ty = TypeId::of::<T>();
        let len = out.len();
        // SAFETY (both arms): `T` is exactly the type it is reinterpreted as (same size and
        // alignment, plain data), and `supported` saw AVX-512 F (with VL and FMA) detected;
        // the lengths were checked above.
        if ty == TypeId::of::<f32>() {
            let p = unsafe { cast::<T, f32>(p) };
            let out = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), len) };
            unsafe { avx512::planes::<f32>(&p, nc, out, ys, ow) }
        } else {
            let p = unsafe { cast::<T, f64>(p) };
            let out = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), len) };
            unsafe { avx512::planes::<f64>(&p, nc, out, ys, ow) }
        }
    }
}

/// The same description with the element type `U`.
///
/// # Safety
/// `T` and `U` must be the same type.
#[cfg(target_arch = "x86_64")]
unsafe fn cast<'a, T: Copy, U: Copy>(p: &Masked<'a, T>) -> Masked<'a, U> {
    let sl = |s: &'a [T]| -> &'a [U] {
        // SAFETY: the caller's promise: `U` is `T`.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
    };
    Masked {
        x: sl(p.x),
        h: p.h,
        w: p.w,
        k: sl(p.k),
        kh: p.kh,
        kw: p.kw,
        sh: p.sh,
        sw: p.sw,
        dh: p.dh,
        dw: p.dw,
        top: p.top,
        left: p.left,
        // SAFETY: as above.
        cval: unsafe { std::mem::transmute_copy(&p.cval) },
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::ops::Range;

    use super::super::lanes::{within as lanes, Lanes};
    use super::Masked;

    /// Output rows summed together: eight independent accumulators cover the latency of
    /// the fused multiply-adds (four rows ran at half the speed on 28² planes).
    const R: usize = 8;

    /// Row offset of a row of the pad constant in the rows table.
    const CONSTANT: usize = usize::MAX;

    /// Input rows of a group of `R` output rows in [`shared_rows`]: `(R − 1)·2 + 5` at stride 2.
    const MAX_ROWS: usize = (R - 1) * 2 + 5;

    /// Runs `$body` once for each listed value, with `$i` a constant of that value (so the
    /// accumulator indices it computes are constants and the accumulators stay in registers).
    macro_rules! each {
        ($i:ident in [$($v:literal),*] $body:block) => {
            $( { const $i: usize = $v; $body } )*
        };
    }

    /// One block of `N` outputs in each of `R` output rows, for a `K`×`K` kernel (3 or 5)
    /// with stride `S` (1 or 2) both ways and no dilation: `src[i]` is the group's input row
    /// `i` (row `i` of output row `r` and kernel row `ky` is `r·S + ky`), `cols` the kernel
    /// columns' first column and masks, `wt` the `W = K·K` weights, row-major. Each input row is loaded
    /// once (at stride 2: two loads and the permutes giving two columns' lanes at a time)
    /// and feeds every output row that reads it, where the general loop loads it once per
    /// output row; rows `0..stored` are written, each to `o + r·ow` under `keep`.
    ///
    /// # Safety
    /// As for [`planes`]: the masks keep the reads inside the rows `src[i]`; output rows
    /// `0..stored` have the lanes in `keep` writable at `o + r·ow`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn shared_rows<
        T: Lanes,
        const Z: bool,
        const S: usize,
        const K: usize,
        const W: usize,
    >(
        src: &[*const T; MAX_ROWS],
        cols: &[(isize, u32, u32)],
        wt: &[T::V; W],
        cv: T::V,
        o: *mut T,
        w: isize,
        ow: usize,
        keep: u32,
        stored: usize,
    ) {
        let n = T::N as isize;
        // The kernel columns' starts and masks as locals (read from `cols` in the unrolled
        // body, they were reloaded and spilled registers).
        let mut cl = [(0, 0, 0); K];
        cl.copy_from_slice(&cols[..K]);
        let mut acc = [unsafe { T::zero() }; R];
        let m2 = if S == 2 && K == 3 {
            lanes(cl[0].0 + 2 * n, w, T::N) & 1
        } else {
            0
        };
        each!(I in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18] {
            if I < (R - 1) * S + K {
                let s = src[I];
                let mut v = [unsafe { T::zero() }; K];
                // SAFETY (loads): the caller's masks.
                if S == 1 {
                    for (v, &(c, m, _)) in v.iter_mut().zip(&cl) {
                        *v = unsafe { T::load::<Z>(cv, m, s, c) };
                    }
                } else {
                    // Columns 2j and 2j + 1: the even and odd lanes of one pair of loads. A
                    // macro, not a closure: closures around the intrinsics were not inlined
                    // (the 3×3 stride-2 kernel ran 18× slower).
                    macro_rules! pair {
                        ($col:expr) => {{
                            let (c, m0, m1) = $col;
                            // SAFETY: the caller's masks.
                            unsafe {
                                let lo = T::load::<Z>(cv, m0, s, c);
                                let hi = T::load::<Z>(cv, m1, s, c + n);
                                (T::evens(lo, hi), T::odds(lo, hi))
                            }
                        }};
                    }
                    (v[0], v[1]) = pair!(cl[0]);
                    if K == 3 {
                        // Column 2: the even lanes moved on by one, with lane 0 of the next
                        // vector (one masked element instead of two loads).
                        let next = unsafe { T::load::<Z>(cv, m2, s, cl[0].0 + 2 * n) };
                        v[K - 1] = unsafe { T::next(v[0], next) };
                    } else {
                        (v[2], v[3]) = pair!(cl[2]);
                        v[K - 1] = pair!(cl[K - 1]).0;
                    }
                }
                for ky in 0..K {
                    // Output row `r` reads input row `r·S + ky`.
                    let row = I.checked_sub(ky).filter(|d| d.is_multiple_of(S) && d / S < R);
                    if let Some(d) = row {
                        let r = d / S;
                        for (kx, v) in v.iter().enumerate() {
                            acc[r] = unsafe { T::fma(wt[ky * K + kx], *v, acc[r]) };
                        }
                        // The row's last input row: written now, so few sums are live at once.
                        if ky == K - 1 && r < stored {
                            // SAFETY: the caller's promise on `o`, `keep` and `stored`.
                            unsafe { T::store(o.add(r * ow), keep, acc[r]) };
                        }
                    }
                }
            }
        });
    }

    /// # Safety
    /// The CPU must support AVX-512 F (and VL, FMA); `p.sw` is 1 or 2; `p.x` holds `nc`
    /// planes of `h·w` elements, `p.k` `nc` kernels of `kh·kw`, `out` `nc` planes of
    /// `ys.len()·ow` (checked by the caller).
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn planes<T: Lanes + PartialEq + Default>(
        p: &Masked<'_, T>,
        nc: usize,
        out: &mut [T],
        ys: Range<usize>,
        ow: usize,
    ) {
        let n = T::N;
        let (w, h) = (p.w as isize, p.h as isize);
        let blocks = ow.div_ceil(n);
        let oh = ys.len();
        let groups = oh.div_ceil(R);
        // Per output block and kernel column: the first column read and the lanes of the
        // block's one or two loads inside the row.
        let mut cols = Vec::with_capacity(blocks * p.kw);
        for b in 0..blocks {
            for kx in 0..p.kw {
                let c0 = (b * n * p.sw + kx * p.dw) as isize - p.left as isize;
                let m1 = if p.sw == 2 {
                    lanes(c0 + n as isize, w, n)
                } else {
                    0
                };
                cols.push((c0, lanes(c0, w, n), m1));
            }
        }
        // Each input row loaded once per block for every output row it feeds (`shared_rows`,
        // which finds a group's rows itself), or the general loop over this table.
        let shared = super::shares([p.kh, p.kw], [p.sh, p.sw], [p.dh, p.dw]);
        // Per group of output rows and kernel row (none for `shared_rows`): each row's offset
        // in the plane, or CONSTANT for a row of the pad constant (and for rows past the last,
        // whose sums are dropped).
        let table = if shared.is_some() { 0 } else { groups };
        let mut rows = Vec::with_capacity(table * p.kh * R);
        for g in 0..table {
            for ky in 0..p.kh {
                for r in 0..R {
                    let oy = g * R + r;
                    let iy = ((ys.start + oy) * p.sh + ky * p.dh) as isize - p.top as isize;
                    let inside = oy < oh && (0..h).contains(&iy);
                    rows.push(if inside { iy as usize * p.w } else { CONSTANT });
                }
            }
        }
        // Rows of the constant are read from this row, with the same masks as input rows.
        let constant = vec![p.cval; p.w];
        if p.cval == T::default() {
            unsafe { run::<T, true>(p, nc, out, ys, ow, &cols, (shared, &rows), &constant) }
        } else {
            unsafe { run::<T, false>(p, nc, out, ys, ow, &cols, (shared, &rows), &constant) }
        }
    }

    /// The sums of [`planes`], with the tables it made; `Z`: the pad constant is zero;
    /// `shared`: the stride where [`super::shares`] holds (`rows` is then empty).
    ///
    /// # Safety
    /// As for [`planes`]; `cols`, `shared` and `rows` as it makes them.
    #[inline(always)]
    unsafe fn run<T: Lanes, const Z: bool>(
        p: &Masked<'_, T>,
        nc: usize,
        out: &mut [T],
        ys: Range<usize>,
        ow: usize,
        cols: &[(isize, u32, u32)],
        (shared, rows): (Option<usize>, &[usize]),
        constant: &[T],
    ) {
        let n = T::N;
        let cv = unsafe { T::splat(p.cval) };
        let blocks = ow.div_ceil(n);
        let oh = ys.len();
        let groups = oh.div_ceil(R);
        let three = p.sw == 2 && p.dw == 1 && p.kw == 3;
        let (plane_in, plane_out, taps) = (p.h * p.w, oh * ow, p.kh * p.kw);
        for c in 0..nc {
            let x = &p.x[c * plane_in..][..plane_in];
            let o = unsafe { out.as_mut_ptr().add(c * plane_out) };
            let k = &p.k[c * taps..][..taps];
            for g in 0..groups {
                // Ask for the input rows the next group adds (past the plane's end: the next
                // channel's first rows). Large planes come from memory, and the hardware
                // prefetcher does not follow the group's many short row streams in time.
                // Into L2: requests into L1 stalled on its few miss buffers. One-channel
                // 4096² float32 stride 2, best of 3 interleaved rounds: 1 thread 11.0 → 6.0
                // ms, 2 threads 5.4 → 3.9 ms (float64 9.9 → 6.9 ms, 8192² float32 22.9 →
                // 16.0 ms); stride 1 and depthwise layers (planes within the caches) alike.
                let next =
                    ((ys.start + g * R + R) * p.sh + (p.kh - 1) * p.dh).saturating_sub(p.top);
                let from = (c * plane_in + next * p.w).min(p.x.len());
                let to = (from + R * p.sh * p.w).min(p.x.len());
                // A share with each output block, so few requests are in flight at once.
                let share = (to - from).div_ceil(blocks);
                if let Some(sh) = shared {
                    // The group's input rows, from the first output row's first kernel row.
                    let first = ((ys.start + g * R) * p.sh) as isize - p.top as isize;
                    let mut src = [constant.as_ptr(); MAX_ROWS];
                    for (i, s) in src.iter_mut().enumerate().take((R - 1) * sh + p.kh) {
                        let iy = first + i as isize;
                        if (0..p.h as isize).contains(&iy) {
                            // SAFETY: `iy` is a row of the plane.
                            *s = unsafe { x.as_ptr().add(iy as usize * p.w) };
                        }
                    }
                    let (stored, w) = ((oh - g * R).min(R), p.w as isize);
                    // Every block of the group with the kernel's own weights, `S` and `K`.
                    macro_rules! blocks {
                        ($s:literal, $k:literal) => {{
                            let wt: [T::V; $k * $k] =
                                std::array::from_fn(|t| unsafe { T::splat(k[t]) });
                            for b in 0..blocks {
                                let at = (from + b * share).min(to);
                                super::super::prefetch_l2(&p.x[at..(at + share).min(to)]);
                                let cols = &cols[b * p.kw..][..p.kw];
                                let j0 = b * n;
                                let keep = lanes(j0 as isize, ow as isize, n);
                                // SAFETY: as for the general case below: masks keep the
                                // reads in the rows, `keep` and `stored` the writes in the
                                // output rows.
                                unsafe {
                                    let o = o.add(g * R * ow + j0);
                                    shared_rows::<T, Z, $s, $k, { $k * $k }>(
                                        &src, cols, &wt, cv, o, w, ow, keep, stored,
                                    )
                                }
                            }
                        }};
                    }
                    match (sh, p.kh) {
                        (1, 3) => blocks!(1, 3),
                        (2, 3) => blocks!(2, 3),
                        (1, _) => blocks!(1, 5),
                        _ => blocks!(2, 5),
                    }
                    continue;
                }
                let rows = &rows[g * p.kh * R..][..p.kh * R];
                for b in 0..blocks {
                    let at = (from + b * share).min(to);
                    super::super::prefetch_l2(&p.x[at..(at + share).min(to)]);
                    let cols = &cols[b * p.kw..][..p.kw];
                    let mut acc = [unsafe { T::zero() }; R];
                    for ky in 0..p.kh {
                        let mut src = [constant.as_ptr(); R];
                        for (s, &at) in src.iter_mut().zip(&rows[ky * R..][..R]) {
                            if at != CONSTANT {
                                // SAFETY: `at` is the start of a row of the plane (`planes`
                                // made it from a row index below `h`).
                                *s = unsafe { x.as_ptr().add(at) };
                            }
                        }
                        if three {
                            // Stride 2, three adjacent taps: one row's loads serve all three
                            // (even lanes, odd lanes, even lanes one column on).
                            let (c0, m0, m1) = cols[0];
                            let m2 = lanes(c0 + 2 * n as isize, p.w as isize, n) & 1;
                            let wt: [T::V; 3] =
                                std::array::from_fn(|kx| unsafe { T::splat(k[ky * 3 + kx]) });
                            for r in 0..R {
                                // SAFETY: as below.
                                unsafe {
                                    let lo = T::load::<Z>(cv, m0, src[r], c0);
                                    let hi = T::load::<Z>(cv, m1, src[r], c0 + n as isize);
                                    let next = T::load::<Z>(cv, m2, src[r], c0 + 2 * n as isize);
                                    let even = T::evens(lo, hi);
                                    acc[r] = T::fma(wt[0], even, acc[r]);
                                    acc[r] = T::fma(wt[1], T::odds(lo, hi), acc[r]);
                                    acc[r] = T::fma(wt[2], T::next(even, next), acc[r]);
                                }
                            }
                            continue;
                        }
                        for (kx, &(c0, m0, m1)) in cols.iter().enumerate() {
                            let wt = unsafe { T::splat(k[ky * p.kw + kx]) };
                            for r in 0..R {
                                // SAFETY: the masks keep every read inside the row `src[r]`
                                // (`w` elements: an input row or the constant row).
                                let v = unsafe {
                                    let lo = T::load::<Z>(cv, m0, src[r], c0);
                                    if p.sw == 1 {
                                        lo
                                    } else {
                                        let hi = T::load::<Z>(cv, m1, src[r], c0 + n as isize);
                                        T::evens(lo, hi)
                                    }
                                };
                                acc[r] = unsafe { T::fma(wt, v, acc[r]) };
                            }
                        }
                    }
                    let j0 = b * n;
                    let keep = lanes(j0 as isize, ow as isize, n);
                    for (r, a) in acc.iter().enumerate().take(oh - (g * R).min(oh)) {
                        // SAFETY: `keep` holds the lanes of output row `g·R + r` below `ow`.
                        unsafe { T::store(o.add((g * R + r) * ow + j0), keep, *a) };
                    }
                }
            }
        }
    }
}
