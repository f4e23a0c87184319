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
    /// several rows, and output counts below and above the four-output block; integers
    /// (i128) and f64 exact.
    #[test]
    fn dots_match_their_definition() {
        let x: Vec<i128> = (0..900).map(|i| (i * 37 % 23) as i128 - 11).collect();
        let k_all: Vec<i128> = (0..800).map(|i| (i * 53 % 19) as i128 - 9).collect();
        for len in (1..70).chain([127, 128, 129, 200]) {
            for (rows, step) in [(1, 0), (3, 211), (2, len)] {
                let k = &k_all[..rows * len];
                let room = x.len() - (rows - 1) * step - len;
                for outs in [1, 2, 3, 4, 5, 9] {
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
                }
            }
        }
    }
}
