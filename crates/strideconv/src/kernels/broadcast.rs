//! The channels-in-lanes product behind `im2col`'s implicit product on narrow grids.
//!
//! [`super::matmul`]'s micro-kernel puts output positions in vector lanes, so it computes every
//! position of a grid whose rows are input rows: `ow + kw − 1` wide at stride 1. On narrow
//! outputs those extra columns are a large share (a 14-wide output on a 16-wide grid: 14% more
//! work, plus a last tile of two vectors instead of three). This product turns the tile
//! around: output channels in the lanes (two vectors, 32 channels of `f32` or 16 of `f64`),
//! up to [`XR`] consecutive positions of one output row broadcast from the input, so only real
//! outputs are computed. Per reduction step: two weight loads, one broadcast per position and
//! two fused multiply-adds per position, into 28 registers of sums.
//!
//! The price is a transposed copy of the weights (a strip of 32 channels at a time, every
//! reduction step's 32 weights contiguous), made with in-register transposes, and a
//! transpose of each tile's sums before they are stored a channel row at a time.
//!
//! [`super::matmul::gathered`] takes this product where its tiles are at least six positions
//! wide and it computes no more lanes than the grid would. Measured against the
//! positions-in-lanes product (Rust loop, float32 unless said; 2 threads: mean of 3–4
//! interleaved rounds; 1 thread: best call of one run each):
//!
//! | layer (3×3, padded) | 1 thread | 2 threads | batch 8, 2 threads |
//! |---|---|---|---|
//! | 256→256 @14 | 1045 → 938 µs | 582 → 543 µs (f64 1134 → 1026) | 4.57 → 4.23 ms |
//! | 128→128 @28 | 979 → 910 µs | 546 → 515 µs (f64 1055 → 982) | |
//! | 64→64 @56 | 949 → 906 µs | 534 → 505 µs (f64 1038 → 987) | 4.51 → 4.02 ms |
//! | 64→128 @56 stride 2 | 537 → 517 µs | 321 → 312 µs (f64 even) | 2.45 → 2.29 ms |
//! | 7×7 stride-2 stem 3→64 @224 | | 586 → 563 µs (f64 1246 → 1169) | |
//!
//! 512→512 @7 (tiles of seven positions) and 64→64 @9 measured even. Under `perf`, packing
//! the weights is 7% of the 256→256 @14 call (its weights outweigh its input ten to one) and
//! the tile 86%, so the images of a batch share one packed copy (the first image to need it
//! packs it). Batch 8, 2 threads, 256→256 @14: packing 7.5% → 1.9% of the samples under
//! `perf`; timed, best of five interleaved rounds 3.96 → 3.87 ms, means even (a first A/B,
//! 4.53 → 4.08 ms, did not reproduce: this machine's noise between runs is that large).
#![cfg(target_arch = "x86_64")]

use std::sync::OnceLock;

use super::lanes::{within, Lanes};

/// Vectors of output channels in a tile.
const CV: usize = 2;
/// Most positions in a tile (two registers of sums each; 28 of the 32 registers).
pub(super) const XR: usize = 14;

/// One implicit product (see [`super::matmul::gathered`]): `m` output channels, a reduction
/// of `k` taps, output position `(z, y, x)` of `(od, oh, ow)` read at grid position
/// `z·slice + y·pitch + x·step` plus each tap's offset (`step` 1, or 2 for a stride-2 layer
/// read from its unsplit input).
#[derive(Clone, Copy)]
pub(super) struct Problem<T> {
    pub m: usize,
    pub k: usize,
    /// Weight `(o, kk)` at `lhs + o·lhs_rs + kk`.
    pub lhs: *const T,
    pub lhs_rs: isize,
    pub src: *const T,
    pub taps: *const isize,
    /// Output `(o, z, y, x)` at `out + o·c_rs + z·slice_stride + y·row_stride + x`.
    pub out: *mut T,
    pub c_rs: isize,
    pub slice_stride: isize,
    pub row_stride: isize,
    pub pitch: usize,
    pub slice: usize,
    pub step: usize,
    pub shape: [usize; 3],
}

impl<T> Problem<T> {
    /// The same problem over `U` (the caller's `T` is `U`).
    pub(super) fn cast<U>(self) -> Problem<U> {
        Problem {
            m: self.m,
            k: self.k,
            lhs: self.lhs.cast(),
            lhs_rs: self.lhs_rs,
            src: self.src.cast(),
            taps: self.taps,
            out: self.out.cast(),
            c_rs: self.c_rs,
            slice_stride: self.slice_stride,
            row_stride: self.row_stride,
            pitch: self.pitch,
            slice: self.slice,
            step: self.step,
            shape: self.shape,
        }
    }
}

// SAFETY: the parts of one product that threads run write disjoint output elements and only
// read the rest (see `run`).
unsafe impl<T> Send for Problem<T> {}
unsafe impl<T> Sync for Problem<T> {}

/// Channels per strip: `CV` vectors.
pub(super) const fn strip_width<T>() -> usize {
    CV * 64 / std::mem::size_of::<T>()
}

/// The whole product on up to `threads` threads: parts are runs of channel strips when the
/// strips split evenly (every thread then packs only its own), else runs of output rows.
/// With `shared`, the weights are packed once into it, for the other images of a batch.
///
/// # Safety
/// AVX-512 F, VL and FMA present; `T` is f32 or f64; every pointer valid as [`Problem`]
/// says for `o < m`, `kk < k`, every output position, and `src + taps[kk] + p` for every
/// grid position `p` of an output; `shared`, if given, empty or packed by this function
/// from these same weights.
pub(super) unsafe fn run<T: Lanes + Default + Send + Sync>(
    p: Problem<T>,
    threads: usize,
    shared: Option<&OnceLock<Vec<T>>>,
) {
    let sw = strip_width::<T>();
    let strips = p.m.div_ceil(sw);
    let [od, oh, ow] = p.shape;
    let lines = od * oh;
    let threads = threads.max(1);
    let by_strips = strips >= threads && (strips.is_multiple_of(threads) || strips >= 4 * threads);
    let parts = if by_strips {
        threads
    } else {
        threads.min(lines)
    };
    let per_row = ow.div_ceil(XR);
    let width = ow.div_ceil(per_row);
    let stride = p.k * sw;
    // Weights packed once for every image of a batch (the first image to need them packs
    // them all), else a strip at a time by the part that multiplies it.
    let all = shared.map(|cell| {
        cell.get_or_init(|| {
            let mut packed = vec![T::default(); strips * stride];
            for s in 0..strips {
                // SAFETY: rows of strip s below m; its slice holds k·sw values.
                unsafe { pack(&p, s * sw, sw.min(p.m - s * sw), &mut packed[s * stride..]) };
            }
            packed
        })
    });
    if let Some(all) = all {
        assert!(
            all.len() == strips * stride,
            "broadcast: packed weights of another shape"
        );
    }
    let part = |i: usize| {
        let (s0, s1, l0, l1) = if by_strips {
            (strips * i / parts, strips * (i + 1) / parts, 0, lines)
        } else {
            (0, strips, lines * i / parts, lines * (i + 1) / parts)
        };
        let mut own = if all.is_some() {
            Vec::new()
        } else {
            vec![T::default(); stride]
        };
        for s in s0..s1 {
            let valid = sw.min(p.m - s * sw);
            let w = match all {
                Some(all) => all[s * stride..].as_ptr(),
                None => {
                    // SAFETY: rows s·sw .. + valid < m of the weights; `own` holds k·sw
                    // values.
                    unsafe { pack(&p, s * sw, valid, &mut own) };
                    own.as_ptr()
                }
            };
            for line in l0..l1 {
                let (z, y) = (line / oh, line % oh);
                let grid = z * p.slice + y * p.pitch;
                let at = z as isize * p.slice_stride
                    + y as isize * p.row_stride
                    + (s * sw) as isize * p.c_rs;
                let mut x0 = 0;
                while x0 < ow {
                    let count = width.min(ow - x0);
                    let t = Tile {
                        k: p.k,
                        w,
                        b: p.src.wrapping_add(grid + x0 * p.step),
                        taps: p.taps,
                        out: p.out.wrapping_offset(at + x0 as isize),
                        c_rs: p.c_rs,
                        valid,
                    };
                    // SAFETY: the tile's positions are outputs (x0 + count ≤ ow) of this
                    // part's rows, its channels this part's strip: as the caller promised.
                    unsafe {
                        match p.step {
                            1 => widths::<T, 1>(count, t),
                            2 => widths::<T, 2>(count, t),
                            s => unreachable!("position step {s}"),
                        }
                    }
                    x0 += count;
                }
            }
        }
    };
    crate::team::for_each(threads, parts, part);
}

/// Weight rows `o0 .. o0 + valid` into `packed` transposed: reduction step `kk`'s weights at
/// `packed[kk·sw ..][..sw]`, zero past `valid`.
///
/// # Safety
/// As [`run`]; `o0 + valid ≤ m`, `packed.len() ≥ k·sw`.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn pack<T: Lanes>(p: &Problem<T>, o0: usize, valid: usize, packed: &mut [T]) {
    let (n, sw) = (T::N, strip_width::<T>());
    assert!(packed.len() >= p.k * sw && valid <= sw, "pack: sizes");
    let mut regs = [T::zero(); 16];
    for v in 0..CV {
        let mut k0 = 0;
        while k0 < p.k {
            let mask = within(0, (p.k - k0) as isize, n);
            for (r, reg) in regs.iter_mut().enumerate().take(n) {
                let row = v * n + r;
                // SAFETY: row o0 + row < m (checked), steps k0 .. within the mask < k.
                *reg = if row < valid {
                    unsafe {
                        T::load::<true>(
                            T::zero(),
                            mask,
                            p.lhs.wrapping_offset((o0 + row) as isize * p.lhs_rs),
                            k0 as isize,
                        )
                    }
                } else {
                    T::zero()
                };
            }
            T::transpose(&mut regs[..n]);
            for (j, &reg) in regs.iter().enumerate().take(n.min(p.k - k0)) {
                // SAFETY: (k0 + j)·sw + v·n + n ≤ k·sw ≤ packed.len().
                unsafe {
                    T::store(
                        packed.as_mut_ptr().add((k0 + j) * sw + v * n),
                        u32::MAX,
                        reg,
                    )
                };
            }
            k0 += n;
        }
    }
}

/// One tile: `count` positions from `b` (a grid position) on, the strip's `valid` channels.
#[derive(Clone, Copy)]
struct Tile<T> {
    k: usize,
    /// Packed strip weights (see [`pack`]).
    w: *const T,
    b: *const T,
    taps: *const isize,
    /// The tile's first output (first channel, first position).
    out: *mut T,
    c_rs: isize,
    valid: usize,
}

/// [`tile`] for `count` positions (1 ..= [`XR`]), `S` grid positions apart.
///
/// # Safety
/// As [`tile`].
#[inline(always)]
unsafe fn widths<T: Lanes, const S: usize>(count: usize, t: Tile<T>) {
    macro_rules! arms {
        ($($x:literal)*) => {
            match count {
                $($x => unsafe { tile::<T, $x, S>(t) },)*
                _ => unreachable!("tile of {count} positions"),
            }
        };
    }
    arms!(1 2 3 4 5 6 7 8 9 10 11 12 13 14)
}

/// `out[o, x] = Σ_kk w[o, kk] · b[taps[kk] + x·S]` for `x < X`, `o < valid`.
///
/// # Safety
/// AVX-512; `w` holds `k` steps of a strip; `b + taps[kk] + x·S` readable for `kk < k`,
/// `x < X`; `out + o·c_rs + x` writable for `o < valid`, `x < X`, and not accessed by
/// anything else meanwhile.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn tile<T: Lanes, const X: usize, const S: usize>(t: Tile<T>) {
    let (n, sw) = (T::N, strip_width::<T>());
    // SAFETY (whole body): as the caller promised.
    unsafe {
        let mut acc = [[T::zero(); CV]; X];
        for kk in 0..t.k {
            let wp = t.w.add(kk * sw);
            let wv: [T::V; CV] =
                std::array::from_fn(|v| T::load::<true>(T::zero(), u32::MAX, wp, (v * n) as isize));
            let bp = t.b.offset(*t.taps.add(kk));
            for (x, sums) in acc.iter_mut().enumerate() {
                let bx = T::splat(*bp.add(x * S));
                for v in 0..CV {
                    sums[v] = T::fma(wv[v], bx, sums[v]);
                }
            }
        }
        // Sums of a vector of channels at up to `n` positions, transposed: one register per
        // channel, its positions in the lanes, stored as one piece of that channel's row.
        let mut regs = [T::zero(); 16];
        for v in 0..CV {
            let mut x0 = 0;
            while x0 < X {
                let count = n.min(X - x0);
                for (r, reg) in regs.iter_mut().enumerate().take(n) {
                    *reg = if r < count { acc[x0 + r][v] } else { T::zero() };
                }
                T::transpose(&mut regs[..n]);
                let mask = within(0, count as isize, n);
                for (l, &reg) in regs.iter().enumerate().take(n) {
                    let o = v * n + l;
                    if o >= t.valid {
                        break;
                    }
                    T::store(t.out.offset(o as isize * t.c_rs).add(x0), mask, reg);
                }
                x0 += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lanes;

    /// Every register's lanes after [`Lanes::transpose`], for element `(r, l) = r·100 + l`.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn transposed<T: Lanes + From<u16> + Default>() -> Vec<Vec<T>> {
        let n = T::N;
        let mut regs = [T::zero(); 16];
        for (r, reg) in regs.iter_mut().enumerate().take(n) {
            let row: Vec<T> = (0..n).map(|l| T::from((r * 100 + l) as u16)).collect();
            // SAFETY: AVX-512 (checked by the caller); `row` holds n elements.
            *reg = unsafe { T::load::<true>(T::zero(), u32::MAX, row.as_ptr(), 0) };
        }
        // SAFETY: as above.
        unsafe { T::transpose(&mut regs[..n]) };
        (regs.iter().take(n))
            .map(|&reg| {
                let mut row = vec![T::default(); n];
                // SAFETY: as above; `row` holds n elements.
                unsafe { T::store(row.as_mut_ptr(), u32::MAX, reg) };
                row
            })
            .collect()
    }

    #[test]
    fn registers_transpose() {
        if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl")) {
            return;
        }
        // SAFETY: AVX-512 F and VL are present.
        let (single, double) = unsafe { (transposed::<f32>(), transposed::<f64>()) };
        for (l, row) in single.iter().enumerate() {
            let want: Vec<f32> = (0..16).map(|r| (r * 100 + l) as f32).collect();
            assert_eq!(row, &want, "f32 lane {l}");
        }
        for (l, row) in double.iter().enumerate() {
            let want: Vec<f64> = (0..8).map(|r| (r * 100 + l) as f64).collect();
            assert_eq!(row, &want, "f64 lane {l}");
        }
    }
}
