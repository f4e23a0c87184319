//! The dot-product kernel for channels-last input:
//! `out[i] += Σ_r Σ_l k[r·len + l] · x[r·step + starts[i] + l]`.
//!
//! With channels last, the window of one kernel row is one contiguous run of `kw·C` input
//! elements, so every output is a few long dot products, one per kernel row, `step` apart
//! in the input. Four outputs are computed together, a kernel row at a time, so each kernel
//! vector loaded serves four input vectors. Fewer than four outputs (a kernel nearly as
//! large as the input) go one at a time with all their rows summed in registers before one
//! reduction (a reduction per row cost more than the row's products: 17.5 → 10 µs
//! on the seed's 256² ⋆ 255²), over four accumulators so successive multiply-adds do not
//! wait on each other. Eight lanes per accumulator keep the loops vectorised for any
//! element type.

use super::{isa, mac, Isa};
use crate::Scalar;

const LANES: usize = 8;
const OUTPUTS: usize = 4;
/// Independent accumulators of a lone dot product.
const CHAINS: usize = 4;

/// `out[i] += Σ_r Σ_l k[r·len + l] · x[r·step + starts[i] + l]` for every `i`, over the
/// `rows` rows of `k` (each `len = k.len() / rows` long); every window must lie within `x`.
pub(crate) fn dots<T: Scalar>(
    x: &[T],
    step: usize,
    rows: usize,
    starts: &[usize],
    k: &[T],
    out: &mut [T],
) {
    assert_eq!(starts.len(), out.len());
    assert!(
        rows > 0 && k.len().is_multiple_of(rows),
        "k holds whole rows"
    );
    let len = k.len() / rows;
    assert!(
        starts
            .iter()
            .all(|&s| (rows - 1) * step + s + len <= x.len()),
        "dot windows must lie within x"
    );
    if out.len() >= OUTPUTS {
        // A row at a time: summing all rows of a block in registers before reducing was
        // 12–20% slower (1024²×10 ⋆ 3²×10, stride 5).
        for (r, kr) in k.chunks_exact(len).enumerate() {
            let x = &x[r * step..];
            #[cfg(target_arch = "x86_64")]
            if super::avx512_float::<T>() {
                // SAFETY: AVX-512 F (with VL and FMA) was detected, `T` is f32 or f64, and
                // every window `starts[i] .. starts[i] + len` lies within `x` (asserted).
                unsafe { wide::dots(x, starts, kr, out) };
                continue;
            }
            match isa() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa()` returns Avx512 only when avx512f, avx512vl and fma were
                // detected.
                Isa::Avx512 => unsafe { avx512(x, starts, kr, out) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa()` returns Avx2 only when avx2 and fma were detected.
                Isa::Avx2 => unsafe { avx2(x, starts, kr, out) },
                _ => body::<T, false>(x, starts, kr, out),
            }
        }
    } else {
        match isa() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx512 => unsafe { lone_avx512(x, step, starts, k, len, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { lone_avx2(x, step, starts, k, len, out) },
            _ => lone::<T, false>(x, step, starts, k, len, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn avx512<T: Scalar>(x: &[T], starts: &[usize], k: &[T], out: &mut [T]) {
    body::<T, true>(x, starts, k, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<T: Scalar>(x: &[T], starts: &[usize], k: &[T], out: &mut [T]) {
    body::<T, true>(x, starts, k, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn lone_avx512<T: Scalar>(
    x: &[T],
    step: usize,
    starts: &[usize],
    k: &[T],
    len: usize,
    out: &mut [T],
) {
    lone::<T, true>(x, step, starts, k, len, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lone_avx2<T: Scalar>(
    x: &[T],
    step: usize,
    starts: &[usize],
    k: &[T],
    len: usize,
    out: &mut [T],
) {
    lone::<T, true>(x, step, starts, k, len, out)
}

/// The AVX-512 form of [`body`] for `f32` and `f64`, written with intrinsics: the portable
/// body, compiled for AVX-512, came out vectorised across the four outputs (a kernel value
/// broadcast, the inputs transposed by shuffles) rather than along the rows, and its speed
/// moved by 15% with unrelated changes elsewhere in the crate. Here each output's row is
/// one run of full vectors and one masked vector for the tail, eight outputs share each
/// kernel vector loaded, and each sum is reduced once at the end of the row. Measured
/// against the portable body in the same build, one thread, n×n×10 ⋆ f×f×10 stride 5,
/// n = 512: float32 f = 3, 5, 9: 225 → 137, 418 → 257, 995 → 482 µs; float64 f = 5, 7:
/// 1088 → 808, 1603 → 1237 µs; f = 17, 33: 1.35×, 1.5×; n×n×5 stride 2 up to 1.1×.
#[cfg(target_arch = "x86_64")]
mod wide {
    use std::any::TypeId;

    use super::super::lanes::{within, Lanes};
    use crate::Scalar;

    /// Outputs that share each kernel vector loaded.
    const R: usize = 8;

    /// `out[i] += Σ_l k[l] · x[starts[i] + l]` for every `i`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, VL and FMA; `T` must be `f32` or `f64`; every
    /// `starts[i] + k.len()` must be at most `x.len()`, and `starts` as long as `out`.
    #[inline]
    pub(super) unsafe fn dots<T: Scalar>(x: &[T], starts: &[usize], k: &[T], out: &mut [T]) {
        let ty = TypeId::of::<T>();
        // SAFETY: `T` is exactly the type it is reinterpreted as (checked by `TypeId`), so
        // the slices keep their lengths and alignment; the rest is the caller's promise.
        unsafe {
            if ty == TypeId::of::<f32>() {
                run::<f32>(cast(x), starts, cast(k), cast_mut(out))
            } else if ty == TypeId::of::<f64>() {
                run::<f64>(cast(x), starts, cast(k), cast_mut(out))
            } else {
                unreachable!("dots: AVX-512 form for f32 and f64 only")
            }
        }
    }

    /// # Safety
    /// `T` and `U` must be the same type.
    unsafe fn cast<T, U>(s: &[T]) -> &[U] {
        // SAFETY: the caller's promise.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
    }

    /// # Safety
    /// `T` and `U` must be the same type.
    unsafe fn cast_mut<T, U>(s: &mut [T]) -> &mut [U] {
        // SAFETY: the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
    }

    /// # Safety
    /// As for [`dots`].
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn run<T: Lanes + std::ops::AddAssign>(
        x: &[T],
        starts: &[usize],
        k: &[T],
        out: &mut [T],
    ) {
        let mut i = 0;
        while i + R <= out.len() {
            // SAFETY: the caller's promise, for these windows.
            unsafe { add_block::<T, R>(x, starts, i, k, out) };
            i += R;
        }
        // The last few outputs as one block of 4 or 8 whose spare windows repeat the last
        // one (computed and dropped): a lone window loads a kernel vector for each of its
        // vectors, so five to seven of them cost more than a block of eight.
        // SAFETY (each block): as above, for windows that are all among `starts`.
        match out.len() - i {
            5.. => unsafe { add_block::<T, R>(x, starts, i, k, out) },
            3..=4 => unsafe { add_block::<T, 4>(x, starts, i, k, out) },
            _ => {
                for j in i..out.len() {
                    unsafe { add_block::<T, 1>(x, starts, j, k, out) };
                }
            }
        }
    }

    /// `out[i + r] += ` the dot product of `k` with the window at `starts[i + r]`, for the
    /// `M` outputs from `i` (those past the end of `out` are computed on the last window and
    /// dropped).
    ///
    /// # Safety
    /// As for [`dots`]; `i` must index `starts`.
    #[inline(always)]
    unsafe fn add_block<T: Lanes + std::ops::AddAssign, const M: usize>(
        x: &[T],
        starts: &[usize],
        i: usize,
        k: &[T],
        out: &mut [T],
    ) {
        let last = starts.len() - 1;
        let at: [usize; M] = std::array::from_fn(|r| starts[(i + r).min(last)]);
        // SAFETY: the caller's promise; every window is one of `starts`.
        let sums = unsafe { block::<T, M>(x, at, k) };
        for (o, s) in out[i..].iter_mut().zip(sums) {
            *o += s;
        }
    }

    /// The dot products of `k` with the `M` windows of `x` starting at `at`.
    ///
    /// # Safety
    /// As for [`dots`], for these windows.
    #[inline(always)]
    unsafe fn block<T: Lanes, const M: usize>(x: &[T], at: [usize; M], k: &[T]) -> [T; M] {
        let n = T::N;
        let len = k.len();
        let full = len / n * n;
        let (all, tail) = (
            within(0, n as isize, n),
            within(0, (len - full) as isize, n),
        );
        let (kp, xp) = (k.as_ptr(), x.as_ptr());
        // SAFETY (every load below): full vectors read `l .. l + n ≤ full` of the kernel and
        // of each window `at[r] .. at[r] + len`, within `x` (the caller's promise); the tail
        // reads only lanes `full .. len` (its mask), the others zero.
        unsafe {
            let z = T::zero();
            let mut acc = [z; M];
            let mut l = 0;
            while l < full {
                let kv = T::load::<true>(z, all, kp, l as isize);
                for r in 0..M {
                    let xv = T::load::<true>(z, all, xp, (at[r] + l) as isize);
                    acc[r] = T::fma(kv, xv, acc[r]);
                }
                l += n;
            }
            if tail != 0 {
                let kv = T::load::<true>(z, tail, kp, full as isize);
                for r in 0..M {
                    let xv = T::load::<true>(z, tail, xp, (at[r] + full) as isize);
                    acc[r] = T::fma(kv, xv, acc[r]);
                }
            }
            acc.map(|a| T::sum(a))
        }
    }
}

/// The sum of one accumulator's lanes, as a balanced tree.
#[inline(always)]
fn lanes_sum<T: Scalar>(v: [T; LANES]) -> T {
    ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
}

/// Outputs one at a time, all rows at once.
#[inline(always)]
fn lone<T: Scalar, const FMA: bool>(
    x: &[T],
    step: usize,
    starts: &[usize],
    k: &[T],
    len: usize,
    out: &mut [T],
) {
    for (o, &st) in out.iter_mut().zip(starts) {
        let mut acc = [[T::zero(); LANES]; CHAINS];
        for (r, kr) in k.chunks_exact(len).enumerate() {
            let xr = &x[r * step + st..][..len];
            let (kb, xb) = (
                kr.chunks_exact(CHAINS * LANES),
                xr.chunks_exact(CHAINS * LANES),
            );
            let (krest, xrest) = (kb.remainder(), xb.remainder());
            for (kc, xc) in kb.zip(xb) {
                for (u, a) in acc.iter_mut().enumerate() {
                    let kv: &[T; LANES] = kc[u * LANES..][..LANES].try_into().expect("LANES");
                    let xv: &[T; LANES] = xc[u * LANES..][..LANES].try_into().expect("LANES");
                    for j in 0..LANES {
                        a[j] = mac::<T, FMA>(a[j], kv[j], xv[j]);
                    }
                }
            }
            let (kb, xb) = (krest.chunks_exact(LANES), xrest.chunks_exact(LANES));
            let (ktail, xtail) = (kb.remainder(), xb.remainder());
            for (kc, xc) in kb.zip(xb) {
                let kv: &[T; LANES] = kc.try_into().expect("LANES");
                let xv: &[T; LANES] = xc.try_into().expect("LANES");
                for j in 0..LANES {
                    acc[0][j] = mac::<T, FMA>(acc[0][j], kv[j], xv[j]);
                }
            }
            for ((a, &kv), &xv) in acc[CHAINS - 1].iter_mut().zip(ktail).zip(xtail) {
                *a = mac::<T, FMA>(*a, kv, xv);
            }
        }
        let mut v = acc[0];
        for a in &acc[1..] {
            for j in 0..LANES {
                v[j] += a[j];
            }
        }
        *o += lanes_sum(v);
    }
}

#[inline(always)]
fn body<T: Scalar, const FMA: bool>(x: &[T], starts: &[usize], k: &[T], out: &mut [T]) {
    let len = k.len();
    let full = len / LANES * LANES;
    let mut i = 0;
    while i + OUTPUTS <= out.len() {
        let mut acc = [[T::zero(); LANES]; OUTPUTS];
        let xs: [&[T]; OUTPUTS] = std::array::from_fn(|r| &x[starts[i + r]..starts[i + r] + len]);
        let mut l = 0;
        while l < full {
            let kv: &[T; LANES] = k[l..l + LANES].try_into().expect("LANES elements");
            for r in 0..OUTPUTS {
                let xv: &[T; LANES] = xs[r][l..l + LANES].try_into().expect("LANES elements");
                for j in 0..LANES {
                    acc[r][j] = mac::<T, FMA>(acc[r][j], kv[j], xv[j]);
                }
            }
            l += LANES;
        }
        for r in 0..OUTPUTS {
            let mut s = T::zero();
            for j in 0..LANES {
                s += acc[r][j];
            }
            for l in full..len {
                s = mac::<T, FMA>(s, k[l], xs[r][l]);
            }
            out[i + r] += s;
        }
        i += OUTPUTS;
    }
    for (o, &st) in out[i..].iter_mut().zip(&starts[i..]) {
        let xr = &x[st..st + len];
        let mut acc = [T::zero(); LANES];
        let mut l = 0;
        while l < full {
            for j in 0..LANES {
                acc[j] = mac::<T, FMA>(acc[j], k[l + j], xr[l + j]);
            }
            l += LANES;
        }
        let mut s = T::zero();
        for a in acc {
            s += a;
        }
        for l in full..len {
            s = mac::<T, FMA>(s, k[l], xr[l]);
        }
        *o += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dots` against its definition, for row lengths around every loop boundary, one and
    /// several rows, and output counts below and above the four- and eight-output blocks;
    /// integers (i128), f64 and f32 exact (small integers, sums within f32's 24 bits).
    #[test]
    fn dots_match_their_definition() {
        let x: Vec<i128> = (0..900).map(|i| (i * 37 % 23) as i128 - 11).collect();
        let k_all: Vec<i128> = (0..800).map(|i| (i * 53 % 19) as i128 - 9).collect();
        for len in (1..70).chain([127, 128, 129, 200]) {
            for (rows, step) in [(1, 0), (3, 211), (2, len)] {
                let k = &k_all[..rows * len];
                let room = x.len() - (rows - 1) * step - len;
                for outs in [1, 2, 3, 4, 5, 6, 7, 9, 11, 12, 15] {
                    let starts: Vec<usize> = (0..outs).map(|i| (i * 29) % room).collect();
                    let mut got = vec![5i128; outs];
                    dots(&x, step, rows, &starts, k, &mut got);
                    let want: Vec<i128> = (starts.iter())
                        .map(|&s| {
                            let dot = |r: usize| {
                                (0..len)
                                    .map(|l| k[r * len + l] * x[r * step + s + l])
                                    .sum::<i128>()
                            };
                            5 + (0..rows).map(dot).sum::<i128>()
                        })
                        .collect();
                    let case = format!("len {len}, {rows} rows, {outs} outputs");
                    assert_eq!(got, want, "{case}");
                    // Floats: the same small integers are exact in f64.
                    let xf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                    let kf: Vec<f64> = k.iter().map(|&v| v as f64).collect();
                    let mut gotf = vec![5.0; outs];
                    dots(&xf, step, rows, &starts, &kf, &mut gotf);
                    let wantf: Vec<f64> = want.iter().map(|&v| v as f64).collect();
                    assert_eq!(gotf, wantf, "f64, {case}");
                    let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                    let ks: Vec<f32> = k.iter().map(|&v| v as f32).collect();
                    let mut gots = vec![5.0f32; outs];
                    dots(&xs, step, rows, &starts, &ks, &mut gots);
                    let wants: Vec<f32> = want.iter().map(|&v| v as f32).collect();
                    assert_eq!(gots, wants, "f32, {case}");
                }
            }
        }
    }
}
