//! The dot-product kernel for channels-last input: `out[i] += Σ_l k[l] · x[starts[i] + l]`.
//!
//! With channels last, the window of one kernel row is one contiguous run of `kw·C` input
//! elements, so every output is a few long dot products. Four outputs are computed together
//! so each kernel vector loaded serves four input vectors; eight lanes per accumulator keep
//! the loop vectorised for any element type.

use super::{isa, mac, Isa};
use crate::Scalar;

const LANES: usize = 8;
const OUTPUTS: usize = 4;

/// `out[i] += Σ_l k[l] · x[starts[i] + l]` for every `i`; every `starts[i] + k.len()` must be
/// within `x`.
pub(crate) fn dots<T: Scalar>(x: &[T], starts: &[usize], k: &[T], out: &mut [T]) {
    assert_eq!(starts.len(), out.len());
    assert!(
        starts.iter().all(|&s| s + k.len() <= x.len()),
        "dot windows must lie within x"
    );
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx512 only when avx512f, avx512vl and fma were detected.
        Isa::Avx512 => unsafe { avx512(x, starts, k, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx2 only when avx2 and fma were detected.
        Isa::Avx2 => unsafe { avx2(x, starts, k, out) },
        _ => body::<T, false>(x, starts, k, out),
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
