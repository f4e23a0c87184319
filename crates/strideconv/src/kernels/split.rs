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

/// `dst[j] = src[j·step]` for steps 2 to 4 (`src` must hold `(dst.len() - 1)·step + 1`
/// elements; other steps are not handled here). The phase gathers of the FFT and direct
/// methods; compiled for the detected instruction set, the fixed blocks become shuffles.
pub(crate) fn pick<T: Copy>(dst: &mut [T], src: &[T], step: usize) {
    assert!((2..=4).contains(&step), "pick: step {step}");
    let Some(n) = dst.len().checked_sub(1) else {
        return;
    };
    let src = &src[..n * step + 1];
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx512 only when avx512f and avx512vl were detected.
        Isa::Avx512 => unsafe { wide::pick512(dst, src, step) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` returns Avx2 only when avx2 was detected.
        Isa::Avx2 => unsafe { wide::pick2(dst, src, step) },
        _ => pick_body(dst, src, step),
    }
}

/// [`pick`] for each step, blocks of 16 then the tail.
#[inline(always)]
fn pick_body<T: Copy>(dst: &mut [T], src: &[T], step: usize) {
    match step {
        2 => pick_fixed::<T, 2>(dst, src),
        3 => pick_fixed::<T, 3>(dst, src),
        _ => pick_fixed::<T, 4>(dst, src),
    }
}

#[inline(always)]
fn pick_fixed<T: Copy, const S: usize>(dst: &mut [T], src: &[T]) {
    const B: usize = 16;
    // Whole blocks while the block's last chunk lies within `src` (it ends at the last
    // element read, which may be the last of `src`).
    let blocks = (src.len() / (S * B)).min(dst.len() / B);
    for i in 0..blocks {
        let s = &src[S * B * i..S * B * (i + 1)];
        let d = &mut dst[B * i..B * (i + 1)];
        for j in 0..B {
            d[j] = s[S * j];
        }
    }
    for j in blocks * B..dst.len() {
        dst[j] = src[S * j];
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
    use super::{body, pick_body};

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

    /// # Safety
    /// The CPU must support AVX-512 F and VL.
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    pub(super) unsafe fn pick512<T: Copy>(dst: &mut [T], src: &[T], step: usize) {
        pick_body(dst, src, step)
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn pick2<T: Copy>(dst: &mut [T], src: &[T], step: usize) {
        pick_body(dst, src, step)
    }
}

#[cfg(test)]
mod tests {
    use super::{pick, pick_body};

    /// Every step, lengths around the block size, a source exactly as long as needed (so a
    /// read past it would panic): the plain body and the one for this CPU's instruction set.
    #[test]
    fn picks_every_step_th_element() {
        for step in 2..=4 {
            for len in 0..70usize {
                let need = if len == 0 { 0 } else { (len - 1) * step + 1 };
                let src: Vec<f64> = (0..need).map(|i| i as f64 * 1.5 - 7.0).collect();
                let want: Vec<f64> = (0..len).map(|j| src[j * step]).collect();
                let mut plain = vec![0.0; len];
                if len > 0 {
                    pick_body(&mut plain, &src, step);
                }
                assert_eq!(plain, want, "plain, step {step}, {len} elements");
                let mut fast = vec![0.0; len];
                pick(&mut fast, &src, step);
                assert_eq!(fast, want, "dispatched, step {step}, {len} elements");
            }
        }
    }
}
