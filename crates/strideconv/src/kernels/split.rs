//! Splitting a row into its two stride phases (even and odd elements), the copy in front of
//! every stride-2 direct problem. The plain loop compiles to one scalar load and store per
//! element; over fixed blocks with AVX2 or AVX-512 enabled the compiler emits shuffles.

use super::{isa, Isa};

/// `even[j] = xs[2j]`, `odd[j] = xs[2j + 1]` for every whole pair of `xs`.
pub(crate) fn deinterleave<T: Copy>(xs: &[T], even: &mut [T], odd: &mut [T]) {
    let pairs = xs.len() / 2;
    let (even, odd) = (&mut even[..pairs], &mut odd[..pairs]);
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx512 only when avx512f and avx512vl were detected.
        Isa::Avx512 => unsafe { wide::avx512(xs, even, odd) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx2 only when avx2 was detected.
        Isa::Avx2 => unsafe { wide::avx2(xs, even, odd) },
        _ => body(xs, even, odd),
    }
}

/// Blocks of 16 pairs, then of 4, then the tail one pair at a time.
#[inline(always)]
fn body<T: Copy>(xs: &[T], even: &mut [T], odd: &mut [T]) {
    let done = blocks::<T, 16>(xs, even, odd, 0);
    let done = blocks::<T, 4>(xs, even, odd, done);
    for j in done..even.len() {
        even[j] = xs[2 * j];
        odd[j] = xs[2 * j + 1];
    }
}

/// Whole blocks of `B` pairs from pair `from`; returns the pairs done.
#[inline(always)]
fn blocks<T: Copy, const B: usize>(xs: &[T], even: &mut [T], odd: &mut [T], from: usize) -> usize {
    let blocks = (even.len() - from) / B;
    let (xs, even, odd) = (&xs[2 * from..], &mut even[from..], &mut odd[from..]);
    for i in 0..blocks {
        let src = &xs[2 * B * i..2 * B * (i + 1)];
        let e: &mut [T] = &mut even[B * i..B * (i + 1)];
        let o: &mut [T] = &mut odd[B * i..B * (i + 1)];
        for j in 0..B {
            e[j] = src[2 * j];
            o[j] = src[2 * j + 1];
        }
    }
    from + blocks * B
}

#[cfg(target_arch = "x86_64")]
mod wide {
    use super::body;

    /// # Safety
    /// The CPU must support AVX-512 F and VL.
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    pub(super) unsafe fn avx512<T: Copy>(xs: &[T], even: &mut [T], odd: &mut [T]) {
        body(xs, even, odd)
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2<T: Copy>(xs: &[T], even: &mut [T], odd: &mut [T]) {
        body(xs, even, odd)
    }
}
